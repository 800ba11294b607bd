/* SPDX-License-Identifier: MIT */
#include "gaussianize.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MU 255.0

struct strebm_gauss {
	size_t M, bins;
	double forget;
	double *tree;   /* M x bins Fenwick trees of weights */
	double *hist;   /* M x bins plain weights (for in-bin interpolation) */
	double *total;  /* M */
	double w;       /* weight of the next sample (grows as 1/forget^n) */
	enum strebm_gauss_target target;
};

struct strebm_gauss *strebm_gauss_create(size_t M, size_t bins, double forget)
{
	struct strebm_gauss *g;

	if (M == 0 || bins < 16 || !(forget > 0.0 && forget <= 1.0))
		return NULL;
	g = calloc(1, sizeof(*g));
	if (!g)
		return NULL;
	g->M = M;
	g->bins = bins;
	g->forget = forget;
	g->target = STREBM_GAUSS_MIXED;
	g->tree = calloc(M * bins, sizeof(double));
	g->hist = calloc(M * bins, sizeof(double));
	g->total = calloc(M, sizeof(double));
	if (!g->tree || !g->hist || !g->total) {
		strebm_gauss_destroy(g);
		return NULL;
	}
	strebm_gauss_reset(g);
	return g;
}

void strebm_gauss_destroy(struct strebm_gauss *g)
{
	if (!g)
		return;
	free(g->tree);
	free(g->hist);
	free(g->total);
	free(g);
}

void strebm_gauss_reset(struct strebm_gauss *g)
{
	memset(g->tree, 0, g->M * g->bins * sizeof(double));
	memset(g->hist, 0, g->M * g->bins * sizeof(double));
	memset(g->total, 0, g->M * sizeof(double));
	g->w = 1.0;
}

static void fen_add(double *t, size_t n, size_t i, double v)
{
	for (i++; i <= n; i += i & (~i + 1))
		t[i - 1] += v;
}

/* sum of weights in bins [0, i) */
static double fen_prefix(const double *t, size_t i)
{
	double s = 0.0;

	for (; i > 0; i -= i & (~i + 1))
		s += t[i - 1];
	return s;
}

/* mu-law companded position in [0, bins) as a real number */
static double position(const struct strebm_gauss *g, double x)
{
	double u = log1p(MU * fabs(x)) / log1p(MU);

	if (u > 1.0)
		u = 1.0;
	u = x < 0.0 ? -u : u;
	u = 0.5 * (u + 1.0) * (double)g->bins;
	if (u >= (double)g->bins)
		u = (double)g->bins - 1e-9;
	if (u < 0.0)
		u = 0.0;
	return u;
}

static void rescale(struct strebm_gauss *g)
{
	size_t i, n = g->M * g->bins;
	double s = 1.0 / g->w;

	for (i = 0; i < n; i++) {
		g->tree[i] *= s;
		g->hist[i] *= s;
	}
	for (i = 0; i < g->M; i++)
		g->total[i] *= s;
	g->w = 1.0;
}

int strebm_gauss_set_target(struct strebm_gauss *g, enum strebm_gauss_target target)
{
	if (!g || (unsigned)target >= STREBM_GAUSS_COUNT)
		return -EINVAL;
	g->target = target;
	return 0;
}

/* Quantile function of the target marginal at p in (0, 1). */
static double quantile(enum strebm_gauss_target target, double p)
{
	/* unit-variance Laplace: scale 1/sqrt(2) */
	double lap = (p < 0.5 ? log(2.0 * p) : -log(2.0 * (1.0 - p))) * M_SQRT1_2;

	switch (target) {
	case STREBM_GAUSS_LAPLACE:
		return lap;
	case STREBM_GAUSS_MIXED:
		return 0.5 * (strebm_norm_ppf(p) + lap);
	default:
		return strebm_norm_ppf(p);
	}
}

void strebm_gauss_process(struct strebm_gauss *g, const double *x, size_t n, double *z)
{
	size_t m, t, B = g->bins;

	g->w /= g->forget;
	if (g->w > 1e150)
		rescale(g);
	for (m = 0; m < g->M; m++) {
		double *tree = g->tree + m * B, *hist = g->hist + m * B;
		for (t = 0; t < n; t++) {
			double v = x[m * n + t];
			size_t i;
			if (!isfinite(v))
				continue;
			i = (size_t)position(g, v);
			fen_add(tree, B, i, g->w);
			hist[i] += g->w;
			g->total[m] += g->w;
		}
	}
	for (m = 0; m < g->M; m++) {
		const double *tree = g->tree + m * B, *hist = g->hist + m * B;
		double tot = g->total[m], lo, hi;
		if (!(tot > 0.0)) {
			for (t = 0; t < n; t++)
				z[m * n + t] = 0.0;
			continue;
		}
		/* keep the tails finite: at most ~4.4 sigma */
		lo = 5e-6;
		hi = 1.0 - 5e-6;
		for (t = 0; t < n; t++) {
			double v = x[m * n + t], pos, p;
			size_t i;
			if (!isfinite(v)) {
				z[m * n + t] = 0.0;
				continue;
			}
			pos = position(g, v);
			i = (size_t)pos;
			p = (fen_prefix(tree, i) + (pos - (double)i) * hist[i]) / tot;
			if (p < lo)
				p = lo;
			if (p > hi)
				p = hi;
			z[m * n + t] = quantile(g->target, p);
		}
	}
}

