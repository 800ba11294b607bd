/* SPDX-License-Identifier: MIT */
/*
 * Stationary kernels and their discrete-time (aliased) spectra; see
 * ../shared/docs/strebm-math.md §3.
 *
 * PSD evaluation, per kernel:
 *  - Matérn 1/2: exact AR(1) form f = (1 - p^2) / (1 - 2 p cos w + p^2),
 *    p = e^{-1/ell}, written with expm1() so that it stays accurate for
 *    large ell.
 *  - RBF: for ell < 1 the lag sum 1 + 2 sum_h k(h) cos(w h), which is short
 *    (|h| <= 9 ell); for ell >= 1 the alias sum sum_m S(w + 2 pi m) with
 *    |m| <= 2. Both truncate below e^-40 of the leading term.
 *  - Matérn 3/2, 5/2, ell < 8: the exact closed form of the sampled kernel
 *    (geometric sums in z = e^{-a} e^{-iw}); it loses accuracy for large
 *    ell through cancellation at high w.
 *  - Matérn 3/2, 5/2, ell >= 8: alias sum over |m| <= MATERN_ALIAS plus an
 *    Euler-Maclaurin estimate of each tail (exact integral of S, boundary
 *    term, first and third derivative corrections). The integral is
 *    c int_0^beta sin^{2nu-1}, beta = atan(lambda / W), by series for small
 *    beta, with no cancellation at large ell. A plain truncated sum would
 *    need ~100 terms for Matérn 3/2 (its alias tail decays like 1/m^4).
 *  Max relative error against a quad-precision closed form, ell in
 *  [0.25, 4096], 257 frequencies in [0, pi]: f < 5e-10, df/dlog ell < 2e-9
 *  of f (Matérn 1/2: < 1e-15; RBF: f < 1e-14, df < 3e-13 of f wherever
 *  f > 1e-12 of its peak, the limit of the quad reference).
 *
 * Every function here is RT-safe: no allocation, locks or syscalls, and a
 * bounded number of operations for any argument.
 */
#include "kernel.h"

#include <complex.h>
#include <errno.h>
#include <math.h>
#include <strings.h>

#define TWO_PI 6.283185307179586476925286766559
#define SQRT_2PI 2.5066282746310005024157652848110

/* Alias terms |m| <= MATERN_ALIAS are summed explicitly for Matérn 3/2, 5/2. */
#define MATERN_ALIAS 6
/* Below this ell, Matérn 3/2 and 5/2 use the closed form instead. */
#define MATERN_CLOSED_MAX 8.0
/* Terms with exponent beyond this are dropped (e^-40 ~ 4e-18 relative). */
#define RBF_EXP_CUT 40.0
/* exp(-x) for x above this is taken as 0 (avoids subnormals). */
#define EXP_CLAMP 700.0

static const char *const kernel_names[STREBM_KERNEL_COUNT] = {
	[STREBM_KERNEL_RBF] = "rbf",
	[STREBM_KERNEL_MATERN12] = "matern12",
	[STREBM_KERNEL_MATERN32] = "matern32",
	[STREBM_KERNEL_MATERN52] = "matern52",
};

const char *strebm_kernel_name(enum strebm_kernel kind)
{
	if ((unsigned)kind >= STREBM_KERNEL_COUNT)
		return NULL;
	return kernel_names[kind];
}

int strebm_kernel_from_name(const char *name, enum strebm_kernel *out)
{
	unsigned i;

	if (!name || !out)
		return -EINVAL;
	for (i = 0; i < STREBM_KERNEL_COUNT; i++) {
		if (strcasecmp(name, kernel_names[i]) == 0) {
			*out = (enum strebm_kernel)i;
			return 0;
		}
	}
	return -EINVAL;
}

static int args_ok(enum strebm_kernel kind, double ell)
{
	return (unsigned)kind < STREBM_KERNEL_COUNT && ell > 0.0 && isfinite(ell);
}

