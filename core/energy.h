/* SPDX-License-Identifier: MIT */
/*
 * strebm energy: the per-source GP energy
 *
 *   E(s; ell) = 1/2 s^T K(ell)^-1 s + 1/2 log det K(ell) + T/2 log 2pi,
 *   K(ell)_ij = k(|i-j|; ell) + eps delta_ij,
 *
 * in two forms (../shared/docs/strebm-math.md §5):
 *  - exact: dense Cholesky (LAPACKE dpotrf), O(T^3); the test oracle;
 *  - spectral DCT-II: c = DCT-II_ortho(s), lambda_j = f(pi j / T; ell) + eps,
 *    E = 1/2 sum_j (c_j^2 / lambda_j + log lambda_j) + T/2 log 2pi; O(T log T).
 * Both give dE/ds and dE/dlog(ell) analytically.
 */
#ifndef STREBM_ENERGY_H
#define STREBM_ENERGY_H

#include <stddef.h>

#include "kernel.h"

/**
 * Exact energy by dense Cholesky. Allocates O(T^2): main/worker thread only,
 * not RT-safe. Intended for tests and small T.
 *
 * @param kind      kernel
 * @param ell       length-scale in samples (> 0)
 * @param eps       jitter (> 0)
 * @param s         signal, T values
 * @param T         length (1 ... 8192)
 * @param energy    out: E (required)
 * @param grad_s    out: dE/ds, T values (may be NULL)
 * @param grad_logl out: dE/dlog(ell) (may be NULL)
 * @return 0, -EINVAL on bad arguments (unknown kind, ell or eps not finite
 *         and > 0, s or energy NULL, T out of range), -ENOMEM, or -EDOM
 *         when K is not positive definite. Outputs are untouched on error.
 */
int strebm_energy_exact(enum strebm_kernel kind, double ell, double eps,
			const double *s, size_t T, double *energy,
			double *grad_s, double *grad_logl);

struct strebm_dct_energy;

/**
 * Spectral DCT-II energy of fixed length T, with its FFTW plans and buffers
 * made here. Create/destroy on the main thread. The other calls are RT-safe
 * (no allocation) and may be used by one thread at a time per object.
 * @return the object, or NULL on T < 2 or no memory.
 */
struct strebm_dct_energy *strebm_dct_energy_create(size_t T);
/** Destroy; NULL is a no-op. */
void strebm_dct_energy_destroy(struct strebm_dct_energy *e);

/**
 * Set kernel, length-scale and jitter: recomputes lambda_j and
 * dlambda_j/dlog(ell) (T spectrum evaluations, bounded time). Until the first
 * successful call the object models white unit-variance noise (lambda = 1).
 * @return 0, or -EINVAL (e NULL, unknown kind, ell or eps not finite and
 *         > 0); the previous setting is kept on error.
 */
int strebm_dct_energy_set(struct strebm_dct_energy *e, enum strebm_kernel kind,
			  double ell, double eps);

/** lambda_j (T values) for the current setting; owned by e; NULL if e is. */
const double *strebm_dct_energy_lambda(const struct strebm_dct_energy *e);

/**
 * Evaluate the energy of s (T values).
 * @param grad_s    out: dE/ds (T values; may alias s; may be NULL)
 * @param grad_logl out: dE/dlog(ell) (may be NULL)
 * @return E; NaN (and *grad_logl = NaN) if e or s is NULL.
 */
double strebm_dct_energy_eval(struct strebm_dct_energy *e, const double *s,
			      double *grad_s, double *grad_logl);

#endif
