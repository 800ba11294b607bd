/* SPDX-License-Identifier: MIT */
/*
 * strebm gaussianize: per-channel streaming marginal Gaussianization,
 * z = Phi^-1(F(x)), with F a running (exponentially forgetting) estimate of
 * the channel's marginal distribution: a weighted histogram on a mu-law
 * companded grid, kept in a Fenwick tree so that an update and a lookup are
 * O(log bins). It undoes a monotone per-channel nonlinearity (the
 * post-nonlinear mixing model) up to the marginal of the pre-nonlinearity
 * signal, which is a sum of sources and close to Gaussian.
 *
 * Threads: create/destroy on the main thread; process/reset are RT-safe.
 */
#ifndef STREBM_GAUSSIANIZE_H
#define STREBM_GAUSSIANIZE_H

#include <stddef.h>

struct strebm_gauss;

/**
 * @param M      channels
 * @param bins   histogram bins (>= 16)
 * @param forget per-call forgetting factor in (0, 1] (1: never forget)
 * @return NULL on bad arguments or no memory.
 */
struct strebm_gauss *strebm_gauss_create(size_t M, size_t bins, double forget);

/** Target marginal of the output. */
enum strebm_gauss_target {
	STREBM_GAUSS_NORMAL = 0, /* Phi^-1(F(x)) */
	STREBM_GAUSS_LAPLACE,    /* unit-variance Laplace quantile of F(x) */
	STREBM_GAUSS_MIXED,      /* the mean of the two quantiles (default) */
	STREBM_GAUSS_COUNT
};
/**
 * Choose the target marginal. Sums of a few speech or music sources are
 * heavier-tailed than Gaussian; on the shared tanh sets the mixed target
 * measured best (k2: 16.1 dB vs 14.3 Gaussian; k3 mean |corr| 0.904 vs 0.894).
 * RT-safe. @return 0 or -EINVAL.
 */
int strebm_gauss_set_target(struct strebm_gauss *g, enum strebm_gauss_target target);
/** Destroy; NULL is a no-op. */
void strebm_gauss_destroy(struct strebm_gauss *g);
/** Forget everything. RT-safe. */
void strebm_gauss_reset(struct strebm_gauss *g);
/**
 * Add the n samples of each channel of x (M x n, row-major) to the running
 * marginals (after one forgetting step), then write their Gaussianized
 * values to z (M x n; may alias x). Non-finite samples map to 0. RT-safe.
 */
void strebm_gauss_process(struct strebm_gauss *g, const double *x, size_t n, double *z);
/** Standard normal quantile function, |error| < 1e-12 on (0, 1). */
double strebm_norm_ppf(double p);

/*
 * State serialisation: the running marginals (so that a restored nonlinear
 * model sees the same Gaussianized space). Native byte order; the layout
 * depends on M and bins. RT-safe (no allocation; bounded time).
 */
/** Bytes strebm_gauss_save_state() writes; 0 for NULL. */
size_t strebm_gauss_state_size(const struct strebm_gauss *g);
/** Serialise into buf (len >= state size). @return 0 or -EINVAL. */
int strebm_gauss_save_state(const struct strebm_gauss *g, void *buf, size_t len);
/** Validate without changing g. @return 0 or -EINVAL. */
int strebm_gauss_check_state(const struct strebm_gauss *g, const void *buf, size_t len);
/** Validate, then restore; g is unchanged on error. @return 0 or -EINVAL. */
int strebm_gauss_load_state(struct strebm_gauss *g, const void *buf, size_t len);

#endif
