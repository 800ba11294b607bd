/* SPDX-License-Identifier: MIT */
/* Check suite: core/engine (streaming window engine). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "metrics.h"
#include "testutil.h"

/* Feed n samples of X (M x n) hop by hop, collect Y (K x n). */
static void run(struct strebm_engine *e, const double *X, size_t M, size_t K, size_t H,
		size_t n, double *Y)
{
	double *in = malloc(M * H * sizeof(double)), *out = malloc(K * H * sizeof(double));
	size_t start, m, k;

	for (start = 0; start + H <= n; start += H) {
		for (m = 0; m < M; m++)
			memcpy(in + m * H, X + m * n + start, H * sizeof(double));
		ck_assert_int_eq(strebm_engine_process(e, in, out), 0);
		for (k = 0; k < K; k++)
			memcpy(Y + k * n + start, out + k * H, H * sizeof(double));
	}
	free(in);
	free(out);
}

START_TEST(test_identity_perfect_reconstruction)
{
	/* hop sizes that do and do not divide the window */
	static const size_t hops[] = { 256, 100, 1, 1024 };
	struct strebm_engine_config cfg;
	struct strebm_engine *e;
	size_t M = 3, H = hops[_i], n = H * (4096 / H), i;
	double *X = malloc(M * n * sizeof(double)), *Y = malloc(M * n * sizeof(double));
	struct test_rng r = { 99 };

	for (i = 0; i < M * n; i++)
		X[i] = test_rng_normal(&r);
	strebm_engine_config_default(&cfg, M, M, 1024, H);
	cfg.bypass = true;
	e = strebm_engine_create(&cfg);
	ck_assert_ptr_nonnull(e);
	run(e, X, M, M, H, n, Y);
	for (i = 0; i < M * n; i++)
		ck_assert_double_eq_tol(Y[i], X[i], 1e-12);
	ck_assert_uint_eq(strebm_engine_latency(e), H);
	strebm_engine_destroy(e);
	free(X);
	free(Y);
}
END_TEST

/* Two synthetic sources (S, K x n) and their 2 x 2 instantaneous mixture X. */
static void two_source_mix(double *S, double *X, size_t n)
{
	static const double A[4] = { 1.0, 0.7, -0.6, 1.0 };
	size_t t;

	test_make_source(S, n, 1.2, 11);
	test_make_source(S + n, n, 15.0, 12);
	for (t = 0; t < n; t++) {
		X[t] = A[0] * S[t] + A[1] * S[n + t];
		X[n + t] = A[2] * S[t] + A[3] * S[n + t];
	}
}

/* SI-SDR per matched source of Y against S (both K x n) from sample s0 on;
 * S and Y are compacted in place. */
static void score_from(double *S, double *Y, size_t K, size_t n, size_t s0, double *sdr)
{
	size_t k, perm[STREBM_MAX_SOURCES];

	for (k = 0; k < K; k++) {
		memmove(S + k * (n - s0), S + k * n + s0, (n - s0) * sizeof(double));
		memmove(Y + k * (n - s0), Y + k * n + s0, (n - s0) * sizeof(double));
	}
	ck_assert_int_eq(strebm_match_sources(S, Y, K, n - s0, perm, sdr), 0);
}

