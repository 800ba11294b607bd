/* SPDX-License-Identifier: MIT */
/*
 * strebm conv: the streaming convolutive StrEBM solver (DESIGN.md §2
 * "convolutive", ../shared/docs/convolutive.md §1 and §5).
 *
 * STFT (core/stft) with frame N and hop H; per frequency bin f a complex
 * demixing W(f) (K x K, rows w_k(f)^H), y_k(f,t) = w_k(f)^H x(f,t). Source
 * model (StrEBM in the STFT domain): y_k(f,t) ~ CN(0, r_k(f,t)),
 *
 *     r_k(f,t) = g_k(t) lambda_k(f; ell_k),
 *     lambda_k(f) = S(omega_f; ell_k) / mean_f S(omega_f; ell_k) + floor,
 *
 * S the GP kernel's power spectrum (core/kernel), or lambda == 1 with the
 * envelope switched off (time-varying Gaussian IVA; the default: equal in
 * quality on the measured sets and cheaper). Per hop, for the new frame:
 *
 *   gains (profiled, closed form)  g_k(t) = (1/F) sum_f |y_k(f,t)|^2 / lambda_k(f)
 *   statistics (recursive)         V_k(f) <- gamma V_k(f) + (1-gamma) x x^H / r_k(f,t)
 *   demixing (iterative projection, per bin, k = 1..K)
 *                                  w_k = (W (V_k + delta I))^-1 e_k,
 *                                  w_k <- w_k / sqrt(w_k^H (V_k + delta I) w_k)
 *   length-scales                  one Newton step in log ell on the profiled
 *                                  objective over a ring of recent frames, every
 *                                  ell_every hops (envelope on)
 *   output                         projection back to the reference microphone,
 *                                  yhat_k(f) = (W(f)^-1)_{ref,k} y_k(f)
 *
 * The negative log-likelihood of a frame, with the gains profiled, is (the
 * status "objective", a running mean per bin and source)
 *
 *   J(t) = sum_k [ F log g_k(t) + sum_f log lambda_k(f) ] - 2 sum_f log |det W(f)|  (+ F K)
 *
 * Start-up (two_starts): two hypotheses run side by side, the identity start
 * and a per-bin PCA start (seeded from the first pca_hop frames); the one with
 * the lower running J over the same frames is output (the other is first put
 * in the same output slots, matched by global activity) and, after
 * startup_hops, kept. Off by default: on the shared dev sets, streaming, the
 * running J preferred the PCA start where it separated worse (README).
 * Start-up taper (taper > 0, on by default): for the first taper_hops hops,
 * then fading over taper_fade, each projected-back demixing filter (inverse
 * DFT over the bins) is windowed in lag by a Gaussian of sigma taper * N, the
 * RBF GP prior across frequency of convolutive.md §1.3; it ties the bins
 * together while data are scarce and settles their order. Measured on the
 * shared sets: the lowest set -3.3 -> -0.7 dB, the free-field sets kept.
 * Inter-bin permutation check (perm_every): each band of bins is matched to
 * the sources' global activity (correlation of magnitude envelopes over a
 * ring of recent frames, the band itself left out); a band locked in the
 * wrong order with a clear margin has its rows of W and its statistics
 * re-seeded in the right order. Off by default (measured neutral to harmful
 * on the dev sets).
 * Spatial alignment (doa_every, on by default): every few hops each
 * column of A(f) = W(f)^-1 relative to the reference microphone is read as a
 * steering vector e^{-j om_f tau}; each source's delays (up to doa_max
 * samples, the array's size) are fitted by a grid search of the demixer's own
 * GCC-PHAT, and every bin whose columns match another order of the sources
 * clearly better (doa_margin, doa_conf) is re-ordered: rows of W and their
 * statistics. The bins' mean steering match ("spatial") is also a confidence:
 * below doa_hi the output fades towards passthrough, fully at doa_lo. Free-
 * field arrays match well; a demixer that fits no set of directions (a
 * reverberant room it has not separated) does not. With doa_linear the M
 * microphones are taken as an evenly spaced line in channel order (the used
 * ones at their channel numbers): one delay per microphone step and source,
 * fitted over all used microphones at once.
 * Spatial constraint (doa_null > 0): once fitted, each row's IP statistics
 * gain doa_null tr(V_k)/K^2 sum_{j != k} a_j a_j^H (a_j the other sources'
 * steering vectors): a null towards each other source, geometrically
 * constrained IVA. It holds the bins in one order and steadies the demixer in
 * reverberant rooms (README: every shared set meets issue 6); its model is the
 * direct path, so a strong near reflection pulls against it. Under it the
 * steering match stays high by construction, and health is what detects a
 * mixture that cannot be separated.
 * Health: 1 - the largest correlation between two outputs' log-gain
 * profiles (running moments, about 3 s): outputs that are still mixtures
 * share their activity. Below health_min the output fades (over 20 hops)
 * towards passthrough of the reference microphone / K and the status says
 * "degraded"; it fades back when health recovers.
 *
 * K sources from K channels: with M > K the reference microphone and the
 * lowest-numbered others, K in all, are used.
 *
 * Threads: create/destroy on the main thread (allocates, plans FFTW). Every
 * other call is RT-safe for the worker: no allocation, locks, syscalls or
 * logging; bounded time. One thread at a time.
 */
