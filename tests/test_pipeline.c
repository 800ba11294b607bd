/* SPDX-License-Identifier: MIT */
/*
 * Check suite: daemon/pipeline (rings + worker thread + audio callback).
 * The callback's output must be the engine's output delayed by exactly
 * hop + period, whatever the period (also when it changes), and a late
 * worker must give underruns, not a shifted latency.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pipeline.h"
#include "ring.h"
#include "testutil.h"

#define M_ 2
#define K_ 2
#define RATE 16000

static void mix(float *x, size_t n)
{
	double *s0 = malloc(n * sizeof(double)), *s1 = malloc(n * sizeof(double));
	size_t t;

	test_make_source(s0, n, 3.0, 1);
	test_make_source(s1, n, 20.0, 2);
	for (t = 0; t < n; t++) {
		x[t * M_ + 0] = (float)(0.1 * (s0[t] + 0.6 * s1[t]));
		x[t * M_ + 1] = (float)(0.1 * (0.5 * s0[t] - s1[t]));
	}
	free(s0);
	free(s1);
}

/* The reference: the engine fed directly, hop by hop, with the same floats. */
static void reference(const struct strebm_engine_config *ec, const float *x, size_t n, float *y)
{
	struct strebm_engine *e = strebm_engine_create(ec);
	double *in = malloc(ec->M * ec->H * sizeof(double)), *out = malloc(ec->K * ec->H * sizeof(double));
	size_t h, t, m, k;

	ck_assert_ptr_nonnull(e);
	for (h = 0; (h + 1) * ec->H <= n; h++) {
		for (m = 0; m < ec->M; m++)
			for (t = 0; t < ec->H; t++)
				in[m * ec->H + t] = x[(h * ec->H + t) * ec->M + m];
		ck_assert_int_eq(strebm_engine_process(e, in, out), 0);
		for (k = 0; k < ec->K; k++)
			for (t = 0; t < ec->H; t++)
				y[(h * ec->H + t) * ec->K + k] = (float)out[k * ec->H + t];
	}
	strebm_engine_destroy(e);
	free(in);
	free(out);
}

static void wait_for_worker(struct strebmd_pipeline *p, uint64_t hops)
{
	struct timespec ts = { 0, 100000 };
	int i;

	for (i = 0; i < 20000 && strebmd_pipeline_worker_hops(p) < hops; i++)
		nanosleep(&ts, NULL);
}

/* Run n frames through the pipeline with the periods given (cycled). */
static void run(struct strebmd_pipeline *p, size_t H, const float *x, size_t n,
		const size_t *periods, size_t nper, float *y, size_t *delay_at)
{
	float in0[8192], in1[8192], out0[8192], out1[8192];
	const float *in[2] = { in0, in1 };
	float *out[2] = { out0, out1 };
	size_t t = 0, c = 0, i;

	while (t < n) {
		size_t P = periods[c++ % nper];
		if (t + P > n)
			break;
		for (i = 0; i < P; i++) {
			in0[i] = x[(t + i) * M_];
			in1[i] = x[(t + i) * M_ + 1];
		}
		/* a punctual worker: everything completed so far is separated */
		wait_for_worker(p, t / H);
		strebmd_pipeline_audio(p, in, out, P);
		for (i = 0; i < P; i++) {
			y[(t + i) * K_] = out0[i];
			y[(t + i) * K_ + 1] = out1[i];
			delay_at[t + i] = H + P;
		}
		t += P;
	}
}