START_TEST(test_separates_and_no_clicks)
{
	struct strebm_engine_config cfg;
	struct strebm_engine *e;
	size_t M = 2, K = 2, n = 64000, H = 128, s0 = 16000, k, t;
	double sdr[2], maxjump = 0.0, maxstep = 0.0;
	double *S = malloc(K * n * sizeof(double)), *X = malloc(M * n * sizeof(double));
	double *Y = malloc(K * n * sizeof(double));

	two_source_mix(S, X, n);
	strebm_engine_config_default(&cfg, M, K, 512, H);
	e = strebm_engine_create(&cfg);
	run(e, X, M, K, H, n, Y);
	score_from(S, Y, K, n, s0, sdr);
	for (k = 0; k < K; k++)
		ck_assert_msg(sdr[k] > 20.0, "source %zu: SI-SDR %.1f dB", k, sdr[k]);
	/* click-free: no jump at hop boundaries larger than inside hops */
	for (k = 0; k < K; k++)
		for (t = 1; t < n - s0; t++) {
			double d = fabs(Y[k * (n - s0) + t] - Y[k * (n - s0) + t - 1]);
			if ((t + s0) % H == 0)
				maxjump = fmax(maxjump, d);
			else
				maxstep = fmax(maxstep, d);
		}
	ck_assert_msg(maxjump <= maxstep, "boundary jump %.3g > in-hop step %.3g", maxjump, maxstep);
	strebm_engine_destroy(e);
	free(S); free(X); free(Y);
}
END_TEST

/*
 * Nonlinear mode on a post-nonlinear mixture (tanh on each channel): the
 * joint stage (MLP map, started from the linear solution) takes over once a
 * window is full, separates at least as well as the linear stage alone,
 * puts each source at the reference microphone's level and sign (the
 * images add up to the microphone signal), and switches in without a click.
 */
START_TEST(test_nonlinear_joint)
{
	struct strebm_engine_config cfg;
	struct strebm_engine *e;
	struct strebm_engine_status st;
	size_t M = 2, K = 2, n = 64000, H = 128, s0 = 16000, k, t, run_i;
	double sdr[2][2], sum = 0.0, diff = 0.0, xx = 0.0, xy = 0.0, yy = 0.0;
	double maxjump = 0.0, maxstep = 0.0;
	double *S = malloc(K * n * sizeof(double)), *X = malloc(M * n * sizeof(double));
	double *Y[2], *S2 = malloc(K * n * sizeof(double));

	two_source_mix(S, X, n);
	for (t = 0; t < M * n; t++)
		X[t] = tanh(0.7 * X[t]);
	for (run_i = 0; run_i < 2; run_i++) { /* 0: joint on (default), 1: off */
		Y[run_i] = malloc(K * n * sizeof(double));
		strebm_engine_config_default(&cfg, M, K, 512, H);
		ck_assert_uint_gt(cfg.joint_iters, 0);
		cfg.mode = STREBM_MODE_NONLINEAR;
		if (run_i)
			cfg.joint_iters = 0;
		e = strebm_engine_create(&cfg);
		ck_assert_ptr_nonnull(e);
		run(e, X, M, K, H, n, Y[run_i]);
		strebm_engine_get_status(e, &st);
		ck_assert(st.joint == (run_i == 0));
		ck_assert_uint_eq(st.breakdowns, 0);
		strebm_engine_destroy(e);
	}
	/* the images at microphone 1 add up to it (from s0 on) */
	for (t = s0; t < n; t++) {
		double y = Y[0][t] + Y[0][n + t];
		xx += X[t] * X[t];
		xy += X[t] * y;
		yy += y * y;
		diff += (Y[0][t] - Y[1][t]) * (Y[0][t] - Y[1][t]);
		sum += Y[1][t] * Y[1][t];
	}
	ck_assert_msg(xy / sqrt(xx * yy) > 0.9, "images vs microphone: corr %.3f", xy / sqrt(xx * yy));
	ck_assert_msg(sqrt(yy / xx) > 0.8 && sqrt(yy / xx) < 1.25, "level %.2f", sqrt(yy / xx));
	/* the joint stage changed the output */
	ck_assert_msg(diff > 1e-6 * sum, "joint output equals the linear one");
	for (k = 0; k < K; k++)
		for (t = 1; t < n - s0; t++) {
			double d = fabs(Y[0][k * n + s0 + t] - Y[0][k * n + s0 + t - 1]);
			if ((t + s0) % H == 0)
				maxjump = fmax(maxjump, d);
			else
				maxstep = fmax(maxstep, d);
		}
	ck_assert_msg(maxjump <= maxstep, "boundary jump %.3g > in-hop step %.3g", maxjump, maxstep);
	for (run_i = 0; run_i < 2; run_i++) {
		memcpy(S2, S, K * n * sizeof(double));
		score_from(S2, Y[run_i], K, n, s0, sdr[run_i]);
	}
	fprintf(stderr, "nonlinear PNL: joint %.1f %.1f dB, linear stage only %.1f %.1f dB; "
		"images vs microphone: corr %.3f, level %.2f\n", sdr[0][0], sdr[0][1], sdr[1][0],
		sdr[1][1], xy / sqrt(xx * yy), sqrt(yy / xx));
	for (k = 0; k < K; k++) {
		ck_assert_msg(sdr[0][k] > 20.0, "source %zu: SI-SDR %.1f dB", k, sdr[0][k]);
		ck_assert_msg(sdr[0][k] > sdr[1][k] - 1.0, "source %zu: joint %.1f < linear %.1f - 1",
			      k, sdr[0][k], sdr[1][k]);
	}
	free(S); free(S2); free(X); free(Y[0]); free(Y[1]);
}
END_TEST