#ifndef STREBM_CONV_H
#define STREBM_CONV_H

#include <complex.h>
#include <stdbool.h>
#include <stddef.h>

#include "kernel.h"
#include "linear.h"

struct strebm_conv_config {
	size_t M;                 /* input channels, 1..STREBM_MAX_CHANNELS */
	size_t K;                 /* sources, 1..min(M, STREBM_MAX_SOURCES) */
	size_t N;                 /* STFT frame, samples (even, >= 16) */
	size_t H;                 /* hop, samples (1 <= H <= N/2: overlap-add needs overlap) */
	size_t ref_mic;           /* reference microphone, < M */
	double forget;            /* gamma, statistics forgetting per hop, (0, 1) */
	double load;              /* diagonal loading of V, relative to tr(V)/K */
	unsigned sweeps;          /* IP sweeps per hop once warm (>= 1) */
	unsigned warm_sweeps;     /* IP sweeps per hop during the first warm_hops */
	unsigned warm_hops;
	bool envelope;            /* GP spectral envelope (false: lambda == 1) */
	enum strebm_kernel kernel[STREBM_MAX_SOURCES];
	double floor;             /* envelope floor */
	double ell_init_lo, ell_init_hi; /* initial length-scales, log-spaced (samples) */
	double ell_lo, ell_hi;    /* length-scale bounds (samples) */
	unsigned ell_every;       /* Newton step every this many hops (0: never) */
	bool two_starts;          /* identity and PCA hypotheses at start-up */
	unsigned pca_hop;         /* frames collected before the PCA seed (>= 2) */
	unsigned startup_hops;    /* hops after which the better hypothesis is kept */
	unsigned perm_every;      /* permutation check every this many hops (0: off) */
	size_t perm_bands;        /* bands of the permutation check (>= 2) */
	size_t ring;              /* frames of history for the check and ell (8..512) */
	unsigned ctx_frames;      /* start-up context: the first this many frames are kept
				   * and re-weighted with the current W every hop (0: off) */
	unsigned ctx_sweeps;      /* IP sweeps per hop on the context (>= 1) */
	double ctx_load;          /* diagonal loading during the context phase */
	bool ctx_uniform;         /* context frames weighted uniformly (false: forget^age) */
	bool ensemble;            /* two hypotheses throughout: recursive, and context
				   * start-up; output their mean (not with two_starts) */
	unsigned align_every;     /* ensemble: re-match the second's slots every this many hops */
	double taper;             /* start-up GP prior across frequency on the demixer: the
				   * lag window's sigma as a fraction of N (0: off) */
	unsigned taper_hops;      /* hops at full strength */
	unsigned taper_fade;      /* hops over which it fades out after that */
	unsigned doa_every;       /* spatial permutation alignment every this many hops (0: off) */
	unsigned doa_start;       /* hops before the first alignment */
	unsigned doa_hops;        /* hops during which it (and the spatial constraint) runs
				   * (0: for ever) */
	double doa_max;           /* largest inter-microphone delay searched, samples */
	double doa_margin;        /* a bin is re-ordered when the best order beats its own by
				   * this much (mean steering match per source and microphone) */
	double doa_conf;          /* ... and its own match is at least this, [-1, 1] */
	double doa_lo, doa_hi;    /* spatial confidence: the output fades to passthrough as the
				   * bins' mean steering match falls from doa_hi to doa_lo
				   * (doa_hi <= doa_lo: off; needs health) */
	double doa_null;          /* spatial constraint: once the directions are fitted, each
				   * row's IP statistics gain doa_null * tr(V)/K * sum_{j!=k}
				   * a_j a_j^H / K (a null towards the other sources; 0: off) */
	bool doa_linear;          /* the M microphones are an evenly spaced line in channel
				   * order: one delay per step and source, tau_km = (chan_m -
				   * chan_ref) tau_k */
	double doa_sep;           /* line fit: two sources at least this far apart (samples,
				   * far end of the array; 0: doa_max / 16) */
	bool health;              /* fall back towards passthrough when not separating */
	double health_min;        /* health below which the output falls back, [0, 1] */
};

