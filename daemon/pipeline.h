/* SPDX-License-Identifier: MIT */
/*
 * strebmd pipeline: the realtime path of the live backends.
 *
 *   audio callback ──in ring──▶ worker thread (window engine) ──out ring──▶ audio callback
 *
 * The audio callback (strebmd_pipeline_audio) copies M input channels into a
 * lock-free SPSC ring and K separated channels out of another. It never
 * allocates, locks, logs, makes a system call or waits. Output sample t is
 * input sample t - D with D = H + P (hop plus the current period): the worker
 * has one period to separate a hop once the callback has completed it. When
 * the worker is late, the missing frames are filled with silence or the dry
 * reference channel / K (configurable) and an underrun is counted; positions
 * are exact stream counters, so a late worker never shifts the latency.
 *
 * Control commands arrive through a second SPSC ring and are applied by the
 * worker at hop boundaries; the worker publishes a status snapshot under a
 * sequence lock.
 *
 * Threads: create/start/stop/destroy on the main thread; audio() on the one
 * audio thread; post() from one control thread; status() and the progress
 * counters from any thread but the audio thread.
 */
#ifndef STREBMD_PIPELINE_H
#define STREBMD_PIPELINE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "control.h"
#include "engine.h"

enum strebmd_fill { STREBMD_FILL_SILENCE = 0, STREBMD_FILL_DRY = 1 };

struct strebmd_pipeline_config {
	struct strebm_engine_config engine;
	unsigned rate;
	size_t max_period;   /* largest period the callback may be given */
	enum strebmd_fill fill;
};

struct strebmd_pipeline;

/** Create (allocates everything the stream needs). @return NULL on error. */
struct strebmd_pipeline *strebmd_pipeline_create(const struct strebmd_pipeline_config *cfg);
/** Destroy (stops first); NULL is a no-op. */
void strebmd_pipeline_destroy(struct strebmd_pipeline *p);
/** Start the worker thread (normal scheduling). @return 0, or negative errno. */
int strebmd_pipeline_start(struct strebmd_pipeline *p);
/** The worker thread (valid while started), e.g. for realtime priority. */
pthread_t strebmd_pipeline_thread(const struct strebmd_pipeline *p);
/** The engine, for the main thread while the worker is not started. */
struct strebm_engine *strebmd_pipeline_engine(struct strebmd_pipeline *p);
/** What late periods play (reload). Any thread. */
void strebmd_pipeline_set_fill(struct strebmd_pipeline *p, enum strebmd_fill fill);
/** Stop and join the worker thread. */
void strebmd_pipeline_stop(struct strebmd_pipeline *p);

/**
 * The audio callback body: in[m][i], out[k][i] for nframes frames. Input
 * buffers may be NULL (an unconnected port): read as silence. RT-safe.
 */
void strebmd_pipeline_audio(struct strebmd_pipeline *p, const float *const *in,
			    float *const *out, size_t nframes);
/** Count a server xrun (any thread, RT-safe). */
void strebmd_pipeline_xrun(struct strebmd_pipeline *p);

/** Post a command for the worker. @return 0, or -EAGAIN when the queue is full. */
int strebmd_pipeline_post(struct strebmd_pipeline *p, const struct strebmd_cmd *cmd);
/** Copy the latest status (worker snapshot plus the audio-side counters). */
void strebmd_pipeline_status(struct strebmd_pipeline *p, struct strebmd_status *st);
/** Frames the audio callback has handled (progress, for the watchdog). */
uint64_t strebmd_pipeline_audio_frames(const struct strebmd_pipeline *p);
/** Hops the worker has processed (progress, for the watchdog). */
uint64_t strebmd_pipeline_worker_hops(const struct strebmd_pipeline *p);
/** Algorithmic latency in frames at period P: engine latency + P. */
size_t strebmd_pipeline_latency(const struct strebmd_pipeline *p, size_t period);
/**
 * Copy the model state out (taken by the worker at a hop boundary) into buf.
 * Blocks the calling control thread up to timeout_ms. One control thread at
 * a time. @return 0, -ENOSPC (buf too small), -ETIMEDOUT.
 */
int strebmd_pipeline_save_state(struct strebmd_pipeline *p, void *buf, size_t cap, size_t *len,
				int timeout_ms);
/**
 * Hand a model state to the worker, which loads it at a hop boundary.
 * Blocks up to timeout_ms. @return 0, -EINVAL (wrong shape/corrupt; the
 * model is unchanged), -E2BIG, -ETIMEDOUT.
 */
int strebmd_pipeline_load_state(struct strebmd_pipeline *p, const void *buf, size_t len,
				int timeout_ms);
/** Bytes of a model state. */
size_t strebmd_pipeline_state_size(const struct strebmd_pipeline *p);
/** Test hook: stall the worker (it stops taking hops) while true. */
void strebmd_pipeline_stall(struct strebmd_pipeline *p, bool stall);

#endif
