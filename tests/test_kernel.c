/* SPDX-License-Identifier: MIT */
/*
 * Check suite for core/kernel: kernel values and derivatives, discrete-time
 * spectra against a direct DTFT of the sampled kernel, spectrum derivatives
 * against finite differences, canonical length-scale order, names, misuse.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "kernel.h"

#define NKIND STREBM_KERNEL_COUNT

/* ---- reference: direct DTFT of the sampled kernel, long double ------- */

/* k(h; ell) in long double, written independently of kernel.c. */
static long double ref_k(enum strebm_kernel kind, long double h, long double ell)
{
	long double a;

	switch (kind) {
	case STREBM_KERNEL_RBF:
		a = h / ell;
		return expl(-0.5L * a * a);
	case STREBM_KERNEL_MATERN12:
		return expl(-h / ell);
	case STREBM_KERNEL_MATERN32:
		a = sqrtl(3.0L) * h / ell;
		return (1.0L + a) * expl(-a);
	case STREBM_KERNEL_MATERN52:
		a = sqrtl(5.0L) * h / ell;
		return (1.0L + a + a * a / 3.0L) * expl(-a);
	default:
		return 0.0L;
	}
}

/*
 * Grid omega_j = pi j / NW, j = 0..NW. On this grid cos(omega_j h) is
 * cos(pi ((j h) mod 2NW) / NW), taken from a table: exact periodicity, so
 * 10^5 lags cost one multiply-add each.
 */
#define NW 64

static void ref_psd_grid(enum strebm_kernel kind, double ell, long double *out)
{
	long double ctab[2 * NW];
	long double acc[NW + 1] = { 0 };
	unsigned long h, hmax = 1;
	int j;

	for (j = 0; j < 2 * NW; j++)
		ctab[j] = cosl(3.14159265358979323846264338327950288L * j / NW);
	/* last lag with k(h) > 1e-24 (k is decreasing in h) */
	while (ref_k(kind, (long double)hmax, ell) > 1e-24L)
		hmax *= 2;
	for (h = hmax; h >= 1; h--) {
		long double k = ref_k(kind, (long double)h, ell);

		if (k == 0.0L)
			continue;
		for (j = 0; j <= NW; j++)
			acc[j] += k * ctab[((unsigned long)j * h) % (2 * NW)];
	}
	for (j = 0; j <= NW; j++)
		out[j] = 1.0L + 2.0L * acc[j];
}

/*
 * Tolerance: relative 1e-6 (the requirement), plus a floor of 1e-16 of the
 * spectrum's peak for values the reference cannot resolve: at high omega and
 * large ell the true f is ~1e-20 of its peak (Matérn 5/2) or underflows
 * (RBF), below the rounding of a 10^5-lag sum. (The suite passes with a
 * floor of 1e-18; 1e-16 is the margin.) Where f > 1e-6 of its peak the
 * error must also be < 1e-8 relative; kernel.c was checked to 5e-10 relative
 * against a quad-precision closed form over the whole range.
 */
#define PSD_RTOL 1e-6
#define PSD_FLOOR 1e-16

static const double psd_ells[] = { 0.25, 0.4, 0.9, 1.0, 2.5, 7.9, 8.0, 20.0,
				   150.0, 1000.0, 4096.0 };
#define N_PSD_ELLS (sizeof(psd_ells) / sizeof(psd_ells[0]))

START_TEST(test_psd_vs_dtft)
{
	enum strebm_kernel kind = (enum strebm_kernel)(_i / (int)N_PSD_ELLS);
	double ell = psd_ells[_i % (int)N_PSD_ELLS];
	long double ref[NW + 1], peak = 0.0L;
	double worst = 0.0;
	int j;

	ref_psd_grid(kind, ell, ref);
	for (j = 0; j <= NW; j++)
		if (ref[j] > peak)
			peak = ref[j];
	for (j = 0; j <= NW; j++) {
		double w = M_PI * j / NW;
		double f = strebm_kernel_psd(kind, w, ell);
		double err = fabs((double)((long double)f - ref[j]));
		double tol = PSD_RTOL * fabs((double)ref[j]) +
			     PSD_FLOOR * (double)peak;

		ck_assert_msg(isfinite(f) && f >= 0.0, "%s ell=%g w=%g: f=%g",
			      strebm_kernel_name(kind), ell, w, f);
		ck_assert_msg(err <= tol,
			      "%s ell=%g w=%g: f=%.17g ref=%.17Lg err=%.3g tol=%.3g",
			      strebm_kernel_name(kind), ell, w, f, ref[j], err, tol);
		if (ref[j] > 1e-6L * peak && err / (double)ref[j] > worst)
			worst = err / (double)ref[j];
	}
	/* where the reference is well resolved, the error is far below 1e-6 */
	ck_assert_msg(worst < 1e-8, "%s ell=%g: worst rel err %.3g",
		      strebm_kernel_name(kind), ell, worst);
}
END_TEST