/**
 * Defaults for M channels, K sources, frame N and hop H. Hop counts and the
 * forgetting factor are set for the prototype's H = N/4 and rescaled to the
 * given hop so that they mean the same time.
 */
void strebm_conv_config_default(struct strebm_conv_config *cfg, size_t M, size_t K, size_t N,
				size_t H);

struct strebm_conv;

/** Create. @return NULL on an invalid config (see the field comments) or no memory. */
struct strebm_conv *strebm_conv_create(const struct strebm_conv_config *cfg);
/** Destroy; NULL is a no-op. */
void strebm_conv_destroy(struct strebm_conv *c);
/** Back to the initial state (no statistics, identity demixing, STFT cleared). RT-safe. */
void strebm_conv_reset(struct strebm_conv *c);

/**
 * Process one hop: in M x H (channel m at in[m*H]), out K x H. The output is
 * the separated hop N - H samples back (one frame of latency, counting the
 * hop being collected). Input must be finite. RT-safe.
 * @param adapt  false: keep W and ell (freeze), still separate
 */
void strebm_conv_process(struct strebm_conv *c, const double *in, double *out, bool adapt);

/**
 * Frame-level step (what process() does between analysis and synthesis):
 * X is K x F (the used channels, channel-major), Y receives K x F separated
 * images at the reference microphone. RT-safe.
 */
void strebm_conv_frame(struct strebm_conv *c, const double complex *X, double complex *Y,
		       bool adapt);

/** Bins per frame, N/2 + 1. */
size_t strebm_conv_bins(const struct strebm_conv *c);
/** Latency in samples: N (the frame; the hop being collected included). */
size_t strebm_conv_latency(const struct strebm_conv *c);

/**
 * Demixing of bin f with projection back (the current output hypothesis):
 * D (K x K, row-major) maps the used channels' bin-f coefficients to the
 * sources' images at the reference microphone. @return 0 or -EINVAL.
 */
int strebm_conv_demix(const struct strebm_conv *c, size_t f, double complex *D);

/**
 * Re-order the sources in bins [f0, f1) of the current output hypothesis:
 * new slot i takes old slot perm[i] (demixing rows and their statistics), as
 * a block permutation locked in by the solver would. For diagnostics and
 * tests. RT-safe. @return 0, or -EINVAL (a range beyond the bins, or perm not
 * a permutation of 0..K-1).
 */
int strebm_conv_reorder(struct strebm_conv *c, size_t f0, size_t f1, const size_t *perm);

/** Set (and optionally pin) source k's length-scale. RT-safe. @return 0 or -EINVAL. */
int strebm_conv_set_ell(struct strebm_conv *c, size_t k, double ell, bool pinned);
/** The length-scales set_ell accepts, in samples. */
void strebm_conv_ell_bounds(const struct strebm_conv *c, double *lo, double *hi);
/** Source k's kernel. RT-safe. @return 0 or -EINVAL. */
int strebm_conv_set_kernel(struct strebm_conv *c, size_t k, enum strebm_kernel kind);

struct strebm_conv_status {
	unsigned long frames;     /* non-silent frames used */
	unsigned long updates;    /* hops that adapted W */
	unsigned long reseeds;    /* bands re-seeded by the permutation check */
	unsigned long aligned;    /* bins re-ordered by the spatial alignment */
	double spatial;           /* mean steering match of the bins, [-1, 1]; NaN: not yet */
	double delay[STREBM_MAX_SOURCES]; /* each source's fitted delay (samples) at the
				   * microphone after the reference (the next in channel
				   * order; the one before when the reference is last);
				   * NaN: not yet */
	bool constrained;         /* the spatial constraint acts on the demixing */
	double objective;         /* running J per bin and source (nats) */
	double health;            /* 1 - largest output log-gain correlation */
	double mix;               /* output blend: 1 separated, 0 passthrough */
	double ell[STREBM_MAX_SOURCES];
	enum strebm_kernel kernel[STREBM_MAX_SOURCES];
	bool pinned[STREBM_MAX_SOURCES];
	unsigned hypothesis;      /* 0 identity start, 1 PCA start */
	bool ready;               /* a demixing exists */
	bool startup;             /* the two hypotheses still run */
	bool degraded;            /* health below health_min: falling back */
};

/** Status snapshot. RT-safe. */
void strebm_conv_get_status(const struct strebm_conv *c, struct strebm_conv_status *st);

#endif
