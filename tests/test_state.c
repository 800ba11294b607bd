/* SPDX-License-Identifier: MIT */
/* Check suite: engine state serialisation (core) and the state file (io). */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine.h"
#include "metrics.h"
#include "statefile.h"
#include "testutil.h"

#define M 2
#define K 2
#define T 512
#define H 128

struct mix {
	size_t n;
	double *S, *X;
};

/* Linear mixture, or (pnl) a post-nonlinear one: tanh per channel. */
static void mix_make(struct mix *m, size_t n, bool pnl)
{
	static const double A[4] = { 1.0, 0.7, -0.6, 1.0 };
	size_t t;

	m->n = n;
	m->S = malloc(K * n * sizeof(double));
	m->X = malloc(M * n * sizeof(double));
	test_make_source(m->S, n, 1.2, 11);
	test_make_source(m->S + n, n, 15.0, 12);
	for (t = 0; t < n; t++) {
		m->X[t] = A[0] * m->S[t] + A[1] * m->S[n + t];
		m->X[n + t] = A[2] * m->S[t] + A[3] * m->S[n + t];
		if (pnl) {
			m->X[t] = tanh(0.7 * m->X[t]);
			m->X[n + t] = tanh(0.7 * m->X[n + t]);
		}
	}
}

static void mix_free(struct mix *m)
{
	free(m->S);
	free(m->X);
}

/* Run samples [start, start + len) of the mixture; Y is K x len. */
static void run(struct strebm_engine *e, const struct mix *m, size_t start, size_t len, double *Y)
{
	double in[M * H], out[K * H];
	size_t s, c, k;

	for (s = 0; s + H <= len; s += H) {
		for (c = 0; c < M; c++)
			memcpy(in + c * H, m->X + c * m->n + start + s, H * sizeof(double));
		ck_assert_int_eq(strebm_engine_process(e, in, out), 0);
		for (k = 0; k < K; k++)
			memcpy(Y + k * len + s, out + k * H, H * sizeof(double));
	}
}

static struct strebm_engine *engine_new(enum strebm_mode mode)
{
	struct strebm_engine_config cfg;

	strebm_engine_config_default(&cfg, M, K, T, H);
	cfg.mode = mode;
	return strebm_engine_create(&cfg);
}

/* Mean SI-SDR (dB) of Y against the true sources over [start, start+len),
 * best permutation. */
static double quality(const struct mix *m, size_t start, size_t len, const double *Y)
{
	double *ref = malloc(K * len * sizeof(double)), sdr[K];
	size_t perm[K], k;

	for (k = 0; k < K; k++)
		memcpy(ref + k * len, m->S + k * m->n + start, len * sizeof(double));
	ck_assert_int_eq(strebm_match_sources(ref, Y, K, len, perm, sdr), 0);
	free(ref);
	return 0.5 * (sdr[0] + sdr[1]);
}

static void *state_of(const struct strebm_engine *e, size_t *n)
{
	void *buf;

	*n = strebm_engine_state_size(e);
	ck_assert_uint_gt(*n, 64);
	buf = malloc(*n);
	ck_assert_int_eq(strebm_engine_save_state(e, buf, *n), 0);
	return buf;
}

/*
 * A state saved from a separated engine makes a new engine separate from its
 * first hops, where a cold one does not yet; and it continues as the
 * original would have.
 */