static double exp_neg(double x)
{
	return x < EXP_CLAMP ? exp(-x) : 0.0;
}

double strebm_kernel_eval(enum strebm_kernel kind, double tau, double ell)
{
	double a;

	if (!args_ok(kind, ell))
		return NAN;
	tau = fabs(tau);
	switch (kind) {
	case STREBM_KERNEL_RBF:
		a = tau / ell;
		return exp_neg(0.5 * a * a);
	case STREBM_KERNEL_MATERN12:
		return exp_neg(tau / ell);
	case STREBM_KERNEL_MATERN32:
		a = sqrt(3.0) * tau / ell;
		return (1.0 + a) * exp_neg(a);
	case STREBM_KERNEL_MATERN52:
		a = sqrt(5.0) * tau / ell;
		return (1.0 + a + a * a / 3.0) * exp_neg(a);
	default:
		return NAN;
	}
}

double strebm_kernel_dlogl(enum strebm_kernel kind, double tau, double ell)
{
	double a;

	if (!args_ok(kind, ell))
		return NAN;
	tau = fabs(tau);
	switch (kind) {
	case STREBM_KERNEL_RBF:
		a = tau / ell;
		return a * a * exp_neg(0.5 * a * a);
	case STREBM_KERNEL_MATERN12:
		a = tau / ell;
		return a * exp_neg(a);
	case STREBM_KERNEL_MATERN32:
		a = sqrt(3.0) * tau / ell;
		return a * a * exp_neg(a);
	case STREBM_KERNEL_MATERN52:
		a = sqrt(5.0) * tau / ell;
		return a * a * (1.0 + a) / 3.0 * exp_neg(a);
	default:
		return NAN;
	}
}

/* ---- Matérn 1/2: exact AR(1) ---------------------------------------- */

static void psd_matern12(double w, double ell, double *f, double *df)
{
	double em1 = expm1(-1.0 / ell);	/* p - 1, exact for large ell */
	double p = 1.0 + em1;
	double s2 = sin(0.5 * w);
	double s2s = 4.0 * p * s2 * s2;	/* 2 p (1 - cos w) */
	double num = -em1 * (1.0 + p);	/* 1 - p^2 */
	double den = em1 * em1 + s2s;	/* 1 - 2 p cos w + p^2 */
	double val = num / den;
	double dlog;

	*f = val;
	if (!df)
		return;
	/*
	 * d log f / d log ell = (p / ell) [-2p / (1 - p^2) - (2p - 2 cos w) / den],
	 * 2p - 2 cos w = 2 (p - 1) + 4 sin^2(w/2).
	 */
	dlog = (p / ell) * (-2.0 * p / num -
			    (2.0 * em1 + 4.0 * s2 * s2) / den);
	*df = val * dlog;
}

/* ---- RBF ------------------------------------------------------------- */

static void psd_rbf(double w, double ell, double *f, double *df)
{
	double sf = 0.0, sd = 0.0;
	int h, m, hmax, mmax;

	if (ell < 1.0) {
		/* lag sum: k(h) = e^{-h^2 / 2 ell^2}, |h| <= ell sqrt(2 cut) */
		hmax = (int)ceil(ell * sqrt(2.0 * RBF_EXP_CUT));
		for (h = hmax; h >= 1; h--) {
			double u = (double)h / ell;
			double k = exp_neg(0.5 * u * u);
			double c = cos(w * (double)h);

			sf += k * c;
			sd += u * u * k * c;
		}
		*f = 1.0 + 2.0 * sf;
		if (df)
			*df = 2.0 * sd;
		return;
	}
	/* alias sum: S(v) = sqrt(2 pi) ell e^{-ell^2 v^2 / 2} */
	mmax = (int)ceil(sqrt(2.0 * RBF_EXP_CUT) / (TWO_PI * ell) + 0.5);
	for (m = -mmax; m <= mmax; m++) {
		double v = ell * (w + TWO_PI * (double)m);
		double s = SQRT_2PI * ell * exp_neg(0.5 * v * v);

		sf += s;
		sd += s * (1.0 - v * v);
	}
	*f = sf;
	if (df)
		*df = sd;
}

