/* SPDX-License-Identifier: MIT */
#include "rtprio.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>

static void fmt_limit(rlim_t v, char *buf, size_t len)
{
	if (v == RLIM_INFINITY)
		snprintf(buf, len, "unlimited");
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

int strebmd_rt_lock_memory(char *msg, size_t len)
{
	struct rlimit rl = { 0, 0 };
	char lim[32];
	int flags = MCL_CURRENT, e;

	if (!msg || !len)
		return -EINVAL;
	getrlimit(RLIMIT_MEMLOCK, &rl);
	fmt_limit(rl.rlim_cur, lim, sizeof(lim));
	if (rl.rlim_cur == RLIM_INFINITY)
		flags |= MCL_FUTURE;
	if (mlockall(flags) < 0) {
		e = errno;
		snprintf(msg, len, "cannot lock memory: %s (RLIMIT_MEMLOCK %s bytes; needs "
			 "LimitMEMLOCK=infinity, the audio group's memlock limit, or "
			 "CAP_IPC_LOCK)", strerror(e), lim);
		return -e;
	}
	if (flags & MCL_FUTURE)
		snprintf(msg, len, "memory locked (present and future pages)");
	else
		snprintf(msg, len, "memory locked (present pages only: RLIMIT_MEMLOCK is %s "
			 "bytes; LimitMEMLOCK=infinity locks later allocations too)", lim);
	return 0;
}

int strebmd_rt_set_fifo(pthread_t thread, int priority, char *msg, size_t len)
{
	struct sched_param sp;
	struct rlimit rl = { 0, 0 };
	char lim[32];
	int r;

	if (!msg || !len)
		return -EINVAL;
	if (priority < sched_get_priority_min(SCHED_FIFO) ||
	    priority > sched_get_priority_max(SCHED_FIFO)) {
		snprintf(msg, len, "realtime priority %d is out of range [%d, %d]", priority,
			 sched_get_priority_min(SCHED_FIFO), sched_get_priority_max(SCHED_FIFO));
		return -EINVAL;
	}
	memset(&sp, 0, sizeof(sp));
	sp.sched_priority = priority;
	r = pthread_setschedparam(thread, SCHED_FIFO, &sp);
	if (r) {
		getrlimit(RLIMIT_RTPRIO, &rl);
		fmt_limit(rl.rlim_cur, lim, sizeof(lim));
		if (r == EPERM)
			snprintf(msg, len, "SCHED_FIFO priority %d not permitted (RLIMIT_RTPRIO "
				 "is %s; needs LimitRTPRIO=%d or more, the audio group's rtprio "
				 "limit, or CAP_SYS_NICE; a cgroup without realtime runtime also "
				 "refuses)", priority, lim, priority);
		else
			snprintf(msg, len, "cannot set SCHED_FIFO priority %d: %s", priority,
				 strerror(r));
		return -r;
	}
	snprintf(msg, len, "SCHED_FIFO priority %d", priority);
	return 0;
}

int strebmd_rt_apply(enum strebmd_rt_mode mode, pthread_t thread, int priority, char *msg,
		     size_t len)
{
	char m1[320], m2[320];
	int r1, r2;

	if (!msg || !len)
		return -EINVAL;
	*msg = 0;
	if (mode == STREBMD_RT_OFF)
		return 0;
	if (mode != STREBMD_RT_TRY && mode != STREBMD_RT_REQUIRE) {
		snprintf(msg, len, "unknown realtime mode %d", (int)mode);
		return -EINVAL;
	}
	r2 = strebmd_rt_set_fifo(thread, priority, m2, sizeof(m2));
	if (r2 == -EINVAL) {
		snprintf(msg, len, "%s", m2);
		return r2;
	}
	r1 = strebmd_rt_lock_memory(m1, sizeof(m1));
	if (!r1 && !r2) {
		snprintf(msg, len, "realtime: %s; %s", m2, m1);
		return 0;
	}
	snprintf(msg, len, "%s%s%s%s", mode == STREBMD_RT_REQUIRE ?
		 "audio.realtime=require, but " : "running without full realtime privileges: ",
		 r2 ? m2 : "", r1 && r2 ? "; " : "", r1 ? m1 : "");
	if (mode == STREBMD_RT_TRY)
		return 1;
	return r2 ? r2 : r1;
}