START_TEST(test_restore_separated)
{
	const enum strebm_mode mode = _i ? STREBM_MODE_NONLINEAR : STREBM_MODE_LINEAR;
	const size_t train = 48000, len = 20 * H; /* the first 20 hops after the load */
	struct mix m;
	struct strebm_engine *a = engine_new(mode), *b = engine_new(mode), *cold = engine_new(mode);
	double *Ytrain = malloc(K * train * sizeof(double));
	double *Ya = malloc(K * len * sizeof(double)), *Yb = malloc(K * len * sizeof(double));
	double *Yc = malloc(K * len * sizeof(double)), qa, qb, qc;
	struct strebm_engine_status sa, sb;
	void *buf;
	size_t n, k;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(cold);
	mix_make(&m, train + len, mode == STREBM_MODE_NONLINEAR);
	run(a, &m, 0, train, Ytrain);
	buf = state_of(a, &n);
	ck_assert_int_eq(strebm_engine_load_state(b, buf, n), 0);
	strebm_engine_get_status(a, &sa);
	strebm_engine_get_status(b, &sb);
	ck_assert_int_eq(sb.mode, mode);
	ck_assert(sb.ready);
	for (k = 0; k < K; k++)
		ck_assert_double_eq_tol(sb.ell[k], sa.ell[k], 1e-12);

	run(a, &m, train, len, Ya);
	run(b, &m, train, len, Yb);
	run(cold, &m, train, len, Yc);
	qa = quality(&m, train, len, Ya);
	qb = quality(&m, train, len, Yb);
	qc = quality(&m, train, len, Yc);
	fprintf(stderr, "%s: SI-SDR first %zu hops: continued %.1f dB, restored %.1f dB, cold %.1f dB\n",
		strebm_mode_name(mode), len / H, qa, qb, qc);
	ck_assert_double_gt(qb, 20.0);
	ck_assert_double_gt(qb, qa - 3.0);
	ck_assert_double_gt(qb, qc + 10.0);
	free(buf);
	free(Ytrain); free(Ya); free(Yb); free(Yc);
	mix_free(&m);
	strebm_engine_destroy(a);
	strebm_engine_destroy(b);
	strebm_engine_destroy(cold);
}
END_TEST

/* Settings travel with the state: mode, gains, mutes, kernels, pins. */
START_TEST(test_settings_roundtrip)
{
	struct strebm_engine *a = engine_new(STREBM_MODE_LINEAR), *b = engine_new(STREBM_MODE_LINEAR);
	struct strebm_engine_status st;
	double in[M * H], out[K * H];
	struct test_rng r = { 5 };
	void *buf, *buf2;
	size_t n, n2, i;

	for (i = 0; i < M * H; i++)
		in[i] = test_rng_normal(&r);
	ck_assert_int_eq(strebm_engine_set_mode(a, STREBM_MODE_NONLINEAR), 0);
	ck_assert_int_eq(strebm_engine_set_gain(a, 1, -12.0), 0);
	ck_assert_int_eq(strebm_engine_set_mute(a, 0, true), 0);
	ck_assert_int_eq(strebm_engine_set_kernel(a, 1, STREBM_KERNEL_MATERN32), 0);
	ck_assert_int_eq(strebm_engine_set_ell(a, 0, 3.5, true), 0);
	buf = state_of(a, &n);
	ck_assert_int_eq(strebm_engine_load_state(b, buf, n), 0);
	/* b saves exactly what a saved */
	buf2 = state_of(b, &n2);
	ck_assert_uint_eq(n, n2);
	ck_assert_int_eq(memcmp(buf, buf2, n), 0);
	strebm_engine_get_status(b, &st);
	ck_assert_int_eq(st.mode, STREBM_MODE_NONLINEAR);
	ck_assert_int_eq(st.next_mode, STREBM_MODE_NONLINEAR);
	ck_assert_double_eq_tol(st.ell[0], 3.5, 1e-12);
	/* the status reports the restored settings (what strebmctl and OSC show) */
	ck_assert(st.pinned[0] && !st.pinned[1]);
	ck_assert_int_eq(st.kernel[0], STREBM_KERNEL_RBF);
	ck_assert_int_eq(st.kernel[1], STREBM_KERNEL_MATERN32);
	ck_assert(st.mute[0] && !st.mute[1]);
	ck_assert_double_eq(st.gain_db[0], 0.0);
	ck_assert_double_eq(st.gain_db[1], -12.0);
	/* the convolutive solver follows the restored kernel and pin */
	ck_assert_int_eq(strebm_engine_set_mode(b, STREBM_MODE_CONVOLUTIVE), 0);
	strebm_engine_get_status(b, &st);
	ck_assert_int_eq(st.next_mode, STREBM_MODE_CONVOLUTIVE);
	ck_assert_int_eq(strebm_engine_process(b, in, out), 0);
	strebm_engine_get_status(b, &st);
	ck_assert_int_eq(st.mode, STREBM_MODE_CONVOLUTIVE);
	ck_assert(st.pinned[0] && !st.pinned[1]);
	ck_assert_int_eq(st.kernel[1], STREBM_KERNEL_MATERN32);
	ck_assert_double_eq_tol(st.ell[0], 3.5, 1e-12);
	{
		/* the bounds OSC checks against are the convolutive solver's now */
		double lo, hi;
		strebm_engine_ell_bounds(b, &lo, &hi);
		ck_assert_double_eq(lo, 0.3);
		ck_assert_double_eq(hi, 200.0);
		ck_assert_int_eq(strebm_engine_set_ell(b, 1, 1.1 * hi, true), -EINVAL);
	}
	/* a pin beyond the linear bounds, set in convolutive mode, is kept at
	 * the nearest bound across a switch */
	{
		double lo, hi, llo, lhi;
		strebm_engine_ell_bounds(b, &lo, &hi);
		ck_assert_int_eq(strebm_engine_set_ell(b, 0, hi, true), 0);
		ck_assert_int_eq(strebm_engine_set_mode(b, STREBM_MODE_LINEAR), 0);
		strebm_engine_ell_bounds(b, &llo, &lhi);
		ck_assert_double_lt(lhi, hi);
		ck_assert_int_eq(strebm_engine_process(b, in, out), 0);
		strebm_engine_get_status(b, &st);
		ck_assert(st.pinned[0]);
		ck_assert_double_eq_tol(st.ell[0], lhi, 1e-12);
		ck_assert_int_eq(strebm_engine_set_ell(b, 0, 3.5, true), 0);
		ck_assert_int_eq(strebm_engine_set_mode(b, STREBM_MODE_CONVOLUTIVE), 0);
		ck_assert_int_eq(strebm_engine_process(b, in, out), 0);
	}
	/* a switch back keeps the pin and the kernel too */
	ck_assert_int_eq(strebm_engine_set_mode(b, STREBM_MODE_LINEAR), 0);
	ck_assert_int_eq(strebm_engine_process(b, in, out), 0);
	strebm_engine_get_status(b, &st);
	ck_assert_int_eq(st.mode, STREBM_MODE_LINEAR);
	ck_assert(st.pinned[0] && !st.pinned[1]);
	ck_assert_int_eq(st.kernel[1], STREBM_KERNEL_MATERN32);
	ck_assert_double_eq_tol(st.ell[0], 3.5, 1e-12);
	ck_assert_int_eq(strebm_engine_load_state(b, buf, n), 0);
	/* the pin holds while audio runs, and the muted source is silent */
	for (i = 0; i < 40; i++)
		ck_assert_int_eq(strebm_engine_process(b, in, out), 0);
	strebm_engine_get_status(b, &st);
	ck_assert_double_eq_tol(st.ell[0], 3.5, 1e-12);
	for (i = 0; i < H; i++)
		ck_assert_double_eq(out[i], 0.0);
	free(buf);
	free(buf2);
	strebm_engine_destroy(a);
	strebm_engine_destroy(b);
}
END_TEST