/* ---- Matérn 3/2 and 5/2: alias sum + Euler-Maclaurin tail ----------- */

struct matern {
	double lam;	/* sqrt(2 nu) / ell */
	double c;	/* 2 sqrt(pi) Gamma(nu + 1/2) / Gamma(nu) */
	int p;		/* nu + 1/2 */
};

/* S(v) = (c / lam) r^p with r = lam^2 / (lam^2 + v^2), and dS/dlog ell. */
static void matern_s(const struct matern *mt, double v, double *s, double *ds)
{
	double r = mt->lam * mt->lam / (mt->lam * mt->lam + v * v);
	double rp = mt->p == 2 ? r * r : r * r * r;

	*s = mt->c / mt->lam * rp;
	*ds = *s * (-(2.0 * mt->p - 1.0) + 2.0 * mt->p * r);
}

/*
 * First and third v-derivatives of S and their d/dlog ell. With
 * q = lam^2 + v^2 (dq/dlog ell = -2 lam^2):
 *   S'   = S h1, h1 = -2p v / q,
 *   S''' = S h3, h3 = 4p(p+1) v (3q - 2(p+2) v^2) / q^3,
 *   d(S h)/dlog ell = dS h + S (dh/dq) (-2 lam^2).
 */
static void matern_sdv(const struct matern *mt, double v, double s, double ds,
		       double out[4])
{
	double l2 = mt->lam * mt->lam, q = l2 + v * v, p = mt->p;
	double h1 = -2.0 * p * v / q;
	double dh1 = 2.0 * p * v / (q * q) * (-2.0 * l2);
	double k3 = 4.0 * p * (p + 1.0) * v;
	double h3 = k3 * (3.0 * q - 2.0 * (p + 2.0) * v * v) / (q * q * q);
	double dh3 = k3 * (6.0 * (p + 2.0) * v * v - 6.0 * q) /
		     (q * q * q * q) * (-2.0 * l2);

	out[0] = s * h1;
	out[1] = ds * h1 + s * dh1;
	out[2] = s * h3;
	out[3] = ds * h3 + s * dh3;
}

/* int_0^beta sin^2 = (2 beta - sin 2 beta) / 4 */
static double int_sin2(double b)
{
	double x = 2.0 * b, t, sum;
	int k;

	if (x >= 1.0)
		return 0.25 * (x - sin(x));
	/* x - sin x = x^3/3! - x^5/5! + ... */
	t = x * x * x / 6.0;
	sum = t;
	for (k = 2; k < 12; k++) {
		t *= -x * x / ((2.0 * k) * (2.0 * k + 1.0));
		sum += t;
	}
	return 0.25 * sum;
}

/* int_0^beta sin^4 = (3 beta - 2 sin 2 beta + sin(4 beta) / 4) / 8 */
static double int_sin4(double b)
{
	double p16, p4, sum = 0.0, sign = 1.0, b2 = b * b;
	int k;

	if (b >= 0.5)
		return (3.0 * b - 2.0 * sin(2.0 * b) + 0.25 * sin(4.0 * b)) / 8.0;
	/* sum_{k>=2} (-1)^k (16^k - 4^{k+1}) b^{2k+1} / (8 (2k+1)!) */
	p16 = 256.0 * b2 * b2 * b / 120.0;
	p4 = 64.0 * b2 * b2 * b / 120.0;
	for (k = 2; k < 14; k++) {
		double d = (2.0 * k + 2.0) * (2.0 * k + 3.0);

		sum += sign * (p16 - p4);
		p16 *= 16.0 * b2 / d;
		p4 *= 4.0 * b2 / d;
		sign = -sign;
	}
	return sum / 8.0;
}

