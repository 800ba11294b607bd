/* SPDX-License-Identifier: MIT */
/*
 * Check suite for core/map: the linear map and the MLP map, forward and
 * backward against central finite differences, the linear initialisation of
 * the MLP, the parameter layout, and misuse.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "map.h"

/* Deterministic uniform(-1, 1) numbers for test data. */
static double urand(uint64_t *state)
{
	*state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
	return (double)(*state >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

static void fill(double *x, size_t n, uint64_t *state, double scale)
{
	size_t i;

	for (i = 0; i < n; i++)
		x[i] = scale * urand(state);
}

static double dot(const double *a, const double *b, size_t n)
{
	double acc = 0.0;
	size_t i;

	for (i = 0; i < n; i++)
		acc += a[i] * b[i];
	return acc;
}

/* ||a - b|| / max(||b||, tiny) */
static double rel_err(const double *a, const double *b, size_t n)
{
	double num = 0.0, den = 0.0;
	size_t i;

	for (i = 0; i < n; i++) {
		num += (a[i] - b[i]) * (a[i] - b[i]);
		den += b[i] * b[i];
	}
	return sqrt(num) / fmax(sqrt(den), 1e-300);
}

/* Sizes for the table-driven cases. */
static const struct {
	size_t M, K, H, T;
} sizes[] = {
	{ 3, 2, 5, 7 },
	{ 1, 1, 1, 1 },
	{ 2, 4, 8, 16 },
	{ 4, 3, 32, 33 },
};
#define N_SIZES (sizeof(sizes) / sizeof(sizes[0]))

/*
 * Linear map: loss L = <W, A S>; dL/dX = W. Checks dA and dS against central
 * differences (L is bilinear, so the differences are exact up to rounding).
 */
START_TEST(test_linear_backward_fd)
{
	const size_t M = sizes[_i].M, K = sizes[_i].K, T = sizes[_i].T;
	const double h = 1e-5;
	uint64_t st = 11 + (uint64_t)_i;
	double *A = calloc(M * K, sizeof(double)), *S = calloc(K * T, sizeof(double));
	double *W = calloc(M * T, sizeof(double)), *X = calloc(M * T, sizeof(double));
	double *dA = calloc(M * K, sizeof(double)), *dS = calloc(K * T, sizeof(double));
	double *fdA = calloc(M * K, sizeof(double)), *fdS = calloc(K * T, sizeof(double));
	size_t i;

	ck_assert(A && S && W && X && dA && dS && fdA && fdS);
	fill(A, M * K, &st, 1.0);
	fill(S, K * T, &st, 1.0);
	fill(W, M * T, &st, 1.0);

	/* dA accumulates: start from a known offset and subtract it after */
	for (i = 0; i < M * K; i++)
		dA[i] = 0.5;
	strebm_linear_backward(A, M, K, S, T, W, dA, dS);
	for (i = 0; i < M * K; i++)
		dA[i] -= 0.5;

	for (i = 0; i < M * K; i++) {
		double a0 = A[i], lp, lm;

		A[i] = a0 + h;
		strebm_linear_forward(A, M, K, S, T, X);
		lp = dot(W, X, M * T);
		A[i] = a0 - h;
		strebm_linear_forward(A, M, K, S, T, X);
		lm = dot(W, X, M * T);
		A[i] = a0;
		fdA[i] = (lp - lm) / (2.0 * h);
	}
	for (i = 0; i < K * T; i++) {
		double s0 = S[i], lp, lm;

		S[i] = s0 + h;
		strebm_linear_forward(A, M, K, S, T, X);
		lp = dot(W, X, M * T);
		S[i] = s0 - h;
		strebm_linear_forward(A, M, K, S, T, X);
		lm = dot(W, X, M * T);
		S[i] = s0;
		fdS[i] = (lp - lm) / (2.0 * h);
	}
	ck_assert_double_le(rel_err(dA, fdA, M * K), 1e-8);
	ck_assert_double_le(rel_err(dS, fdS, K * T), 1e-8);

	/* NULL outputs are skipped */
	strebm_linear_backward(A, M, K, S, T, W, NULL, NULL);

	free(A); free(S); free(W); free(X); free(dA); free(dS); free(fdA); free(fdS);
}
END_TEST

/* Loss for the MLP checks: L = <W, g(S)> + 1/2 ||g(S)||^2, dL/dX = W + X. */
static double mlp_loss(struct strebm_mlp *m, const double *S, size_t T,
		       const double *W, double *X, size_t MT)
{
	ck_assert_int_eq(strebm_mlp_forward(m, S, T, X), 0);
	return dot(W, X, MT) + 0.5 * dot(X, X, MT);
}

START_TEST(test_mlp_backward_fd)
{
	const size_t M = sizes[_i].M, K = sizes[_i].K, H = sizes[_i].H, T = sizes[_i].T;
	const double h = 1e-5;
	uint64_t st = 101 + (uint64_t)_i;
	struct strebm_mlp *m = strebm_mlp_create(K, H, M, T + 3);
	size_t P, i;
	double *p, *S, *W, *X, *dX, *dS, *dP, *fdS, *fdP;

	ck_assert_ptr_nonnull(m);
	P = strebm_mlp_param_count(m);
	ck_assert_uint_eq(P, H * K + H + M * H + M + M * K);
	p = strebm_mlp_params(m);
	fill(p, P, &st, 0.8);  /* every block non-zero, tanh not saturated */
	S = calloc(K * T, sizeof(double));
	W = calloc(M * T, sizeof(double));
	X = calloc(M * T, sizeof(double));
	dX = calloc(M * T, sizeof(double));
	dS = calloc(K * T, sizeof(double));
	dP = calloc(P, sizeof(double));
	fdS = calloc(K * T, sizeof(double));
	fdP = calloc(P, sizeof(double));
	ck_assert(S && W && X && dX && dS && dP && fdS && fdP);
	fill(S, K * T, &st, 1.5);
	fill(W, M * T, &st, 1.0);

	mlp_loss(m, S, T, W, X, M * T);
	for (i = 0; i < M * T; i++)
		dX[i] = W[i] + X[i];
	/* dparams accumulates */
	for (i = 0; i < P; i++)
		dP[i] = 0.25;
	ck_assert_int_eq(strebm_mlp_backward(m, S, T, dX, dS, dP), 0);
	for (i = 0; i < P; i++)
		dP[i] -= 0.25;

	for (i = 0; i < K * T; i++) {
		double s0 = S[i], lp, lm;

		S[i] = s0 + h;
		lp = mlp_loss(m, S, T, W, X, M * T);
		S[i] = s0 - h;
		lm = mlp_loss(m, S, T, W, X, M * T);
		S[i] = s0;
		fdS[i] = (lp - lm) / (2.0 * h);
	}
	for (i = 0; i < P; i++) {
		double p0 = p[i], lp, lm;

		p[i] = p0 + h;
		lp = mlp_loss(m, S, T, W, X, M * T);
		p[i] = p0 - h;
		lm = mlp_loss(m, S, T, W, X, M * T);
		p[i] = p0;
		fdP[i] = (lp - lm) / (2.0 * h);
	}
	/* measured: about 1e-10 relative */
	ck_assert_double_le(rel_err(dS, fdS, K * T), 1e-6);
	ck_assert_double_le(rel_err(dP, fdP, P), 1e-6);

	/* dS only and dparams only give the same numbers */
	mlp_loss(m, S, T, W, X, M * T);
	memset(fdS, 0, K * T * sizeof(double));
	ck_assert_int_eq(strebm_mlp_backward(m, S, T, dX, fdS, NULL), 0);
	ck_assert_double_le(rel_err(fdS, dS, K * T), 1e-14);
	memset(fdP, 0, P * sizeof(double));
	ck_assert_int_eq(strebm_mlp_backward(m, S, T, dX, NULL, fdP), 0);
	ck_assert_double_le(rel_err(fdP, dP, P), 1e-14);

	free(S); free(W); free(X); free(dX); free(dS); free(dP); free(fdS); free(fdP);
	strebm_mlp_destroy(m);
}
END_TEST

/* After init_linear, g(s) = A s (W2 = 0 and b2 = 0 contribute exact zeros). */
START_TEST(test_mlp_init_linear)
{
	const size_t M = sizes[_i].M, K = sizes[_i].K, H = sizes[_i].H, T = sizes[_i].T;
	uint64_t st = 7 + (uint64_t)_i;
	struct strebm_mlp *m = strebm_mlp_create(K, H, M, T);
	double *A = calloc(M * K, sizeof(double)), *S = calloc(K * T, sizeof(double));
	double *X1 = calloc(M * T, sizeof(double)), *X2 = calloc(M * T, sizeof(double));
	const double *p;
	double w1_abs = 0.0;
	size_t i;

	ck_assert(m && A && S && X1 && X2);
	fill(strebm_mlp_params(m), strebm_mlp_param_count(m), &st, 3.0); /* garbage */
	fill(A, M * K, &st, 2.0);
	fill(S, K * T, &st, 2.0);
	strebm_mlp_init_linear(m, A, 0.5, 42);
	ck_assert_int_eq(strebm_mlp_forward(m, S, T, X1), 0);
	strebm_linear_forward(A, M, K, S, T, X2);
	for (i = 0; i < M * T; i++)
		ck_assert_double_eq_tol(X1[i], X2[i], 1e-13 * (1.0 + fabs(X2[i])));

	/* layout: W1 random (non-zero), b1, W2, b2 zero, A copied last */
	p = strebm_mlp_params(m);
	for (i = 0; i < H * K; i++)
		w1_abs += fabs(p[i]);
	ck_assert_double_gt(w1_abs, 0.0);
	for (i = H * K; i < H * K + H + M * H + M; i++)
		ck_assert_double_eq(p[i], 0.0);
	for (i = 0; i < M * K; i++)
		ck_assert_double_eq(p[H * K + H + M * H + M + i], A[i]);

	/* same seed, same W1 */
	{
		struct strebm_mlp *m2 = strebm_mlp_create(K, H, M, T);

		ck_assert_ptr_nonnull(m2);
		strebm_mlp_init_linear(m2, A, 0.5, 42);
		ck_assert_mem_eq(strebm_mlp_params(m2), p, H * K * sizeof(double));
		strebm_mlp_destroy(m2);
	}
	free(A); free(S); free(X1); free(X2);
	strebm_mlp_destroy(m);
}
END_TEST

/* Parameter order W1, b1, W2, b2, A against a hand computation (K=2, H=2, M=1). */
START_TEST(test_mlp_layout)
{
	struct strebm_mlp *m = strebm_mlp_create(2, 2, 1, 1);
	const double W1[4] = { 0.5, -0.25, 0.125, 1.0 }, b1[2] = { 0.1, -0.2 };
	const double W2[2] = { 2.0, -3.0 }, b2 = 0.7, A[2] = { 1.5, -0.5 };
	const double s[2] = { 0.3, -0.6 };
	double *p, x = 0.0, want;

	ck_assert_ptr_nonnull(m);
	ck_assert_uint_eq(strebm_mlp_param_count(m), 4 + 2 + 2 + 1 + 2);
	p = strebm_mlp_params(m);
	memcpy(p, W1, sizeof(W1));
	memcpy(p + 4, b1, sizeof(b1));
	memcpy(p + 6, W2, sizeof(W2));
	p[8] = b2;
	memcpy(p + 9, A, sizeof(A));
	want = W2[0] * tanh(W1[0] * s[0] + W1[1] * s[1] + b1[0]) +
	       W2[1] * tanh(W1[2] * s[0] + W1[3] * s[1] + b1[1]) + b2 +
	       A[0] * s[0] + A[1] * s[1];
	/* S is K x T with T = 1: column (0.3, -0.6) */
	ck_assert_int_eq(strebm_mlp_forward(m, s, 1, &x), 0);
	ck_assert_double_eq_tol(x, want, 1e-14);
	strebm_mlp_destroy(m);
}
END_TEST

START_TEST(test_mlp_misuse)
{
	struct strebm_mlp *m;
	double S[8] = { 0 }, X[8] = { 0 }, dS[8], dP[64];

	ck_assert_ptr_null(strebm_mlp_create(0, 4, 2, 4));
	ck_assert_ptr_null(strebm_mlp_create(2, 0, 2, 4));
	ck_assert_ptr_null(strebm_mlp_create(2, 4, 0, 4));
	ck_assert_ptr_null(strebm_mlp_create(2, 4, 2, 0));
	ck_assert_ptr_null(strebm_mlp_create(2, SIZE_MAX / 4, 2, SIZE_MAX / 4));
	strebm_mlp_destroy(NULL);

	m = strebm_mlp_create(2, 4, 2, 4);
	ck_assert_ptr_nonnull(m);
	/* backward before any forward */
	ck_assert_int_eq(strebm_mlp_backward(m, S, 4, X, dS, dP), -EINVAL);
	ck_assert_int_eq(strebm_mlp_forward(m, S, 5, X), -EINVAL); /* T > max_T */
	ck_assert_int_eq(strebm_mlp_forward(m, S, 0, X), -EINVAL);
	ck_assert_int_eq(strebm_mlp_forward(m, NULL, 4, X), -EINVAL);
	ck_assert_int_eq(strebm_mlp_forward(m, S, 4, NULL), -EINVAL);
	ck_assert_int_eq(strebm_mlp_forward(NULL, S, 4, X), -EINVAL);
	ck_assert_int_eq(strebm_mlp_forward(m, S, 4, X), 0);
	/* backward with a different T than the last forward */
	ck_assert_int_eq(strebm_mlp_backward(m, S, 3, X, dS, dP), -EINVAL);
	ck_assert_int_eq(strebm_mlp_backward(m, S, 4, NULL, dS, dP), -EINVAL);
	ck_assert_int_eq(strebm_mlp_backward(NULL, S, 4, X, dS, dP), -EINVAL);
	ck_assert_int_eq(strebm_mlp_backward(m, S, 4, X, dS, NULL), 0);
	strebm_mlp_destroy(m);

	/* zero sizes in the linear map are no-ops, not crashes */
	strebm_linear_forward(NULL, 0, 2, NULL, 4, NULL);
	strebm_linear_forward(NULL, 2, 2, NULL, 0, NULL);
	strebm_linear_backward(NULL, 2, 0, NULL, 4, NULL, NULL, NULL);
	/* K = 0: X = 0 */
	X[0] = 1.0;
	strebm_linear_forward(NULL, 2, 0, NULL, 4, X);
	ck_assert_double_eq(X[0], 0.0);
}
END_TEST

static Suite *map_suite(void)
{
	Suite *s = suite_create("map");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_linear_backward_fd, 0, (int)N_SIZES);
	tcase_add_loop_test(tc, test_mlp_backward_fd, 0, (int)N_SIZES);
	tcase_add_loop_test(tc, test_mlp_init_linear, 0, (int)N_SIZES);
	tcase_add_test(tc, test_mlp_layout);
	tcase_add_test(tc, test_mlp_misuse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(map_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