/* Mismatched, truncated or corrupt states are refused and change nothing. */
START_TEST(test_reject)
{
	struct strebm_engine_config cfg;
	struct strebm_engine *a = engine_new(STREBM_MODE_LINEAR), *b = engine_new(STREBM_MODE_LINEAR);
	struct strebm_engine *other;
	unsigned char *buf, *bad, *before, *after;
	struct test_rng r = { 17 };
	double in[M * H], out[K * H];
	size_t n, i, nb;

	for (i = 0; i < M * H; i++)
		in[i] = test_rng_normal(&r);
	for (i = 0; i < 30; i++)
		ck_assert_int_eq(strebm_engine_process(a, in, out), 0);
	buf = state_of(a, &n);
	before = state_of(b, &nb);
	bad = malloc(n);

	/* misuse */
	ck_assert_int_eq(strebm_engine_load_state(NULL, buf, n), -EINVAL);
	ck_assert_int_eq(strebm_engine_load_state(b, NULL, n), -EINVAL);
	ck_assert_int_eq(strebm_engine_save_state(a, buf, n - 1), -EINVAL);
	ck_assert_uint_eq(strebm_engine_state_size(NULL), 0);
	/* truncated, too long */
	ck_assert_int_eq(strebm_engine_load_state(b, buf, n - 1), -EINVAL);
	ck_assert_int_eq(strebm_engine_load_state(b, buf, 10), -EINVAL);
	/* every header byte, and bytes spread over the payload, flipped */
	for (i = 0; i < n; i += i < 64 ? 1 : 997) {
		memcpy(bad, buf, n);
		bad[i] ^= 0x5a;
		ck_assert_msg(strebm_engine_load_state(b, bad, n) == -EINVAL, "byte %zu", i);
	}
	/* another M, K, hop, window */
	strebm_engine_config_default(&cfg, 3, 2, T, H);
	other = strebm_engine_create(&cfg);
	ck_assert_int_eq(strebm_engine_load_state(other, buf, n), -EINVAL);
	strebm_engine_destroy(other);
	strebm_engine_config_default(&cfg, M, K, T, H / 2);
	other = strebm_engine_create(&cfg);
	ck_assert_int_eq(strebm_engine_load_state(other, buf, n), -EINVAL);
	strebm_engine_destroy(other);
	strebm_engine_config_default(&cfg, M, K, 2 * T, H);
	other = strebm_engine_create(&cfg);
	ck_assert_int_eq(strebm_engine_load_state(other, buf, n), -EINVAL);
	strebm_engine_destroy(other);

	after = state_of(b, &nb);
	ck_assert_int_eq(memcmp(before, after, nb), 0);
	free(buf); free(bad); free(before); free(after);
	strebm_engine_destroy(a);
	strebm_engine_destroy(b);
}
END_TEST

