/* SPDX-License-Identifier: MIT */
#include "stft.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <fftw3.h>

struct strebm_stft {
	size_t N, H, F, n_in, n_out;
	double *wa;      /* analysis window, N */
	double *ws;      /* synthesis window / N (FFTW's c2r is unnormalised), N */
	double *hist;    /* n_in x N input history, newest last */
	double *ola;     /* n_out x N overlap-add accumulator */
	double *buf;     /* N, fftw_malloc'd (plan buffer) */
	fftw_complex *spec; /* F, fftw_malloc'd (plan buffer) */
	fftw_plan fwd, inv;
};

struct strebm_stft *strebm_stft_create(size_t N, size_t H, size_t n_in, size_t n_out)
{
	struct strebm_stft *s;
	double *den = NULL;
	size_t n, j;

	if (N < 4 || N % 2 || H < 1 || H >= N || n_in < 1 || n_out < 1 || N > (1u << 24))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->N = N;
	s->H = H;
	s->F = N / 2 + 1;
	s->n_in = n_in;
	s->n_out = n_out;
	s->wa = malloc(N * sizeof(double));
	s->ws = malloc(N * sizeof(double));
	s->hist = calloc(n_in * N, sizeof(double));
	s->ola = calloc(n_out * N, sizeof(double));
	s->buf = fftw_malloc(N * sizeof(double));
	s->spec = fftw_malloc(s->F * sizeof(fftw_complex));
	den = calloc(H, sizeof(double));
	if (!s->wa || !s->ws || !s->hist || !s->ola || !s->buf || !s->spec || !den)
		goto fail;
	for (n = 0; n < N; n++)
		s->wa[n] = 0.5 - 0.5 * cos(2.0 * M_PI * (double)n / (double)N);
	for (n = 0; n < N; n++)
		den[n % H] += s->wa[n] * s->wa[n];
	for (j = 0; j < H; j++)
		if (!(den[j] > 1e-12))
			goto fail; /* cannot happen for H < N, but never divide by 0 */
	for (n = 0; n < N; n++)
		s->ws[n] = s->wa[n] / den[n % H] / (double)N;
	s->fwd = fftw_plan_dft_r2c_1d((int)N, s->buf, s->spec, FFTW_ESTIMATE);
	s->inv = fftw_plan_dft_c2r_1d((int)N, s->spec, s->buf, FFTW_ESTIMATE);
	if (!s->fwd || !s->inv)
		goto fail;
	free(den);
	return s;
fail:
	free(den);
	strebm_stft_destroy(s);
	return NULL;
}

void strebm_stft_destroy(struct strebm_stft *s)
{
	if (!s)
		return;
	if (s->fwd)
		fftw_destroy_plan(s->fwd);
	if (s->inv)
		fftw_destroy_plan(s->inv);
	fftw_free(s->buf);
	fftw_free(s->spec);
	free(s->wa);
	free(s->ws);
	free(s->hist);
	free(s->ola);
	free(s);
}

void strebm_stft_reset(struct strebm_stft *s)
{
	memset(s->hist, 0, s->n_in * s->N * sizeof(double));
	memset(s->ola, 0, s->n_out * s->N * sizeof(double));
}

size_t strebm_stft_bins(const struct strebm_stft *s)
{
	return s->F;
}

const double *strebm_stft_window(const struct strebm_stft *s)
{
	return s->wa;
}

void strebm_stft_analyze(struct strebm_stft *s, const double *in, double complex *spec)
{
	size_t N = s->N, H = s->H, F = s->F, c, n;

	for (c = 0; c < s->n_in; c++) {
		double *h = s->hist + c * N;
		memmove(h, h + H, (N - H) * sizeof(double));
		memcpy(h + N - H, in + c * H, H * sizeof(double));
		for (n = 0; n < N; n++)
			s->buf[n] = h[n] * s->wa[n];
		fftw_execute(s->fwd);
		memcpy(spec + c * F, s->spec, F * sizeof(fftw_complex));
	}
}

void strebm_stft_synthesize(struct strebm_stft *s, const double complex *spec, double *out)
{
	size_t N = s->N, H = s->H, F = s->F, c, n;

	for (c = 0; c < s->n_out; c++) {
		double *o = s->ola + c * N;
		memcpy(s->spec, spec + c * F, F * sizeof(fftw_complex));
		/* a real signal's DC and Nyquist bins are real: c2r ignores their
		 * imaginary parts, as the inverse of r2c must */
		fftw_execute(s->inv);
		for (n = 0; n < N; n++)
			o[n] += s->buf[n] * s->ws[n];
		memcpy(out + c * H, o, H * sizeof(double));
		memmove(o, o + H, (N - H) * sizeof(double));
		memset(o + N - H, 0, H * sizeof(double));
	}
}
