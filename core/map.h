/* SPDX-License-Identifier: MIT */
/*
 * strebm map: observation maps x_t = g(s_t), applied per time step, with
 * forward and backward (vector-Jacobian) passes.
 *
 * Layout: signals are row-major, one row per channel: S is K x T
 * (S[k*T + t]), X is M x T. Parameters are one flat double array so that an
 * optimiser (Adam) can treat them uniformly.
 *
 *  - linear: X = A S, A is M x K row-major.
 *  - mlp:    X = W2 tanh(W1 S + b1) + b2 + A S (a linear skip path), with
 *            W1 H x K, b1 H, W2 M x H, b2 M, A M x K; H the hidden width.
 *            Parameter order: W1, b1, W2, b2, A.
 */
#ifndef STREBM_MAP_H
#define STREBM_MAP_H

#include <stddef.h>
#include <stdint.h>

/** X = A S. RT-safe. */
void strebm_linear_forward(const double *A, size_t M, size_t K,
			   const double *S, size_t T, double *X);
/**
 * Backward of X = A S given dL/dX:
 * dA += dX S^T (if dA not NULL), dS = A^T dX (if dS not NULL). RT-safe.
 */
void strebm_linear_backward(const double *A, size_t M, size_t K,
			    const double *S, size_t T, const double *dX,
			    double *dA, double *dS);

struct strebm_mlp;

/**
 * Create an MLP map K -> hidden -> M for windows of at most max_T steps;
 * the activation cache for backward is allocated here. Main thread.
 * @return NULL on zero sizes or no memory.
 */
struct strebm_mlp *strebm_mlp_create(size_t K, size_t hidden, size_t M, size_t max_T);
/** Destroy; NULL is a no-op. */
void strebm_mlp_destroy(struct strebm_mlp *m);
/** Number of parameters. */
size_t strebm_mlp_param_count(const struct strebm_mlp *m);
/** The flat parameter array (owned by m; writable). */
double *strebm_mlp_params(struct strebm_mlp *m);
/**
 * Initialise so that g(s) = A s exactly at the start: A copied into the skip
 * path, W1 small random (seeded), b1 = 0, W2 = 0, b2 = 0. A is M x K.
 */
void strebm_mlp_init_linear(struct strebm_mlp *m, const double *A, double w1_scale,
			    uint64_t seed);
/**
 * X = g(S) for T <= max_T steps; caches activations for backward. RT-safe.
 * @return 0 or -EINVAL (T > max_T).
 */
int strebm_mlp_forward(struct strebm_mlp *m, const double *S, size_t T, double *X);
/**
 * Backward pass of the last forward (same S, T): given dL/dX, accumulate
 * dL/dparams into dparams (if not NULL) and write dL/dS into dS (if not NULL).
 * RT-safe. @return 0 or -EINVAL.
 */
int strebm_mlp_backward(struct strebm_mlp *m, const double *S, size_t T,
			const double *dX, double *dS, double *dparams);

#endif
