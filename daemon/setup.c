/* SPDX-License-Identifier: MIT */
#include "setup.h"

#include <errno.h>
#include <limits.h>
#include <math.h>

#include "log.h"
#include "statefile.h"

static size_t auto_window(unsigned rate, int mode)
{
	double target = 0.05 * (double)rate;
	size_t T = 16;

	/* convolutive: the STFT frame, the power of two nearest 128 ms (log scale) */
	if (mode == STREBM_MODE_CONVOLUTIVE)
		return (size_t)1 << (int)fmin(16.0, fmax(4.0, round(log2(0.128 * (double)rate))));
	while ((double)T * 1.5 < target && T < 65536)
		T *= 2;
	return T;
}

/* Fill the engine config from the configuration and the stream shape. */
int strebmd_engine_config(const struct strebm_config *cfg, size_t M, unsigned rate,
			 struct strebm_engine_config *ec)
{
	size_t K = cfg->sources ? (size_t)cfg->sources : M;
	size_t T = cfg->window ? (size_t)cfg->window : auto_window(rate, cfg->mode);
	size_t H;

	if (cfg->window_ms > 0) {
		T = (size_t)lround(cfg->window_ms * 1e-3 * (double)rate);
		T += T & 1; /* even: the convolutive mode's STFT frame needs it */
	}
	H = cfg->hop ? (size_t)cfg->hop : T / 4;
	if (cfg->hop_ms > 0)
		H = (size_t)lround(cfg->hop_ms * 1e-3 * (double)rate);

	if (K > M) {
		log_error("%zu sources requested but the input has only %zu channel%s "
			  "(the %s mode needs sources <= channels)", K, M, M == 1 ? "" : "s",
			  strebm_mode_name((enum strebm_mode)cfg->mode));
		return -EINVAL;
	}
	if (M > STREBM_MAX_CHANNELS) {
		log_error("%zu input channels: at most %d are supported", M, STREBM_MAX_CHANNELS);
		return -EINVAL;
	}
	if (K > STREBM_MAX_SOURCES) {
		log_error("%zu sources: at most %d are supported%s", K, STREBM_MAX_SOURCES,
			  cfg->sources ? "" : " (sources default to one per input channel: "
			  "set --sources K)");
		return -EINVAL;
	}
	if (T < 16) {
		log_error("engine.window %zu is too short (at least 16 samples)", T);
		return -EINVAL;
	}
	if (H < 16) {
		log_error("engine.hop %zu is too short (at least 16 samples)", H);
		return -EINVAL;
	}
	if (H > T) {
		log_error("engine.hop %zu is longer than engine.window %zu", H, T);
		return -EINVAL;
	}
	if (cfg->mode == STREBM_MODE_CONVOLUTIVE && T % 2) {
		log_error("engine.window %zu: convolutive mode needs an even window", T);
		return -EINVAL;
	}
	if (cfg->mode == STREBM_MODE_CONVOLUTIVE && 2 * H > T) {
		log_error("engine.hop %zu is more than half of engine.window %zu: convolutive mode "
			  "needs hop <= window / 2", H, T);
		return -EINVAL;
	}
	if ((size_t)cfg->bands > T) {
		log_error("engine.bands %d exceeds engine.window %zu", cfg->bands, T);
		return -EINVAL;
	}
	if ((size_t)cfg->reference_mic > M) {
		log_error("engine.reference_mic %d but the input has %zu channels",
			  cfg->reference_mic, M);
		return -EINVAL;
	}
	strebm_engine_config_default(ec, M, K, T, H);
	ec->mode = (enum strebm_mode)cfg->mode;
	ec->kernel = (enum strebm_kernel)cfg->kernel;
	ec->context = (size_t)cfg->context;
	ec->bands = (size_t)cfg->bands;
	ec->sweeps = (unsigned)cfg->sweeps;
	ec->floor = cfg->floor;
	ec->ref_mic = (size_t)cfg->reference_mic - 1;
	ec->perm_guard = cfg->permutation_guard;
	ec->ell_ordered = cfg->ordered_lengthscales;
	ec->gauss_forget = cfg->gauss_forget;
	ec->joint_iters = (unsigned)cfg->joint_iters;
	ec->joint_hidden = (size_t)cfg->joint_hidden;
	ec->joint_lr_map = cfg->joint_lr_map;
	/* the array's size as a delay in samples (c = 343 m/s), with 10 % margin */
	ec->conv_array_delay = cfg->array_size_cm > 0.0
		? fmax(1.0, 1.1 * cfg->array_size_cm * 0.01 / 343.0 * (double)rate) : -1.0;
	ec->conv_array_other = cfg->array_layout == 1;
	ec->conv_null = cfg->spatial_constraint;
	return 0;
}


int strebmd_state_restore(const struct strebm_config *cfg, struct strebm_engine *e, bool probe,
			  enum strebm_mode *mode)
{
	char err[PATH_MAX + 128], perr[PATH_MAX + 128];
	int pr = probe ? strebm_statefile_probe(cfg->state_file, perr, sizeof(perr)) : 0;
	int r = strebm_statefile_load_engine(cfg->state_file, e, err, sizeof(err));

	if (r == 0) {
		struct strebm_engine_status es;
		strebm_engine_get_status(e, &es);
		*mode = es.mode;
	} else if (r != -ENOENT) {
		log_warn("%s (starting from a fresh model%s)", err,
			 pr == 0 ? "; the file is replaced when this run saves its own" : "");
	}
	if (pr < 0)
		log_warn("daemon.state_file (from %s): %s: the model state will not be saved",
			 strebm_config_origin(cfg, "daemon.state_file"), perr);
	return r;
}

const char *strebmd_state_note(enum strebm_mode m)
{
	return m == STREBM_MODE_CONVOLUTIVE
		? "; the convolutive demixer is not in a state: it learns again from the start" : "";
}
