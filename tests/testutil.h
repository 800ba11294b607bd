/* SPDX-License-Identifier: MIT */
/* Small helpers shared by the test suites: a seeded RNG and synthetic
 * sources. Header-only; test code only. */
#ifndef STREBM_TESTUTIL_H
#define STREBM_TESTUTIL_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <check.h>

struct test_rng {
	uint64_t s;
};

static inline uint64_t test_rng_next(struct test_rng *r)
{
	uint64_t x = r->s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	r->s = x;
	return x;
}

static inline double test_rng_uniform(struct test_rng *r)
{
	return ((double)(test_rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

static inline double test_rng_normal(struct test_rng *r)
{
	double u = test_rng_uniform(r), v = test_rng_uniform(r);
	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/*
 * A non-stationary, band-limited source: white noise through a Gaussian
 * smoothing filter of width ell (samples), times a slowly varying envelope
 * (on/off like speech). Unit variance overall, roughly.
 */
static inline void test_make_source(double *s, size_t n, double ell, uint64_t seed)
{
	struct test_rng r = { seed * 2654435761u + 12345u };
	size_t L = (size_t)(4.0 * ell) + 1, i, j;
	double *w = malloc((n + 2 * L) * sizeof(double)), norm = 0.0, var = 0.0;
	double env = 1.0, phase = test_rng_uniform(&r) * 6.28;

	for (i = 0; i < n + 2 * L; i++)
		w[i] = test_rng_normal(&r);
	for (j = 0; j <= 2 * L; j++) {
		double t = (double)j - (double)L;
		norm += exp(-t * t / (2.0 * ell * ell));
	}
	for (i = 0; i < n; i++) {
		double acc = 0.0;
		for (j = 0; j <= 2 * L; j++) {
			double t = (double)j - (double)L;
			acc += exp(-t * t / (2.0 * ell * ell)) * w[i + j];
		}
		env = 0.2 + fabs(sin(phase + 2.0 * M_PI * (double)i / 3000.0 * (1.0 + 0.3 * (double)(seed % 3))));
		s[i] = acc / sqrt(norm) * env;
		var += s[i] * s[i];
	}
	var = sqrt(var / (double)n);
	for (i = 0; i < n; i++)
		s[i] /= var;
	free(w);
}

/* Run one suite (forked, normal output); the exit status for main(). */
static inline int test_run_suite_mode(Suite *s, enum fork_status fork)
{
	SRunner *sr = srunner_create(s);
	int failed;

	if (fork == CK_FORK)
		srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

/* Run s, each test in its own process whatever CK_FORK says (for tests that
 * change the environment, signals or stderr). */
static inline int test_run_suite_forked(Suite *s)
{
	return test_run_suite_mode(s, CK_FORK);
}

static inline int test_run_suite(Suite *s)
{
	return test_run_suite_mode(s, CK_FORK_GETENV);
}

#endif
