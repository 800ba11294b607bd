/* SPDX-License-Identifier: MIT */
/*
 * strebmd setup: turn the configuration and the stream's shape (channels,
 * sample rate) into an engine configuration, with one-line errors.
 * Main thread.
 */
#ifndef STREBMD_SETUP_H
#define STREBMD_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "engine.h"

/** @return 0, or -EINVAL after logging why. */
int strebmd_engine_config(const struct strebm_config *cfg, size_t M, unsigned rate,
			  struct strebm_engine_config *ec);

/**
 * Restore e from cfg->state_file (non-empty): check first, unless !probe,
 * that this run can save there later, then load; warn about what failed.
 * @return 0 (restored; *mode gets the state's mode) or < 0 (a fresh model).
 */
int strebmd_state_restore(const struct strebm_config *cfg, struct strebm_engine *e, bool probe,
			  enum strebm_mode *mode);

/** What "model state restored" adds for a state of mode m ("" or a note). */
const char *strebmd_state_note(enum strebm_mode m);

#endif
