/* SPDX-License-Identifier: MIT */
/*
 * strebmd notify: the systemd service protocol (sd_notify) and the
 * watchdog that is fed only while the audio callback and the worker both
 * make progress.
 *
 * Outside systemd ($NOTIFY_SOCKET unset) every call is a no-op returning 0,
 * so main() calls them unconditionally.
 *
 * Threads: main thread only (the loop that owns the lifecycle). The
 * progress counters come from the audio and worker threads as atomics the
 * main thread loads and passes in; nothing here is RT-safe.
 */
#ifndef STREBMD_NOTIFY_H
#define STREBMD_NOTIFY_H

#include <stdint.h>

/** READY=1: audio flows, the OSC port is bound. @return >0 sent, 0 not under systemd, -errno. */
int strebmd_notify_ready(void);
/** RELOADING=1 (SIGHUP received; send strebmd_notify_ready() when done). Same returns. */
int strebmd_notify_reloading(void);
/** STOPPING=1 (shutdown began). Same returns. */
int strebmd_notify_stopping(void);
/**
 * STATUS=<one line> (printf format): a summary for `systemctl status`.
 * Newlines and control characters become spaces. Same returns.
 */
int strebmd_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** What strebmd_watchdog_poll() did (flags; 0: nothing was due). */
enum strebmd_watchdog_result {
	STREBMD_WATCHDOG_PINGED = 1,        /* WATCHDOG=1 sent */
	STREBMD_WATCHDOG_AUDIO_STALLED = 2, /* due, but the audio counter did not move */
	STREBMD_WATCHDOG_WORKER_STALLED = 4,/* due, but the worker counter did not move */
};

struct strebmd_watchdog;

/**
 * Read the watchdog interval systemd asks for (sd_watchdog_enabled():
 * $WATCHDOG_USEC, for this pid per $WATCHDOG_PID). The object exists also
 * when the watchdog is off; then polling does nothing.
 * @return the watchdog, or NULL without memory. Free it with
 * strebmd_watchdog_destroy().
 */
struct strebmd_watchdog *strebmd_watchdog_create(void);
/** Free w; NULL is a no-op. */
void strebmd_watchdog_destroy(struct strebmd_watchdog *w);
/**
 * How often to call strebmd_watchdog_poll(): a quarter of WATCHDOG_USEC
 * (pings then land every quarter to half of it). 0 when the watchdog is off.
 */
uint64_t strebmd_watchdog_period_usec(const struct strebmd_watchdog *w);
/**
 * Call every period (a timerfd in the main loop) with the audio callback's
 * and the worker's progress counters (monotonically increasing: periods
 * processed, hops done). Once a period has passed since the last ping,
 * sends WATCHDOG=1 if both counters moved since that ping; otherwise sends
 * nothing, so a stall makes systemd restart the service after WatchdogSec.
 * @return a mask of enum strebmd_watchdog_result (0: not due or off), or
 * -errno when sending failed.
 */
int strebmd_watchdog_poll(struct strebmd_watchdog *w, uint64_t audio_progress,
			  uint64_t worker_progress);
/**
 * WATCHDOG=1 unconditionally, for the phases without audio: start-up
 * before the stream runs (the watchdog runs from the moment systemd starts
 * the process), a long reload. The next poll takes the counters it is given
 * as the new reference; pings resume on the poll after it.
 * @return >0 sent, 0 off, -errno.
 */
int strebmd_watchdog_kick(struct strebmd_watchdog *w);

#endif
