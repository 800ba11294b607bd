/* SPDX-License-Identifier: MIT */
/*
 * strebm engine: the streaming window engine. It slides a window of T samples
 * by a hop of H, warm-starts the solver from the previous hop, and writes the
 * newest hop separated: output latency is one hop (the hop being collected),
 * not one window.
 *
 * Per hop: the solver takes the window (bounded iteration budget), the
 * demixing (projection back to the reference microphone: fixes scale and
 * sign) is checked against the previous one on the new samples (permutation
 * guard), and the output is cross-faded from the previous demixing to the new
 * one across the hop (click-free). Gains and mutes ramp across a hop.
 *
 * Modes: linear (instantaneous mixing), nonlinear (post-nonlinear: each
 * channel Gaussianized by a running marginal estimate, then the linear
 * solver, then optionally the joint StrEBM solver with an MLP map),
 * convolutive (core/conv: STFT with frame conv_frame and hop H, per-bin
 * demixing; latency one frame). A switch into or out of convolutive mode
 * cross-fades the two modes' outputs across one hop.
 *
 * Threads: create/destroy on the main thread. process() and the setters are
 * RT-safe for the worker thread (no allocation, locks, syscalls, logging).
 * One thread at a time.
 */
#ifndef STREBM_ENGINE_H
#define STREBM_ENGINE_H

/* The first 8 bytes of a saved state (strebm_engine_save_state). */
#define STREBM_STATE_MAGIC "STREBMST"

#include <stdbool.h>
#include <stddef.h>

#include "kernel.h"
#include "linear.h"

/* Input samples beyond this magnitude (no audio signal has them) are treated
 * like NaN: replaced by silence and counted as non-finite. */
#define STREBM_INPUT_LIMIT 1e5

enum strebm_mode {
	STREBM_MODE_LINEAR = 0,
	STREBM_MODE_NONLINEAR,
	STREBM_MODE_CONVOLUTIVE,  /* STFT per-bin demixing (core/conv): rooms, delays */
	STREBM_MODE_COUNT
};

/** "linear" / "nonlinear" / "convolutive", or NULL. */
const char *strebm_mode_name(enum strebm_mode mode);
/** Parse a mode name. @return 0 or -EINVAL. */
int strebm_mode_from_name(const char *name, enum strebm_mode *out);

struct strebm_engine_config {
	size_t M, K;              /* channels, sources (K <= M) */
	size_t T, H;              /* window and hop, samples; H <= T */
	enum strebm_mode mode;
	enum strebm_kernel kernel; /* initial kernel of every source */
	size_t ref_mic;
	size_t context;           /* frames of statistics the solver keeps */
	size_t bands;             /* DCT bands */
	unsigned sweeps;          /* solver iteration budget per hop */
	double floor;             /* spectral floor */
	bool ell_ordered;         /* canonical length-scale order */
	bool perm_guard;          /* permutation guard on the new hop */
	double gauss_forget;      /* nonlinear: marginal histogram forgetting per hop */
	bool bypass;              /* identity demixing (K == M), no solver: a dry
				   * passthrough through the same window path */
	size_t conv_frame;        /* convolutive: STFT frame in samples (even, > H); 0: T */
	bool conv_envelope;       /* convolutive: GP spectral envelope (false: lambda == 1) */
	double conv_array_delay;  /* convolutive: largest delay between two microphones, samples
				   * (the spatial alignment's search; core/conv doa_max);
				   * 0: core/conv's default, < 0: spatial alignment off */
	bool conv_array_other;    /* convolutive: the microphones are not an evenly spaced
				   * line in channel order (each one's delay fitted alone) */
	double conv_null;         /* convolutive: spatial constraint weight (doa_null);
				   * < 0: core/conv's default */
	/* nonlinear: the joint stage (core/joint, MLP map), started from the
	 * linear solution on the Gaussianized channels */
	unsigned joint_iters;     /* Adam steps per hop; 0: off (linear output) */
	size_t joint_hidden;      /* MLP hidden width */
	double joint_lr_s;        /* Adam step for the latent trajectories */
	double joint_lr_map;      /* Adam step for the MLP's hidden layers */
	double joint_lr_skip;     /* Adam step for its linear skip path */
	double joint_decay;       /* per-step shrink of the MLP's output weights */
};

/** Defaults for M channels, K sources, window T and hop H. */
void strebm_engine_config_default(struct strebm_engine_config *cfg, size_t M, size_t K,
				  size_t T, size_t H);

struct strebm_engine;

/** Create. @return NULL on an invalid config or no memory. */
struct strebm_engine *strebm_engine_create(const struct strebm_engine_config *cfg);
/** Destroy; NULL is a no-op. */
void strebm_engine_destroy(struct strebm_engine *e);

