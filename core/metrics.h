/* SPDX-License-Identifier: MIT */
/*
 * strebm metrics: separation quality measures for tests, the demo and the
 * benchmark. Pure functions, any thread; they do not allocate except
 * strebm_match_sources (K <= 8 by brute force over permutations).
 */
#ifndef STREBM_METRICS_H
#define STREBM_METRICS_H

#include <stddef.h>

/**
 * Scale-invariant SDR in dB of est against ref (both n samples, made
 * zero-mean here). Returns -INFINITY/NaN-free values: a silent ref or est
 * gives -300.
 */
double strebm_si_sdr(const double *ref, const double *est, size_t n);

/** Pearson correlation of a and b (n samples); 0 when either is constant. */
double strebm_corr(const double *a, const double *b, size_t n);

/**
 * Best assignment of K estimates to K references by summed SI-SDR.
 * refs, ests: K rows of n samples (row-major, stride n).
 * perm_out[k]: the estimate matched to reference k. sdr_out[k] (may be NULL):
 * its SI-SDR. @return 0, -EINVAL (K == 0 or K > 8), -ENOMEM.
 */
int strebm_match_sources(const double *refs, const double *ests, size_t K, size_t n,
			 size_t *perm_out, double *sdr_out);

#endif
