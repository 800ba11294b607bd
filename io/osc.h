/* SPDX-License-Identifier: MIT */
/*
 * strebmd osc: the OSC control server (liblo), independent of the audio
 * backend and of main. It owns one UDP socket bound to exactly the configured
 * address (127.0.0.1 by default; liblo itself would bind every interface, so
 * the socket is ours and liblo only parses and serialises), and one thread
 * that receives, validates and answers. Handlers never touch the engine: a
 * valid setting becomes a fixed-size struct strebmd_cmd handed to ops->post;
 * queries and subscriptions read ops->status.
 *
 * Address space (source indices N count from 1 to K; numbers accept the OSC
 * types i, h, f and d; 0/1 flags also accept T and F):
 *
 *   /strebm/ping                      -> /strebm/pong
 *   /strebm/mode [s linear|nonlinear]
 *   /strebm/source/N/lengthscale [ms] 0 < ms <= 1000 (and within the engine's
 *                                     bounds when the status gives them); pins
 *   /strebm/source/N/learn [0|1]      1: learned again, 0: pinned
 *   /strebm/source/N/kernel [s rbf|matern12|matern32|matern52]
 *   /strebm/source/N/gain [dB]        -120 <= dB <= 24, ramped
 *   /strebm/source/N/mute [0|1]
 *   /strebm/freeze [0|1]
 *   /strebm/reset
 *   /strebm/status                    -> /strebm/status s mode, i rate, i M,
 *                                        i K, h hops, h xruns, h underruns,
 *                                        f rtf, then K x f length-scale (ms)
 *   /strebm/subscribe [port [rate]]   port 0 or absent: the sender's; rate in
 *                                     Hz, 0.1..100, default 10
 *   /strebm/unsubscribe [port]
 *   /strebm/save s PATH, /strebm/load s PATH  (absolute path) -> same path,
 *                                     s PATH on success
 *
 * A settable path with no argument is a query: the reply has the same path
 * and the current value (from the worker's last status). A successful setting
 * is not answered (a DAW sends many); a client that wants confirmation sends
 * /strebm/ping after it: replies come in order, so an error arrives before
 * the pong. Every bad message (wrong type or count, NaN/Inf, out of range,
 * unknown path, bad source index, pattern characters, path over 256 bytes,
 * malformed packet) is answered /strebm/error s path s reason and changes
 * nothing. Bundles are accepted; their time tags are ignored (liblo's queue
 * of future bundles is disabled): every message applies on arrival.
 *
 * Subscribers get, every 1/rate s: /strebm/meter (K x f, output RMS in dBFS),
 * /strebm/lengthscales (K x f, ms) and /strebm/stats (s mode, h hops,
 * h xruns, h underruns, h nonfinite, h breakdowns, f rtf, f latency ms,
 * i frozen, i running). At most 8 subscribers; a new one beyond that
 * replaces the one that subscribed longest ago.
 *
 * Full queue: when ops->post answers -EAGAIN the command is kept in a small
 * ordered backlog and posted again as the worker drains (at least every
 * 2 ms). A newer command for the same setting (same type and source)
 * replaces a waiting one, so the backlog is bounded (one entry per setting)
 * and the last value sent is the one that lands; superseded values are
 * counted (coalesced), never reported as errors.
 *
 * Senders whose address is not in the allow list are ignored before their
 * datagram is parsed (counted; logged at debug level at most once per 10 s).
 *
 * Threads: create/destroy/set_allow on the main thread; stats and dispatch
 * from any thread. The ops are called on the OSC thread only (and on the
 * caller's thread inside strebmd_osc_dispatch()), one at a time; the OSC
 * thread may allocate and take locks, and never waits for the audio thread.
 */
#ifndef STREBMD_OSC_H
#define STREBMD_OSC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "control.h"

