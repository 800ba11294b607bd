/* SPDX-License-Identifier: MIT */
/*
 * strebmd live: run the pipeline on a live backend (JACK or PortAudio) with
 * the main loop: signals through a signalfd (SIGTERM/SIGINT stop, SIGHUP
 * reload), backend supervision, periodic status.
 *
 * Threads: main thread. Signals must already be blocked (strebmd_signals_block)
 * before any thread starts.
 */
#ifndef STREBMD_LIVE_H
#define STREBMD_LIVE_H

#include <signal.h>
#include <stdbool.h>

#include "config.h"

struct strebmd_live_options {
	enum strebm_backend_kind backend; /* JACK or PORTAUDIO */
	const char *config_file;          /* for SIGHUP reloads; may be NULL */
	const char *const *sets;          /* --set list re-applied on reload */
	size_t nsets;
	bool quiet;
};

/** Block the signals the main loop reads (call before any thread starts). */
void strebmd_signals_block(sigset_t *set);
/** Run until SIGTERM/SIGINT. @return 0 on a clean stop, negative errno. */
int strebmd_run_live(const struct strebm_config *cfg, const struct strebmd_live_options *o,
		     const sigset_t *sigs);

#endif