/* ---- kernel values ---------------------------------------------------- */

struct kval_case {
	enum strebm_kernel kind;
	double tau, ell, expect;
};

static const struct kval_case kval_cases[] = {
	{ STREBM_KERNEL_RBF, 0.0, 3.0, 1.0 },
	{ STREBM_KERNEL_RBF, 3.0, 3.0, 0.60653065971263342 },	/* e^-1/2 */
	{ STREBM_KERNEL_RBF, -6.0, 3.0, 0.13533528323661270 },	/* e^-2 */
	{ STREBM_KERNEL_MATERN12, 2.0, 2.0, 0.36787944117144233 },
	{ STREBM_KERNEL_MATERN12, -1.0, 0.5, 0.13533528323661270 },
	{ STREBM_KERNEL_MATERN32, 0.0, 5.0, 1.0 },
	/* (1 + sqrt3) e^-sqrt3 */
	{ STREBM_KERNEL_MATERN32, 5.0, 5.0, 0.4833577245965077 },
	/* (1 + sqrt5 + 5/3) e^-sqrt5 */
	{ STREBM_KERNEL_MATERN52, 5.0, 5.0, 0.5239941088318203 },
	{ STREBM_KERNEL_MATERN52, 1e5, 1.0, 0.0 },
};

START_TEST(test_kernel_values)
{
	const struct kval_case *c = &kval_cases[_i];
	double k = strebm_kernel_eval(c->kind, c->tau, c->ell);

	ck_assert_msg(fabs(k - c->expect) <= 1e-14,
		      "%s k(%g; %g) = %.17g, expected %.17g",
		      strebm_kernel_name(c->kind), c->tau, c->ell, k, c->expect);
}
END_TEST

/* dk/dlog ell against central differences in log ell, h = 1e-5. */
START_TEST(test_kernel_dlogl_fd)
{
	static const double taus[] = { 0.0, 0.3, 1.0, 2.0, 5.0, 17.0, 60.0 };
	static const double ells[] = { 0.3, 1.0, 4.0, 25.0 };
	enum strebm_kernel kind = (enum strebm_kernel)_i;
	const double h = 1e-5;
	size_t a, b;

	for (a = 0; a < sizeof(taus) / sizeof(taus[0]); a++) {
		for (b = 0; b < sizeof(ells) / sizeof(ells[0]); b++) {
			double t = taus[a], l = ells[b];
			double an = strebm_kernel_dlogl(kind, t, l);
			double fd = (strebm_kernel_eval(kind, t, l * exp(h)) -
				     strebm_kernel_eval(kind, t, l * exp(-h))) /
				    (2.0 * h);

			/* |k| <= 1: FD error ~h^2 + 1e-16/h ~ 1e-10 */
			ck_assert_msg(fabs(an - fd) <= 1e-8,
				      "%s tau=%g ell=%g: dk=%.12g fd=%.12g",
				      strebm_kernel_name(kind), t, l, an, fd);
			/* even in tau */
			ck_assert(fabs(strebm_kernel_eval(kind, -t, l) -
				       strebm_kernel_eval(kind, t, l)) <= 1e-15);
		}
	}
}
END_TEST

/*
 * df/dlog ell against central differences in log ell (h = 1e-5), on 65
 * frequencies. Tolerance 1e-6 relative to f at that frequency (FD error
 * ~1e-10), plus 1e-15 of the peak for values that underflow. ell values avoid
 * the Matérn method switch at ell = 8 by more than the step.
 */
static const double dpsd_ells[] = { 0.25, 0.7, 1.0, 3.0, 7.9, 8.1, 50.0,
				    1000.0, 4000.0 };
#define N_DPSD_ELLS (sizeof(dpsd_ells) / sizeof(dpsd_ells[0]))

