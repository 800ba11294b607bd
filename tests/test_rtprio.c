/* SPDX-License-Identifier: MIT */
/*
 * Check suite: daemon/rtprio. Each test runs in its own process, so it may
 * lower its limits and drop capabilities to play an unprivileged service,
 * and check that what is refused is reported with the knob to turn.
 */
#include <check.h>
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "rtprio.h"
#include "testutil.h"

static bool have_cap(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	ck_assert_int_eq(syscall(SYS_capget, &h, d), 0);
	return d[cap / 32].effective & (1u << (cap % 32));
}

/* Drop cap from the effective and permitted sets of this (forked) process. */
static void drop_cap(int cap)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];

	memset(d, 0, sizeof(d));
	ck_assert_int_eq(syscall(SYS_capget, &h, d), 0);
	d[cap / 32].effective &= ~(1u << (cap % 32));
	d[cap / 32].permitted &= ~(1u << (cap % 32));
	ck_assert_int_eq(syscall(SYS_capset, &h, d), 0);
	ck_assert(!have_cap(cap));
}

static void set_limit(int resource, rlim_t v)
{
	struct rlimit rl = { v, v };

	ck_assert_int_eq(setrlimit(resource, &rl), 0);
}

/* An unprivileged service without LimitRTPRIO/LimitMEMLOCK. */
static void unprivileged(void)
{
	drop_cap(CAP_SYS_NICE);
	drop_cap(CAP_IPC_LOCK);
	set_limit(RLIMIT_RTPRIO, 0);
	set_limit(RLIMIT_MEMLOCK, 0);
}

static bool starts_with(const char *s, const char *prefix)
{
	return !strncmp(s, prefix, strlen(prefix));
}

static int policy_of(pthread_t t, int *prio)
{
	struct sched_param sp;
	int policy = -1;

	ck_assert_int_eq(pthread_getschedparam(t, &policy, &sp), 0);
	*prio = sp.sched_priority;
	return policy;
}

START_TEST(test_priority_range)
{
	char msg[512];

	ck_assert_int_eq(strebmd_rt_set_fifo(pthread_self(), 0, msg, sizeof(msg)), -EINVAL);
	ck_assert_msg(strstr(msg, "priority 0 is out of range [1, 99]"), "%s", msg);
	ck_assert_int_eq(strebmd_rt_set_fifo(pthread_self(), 100, msg, sizeof(msg)), -EINVAL);
	ck_assert_int_eq(strebmd_rt_set_fifo(pthread_self(), 10, NULL, 0), -EINVAL);
	ck_assert_int_eq(strebmd_rt_lock_memory(NULL, 0), -EINVAL);
	ck_assert_int_eq(strebmd_rt_apply(STREBMD_RT_TRY, pthread_self(), 0, msg, sizeof(msg)),
			 -EINVAL);
	ck_assert_int_eq(strebmd_rt_apply((enum strebmd_rt_mode)7, pthread_self(), 10, msg,
					  sizeof(msg)), -EINVAL);
	ck_assert_int_eq(strebmd_rt_apply(STREBMD_RT_OFF, pthread_self(), 10, NULL, 0), -EINVAL);
}
END_TEST

START_TEST(test_fifo_refused)
{
	char msg[512];
	int prio;

	unprivileged();
	ck_assert_int_eq(strebmd_rt_set_fifo(pthread_self(), 10, msg, sizeof(msg)), -EPERM);
	ck_assert_msg(strstr(msg, "SCHED_FIFO priority 10 not permitted") &&
		      strstr(msg, "RLIMIT_RTPRIO is 0") && strstr(msg, "LimitRTPRIO=10") &&
		      strstr(msg, "CAP_SYS_NICE"), "%s", msg);
	ck_assert_int_eq(policy_of(pthread_self(), &prio), SCHED_OTHER);
}
END_TEST

static pthread_barrier_t barrier;

static void *on_worker(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&barrier); /* the test sets our policy here */
	pthread_barrier_wait(&barrier);
	return NULL;
}

START_TEST(test_fifo_granted_by_limit)
{
	/* the way the unit grants it: LimitRTPRIO, no capability; applied to
	 * another thread (the worker) */
	struct rlimit rl;
	pthread_t th;
	char msg[512];
	int prio;

	drop_cap(CAP_SYS_NICE);
	ck_assert_int_eq(getrlimit(RLIMIT_RTPRIO, &rl), 0);
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < 20) {
		/* the hard limit forbids it here: then it must be refused, clearly */
		set_limit(RLIMIT_RTPRIO, rl.rlim_max);
		ck_assert_int_eq(strebmd_rt_set_fifo(pthread_self(), 20, msg, sizeof(msg)), -EPERM);
		ck_assert_ptr_nonnull(strstr(msg, "LimitRTPRIO=20"));
		return;
	}
	rl.rlim_cur = 20;
	ck_assert_int_eq(setrlimit(RLIMIT_RTPRIO, &rl), 0);
	pthread_barrier_init(&barrier, NULL, 2);
	ck_assert_int_eq(pthread_create(&th, NULL, on_worker, NULL), 0);
	pthread_barrier_wait(&barrier);
	ck_assert_int_eq(strebmd_rt_set_fifo(th, 21, msg, sizeof(msg)), -EPERM);
	ck_assert_msg(strstr(msg, "RLIMIT_RTPRIO is 20"), "%s", msg);
	ck_assert_msg(strebmd_rt_set_fifo(th, 20, msg, sizeof(msg)) == 0, "%s", msg);
	ck_assert_str_eq(msg, "SCHED_FIFO priority 20");
	ck_assert_int_eq(policy_of(th, &prio), SCHED_FIFO);
	ck_assert_int_eq(prio, 20);
	ck_assert_int_eq(policy_of(pthread_self(), &prio), SCHED_OTHER);
	pthread_barrier_wait(&barrier);
	pthread_join(th, NULL);
}
END_TEST

