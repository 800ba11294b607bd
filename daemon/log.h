/* SPDX-License-Identifier: MIT */
/*
 * strebmd log: level-checked messages on stderr, one line each.
 *
 * Two forms. On a terminal or a file: "strebmd: error: text" (optionally
 * with a timestamp). Under systemd, when $JOURNAL_STREAM names stderr's
 * device and inode: "<3>text", the syslog priority as a prefix that journald
 * parses, and no timestamp (the journal has its own). Control characters in
 * a message become spaces, so one call is one journal entry.
 *
 * Errors and warnings are rate-limited per format string: more than burst
 * messages from the same format within interval seconds are suppressed, and
 * a line "N similar messages suppressed: <the first one suppressed>" follows
 * when the interval is over (on the next message of any kind, or on
 * strebmd_log_flush()).
 *
 * Threads: every function may be called from the main, worker and OSC
 * threads (a mutex serialises them); never from the audio thread (it
 * formats, locks and writes).
 */
#ifndef STREBMD_LOG_H
#define STREBMD_LOG_H

#include <stdbool.h>

enum strebmd_log_level { LOG_LVL_ERROR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/**
 * Decide the output form from $JOURNAL_STREAM and stderr (fd 2) now. Call
 * it from main() before any thread starts and again after redirecting
 * stderr; the first message calls it when nobody has.
 */
void strebmd_log_init(void);
/** Set the most verbose level printed (default INFO). */
void strebmd_log_set_level(enum strebmd_log_level lvl);
/**
 * Rate limit of errors and warnings: at most burst messages of one format
 * string per interval_s seconds (default 10 per 30 s); burst 0 turns it off.
 */
void strebmd_log_set_ratelimit(unsigned burst, double interval_s);
/** Prefix each line with the local time (not in the journal form; default off). */
void strebmd_log_set_timestamps(bool on);
/** Print one message at lvl, never rate-limited (operator actions: reloads). */
void strebmd_log_always(enum strebmd_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/** Print one message at lvl. */
void strebmd_log(enum strebmd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/**
 * Report every pending count of suppressed messages now (e.g. from the
 * main loop's status timer and before exit). Suppression goes on until
 * each format's interval is over.
 */
void strebmd_log_flush(void);

#define log_error(...) strebmd_log(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) strebmd_log(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) strebmd_log(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) strebmd_log(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