START_TEST(test_psd_dlogl_fd)
{
	enum strebm_kernel kind = (enum strebm_kernel)(_i / (int)N_DPSD_ELLS);
	double ell = dpsd_ells[_i % (int)N_DPSD_ELLS];
	const double h = 1e-5;
	double peak = strebm_kernel_psd(kind, 0.0, ell);
	int j;

	for (j = 0; j <= NW; j++) {
		double w = M_PI * j / NW, d1, d2;
		double f = strebm_kernel_psd_grad(kind, w, ell, &d1);
		double fp = strebm_kernel_psd(kind, w, ell * exp(h));
		double fm = strebm_kernel_psd(kind, w, ell * exp(-h));
		double fd = (fp - fm) / (2.0 * h);

		d2 = strebm_kernel_psd_dlogl(kind, w, ell);
		ck_assert_msg(fabs(d1 - d2) <= 1e-15 * (fabs(d1) + f),
			      "psd_grad and psd_dlogl disagree");
		ck_assert_msg(fabs(f - strebm_kernel_psd(kind, w, ell)) <=
			      1e-15 * f, "psd_grad and psd disagree");
		ck_assert_msg(fabs(d1 - fd) <= 1e-6 * f + 1e-15 * peak,
			      "%s ell=%g w=%g: df=%.12g fd=%.12g f=%.6g",
			      strebm_kernel_name(kind), ell, w, d1, fd, f);
	}
}
END_TEST

/* Folding: f is even and 2 pi periodic; out-of-range inputs are accepted. */
START_TEST(test_psd_fold)
{
	enum strebm_kernel kind = (enum strebm_kernel)_i;
	static const double ws[] = { 0.0, 0.3, 1.7, 3.0 };
	size_t a;

	for (a = 0; a < sizeof(ws) / sizeof(ws[0]); a++) {
		double f = strebm_kernel_psd(kind, ws[a], 6.0);

		ck_assert(fabs(strebm_kernel_psd(kind, -ws[a], 6.0) - f) <=
			  1e-12 * f);
		ck_assert(fabs(strebm_kernel_psd(kind, ws[a] + 2.0 * M_PI,
						 6.0) - f) <= 1e-12 * f);
	}
	/* bounded for extreme length-scales, and white as ell -> 0 */
	ck_assert(isfinite(strebm_kernel_psd(kind, 1.0, 1e-3)));
	ck_assert(fabs(strebm_kernel_psd(kind, 1.0, 1e-3) - 1.0) < 1e-2);
	ck_assert(isfinite(strebm_kernel_psd(kind, 0.0, 1e7)));
	ck_assert(isfinite(strebm_kernel_psd_dlogl(kind, 2.0, 1e7)));
}
END_TEST

/* ---- canonical length-scales ------------------------------------------ */

struct canon_case {
	size_t n;
	double in[6], lo, hi, out[6];
};

static const struct canon_case canon_cases[] = {
	/* already ordered */
	{ 3, { 1.0, 2.0, 3.0 }, 0.25, 4096.0, { 1.0, 2.0, 3.0 } },
	/* reversed: all pooled to the geometric mean 6^(1/3) */
	{ 3, { 3.0, 2.0, 1.0 }, 0.25, 4096.0,
	  { 1.8171205928321397, 1.8171205928321397, 1.8171205928321397 } },
	/* one violator pair: sqrt(10 * 5) */
	{ 3, { 1.0, 10.0, 5.0 }, 0.25, 4096.0,
	  { 1.0, 7.0710678118654752, 7.0710678118654752 } },
	/* clamps */
	{ 2, { 0.01, 1e6 }, 0.25, 4096.0, { 0.25, 4096.0 } },
	{ 2, { 1e6, 0.01 }, 0.25, 4096.0, { 32.0, 32.0 } },	/* sqrt(4096 * 0.25) */
	/* ties stay ties */
	{ 4, { 2.0, 2.0, 8.0, 8.0 }, 1.0, 10.0, { 2.0, 2.0, 8.0, 8.0 } },
	/* pooled block (16, 1) -> 4 meets the left 4: a tie, no more pooling */
	{ 3, { 4.0, 16.0, 1.0 }, 0.25, 4096.0, { 4.0, 4.0, 4.0 } },
	/* two separate violations */
	{ 6, { 2.0, 1.0, 3.0, 5.0, 4.0, 100.0 }, 0.25, 50.0,
	  { 1.4142135623730951, 1.4142135623730951, 3.0, 4.4721359549995794,
	    4.4721359549995794, 50.0 } },
	/* NaN becomes lo; invalid bounds fall back to the defaults */
	{ 2, { NAN, 3.0 }, 0.5, 10.0, { 0.5, 3.0 } },
	{ 2, { 0.1, 5000.0 }, -1.0, NAN, { 0.25, 4096.0 } },
	/* single value */
	{ 1, { 7.0 }, 0.25, 4096.0, { 7.0 } },
};

