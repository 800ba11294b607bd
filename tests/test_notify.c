/* SPDX-License-Identifier: MIT */
/*
 * Check suite: daemon/notify. The test plays systemd: it binds its own
 * AF_UNIX datagram socket, points $NOTIFY_SOCKET (and $WATCHDOG_USEC,
 * $WATCHDOG_PID) at it, and reads what the daemon side sends: READY=1,
 * STATUS=, RELOADING=1, STOPPING=1, and WATCHDOG=1 at the cadence asked
 * for, stopping while the audio or the worker counter stalls.
 */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "notify.h"
#include "testutil.h"

static char dir[] = "/tmp/strebm-notify-XXXXXX";
static int sock = -1;

static void setup(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", dir);
	sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(sock, 0);
	ck_assert_int_eq(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setenv("NOTIFY_SOCKET", sa.sun_path, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void teardown(void)
{
	char path[PATH_MAX];

	close(sock);
	snprintf(path, sizeof(path), "%s/notify", dir);
	unlink(path);
	rmdir(dir);
}

/* One datagram within timeout_ms, NUL-terminated in buf; false on timeout. */
static bool recv_msg(char *buf, size_t len, int timeout_ms)
{
	struct pollfd p = { sock, POLLIN, 0 };
	ssize_t n;

	if (poll(&p, 1, timeout_ms) <= 0)
		return false;
	n = recv(sock, buf, len - 1, 0);
	ck_assert_int_ge(n, 0);
	buf[n] = 0;
	return true;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

START_TEST(test_lifecycle_messages)
{
	char m[512];

	ck_assert_int_gt(strebmd_notify_ready(), 0);
	ck_assert(recv_msg(m, sizeof(m), 1000));
	ck_assert_str_eq(m, "READY=1");
	ck_assert_int_gt(strebmd_notify_status("linear, K=%d, rtf %.2f, xruns %d\nSTOPPING=1", 2,
					       0.125, 0), 0);
	ck_assert(recv_msg(m, sizeof(m), 1000));
	/* a newline cannot smuggle a second assignment in */
	ck_assert_str_eq(m, "STATUS=linear, K=2, rtf 0.12, xruns 0 STOPPING=1");
	ck_assert_int_gt(strebmd_notify_reloading(), 0);
	ck_assert(recv_msg(m, sizeof(m), 1000));
	ck_assert_str_eq(m, "RELOADING=1");
	ck_assert_int_gt(strebmd_notify_stopping(), 0);
	ck_assert(recv_msg(m, sizeof(m), 1000));
	ck_assert_str_eq(m, "STOPPING=1");
	ck_assert_int_eq(strebmd_notify_status(NULL), -EINVAL);
	ck_assert(!recv_msg(m, sizeof(m), 50));
}
END_TEST

START_TEST(test_not_under_systemd)
{
	struct strebmd_watchdog *w;
	char m[64];

	unsetenv("NOTIFY_SOCKET");
	ck_assert_int_eq(strebmd_notify_ready(), 0);
	ck_assert_int_eq(strebmd_notify_status("x"), 0);
	ck_assert_int_eq(strebmd_notify_stopping(), 0);
	w = strebmd_watchdog_create();
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(strebmd_watchdog_period_usec(w), 0);
	ck_assert_int_eq(strebmd_watchdog_poll(w, 1, 1), 0);
	ck_assert_int_eq(strebmd_watchdog_poll(w, 2, 2), 0);
	ck_assert_int_eq(strebmd_watchdog_kick(w), 0);
	strebmd_watchdog_destroy(w);
	strebmd_watchdog_destroy(NULL);
	ck_assert_int_eq(strebmd_watchdog_poll(NULL, 1, 1), 0);
	ck_assert_uint_eq(strebmd_watchdog_period_usec(NULL), 0);
	ck_assert(!recv_msg(m, sizeof(m), 50));
}
END_TEST

START_TEST(test_watchdog_other_pid)
{
	/* $WATCHDOG_PID names another process: the watchdog is not ours */
	struct strebmd_watchdog *w;
	char v[32];

	setenv("WATCHDOG_USEC", "200000", 1);
	snprintf(v, sizeof(v), "%ld", (long)getpid() + 1);
	setenv("WATCHDOG_PID", v, 1);
	w = strebmd_watchdog_create();
	ck_assert_uint_eq(strebmd_watchdog_period_usec(w), 0);
	strebmd_watchdog_destroy(w);
}
END_TEST

/* The threads whose progress the watchdog watches: each counts its
 * iterations unless told to stall. */
struct fake_thread {
	atomic_uint_fast64_t progress;
	atomic_bool stall, quit;
	long period_us;
	pthread_t th;
};

static void *on_fake_thread(void *arg)
{
	struct fake_thread *f = arg;

	while (!atomic_load(&f->quit)) {
		if (!atomic_load(&f->stall))
			atomic_fetch_add(&f->progress, 1);
		sleep_us(f->period_us);
	}
	return NULL;
}

#define WD_USEC 200000 /* WATCHDOG_USEC: 200 ms */

/*
 * Run the main loop for secs: poll at the period the watchdog asks for,
 * collect the WATCHDOG=1 arrival times. Returns the number of pings; gap
 * receives the longest time without a ping (including from the start and
 * up to the end of the run). mask ORs the poll results.
 */
static int run_loop(struct strebmd_watchdog *w, struct fake_thread *audio,
		    struct fake_thread *worker, double secs, double *gap, int *mask)
{
	double t0 = now_s(), last = t0, t;
	int pings = 0, r;
	char m[64];

	*gap = 0;
	*mask = 0;
	while ((t = now_s()) - t0 < secs) {
		r = strebmd_watchdog_poll(w, atomic_load(&audio->progress),
					  atomic_load(&worker->progress));
		ck_assert_int_ge(r, 0);
		*mask |= r;
		while (recv_msg(m, sizeof(m), 0)) {
			ck_assert_str_eq(m, "WATCHDOG=1");
			t = now_s();
			if (t - last > *gap)
				*gap = t - last;
			last = t;
			pings++;
		}
		sleep_us((long)strebmd_watchdog_period_usec(w));
	}
	if (now_s() - last > *gap)
		*gap = now_s() - last;
	return pings;
}

START_TEST(test_watchdog_cadence_and_stalls)
{
	struct fake_thread audio = { .period_us = 2000 }, worker = { .period_us = 16000 };
	struct strebmd_watchdog *w;
	char v[32];
	double gap;
	int pings, mask;

	snprintf(v, sizeof(v), "%d", WD_USEC);
	setenv("WATCHDOG_USEC", v, 1);
	snprintf(v, sizeof(v), "%ld", (long)getpid());
	setenv("WATCHDOG_PID", v, 1);
	w = strebmd_watchdog_create();
	ck_assert_ptr_nonnull(w);
	ck_assert_uint_eq(strebmd_watchdog_period_usec(w), WD_USEC / 4);
	ck_assert_int_eq(pthread_create(&audio.th, NULL, on_fake_thread, &audio), 0);
	ck_assert_int_eq(pthread_create(&worker.th, NULL, on_fake_thread, &worker), 0);

	/* both make progress: a ping every quarter to half of WATCHDOG_USEC,
	 * never a gap near WATCHDOG_USEC (150 ms leaves room for scheduling) */
	pings = run_loop(w, &audio, &worker, 2.0, &gap, &mask);
	ck_assert_msg(pings >= 2.0 / 0.1 - 2 && pings <= 2.0 / 0.05 + 1, "%d pings in 2 s", pings);
	ck_assert_msg(gap < 0.15, "longest gap %.3f s", gap);
	ck_assert_int_eq(mask & ~STREBMD_WATCHDOG_PINGED, 0);

	/* the worker stalls: at most one more ping (for the hops it did since
	 * the last one), then none at all, and the poll says why */
	atomic_store(&worker.stall, true);
	pings = run_loop(w, &audio, &worker, 0.15, &gap, &mask);
	ck_assert_int_le(pings, 1);
	pings = run_loop(w, &audio, &worker, 1.0, &gap, &mask);
	ck_assert_int_eq(pings, 0);
	ck_assert_int_eq(mask, STREBMD_WATCHDOG_WORKER_STALLED);

	/* it recovers: pings resume within two periods */
	atomic_store(&worker.stall, false);
	pings = run_loop(w, &audio, &worker, 1.0, &gap, &mask);
	ck_assert_msg(pings >= 8, "%d pings after recovery", pings);
	ck_assert(mask & STREBMD_WATCHDOG_PINGED);

	/* the audio callback stalls (a dead JACK server): no ping either */
	atomic_store(&audio.stall, true);
	pings = run_loop(w, &audio, &worker, 0.15, &gap, &mask);
	ck_assert_int_le(pings, 1);
	pings = run_loop(w, &audio, &worker, 1.0, &gap, &mask);
	ck_assert_int_eq(pings, 0);
	ck_assert_int_eq(mask, STREBMD_WATCHDOG_AUDIO_STALLED);

	/* kick: one ping regardless, for start-up phases */
	ck_assert_int_gt(strebmd_watchdog_kick(w), 0);
	ck_assert(recv_msg(v, sizeof(v), 1000));
	ck_assert_str_eq(v, "WATCHDOG=1");

	atomic_store(&audio.quit, true);
	atomic_store(&worker.quit, true);
	pthread_join(audio.th, NULL);
	pthread_join(worker.th, NULL);
	strebmd_watchdog_destroy(w);
}
END_TEST

START_TEST(test_watchdog_send_failure)
{
	/* the socket went away: poll reports the error instead of pinging */
	struct strebmd_watchdog *w;
	char v[32];
	int r = 0, i;

	setenv("WATCHDOG_USEC", "40000", 1);
	snprintf(v, sizeof(v), "%ld", (long)getpid());
	setenv("WATCHDOG_PID", v, 1);
	w = strebmd_watchdog_create();
	setenv("NOTIFY_SOCKET", "/nonexistent/strebm-notify", 1);
	for (i = 1; i < 10 && r == 0; i++) {
		r = strebmd_watchdog_poll(w, (uint64_t)i, (uint64_t)i);
		sleep_us(10000);
	}
	ck_assert_int_lt(r, 0);
	strebmd_watchdog_destroy(w);
}
END_TEST

static Suite *notify_suite(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_lifecycle_messages);
	tcase_add_test(tc, test_not_under_systemd);
	tcase_add_test(tc, test_watchdog_other_pid);
	tcase_add_test(tc, test_watchdog_cadence_and_stalls);
	tcase_add_test(tc, test_watchdog_send_failure);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	/* the tests change the environment: each in its own process */
	return test_run_suite_forked(notify_suite());
}
