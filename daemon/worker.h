/* SPDX-License-Identifier: MIT */
/*
 * strebmd worker: runs the window engine hop by hop and accounts its CPU
 * time. The file backend calls it directly; the live backends will call the
 * same strebmd_worker_hop() from the worker thread, fed by the input ring.
 *
 * Threads: create/destroy on the main thread; hop() on the worker thread
 * (RT-safe: the engine's guarantees, plus clock_gettime of the thread CPU
 * clock, a vDSO call).
 */
#ifndef STREBMD_WORKER_H
#define STREBMD_WORKER_H

#include <stddef.h>

#include "engine.h"

struct strebmd_worker;

/** Create the worker and its engine. @return NULL on bad config / no memory. */
struct strebmd_worker *strebmd_worker_create(const struct strebm_engine_config *cfg);
/** Destroy; NULL is a no-op. */
void strebmd_worker_destroy(struct strebmd_worker *w);
/** The engine (owned by the worker). */
struct strebm_engine *strebmd_worker_engine(struct strebmd_worker *w);
/** Process one hop: in M x H, out K x H. @return 0 or negative errno. */
int strebmd_worker_hop(struct strebmd_worker *w, const double *in, double *out);
/** CPU seconds spent in hop() so far. */
double strebmd_worker_cpu_seconds(const struct strebmd_worker *w);

#endif
