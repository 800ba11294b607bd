/* SPDX-License-Identifier: MIT */
/*
 * strebm jack: the JACK backend. M input ports in_1..in_M and K output ports
 * source_1..source_K (pretty names through JACK metadata), latency reporting,
 * xrun counting, buffer-size changes, and a supervisor that survives the
 * server: when it goes away the client is closed, reopened with backoff, its
 * ports registered again and its connections restored.
 *
 * The process callback hands the port buffers to the audio hook and does
 * nothing else (RT-safe). Never starts a server (JackNoStartServer).
 *
 * Threads: create/open/activate/poll/destroy on the main thread. The hooks
 * are called from JACK's threads: audio and xrun from the process thread
 * (must be RT-safe), latency from a non-RT JACK thread.
 */
#ifndef STREBM_JACK_H
#define STREBM_JACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct strebm_jack_hooks {
	/* in[m][i], out[k][i], nframes: the audio thread's work */
	void (*audio)(void *data, const float *const *in, float *const *out, size_t nframes);
	/* a server xrun (any JACK thread) */
	void (*xrun)(void *data);
	/* the algorithmic latency in frames at this period */
	size_t (*latency)(void *data, size_t period);
	/* a message for the log (main thread only): level 3 error .. 7 debug */
	void (*message)(void *data, int level, const char *msg);
	void *data;
};

struct strebm_jack_config {
	const char *client_name;     /* default "strebmd" */
	const char *server;          /* NULL/"": $JACK_DEFAULT_SERVER or default */
	size_t M, K;
	const char *connect_inputs;  /* comma-separated, for in_1, in_2, ... */
	const char *connect_outputs; /* comma-separated, for source_1, ... */
};

enum strebm_jack_event {
	STREBM_JACK_IDLE = 0,   /* nothing new */
	STREBM_JACK_LOST,       /* the server went away; retrying */
	STREBM_JACK_BACK,       /* reconnected and active again */
	STREBM_JACK_REOPENED,   /* reopened (not active): the rate changed,
				 * rebuild the pipeline and call activate */
};

struct strebm_jack;

/** Create (no connection yet). @return NULL on bad config / no memory. */
struct strebm_jack *strebm_jack_create(const struct strebm_jack_config *cfg,
				       const struct strebm_jack_hooks *hooks);
/** Close and free; NULL is a no-op. */
void strebm_jack_destroy(struct strebm_jack *j);
/**
 * Open the client and register the ports (not active yet).
 * @return 0, -ENOENT when no server runs, or another negative errno; err
 * says why in one line.
 */
int strebm_jack_open(struct strebm_jack *j, char *err, size_t errlen);
/** Activate and make the connections. @return 0 or negative errno. */
int strebm_jack_activate(struct strebm_jack *j, char *err, size_t errlen);
/**
 * Supervise (main thread, a few times a second): server loss and
 * reconnection with backoff, buffer-size changes (latency recomputed),
 * connection bookkeeping. now is CLOCK_MONOTONIC seconds.
 */
enum strebm_jack_event strebm_jack_poll(struct strebm_jack *j, double now);
/** True while a client is open and active. */
bool strebm_jack_active(const struct strebm_jack *j);
/** The server's sample rate and period (valid once opened). */
unsigned strebm_jack_rate(const struct strebm_jack *j);
size_t strebm_jack_period(const struct strebm_jack *j);
/** The realtime priority of the client's process thread, or -1 (none/unknown). */
int strebm_jack_rt_priority(const struct strebm_jack *j);
/** Largest period the backend can hand to the audio hook. */
size_t strebm_jack_max_period(void);
/** Tell the server our latency changed (e.g. a mode switch). Main thread. */
void strebm_jack_recompute_latency(struct strebm_jack *j);
/** Apply new auto-connect lists (reload); connects what is new. */
void strebm_jack_set_connect(struct strebm_jack *j, const char *inputs, const char *outputs);
/** True if a JACK server answers (opens and closes a probe client). */
bool strebm_jack_server_running(const char *server);

#endif
