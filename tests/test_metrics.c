/* SPDX-License-Identifier: MIT */
/* Check suite: core/metrics (SI-SDR, correlation, source matching). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "metrics.h"
#include "testutil.h"

#define N 20000

START_TEST(test_si_sdr_known_snr)
{
	/* est = ref + noise at a known ratio: SI-SDR = 10 log10(rho^2/(1-rho^2)) */
	double *r = malloc(N * sizeof(double)), *e = malloc(N * sizeof(double)), rho, want;
	struct test_rng g = { 3 };
	size_t i;

	for (i = 0; i < N; i++)
		r[i] = test_rng_normal(&g);
	for (i = 0; i < N; i++)
		e[i] = -3.0 * r[i] + 0.3 * test_rng_normal(&g) + 5.0; /* scale, sign, offset */
	rho = strebm_corr(r, e, N);
	want = 10.0 * log10(rho * rho / (1.0 - rho * rho));
	ck_assert_double_eq_tol(strebm_si_sdr(r, e, N), want, 1e-9);
	ck_assert_double_eq_tol(strebm_si_sdr(r, e, N), 20.0, 0.3); /* 10 log10(9/0.09) */
	ck_assert(rho < -0.99);
	for (i = 0; i < N; i++)
		e[i] = 0.0;
	ck_assert_double_eq(strebm_si_sdr(r, e, N), -300.0);
	ck_assert_double_eq(strebm_corr(r, e, N), 0.0);
	free(r);
	free(e);
}
END_TEST

START_TEST(test_match)
{
	size_t K = 3, i, k, perm[3];
	double *R = malloc(K * N * sizeof(double)), *E = malloc(K * N * sizeof(double)), sdr[3];
	struct test_rng g = { 4 };
	static const size_t shuffle[3] = { 2, 0, 1 };

	for (i = 0; i < K * N; i++)
		R[i] = test_rng_normal(&g);
	for (k = 0; k < K; k++)
		for (i = 0; i < N; i++)
			E[shuffle[k] * N + i] = 2.0 * R[k * N + i] + 0.01 * test_rng_normal(&g);
	ck_assert_int_eq(strebm_match_sources(R, E, K, N, perm, sdr), 0);
	for (k = 0; k < K; k++) {
		ck_assert_uint_eq(perm[k], shuffle[k]);
		ck_assert(sdr[k] > 40.0);
	}
	ck_assert_int_eq(strebm_match_sources(R, E, 0, N, perm, sdr), -EINVAL);
	ck_assert_int_eq(strebm_match_sources(R, E, 9, N, perm, sdr), -EINVAL);
	ck_assert_int_eq(strebm_match_sources(NULL, E, K, N, perm, sdr), -EINVAL);
	free(R);
	free(E);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_si_sdr_known_snr);
	tcase_add_test(tc, test_match);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