/*
 * sum_{m >= n} g(m) for g(x) = S(2 pi x +- w), with wstart = 2 pi n +- w,
 * by Euler-Maclaurin: int_n^inf g + g(n)/2 - g'(n)/12 + g'''(n)/720, and
 * its d/dlog ell. int_W^inf S = c int_0^beta sin^{2 nu - 1}, with
 * beta = atan(lam / W).
 */
static void matern_tail(const struct matern *mt, double wstart,
			double *f, double *df)
{
	const double t1 = TWO_PI / 12.0;
	const double t3 = TWO_PI * TWO_PI * TWO_PI / 720.0;
	double s, ds, dv[4], b, integ, dinteg, q, sinp;

	matern_s(mt, wstart, &s, &ds);
	matern_sdv(mt, wstart, s, ds, dv);
	b = atan2(mt->lam, wstart);
	integ = mt->p == 2 ? int_sin2(b) : int_sin4(b);
	/* d beta / dlog ell = -lam W / q; sin^2 beta = lam^2 / q */
	q = mt->lam * mt->lam + wstart * wstart;
	sinp = mt->lam * mt->lam / q;
	if (mt->p == 3)
		sinp *= sinp;
	dinteg = -sinp * mt->lam * wstart / q;

	*f = mt->c * integ / TWO_PI + 0.5 * s - t1 * dv[0] + t3 * dv[2];
	*df = mt->c * dinteg / TWO_PI + 0.5 * ds - t1 * dv[1] + t3 * dv[3];
}

/*
 * Closed form of the sampled Matérn 3/2 (p = 2) and 5/2 (p = 3) kernel:
 * k(h) = P(a|h|) phi^|h|, phi = e^{-a}, so with z = phi e^{-iw}
 *   f = 1 + 2 Re sum_{h>=1} P(a h) z^h,
 * using sum z^h = z/(1-z), sum h z^h = z/(1-z)^2,
 * sum h^2 z^h = z(1+z)/(1-z)^3, sum h^3 z^h = z(1+4z+z^2)/(1-z)^4.
 * Exact, but f(pi) ~ a^{2p-1} is the difference of O(a) terms, so the
 * relative error grows like eps / a^{2p-2}: used for small ell only.
 */
static void matern_closed(int p, double a, double w, double *f, double *df)
{
	double em1 = expm1(-a), phi = 1.0 + em1, s2 = sin(0.5 * w);
	double complex z = phi * cexp(-I * w);
	/* 1 - z with 1 - phi cos w = (1 - phi) + 2 phi sin^2(w/2) */
	double complex iv = 1.0 / ((-em1 + 2.0 * phi * s2 * s2) + I * phi * sin(w));
	double complex g0 = z * iv, g1 = g0 * iv, g2 = g1 * (1.0 + z) * iv;
	double complex g3;

	if (p == 2) {
		*f = 1.0 + 2.0 * creal(g0 + a * g1);
		*df = 2.0 * a * a * creal(g2);
		return;
	}
	g3 = g1 * (1.0 + 4.0 * z + z * z) * iv * iv;
	*f = 1.0 + 2.0 * creal(g0 + a * g1 + a * a / 3.0 * g2);
	*df = 2.0 * a * a / 3.0 * creal(g2 + a * g3);
}