START_TEST(test_canonical_table)
{
	const struct canon_case *c = &canon_cases[_i];
	double v[6];
	size_t i;

	for (i = 0; i < c->n; i++)
		v[i] = c->in[i];
	strebm_lengthscale_canonical(v, c->n, c->lo, c->hi);
	for (i = 0; i < c->n; i++)
		ck_assert_msg(fabs(v[i] - c->out[i]) <= 1e-12 * c->out[i],
			      "case %d [%zu]: %.17g expected %.17g", _i, i,
			      v[i], c->out[i]);
}
END_TEST

/* Reference isotonic regression (stack PAV with work arrays). */
static void ref_pav(const double *x, size_t n, double *out)
{
	double *mean = malloc(n * sizeof(double));
	size_t *cnt = malloc(n * sizeof(size_t)), nb = 0, i, j, k = 0;

	ck_assert(mean && cnt);
	for (i = 0; i < n; i++) {
		mean[nb] = x[i];
		cnt[nb] = 1;
		nb++;
		while (nb > 1 && mean[nb - 2] > mean[nb - 1]) {
			double m = (mean[nb - 2] * (double)cnt[nb - 2] +
				    mean[nb - 1] * (double)cnt[nb - 1]) /
				   (double)(cnt[nb - 2] + cnt[nb - 1]);

			cnt[nb - 2] += cnt[nb - 1];
			mean[nb - 2] = m;
			nb--;
		}
	}
	for (i = 0; i < nb; i++)
		for (j = 0; j < cnt[i]; j++)
			out[k++] = mean[i];
	free(mean);
	free(cnt);
}

/* Random inputs of several sizes (past 64: no size limit) vs the reference. */
START_TEST(test_canonical_random)
{
	static const size_t sizes[] = { 2, 5, 17, 64, 65, 300 };
	uint64_t st = 0x9E3779B97F4A7C15ull;
	size_t a, i;

	for (a = 0; a < sizeof(sizes) / sizeof(sizes[0]); a++) {
		size_t n = sizes[a];
		double *v = malloc(n * sizeof(double));
		double *lg = malloc(n * sizeof(double));
		double *ref = malloc(n * sizeof(double));

		ck_assert(v && lg && ref);
		for (i = 0; i < n; i++) {
			double u;

			st ^= st << 13;
			st ^= st >> 7;
			st ^= st << 17;
			u = (double)(st >> 11) / 9007199254740992.0;
			/* log-uniform over [0.05, 20000]: some get clamped */
			v[i] = 0.05 * exp(u * log(4e5));
			/* a slowly rising trend with noise */
			v[i] *= 1.0 + (double)i / (double)n;
			lg[i] = log(fmin(fmax(v[i], 0.25), 4096.0));
		}
		ref_pav(lg, n, ref);
		strebm_lengthscale_canonical(v, n, 0.25, 4096.0);
		for (i = 0; i < n; i++) {
			ck_assert(v[i] >= 0.25 && v[i] <= 4096.0);
			if (i > 0)
				ck_assert(v[i] >= v[i - 1]);
			ck_assert_msg(fabs(log(v[i]) - ref[i]) <= 1e-12,
				      "n=%zu [%zu]: %g vs %g", n, i, log(v[i]),
				      ref[i]);
		}
		free(v);
		free(lg);
		free(ref);
	}
}
END_TEST

START_TEST(test_canonical_misuse)
{
	double v = 3.0;

	strebm_lengthscale_canonical(NULL, 4, 0.25, 4096.0);
	strebm_lengthscale_canonical(&v, 0, 0.25, 4096.0);
	ck_assert(v == 3.0);
}
END_TEST

/* ---- names -------------------------------------------------------------- */

START_TEST(test_names_roundtrip)
{
	enum strebm_kernel kind = (enum strebm_kernel)_i, out;
	const char *name = strebm_kernel_name(kind);

	ck_assert_ptr_nonnull(name);
	out = STREBM_KERNEL_COUNT;
	ck_assert_int_eq(strebm_kernel_from_name(name, &out), 0);
	ck_assert_int_eq(out, kind);
}
END_TEST

struct name_case {
	const char *name;
	int ret;
	enum strebm_kernel kind;
};

