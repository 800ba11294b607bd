/* SPDX-License-Identifier: MIT */
/*
 * strebmd setup: turn the configuration and the stream's shape (channels,
 * sample rate) into an engine configuration, with one-line errors.
 * Main thread.
 */
#ifndef STREBMD_SETUP_H
#define STREBMD_SETUP_H

#include <stddef.h>

#include "config.h"
#include "engine.h"

/** @return 0, or -EINVAL after logging why. */
int strebmd_engine_config(const struct strebm_config *cfg, size_t M, unsigned rate,
			  struct strebm_engine_config *ec);

#endif