static void psd_matern(enum strebm_kernel kind, double w, double ell,
		       double *f, double *df)
{
	struct matern mt;
	double sf = 0.0, sd = 0.0, s, ds, tf, td;
	double wn = TWO_PI * (MATERN_ALIAS + 1);
	int m;

	if (kind == STREBM_KERNEL_MATERN32) {
		mt.lam = sqrt(3.0) / ell;
		mt.c = 4.0;
		mt.p = 2;
	} else {
		mt.lam = sqrt(5.0) / ell;
		mt.c = 16.0 / 3.0;
		mt.p = 3;
	}
	if (ell < MATERN_CLOSED_MAX) {
		matern_closed(mt.p, mt.lam, w, f, df);
		return;
	}
	/* tails first: they are the smallest terms */
	matern_tail(&mt, wn + w, &tf, &td);
	sf += tf;
	sd += td;
	matern_tail(&mt, wn - w, &tf, &td);
	sf += tf;
	sd += td;
	for (m = MATERN_ALIAS; m >= 1; m--) {
		matern_s(&mt, w + TWO_PI * m, &s, &ds);
		sf += s;
		sd += ds;
		matern_s(&mt, w - TWO_PI * m, &s, &ds);
		sf += s;
		sd += ds;
	}
	matern_s(&mt, w, &s, &ds);
	*f = sf + s;
	*df = sd + ds;
}

double strebm_kernel_psd_grad(enum strebm_kernel kind, double omega, double ell,
			      double *dlogl)
{
	double f = NAN, df = NAN;

	if (!args_ok(kind, ell) || !isfinite(omega)) {
		if (dlogl)
			*dlogl = NAN;
		return NAN;
	}
	/* f is even and 2 pi periodic: fold omega into [0, pi] */
	omega = fabs(remainder(omega, TWO_PI));
	switch (kind) {
	case STREBM_KERNEL_RBF:
		psd_rbf(omega, ell, &f, &df);
		break;
	case STREBM_KERNEL_MATERN12:
		psd_matern12(omega, ell, &f, &df);
		break;
	case STREBM_KERNEL_MATERN32:
	case STREBM_KERNEL_MATERN52:
		psd_matern(kind, omega, ell, &f, &df);
		break;
	default:
		break;
	}
	if (dlogl)
		*dlogl = df;
	return f;
}

double strebm_kernel_psd(enum strebm_kernel kind, double omega, double ell)
{
	return strebm_kernel_psd_grad(kind, omega, ell, NULL);
}

double strebm_kernel_psd_dlogl(enum strebm_kernel kind, double omega, double ell)
{
	double df;

	strebm_kernel_psd_grad(kind, omega, ell, &df);
	return df;
}

/* ---- canonical order -------------------------------------------------- */

void strebm_lengthscale_canonical(double *ell, size_t n, double lo, double hi)
{
	size_t i, a, b, k;

	if (!ell || n == 0)
		return;
	if (!(lo > 0.0) || !isfinite(lo))
		lo = STREBM_ELL_MIN;
	if (!(hi >= lo) || !isfinite(hi))
		hi = lo > STREBM_ELL_MAX ? lo : STREBM_ELL_MAX;

	for (i = 0; i < n; i++) {
		double v = ell[i];

		if (!(v >= lo))	/* also NaN */
			v = lo;
		if (v > hi)
			v = hi;
		ell[i] = log(v);
	}

	/*
	 * Pool-adjacent-violators in place, with no work array: a block is a
	 * maximal run of bit-identical values (every member of a pooled block
	 * is written with the same double), its weight is its length. Joining
	 * a neighbour that happens to hold the same value does not change the
	 * solution. Each pooling removes at least one run: O(n^2) worst case,
	 * no limit on n.
	 */
	i = 0;
	while (i + 1 < n) {
		double mean;

		if (ell[i] <= ell[i + 1]) {
			i++;
			continue;
		}
		a = i;
		while (a > 0 && ell[a - 1] == ell[i])
			a--;
		b = i + 1;
		while (b + 1 < n && ell[b + 1] == ell[i + 1])
			b++;
		mean = (ell[i] * (double)(i + 1 - a) +
			ell[i + 1] * (double)(b - i)) / (double)(b + 1 - a);
		for (k = a; k <= b; k++)
			ell[k] = mean;
		i = a > 0 ? a - 1 : 0;
	}

	for (i = 0; i < n; i++) {
		double v = exp(ell[i]);

		/* the mean of clamped logs stays in range up to rounding */
		ell[i] = v < lo ? lo : (v > hi ? hi : v);
	}
}
