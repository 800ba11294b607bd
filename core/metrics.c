/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

static double mean(const double *x, size_t n)
{
	double s = 0.0;
	size_t i;

	for (i = 0; i < n; i++)
		s += x[i];
	return n ? s / (double)n : 0.0;
}

double strebm_si_sdr(const double *ref, const double *est, size_t n)
{
	double mr = mean(ref, n), me = mean(est, n), rr = 0.0, re = 0.0, ee = 0.0;
	double a, num, den;
	size_t i;

	for (i = 0; i < n; i++) {
		double r = ref[i] - mr, e = est[i] - me;
		rr += r * r;
		re += r * e;
		ee += e * e;
	}
	if (!(rr > 0.0) || !(ee > 0.0))
		return -300.0;
	a = re / rr;
	num = a * a * rr;                   /* |a r|^2 */
	den = ee - 2.0 * a * re + a * a * rr; /* |e - a r|^2 */
	if (!(num > 0.0))
		return -300.0;
	if (!(den > 0.0))
		return 300.0;
	return 10.0 * log10(num / den);
}

double strebm_corr(const double *a, const double *b, size_t n)
{
	double ma = mean(a, n), mb = mean(b, n), aa = 0.0, bb = 0.0, ab = 0.0;
	size_t i;

	for (i = 0; i < n; i++) {
		double x = a[i] - ma, y = b[i] - mb;
		aa += x * x;
		bb += y * y;
		ab += x * y;
	}
	if (!(aa > 0.0) || !(bb > 0.0))
		return 0.0;
	return ab / sqrt(aa * bb);
}

static void search(const double *S, size_t K, size_t k, size_t *cur, bool *used,
		   double acc, double *best, size_t *best_perm)
{
	size_t j;

	if (k == K) {
		if (acc > *best) {
			*best = acc;
			for (j = 0; j < K; j++)
				best_perm[j] = cur[j];
		}
		return;
	}
	for (j = 0; j < K; j++) {
		if (used[j])
			continue;
		used[j] = true;
		cur[k] = j;
		search(S, K, k + 1, cur, used, acc + S[k * K + j], best, best_perm);
		used[j] = false;
	}
}

int strebm_match_sources(const double *refs, const double *ests, size_t K, size_t n,
			 size_t *perm_out, double *sdr_out)
{
	double *S, best = -INFINITY;
	size_t cur[8], k, j;
	bool used[8] = { false };

	if (!refs || !ests || !perm_out || K == 0 || K > 8)
		return -EINVAL;
	S = malloc(K * K * sizeof(double));
	if (!S)
		return -ENOMEM;
	for (k = 0; k < K; k++)
		for (j = 0; j < K; j++)
			S[k * K + j] = strebm_si_sdr(refs + k * n, ests + j * n, n);
	search(S, K, 0, cur, used, 0.0, &best, perm_out);
	if (sdr_out)
		for (k = 0; k < K; k++)
			sdr_out[k] = S[k * K + perm_out[k]];
	free(S);
	return 0;
}
