/* SPDX-License-Identifier: MIT */
/*
 * strebmd rtprio: realtime privileges. Lock the process's memory and run a
 * thread with SCHED_FIFO when the system permits it, and say plainly what
 * is missing when it does not (a limit, a capability), so the daemon can
 * warn (audio.realtime = try) or refuse to start (audio.realtime = require).
 *
 * Threads: main thread, after the engine, the rings and the backend have
 * allocated their memory and before the stream starts. The thread handed to
 * strebmd_rt_set_fifo() may be any thread of the process.
 */
#ifndef STREBMD_RTPRIO_H
#define STREBMD_RTPRIO_H

#include <pthread.h>
#include <stddef.h>

/** audio.realtime: the same order as the configuration's enum. */
enum strebmd_rt_mode { STREBMD_RT_OFF = 0, STREBMD_RT_TRY = 1, STREBMD_RT_REQUIRE = 2 };

/**
 * mlockall(): the pages mapped now, and future ones too when RLIMIT_MEMLOCK
 * is unlimited (with a finite limit, MCL_FUTURE would make later
 * allocations fail once the limit is reached, so only the present pages
 * are locked and msg says so).
 * @param msg receives a one-line account: what was locked, or why not
 *	(limit, missing CAP_IPC_LOCK, LimitMEMLOCK= to set).
 * @return 0, or -errno (-EPERM, -ENOMEM, -EAGAIN) from mlockall.
 */
int strebmd_rt_lock_memory(char *msg, size_t len);

/**
 * Run thread with SCHED_FIFO at priority (1..99).
 * @param msg receives a one-line account; on failure it names RLIMIT_RTPRIO
 *	(LimitRTPRIO=), CAP_SYS_NICE and the audio group's limits.
 * @return 0, -EINVAL for a priority out of range, or -errno from
 *	pthread_setschedparam (-EPERM when not permitted).
 */
int strebmd_rt_set_fifo(pthread_t thread, int priority, char *msg, size_t len);

/**
 * Both of the above, as audio.realtime asks: OFF does nothing; TRY and
 * REQUIRE lock memory and set SCHED_FIFO on thread.
 * @return 0 when everything asked for was done (msg: a summary, or empty
 *	for OFF); 1 in TRY mode when something was not permitted (msg: the
 *	warning to log); -errno in REQUIRE mode when something failed (msg:
 *	the error; the daemon should exit before READY=1), or -EINVAL for a
 *	bad mode or priority.
 */
int strebmd_rt_apply(enum strebmd_rt_mode mode, pthread_t thread, int priority, char *msg,
		     size_t len);

#endif
