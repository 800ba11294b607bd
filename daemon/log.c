/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 1024
#define RL_SLOTS 32
#define RL_SAMPLE 160

/* One format string under rate limiting. */
struct rl_slot {
	const char *fmt;   /* NULL: free */
	double start;      /* this interval began (monotonic s) */
	unsigned count;    /* printed in this interval */
	unsigned suppressed;
	enum strebmd_log_level lvl;
	char sample[RL_SAMPLE]; /* the first message suppressed */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static enum strebmd_log_level max_level = LOG_LVL_INFO;
static int journal = -1; /* -1: not decided yet */
static bool timestamps;
static unsigned rl_burst = 10;
static double rl_interval = 30.0;
static struct rl_slot slots[RL_SLOTS];

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* $JOURNAL_STREAM is "DEV:INO" of the stream systemd connected; it is
 * inherited by children whose stderr may go elsewhere, so compare. */
static int detect_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	char *end;
	struct stat st;

	if (!js || !*js)
		return 0;
	errno = 0;
	dev = strtoull(js, &end, 10);
	if (errno || end == js || *end != ':')
		return 0;
	js = end + 1;
	ino = strtoull(js, &end, 10);
	if (errno || end == js || *end)
		return 0;
	if (fstat(STDERR_FILENO, &st) < 0)
		return 0;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void strebmd_log_init(void)
{
	pthread_mutex_lock(&lock);
	journal = detect_journal();
	pthread_mutex_unlock(&lock);
}

void strebmd_log_set_level(enum strebmd_log_level lvl)
{
	__atomic_store_n(&max_level, lvl, __ATOMIC_RELAXED);
}

void strebmd_log_set_ratelimit(unsigned burst, double interval_s)
{
	pthread_mutex_lock(&lock);
	rl_burst = burst;
	rl_interval = interval_s > 0 ? interval_s : 0;
	memset(slots, 0, sizeof(slots));
	pthread_mutex_unlock(&lock);
}

void strebmd_log_set_timestamps(bool on)
{
	pthread_mutex_lock(&lock);
	timestamps = on;
	pthread_mutex_unlock(&lock);
}

/* Write one line; lock held. */
static void emit(enum strebmd_log_level lvl, const char *text)
{
	static const char *const tag[8] = { "", "", "", "error: ", "warning: ", "", "", "debug: " };
	char ts[48] = "";

	if (journal > 0) {
		fprintf(stderr, "<%d>%s\n", (int)lvl, text);
		return;
	}
	if (timestamps) {
		struct timespec now;
		struct tm tm;
		clock_gettime(CLOCK_REALTIME, &now);
		localtime_r(&now.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
		snprintf(ts + strlen(ts), sizeof(ts) - strlen(ts), ".%03ld ",
			 now.tv_nsec / 1000000);
	}
	fprintf(stderr, "%sstrebmd: %s%s\n", ts, tag[lvl & 7], text);
}

/* Keep the start of a suppressed message, cut at a UTF-8 character boundary. */
static void keep_sample(struct rl_slot *s, const char *line)
{
	size_t n = strnlen(line, RL_SAMPLE - 1);

	if (line[n])
		while (n && ((unsigned char)line[n] & 0xc0) == 0x80)
			n--;
	memcpy(s->sample, line, n);
	s->sample[n] = 0;
}

/* Report slot's suppressed count and start a new interval; lock held. */
static void report(struct rl_slot *s, double now)
{
	char text[RL_SAMPLE + 64];

	snprintf(text, sizeof(text), "%u similar message%s suppressed: %s", s->suppressed,
		 s->suppressed == 1 ? "" : "s", s->sample);
	emit(s->lvl, text);
	s->suppressed = 0;
	s->count = 0;
	s->start = now;
}

/* Close the intervals that are over; lock held. */
static void expire(double now)
{
	size_t i;

	for (i = 0; i < RL_SLOTS; i++) {
		struct rl_slot *s = &slots[i];
		if (!s->fmt || now - s->start < rl_interval)
			continue;
		if (s->suppressed)
			report(s, now);
		s->fmt = NULL;
	}
}

/* The slot of fmt, a new one, or NULL when all are busy; lock held. */
static struct rl_slot *slot_for(const char *fmt, enum strebmd_log_level lvl, double now)
{
	struct rl_slot *free_slot = NULL;
	size_t i;

	for (i = 0; i < RL_SLOTS; i++) {
		if (slots[i].fmt == fmt)
			return &slots[i];
		if (!slots[i].fmt && !free_slot)
			free_slot = &slots[i];
	}
	if (free_slot) {
		memset(free_slot, 0, sizeof(*free_slot));
		free_slot->fmt = fmt;
		free_slot->start = now;
		free_slot->lvl = lvl;
	}
	return free_slot;
}

static void vlog(enum strebmd_log_level lvl, bool limited, const char *fmt, va_list ap)
{
	char line[LINE_MAX_BYTES];
	struct rl_slot *s;
	double now;
	char *p;

	/* the level is read without the lock: a stale value only changes
	 * whether one message is formatted */
	if (lvl > __atomic_load_n(&max_level, __ATOMIC_RELAXED))
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	for (p = line; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';

	pthread_mutex_lock(&lock);
	if (journal < 0)
		journal = detect_journal();
	now = mono_now();
	if (rl_burst && limited) {
		expire(now);
		if (lvl <= LOG_LVL_WARN && (s = slot_for(fmt, lvl, now))) {
			if (s->count >= rl_burst) {
				if (!s->suppressed++)
					keep_sample(s, line);
				pthread_mutex_unlock(&lock);
				return;
			}
			s->count++;
		}
	}
	emit(lvl, line);
	pthread_mutex_unlock(&lock);
}

void strebmd_log(enum strebmd_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, true, fmt, ap);
	va_end(ap);
}

void strebmd_log_always(enum strebmd_log_level lvl, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(lvl, false, fmt, ap);
	va_end(ap);
}

void strebmd_log_flush(void)
{
	double now;
	size_t i;

	pthread_mutex_lock(&lock);
	now = mono_now();
	for (i = 0; i < RL_SLOTS; i++)
		if (slots[i].fmt && slots[i].suppressed) {
			double start = slots[i].start;
			unsigned count = slots[i].count;
			report(&slots[i], now);
			/* the interval goes on: keep suppressing past the burst */
			slots[i].start = start;
			slots[i].count = count;
		}
	fflush(stderr);
	pthread_mutex_unlock(&lock);
}