/* Acklam's rational approximation refined by one Halley step. */
double strebm_norm_ppf(double p)
{
	static const double a[] = { -3.969683028665376e+01, 2.209460984245205e+02,
				    -2.759285104469687e+02, 1.383577518672690e+02,
				    -3.066479806614716e+01, 2.506628277459239e+00 };
	static const double b[] = { -5.447609879822406e+01, 1.615858368580409e+02,
				    -1.556989798598866e+02, 6.680131188771972e+01,
				    -1.328068155288572e+01 };
	static const double c[] = { -7.784894002430293e-03, -3.223964580411365e-01,
				    -2.400758277161838e+00, -2.549732539343734e+00,
				    4.374664141464968e+00, 2.938163982698783e+00 };
	static const double d[] = { 7.784695709041462e-03, 3.224671290700398e-01,
				    2.445134137142996e+00, 3.754408661907416e+00 };
	double q, r, x, e, u;

	if (!(p > 0.0))
		return -INFINITY;
	if (!(p < 1.0))
		return INFINITY;
	if (p < 0.02425) {
		q = sqrt(-2.0 * log(p));
		x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
	} else if (p > 1.0 - 0.02425) {
		q = sqrt(-2.0 * log(1.0 - p));
		x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1.0);
	} else {
		q = p - 0.5;
		r = q * q;
		x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
		    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1.0);
	}
	e = 0.5 * erfc(-x / M_SQRT2) - p;
	u = e * sqrt(2.0 * M_PI) * exp(0.5 * x * x);
	return x - u / (1.0 + 0.5 * x * u);
}

/*
 * State serialisation (see gaussianize.h): M, bins, target, then w, the M
 * totals and the two M x bins weight arrays, as doubles, native byte order.
 */
size_t strebm_gauss_state_size(const struct strebm_gauss *g)
{
	return g ? sizeof(double) * (4 + g->M + 2 * g->M * g->bins) : 0;
}

int strebm_gauss_save_state(const struct strebm_gauss *g, void *buf, size_t len)
{
	unsigned char *p = buf;
	double head[4];
	size_t n;

	if (!g || !buf || len < strebm_gauss_state_size(g))
		return -EINVAL;
	n = g->M * g->bins;
	head[0] = (double)g->M;
	head[1] = (double)g->bins;
	head[2] = (double)g->target;
	head[3] = g->w;
	/* memcpy throughout: buf need not be aligned for double */
	memcpy(p, head, sizeof(head));
	memcpy(p + 4 * sizeof(double), g->total, g->M * sizeof(double));
	memcpy(p + (4 + g->M) * sizeof(double), g->tree, n * sizeof(double));
	memcpy(p + (4 + g->M + n) * sizeof(double), g->hist, n * sizeof(double));
	return 0;
}

int strebm_gauss_check_state(const struct strebm_gauss *g, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t i, n;
	double v;

	if (!g || !buf || len != strebm_gauss_state_size(g))
		return -EINVAL;
	n = 4 + g->M + 2 * g->M * g->bins;
	for (i = 0; i < n; i++) {
		memcpy(&v, p + i * sizeof(double), sizeof(v));
		if (!isfinite(v) || v < 0.0)
			return -EINVAL;
		if ((i == 0 && v != (double)g->M) || (i == 1 && v != (double)g->bins) ||
		    (i == 2 && !(v < (double)STREBM_GAUSS_COUNT && v == floor(v))) ||
		    (i == 3 && !(v >= 1.0 && v <= 1e150)))
			return -EINVAL;
	}
	return 0;
}

int strebm_gauss_load_state(struct strebm_gauss *g, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	size_t n;
	double v;
	int r = strebm_gauss_check_state(g, buf, len);

	if (r < 0)
		return r;
	n = g->M * g->bins;
	memcpy(&v, p + 2 * sizeof(double), sizeof(v));
	g->target = (enum strebm_gauss_target)(int)v;
	memcpy(&g->w, p + 3 * sizeof(double), sizeof(double));
	memcpy(g->total, p + 4 * sizeof(double), g->M * sizeof(double));
	memcpy(g->tree, p + (4 + g->M) * sizeof(double), n * sizeof(double));
	memcpy(g->hist, p + (4 + g->M + n) * sizeof(double), n * sizeof(double));
	return 0;
}
