/* SPDX-License-Identifier: MIT */
/*
 * Check suite: the engine's hop path is allocation- and lock-free.
 *
 * This executable interposes malloc, calloc, realloc, free, posix_memalign,
 * aligned_alloc and pthread_mutex_lock (forwarding to glibc) and counts the
 * calls made while a flag is set around strebm_engine_process(). It is built
 * without sanitizers (their allocator cannot be interposed this way).
 */
#include <check.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "engine.h"
#include "testutil.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static _Thread_local int armed;
static atomic_int violations;

void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void free(void *p);
int posix_memalign(void **p, size_t a, size_t n);
void *aligned_alloc(size_t a, size_t n);

void *malloc(size_t n)
{
	if (armed)
		atomic_fetch_add(&violations, 1);
	return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
	if (armed)
		atomic_fetch_add(&violations, 1);
	return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
	if (armed)
		atomic_fetch_add(&violations, 1);
	return __libc_realloc(p, n);
}

void free(void *p)
{
	if (armed && p)
		atomic_fetch_add(&violations, 1);
	__libc_free(p);
}

int posix_memalign(void **p, size_t a, size_t n)
{
	if (armed)
		atomic_fetch_add(&violations, 1);
	*p = __libc_memalign(a, n);
	return *p ? 0 : 12;
}

void *aligned_alloc(size_t a, size_t n)
{
	if (armed)
		atomic_fetch_add(&violations, 1);
	return __libc_memalign(a, n);
}

static int (*real_mutex_lock)(pthread_mutex_t *);

__attribute__((constructor)) static void find_real_lock(void)
{
	real_mutex_lock = (int (*)(pthread_mutex_t *))dlsym(RTLD_NEXT, "pthread_mutex_lock");
}

int pthread_mutex_lock(pthread_mutex_t *m)
{
	if (armed)
		atomic_fetch_add(&violations, 1);
	if (!real_mutex_lock)
		find_real_lock();
	return real_mutex_lock(m);
}

START_TEST(test_interposer_works)
{
	/* the counter must see an allocation made while armed */
	void *(*volatile alloc)(size_t) = malloc;
	void *p;

	atomic_store(&violations, 0);
	armed = 1;
	p = alloc(16);
	armed = 0;
	free(p);
	ck_assert_int_eq(atomic_load(&violations), 1);
}
END_TEST

START_TEST(test_process_no_alloc)
{
	static const enum strebm_mode modes[] = { STREBM_MODE_LINEAR, STREBM_MODE_NONLINEAR,
						   STREBM_MODE_CONVOLUTIVE };
	struct strebm_engine_config cfg;
	struct strebm_engine *e;
	size_t M = 3, H = 256, h, i;
	int ret;
	double *in = malloc(M * H * sizeof(double)), *out = malloc(M * H * sizeof(double));
	struct test_rng r = { 17 };

	strebm_engine_config_default(&cfg, M, M, 1024, H);
	cfg.mode = modes[_i];
	e = strebm_engine_create(&cfg);
	ck_assert_ptr_nonnull(e);
	atomic_store(&violations, 0);
	for (h = 0; h < 300; h++) {
		for (i = 0; i < M * H; i++)
			in[i] = test_rng_normal(&r) * (h % 50 < 25 ? 1.0 : 0.3);
		if (h == 100)
			in[5] = 0.0 / 0.0; /* a NaN on the way */
		armed = 1;
		/* setters the control path uses, applied at hop boundaries */
		if (h == 150) {
			strebm_engine_set_gain(e, 0, -3.0);
			strebm_engine_set_mute(e, 1, true);
			strebm_engine_set_ell(e, 2, 4.0, true);
			strebm_engine_set_kernel(e, 1, STREBM_KERNEL_MATERN32);
			strebm_engine_freeze(e, true);
		}
		if (h == 200) {
			strebm_engine_freeze(e, false);
			/* linear -> convolutive -> linear: both cross-faded switches */
			strebm_engine_set_mode(e, _i == 0 ? STREBM_MODE_CONVOLUTIVE
							 : STREBM_MODE_LINEAR);
		}
		if (h == 230 && _i == 0)
			strebm_engine_set_mode(e, STREBM_MODE_LINEAR);
		if (h == 250)
			strebm_engine_reset(e);
		ret = strebm_engine_process(e, in, out);
		armed = 0;
		ck_assert_int_eq(ret, 0);
	}
	ck_assert_msg(atomic_load(&violations) == 0, "%d allocation/lock calls in the hop path",
		      atomic_load(&violations));
	strebm_engine_destroy(e);
	free(in);
	free(out);
}
END_TEST

/* The convolutive solver with every option on (two start-up hypotheses, the
 * permutation check, the GP envelope with length-scale steps, health, the
 * spatial alignment with the line fit and the spatial constraint). */
START_TEST(test_conv_no_alloc)
{
	struct strebm_conv_config cfg;
	struct strebm_conv *c;
	size_t M = 3, H = 128, h, i;
	double *in = malloc(M * H * sizeof(double)), *out = malloc(M * H * sizeof(double));
	struct test_rng r = { 23 };
	struct strebm_conv_status st;
	bool constrained = false;

	strebm_conv_config_default(&cfg, M, M, 512, H);
	cfg.two_starts = true;
	cfg.perm_every = 2;
	cfg.envelope = true;
	cfg.ell_every = 3;
	cfg.startup_hops = 120;
	c = strebm_conv_create(&cfg);
	ck_assert_ptr_nonnull(c);
	atomic_store(&violations, 0);
	for (h = 0; h < 300; h++) {
		for (i = 0; i < M * H; i++)
			in[i] = test_rng_normal(&r) * (h % 40 < 20 ? 1.0 : 0.2) * (i < H ? 2.0 : 1.0);
		armed = 1;
		if (h == 250)
			strebm_conv_set_ell(c, 1, 5.0, true);
		if (h == 260)
			strebm_conv_reset(c);
		strebm_conv_process(c, in, out, h < 270);
		strebm_conv_get_status(c, &st);
		armed = 0;
		constrained |= st.constrained;
	}
	ck_assert_msg(atomic_load(&violations) == 0, "%d allocation/lock calls in the hop path",
		      atomic_load(&violations));
	ck_assert(constrained); /* the line fit and the spatial constraint ran under the check */
	strebm_conv_destroy(c);
	free(in);
	free(out);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rtsafe");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_interposer_works);
	tcase_add_loop_test(tc, test_process_no_alloc, 0, 3);
	tcase_add_test(tc, test_conv_no_alloc);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
