/* SPDX-License-Identifier: MIT */
/*
 * strebm kernel: stationary GP kernels on a unit-spaced time grid and their
 * discrete-time power spectra (see ../shared/docs/strebm-math.md §3).
 *
 * Time is in samples. Amplitude is 1. All functions are pure, thread-safe
 * and RT-safe (no allocation, locks, syscalls or logging; bounded time).
 * Any thread. The numeric functions return NaN for an unknown kind, ell <= 0
 * or non-finite ell (and, for the spectra, a non-finite omega); omega outside
 * [0, pi] is folded (f is even and 2 pi periodic). Spectra are accurate to
 * better than 1e-6 relative for ell in [STREBM_ELL_MIN, STREBM_ELL_MAX].
 */
#ifndef STREBM_KERNEL_H
#define STREBM_KERNEL_H

#include <stddef.h>

enum strebm_kernel {
	STREBM_KERNEL_RBF = 0,
	STREBM_KERNEL_MATERN12,
	STREBM_KERNEL_MATERN32,
	STREBM_KERNEL_MATERN52,
	STREBM_KERNEL_COUNT
};

/* Bounds on every length-scale, in samples. */
#define STREBM_ELL_MIN 0.25
#define STREBM_ELL_MAX 4096.0

/** Canonical name ("rbf", "matern12", "matern32", "matern52"), or NULL. */
const char *strebm_kernel_name(enum strebm_kernel kind);

/**
 * Parse a kernel name.
 * @return 0 and *out set, or -EINVAL for an unknown name (or NULL args).
 */
int strebm_kernel_from_name(const char *name, enum strebm_kernel *out);

/** k(tau; ell), unit amplitude. */
double strebm_kernel_eval(enum strebm_kernel kind, double tau, double ell);

/** dk/dlog(ell) at tau. */
double strebm_kernel_dlogl(enum strebm_kernel kind, double tau, double ell);

/**
 * Discrete-time spectrum f(omega) = sum_h k(h) e^{-i omega h} of the sampled
 * kernel, omega in rad/sample within [0, pi]. Aliasing is included: Matérn 1/2
 * uses the exact AR(1) form; RBF a short lag or alias sum; Matérn 3/2 and 5/2
 * the exact closed form for ell < 8 and a short alias sum with an
 * Euler-Maclaurin tail above (see kernel.c).
 */
double strebm_kernel_psd(enum strebm_kernel kind, double omega, double ell);

/** d f(omega) / d log(ell), consistent with strebm_kernel_psd(). */
double strebm_kernel_psd_dlogl(enum strebm_kernel kind, double omega, double ell);

/**
 * f(omega) and, when dlogl is not NULL, d f / d log(ell) in one pass (the
 * pair costs about as much as strebm_kernel_psd() alone).
 * @return f(omega); NaN (and *dlogl = NaN) on bad arguments.
 */
double strebm_kernel_psd_grad(enum strebm_kernel kind, double omega, double ell,
			      double *dlogl);

/**
 * Clamp length-scales to [lo, hi] and project them onto the canonical
 * non-decreasing order ell[0] <= ell[1] <= ... (pool-adjacent-violators in
 * log space, i.e. the least-squares isotonic fit of log ell). In place, no
 * work array, no limit on n (O(n^2) worst case). NaN entries become lo.
 * Invalid bounds (lo <= 0, hi < lo, non-finite) fall back to
 * STREBM_ELL_MIN / STREBM_ELL_MAX. ell == NULL or n == 0 is a no-op. RT-safe.
 */
void strebm_lengthscale_canonical(double *ell, size_t n, double lo, double hi);

#endif
