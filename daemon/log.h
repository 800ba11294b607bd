/* SPDX-License-Identifier: MIT */
/*
 * strebmd log: level-checked messages on stderr, one line each, with a
 * "<N>" syslog priority prefix when stderr goes to the journal
 * (JOURNAL_STREAM set). Main, worker and OSC threads; never the audio thread.
 */
#ifndef STREBMD_LOG_H
#define STREBMD_LOG_H

enum strebmd_log_level { LOG_LVL_ERROR = 3, LOG_LVL_WARN = 4, LOG_LVL_INFO = 6, LOG_LVL_DEBUG = 7 };

/** Set the most verbose level printed (default INFO). */
void strebmd_log_set_level(enum strebmd_log_level lvl);
/** Print one message at lvl. */
void strebmd_log(enum strebmd_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) strebmd_log(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...) strebmd_log(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...) strebmd_log(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) strebmd_log(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