/*
 * Nonlinear mode (joint stage on) through everything a live stream can do
 * to it: NaN and absurd bursts, digital silence, freeze, a reset, a state
 * save and load, and switches to linear and convolutive and back. Every
 * output sample stays finite and bounded, and it separates again at the end.
 */
START_TEST(test_nonlinear_abuse)
{
	struct strebm_engine_config cfg;
	struct strebm_engine *e;
	struct strebm_engine_status st;
	const size_t M = 2, K = 2, H = 128, n = 160000, s0 = 112000;
	double *S = malloc(K * n * sizeof(double)), *X = malloc(M * n * sizeof(double));
	double *Y = malloc(K * n * sizeof(double)), in[2 * 128], out[2 * 128], sdr[2];
	void *state = NULL;
	size_t h, i, k, len = 0;

	two_source_mix(S, X, n);
	for (i = 0; i < M * n; i++)
		X[i] = tanh(0.7 * X[i]);
	strebm_engine_config_default(&cfg, M, K, 512, H);
	cfg.mode = STREBM_MODE_NONLINEAR;
	e = strebm_engine_create(&cfg);
	ck_assert_ptr_nonnull(e);
	for (h = 0; h < n / H; h++) {
		for (i = 0; i < M; i++)
			memcpy(in + i * H, X + i * n + h * H, H * sizeof(double));
		if (h >= 100 && h < 110) /* NaN/Inf in one channel */
			in[h % 2 ? 5 : H + 9] = h % 3 ? NAN : -INFINITY;
		if (h >= 130 && h < 135)
			in[H + 1] = 1e300;
		if (h >= 150 && h < 200) /* digital silence */
			memset(in, 0, sizeof(in));
		if (h == 220)
			strebm_engine_freeze(e, true);
		if (h == 260)
			strebm_engine_freeze(e, false);
		if (h == 300) {
			len = strebm_engine_state_size(e);
			state = malloc(len);
			ck_assert_int_eq(strebm_engine_save_state(e, state, len), 0);
			strebm_engine_reset(e);
		}
		if (h == 340)
			ck_assert_int_eq(strebm_engine_load_state(e, state, len), 0);
		if (h == 380)
			ck_assert_int_eq(strebm_engine_set_mode(e, STREBM_MODE_LINEAR), 0);
		if (h == 390 || h == 420)
			ck_assert_int_eq(strebm_engine_set_mode(e, STREBM_MODE_NONLINEAR), 0);
		if (h == 400)
			ck_assert_int_eq(strebm_engine_set_mode(e, STREBM_MODE_CONVOLUTIVE), 0);
		ck_assert_int_eq(strebm_engine_process(e, in, out), 0);
		for (i = 0; i < K * H; i++)
			ck_assert_msg(isfinite(out[i]) && fabs(out[i]) < 10.0, "hop %zu: output %g", h,
				      out[i]);
		for (k = 0; k < K; k++)
			memcpy(Y + k * n + h * H, out + k * H, H * sizeof(double));
	}
	strebm_engine_get_status(e, &st);
	ck_assert_int_eq(st.mode, STREBM_MODE_NONLINEAR);
	ck_assert(st.joint);
	ck_assert_uint_ge(st.nonfinite, 15);
	score_from(S, Y, K, n, s0, sdr);
	for (k = 0; k < K; k++)
		ck_assert_msg(sdr[k] > 20.0, "source %zu at the end: SI-SDR %.1f dB", k, sdr[k]);
	strebm_engine_destroy(e);
	free(state); free(S); free(X); free(Y);
}
END_TEST

