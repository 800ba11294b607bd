/* SPDX-License-Identifier: MIT */
/*
 * strebmd worker: runs the window engine hop by hop, applies control
 * commands at hop boundaries, and keeps the worker's view of the status
 * (settings it was told, output levels, dead input channels, CPU time).
 * The file backend calls it directly; the live pipeline calls the same
 * functions from its worker thread, fed by the input ring.
 *
 * Threads: create/destroy on the main thread; everything else on the one
 * thread that runs the engine (RT-safe: the engine's guarantees, plus
 * clock_gettime of the thread CPU clock, a vDSO call).
 */
#ifndef STREBMD_WORKER_H
#define STREBMD_WORKER_H

#include <stddef.h>

#include "control.h"
#include "engine.h"

struct strebmd_worker;

/** Create the worker and its engine for a stream at rate Hz. @return NULL on
 * bad config / no memory. */
struct strebmd_worker *strebmd_worker_create(const struct strebm_engine_config *cfg,
					     unsigned rate);
/** Destroy; NULL is a no-op. */
void strebmd_worker_destroy(struct strebmd_worker *w);
/** The engine (owned by the worker). */
struct strebm_engine *strebmd_worker_engine(struct strebmd_worker *w);
/** Process one hop: in M x H, out K x H. @return 0 or negative errno. */
int strebmd_worker_hop(struct strebmd_worker *w, const double *in, double *out);
/** Apply one command (at a hop boundary). @return 0 or -EINVAL. */
int strebmd_worker_apply(struct strebmd_worker *w, const struct strebmd_cmd *cmd);
/** Fill the worker-owned fields of a status snapshot. */
void strebmd_worker_status(struct strebmd_worker *w, struct strebmd_status *st);
/** CPU seconds spent in hop() so far. */
double strebmd_worker_cpu_seconds(const struct strebmd_worker *w);

#endif
