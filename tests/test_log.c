/* SPDX-License-Identifier: MIT */
/* Check suite: daemon/log (plain and journal forms, rate limiting, threads).
 * Each test runs in its own forked process with stderr sent to a file. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "testutil.h"

static int cap_fd = -1;

/* Send stderr (fd 2) to a fresh unlinked file. */
static void capture(void)
{
	char path[] = "/tmp/strebm-log-XXXXXX";

	cap_fd = mkstemp(path);
	ck_assert_int_ge(cap_fd, 0);
	unlink(path);
	ck_assert_int_eq(dup2(cap_fd, STDERR_FILENO), STDERR_FILENO);
}

/* Everything written to stderr so far (static buffer). */
static const char *captured(void)
{
	static char buf[1 << 20];
	ssize_t n;

	fflush(stderr);
	n = pread(cap_fd, buf, sizeof(buf) - 1, 0);
	ck_assert_int_ge(n, 0);
	buf[n] = 0;
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void set_journal_stream(long long dev_delta, long long ino_delta)
{
	struct stat st;
	char v[64];

	ck_assert_int_eq(fstat(STDERR_FILENO, &st), 0);
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev + (unsigned long long)dev_delta,
		 (unsigned long long)st.st_ino + (unsigned long long)ino_delta);
	setenv("JOURNAL_STREAM", v, 1);
}

START_TEST(test_plain)
{
	capture();
	unsetenv("JOURNAL_STREAM");
	strebmd_log_init();
	log_error("e%d", 1);
	log_warn("w%d", 1);
	log_info("i%d", 1);
	log_debug("d%d", 1);
	ck_assert_str_eq(captured(), "strebmd: error: e1\nstrebmd: warning: w1\nstrebmd: i1\n");
	strebmd_log_set_level(LOG_LVL_DEBUG);
	log_debug("d%d", 2);
	strebmd_log_set_level(LOG_LVL_ERROR);
	log_warn("hidden");
	ck_assert_str_eq(captured(), "strebmd: error: e1\nstrebmd: warning: w1\nstrebmd: i1\n"
				     "strebmd: debug: d2\n");
}
END_TEST

START_TEST(test_journal)
{
	capture();
	set_journal_stream(0, 0);
	strebmd_log_init();
	strebmd_log_set_timestamps(true); /* the journal has its own */
	strebmd_log_set_level(LOG_LVL_DEBUG);
	log_error("e1");
	log_warn("w1");
	log_info("i1");
	log_debug("d1");
	ck_assert_str_eq(captured(), "<3>e1\n<4>w1\n<6>i1\n<7>d1\n");
}
END_TEST

START_TEST(test_journal_detected_lazily)
{
	/* no strebmd_log_init(): the first message decides */
	capture();
	set_journal_stream(0, 0);
	log_info("hello");
	ck_assert_str_eq(captured(), "<6>hello\n");
}
END_TEST

/* $JOURNAL_STREAM that does not describe stderr: the plain form */
static const char *const not_journal[] = { "", "abc", "1:", ":1", "1:2x", "1 2", "-" };

START_TEST(test_journal_mismatch)
{
	capture();
	if (_i == 0)
		set_journal_stream(0, 1); /* another inode: stderr was redirected */
	else if (_i == 1)
		set_journal_stream(1, 0);
	else
		setenv("JOURNAL_STREAM", not_journal[_i - 2], 1);
	strebmd_log_init();
	log_error("x");
	ck_assert_str_eq(captured(), "strebmd: error: x\n");
}
END_TEST

START_TEST(test_control_characters)
{
	char big[3000];

	capture();
	unsetenv("JOURNAL_STREAM");
	log_info("a\nb\tc\rd");
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	log_info("%s", big);
	{
		const char *out = captured();
		ck_assert(!strncmp(out, "strebmd: a b c d\nstrebmd: yyy", 29));
		/* one line, cut at the line buffer */
		ck_assert_int_eq(count_lines(out), 2);
		ck_assert_uint_eq(strlen(out), strlen("strebmd: a b c d\n") + strlen("strebmd: ") + 1023 + 1);
	}
}
END_TEST

START_TEST(test_timestamps)
{
	regex_t re;

	capture();
	unsetenv("JOURNAL_STREAM");
	strebmd_log_set_timestamps(true);
	log_warn("stamped");
	ck_assert_int_eq(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3} "
				 "strebmd: warning: stamped\n$", REG_EXTENDED), 0);
	ck_assert_msg(regexec(&re, captured(), 0, NULL, 0) == 0, "'%s'", captured());
	regfree(&re);
}
END_TEST

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