static void check_periods(const size_t *periods, size_t nper, size_t fixed_delay_from)
{
	struct strebmd_pipeline_config pc;
	struct strebmd_pipeline *p;
	struct strebmd_status st;
	size_t n = RATE * 3, t, k, checked = 0, last_change = 0;
	float *x = malloc(n * M_ * sizeof(float)), *y = calloc(n * K_, sizeof(float));
	float *ref = calloc(n * K_, sizeof(float));
	size_t *delay = calloc(n, sizeof(size_t));

	mix(x, n);
	memset(&pc, 0, sizeof(pc));
	strebm_engine_config_default(&pc.engine, M_, K_, 1024, 256);
	pc.rate = RATE;
	pc.max_period = 8192;
	reference(&pc.engine, x, n, ref);
	p = strebmd_pipeline_create(&pc);
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(strebmd_pipeline_start(p), 0);
	run(p, 256, x, n, periods, nper, y, delay);
	/* output t is the reference at t - (H + P), bit for bit */
	for (t = fixed_delay_from; t < n; t++) {
		if (t && delay[t] != delay[t - 1])
			last_change = t;
		/* after a change, one new latency's worth of frames is a transition */
		if (!delay[t] || t < last_change + delay[t] || t < delay[t])
			continue;
		for (k = 0; k < K_; k++)
			ck_assert_msg(y[t * K_ + k] == ref[(t - delay[t]) * K_ + k],
				      "t %zu k %zu: %g != %g (delay %zu)", t, k, y[t * K_ + k],
				      ref[(t - delay[t]) * K_ + k], delay[t]);
		checked++;
	}
	ck_assert_uint_gt(checked, n / 2);
	strebmd_pipeline_status(p, &st);
	ck_assert_uint_eq(st.underruns, 0);
	strebmd_pipeline_destroy(p);
	free(x);
	free(y);
	free(ref);
	free(delay);
}

START_TEST(test_exact_delay)
{
	static const size_t p256[] = { 256 }, p64[] = { 64 }, p1024[] = { 1024 }, p96[] = { 96 };

	check_periods(p256, 1, 0);
	check_periods(p64, 1, 0);
	check_periods(p1024, 1, 0);
	check_periods(p96, 1, 0);
}
END_TEST

START_TEST(test_changing_period)
{
	/* a buffer-size change mid-stream: a gap or a skip at the change, then
	 * the exact delay for the new period */
	size_t per[200], n = 0, i;

	for (i = 0; i < 40; i++)
		per[n++] = 64;
	for (i = 0; i < 6; i++)
		per[n++] = 512;
	for (i = 0; i < 30; i++)
		per[n++] = 128;
	for (i = 0; i < 2; i++)
		per[n++] = 4096;
	for (i = 0; i < 20; i++)
		per[n++] = 256;
	for (i = 0; i < 60; i++)
		per[n++] = 32;
	check_periods(per, n, 0);
}
END_TEST

START_TEST(test_late_worker_underruns)
{
	struct strebmd_pipeline_config pc;
	struct strebmd_pipeline *p;
	struct strebmd_status st;
	float in0[256] = { 0 }, in1[256] = { 0 }, out0[256], out1[256];
	const float *in[2] = { in0, in1 };
	float *out[2] = { out0, out1 };
	int i;

	memset(&pc, 0, sizeof(pc));
	strebm_engine_config_default(&pc.engine, M_, K_, 1024, 256);
	pc.rate = RATE;
	pc.max_period = 8192;
	pc.fill = STREBMD_FILL_DRY;
	p = strebmd_pipeline_create(&pc);
	ck_assert_ptr_nonnull(p);
	/* no worker running, periods in real time: every period after priming
	 * is an underrun (the worker had a whole period and did not deliver) */
	for (i = 0; i < 20; i++) {
		struct timespec ts = { 0, 16000000 }; /* 256 frames at 16 kHz */
		in0[0] = 0.5f;
		strebmd_pipeline_audio(p, in, out, 256);
		nanosleep(&ts, NULL);
	}
	strebmd_pipeline_status(p, &st);
	ck_assert_uint_eq(st.underruns, 18); /* 2 periods of priming (H + P) */
	ck_assert_uint_eq(st.early, 0);
	/* periods back to back (a server catching up): the worker had no time,
	 * the missing frames are counted apart */
	/* the first two need hops completed during the timed loop: late; the
	 * next three need hops completed in this burst: early */
	for (i = 0; i < 5; i++)
		strebmd_pipeline_audio(p, in, out, 256);
	strebmd_pipeline_status(p, &st);
	ck_assert_uint_eq(st.underruns, 20);
	ck_assert_uint_eq(st.early, 3);
	/* dry fill: the reference channel / K */
	ck_assert_float_eq(out0[0], 0.25f);
	ck_assert_float_eq(out1[0], 0.25f);
	strebmd_pipeline_destroy(p);
}
END_TEST

