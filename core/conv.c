/* SPDX-License-Identifier: MIT */
#include "conv.h"

#include <errno.h>
#include <fftw3.h> /* after <complex.h> (conv.h): fftw_complex is double complex */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "stft.h"

/* One start-up hypothesis: its demixing, statistics, history and running NLL. */
struct hyp {
	double complex *W;   /* F x K x K, row k of bin f is w_k(f)^H */
	double complex *V;   /* F x K x (K x K): V_k(f) */
	double *mag;         /* R x K x F ring of |y_k(f,t)| (W before the update) */
	size_t ring_n;       /* valid frames in the ring (newest at the shared position) */
	double nll;          /* running J per bin and source (forgotten) */
	double nll_w;        /* running weight of nll */
	bool active;
};

struct strebm_conv {
	struct strebm_conv_config cfg;
	size_t M, K, N, H, F, R, ref;
	size_t chan[STREBM_MAX_SOURCES];
	struct strebm_stft *stft;
	double *in_sel;            /* K x H selected input channels */
	double complex *X, *Y;     /* K x F frame in / out */
	double complex *xb;        /* F x K frame, bin-major */
	double complex *yb;        /* F x K outputs of the current hypothesis */
	double complex *seed;      /* pca_hop x F x K first frames (PCA start) */
	double *lam;               /* K x F envelope */
	double *om;                /* F bin frequencies (rad/sample) */
	double *env;               /* K x R band envelopes (permutation check) */
	double *genv;              /* K x R global envelopes */
	double *mu;                /* K x F mean magnitude per bin over the ring */
	double complex *scr;       /* K^3 + 2 K^2 + K algebra scratch */
	double complex *ctx;       /* F x C x K start-up context ring (bin-major) */
	double *ctx_g;             /* C x K gains of the context frames */
	double *ctx_px;            /* C frame powers */
	size_t C, ctx_n, ctx_pos;  /* capacity, valid frames, next slot */
	struct hyp h[2];

	enum strebm_kernel kernel[STREBM_MAX_SOURCES];
	double ell[STREBM_MAX_SOURCES];
	bool pinned[STREBM_MAX_SOURCES];
	double gain_tv[2][STREBM_MAX_SOURCES]; /* per-hypothesis TV gains of the frame */

	size_t ring_pos;
	size_t nseed;
	unsigned long frames, updates, reseeds;
	unsigned best;
	bool startup;
	double beta;               /* running-average factor of the NLLs, per hop */
	double beta_h;             /* running-average factor of the health moments */

	/* health: running moments of the output log-gains */
	double lg_m[STREBM_MAX_SOURCES];
	double lg_c[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES];
	double lg_w;
	double health, mix;
	bool degraded;

	/* start-up taper: the projected-back demixer's filters, windowed in lag */
	double *tbuf;              /* N, fftw_malloc'd */
	fftw_complex *tspec;       /* F, fftw_malloc'd */
	fftw_plan tfwd, tinv;
	double *twin;              /* N: Gaussian lag window / N */
	double complex *tD;        /* F x K x K */

	/* spatial permutation alignment */
	double complex *du;        /* F x K x K: unit-modulus relative transfer functions */
	double complex *dsteer;    /* F x K x K: fitted steering, [f][source j][mic m] */
	double complex *dsum;      /* F x K x K: sum over the sources of a_j a_j^H, per bin */
	bool steer_ok;             /* dsteer holds a fit */
	double *dlin;              /* K x (2 nlin + 1): line-array matches on the coarse grid */
	size_t nlin;
	double spatial;            /* mean steering match of the bins, [-1, 1] */
	bool spatial_ok;           /* spatial has been measured */
	double complex dst[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES], dstep[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES];
	double *dbuf;              /* N, fftw_malloc'd: GCC over integer lags */
	fftw_complex *dspec;       /* F, fftw_malloc'd */
	fftw_plan dinv;
	double tdoa[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES]; /* K x K: source x microphone */
	double dpeak[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES]; /* the match at tdoa */
	unsigned long aligned;     /* bins re-ordered by the spatial alignment */
};

/* ------------------------------------------------------------------ small complex algebra */

static inline double cabs2(double complex z)
{
	return creal(z) * creal(z) + cimag(z) * cimag(z);
}

/* 1/z without the library's careful (slow) complex division */
static inline double complex crecip(double complex z)
{
	return conj(z) * (1.0 / cabs2(z));
}

/* Solve A x = b in place (A n x n row-major is destroyed, b becomes x),
 * Gauss with partial pivoting. @return false if singular or non-finite. */
static bool csolve(double complex *A, double complex *b, size_t n)
{
	size_t col, r, j, piv;

	for (col = 0; col < n; col++) {
		double best = cabs2(A[col * n + col]);
		double complex inv;
		piv = col;
		for (r = col + 1; r < n; r++) {
			double v = cabs2(A[r * n + col]);
			if (v > best) {
				best = v;
				piv = r;
			}
		}
		if (!(best > 1e-290) || !isfinite(best))
			return false;
		if (piv != col) {
			for (j = 0; j < n; j++) {
				double complex t = A[col * n + j];
				A[col * n + j] = A[piv * n + j];
				A[piv * n + j] = t;
			}
			double complex t = b[col];
			b[col] = b[piv];
			b[piv] = t;
		}
		inv = crecip(A[col * n + col]);
		for (r = col + 1; r < n; r++) {
			double complex fac = A[r * n + col] * inv;
			if (fac == 0.0)
				continue;
			for (j = col + 1; j < n; j++)
				A[r * n + j] -= fac * A[col * n + j];
			b[r] -= fac * b[col];
		}
	}
	for (r = n; r-- > 0;) {
		double complex s = b[r];
		for (j = r + 1; j < n; j++)
			s -= A[r * n + j] * b[j];
		b[r] = s * crecip(A[r * n + r]);
		if (!isfinite(creal(b[r])) || !isfinite(cimag(b[r])))
			return false;
	}
	return true;
}

/* log |det A| (A n x n, copied to scr). -inf if singular. */
static double clogabsdet(const double complex *A, size_t n, double complex *scr)
{
	size_t col, r, j, piv;
	double ld = 0.0;

	if (n == 1)
		return 0.5 * log(cabs2(A[0]));
	if (n == 2)
		return log(cabs(A[0] * A[3] - A[1] * A[2]));
	memcpy(scr, A, n * n * sizeof(*scr));
	for (col = 0; col < n; col++) {
		double best = cabs2(scr[col * n + col]);
		piv = col;
		for (r = col + 1; r < n; r++)
			if (cabs2(scr[r * n + col]) > best) {
				best = cabs2(scr[r * n + col]);
				piv = r;
			}
		if (!(best > 0.0))
			return -INFINITY;
		if (piv != col)
			for (j = 0; j < n; j++) {
				double complex t = scr[col * n + j];
				scr[col * n + j] = scr[piv * n + j];
				scr[piv * n + j] = t;
			}
		ld += 0.5 * log(best);
		for (r = col + 1; r < n; r++) {
			double complex fac = scr[r * n + col] * crecip(scr[col * n + col]);
			for (j = col + 1; j < n; j++)
				scr[r * n + j] -= fac * scr[col * n + j];
		}
	}
	return ld;
}

/* Eigen-decomposition of a Hermitian n x n matrix A (destroyed) by cyclic
 * complex Jacobi rotations: eigenvalues on A's diagonal, eigenvectors in the
 * columns of E. Bounded: at most 30 sweeps. */
static void cjacobi(double complex *A, double complex *E, size_t n)
{
	size_t p, q, i, sweep;

	for (i = 0; i < n * n; i++)
		E[i] = (i % (n + 1) == 0) ? 1.0 : 0.0;
	for (sweep = 0; sweep < 30; sweep++) {
		double off = 0.0, diag = 0.0;
		for (p = 0; p < n; p++) {
			diag += cabs2(A[p * n + p]);
			for (q = p + 1; q < n; q++)
				off += cabs2(A[p * n + q]);
		}
		if (!(off > 1e-30 * diag))
			break;
		for (p = 0; p < n; p++)
			for (q = p + 1; q < n; q++) {
				double complex apq = A[p * n + q], e, jpp, jpq, jqp, jqq;
				double b = cabs(apq), a = creal(A[p * n + p]), d = creal(A[q * n + q]);
				double th, c, s;
				if (!(b > 1e-300))
					continue;
				e = apq / b;
				th = 0.5 * atan2(2.0 * b, a - d);
				c = cos(th);
				s = sin(th);
				/* J = diag(1, conj(e)) [[c, -s], [s, c]] on rows/cols p, q */
				jpp = c;
				jpq = -s;
				jqp = conj(e) * s;
				jqq = conj(e) * c;
				for (i = 0; i < n; i++) { /* A <- A J, E <- E J */
					double complex aip = A[i * n + p], aiq = A[i * n + q];
					double complex eip = E[i * n + p], eiq = E[i * n + q];
					A[i * n + p] = aip * jpp + aiq * jqp;
					A[i * n + q] = aip * jpq + aiq * jqq;
					E[i * n + p] = eip * jpp + eiq * jqp;
					E[i * n + q] = eip * jpq + eiq * jqq;
				}
				for (i = 0; i < n; i++) { /* A <- J^H A */
					double complex api = A[p * n + i], aqi = A[q * n + i];
					A[p * n + i] = conj(jpp) * api + conj(jqp) * aqi;
					A[q * n + i] = conj(jpq) * api + conj(jqq) * aqi;
				}
			}
	}
}

