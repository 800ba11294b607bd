/* SPDX-License-Identifier: MIT */
/*
 * strebm joint: the paper's form of StrEBM (DESIGN.md §2 "joint";
 * ../shared/docs/strebm-math.md §2, §7). On a window of T samples the latent
 * trajectories S (K x T, free parameters), the observation map g (linear A,
 * or the MLP of map.h) and the log length-scales are optimised jointly with
 * Adam on
 *
 *   L = 1/(2 sigma2 M T) ||X - g(S)||_F^2
 *     + lambda/T sum_k E_k(s_k; ell_k)              (DCT-II GP energy, energy.h)
 *     + beta ||S_c S_c^T / T - I||_F^2              (S_c: rows of S centred)
 *
 * The last term is the scale fix of strebm-math §2.4 item 2: it pins every
 * latent row to unit variance and blocks the collapse of two rows onto one
 * waveform; without it the objective has no minimiser (§2.3).
 *
 * Streaming: windows slide by a hop H. strebm_joint_shift() drops the oldest
 * H columns of S together with their Adam moments and appends new columns
 * (e.g. from strebm_joint_guess()) with fresh moments; the map, the
 * length-scales and their Adam state carry over. Adam bias correction of S is
 * kept per column, so new columns start with a correctly corrected first step.
 *
 * Length-scales are clamped to [STREBM_ELL_MIN, min(T/4, STREBM_ELL_MAX)] and,
 * unless cfg.ell_unordered, kept in canonical non-decreasing order
 * (strebm_lengthscale_canonical) after every update: source 0 is the least
 * smooth.
 *
 * Layout: row-major, one row per channel or source (S[k*T + t], X[m*T + t]).
 *
 * Threads and lifetime: create/destroy on the main thread (they allocate and
 * plan FFTW). Every other call runs on one thread at a time per object (the
 * worker): no allocation (tests/test_joint.c counts it in the plain build),
 * no syscalls or logging, bounded time for bounded iters, provided OpenBLAS
 * runs single-threaded (openblas_set_num_threads(1) before the stream starts,
 * STYLE.md §6); create runs one evaluation so that OpenBLAS sets up its
 * buffers there. NOT lock-free: every OpenBLAS level-2/3 call takes the
 * mutex of OpenBLAS's buffer pool (blas_memory_alloc). Fine for the worker
 * thread, never for the audio thread. "RT-safe" below means exactly this.
 */
#ifndef STREBM_JOINT_H
#define STREBM_JOINT_H

#include <stddef.h>
#include <stdint.h>

#include "kernel.h"

struct strebm_joint_config {
	size_t M;                  /* channels (>= 1) */
	size_t K;                  /* sources (>= 1) */
	size_t T;                  /* window length (>= 8) */
	int use_mlp;               /* 0: X = A S; 1: the MLP map of map.h */
	size_t hidden;             /* MLP hidden width (>= 1 when use_mlp) */
	enum strebm_kernel kernel; /* GP kernel of every source */
	double eps;                /* jitter, relative to unit variance (> 0) */
	double sigma2;             /* reconstruction noise variance (> 0) */
	double lambda;             /* energy weight (>= 0) */
	double beta;               /* decorrelation weight (>= 0) */
	double lr_s;               /* Adam step for S (>= 0; 0 freezes) */
	double lr_map;             /* Adam step for A or the MLP (>= 0) */
	double lr_logl;            /* Adam step for log ell (>= 0) */
	uint64_t seed;             /* MLP initialisation */
	int ell_unordered;         /* 1: clamp the length-scales but keep them in
				    * the order given (the engine's linear solver
				    * owns their order); 0: canonical order */
	double lr_skip;            /* MLP only: Adam step for the skip path A;
				    * negative: lr_map (the default) */
	double map_decay;          /* MLP only: after each step the hidden-to-output
				    * weights W2 shrink by this fraction (>= 0, < 1),
				    * which anchors g to its linear skip path A */
};

struct strebm_joint;

/**
 * Fill cfg with defaults: linear map, hidden 32, Matérn 3/2, eps 1e-2,
 * sigma2 1e-2, lambda 1, beta 1, Adam steps 1e-2 for S and A (strebm-math
 * §6.7 / A.4), seed 1, and lr_logl 1e-3 rather than §6.7's 1e-2: at 1e-2 the
 * length-scales ran ahead of S in 3 of 10 test windows (both rows turned
 * smooth, ell ~40 each, |corr| ~0.6, the rough source left in the residual);
 * at 1e-3 all 10 separated (|corr| >= 0.98). Any thread.
 *
 * For the MLP set use_mlp, hidden and a small lr_map (3e-5 measured, not
 * §6.7's 1e-3). The MLP objective is not stable in the long run: from a good
 * linear start the fit keeps improving while |corr| erodes on a time scale
 * ~1/lr_map (tanh(z) + 0.3 z mixing, 8 seeds: 0.958 linear -> 0.960 after
 * 1500 steps at 3e-5, 0.82 after 8000; at 1e-3, 0.82 after 400 steps). The
 * decorrelation term is second order only and does not stop the MLP from
 * carrying one source as a small perturbation on a smooth nonlinear
 * function of the other, which lowers the energies. Bound the MLP's budget
 * (or re-anchor it to the linear solution) until the objective has a
 * higher-order independence term or a post-nonlinear map.
 */
void strebm_joint_config_default(struct strebm_joint_config *cfg, size_t M,
				 size_t K, size_t T);

/**
 * Create a solver: all buffers, the MLP (if any) and one strebm_dct_energy
 * (with its FFTW plans) per source are made here. Main thread. The config is
 * copied. The solver must be initialised with strebm_joint_init() before it
 * is stepped.
 * @return the solver, or NULL on a bad config or no memory.
 */