START_TEST(test_ratelimit)
{
	int i;

	capture();
	unsetenv("JOURNAL_STREAM");
	strebmd_log_set_ratelimit(3, 0.5);
	for (i = 0; i < 10; i++)
		log_error("disk full on hop %d", i);
	log_warn("another format %d", 1);
	for (i = 0; i < 10; i++)
		log_info("info is not limited %d", i);
	ck_assert_str_eq(captured(), "strebmd: error: disk full on hop 0\n"
				     "strebmd: error: disk full on hop 1\n"
				     "strebmd: error: disk full on hop 2\n"
				     "strebmd: warning: another format 1\n"
				     "strebmd: info is not limited 0\n"
				     "strebmd: info is not limited 1\n"
				     "strebmd: info is not limited 2\n"
				     "strebmd: info is not limited 3\n"
				     "strebmd: info is not limited 4\n"
				     "strebmd: info is not limited 5\n"
				     "strebmd: info is not limited 6\n"
				     "strebmd: info is not limited 7\n"
				     "strebmd: info is not limited 8\n"
				     "strebmd: info is not limited 9\n");
	/* the interval ends: the count comes first, with the first one dropped */
	sleep_s(0.6);
	log_error("disk full on hop %d", 99);
	ck_assert_msg(strstr(captured(), "strebmd: info is not limited 9\n"
					 "strebmd: error: 7 similar messages suppressed: disk full on hop 3\n"
					 "strebmd: error: disk full on hop 99\n"), "%s", captured());
}
END_TEST

START_TEST(test_ratelimit_flush)
{
	int i;
	const char *out;

	capture();
	set_journal_stream(0, 0);
	strebmd_log_set_ratelimit(2, 60);
	for (i = 0; i < 5; i++)
		log_warn("xrun %d", i);
	strebmd_log_flush();
	/* still the same interval: suppressed, then counted again */
	log_warn("xrun %d", 5);
	log_warn("xrun %d", 6);
	strebmd_log_flush();
	strebmd_log_flush(); /* nothing pending: nothing printed */
	out = captured();
	ck_assert_str_eq(out, "<4>xrun 0\n<4>xrun 1\n<4>3 similar messages suppressed: xrun 2\n"
			      "<4>2 similar messages suppressed: xrun 5\n");
}
END_TEST

START_TEST(test_ratelimit_off)
{
	int i;

	capture();
	unsetenv("JOURNAL_STREAM");
	strebmd_log_set_ratelimit(0, 1);
	for (i = 0; i < 50; i++)
		log_error("same %d", i);
	ck_assert_int_eq(count_lines(captured()), 50);
}
END_TEST

#define NTHREADS 4
#define NLINES 500

static void *on_thread(void *arg)
{
	int t = (int)(long)arg, i;

	for (i = 0; i < NLINES; i++) {
		log_info("thread %d line %d", t, i);
		log_error("thread error %d", i); /* rate-limited across threads */
	}
	return NULL;
}

START_TEST(test_threads)
{
	pthread_t th[NTHREADS];
	int t, errors = 0, infos = 0;
	const char *p;

	capture();
	unsetenv("JOURNAL_STREAM");
	strebmd_log_set_ratelimit(5, 60);
	for (t = 0; t < NTHREADS; t++)
		ck_assert_int_eq(pthread_create(&th[t], NULL, on_thread, (void *)(long)t), 0);
	for (t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	strebmd_log_flush();
	for (p = captured(); *p; p = strchr(p, '\n') + 1) {
		int a, b;
		if (sscanf(p, "strebmd: thread %d line %d\n", &a, &b) == 2)
			infos++;
		else if (!strncmp(p, "strebmd: error: thread error ", 29))
			errors++;
		else
			ck_assert_msg(!strncmp(p, "strebmd: error: 1995 similar messages suppressed: ",
					       50), "bad line: %.80s", p);
	}
	ck_assert_int_eq(infos, NTHREADS * NLINES);
	ck_assert_int_eq(errors, 5);
}
END_TEST

static Suite *log_suite(void)
{
	Suite *s = suite_create("log");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_plain);
	tcase_add_test(tc, test_journal);
	tcase_add_test(tc, test_journal_detected_lazily);
	tcase_add_loop_test(tc, test_journal_mismatch, 0,
			    2 + (int)(sizeof(not_journal) / sizeof(not_journal[0])));
	tcase_add_test(tc, test_control_characters);
	tcase_add_test(tc, test_timestamps);
	tcase_add_test(tc, test_ratelimit);
	tcase_add_test(tc, test_ratelimit_flush);
	tcase_add_test(tc, test_ratelimit_off);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	/* the tests redirect stderr: they must run in their own processes */
	return test_run_suite_forked(log_suite());
}
