/* SPDX-License-Identifier: MIT */
/*
 * strebm linear: the streaming linear StrEBM solver (DESIGN.md §2 "linear").
 *
 * Model: x_t = A s_t. Each source k has a GP energy with kernel spectrum
 * lambda_k(omega; ell_k) (normalised to unit power, plus a floor). Over a
 * context of the N most recent frames (windows of T samples taken every hop),
 * each frame j with its own per-source variance profiled out, the energy of
 * source k with unmixing row w_k is
 *
 *     E_k = sum_j (T/2) log(w_k^T R_jk w_k),  R_jk = sum_b C_jb / lambda_k(b),
 *
 * where C_jb is the M x M covariance of frame j's DCT-II coefficients in band b
 * (the sufficient statistics, kept per frame). The unmixing W (K x M) is kept
 * whitened against a running covariance (PCA down to K when M > K) and adapted
 * relatively, W <- G W, with G orthogonal: a symmetric re-decorrelation, then
 * damped Jacobi sweeps of Givens rotations, each angle found by 1-D Newton
 * steps on analytic derivatives (three scalars per frame and pair). Each
 * length-scale takes a 1-D Newton step in log space every few hops; the
 * length-scales are bounded and, optionally, kept in canonical order.
 *
 * Threads: create/destroy on the main thread (allocates, plans FFTW); every
 * other call is RT-safe in the sense of the worker (no allocation, locks,
 * syscalls or logging; bounded time) and must come from one thread at a time.
 */
#ifndef STREBM_LINEAR_H
#define STREBM_LINEAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel.h"

#define STREBM_MAX_SOURCES 16
#define STREBM_MAX_CHANNELS 64
#define STREBM_LINEAR_MAX_BANDS 1024

struct strebm_linear_config {
	size_t M;                 /* channels, 1..STREBM_MAX_CHANNELS */
	size_t K;                 /* sources, 1..min(M, STREBM_MAX_SOURCES) */
	size_t T;                 /* frame (window) length in samples, >= 16 */
	size_t N;                 /* context: frames kept, >= 1 */
	size_t B;                 /* DCT bands, 1..T */
	enum strebm_kernel kernel[STREBM_MAX_SOURCES]; /* per-source kernel */
	double floor;             /* spectral floor added to the normalised PSD */
	double forget;            /* per-frame forgetting of the whitening covariance */
	unsigned sweeps;          /* Jacobi sweeps per update (the iteration budget) */
	unsigned newton;          /* Newton steps per rotation angle */
	double maxstep;           /* largest rotation per angle (rad) while adapting */
	double settle;            /* largest rotation once settled (rad) */
	unsigned settle_after;    /* updates before the settled step limit applies */
	unsigned ell_every;       /* length-scale step every this many updates (0: never) */
	double ell_lo, ell_hi;    /* length-scale bounds in samples */
	double ell_init_lo, ell_init_hi; /* initial length-scales, log-spaced */
	bool ell_ordered;         /* keep ell_1 <= ... <= ell_K */
	size_t ref_mic;           /* reference microphone for back-projection */
};

struct strebm_linear;

/** Fill cfg with defaults for M channels, K sources and frame length T. */
void strebm_linear_config_default(struct strebm_linear_config *cfg, size_t M, size_t K, size_t T);

/** Create. @return NULL on an invalid config (see field comments) or no memory. */
struct strebm_linear *strebm_linear_create(const struct strebm_linear_config *cfg);
/** Destroy; NULL is a no-op. */
void strebm_linear_destroy(struct strebm_linear *l);
/** Back to the initial state (no statistics, no unmixing). RT-safe. */
void strebm_linear_reset(struct strebm_linear *l);

/**
 * Take one frame X (M x T, row-major, oldest sample first): add its
 * statistics to the context and adapt W and the length-scales.
 * A frame with no energy (silence) or a non-finite value is not added.
 * @param adapt  false: only refresh statistics, keep W and ell (freeze)
 * @return 1 if the frame was used, 0 if skipped, -EINVAL on NULL.
 */
int strebm_linear_update(struct strebm_linear *l, const double *X, bool adapt);

/** True once an unmixing exists (after the first non-silent frame). */
bool strebm_linear_ready(const struct strebm_linear *l);

/**
 * The demixing matrix with projection back to the reference microphone,
 * K x M row-major: y = D x gives each source's image at ref_mic. Valid when
 * ready; owned by l.
 */
const double *strebm_linear_demix(const struct strebm_linear *l);
/** The raw (whitened, unit-variance output) unmixing W, K x M. */
const double *strebm_linear_unmix(const struct strebm_linear *l);
/** The mixing estimate A (M x K) with W A = I. */
const double *strebm_linear_mixing(const struct strebm_linear *l);
/** Current length-scales (K values, samples). */
const double *strebm_linear_ell(const struct strebm_linear *l);
/** The length-scale bounds, samples. */
void strebm_linear_ell_bounds(const struct strebm_linear *l, double *lo, double *hi);
/** Set (and optionally pin) source k's length-scale. @return 0 or -EINVAL. */
int strebm_linear_set_ell(struct strebm_linear *l, size_t k, double ell, bool pinned);
/** Set source k's kernel. @return 0 or -EINVAL. */
int strebm_linear_set_kernel(struct strebm_linear *l, size_t k, enum strebm_kernel kind);
/** Source k's kernel and whether its length-scale is pinned. @return 0 or -EINVAL. */
int strebm_linear_get_source(const struct strebm_linear *l, size_t k, enum strebm_kernel *kind,
			     bool *pinned);
/** Reorder sources: new source i is old source perm[i]. RT-safe. */
int strebm_linear_permute(struct strebm_linear *l, const size_t *perm);
/** Updates taken so far (frames used). */
unsigned long strebm_linear_updates(const struct strebm_linear *l);
/** Mean objective per frame and sample of the last update (for status). */
double strebm_linear_objective(const struct strebm_linear *l);

/*
 * State serialisation: the adapted model (covariance, unmixing, the context
 * of band statistics, length-scales, pins, kernels, update count), so that a
 * restarted engine continues already separated. The layout depends on M, K,
 * T, N and B; a buffer from a solver with other dimensions is rejected.
 * Native byte order. All three are RT-safe (no allocation; bounded time).
 */
/** Bytes strebm_linear_save_state() writes; 0 for NULL. */
size_t strebm_linear_state_size(const struct strebm_linear *l);
/** Serialise into buf (len >= state size). @return 0 or -EINVAL. */
int strebm_linear_save_state(const struct strebm_linear *l, void *buf, size_t len);
/** Validate a buffer without changing l. @return 0 or -EINVAL (mismatch, corrupt). */
int strebm_linear_check_state(const struct strebm_linear *l, const void *buf, size_t len);
/** Validate, then restore; l is unchanged on error. @return 0 or -EINVAL. */
int strebm_linear_load_state(struct strebm_linear *l, const void *buf, size_t len);

#endif
