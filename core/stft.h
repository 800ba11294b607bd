/* SPDX-License-Identifier: MIT */
/*
 * strebm stft: streaming short-time Fourier analysis and synthesis with exact
 * weighted overlap-add (WOLA), hop by hop.
 *
 * Frame N samples, hop H samples (1 <= H < N, any H, not only divisors of N).
 * Analysis window: periodic Hann. Synthesis window: the analysis window
 * divided by sum_i wa(j + i H)^2 (j = n mod H), which makes analysis
 * followed by synthesis the identity for any H < N (WOLA condition).
 *
 * Framing is causal: after the hop ending at sample t has been pushed, the
 * analysed frame covers samples [t - N, t). Synthesis of that frame completes
 * the output hop [t - N, t - N + H): the synthesis output lags the analysis
 * input by N - H samples (plus the hop being collected: N in all).
 *
 * Spectra are F = N/2 + 1 complex bins per channel, channel-major
 * (channel c at spec[c * F]), the unnormalised forward DFT of the windowed
 * frame (FFTW's r2c convention).
 *
 * Threads: create/destroy on the main thread (FFTW planning is not
 * thread-safe). analyze/synthesize/reset are RT-safe: no allocation, locks,
 * syscalls or logging; bounded time (r2c/c2r plans made at create time).
 * One thread at a time per object.
 */
#ifndef STREBM_STFT_H
#define STREBM_STFT_H

#include <complex.h>
#include <stddef.h>

struct strebm_stft;

/**
 * Create an analysis/synthesis pair.
 * @param N      frame length, samples (>= 4, even)
 * @param H      hop, samples (1 <= H < N)
 * @param n_in   channels analysed (>= 1)
 * @param n_out  channels synthesised (>= 1)
 * @return NULL on bad arguments or no memory.
 */
struct strebm_stft *strebm_stft_create(size_t N, size_t H, size_t n_in, size_t n_out);
/** Destroy; NULL is a no-op. */
void strebm_stft_destroy(struct strebm_stft *s);
/** Clear the analysis history and the overlap-add state. RT-safe. */
void strebm_stft_reset(struct strebm_stft *s);
/** Bins per channel, N/2 + 1. */
size_t strebm_stft_bins(const struct strebm_stft *s);

/**
 * Push one hop of input (n_in x H, channel c at in[c * H]) and analyse the
 * newest frame into spec (n_in x F). RT-safe.
 */
void strebm_stft_analyze(struct strebm_stft *s, const double *in, double complex *spec);

/**
 * Synthesise one frame (n_out x F, channel c at spec[c * F]) and write the
 * completed output hop (n_out x H, channel c at out[c * H]). RT-safe.
 */
void strebm_stft_synthesize(struct strebm_stft *s, const double complex *spec, double *out);

/** The analysis window (N values), owned by s. */
const double *strebm_stft_window(const struct strebm_stft *s);

#endif
