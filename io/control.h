/* SPDX-License-Identifier: MIT */
/*
 * strebmd control: the fixed-size commands the OSC thread posts to the worker
 * and the status snapshot the worker publishes for the OSC and main threads.
 *
 * Commands travel through a lock-free SPSC ring (core/ring.h) and are applied
 * by the worker at a hop boundary; the worker publishes the status under a
 * lock it only ever trylocks (daemon/pipeline.c: strebmd_pipeline_post() and
 * strebmd_pipeline_status()).
 *
 * Threads: plain data, no functions.
 */
#ifndef STREBMD_CONTROL_H
#define STREBMD_CONTROL_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

enum strebmd_cmd_type {
	STREBMD_CMD_MODE = 1,   /* ivalue: enum strebm_mode */
	STREBMD_CMD_ELL,        /* source, value: length-scale in ms (sets and pins) */
	STREBMD_CMD_LEARN,      /* source, ivalue 0/1 (1: learned again, 0: pinned) */
	STREBMD_CMD_KERNEL,     /* source, ivalue: enum strebm_kernel */
	STREBMD_CMD_GAIN,       /* source, value: dB */
	STREBMD_CMD_MUTE,       /* source, ivalue 0/1 */
	STREBMD_CMD_FREEZE,     /* ivalue 0/1 */
	STREBMD_CMD_RESET,
};

struct strebmd_cmd {
	int32_t type;    /* enum strebmd_cmd_type */
	int32_t source;  /* 0-based source index, when the command has one */
	int32_t ivalue;
	double value;
};

/** What the worker publishes (and the daemon adds its counters to). */
struct strebmd_status {
	enum strebm_mode mode;
	uint32_t rate, M, K;
	uint64_t hops;
	uint64_t xruns;         /* server xruns seen by the backend */
	uint64_t underruns;     /* periods the worker was late for */
	uint64_t early;         /* periods that needed a hop the worker had had
				 * less than a period for (the server caught up
				 * after an xrun): filled, not the worker's fault */
	uint64_t nonfinite;     /* hops that held a NaN/Inf input sample */
	uint64_t breakdowns;
	uint64_t refused;       /* commands the engine refused when the worker applied them */
	int32_t refused_type;   /* the last one's enum strebmd_cmd_type */
	uint64_t dead_mask;     /* input channels silent for the last second (bit m: in_{m+1}) */
	double rtf;             /* worker CPU time / audio time, recent */
	double rtf_mean;        /* the same since the start */
	double latency_ms;
	bool frozen;
	bool degraded;          /* convolutive: cannot separate, passing the reference through */
	bool no_convolutive;    /* the window/hop admit no convolutive mode (switching to it fails) */
	bool running;           /* audio is flowing */
	double ell_ms[STREBM_MAX_SOURCES];
	bool learn[STREBM_MAX_SOURCES];
	int32_t kernel[STREBM_MAX_SOURCES];
	double gain_db[STREBM_MAX_SOURCES];
	bool mute[STREBM_MAX_SOURCES];
	double rms_dbfs[STREBM_MAX_SOURCES]; /* output level over the last hop(s) */
	/* length-scales the engine accepts, ms (from the solver's bounds and the
	 * rate); 0: unknown, and OSC checks only its own 0 < ms <= 1000 */
	double ell_min_ms, ell_max_ms;
};

#endif