START_TEST(test_lock_refused)
{
	char msg[512];
	int r;

	unprivileged();
	r = strebmd_rt_lock_memory(msg, sizeof(msg));
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
	/* ASan and TSan replace mlockall() with a no-op (their shadow memory
	 * cannot be locked): the refusal is checked in the plain build */
	ck_assert_int_eq(r, 0);
	ck_assert_msg(strstr(msg, "present pages only: RLIMIT_MEMLOCK is 0 bytes"), "%s", msg);
#else
	ck_assert_msg(r == -EPERM || r == -ENOMEM || r == -EAGAIN, "%d: %s", r, msg);
	ck_assert_msg(strstr(msg, "cannot lock memory") && strstr(msg, "RLIMIT_MEMLOCK 0 bytes") &&
		      strstr(msg, "LimitMEMLOCK=infinity") && strstr(msg, "CAP_IPC_LOCK"), "%s",
		      msg);
#endif
}
END_TEST

START_TEST(test_lock_granted)
{
	/* with CAP_IPC_LOCK (root, or AmbientCapabilities=) the present pages
	 * lock whatever the limit; the limit decides about future ones */
	struct rlimit rl;
	char msg[512];
	int r;

	getrlimit(RLIMIT_MEMLOCK, &rl);
	r = strebmd_rt_lock_memory(msg, sizeof(msg));
	if (have_cap(CAP_IPC_LOCK) || rl.rlim_cur == RLIM_INFINITY) {
		ck_assert_msg(r == 0, "%s", msg);
		if (rl.rlim_cur == RLIM_INFINITY)
			ck_assert_str_eq(msg, "memory locked (present and future pages)");
		else
			ck_assert_msg(strstr(msg, "present pages only"), "%s", msg);
		munlockall();
	} else {
		/* no capability, a finite limit: it depends on the process's size;
		 * either way the account must be clear */
		ck_assert_msg((r == 0 && strstr(msg, "present pages only")) ||
			      (r < 0 && strstr(msg, "LimitMEMLOCK=infinity")), "%d: %s", r, msg);
	}
}
END_TEST

START_TEST(test_apply_modes)
{
	char msg[1024];
	int r, prio;

	unprivileged();
	ck_assert_int_eq(strebmd_rt_apply(STREBMD_RT_OFF, pthread_self(), 60, msg, sizeof(msg)), 0);
	ck_assert_str_eq(msg, "");

	/* try: run anyway, with one warning naming what is missing */
	r = strebmd_rt_apply(STREBMD_RT_TRY, pthread_self(), 60, msg, sizeof(msg));
	ck_assert_int_eq(r, 1);
	ck_assert_msg(starts_with(msg, "running without full realtime privileges: SCHED_FIFO "
				       "priority 60 not permitted"), "%s", msg);
	ck_assert_int_eq(policy_of(pthread_self(), &prio), SCHED_OTHER);

	/* require: refuse, with the reason */
	r = strebmd_rt_apply(STREBMD_RT_REQUIRE, pthread_self(), 60, msg, sizeof(msg));
	ck_assert_int_eq(r, -EPERM);
	ck_assert_msg(starts_with(msg, "audio.realtime=require, but SCHED_FIFO priority 60") &&
		      strstr(msg, "LimitRTPRIO=60"), "%s", msg);
}
END_TEST

START_TEST(test_apply_granted)
{
	/* the service as the unit sets it up: limits raised (within the hard
	 * limits here), capabilities as they are */
	struct rlimit rl;
	char msg[1024];
	int r, prio;

	getrlimit(RLIMIT_RTPRIO, &rl);
	if (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= 10) {
		rl.rlim_cur = 10;
		setrlimit(RLIMIT_RTPRIO, &rl);
	}
	r = strebmd_rt_apply(STREBMD_RT_REQUIRE, pthread_self(), 10, msg, sizeof(msg));
	if (rl.rlim_cur >= 10 || have_cap(CAP_SYS_NICE)) {
		getrlimit(RLIMIT_MEMLOCK, &rl);
		if (have_cap(CAP_IPC_LOCK) || rl.rlim_cur == RLIM_INFINITY) {
			ck_assert_msg(r == 0, "%s", msg);
			ck_assert_msg(starts_with(msg, "realtime: SCHED_FIFO priority 10; memory locked"),
				      "%s", msg);
		} else {
			ck_assert_msg(r == 0 || strstr(msg, "cannot lock memory"), "%s", msg);
		}
		ck_assert_int_eq(policy_of(pthread_self(), &prio), SCHED_FIFO);
		munlockall();
	} else {
		ck_assert_int_eq(r, -EPERM);
	}
}
END_TEST

static Suite *rtprio_suite(void)
{
	Suite *s = suite_create("rtprio");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_priority_range);
	tcase_add_test(tc, test_fifo_refused);
	tcase_add_test(tc, test_fifo_granted_by_limit);
	tcase_add_test(tc, test_lock_refused);
	tcase_add_test(tc, test_lock_granted);
	tcase_add_test(tc, test_apply_modes);
	tcase_add_test(tc, test_apply_granted);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	/* the tests drop privileges and change scheduling: one process each */
	return test_run_suite_forked(rtprio_suite());
}
