/* SPDX-License-Identifier: MIT */
/*
 * strebm statefile: the engine state on disk (see strebm_engine_save_state()
 * for the format). Writes are atomic: a temporary file in the same directory,
 * fsync, rename over the target, fsync of the directory; a crash leaves the
 * old file or the new one, never a torn one.
 *
 * Threads: any non-audio, non-worker thread (they do file I/O). The
 * *_engine() helpers also touch the engine: call them only while no other
 * thread runs it (start-up, shutdown, file mode); the live daemon instead
 * serialises on the worker at a hop boundary and writes the buffer here.
 */
#ifndef STREBM_STATEFILE_H
#define STREBM_STATEFILE_H

#include <stddef.h>

#include "engine.h"

/** Largest state file accepted by the readers (bytes). */
#define STREBM_STATEFILE_MAX ((size_t)256 << 20)

/**
 * Write len bytes of buf to path atomically.
 * @return 0, or a negative errno with a one-line reason in err.
 */
int strebm_statefile_write(const char *path, const void *buf, size_t len, char *err,
			   size_t errlen);

/**
 * Check now that path can be written later: it is absent or a regular file,
 * and a file can be created beside it (one is created and removed), so that
 * a run learns at its start, not its end, that its state will not be saved.
 * @return 0, or a negative errno with a one-line reason in err.
 */
int strebm_statefile_probe(const char *path, char *err, size_t errlen);

/**
 * Read the whole file at path into buf (capacity cap); *len gets its size.
 * @return 0, -EFBIG when it is larger than cap, or another negative errno,
 * with a one-line reason in err.
 */
int strebm_statefile_read(const char *path, void *buf, size_t cap, size_t *len, char *err,
			  size_t errlen);

/** Serialise e and write it to path atomically (allocates). @return as write. */
int strebm_statefile_save_engine(const char *path, const struct strebm_engine *e, char *err,
				 size_t errlen);

/**
 * Read path and restore e from it (allocates). @return 0, a negative errno
 * from reading, or -EINVAL when the file is not a state of this engine's
 * dimensions or is corrupt (e unchanged).
 */
int strebm_statefile_load_engine(const char *path, struct strebm_engine *e, char *err,
				 size_t errlen);

#endif
