/* SPDX-License-Identifier: MIT */
/*
 * strebm wavfile: multichannel audio file input and per-source output files,
 * on libsndfile. Main/worker thread (they do I/O: never on the audio thread).
 */
#ifndef STREBM_WAVFILE_H
#define STREBM_WAVFILE_H

#include <stddef.h>

struct strebm_wav_in;

struct strebm_wav_info {
	unsigned rate;
	size_t channels;
	size_t frames;
};

/**
 * Open an audio file for reading.
 * @param err   out: on failure a one-line reason (libsndfile's), may be NULL
 * @return the reader or NULL (missing file, not audio, zero channels/frames).
 */
struct strebm_wav_in *strebm_wav_in_open(const char *path, struct strebm_wav_info *info,
					 char *err, size_t errlen);
/** Close; NULL is a no-op. */
void strebm_wav_in_close(struct strebm_wav_in *r);
/**
 * Read up to n frames into planar out (channels x n, row stride n);
 * missing frames at the end are zero-filled. @return frames read (>= 0) or
 * a negative errno.
 */
long strebm_wav_in_read(struct strebm_wav_in *r, double *out, size_t n);
/** Seek back to the first frame. @return 0 or -EIO. */
int strebm_wav_in_rewind(struct strebm_wav_in *r);

struct strebm_wav_out;

/**
 * Create K mono float WAV files DIR/source_1.wav ... DIR/source_K.wav.
 * The header is kept up to date after every write, so the files are
 * readable even if the process is stopped early.
 * @return the writer or NULL with err set.
 */
struct strebm_wav_out *strebm_wav_out_open(const char *dir, size_t K, unsigned rate,
					   char *err, size_t errlen);
/** Write n frames from planar in (K x stride). @return 0 or -EIO. */
int strebm_wav_out_write(struct strebm_wav_out *w, const double *in, size_t stride, size_t n);
/** Close and flush; NULL is a no-op. @return 0 or -EIO. */
int strebm_wav_out_close(struct strebm_wav_out *w);

#endif