/* ------------------------------------------------------------------ envelope */

static void envelope_update(struct strebm_conv *c, size_t k)
{
	size_t F = c->F, f;
	double *lam = c->lam + k * F, mean = 0.0;

	if (!c->cfg.envelope) {
		for (f = 0; f < F; f++)
			lam[f] = 1.0;
		return;
	}
	for (f = 0; f < F; f++) {
		lam[f] = strebm_kernel_psd(c->kernel[k], c->om[f], c->ell[k]);
		mean += lam[f];
	}
	mean /= (double)F;
	for (f = 0; f < F; f++)
		lam[f] = lam[f] / mean + c->cfg.floor;
}

/* Profiled objective of source k's length-scale over the ring of hypothesis h,
 * J(u) = F sum_t log((1/F) sum_f P/lam) + T sum_f log lam, and dJ/du, u = log ell. */
static double ell_objective(struct strebm_conv *c, const struct hyp *h, size_t k, double u,
			    double *dJ)
{
	size_t F = c->F, K = c->K, R = c->R, n = h->ring_n < R ? h->ring_n : R, f, i;
	double ell = exp(u), mS = 0.0, mdS = 0.0, J = 0.0, D = 0.0;
	double *lam = c->mu, *dlam = c->mu + F; /* scratch (K >= 1: mu holds K x F >= ... ) */
	double Td = (double)n;

	for (f = 0; f < F; f++) {
		double d;
		lam[f] = strebm_kernel_psd_grad(c->kernel[k], c->om[f], ell, &d);
		dlam[f] = d;
		mS += lam[f];
		mdS += d;
	}
	mS /= (double)F;
	mdS /= (double)F;
	for (f = 0; f < F; f++) {
		double S = lam[f];
		lam[f] = S / mS + c->cfg.floor;
		dlam[f] = dlam[f] / mS - S * mdS / (mS * mS);
		J += Td * log(lam[f]);
		D += Td * dlam[f] / lam[f];
	}
	for (i = 0; i < n; i++) {
		size_t pos = (c->ring_pos + R - i) % R;
		const double *m = h->mag + (pos * K + k) * F;
		double a = 0.0, b = 0.0;
		for (f = 0; f < F; f++) {
			double P = m[f] * m[f], il = 1.0 / lam[f];
			a += P * il;
			b -= P * dlam[f] * il * il;
		}
		if (!(a > 0.0))
			continue;
		J += (double)F * log(a / (double)F);
		D += (double)F * b / a;
	}
	*dJ = D;
	return J;
}

static void ell_step(struct strebm_conv *c, const struct hyp *h)
{
	size_t k;
	const double hh = 1e-3;

	for (k = 0; k < c->K; k++) {
		double u = log(c->ell[k]), g, gp, gm, curv, step;
		if (c->pinned[k])
			continue;
		ell_objective(c, h, k, u, &g);
		ell_objective(c, h, k, u + hh, &gp);
		ell_objective(c, h, k, u - hh, &gm);
		curv = (gp - gm) / (2.0 * hh);
		if (!isfinite(g) || !isfinite(curv))
			continue;
		step = curv > 0.0 ? -g / curv : (g > 0.0 ? -0.2 : 0.2);
		if (step > 0.3)
			step = 0.3;
		if (step < -0.3)
			step = -0.3;
		u += step;
		if (u < log(c->cfg.ell_lo))
			u = log(c->cfg.ell_lo);
		if (u > log(c->cfg.ell_hi))
			u = log(c->cfg.ell_hi);
		c->ell[k] = exp(u);
		envelope_update(c, k);
	}
}

/* ------------------------------------------------------------------ one hypothesis, one frame */

static void hyp_identity(struct strebm_conv *c, struct hyp *h)
{
	size_t F = c->F, K = c->K, f, k;

	memset(h->V, 0, F * K * K * K * sizeof(*h->V));
	memset(h->W, 0, F * K * K * sizeof(*h->W));
	for (f = 0; f < F; f++)
		for (k = 0; k < K; k++)
			h->W[(f * K + k) * K + k] = 1.0;
	h->ring_n = 0;
	h->nll = h->nll_w = 0.0;
}

/* Outputs of W on the frame (yb), the ring entry, the gains; returns the
 * frame's J (per bin and source) and the TV gains in gtv. */
static double hyp_observe(struct strebm_conv *c, struct hyp *h, double px, double *g,
			  double *gtv, double complex *scr)
{
	size_t F = c->F, K = c->K, f, k, m;
	double *mag = h->mag + c->ring_pos * K * F, J = 0.0, gfloor = 1e-9 * px + 1e-300;

	for (k = 0; k < K; k++)
		g[k] = gtv[k] = 0.0;
	for (f = 0; f < F; f++) {
		const double complex *W = h->W + f * K * K, *x = c->xb + f * K;
		for (k = 0; k < K; k++) {
			double complex y = 0.0;
			double P;
			for (m = 0; m < K; m++)
				y += W[k * K + m] * x[m];
			c->yb[f * K + k] = y;
			P = cabs2(y);
			mag[k * F + f] = sqrt(P);
			g[k] += P / c->lam[k * F + f];
			gtv[k] += P;
		}
		J -= 2.0 * clogabsdet(W, K, scr);
	}
	for (k = 0; k < K; k++) {
		g[k] = g[k] / (double)F + gfloor;
		gtv[k] = gtv[k] / (double)F + gfloor;
		J += (double)F * log(g[k]);
		if (c->cfg.envelope)
			for (f = 0; f < F; f++)
				J += log(c->lam[k * F + f]);
	}
	if (h->ring_n < c->R)
		h->ring_n++;
	return J / (double)(F * K);
}

/* V_k(f) <- gamma V_k(f) + (1 - gamma) x x^H / r_k(f). */
static void hyp_stats(struct strebm_conv *c, struct hyp *h, const double complex *xb,
		      const double *g, double gamma)
{
	size_t F = c->F, K = c->K, f, k, i, j;

	for (f = 0; f < F; f++) {
		const double complex *x = xb + f * K;
		for (k = 0; k < K; k++) {
			double complex *V = h->V + (f * K + k) * K * K;
			double w = (1.0 - gamma) / (g[k] * c->lam[k * F + f]);
			for (i = 0; i < K; i++)
				for (j = 0; j < K; j++)
					V[i * K + j] = gamma * V[i * K + j] + w * x[i] * conj(x[j]);
		}
	}
}

/* One IP sweep over the rows of every bin (with the spatial constraint once
 * the directions are fitted). */
static void hyp_sweep(struct strebm_conv *c, struct hyp *h, double load, double complex *scr)
{
	size_t F = c->F, K = c->K, f, k, i, j, m;
	double complex *Vl = scr, *WV = scr + K * K, *w = scr + 2 * K * K;

	for (f = 0; f < F; f++) {
		double complex *W = h->W + f * K * K;
		const double complex *Sa = c->steer_ok ? c->dsum + f * K * K : NULL;
		for (k = 0; k < K; k++) {
			const double complex *V = h->V + (f * K + k) * K * K;
			double tr = 0.0, delta, nrm = 0.0;
			for (i = 0; i < K; i++)
				tr += creal(V[i * K + i]);
			delta = load * tr / (double)K + 1e-300;
			memcpy(Vl, V, K * K * sizeof(*Vl));
			for (i = 0; i < K; i++)
				Vl[i * K + i] += delta;
			if (c->steer_ok) { /* + lam sum_{j != k} a_j a_j^H */
				double lam = c->cfg.doa_null * tr / (double)(K * K);
				const double complex *a = c->dsteer + (f * K + k) * K;
				for (i = 0; i < K; i++)
					for (j = 0; j < K; j++)
						Vl[i * K + j] += lam * (Sa[i * K + j] - a[i] * conj(a[j]));
			}
			for (i = 0; i < K; i++)
				for (j = 0; j < K; j++) {
					double complex s = 0.0;
					for (m = 0; m < K; m++)
						s += W[i * K + m] * Vl[m * K + j];
					WV[i * K + j] = s;
				}
			for (i = 0; i < K; i++)
				w[i] = i == k ? 1.0 : 0.0;
			if (!csolve(WV, w, K))
				continue;
			for (i = 0; i < K; i++) {
				double complex s = 0.0;
				for (j = 0; j < K; j++)
					s += Vl[i * K + j] * w[j];
				nrm += creal(conj(w[i]) * s);
			}
			if (!(nrm > 0.0) || !isfinite(nrm))
				continue;
			nrm = 1.0 / sqrt(nrm);
			for (i = 0; i < K; i++)
				W[k * K + i] = conj(w[i]) * nrm;
		}
	}
}