START_TEST(test_huge_input_recovers)
{
	/* finite but absurd samples (3e38) for a while must not wreck the model:
	 * they are treated like NaN, counted, and separation goes on */
	struct strebm_engine_config cfg;
	struct strebm_engine *e;
	struct strebm_engine_status st;
	size_t M = 2, K = 2, n = 64000, H = 128, s0 = 32000, k, t;
	double sdr[2];
	double *S = malloc(K * n * sizeof(double)), *X = malloc(M * n * sizeof(double));
	double *Y = malloc(K * n * sizeof(double));

	two_source_mix(S, X, n);
	for (t = 12800; t < 12800 + 20 * H; t++)
		X[t] = (t & 1) ? 3e38 : -3e38;
	strebm_engine_config_default(&cfg, M, K, 512, H);
	e = strebm_engine_create(&cfg);
	run(e, X, M, K, H, n, Y);
	strebm_engine_get_status(e, &st);
	ck_assert_uint_eq(st.nonfinite, 20);
	score_from(S, Y, K, n, s0, sdr);
	for (k = 0; k < K; k++)
		ck_assert_msg(sdr[k] > 20.0, "source %zu after the burst: SI-SDR %.1f dB", k, sdr[k]);
	strebm_engine_destroy(e);
	free(S); free(X); free(Y);
}
END_TEST

START_TEST(test_nonfinite_input)
{
	struct strebm_engine_config cfg;
	struct strebm_engine *e;
	struct strebm_engine_status st;
	size_t M = 2, H = 128, i, h;
	double in[2 * 128], out[2 * 128];
	struct test_rng r = { 5 };

	strebm_engine_config_default(&cfg, M, M, 512, H);
	e = strebm_engine_create(&cfg);
	for (h = 0; h < 200; h++) {
		for (i = 0; i < M * H; i++)
			in[i] = test_rng_normal(&r);
		if (h >= 50 && h < 60) {
			in[3] = NAN;
			in[H + 7] = INFINITY;
		}
		ck_assert_int_eq(strebm_engine_process(e, in, out), 0);
		for (i = 0; i < M * H; i++)
			ck_assert_msg(isfinite(out[i]), "hop %zu: non-finite output", h);
	}
	strebm_engine_get_status(e, &st);
	ck_assert_uint_eq(st.nonfinite, 10);
	ck_assert_uint_eq(st.hops, 200);
	ck_assert(st.ready);
	strebm_engine_destroy(e);
}
END_TEST

