/* SPDX-License-Identifier: MIT */
#include "wavfile.h"

#include <errno.h>
#include <limits.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 4096

struct strebm_wav_in {
	SNDFILE *sf;
	size_t channels;
	double *buf; /* CHUNK x channels interleaved */
};

static void set_err(char *err, size_t len, const char *fmt, const char *a, const char *b)
{
	if (err && len)
		snprintf(err, len, fmt, a, b);
}

struct strebm_wav_in *strebm_wav_in_open(const char *path, struct strebm_wav_info *info,
					 char *err, size_t errlen)
{
	struct strebm_wav_in *r;
	SF_INFO si;

	if (!path || !info) {
		set_err(err, errlen, "%s%s", "no input file given", "");
		return NULL;
	}
	memset(&si, 0, sizeof(si));
	r = calloc(1, sizeof(*r));
	if (!r) {
		set_err(err, errlen, "%s%s", "out of memory", "");
		return NULL;
	}
	r->sf = sf_open(path, SFM_READ, &si);
	if (!r->sf) {
		set_err(err, errlen, "cannot open '%s': %s", path, sf_strerror(NULL));
		free(r);
		return NULL;
	}
	if (si.channels < 1) {
		set_err(err, errlen, "'%s' has no audio channels%s", path, "");
		goto fail;
	}
	if (si.frames < 1) {
		set_err(err, errlen, "'%s' holds no audio frames%s", path, "");
		goto fail;
	}
	r->channels = (size_t)si.channels;
	r->buf = malloc(CHUNK * r->channels * sizeof(double));
	if (!r->buf) {
		set_err(err, errlen, "%s%s", "out of memory", "");
		goto fail;
	}
	info->rate = (unsigned)si.samplerate;
	info->channels = r->channels;
	info->frames = (size_t)si.frames;
	return r;
fail:
	strebm_wav_in_close(r);
	return NULL;
}

void strebm_wav_in_close(struct strebm_wav_in *r)
{
	if (!r)
		return;
	if (r->sf)
		sf_close(r->sf);
	free(r->buf);
	free(r);
}

long strebm_wav_in_read(struct strebm_wav_in *r, double *out, size_t n)
{
	size_t done = 0, C = r->channels, c, i;

	while (done < n) {
		size_t want = n - done > CHUNK ? CHUNK : n - done;
		sf_count_t got = sf_readf_double(r->sf, r->buf, (sf_count_t)want);
		if (got < 0)
			return -EIO;
		for (i = 0; i < (size_t)got; i++)
			for (c = 0; c < C; c++)
				out[c * n + done + i] = r->buf[i * C + c];
		done += (size_t)got;
		if ((size_t)got < want)
			break;
	}
	for (c = 0; c < C; c++)
		for (i = done; i < n; i++)
			out[c * n + i] = 0.0;
	return (long)done;
}

int strebm_wav_in_rewind(struct strebm_wav_in *r)
{
	return sf_seek(r->sf, 0, SEEK_SET) == 0 ? 0 : -EIO;
}

struct strebm_wav_out {
	size_t K;
	SNDFILE **sf;
	float *buf;
};

struct strebm_wav_out *strebm_wav_out_open(const char *dir, size_t K, unsigned rate,
					   char *err, size_t errlen)
{
	struct strebm_wav_out *w;
	size_t k;
	char path[PATH_MAX];

	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->K = K;
	w->sf = calloc(K, sizeof(SNDFILE *));
	w->buf = malloc(CHUNK * sizeof(float));
	if (!w->sf || !w->buf) {
		set_err(err, errlen, "%s%s", "out of memory", "");
		goto fail;
	}
	for (k = 0; k < K; k++) {
		SF_INFO si;
		memset(&si, 0, sizeof(si));
		si.samplerate = (int)rate;
		si.channels = 1;
		si.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
		if (snprintf(path, sizeof(path), "%s/source_%zu.wav", dir, k + 1) >= (int)sizeof(path)) {
			set_err(err, errlen, "output path too long: '%s'%s", dir, "");
			goto fail;
		}
		w->sf[k] = sf_open(path, SFM_WRITE, &si);
		if (!w->sf[k]) {
			set_err(err, errlen, "cannot write '%s': %s", path, sf_strerror(NULL));
			goto fail;
		}
		sf_command(w->sf[k], SFC_SET_UPDATE_HEADER_AUTO, NULL, SF_TRUE);
		sf_command(w->sf[k], SFC_SET_CLIPPING, NULL, SF_FALSE);
	}
	return w;
fail:
	strebm_wav_out_close(w);
	return NULL;
}

int strebm_wav_out_write(struct strebm_wav_out *w, const double *in, size_t stride, size_t n)
{
	size_t k, i, done;

	for (k = 0; k < w->K; k++)
		for (done = 0; done < n;) {
			size_t m = n - done > CHUNK ? CHUNK : n - done;
			for (i = 0; i < m; i++)
				w->buf[i] = (float)in[k * stride + done + i];
			if (sf_writef_float(w->sf[k], w->buf, (sf_count_t)m) != (sf_count_t)m)
				return -EIO;
			done += m;
		}
	return 0;
}

int strebm_wav_out_close(struct strebm_wav_out *w)
{
	size_t k;
	int ret = 0;

	if (!w)
		return 0;
	if (w->sf)
		for (k = 0; k < w->K; k++)
			if (w->sf[k] && sf_close(w->sf[k]) != 0)
				ret = -EIO;
	free(w->sf);
	free(w->buf);
	free(w);
	return ret;
}
