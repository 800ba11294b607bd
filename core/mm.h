/* SPDX-License-Identifier: MIT */
/*
 * strebm mm: the three row-major matrix products of the MLP map and the
 * joint solver, built from BLAS level-1 calls (cblas_daxpy, cblas_ddot) on
 * the long (time) dimension.
 *
 * Why not cblas_dgemm: OpenBLAS takes the mutex of its buffer pool
 * (blas_memory_alloc) on every level-3 call, and these run on the worker's
 * hop path, which is allocation- and lock-free (tests/test_rtsafe.c counts
 * it). The other dimensions here are small (sources, channels, hidden
 * width), so the level-1 form loses little. RT-safe.
 * Also a small Cholesky solve for the K x K Gram matrices they lead to.
 */
#ifndef STREBM_MM_H
#define STREBM_MM_H

#include <cblas.h>
#include <math.h>
#include <stddef.h>

/* C (m x T) = alpha A (m x k) B (k x T) + beta C. */
static inline void strebm_mm_nn(size_t m, size_t k, size_t T, double alpha, const double *A,
				const double *B, double beta, double *C)
{
	size_t i, j;

	for (i = 0; i < m; i++) {
		double *c = C + i * T;

		if (beta == 0.0)
			for (j = 0; j < T; j++)
				c[j] = 0.0;
		else if (beta != 1.0)
			cblas_dscal((int)T, beta, c, 1);
		for (j = 0; j < k; j++)
			if (A[i * k + j] != 0.0)
				cblas_daxpy((int)T, alpha * A[i * k + j], B + j * T, 1, c, 1);
	}
}

/* C (m x n) = alpha A (m x T) B (n x T)^T + beta C. */
static inline void strebm_mm_nt(size_t m, size_t n, size_t T, double alpha, const double *A,
				const double *B, double beta, double *C)
{
	size_t i, j;

	for (i = 0; i < m; i++)
		for (j = 0; j < n; j++) {
			double d = alpha * cblas_ddot((int)T, A + i * T, 1, B + j * T, 1);

			C[i * n + j] = beta == 0.0 ? d : beta * C[i * n + j] + d;
		}
}

/* C (n x T) = alpha A (m x n)^T B (m x T) + beta C. */
static inline void strebm_mm_tn(size_t m, size_t n, size_t T, double alpha, const double *A,
				const double *B, double beta, double *C)
{
	size_t i, j, t;

	for (j = 0; j < n; j++) {
		double *c = C + j * T;

		if (beta == 0.0)
			for (t = 0; t < T; t++)
				c[t] = 0.0;
		else if (beta != 1.0)
			cblas_dscal((int)T, beta, c, 1);
		for (i = 0; i < m; i++)
			if (A[i * n + j] != 0.0)
				cblas_daxpy((int)T, alpha * A[i * n + j], B + i * T, 1, c, 1);
	}
}

/*
 * Cholesky factor (lower, in place) of the symmetric K x K matrix G (lower
 * triangle read) plus a tiny ridge relative to its trace: G = L L^T.
 * K <= a few dozen here; LAPACK's dpotrf would go through OpenBLAS's locked
 * buffer pool (see above). RT-safe.
 */
static inline void strebm_chol_factor(double *G, size_t K)
{
	double ridge = 0.0;
	size_t a, b, i;

	for (a = 0; a < K; a++)
		ridge += G[a * K + a];
	ridge = 1e-12 * ridge / (double)K + 1e-300;
	for (a = 0; a < K; a++) {
		G[a * K + a] += ridge;
		for (b = 0; b <= a; b++) {
			double acc = G[a * K + b];

			for (i = 0; i < b; i++)
				acc -= G[a * K + i] * G[b * K + i];
			if (a == b)
				G[a * K + a] = sqrt(acc > ridge ? acc : ridge);
			else
				G[a * K + b] = acc / G[b * K + b];
		}
	}
}

/* Solve L L^T r = r in place with the factor of strebm_chol_factor. */
static inline void strebm_chol_solve(const double *G, size_t K, double *r)
{
	size_t a, b;

	for (a = 0; a < K; a++) {
		for (b = 0; b < a; b++)
			r[a] -= G[a * K + b] * r[b];
		r[a] /= G[a * K + a];
	}
	for (a = K; a-- > 0;) {
		for (b = a + 1; b < K; b++)
			r[a] -= G[b * K + a] * r[b];
		r[a] /= G[a * K + a];
	}
}

#endif