struct strebm_joint *strebm_joint_create(const struct strebm_joint_config *cfg);

/** Destroy; NULL is a no-op. Main thread. */
void strebm_joint_destroy(struct strebm_joint *j);

/**
 * Start from a linear solution: copy A (M x K), S (K x T) and ell (K values,
 * clamped and put into canonical order). The MLP, if used, is initialised
 * with strebm_mlp_init_linear (g(s) = A s exactly; W1 ~ N(0, 1/K), seeded by
 * cfg->seed). All Adam moments and step counts are zeroed. The arrays are
 * copied, not kept. RT-safe.
 * @return 0, or -EINVAL on NULL arguments or a non-positive/non-finite ell.
 */
int strebm_joint_init(struct strebm_joint *j, const double *A, const double *S,
		      const double *ell);

/**
 * Start from latents alone: as strebm_joint_init() with A the least-squares
 * fit of X (M x T) on S (K x T), A = X S^T (S S^T)^-1 (a tiny ridge keeps it
 * defined). RT-safe (no LAPACK: see mm.h).
 * @return 0, -EINVAL (NULL arguments, bad ell), -EDOM (a non-finite fit).
 */
int strebm_joint_init_fit(struct strebm_joint *j, const double *X, const double *S,
			  const double *ell);

/**
 * Slide the window by H samples (1 <= H <= T): drop the first H columns of S
 * and of its Adam moments, append S_new (K x H, row-major with row stride H)
 * with zero moments and a fresh per-column bias correction. The map and the
 * length-scales (and their Adam state) are kept. RT-safe.
 * @return 0, or -EINVAL (NULL, H out of range, not initialised).
 */
int strebm_joint_shift(struct strebm_joint *j, size_t H, const double *S_new);

/**
 * Run iters full-batch Adam steps on S, the map and log ell for the window X
 * (M x T), then clamp and order the length-scales after each step. RT-safe:
 * no allocation; cost is iters times one gradient evaluation (2 DCTs per
 * source, a few BLAS products of size M x K x T or H x K x T).
 * @param objective out (may be NULL): L at the parameters after the last
 *                  step (costs one extra evaluation; iters = 0 just
 *                  evaluates).
 * @return 0; -EINVAL (NULL j or X, not initialised); -EDOM when the
 *         objective became non-finite (the state is then garbage: re-init).
 */
int strebm_joint_step(struct strebm_joint *j, const double *X, unsigned iters,
		      double *objective);

/**
 * Objective and gradient at the current parameters, with no update (used by
 * tests and diagnostics). RT-safe.
 * @param X         window, M x T; NULL means all-zero observations
 * @param objective out: L (may be NULL)
 * @param grad_S    out: dL/dS, K x T (may be NULL)
 * @param grad_map  out: dL/dparams of the map (strebm_joint_map_param_count
 *                  values, order of strebm_joint_map_params; may be NULL)
 * @param grad_logl out: dL/dlog(ell), K values (may be NULL)
 * @return 0, -EINVAL (NULL j, not initialised), -EDOM (non-finite L).
 */
int strebm_joint_gradient(struct strebm_joint *j, const double *X, double *objective,
			  double *grad_S, double *grad_map, double *grad_logl);

/** Latent trajectories, K x T; owned by j, valid until the next call. */
const double *strebm_joint_latent(const struct strebm_joint *j);

/** Length-scales in samples, K values (canonical order); owned by j. */
const double *strebm_joint_ell(const struct strebm_joint *j);

/** Number of map parameters: M*K (linear) or strebm_mlp_param_count. */
size_t strebm_joint_map_param_count(const struct strebm_joint *j);

/**
 * The map parameters: A (M x K) for the linear map, or the MLP's flat array
 * (W1, b1, W2, b2, A; see map.h). Owned by j.
 */
const double *strebm_joint_map_params(const struct strebm_joint *j);

/** The linear part A (M x K): the map itself, or the MLP's skip path. */
const double *strebm_joint_mixing(const struct strebm_joint *j);

/**
 * Overwrite parameters without touching the Adam state (tests, external
 * permutation fixes). Any argument may be NULL to keep that group. ell is
 * clamped and put into canonical order. RT-safe.
 * @return 0, -EINVAL (NULL j, not initialised, bad ell).
 */
int strebm_joint_set_params(struct strebm_joint *j, const double *S,
			    const double *map, const double *ell);

/**
 * Xhat = g(S) (M x T) for the current parameters. RT-safe.
 * @return 0 or -EINVAL.
 */
int strebm_joint_reconstruct(struct strebm_joint *j, double *Xhat);

/**
 * Least-squares guess of new latent columns for fresh observations X_new
 * (M x H, row stride H): s_t = argmin ||x_t - g(0) - J s_t||, J the map's
 * Jacobian at s = 0 (exactly A for the linear map), with a tiny ridge. Meant
 * for the columns strebm_joint_shift() appends (strebm-math §7.4). RT-safe.
 * @param S_new out, K x H (row stride H)
 * @return 0 or -EINVAL (NULL, H == 0 or H > T, not initialised).
 */
int strebm_joint_guess(struct strebm_joint *j, const double *X_new, size_t H,
		       double *S_new);

/**
 * Per-source image at reference channel r (projection back, strebm-math
 * §7.5): Y[k,t] = A[r,k] s_k[t] for the linear map, g(s_t[k] e_k)_r - g(0)_r
 * for the MLP. Invariant to the scale and sign of each latent. RT-safe.
 * @param Y out, K x T
 * @return 0 or -EINVAL (NULL, r >= M, not initialised).
 */
int strebm_joint_image(struct strebm_joint *j, size_t r, double *Y);

#endif