/* ------------------------------------------------------------------ start-up context */

/* Append the frame (bin-major xb, power px) to the context ring. */
static void ctx_push(struct strebm_conv *c, const double complex *xb, double px)
{
	size_t F = c->F, K = c->K, C = c->C, f;

	for (f = 0; f < F; f++)
		memcpy(c->ctx + (f * C + c->ctx_pos) * K, xb + f * K, K * sizeof(*xb));
	c->ctx_px[c->ctx_pos] = px;
	c->ctx_pos = (c->ctx_pos + 1) % C;
	if (c->ctx_n < C)
		c->ctx_n++;
}

/* Rebuild hypothesis h's statistics from the whole context with the gains
 * of its current W (every past frame re-weighted):
 *   V_k(f) = (1/n) sum_c x_c x_c^H / (g_k(c) lambda_k(f)). */
static void ctx_stats(struct strebm_conv *c, struct hyp *h)
{
	size_t F = c->F, K = c->K, C = c->C, n = c->ctx_n, f, k, i, j, t;
	double *g = c->ctx_g;

	for (t = 0; t < n * K; t++)
		g[t] = 0.0;
	for (f = 0; f < F; f++) {
		const double complex *W = h->W + f * K * K;
		const double complex *x = c->ctx + f * C * K;
		for (k = 0; k < K; k++) {
			double il = 1.0 / c->lam[k * F + f];
			for (t = 0; t < n; t++) {
				double complex y = 0.0;
				for (j = 0; j < K; j++)
					y += W[k * K + j] * x[t * K + j];
				g[t * K + k] += cabs2(y) * il;
			}
		}
	}
	for (t = 0; t < n; t++) {
		/* frame weight: gamma^age (as the recursion weights it), or uniform */
		size_t age = (c->ctx_pos + C - 1 - t) % C;
		double wt = c->cfg.ctx_uniform ? 1.0 / (double)n
			    : (1.0 - c->cfg.forget) * pow(c->cfg.forget, (double)age);
		for (k = 0; k < K; k++)
			g[t * K + k] = wt / (g[t * K + k] / (double)F + 1e-9 * c->ctx_px[t] + 1e-300);
	}
	for (f = 0; f < F; f++) {
		const double complex *x = c->ctx + f * C * K;
		double complex *V = h->V + f * K * K * K;
		memset(V, 0, K * K * K * sizeof(*V));
		for (t = 0; t < n; t++) {
			const double complex *xt = x + t * K;
			const double *gt = g + t * K;
			for (i = 0; i < K; i++)
				for (j = i; j < K; j++) {
					double complex o = xt[i] * conj(xt[j]);
					for (k = 0; k < K; k++)
						V[(k * K + i) * K + j] += gt[k] * o;
				}
		}
		for (k = 0; k < K; k++) {
			double s = 1.0 / c->lam[k * F + f];
			double complex *Vk = V + k * K * K;
			for (i = 0; i < K; i++)
				for (j = i; j < K; j++) {
					Vk[i * K + j] *= s;
					Vk[j * K + i] = conj(Vk[i * K + j]);
				}
		}
	}
}

/* Seed hypothesis h from the collected first frames: per-bin PCA (rows by
 * decreasing eigenvalue, whitened), statistics rebuilt from those frames. */
static void hyp_seed_pca(struct strebm_conv *c, struct hyp *h, double complex *scr)
{
	size_t F = c->F, K = c->K, P = c->nseed, f, t, i, j, k;
	double complex *C = scr, *E = scr + K * K;
	double gamma = c->cfg.forget;
	double g[STREBM_MAX_SOURCES], gtv[STREBM_MAX_SOURCES];

	hyp_identity(c, h);
	for (f = 0; f < F; f++) {
		double d[STREBM_MAX_SOURCES], dmax = 0.0;
		size_t order[STREBM_MAX_SOURCES];
		double complex *W = h->W + f * K * K;
		memset(C, 0, K * K * sizeof(*C));
		for (t = 0; t < P; t++) {
			const double complex *x = c->seed + (t * F + f) * K;
			for (i = 0; i < K; i++)
				for (j = 0; j < K; j++)
					C[i * K + j] += x[i] * conj(x[j]) / (double)P;
		}
		cjacobi(C, E, K);
		for (i = 0; i < K; i++) {
			d[i] = creal(C[i * K + i]);
			order[i] = i;
			if (d[i] > dmax)
				dmax = d[i];
		}
		for (i = 1; i < K; i++) /* insertion sort, descending */
			for (j = i; j > 0 && d[order[j]] > d[order[j - 1]]; j--) {
				size_t tmp = order[j];
				order[j] = order[j - 1];
				order[j - 1] = tmp;
			}
		if (!(dmax > 0.0))
			continue; /* silent bin: identity */
		for (i = 0; i < K; i++) {
			double s = 1.0 / sqrt(fmax(d[order[i]], 1e-8 * dmax));
			for (j = 0; j < K; j++)
				W[i * K + j] = conj(E[j * K + order[i]]) * s;
		}
	}
	/* statistics as the recursion would have built them with this W */
	for (t = 0; t < P; t++) {
		double px = 0.0;
		for (f = 0; f < F; f++)
			for (k = 0; k < K; k++) {
				double complex y = 0.0;
				const double complex *x = c->seed + (t * F + f) * K;
				for (j = 0; j < K; j++)
					y += h->W[(f * K + k) * K + j] * x[j];
				c->yb[f * K + k] = y;
				px += cabs2(x[k]);
			}
		px /= (double)(F * K);
		for (k = 0; k < K; k++) {
			g[k] = gtv[k] = 0.0;
			for (f = 0; f < F; f++)
				g[k] += cabs2(c->yb[f * K + k]) / c->lam[k * F + f];
			g[k] = g[k] / (double)F + 1e-9 * px + 1e-300;
		}
		hyp_stats(c, h, c->seed + t * F * K, g, gamma);
	}
	(void)gtv;
	h->active = true;
}

/* ------------------------------------------------------------------ permutation check */

