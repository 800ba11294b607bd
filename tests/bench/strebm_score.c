/* SPDX-License-Identifier: MIT */
/*
 * strebm-score: SI-SDR improvement of separated sources against reference
 * sources, over the reference microphone (channel 1 of the mixture).
 *
 *   strebm-score [--skip SECONDS] MIX.wav REFS_DIR OUT_DIR
 *
 * REFS_DIR holds src0.wav .. src{K-1}.wav, OUT_DIR source_1.wav .. source_K.wav
 * (as strebmd writes them). Estimates are matched to references by the best
 * permutation. Prints one line per source and the median; exit 0, or 1 on a
 * missing or mismatched file.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "wavfile.h"

#define MAXK 8

static double *read_mono(const char *path, size_t *n, unsigned *rate, size_t want_ch)
{
	struct strebm_wav_info info;
	char err[PATH_MAX + 64];
	struct strebm_wav_in *in = strebm_wav_in_open(path, &info, err, sizeof(err));
	double *buf;

	if (!in) {
		fprintf(stderr, "strebm-score: %s\n", err);
		return NULL;
	}
	if (want_ch && info.channels < want_ch) {
		fprintf(stderr, "strebm-score: '%s' has too few channels\n", path);
		strebm_wav_in_close(in);
		return NULL;
	}
	buf = malloc(info.frames * info.channels * sizeof(double));
	if (!buf || strebm_wav_in_read(in, buf, info.frames) < 0) {
		fprintf(stderr, "strebm-score: cannot read '%s'\n", path);
		free(buf);
		strebm_wav_in_close(in);
		return NULL;
	}
	*n = info.frames;
	*rate = info.rate;
	strebm_wav_in_close(in);
	return buf; /* channel 0 first (planar) */
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	double skip = 1.0, *mix, *refs, *ests, sdr[MAXK], base[MAXK], imp[MAXK];
	size_t n, K = 0, k, perm[MAXK], s0;
	unsigned rate;
	char path[PATH_MAX];
	int a = 1;

	if (argc > 2 && !strcmp(argv[1], "--skip")) {
		skip = atof(argv[2]);
		a = 3;
	}
	if (argc - a != 3) {
		fprintf(stderr, "usage: strebm-score [--skip SECONDS] MIX.wav REFS_DIR OUT_DIR\n");
		return 1;
	}
	mix = read_mono(argv[a], &n, &rate, 1);
	if (!mix)
		return 1;
	refs = calloc(MAXK * n, sizeof(double));
	ests = calloc(MAXK * n, sizeof(double));
	if (!refs || !ests)
		return 1;
	for (K = 0; K < MAXK; K++) {
		size_t nr, ne;
		unsigned r;
		double *x, *y;
		FILE *f;
		snprintf(path, sizeof(path), "%s/src%zu.wav", argv[a + 1], K);
		f = fopen(path, "r");
		if (!f)
			break;
		fclose(f);
		x = read_mono(path, &nr, &r, 1);
		snprintf(path, sizeof(path), "%s/source_%zu.wav", argv[a + 2], K + 1);
		y = read_mono(path, &ne, &r, 1);
		if (!x || !y || nr < n || ne != n) {
			fprintf(stderr, "strebm-score: source %zu: missing file or length mismatch\n", K + 1);
			return 1;
		}
		memcpy(refs + K * n, x, n * sizeof(double));
		memcpy(ests + K * n, y, n * sizeof(double));
		free(x);
		free(y);
	}
	s0 = (size_t)(skip * rate);
	if (!K || s0 >= n) {
		fprintf(stderr, "strebm-score: no references found or file too short\n");
		return 1;
	}
	/* score the segment after the skipped start: shift rows in place */
	for (k = 0; k < K; k++) {
		memmove(refs + k * (n - s0), refs + k * n + s0, (n - s0) * sizeof(double));
		memmove(ests + k * (n - s0), ests + k * n + s0, (n - s0) * sizeof(double));
	}
	if (strebm_match_sources(refs, ests, K, n - s0, perm, sdr) < 0)
		return 1;
	for (k = 0; k < K; k++) {
		base[k] = strebm_si_sdr(refs + k * (n - s0), mix + s0, n - s0);
		imp[k] = sdr[k] - base[k];
		printf("source %zu (%s/source_%zu.wav): SI-SDR %.1f dB, improvement %.1f dB over mic 1\n",
		       k + 1, argv[a + 2], perm[k] + 1, sdr[k], imp[k]);
	}
	qsort(imp, K, sizeof(double), cmp);
	printf("median SI-SDR improvement: %.1f dB (first %.1f s not scored)\n",
	       K % 2 ? imp[K / 2] : 0.5 * (imp[K / 2 - 1] + imp[K / 2]), skip);
	free(mix);
	free(refs);
	free(ests);
	return 0;
}
