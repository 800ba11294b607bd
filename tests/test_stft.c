/* SPDX-License-Identifier: MIT */
/* Check suite: core/stft (streaming STFT with exact weighted overlap-add). */
#include <check.h>
#include <complex.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stft.h"
#include "testutil.h"

static const struct {
	size_t N, H;
} shapes[] = {
	{ 2048, 512 }, /* the 16 kHz default */
	{ 256, 64 },
	{ 256, 128 },
	{ 300, 100 },  /* N not a power of two */
	{ 256, 100 },  /* H does not divide N */
	{ 64, 1 },
	{ 64, 63 },
};

/* Analysis then synthesis is the identity, delayed by N - H samples. */
START_TEST(test_perfect_reconstruction)
{
	size_t N = shapes[_i].N, H = shapes[_i].H, C = 2, hops = 40 + 4 * N / H;
	size_t n = hops * H, lag = N - H, F, c, h, t;
	struct strebm_stft *s = strebm_stft_create(N, H, C, C);
	double *x, *y, *in, *out, err = 0.0;
	double complex *X;
	struct test_rng r = { 5 + _i };

	ck_assert_ptr_nonnull(s);
	F = strebm_stft_bins(s);
	ck_assert_uint_eq(F, N / 2 + 1);
	x = malloc(C * n * sizeof(double));
	y = malloc(C * n * sizeof(double));
	in = malloc(C * H * sizeof(double));
	out = malloc(C * H * sizeof(double));
	X = malloc(C * F * sizeof(*X));
	for (t = 0; t < C * n; t++)
		x[t] = test_rng_normal(&r);
	for (h = 0; h < hops; h++) {
		for (c = 0; c < C; c++)
			memcpy(in + c * H, x + c * n + h * H, H * sizeof(double));
		strebm_stft_analyze(s, in, X);
		strebm_stft_synthesize(s, X, out);
		for (c = 0; c < C; c++)
			memcpy(y + c * n + h * H, out + c * H, H * sizeof(double));
	}
	for (c = 0; c < C; c++)
		for (t = lag; t < n; t++)
			err = fmax(err, fabs(y[c * n + t] - x[c * n + t - lag]));
	ck_assert_msg(err < 1e-12, "N %zu H %zu: max error %g", N, H, err);
	strebm_stft_destroy(s);
	free(x);
	free(y);
	free(in);
	free(out);
	free(X);
}
END_TEST

/* A sinusoid on bin b shows up on bin b (periodic Hann: b-1..b+1 only), and
 * reset() clears the history. */
START_TEST(test_analysis_bins_and_reset)
{
	size_t N = 512, H = 128, F, b = 37, h, t, f;
	struct strebm_stft *s = strebm_stft_create(N, H, 1, 1);
	double in[128], out[128], amp = 0.0;
	double complex X[257];

	ck_assert_ptr_nonnull(s);
	F = strebm_stft_bins(s);
	for (h = 0; h < 8; h++) {
		for (t = 0; t < H; t++)
			in[t] = cos(2.0 * M_PI * (double)b * (double)(h * H + t) / (double)N);
		strebm_stft_analyze(s, in, X);
	}
	for (f = 0; f < F; f++) {
		if (f + 1 < b || f > b + 1)
			ck_assert_msg(cabs(X[f]) < 1e-9, "leak on bin %zu: %g", f, cabs(X[f]));
	}
	/* periodic Hann: centre bin N/4 for a unit cosine */
	ck_assert_double_eq_tol(cabs(X[b]), (double)N / 4.0, 1e-8);
	strebm_stft_reset(s);
	memset(in, 0, sizeof(in));
	strebm_stft_analyze(s, in, X);
	for (f = 0; f < F; f++)
		amp = fmax(amp, cabs(X[f]));
	ck_assert(amp == 0.0);
	strebm_stft_synthesize(s, X, out);
	for (t = 0; t < H; t++)
		ck_assert(out[t] == 0.0);
	strebm_stft_destroy(s);
}
END_TEST

START_TEST(test_misuse)
{
	ck_assert_ptr_null(strebm_stft_create(0, 1, 1, 1));
	ck_assert_ptr_null(strebm_stft_create(255, 64, 1, 1)); /* odd N */
	ck_assert_ptr_null(strebm_stft_create(256, 0, 1, 1));
	ck_assert_ptr_null(strebm_stft_create(256, 256, 1, 1)); /* H = N */
	ck_assert_ptr_null(strebm_stft_create(256, 64, 0, 1));
	ck_assert_ptr_null(strebm_stft_create(256, 64, 1, 0));
	strebm_stft_destroy(NULL);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stft");
	TCase *tc = tcase_create("core");

	tcase_add_loop_test(tc, test_perfect_reconstruction, 0,
			    (int)(sizeof(shapes) / sizeof(shapes[0])));
	tcase_add_test(tc, test_analysis_bins_and_reset);
	tcase_add_test(tc, test_misuse);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