static const struct name_case name_cases[] = {
	{ "rbf", 0, STREBM_KERNEL_RBF },
	{ "matern12", 0, STREBM_KERNEL_MATERN12 },
	{ "matern32", 0, STREBM_KERNEL_MATERN32 },
	{ "matern52", 0, STREBM_KERNEL_MATERN52 },
	{ "RBF", 0, STREBM_KERNEL_RBF },
	{ "Matern32", 0, STREBM_KERNEL_MATERN32 },
	{ "", -EINVAL, STREBM_KERNEL_COUNT },
	{ "matern", -EINVAL, STREBM_KERNEL_COUNT },
	{ "matern72", -EINVAL, STREBM_KERNEL_COUNT },
	{ "rbf ", -EINVAL, STREBM_KERNEL_COUNT },
	{ "gauss", -EINVAL, STREBM_KERNEL_COUNT },
};

START_TEST(test_names_table)
{
	const struct name_case *c = &name_cases[_i];
	enum strebm_kernel out = STREBM_KERNEL_COUNT;

	ck_assert_int_eq(strebm_kernel_from_name(c->name, &out), c->ret);
	ck_assert_int_eq(out, c->kind);	/* untouched on error */
}
END_TEST

START_TEST(test_names_misuse)
{
	enum strebm_kernel out;

	ck_assert_int_eq(strebm_kernel_from_name(NULL, &out), -EINVAL);
	ck_assert_int_eq(strebm_kernel_from_name("rbf", NULL), -EINVAL);
	ck_assert_ptr_null(strebm_kernel_name(STREBM_KERNEL_COUNT));
	ck_assert_ptr_null(strebm_kernel_name((enum strebm_kernel)-1));
}
END_TEST

/* ---- misuse of the numeric functions ---------------------------------- */

START_TEST(test_numeric_misuse)
{
	enum strebm_kernel bad = STREBM_KERNEL_COUNT;
	double d = 0.0;

	ck_assert(isnan(strebm_kernel_eval(bad, 1.0, 1.0)));
	ck_assert(isnan(strebm_kernel_eval(STREBM_KERNEL_RBF, 1.0, 0.0)));
	ck_assert(isnan(strebm_kernel_eval(STREBM_KERNEL_RBF, 1.0, -2.0)));
	ck_assert(isnan(strebm_kernel_dlogl(STREBM_KERNEL_MATERN32, 1.0, NAN)));
	ck_assert(isnan(strebm_kernel_psd(bad, 1.0, 1.0)));
	ck_assert(isnan(strebm_kernel_psd(STREBM_KERNEL_MATERN52, 1.0, 0.0)));
	ck_assert(isnan(strebm_kernel_psd(STREBM_KERNEL_MATERN12, NAN, 1.0)));
	ck_assert(isnan(strebm_kernel_psd_dlogl(STREBM_KERNEL_RBF, 1.0,
						INFINITY)));
	ck_assert(isnan(strebm_kernel_psd_grad(STREBM_KERNEL_RBF, 1.0, -1.0,
					       &d)));
	ck_assert(isnan(d));
	/* dlogl may be NULL */
	ck_assert(isfinite(strebm_kernel_psd_grad(STREBM_KERNEL_RBF, 1.0, 2.0,
						  NULL)));
}
END_TEST

static Suite *kernel_suite(void)
{
	Suite *s = suite_create("kernel");
	TCase *tc;

	tc = tcase_create("psd");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_psd_vs_dtft, 0, (int)(NKIND * N_PSD_ELLS));
	tcase_add_loop_test(tc, test_psd_dlogl_fd, 0,
			    (int)(NKIND * N_DPSD_ELLS));
	tcase_add_loop_test(tc, test_psd_fold, 0, NKIND);
	suite_add_tcase(s, tc);

	tc = tcase_create("values");
	tcase_add_loop_test(tc, test_kernel_values, 0,
			    (int)(sizeof(kval_cases) / sizeof(kval_cases[0])));
	tcase_add_loop_test(tc, test_kernel_dlogl_fd, 0, NKIND);
	tcase_add_test(tc, test_numeric_misuse);
	suite_add_tcase(s, tc);

	tc = tcase_create("canonical");
	tcase_add_loop_test(tc, test_canonical_table, 0,
			    (int)(sizeof(canon_cases) / sizeof(canon_cases[0])));
	tcase_add_test(tc, test_canonical_random);
	tcase_add_test(tc, test_canonical_misuse);
	suite_add_tcase(s, tc);

	tc = tcase_create("names");
	tcase_add_loop_test(tc, test_names_roundtrip, 0, NKIND);
	tcase_add_loop_test(tc, test_names_table, 0,
			    (int)(sizeof(name_cases) / sizeof(name_cases[0])));
	tcase_add_test(tc, test_names_misuse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(kernel_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
