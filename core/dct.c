/* SPDX-License-Identifier: MIT */
/*
 * Orthonormal DCT-II / DCT-III on FFTW.
 *
 * Even n: Makhoul's reordering onto one real FFT of length n (r2c forward,
 * c2r inverse). FFTW's own REDFT10/REDFT01 solvers allocate a scratch buffer
 * on every execution, which the worker must not do; the r2c/c2r plans made
 * here execute without allocating (tests/test_rtsafe.c checks the hop path).
 * Odd n falls back to the REDFT plans (documented as allocating).
 */
#include "dct.h"

/* complex.h first: fftw_complex is then the C99 double complex */
#include <complex.h>
#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct strebm_dct {
	size_t n;
	double *buf;          /* n reals */
	fftw_complex *spec;   /* n/2 + 1 */
	double complex *tw;   /* n/2 + 1 twiddles e^{-i pi k / (2n)} */
	double a0, a1;        /* orthonormal scale factors */
	fftw_plan fwd, inv;
	int odd;
};

struct strebm_dct *strebm_dct_create(size_t n)
{
	struct strebm_dct *d;
	size_t k;

	if (n < 2 || n > (1u << 26))
		return NULL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->n = n;
	d->odd = n % 2;
	d->a0 = sqrt(1.0 / (double)n);
	d->a1 = sqrt(2.0 / (double)n);
	d->buf = fftw_malloc(n * sizeof(double));
	if (!d->buf)
		goto fail;
	if (d->odd) {
		d->fwd = fftw_plan_r2r_1d((int)n, d->buf, d->buf, FFTW_REDFT10, FFTW_ESTIMATE);
		d->inv = fftw_plan_r2r_1d((int)n, d->buf, d->buf, FFTW_REDFT01, FFTW_ESTIMATE);
	} else {
		d->spec = fftw_malloc((n / 2 + 1) * sizeof(fftw_complex));
		d->tw = malloc((n / 2 + 1) * sizeof(double complex));
		if (!d->spec || !d->tw)
			goto fail;
		for (k = 0; k <= n / 2; k++)
			d->tw[k] = cexp(-I * M_PI * (double)k / (2.0 * (double)n));
		d->fwd = fftw_plan_dft_r2c_1d((int)n, d->buf, d->spec, FFTW_ESTIMATE);
		d->inv = fftw_plan_dft_c2r_1d((int)n, d->spec, d->buf, FFTW_ESTIMATE);
	}
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
	fftw_free(d->spec);
	free(d->tw);
	free(d);
}

size_t strebm_dct_size(const struct strebm_dct *d)
{
	return d->n;
}

void strebm_dct_forward(struct strebm_dct *d, const double *in, double *out)
{
	size_t j, n = d->n, h = n / 2;

	if (d->odd) {
		memmove(d->buf, in, n * sizeof(double));
		fftw_execute(d->fwd);
		/* REDFT10: Y_j = 2 sum s_n cos(pi j (n+1/2)/N); c_j = alpha_j Y_j / 2 */
		out[0] = 0.5 * d->a0 * d->buf[0];
		for (j = 1; j < n; j++)
			out[j] = 0.5 * d->a1 * d->buf[j];
		return;
	}
	/* v = [x0, x2, ..., x_{n-2}, x_{n-1}, ..., x3, x1] */
	for (j = 0; j < h; j++) {
		d->buf[j] = in[2 * j];
		d->buf[n - 1 - j] = in[2 * j + 1];
	}
	fftw_execute(d->fwd);
	/* X_k = Re(e^{-i pi k/2n} V_k); V_{n-k} = conj(V_k) gives
	 * X_{n-k} = -Im(e^{-i pi k/2n} V_k) */
	for (j = 0; j <= h; j++) {
		double complex v = d->spec[j] * d->tw[j];
		double s = j ? d->a1 : d->a0;
		out[j] = s * creal(v);
		if (j && j < h)
			out[n - j] = -d->a1 * cimag(v);
	}
}

void strebm_dct_inverse(struct strebm_dct *d, const double *in, double *out)
{
	size_t j, n = d->n, h = n / 2;
	double inv_n = 1.0 / (double)n;

	if (d->odd) {
		d->buf[0] = d->a0 * in[0];
		for (j = 1; j < n; j++)
			d->buf[j] = 0.5 * d->a1 * in[j];
		fftw_execute(d->inv);
		memcpy(out, d->buf, n * sizeof(double));
		return;
	}
	/* X_k = c_k / alpha_k; V_k = e^{i pi k/2n} (X_k - i X_{n-k}), X_n = 0 */
	for (j = 0; j <= h; j++) {
		double xk = in[j] / (j ? d->a1 : d->a0);
		double xnk = j ? in[n - j] / d->a1 : 0.0;
		double complex v = conj(d->tw[j]) * (xk - I * xnk);
		d->spec[j] = v;
	}
	fftw_execute(d->inv);
	for (j = 0; j < h; j++) {
		out[2 * j] = d->buf[j] * inv_n;
		out[2 * j + 1] = d->buf[n - 1 - j] * inv_n;
	}
}