START_TEST(test_gain_mute_ramp)
{
	struct strebm_engine_config cfg;
	struct strebm_engine *e;
	size_t M = 2, H = 64, i;
	double in[2 * 64], out[2 * 64], ref[2 * 64];

	strebm_engine_config_default(&cfg, M, M, 256, H);
	cfg.bypass = true;
	e = strebm_engine_create(&cfg);
	for (i = 0; i < M * H; i++)
		in[i] = 1.0;
	strebm_engine_process(e, in, ref);
	ck_assert_int_eq(strebm_engine_set_mute(e, 1, true), 0);
	ck_assert_int_eq(strebm_engine_set_gain(e, 0, -6.0), 0);
	strebm_engine_process(e, in, out);
	/* ramps: start at the old gain, move monotonically towards the new */
	ck_assert_double_eq_tol(out[0], 1.0, 1e-12);
	ck_assert_double_eq_tol(out[H], 1.0, 1e-12);
	for (i = 1; i < H; i++) {
		ck_assert(out[i] <= out[i - 1]);
		ck_assert(out[H + i] <= out[H + i - 1]);
	}
	strebm_engine_process(e, in, out);
	ck_assert_double_eq_tol(out[5], pow(10.0, -6.0 / 20.0), 1e-12);
	ck_assert_double_eq_tol(out[H + 5], 0.0, 1e-12);
	ck_assert_int_eq(strebm_engine_set_gain(e, 2, 0.0), -EINVAL);
	ck_assert_int_eq(strebm_engine_set_gain(e, 0, NAN), -EINVAL);
	ck_assert_int_eq(strebm_engine_set_mute(e, 5, true), -EINVAL);
	strebm_engine_destroy(e);
}
END_TEST

START_TEST(test_freeze_and_reset)
{
	struct strebm_engine_config cfg;
	struct strebm_engine *e;
	struct strebm_engine_status st;
	size_t M = 2, H = 128, i, h;
	double in[2 * 128], out[2 * 128];
	struct test_rng r = { 8 };

	strebm_engine_config_default(&cfg, M, M, 512, H);
	e = strebm_engine_create(&cfg);
	for (h = 0; h < 20; h++) {
		for (i = 0; i < M * H; i++)
			in[i] = test_rng_normal(&r);
		strebm_engine_process(e, in, out);
	}
	strebm_engine_freeze(e, true);
	strebm_engine_get_status(e, &st);
	ck_assert(st.frozen);
	strebm_engine_reset(e);
	strebm_engine_get_status(e, &st);
	ck_assert(!st.ready);
	strebm_engine_destroy(e);
}
END_TEST

START_TEST(test_names_and_misuse)
{
	struct strebm_engine_config cfg;
	enum strebm_mode m;

	ck_assert_int_eq(strebm_mode_from_name("nonlinear", &m), 0);
	ck_assert_int_eq(m, STREBM_MODE_NONLINEAR);
	ck_assert_str_eq(strebm_mode_name(STREBM_MODE_LINEAR), "linear");
	ck_assert_int_eq(strebm_mode_from_name("cubic", &m), -EINVAL);
	ck_assert_ptr_null(strebm_mode_name(STREBM_MODE_COUNT));
	strebm_engine_config_default(&cfg, 2, 2, 512, 1024);
	ck_assert_ptr_null(strebm_engine_create(&cfg)); /* H > T */
	strebm_engine_config_default(&cfg, 2, 3, 512, 128);
	ck_assert_ptr_null(strebm_engine_create(&cfg)); /* K > M */
	strebm_engine_config_default(&cfg, 3, 2, 512, 128);
	cfg.bypass = true;
	ck_assert_ptr_null(strebm_engine_create(&cfg)); /* bypass needs K == M */
	ck_assert_ptr_null(strebm_engine_create(NULL));
	ck_assert_int_eq(strebm_engine_process(NULL, NULL, NULL), -EINVAL);
	strebm_engine_destroy(NULL);
}
END_TEST

static Suite *engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_identity_perfect_reconstruction, 0, 4);
	tcase_add_test(tc, test_separates_and_no_clicks);
	tcase_add_test(tc, test_nonlinear_joint);
	tcase_add_test(tc, test_nonlinear_abuse);
	tcase_add_test(tc, test_nonfinite_input);
	tcase_add_test(tc, test_huge_input_recovers);
	tcase_add_test(tc, test_gain_mute_ramp);
	tcase_add_test(tc, test_freeze_and_reset);
	tcase_add_test(tc, test_names_and_misuse);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(engine_suite());
}