static bool next_perm(size_t *p, size_t n)
{
	size_t i, j;

	if (n < 2)
		return false;
	i = n - 1;
	while (i > 0 && p[i - 1] >= p[i])
		i--;
	if (i == 0)
		return false;
	j = n - 1;
	while (p[j] <= p[i - 1])
		j--;
	size_t t = p[i - 1];
	p[i - 1] = p[j];
	p[j] = t;
	for (j = n - 1; i < j; i++, j--) {
		t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	return true;
}

/* The assignment p (slot i -> column p[i]) maximising sum_i sc[i K + p[i]],
 * K x K scores: every permutation up to 5 sources (120), else greedily, the
 * largest remaining score first (K^3: bounded time for up to 16 sources).
 * @return the sum. */
static double best_assignment(const double *sc, size_t K, size_t *bestp)
{
	size_t p[STREBM_MAX_SOURCES], i, j, n;
	bool row[STREBM_MAX_SOURCES] = { false }, col[STREBM_MAX_SOURCES] = { false };
	double sbest = -1e300;

	if (K <= 5) {
		for (i = 0; i < K; i++)
			p[i] = bestp[i] = i;
		do {
			double s = 0.0;
			for (i = 0; i < K; i++)
				s += sc[i * K + p[i]];
			if (s > sbest) {
				sbest = s;
				memcpy(bestp, p, K * sizeof(*p));
			}
		} while (next_perm(p, K));
		return sbest;
	}
	for (sbest = 0.0, n = 0; n < K; n++) {
		double b = -1e300;
		size_t bi = 0, bj = 0;
		for (i = 0; i < K; i++)
			for (j = 0; j < K; j++)
				if (!row[i] && !col[j] && sc[i * K + j] > b) {
					b = sc[i * K + j];
					bi = i;
					bj = j;
				}
		row[bi] = col[bj] = true;
		bestp[bi] = bj;
		sbest += b;
	}
	return sbest;
}


/* Permute source rows of bins [f0, f1): new row i is old row p[i]. */
static void hyp_permute_bins(struct strebm_conv *c, struct hyp *h, size_t f0, size_t f1,
			     const size_t *p, double complex *scr)
{
	size_t F = c->F, K = c->K, R = c->R, f, i, t;

	for (f = f0; f < f1; f++) {
		double complex *W = h->W + f * K * K, *V = h->V + f * K * K * K;
		memcpy(scr, W, K * K * sizeof(*scr));
		for (i = 0; i < K; i++)
			memcpy(W + i * K, scr + p[i] * K, K * sizeof(*scr));
		memcpy(scr, V, K * K * K * sizeof(*scr));
		for (i = 0; i < K; i++)
			memcpy(V + i * K * K, scr + p[i] * K * K, K * K * sizeof(*scr));
	}
	for (t = 0; t < R; t++) {
		double tmp[STREBM_MAX_SOURCES];
		for (f = f0; f < f1; f++) {
			for (i = 0; i < K; i++)
				tmp[i] = h->mag[(t * K + p[i]) * F + f];
			for (i = 0; i < K; i++)
				h->mag[(t * K + i) * F + f] = tmp[i];
		}
	}
}

/* Match each band to the sources' global activity; re-seed bands locked in the
 * wrong order. @return bands re-seeded. */
static unsigned hyp_perm_check(struct strebm_conv *c, struct hyp *h, double complex *scr)
{
	size_t F = c->F, K = c->K, R = c->R, B = c->cfg.perm_bands;
	size_t n = h->ring_n < R ? h->ring_n : R, f, k, i, b, t;
	size_t f_lo = F / 64 + 1; /* the lowest bins carry little but room noise */
	unsigned fixed = 0;

	if (K < 2 || K > 6 || n < 8)
		return 0;
	/* per-bin mean magnitude over the ring, for normalisation */
	for (k = 0; k < K; k++)
		for (f = 0; f < F; f++) {
			double s = 0.0;
			for (t = 0; t < n; t++) {
				size_t pos = (c->ring_pos + R - t) % R;
				s += h->mag[(pos * K + k) * F + f];
			}
			c->mu[k * F + f] = s > 0.0 ? (double)n / s : 0.0;
		}
	/* global envelopes */
	for (k = 0; k < K; k++)
		for (t = 0; t < n; t++) {
			size_t pos = (c->ring_pos + R - t) % R;
			const double *m = h->mag + (pos * K + k) * F;
			double s = 0.0;
			for (f = f_lo; f < F; f++)
				s += m[f] * c->mu[k * F + f];
			c->genv[k * R + t] = s;
		}
	for (b = 0; b < B; b++) {
		size_t f0 = f_lo + (F - f_lo) * b / B, f1 = f_lo + (F - f_lo) * (b + 1) / B;
		double cm[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES], sid = 0.0, sbest = -1e30;
		double *rest = c->genv + 0; /* reused below per source */
		size_t bestp[STREBM_MAX_SOURCES];
		bool ident;
		if (f1 <= f0)
			continue;
		for (k = 0; k < K; k++)
			for (t = 0; t < n; t++) {
				size_t pos = (c->ring_pos + R - t) % R;
				const double *m = h->mag + (pos * K + k) * F;
				double s = 0.0;
				for (f = f0; f < f1; f++)
					s += m[f] * c->mu[k * F + f];
				c->env[k * R + t] = s;
			}
		/* band i against the global activity of source j outside the band */
		for (i = 0; i < K; i++)
			for (k = 0; k < K; k++) {
				double tmp[512];
				size_t nn = n < 512 ? n : 512;
				for (t = 0; t < nn; t++)
					tmp[t] = c->genv[k * R + t] - c->env[k * R + t];
				cm[i * K + k] = strebm_corr(c->env + i * R, tmp, nn);
			}
		(void)rest;
		for (i = 0; i < K; i++)
			sid += cm[i * K + i];
		sbest = best_assignment(cm, K, bestp);
		ident = true;
		for (i = 0; i < K; i++)
			ident &= bestp[i] == i;
		/* act only on a clear, well-supported swap: band row i belongs to
		 * source bestp[i], so new row bestp[i] is old row i */
		if (!ident && sbest - sid > 0.15 * (double)K && sbest > 0.3 * (double)K) {
			size_t q[STREBM_MAX_SOURCES];
			for (i = 0; i < K; i++)
				q[bestp[i]] = i;
			hyp_permute_bins(c, h, f0, f1, q, scr);
			fixed++;
		}
	}
	return fixed;
}

/* Global activity of each source over the last n ring frames: sum over bins
 * of |y| normalised by the bin's mean (out K x R). */
static void hyp_activity(struct strebm_conv *c, const struct hyp *h, size_t n, double *out)
{
	size_t F = c->F, K = c->K, R = c->R, f, k, t;

	for (k = 0; k < K; k++)
		for (f = 0; f < F; f++) {
			double s = 0.0;
			for (t = 0; t < n; t++)
				s += h->mag[(((c->ring_pos + R - t) % R) * K + k) * F + f];
			c->mu[k * F + f] = s > 0.0 ? (double)n / s : 0.0;
		}
	for (k = 0; k < K; k++)
		for (t = 0; t < n; t++) {
			const double *m = h->mag + (((c->ring_pos + R - t) % R) * K + k) * F;
			double s = 0.0;
			for (f = 0; f < F; f++)
				s += m[f] * c->mu[k * F + f];
			out[k * R + t] = s;
		}
}

/* Put hypothesis dst's sources in the slots of hypothesis ref (matched by
 * their global activity), so that switching between them never swaps outputs. */
static void hyp_align(struct strebm_conv *c, struct hyp *dst, const struct hyp *ref)
{
	size_t K = c->K, R = c->R, i, j;
	size_t n = dst->ring_n < ref->ring_n ? dst->ring_n : ref->ring_n;
	double cm[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES];
	size_t bestp[STREBM_MAX_SOURCES];
	bool ident = true;

	if (K < 2 || n < 4)
		return;
	if (n > R)
		n = R;
	hyp_activity(c, ref, n, c->genv);
	hyp_activity(c, dst, n, c->env);
	for (i = 0; i < K; i++)
		for (j = 0; j < K; j++)
			cm[i * K + j] = strebm_corr(c->genv + i * R, c->env + j * R, n);
	best_assignment(cm, K, bestp);
	for (i = 0; i < K; i++)
		ident &= bestp[i] == i;
	if (!ident)
		hyp_permute_bins(c, dst, 0, c->F, bestp, c->scr); /* new row i = old row bestp[i] */
}

/* ------------------------------------------------------------------ public */

void strebm_conv_config_default(struct strebm_conv_config *cfg, size_t M, size_t K, size_t N,
				size_t H)
{
	double q = H ? (double)N / (4.0 * (double)H) : 1.0; /* hops per prototype hop */
	size_t k;

	memset(cfg, 0, sizeof(*cfg));
	cfg->M = M;
	cfg->K = K;
	cfg->N = N;
	cfg->H = H;
	cfg->ref_mic = 0;
	cfg->forget = pow(0.94, 1.0 / (q > 0.0 ? q : 1.0));
	cfg->load = 1e-3;
	cfg->sweeps = 1;
	cfg->warm_sweeps = 2;
	cfg->warm_hops = (unsigned)lround(32.0 * q);
	cfg->envelope = false;
	for (k = 0; k < STREBM_MAX_SOURCES; k++)
		cfg->kernel[k] = STREBM_KERNEL_RBF;
	cfg->floor = 1e-2;
	cfg->ell_init_lo = 2.0;
	cfg->ell_init_hi = 8.0;
	cfg->ell_lo = 0.3;
	cfg->ell_hi = 200.0;
	cfg->ell_every = (unsigned)lround(8.0 * q);
	cfg->two_starts = false;
	cfg->pca_hop = (unsigned)lround(8.0 * q);
	cfg->startup_hops = (unsigned)lround(96.0 * q);
	cfg->perm_every = 0;
	cfg->perm_bands = 16;
	cfg->ring = (size_t)lround(32.0 * q);
	if (cfg->ring < 8)
		cfg->ring = 8;
	if (cfg->ring > 512)
		cfg->ring = 512;
	cfg->ctx_frames = 0;
	cfg->ctx_sweeps = 2;
	cfg->ctx_load = 1e-3;
	cfg->ctx_uniform = false;
	cfg->ensemble = false;
	cfg->align_every = (unsigned)lround(8.0 * q);
	cfg->taper = 1.0 / 32.0;
	cfg->taper_hops = (unsigned)lround(64.0 * q);
	cfg->taper_fade = (unsigned)lround(32.0 * q);
	cfg->doa_every = (unsigned)lround(4.0 * q);
	if (cfg->doa_every < 1)
		cfg->doa_every = 1;
	cfg->doa_start = (unsigned)lround(16.0 * q);
	cfg->doa_hops = 0;
	cfg->doa_max = (double)N / 256.0; /* about 0.5 ms with the 128 ms frame: 17 cm */
	cfg->doa_margin = 0.05;
	cfg->doa_conf = 0.85;
	cfg->doa_null = 0.2;
	cfg->doa_linear = true;
	cfg->doa_sep = 0.0; /* doa_max / 16 */
	cfg->doa_lo = 0.6;
	cfg->doa_hi = 0.75;
	cfg->health = true;
	cfg->health_min = 0.07;
}

struct strebm_conv *strebm_conv_create(const struct strebm_conv_config *cfg)
{
	struct strebm_conv *c;
	size_t M, K, F, R, i, j, f;

	if (!cfg || cfg->M < 1 || cfg->M > STREBM_MAX_CHANNELS || cfg->K < 1 ||
	    cfg->K > cfg->M || cfg->K > STREBM_MAX_SOURCES || cfg->N < 16 || cfg->N % 2 ||
	    cfg->H < 1 || cfg->H > cfg->N / 2 || cfg->ref_mic >= cfg->M ||
	    !(cfg->forget > 0.0 && cfg->forget < 1.0) || !(cfg->load >= 0.0) ||
	    cfg->sweeps < 1 || cfg->pca_hop < 2 || cfg->ctx_frames > 4096 ||
	    (cfg->ctx_frames && cfg->ctx_sweeps < 1) || !(cfg->ctx_load >= 0.0) ||
	    !(cfg->taper >= 0.0 && cfg->taper <= 1.0) || cfg->ring < 8 || cfg->ring > 512 || cfg->perm_bands < 2 ||
	    (cfg->doa_every && !(cfg->doa_max > 0.0 && cfg->doa_max < (double)cfg->N / 4.0)) ||
	    !(cfg->doa_margin >= 0.0) || !(cfg->doa_conf >= -1.0 && cfg->doa_conf <= 1.0) ||
	    !(cfg->doa_lo >= -1.0 && cfg->doa_hi <= 1.0) ||
	    !(cfg->doa_null >= 0.0 && cfg->doa_null <= 1e6) || !(cfg->doa_sep >= 0.0) ||
	    !(cfg->floor >= 0.0) || !(cfg->ell_lo > 0.0 && cfg->ell_hi >= cfg->ell_lo) ||
	    !(cfg->ell_init_lo > 0.0 && cfg->ell_init_hi >= cfg->ell_init_lo))
		return NULL;
	for (i = 0; i < cfg->K; i++)
		if ((unsigned)cfg->kernel[i] >= STREBM_KERNEL_COUNT)
			return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->cfg = *cfg;
	M = c->M = cfg->M;
	K = c->K = cfg->K;
	c->N = cfg->N;
	c->H = cfg->H;
	R = c->R = cfg->ring;
	/* channels: the reference first among the lowest-numbered K */
	c->chan[0] = cfg->ref_mic;
	for (i = 0, j = 1; j < K && i < M; i++)
		if (i != cfg->ref_mic)
			c->chan[j++] = i;
	for (i = 1; i < K; i++) /* keep ascending channel order */
		for (j = i; j > 0 && c->chan[j] < c->chan[j - 1]; j--) {
			size_t t = c->chan[j];
			c->chan[j] = c->chan[j - 1];
			c->chan[j - 1] = t;
		}
	for (i = 0; i < K; i++)
		if (c->chan[i] == cfg->ref_mic)
			c->ref = i;
	c->stft = strebm_stft_create(c->N, c->H, K, K);
	if (!c->stft)
		goto fail;
	F = c->F = strebm_stft_bins(c->stft);
	c->in_sel = calloc(K * c->H, sizeof(double));
	c->X = calloc(K * F, sizeof(*c->X));
	c->Y = calloc(K * F, sizeof(*c->Y));
	c->xb = calloc(F * K, sizeof(*c->xb));
	c->yb = calloc(F * K, sizeof(*c->yb));
	c->seed = calloc((size_t)cfg->pca_hop * F * K, sizeof(*c->seed));
	c->lam = calloc(K * F, sizeof(double));
	c->om = calloc(F, sizeof(double));
	c->env = calloc(K * R, sizeof(double));
	c->genv = calloc(K * R, sizeof(double));
	c->mu = calloc((K < 2 ? 2 : K) * F, sizeof(double));
	c->scr = calloc(K * K * K + 2 * K * K + K, sizeof(double complex));
	if (cfg->taper > 0.0) {
		double sig = cfg->taper * (double)c->N;
		size_t t;
		c->tbuf = fftw_malloc(c->N * sizeof(double));
		c->tspec = fftw_malloc(F * sizeof(fftw_complex));
		c->twin = calloc(c->N, sizeof(double));
		c->tD = calloc(F * K * K, sizeof(double complex));
		if (!c->tbuf || !c->tspec || !c->twin || !c->tD)
			goto fail;
		c->tfwd = fftw_plan_dft_r2c_1d((int)c->N, c->tbuf, c->tspec, FFTW_ESTIMATE);
		c->tinv = fftw_plan_dft_c2r_1d((int)c->N, c->tspec, c->tbuf, FFTW_ESTIMATE);
		if (!c->tfwd || !c->tinv)
			goto fail;
		for (t = 0; t < c->N; t++) {
			double tau = t < c->N / 2 ? (double)t : (double)t - (double)c->N;
			c->twin[t] = exp(-0.5 * tau * tau / (sig * sig)) / (double)c->N;
		}
	}
	if (cfg->doa_every && K > 1) {
		c->du = calloc(F * K * K, sizeof(double complex));
		c->dsteer = calloc(F * K * K, sizeof(double complex));
		c->dsum = calloc(F * K * K, sizeof(double complex));
		c->nlin = (size_t)ceil(cfg->doa_max / 0.25);
		c->dlin = calloc(K * (2 * c->nlin + 1), sizeof(double));
		c->dbuf = fftw_malloc(c->N * sizeof(double));
		c->dspec = fftw_malloc(F * sizeof(fftw_complex));
		if (!c->du || !c->dsteer || !c->dsum || !c->dlin || !c->dbuf || !c->dspec)
			goto fail;
		c->dinv = fftw_plan_dft_c2r_1d((int)c->N, c->dspec, c->dbuf, FFTW_ESTIMATE);
		if (!c->dinv)
			goto fail;
	}
	c->C = cfg->ctx_frames;
	if (c->C) {
		c->ctx = calloc(F * c->C * K, sizeof(*c->ctx));
		c->ctx_g = calloc(c->C * K, sizeof(double));
		c->ctx_px = calloc(c->C, sizeof(double));
		if (!c->ctx || !c->ctx_g || !c->ctx_px)
			goto fail;
	}
	if (!c->scr || !c->in_sel || !c->X || !c->Y || !c->xb || !c->yb || !c->seed || !c->lam || !c->om ||
	    !c->env || !c->genv || !c->mu)
		goto fail;
	for (i = 0; i < 2; i++) {
		c->h[i].W = calloc(F * K * K, sizeof(double complex));
		c->h[i].V = calloc(F * K * K * K, sizeof(double complex));
		c->h[i].mag = calloc(R * K * F, sizeof(double));
		if (!c->h[i].W || !c->h[i].V || !c->h[i].mag)
			goto fail;
	}
	for (f = 0; f < F; f++)
		c->om[f] = M_PI * (double)f / (double)(F - 1);
	for (i = 0; i < K; i++)
		c->kernel[i] = cfg->kernel[i];
	c->beta = pow(0.95, 4.0 * (double)c->H / (double)c->N);
	c->beta_h = pow(0.99, 4.0 * (double)c->H / (double)c->N);
	strebm_conv_reset(c);
	return c;
fail:
	strebm_conv_destroy(c);
	return NULL;
}

void strebm_conv_destroy(struct strebm_conv *c)
{
	size_t i;

	if (!c)
		return;
	strebm_stft_destroy(c->stft);
	for (i = 0; i < 2; i++) {
		free(c->h[i].W);
		free(c->h[i].V);
		free(c->h[i].mag);
	}
	free(c->in_sel);
	free(c->X);
	free(c->Y);
	free(c->xb);
	free(c->yb);
	free(c->seed);
	free(c->lam);
	free(c->om);
	free(c->env);
	free(c->genv);
	free(c->mu);
	free(c->scr);
	free(c->ctx);
	free(c->ctx_g);
	free(c->ctx_px);
	if (c->tfwd)
		fftw_destroy_plan(c->tfwd);
	if (c->tinv)
		fftw_destroy_plan(c->tinv);
	fftw_free(c->tbuf);
	fftw_free(c->tspec);
	free(c->twin);
	free(c->tD);
	free(c->du);
	free(c->dsteer);
	free(c->dsum);
	free(c->dlin);
	if (c->dinv)
		fftw_destroy_plan(c->dinv);
	fftw_free(c->dbuf);
	fftw_free(c->dspec);
	free(c);
}

void strebm_conv_reset(struct strebm_conv *c)
{
	size_t K = c->K, k;

	strebm_stft_reset(c->stft);
	for (k = 0; k < K; k++) {
		c->ell[k] = K > 1 ? c->cfg.ell_init_lo *
			pow(c->cfg.ell_init_hi / c->cfg.ell_init_lo, (double)k / (double)(K - 1))
			: sqrt(c->cfg.ell_init_lo * c->cfg.ell_init_hi);
		c->pinned[k] = false;
		envelope_update(c, k);
	}
	hyp_identity(c, &c->h[0]);
	hyp_identity(c, &c->h[1]);
	c->h[0].active = true;
	c->h[1].active = c->cfg.ensemble && K > 1 && !c->cfg.two_starts;
	c->ring_pos = 0;
	c->nseed = 0;
	c->ctx_n = c->ctx_pos = 0;
	c->frames = c->updates = c->reseeds = c->aligned = 0;
	c->spatial = 0.0;
	c->spatial_ok = false;
	c->steer_ok = false;
	memset(c->tdoa, 0, sizeof(c->tdoa));
	c->best = 0;
	c->startup = c->cfg.two_starts && K > 1;
	memset(c->lg_m, 0, sizeof(c->lg_m));
	memset(c->lg_c, 0, sizeof(c->lg_c));
	c->lg_w = 0.0;
	c->health = 1.0;
	c->mix = 1.0;
	c->degraded = false;
}

size_t strebm_conv_bins(const struct strebm_conv *c)
{
	return c->F;
}

size_t strebm_conv_latency(const struct strebm_conv *c)
{
	return c->N;
}

/* Start-up GP prior across frequency on the demixer (convolutive.md §1.3):
 * each entry of the projected-back demixer D(f) = diag(a) W(f), a^T = e_ref^T
 * W^-1, is an impulse response over lag; a Gaussian lag window (the RBF
 * kernel's MAP smoothing along frequency) ties neighbouring bins together,
 * which settles the bins' order while data are scarce. W <- (1 - w) D + w D~
 * (IP re-normalises the rows at the next sweep). RT-safe: plans made at
 * create. */
static void hyp_taper(struct strebm_conv *c, struct hyp *h, double w)
{
	size_t F = c->F, K = c->K, N = c->N, f, k, m, r, t;
	double complex *scr = c->scr;

	for (f = 0; f < F; f++) {
		double complex *W = h->W + f * K * K, *D = c->tD + f * K * K, a[STREBM_MAX_SOURCES];
		for (r = 0; r < K; r++) {
			for (k = 0; k < K; k++)
				scr[r * K + k] = W[k * K + r];
			a[r] = r == c->ref ? 1.0 : 0.0;
		}
		if (!csolve(scr, a, K))
			for (k = 0; k < K; k++)
				a[k] = 1.0;
		for (k = 0; k < K; k++)
			for (m = 0; m < K; m++)
				D[k * K + m] = a[k] * W[k * K + m];
	}
	for (k = 0; k < K; k++)
		for (m = 0; m < K; m++) {
			for (f = 0; f < F; f++)
				c->tspec[f] = c->tD[(f * K + k) * K + m];
			fftw_execute(c->tinv);
			for (t = 0; t < N; t++)
				c->tbuf[t] *= c->twin[t];
			fftw_execute(c->tfwd);
			for (f = 0; f < F; f++) {
				double complex d = c->tD[(f * K + k) * K + m];
				h->W[(f * K + k) * K + m] = (1.0 - w) * d + w * c->tspec[f];
			}
		}
}

/* Steering match of source k's relative transfer function at microphone m
 * against a delay of tau samples: sum over bins of Re(u_mk(f) e^{j om_f tau}),
 * the GCC-PHAT of the demixer's own column. */
static double doa_match(const struct strebm_conv *c, size_t k, size_t m, double tau)
{
	size_t F = c->F, K = c->K, f;
	double complex z = 1.0, step = cexp(I * c->om[1] * tau);
	double s = 0.0;

	for (f = 1; f < F; f++) {
		z *= step;
		s += creal(c->du[(f * K + m) * K + k] * z);
	}
	return s;
}

/* Source k's delay at microphone m: the best integer lag within doa_max
 * (all lags at once: c2r gives 2 Re sum_f u e^{j om_f t}), refined to 0.02
 * sample; lags within one sample of avoid (NaN: none) are skipped.
 * @param peak  receives the match at the delay */
static double doa_fit(struct strebm_conv *c, size_t k, size_t m, double avoid, double *peak)
{
	size_t F = c->F, K = c->K, N = c->N, f, i;
	double lim = c->cfg.doa_max, best = -1e300, bt = 0.0, t, t0, s;

	c->dspec[0] = 0.0;
	for (f = 1; f < F; f++)
		c->dspec[f] = c->du[(f * K + m) * K + k];
	fftw_execute(c->dinv);
	for (i = 0; i < N; i++) {
		double lag = i < N / 2 ? (double)i : (double)i - (double)N;
		if (fabs(lag) <= lim && c->dbuf[i] > best && !(fabs(lag - avoid) < 1.0)) {
			best = c->dbuf[i];
			bt = lag;
		}
	}
	best = -1e300;
	for (t0 = bt, t = t0 - 0.6; t <= t0 + 0.6 + 1e-9; t += 0.1)
		if (!(fabs(t - avoid) < 1.0) && (s = doa_match(c, k, m, t)) > best) {
			best = s;
			bt = t;
		}
	for (t0 = bt, t = t0 - 0.08; t <= t0 + 0.08 + 1e-9; t += 0.02)
		if (!(fabs(t - avoid) < 1.0) && (s = doa_match(c, k, m, t)) > best) {
			best = s;
			bt = t;
		}
	*peak = best;
	return bt;
}

/* Position of used channel m on the line, in microphone steps from the
 * reference: the channel numbers (all M microphones evenly spaced in order). */
static inline double line_pos(const struct strebm_conv *c, size_t m)
{
	return (double)c->chan[m] - (double)c->chan[c->ref];
}

/* Line-array match of source k at slowness sl (delay per microphone step). */
static double doa_match_linear(const struct strebm_conv *c, size_t k, double sl)
{
	size_t K = c->K, m;
	double v = 0.0;

	for (m = 0; m < K; m++)
		if (m != c->ref)
			v += doa_match(c, k, m, sl * line_pos(c, m));
	return v;
}

/* Whether a far-end delay d lies within sep of a source already placed. */
static bool clashes(double d, const double *sk, const bool *done, size_t K, double span,
		    double sep)
{
	size_t j;

	for (j = 0; j < K; j++)
		if (done[j] && fabs(d - sk[j] * span) < sep)
			return true;
	return false;
}

/* Line-array fit: source k's delay at microphone m is (m - ref) s_k. Each
 * source's match is taken on a grid of 0.25 sample at the far end (dlin),
 * then the sources are placed greedily by their peak, each at least doa_sep
 * (far end; default doa_max / 16) from those already placed, and refined to
 * 0.02 sample with the exact match. Bounded: one c2r per source and
 * microphone, 16 taps per grid point. */
static void doa_fit_linear(struct strebm_conv *c)
{
	size_t K = c->K, k, n, i;
	double span = 0.0, ds;
	long ns = (long)c->nlin, t;
	bool done[STREBM_MAX_SOURCES] = { false };
	double sk[STREBM_MAX_SOURCES];
	double sep = c->cfg.doa_sep > 0.0 ? c->cfg.doa_sep : c->cfg.doa_max / 16.0;

	for (i = 0; i < K; i++)
		span = fmax(span, fabs(line_pos(c, i)));
	if (span < 1.0)
		span = 1.0;
	ds = 0.25 / span;
	/* coarse matches from each microphone's GCC at integer lags (one c2r),
	 * interpolated between them */
	for (k = 0; k < K; k++) {
		double *row = c->dlin + k * (2 * c->nlin + 1);
		for (t = -ns; t <= ns; t++)
			row[t + ns] = 0.0;
		for (i = 0; i < K; i++) {
			size_t f, N = c->N;
			if (i == c->ref)
				continue;
			c->dspec[0] = 0.0;
			for (f = 1; f < c->F; f++)
				c->dspec[f] = c->du[(f * K + i) * K + k];
			fftw_execute(c->dinv);
			for (t = -ns; t <= ns; t++) {
				/* GCC is band-limited: Hann-windowed sinc over 2 x 8 lags */
				double lag = (double)t * ds * line_pos(c, i), fl = floor(lag);
				double fr = lag - fl, acc = 0.0;
				long l0 = (long)fl, q;
				if (fr < 1e-9) {
					row[t + ns] += c->dbuf[(size_t)((l0 % (long)N + (long)N) % (long)N)];
					continue;
				}
				for (q = -7; q <= 8; q++) {
					double x = (double)q - fr, wv = 0.5 + 0.5 * cos(M_PI * x / 8.5);
					size_t ix = (size_t)(((l0 + q) % (long)N + (long)N) % (long)N);
					acc += c->dbuf[ix] * wv * sin(M_PI * x) / (M_PI * x);
				}
				row[t + ns] += acc;
			}
		}
	}
	for (n = 0; n < K; n++) {
		double bs = -1e300, bv = 0.0, s0, s, v;
		size_t bk = 0;
		for (k = 0; k < K; k++) {
			if (done[k])
				continue;
			for (t = -ns; t <= ns; t++) {
				s = (double)t * ds;
				v = c->dlin[k * (2 * c->nlin + 1) + (size_t)(t + ns)];
				if (v > bs && !clashes(s * span, sk, done, K, span, sep)) {
					bs = v;
					bk = k;
					bv = s;
				}
			}
		}
		for (bs = -1e300, s0 = bv, s = s0 - ds; s <= s0 + ds + 1e-12; s += 0.02 / span) {
			if (!clashes(s * span, sk, done, K, span, sep) &&
			    (v = doa_match_linear(c, bk, s)) > bs) {
				bs = v;
				bv = s;
			}
		}
		done[bk] = true;
		sk[bk] = bv;
	}
	for (k = 0; k < K; k++)
		for (i = 0; i < K; i++)
			c->tdoa[k * K + i] = sk[k] * line_pos(c, i);
}

/* Each microphone's delay of each source fitted on its own (any array). */
static void doa_fit_each(struct strebm_conv *c)
{
	size_t K = c->K, k, m, i;

	for (k = 0; k < K; k++)
		for (m = 0; m < K; m++) {
			if (m == c->ref) {
				c->tdoa[k * K + m] = 0.0;
				c->dpeak[k * K + m] = 0.0;
				continue;
			}
			c->tdoa[k * K + m] = doa_fit(c, k, m, NAN, &c->dpeak[k * K + m]);
		}
	/* two sources on one direction (a block of bins in the wrong order can
	 * pull a source's peak onto another's): the weaker takes its best
	 * direction at least a sample away from the stronger one's */
	for (k = 0; k < K; k++)
		for (i = k + 1; i < K; i++) {
			size_t weak = i, strong = k;
			double dist = 0.0, pk = 0.0, pi_ = 0.0;
			for (m = 0; m < K; m++) {
				dist = fmax(dist, fabs(c->tdoa[k * K + m] - c->tdoa[i * K + m]));
				pk += c->dpeak[k * K + m];
				pi_ += c->dpeak[i * K + m];
			}
			if (dist >= 1.0)
				continue;
			if (pi_ > pk) {
				weak = k;
				strong = i;
			}
			for (m = 0; m < K; m++)
				if (m != c->ref)
					c->tdoa[weak * K + m] = doa_fit(c, weak, m, c->tdoa[strong * K + m],
									&c->dpeak[weak * K + m]);
		}
}

/* Spatial permutation alignment (the DOA method of frequency-domain BSS):
 * each column of A(f) = W(f)^-1, taken relative to the reference microphone,
 * is a steering vector e^{-j om_f tau_mk} for a free-field source. Each
 * source's delays are fitted to its current bins (a grid search of the
 * demixer's GCC-PHAT), then every bin whose columns match another order of
 * the sources clearly better is re-ordered (rows of W and statistics).
 * @return bins re-ordered. RT-safe. */
static unsigned hyp_doa(struct strebm_conv *c, struct hyp *h)
{
	size_t F = c->F, K = c->K, f, k, m, i;
	double complex *A = c->scr;
	double thr = c->cfg.doa_margin * (double)(K * (K - 1));
	unsigned fixed = 0;
	double msum = 0.0;

	for (f = 0; f < F; f++) {
		const double complex *W = h->W + f * K * K;
		double complex *u = c->du + f * K * K;
		for (k = 0; k < K; k++) {
			double complex a[STREBM_MAX_SOURCES], r;
			memcpy(A, W, K * K * sizeof(*A));
			for (m = 0; m < K; m++)
				a[m] = m == k ? 1.0 : 0.0;
			if (!csolve(A, a, K) || cabs2(a[c->ref]) < 1e-300) {
				for (m = 0; m < K; m++)
					u[m * K + k] = 0.0;
				continue;
			}
			for (m = 0; m < K; m++) {
				r = a[m] / a[c->ref];
				u[m * K + k] = cabs(r) > 0.0 ? r / cabs(r) : 0.0;
			}
		}
	}
	if (c->cfg.doa_linear)
		doa_fit_linear(c);
	else
		doa_fit_each(c);
	for (i = 0; i < K; i++)
		for (m = 0; m < K; m++) {
			c->dstep[i * K + m] = cexp(I * c->om[1] * c->tdoa[i * K + m]);
			c->dst[i * K + m] = 1.0;
		}
	for (f = 1; f < F; f++) {
		const double complex *u = c->du + f * K * K;
		double complex *st = c->dst;
		double sc[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES], sid = 0.0, sbest = -1e300;
		size_t bestp[STREBM_MAX_SOURCES];
		/* st[i * K + m] = e^{j om_f tau_im} by recurrence over the bins;
		 * sc[i * K + j]: source i's steering against the bin's row j */
		for (i = 0; i < K * K; i++)
			st[i] *= c->dstep[i];
		for (i = 0; i < K; i++)
			for (k = 0; k < K; k++) {
				double s = 0.0;
				for (m = 0; m < K; m++)
					if (m != c->ref)
						s += creal(u[m * K + k] * st[i * K + m]);
				sc[i * K + k] = s;
			}
		for (i = 0; i < K; i++)
			sid += sc[i * K + i];
		sbest = best_assignment(sc, K, bestp);
		msum += sbest / (double)(K * (K - 1));
		if (sbest - sid > thr && sbest > c->cfg.doa_conf * (double)(K * (K - 1))) {
			hyp_permute_bins(c, h, f, f + 1, bestp, c->scr);
			fixed++;
		}
	}
	c->spatial = msum / (double)(F - 1);
	c->spatial_ok = true;
	if (c->cfg.doa_null > 0.0) { /* the constraint's steering and its per-bin sum */
		for (f = 0; f < F; f++) {
			double complex *S = c->dsum + f * K * K;
			memset(S, 0, K * K * sizeof(*S));
			for (i = 0; i < K; i++) {
				double complex *a = c->dsteer + (f * K + i) * K;
				size_t j;
				for (m = 0; m < K; m++)
					a[m] = cexp(-I * c->om[f] * c->tdoa[i * K + m]);
				for (m = 0; m < K; m++)
					for (j = 0; j < K; j++)
						S[m * K + j] += a[m] * conj(a[j]);
			}
		}
		c->steer_ok = true;
	}
	return fixed;
}

/* Health: 1 - the largest correlation between two outputs' log-gain
 * profiles (running moments). Outputs that are still mixtures share their
 * activity; separated sources do not. */
static void health_update(struct strebm_conv *c, const double *gtv)
{
	size_t K = c->K, i, j;
	double b = c->beta_h, lg[STREBM_MAX_SOURCES], worst = 0.0;

	if (K < 2)
		return;
	for (i = 0; i < K; i++)
		lg[i] = log(gtv[i]);
	c->lg_w = b * c->lg_w + (1.0 - b);
	for (i = 0; i < K; i++)
		c->lg_m[i] = b * c->lg_m[i] + (1.0 - b) * lg[i];
	for (i = 0; i < K; i++)
		for (j = 0; j < K; j++)
			c->lg_c[i * K + j] = b * c->lg_c[i * K + j] + (1.0 - b) * lg[i] * lg[j];
	for (i = 0; i < K; i++)
		for (j = i + 1; j < K; j++) {
			double mi = c->lg_m[i] / c->lg_w, mj = c->lg_m[j] / c->lg_w;
			double cij = c->lg_c[i * K + j] / c->lg_w - mi * mj;
			double vi = c->lg_c[i * K + i] / c->lg_w - mi * mi;
			double vj = c->lg_c[j * K + j] / c->lg_w - mj * mj;
			double r = vi > 0.0 && vj > 0.0 ? cij / sqrt(vi * vj) : 1.0;
			if (r > worst)
				worst = r;
		}
	c->health = 1.0 - worst;
}

void strebm_conv_frame(struct strebm_conv *c, const double complex *X, double complex *Y,
		       bool adapt)
{
	size_t F = c->F, K = c->K, f, k, m, i;
	double complex *scr = c->scr;
	double g[STREBM_MAX_SOURCES], px = 0.0;
	struct hyp *hb;
	size_t nh;
	bool ctx = false;

	for (f = 0; f < F; f++)
		for (m = 0; m < K; m++) {
			double complex v = X[m * F + f];
			c->xb[f * K + m] = v;
			px += cabs2(v);
		}
	px /= (double)(F * K);

	if (px > 1e-30) {
		c->ring_pos = (c->ring_pos + 1) % c->R;
		c->frames++;
		ctx = adapt && c->C && c->frames <= c->C;
		if (ctx)
			ctx_push(c, c->xb, px);
		for (i = 0; i < 2; i++) {
			struct hyp *h = &c->h[i];
			double J;
			unsigned s, ns;
			if (!h->active)
				continue;
			J = hyp_observe(c, h, px, g, c->gain_tv[i], scr);
			if (isfinite(J)) {
				h->nll = c->beta * h->nll + (1.0 - c->beta) * J;
				h->nll_w = c->beta * h->nll_w + (1.0 - c->beta);
			}
			if (i == c->best)
				health_update(c, c->gain_tv[i]);
			if (!adapt)
				continue;
			if (ctx && (!c->cfg.ensemble || i == 1)) {
				/* start-up: every kept frame re-weighted with the current W */
				for (s = 0; s < c->cfg.ctx_sweeps; s++) {
					ctx_stats(c, h);
					hyp_sweep(c, h, c->cfg.ctx_load, scr);
				}
				continue;
			}
			hyp_stats(c, h, c->xb, g, c->cfg.forget);
			ns = c->frames <= c->cfg.warm_hops ? c->cfg.warm_sweeps : c->cfg.sweeps;
			if (ns < 1)
				ns = 1;
			for (s = 0; s < ns; s++)
				hyp_sweep(c, h, c->cfg.load, scr);
			if (c->tbuf && c->frames <= c->cfg.taper_hops + c->cfg.taper_fade) {
				double w = c->frames <= c->cfg.taper_hops ? 1.0
					   : 1.0 - (double)(c->frames - c->cfg.taper_hops) /
						   (double)(c->cfg.taper_fade + 1);
				hyp_taper(c, h, w);
				hyp_sweep(c, h, c->cfg.load, scr);
			}
			if (c->cfg.doa_hops && c->frames > c->cfg.doa_start + c->cfg.doa_hops)
				c->steer_ok = false;
			if (c->du && c->frames >= c->cfg.doa_start &&
			    (!c->cfg.doa_hops || c->frames <= c->cfg.doa_start + c->cfg.doa_hops) &&
			    c->frames % c->cfg.doa_every == 0)
				c->aligned += hyp_doa(c, h);
			if (c->cfg.perm_every && c->frames % c->cfg.perm_every == 0 &&
			    h->ring_n >= c->R / 2)
				c->reseeds += hyp_perm_check(c, h, scr);
		}
		if (adapt) {
			c->updates++;
			if (c->startup) {
				if (c->nseed < c->cfg.pca_hop) {
					memcpy(c->seed + c->nseed * F * K, c->xb, F * K * sizeof(*c->xb));
					if (++c->nseed == c->cfg.pca_hop)
						hyp_seed_pca(c, &c->h[1], scr);
				}
				/* output the better hypothesis once both have history */
				if (c->h[1].active && c->h[1].nll_w > 0.5 && c->h[0].nll_w > 0.5) {
					double j0 = c->h[0].nll / c->h[0].nll_w;
					double j1 = c->h[1].nll / c->h[1].nll_w;
					unsigned b = j1 < j0 ? 1 : 0;
					if (b != c->best)
						hyp_align(c, &c->h[b], &c->h[c->best]);
					c->best = b;
				}
				if (c->frames >= c->cfg.startup_hops) {
					c->h[1 - c->best].active = false;
					c->startup = false;
				}
			}
			if (c->cfg.ensemble && c->h[1].active && !c->startup && c->cfg.align_every &&
			    c->frames % c->cfg.align_every == 0)
				hyp_align(c, &c->h[1], &c->h[0]);
			if (c->cfg.envelope && c->cfg.ell_every && c->frames % c->cfg.ell_every == 0 &&
			    c->h[c->best].ring_n >= 8)
				ell_step(c, &c->h[c->best]);
		}
		/* health: fall back towards passthrough when the outputs keep sharing
		 * their activity (judged once the running moments have settled) */
		if (c->cfg.health && K > 1) {
			double target = 1.0;
			bool judged = false;
			if (c->lg_w > 0.5) {
				c->degraded = c->health < c->cfg.health_min;
				target = c->degraded ? 0.0 : 1.0;
				judged = true;
			}
			if (c->du && c->spatial_ok && c->cfg.doa_hi > c->cfg.doa_lo) {
				double t = (c->spatial - c->cfg.doa_lo) / (c->cfg.doa_hi - c->cfg.doa_lo);
				t = t < 0.0 ? 0.0 : t > 1.0 ? 1.0 : t;
				if (t < target)
					target = t;
				c->degraded = (judged && c->degraded) || t < 0.5;
				judged = true;
			}
			if (judged)
				c->mix += target < c->mix ? (c->mix - target > 0.05 ? -0.05 : target - c->mix)
							  : (target - c->mix > 0.05 ? 0.05 : target - c->mix);
			if (c->mix < 0.0)
				c->mix = 0.0;
			if (c->mix > 1.0)
				c->mix = 1.0;
		}
	}

	/* output: the best hypothesis' new W, projected back to the reference
	 * (ensemble: the mean of both hypotheses' images, slots aligned) */
	nh = c->cfg.ensemble && !c->cfg.two_starts && c->h[1].active ? 2 : 1;
	for (f = 0; f < F; f++) {
		const double complex *x = c->xb + f * K;
		double complex ys[STREBM_MAX_SOURCES];
		for (k = 0; k < K; k++)
			ys[k] = 0.0;
		for (i = 0; i < nh; i++) {
			hb = nh == 2 ? &c->h[i] : &c->h[c->best];
			const double complex *W = hb->W + f * K * K;
			double complex a[STREBM_MAX_SOURCES];
			double complex *A = scr;
			size_t r;
			bool ok;
			/* a^T = e_ref^T W^-1  <=>  W^T a = e_ref */
			for (r = 0; r < K; r++) {
				for (k = 0; k < K; k++)
					A[r * K + k] = W[k * K + r];
				a[r] = r == c->ref ? 1.0 : 0.0;
			}
			ok = csolve(A, a, K);
			for (k = 0; k < K; k++) {
				double complex y = 0.0;
				if (ok)
					for (m = 0; m < K; m++)
						y += W[k * K + m] * x[m];
				ys[k] += (ok ? a[k] * y : x[c->ref] / (double)K) / (double)nh;
			}
		}
		for (k = 0; k < K; k++)
			Y[k * F + f] = c->mix * ys[k] + (1.0 - c->mix) * x[c->ref] / (double)K;
	}
}

void strebm_conv_process(struct strebm_conv *c, const double *in, double *out, bool adapt)
{
	size_t k;

	for (k = 0; k < c->K; k++)
		memcpy(c->in_sel + k * c->H, in + c->chan[k] * c->H, c->H * sizeof(double));
	strebm_stft_analyze(c->stft, c->in_sel, c->X);
	strebm_conv_frame(c, c->X, c->Y, adapt);
	strebm_stft_synthesize(c->stft, c->Y, out);
}

int strebm_conv_demix(const struct strebm_conv *c, size_t f, double complex *D)
{
	size_t K, i, k, m;
	double complex A[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES], a[STREBM_MAX_SOURCES];
	const double complex *W;

	if (!c || !D || f >= c->F)
		return -EINVAL;
	K = c->K;
	W = c->h[c->best].W + f * K * K;
	for (i = 0; i < K; i++) {
		for (k = 0; k < K; k++)
			A[i * K + k] = W[k * K + i];
		a[i] = i == c->ref ? 1.0 : 0.0;
	}
	if (!csolve(A, a, K))
		return -EINVAL;
	for (k = 0; k < K; k++)
		for (m = 0; m < K; m++)
			D[k * K + m] = a[k] * W[k * K + m];
	return 0;
}

int strebm_conv_reorder(struct strebm_conv *c, size_t f0, size_t f1, const size_t *perm)
{
	bool seen[STREBM_MAX_SOURCES] = { false };
	size_t i;

	if (!c || !perm || f0 > f1 || f1 > c->F)
		return -EINVAL;
	for (i = 0; i < c->K; i++) {
		if (perm[i] >= c->K || seen[perm[i]])
			return -EINVAL;
		seen[perm[i]] = true;
	}
	hyp_permute_bins(c, &c->h[c->best], f0, f1, perm, c->scr);
	return 0;
}

int strebm_conv_set_ell(struct strebm_conv *c, size_t k, double ell, bool pinned)
{
	if (!c || k >= c->K || !(ell >= c->cfg.ell_lo && ell <= c->cfg.ell_hi))
		return -EINVAL;
	c->ell[k] = ell;
	c->pinned[k] = pinned;
	envelope_update(c, k);
	return 0;
}

void strebm_conv_ell_bounds(const struct strebm_conv *c, double *lo, double *hi)
{
	*lo = c->cfg.ell_lo;
	*hi = c->cfg.ell_hi;
}

int strebm_conv_set_kernel(struct strebm_conv *c, size_t k, enum strebm_kernel kind)
{
	if (!c || k >= c->K || (unsigned)kind >= STREBM_KERNEL_COUNT)
		return -EINVAL;
	c->kernel[k] = kind;
	envelope_update(c, k);
	return 0;
}

void strebm_conv_get_status(const struct strebm_conv *c, struct strebm_conv_status *st)
{
	size_t k;
	const struct hyp *h = &c->h[c->best];

	memset(st, 0, sizeof(*st));
	st->frames = c->frames;
	st->updates = c->updates;
	st->reseeds = c->reseeds;
	st->aligned = c->aligned;
	st->spatial = c->spatial_ok ? c->spatial : NAN;
	st->constrained = c->steer_ok;
	for (k = 0; k < STREBM_MAX_SOURCES; k++) {
		size_t nb = c->ref + 1 < c->K ? c->ref + 1 : c->ref - 1;
		st->delay[k] = k < c->K && c->K > 1 && c->spatial_ok ? c->tdoa[k * c->K + nb] : NAN;
	}
	st->objective = h->nll_w > 0.0 ? h->nll / h->nll_w : 0.0;
	st->health = c->health;
	st->mix = c->mix;
	for (k = 0; k < c->K; k++) {
		st->ell[k] = c->ell[k];
		st->kernel[k] = c->kernel[k];
		st->pinned[k] = c->pinned[k];
	}
	st->hypothesis = c->best;
	st->ready = c->frames > 0;
	st->startup = c->startup;
	st->degraded = c->degraded;
}
