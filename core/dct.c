/* SPDX-License-Identifier: MIT */
#include "dct.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct strebm_dct {
	size_t n;
	double *buf;
	double a0, a1; /* orthonormal scale factors */
	fftw_plan fwd, inv;
};

struct strebm_dct *strebm_dct_create(size_t n)
{
	struct strebm_dct *d;

	if (n < 2 || n > (1u << 26))
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->n = n;
	d->buf = fftw_malloc(n * sizeof(double));
	if (!d->buf)
		goto fail;
	d->a0 = sqrt(1.0 / (double)n);
	d->a1 = sqrt(2.0 / (double)n);
	d->fwd = fftw_plan_r2r_1d((int)n, d->buf, d->buf, FFTW_REDFT10, FFTW_ESTIMATE);
	d->inv = fftw_plan_r2r_1d((int)n, d->buf, d->buf, FFTW_REDFT01, FFTW_ESTIMATE);
	if (!d->fwd || !d->inv)
		goto fail;
	return d;
fail:
	strebm_dct_destroy(d);
	return NULL;
}

void strebm_dct_destroy(struct strebm_dct *d)
{
	if (!d)
		return;
	if (d->fwd)
		fftw_destroy_plan(d->fwd);
	if (d->inv)
		fftw_destroy_plan(d->inv);
	fftw_free(d->buf);
	free(d);
}

size_t strebm_dct_size(const struct strebm_dct *d)
{
	return d->n;
}

void strebm_dct_forward(struct strebm_dct *d, const double *in, double *out)
{
	size_t j, n = d->n;

	memmove(d->buf, in, n * sizeof(double));
	fftw_execute(d->fwd);
	/* REDFT10: Y_j = 2 sum s_n cos(pi j (n+1/2)/N); c_j = alpha_j Y_j / 2 */
	out[0] = 0.5 * d->a0 * d->buf[0];
	for (j = 1; j < n; j++)
		out[j] = 0.5 * d->a1 * d->buf[j];
}

void strebm_dct_inverse(struct strebm_dct *d, const double *in, double *out)
{
	size_t j, n = d->n;

	d->buf[0] = d->a0 * in[0];
	for (j = 1; j < n; j++)
		d->buf[j] = 0.5 * d->a1 * in[j];
	fftw_execute(d->inv);
	memcpy(out, d->buf, n * sizeof(double));
}