START_TEST(test_commands_and_status)
{
	struct strebmd_pipeline_config pc;
	struct strebmd_pipeline *p;
	struct strebmd_status st;
	struct strebmd_cmd c = { STREBMD_CMD_GAIN, 1, 0, -6.0 };
	float x[512 * 2] = { 0 }, o0[512], o1[512];
	const float *in[2] = { x, x + 512 };
	float *out[2] = { o0, o1 };
	int i;

	memset(&pc, 0, sizeof(pc));
	strebm_engine_config_default(&pc.engine, M_, K_, 1024, 256);
	pc.rate = RATE;
	pc.max_period = 8192;
	p = strebmd_pipeline_create(&pc);
	ck_assert_int_eq(strebmd_pipeline_start(p), 0);
	ck_assert_int_eq(strebmd_pipeline_post(p, &c), 0);
	c.type = STREBMD_CMD_ELL;
	c.source = 0;
	c.value = 2.0; /* ms */
	ck_assert_int_eq(strebmd_pipeline_post(p, &c), 0);
	/* one the engine refuses when the worker applies it: counted, named */
	c.type = STREBMD_CMD_GAIN;
	c.source = 0;
	c.value = 100.0; /* dB: over the engine's +24 */
	ck_assert_int_eq(strebmd_pipeline_post(p, &c), 0);
	for (i = 0; i < 8; i++) {
		strebmd_pipeline_audio(p, in, out, 512);
		wait_for_worker(p, (uint64_t)(i + 1) * 2);
	}
	wait_for_worker(p, 16);
	strebmd_pipeline_status(p, &st);
	ck_assert_uint_ge(st.hops, 15);
	ck_assert_uint_eq(st.refused, 1);
	ck_assert_int_eq(st.refused_type, STREBMD_CMD_GAIN);
	ck_assert_double_eq(st.gain_db[0], 0.0);
	ck_assert_double_eq_tol(st.gain_db[1], -6.0, 1e-12);
	ck_assert(!st.learn[0]);
	ck_assert_double_eq_tol(st.ell_ms[0], 2.0, 1e-9);
	ck_assert_uint_eq(st.dead_mask, 0); /* 0.25 s of silence: not dead yet */
	strebmd_pipeline_destroy(p);
}
END_TEST

START_TEST(test_ring)
{
	struct strebm_ring *r = strebm_ring_create(3 * sizeof(int), 5);
	int a[30], b[30], i;

	ck_assert_ptr_nonnull(r);
	ck_assert_uint_eq(strebm_ring_capacity(r), 8);
	for (i = 0; i < 30; i++)
		a[i] = i;
	ck_assert_uint_eq(strebm_ring_write(r, a, 6), 6);
	ck_assert_uint_eq(strebm_ring_read(r, b, 4), 4);
	ck_assert_int_eq(memcmp(a, b, 12 * sizeof(int)), 0);
	ck_assert_uint_eq(strebm_ring_write(r, a, 10), 6); /* wraps, then full */
	ck_assert_uint_eq(strebm_ring_write_space(r), 0);
	ck_assert_uint_eq(strebm_ring_skip(r, 2), 2);
	ck_assert_uint_eq(strebm_ring_read(r, b, 10), 6);
	ck_assert_int_eq(memcmp(a, b, 18 * sizeof(int)), 0);
	ck_assert_uint_eq(strebm_ring_consumed(r), 12);
	ck_assert_uint_eq(strebm_ring_produced(r), 12);
	strebm_ring_destroy(r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pipeline");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_ring);
	tcase_add_test(tc, test_exact_delay);
	tcase_add_test(tc, test_changing_period);
	tcase_add_test(tc, test_late_worker_underruns);
	tcase_add_test(tc, test_commands_and_status);
	suite_add_tcase(s, tc);
	return test_run_suite(s);
}