/* Validation limits (documented above). */
#define STREBMD_OSC_ELL_MAX_MS 1000.0
#define STREBMD_OSC_GAIN_MIN_DB -120.0
#define STREBMD_OSC_GAIN_MAX_DB 24.0
#define STREBMD_OSC_RATE_MIN 0.1
#define STREBMD_OSC_RATE_MAX 100.0
#define STREBMD_OSC_RATE_DEFAULT 10.0
#define STREBMD_OSC_MAX_PATH 256
#define STREBMD_OSC_MAX_SUBSCRIBERS 8

struct strebmd_osc_ops {
	/** Hand a validated command to the worker. @return 0, -EAGAIN when the
	 * queue is full (kept and retried, see above), or another negative errno
	 * (answered as an error). Required. */
	int (*post)(void *data, const struct strebmd_cmd *cmd);
	/** Fill st with the latest status snapshot; must not block for long.
	 * Required. */
	void (*status)(void *data, struct strebmd_status *st);
	/** Save / restore the model state at path (absolute). Synchronous on the
	 * OSC thread. @return 0 or a negative errno with a one-line reason in
	 * err. Optional: NULL answers "not supported". */
	int (*save)(void *data, const char *path, char *err, size_t errlen);
	int (*load)(void *data, const char *path, char *err, size_t errlen);
	/** Log sink, syslog levels (3 error ... 7 debug). Optional. */
	void (*log)(void *data, int level, const char *msg);
};

struct strebmd_osc_stats {
	uint64_t datagrams;  /* received from allowed senders */
	uint64_t rejected;   /* datagrams from senders not in the allow list */
	uint64_t malformed;  /* packets liblo could not parse */
	uint64_t errors;     /* /strebm/error replies */
	uint64_t posted;     /* commands ops->post accepted */
	uint64_t deferred;   /* commands kept back because the queue was full */
	uint64_t coalesced;  /* kept-back commands replaced by a newer one */
	uint64_t dropped;    /* kept-back commands ops->post later refused */
	uint64_t backlog;    /* commands waiting now */
};

struct strebmd_osc;

/**
 * Bind address:port (UDP; address NULL or "" means 127.0.0.1; names are
 * resolved; port 0 picks a free port, see strebmd_osc_port()) and start the
 * OSC thread. allow: the sender allow list, see strebmd_osc_set_allow().
 * ops (copied) and data must outlive the server. Main thread.
 * @return the server, or NULL with a one-line reason in err.
 */
struct strebmd_osc *strebmd_osc_create(const char *address, int port, const char *allow,
				       const struct strebmd_osc_ops *ops, void *data, char *err,
				       size_t errlen);

/** Stop the thread, close the socket, free; NULL is a no-op. Main thread. */
void strebmd_osc_destroy(struct strebmd_osc *o);

/**
 * Replace the allow list (a reload may change it): comma- or space-separated
 * entries, each an IPv4 or IPv6 address (exact), an address/bits CIDR range,
 * an IPv4 prefix ending in a dot ("192.168.1."), or "*" for everyone. An
 * empty list allows nobody. IPv4-mapped IPv6 senders match IPv4 entries.
 * On error the old list stays. Any thread.
 * @return 0, or -EINVAL with the bad entry named in err.
 */
int strebmd_osc_set_allow(struct strebmd_osc *o, const char *allow, char *err, size_t errlen);

/** The bound UDP port. Any thread. */
int strebmd_osc_port(const struct strebmd_osc *o);

/** Counters (a consistent-enough copy; each field is atomic). Any thread. */
void strebmd_osc_get_stats(const struct strebmd_osc *o, struct strebmd_osc_stats *st);

/**
 * Handle one datagram as if it had arrived on the socket from the sender
 * from/fromlen (the allow list applies; replies go to from). For tests and
 * the fuzzing harness: it takes the same lock as the OSC thread. Any thread.
 */
void strebmd_osc_dispatch(struct strebmd_osc *o, const void *data, size_t len,
			  const struct sockaddr *from, socklen_t fromlen);

#endif
