/* SPDX-License-Identifier: MIT */
#include "notify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>
#include <time.h>

int strebmd_notify_ready(void)
{
	return sd_notify(0, "READY=1");
}

int strebmd_notify_reloading(void)
{
	return sd_notify(0, "RELOADING=1");
}

int strebmd_notify_stopping(void)
{
	return sd_notify(0, "STOPPING=1");
}

int strebmd_notify_status(const char *fmt, ...)
{
	char msg[512] = "STATUS=";
	va_list ap;
	char *p;

	if (!fmt)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(msg + 7, sizeof(msg) - 7, fmt, ap);
	va_end(ap);
	/* one assignment per line in the protocol: a newline would start another */
	for (p = msg + 7; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	return sd_notify(0, msg);
}

struct strebmd_watchdog {
	uint64_t usec;        /* WATCHDOG_USEC; 0: off */
	uint64_t last_ping;   /* monotonic usec */
	uint64_t audio, worker; /* counters at the last ping */
	bool have_counts;
};

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct strebmd_watchdog *strebmd_watchdog_create(void)
{
	struct strebmd_watchdog *w = calloc(1, sizeof(*w));
	uint64_t usec = 0;

	if (!w)
		return NULL;
	if (sd_watchdog_enabled(0, &usec) > 0)
		w->usec = usec;
	w->last_ping = now_usec();
	return w;
}

void strebmd_watchdog_destroy(struct strebmd_watchdog *w)
{
	free(w);
}

uint64_t strebmd_watchdog_period_usec(const struct strebmd_watchdog *w)
{
	return w && w->usec ? (w->usec / 4 ? w->usec / 4 : 1) : 0;
}

int strebmd_watchdog_poll(struct strebmd_watchdog *w, uint64_t audio_progress,
			  uint64_t worker_progress)
{
	uint64_t now;
	int res = 0, r;

	if (!w || !w->usec)
		return 0;
	now = now_usec();
	if (!w->have_counts) {
		/* the first poll only takes the reference counts */
		w->audio = audio_progress;
		w->worker = worker_progress;
		w->have_counts = true;
		return 0;
	}
	if (now - w->last_ping < strebmd_watchdog_period_usec(w))
		return 0;
	if (audio_progress == w->audio)
		res |= STREBMD_WATCHDOG_AUDIO_STALLED;
	if (worker_progress == w->worker)
		res |= STREBMD_WATCHDOG_WORKER_STALLED;
	if (res)
		return res;
	r = sd_notify(0, "WATCHDOG=1");
	if (r < 0)
		return r;
	w->last_ping = now;
	w->audio = audio_progress;
	w->worker = worker_progress;
	return STREBMD_WATCHDOG_PINGED;
}

int strebmd_watchdog_kick(struct strebmd_watchdog *w)
{
	int r;

	if (!w || !w->usec)
		return 0;
	r = sd_notify(0, "WATCHDOG=1");
	if (r >= 0)
		w->last_ping = now_usec();
	w->have_counts = false;
	return r;
}