/* The state file: atomic write, read back, errors named. */
START_TEST(test_statefile)
{
	char dir[] = "/tmp/strebm-state-XXXXXX", path[256], err[512];
	struct strebm_engine *a = engine_new(STREBM_MODE_LINEAR), *b = engine_new(STREBM_MODE_LINEAR);
	struct strebm_engine_config cfg;
	struct strebm_engine *other;
	unsigned char *buf, *buf2, small[16];
	size_t n, n2, len = 0;
	FILE *f;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/show.state", dir);
	ck_assert_int_eq(strebm_statefile_save_engine(path, a, err, sizeof(err)), 0);
	/* overwrite (rename over an existing file), no temporary left behind */
	ck_assert_int_eq(strebm_statefile_save_engine(path, a, err, sizeof(err)), 0);
	ck_assert_int_eq(strebm_statefile_load_engine(path, b, err, sizeof(err)), 0);
	buf = state_of(a, &n);
	buf2 = state_of(b, &n2);
	ck_assert_int_eq(memcmp(buf, buf2, n), 0);
	ck_assert_int_eq(strebm_statefile_read(path, small, sizeof(small), &len, err, sizeof(err)), -EFBIG);
	{
		char cmd[600];
		snprintf(cmd, sizeof(cmd), "test $(ls %s | wc -l) -eq 1", dir);
		ck_assert_int_eq(system(cmd), 0);
	}

	/* errors: missing file, directory missing, another engine, garbage */
	err[0] = 0;
	ck_assert_int_eq(strebm_statefile_load_engine("/nonexistent/x.state", b, err, sizeof(err)), -ENOENT);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent/x.state"));
	ck_assert_int_lt(strebm_statefile_save_engine("/nonexistent/x.state", a, err, sizeof(err)), 0);
	strebm_engine_config_default(&cfg, 3, 2, T, H);
	other = strebm_engine_create(&cfg);
	ck_assert_int_eq(strebm_statefile_load_engine(path, other, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "not a state"));
	strebm_engine_destroy(other);
	f = fopen(path, "w");
	fputs("not a state\n", f);
	fclose(f);
	ck_assert_int_eq(strebm_statefile_load_engine(path, b, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(strebm_statefile_load_engine(dir, b, err, sizeof(err)), -EINVAL);

	unlink(path);
	rmdir(dir);
	free(buf);
	free(buf2);
	strebm_engine_destroy(a);
	strebm_engine_destroy(b);
}
END_TEST

static Suite *state_suite(void)
{
	Suite *s = suite_create("state");
	TCase *tc = tcase_create("state");

	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_restore_separated, 0, 2);
	tcase_add_test(tc, test_settings_roundtrip);
	tcase_add_test(tc, test_reject);
	tcase_add_test(tc, test_statefile);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(state_suite());
}