/**
 * Process one hop: in is M x H (row-major, channel m at in[m*H]), out is
 * K x H. Non-finite input samples are replaced by 0 and counted.
 * RT-safe (worker). @return 0, -EINVAL.
 */
int strebm_engine_process(struct strebm_engine *e, const double *in, double *out);

/** Restart the model from its initial state. RT-safe. */
void strebm_engine_reset(struct strebm_engine *e);
/** Stop (true) or resume adapting; separation keeps running. RT-safe. */
void strebm_engine_freeze(struct strebm_engine *e, bool freeze);
/** Switch mode at the next hop. RT-safe. @return 0 or -EINVAL. */
int strebm_engine_set_mode(struct strebm_engine *e, enum strebm_mode mode);
/** Output gain of source k in dB (ramped). RT-safe. @return 0 or -EINVAL. */
int strebm_engine_set_gain(struct strebm_engine *e, size_t k, double db);
/** Mute source k (ramped). RT-safe. @return 0 or -EINVAL. */
int strebm_engine_set_mute(struct strebm_engine *e, size_t k, bool mute);
/** Set and pin (or unpin) source k's length-scale in samples. RT-safe. */
int strebm_engine_set_ell(struct strebm_engine *e, size_t k, double ell, bool pinned);
/** Source k's kernel. RT-safe. @return 0 or -EINVAL. */
int strebm_engine_set_kernel(struct strebm_engine *e, size_t k, enum strebm_kernel kind);

struct strebm_engine_status {
	unsigned long hops;          /* hops processed */
	unsigned long updates;       /* solver updates taken */
	unsigned long nonfinite;     /* hops that held a non-finite sample */
	unsigned long permutations;  /* permutation-guard corrections */
	unsigned long breakdowns;    /* hops silenced by a numerical breakdown (model restarted) */
	double objective;
	double ell[STREBM_MAX_SOURCES];
	/* per source, as in force (after setters, a state load, slot swaps) */
	enum strebm_kernel kernel[STREBM_MAX_SOURCES];
	bool pinned[STREBM_MAX_SOURCES];   /* length-scale pinned (not learned) */
	double gain_db[STREBM_MAX_SOURCES];
	bool mute[STREBM_MAX_SOURCES];
	enum strebm_mode mode;            /* the mode in force */
	enum strebm_mode next_mode;       /* the mode asked for (switches at the next hop) */
	bool ready;
	bool frozen;
	bool joint;               /* nonlinear: the last hop came from the joint stage */
	bool convolutive;         /* the shape admits convolutive mode (set_mode can switch to it) */
	/* convolutive mode (zero in the others) */
	unsigned long reseeds;       /* bands re-seeded by the inter-bin permutation check */
	double health;               /* 1 - largest output activity correlation */
	double separation;           /* output blend: 1 separated, 0 passthrough (ref mic / K) */
	bool degraded;               /* cannot separate: falling back to passthrough */
};

/** Snapshot of the status. RT-safe. */
void strebm_engine_get_status(const struct strebm_engine *e, struct strebm_engine_status *st);
/** The length-scales set_ell accepts in the mode asked for, in samples. */
void strebm_engine_ell_bounds(const struct strebm_engine *e, double *lo, double *hi);
/** Algorithmic latency in samples: one hop; one STFT frame in convolutive mode. */
size_t strebm_engine_latency(const struct strebm_engine *e);

/*
 * State serialisation, so that a show restarts already separated: mode,
 * per-source kernels, length-scales and pins, gains and mutes, the unmixing
 * with its context statistics, and (nonlinear) the running marginals. Not
 * the freeze flag, the counters or the audio window. A versioned header
 * carries M, K, T, H and the mode, and a checksum of the payload. Native byte
 * order (the same build architecture). Size: a few hundred kB for M = 2, and
 * it grows as M^2 (context x bands x M x M doubles).
 *
 * RT-safe (worker): no allocation, locks, syscalls or logging; time linear in
 * the state size. Load takes effect at the next hop, without a cross-fade.
 */
/** Bytes strebm_engine_save_state() writes; 0 for NULL. */
size_t strebm_engine_state_size(const struct strebm_engine *e);
/** Serialise into buf (len >= state size). @return 0 or -EINVAL. */
int strebm_engine_save_state(const struct strebm_engine *e, void *buf, size_t len);
/**
 * Restore from buf (len == state size). The engine is unchanged on error.
 * @return 0, or -EINVAL for a state of other dimensions (M, K, T, H, bypass),
 * another version or byte order, a bad checksum or an out-of-range value.
 */
int strebm_engine_load_state(struct strebm_engine *e, const void *buf, size_t len);

#endif
