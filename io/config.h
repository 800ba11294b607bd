/* SPDX-License-Identifier: MIT */
/*
 * strebm config: one schema table (section, key, type, default, range,
 * whether a reload may change it, help) drives the INI file parser (inih),
 * the --set section.key=value overrides and the commented example config.
 *
 * Threads: main thread only.
 */
#ifndef STREBM_CONFIG_H
#define STREBM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define STREBM_CONFIG_STR 256
#define STREBM_CONFIG_LIST 1024

struct strebm_config {
	/* [engine] */
	int mode;          /* enum strebm_mode */
	int sources;       /* K; 0: as many as channels */
	int kernel;        /* enum strebm_kernel */
	int window;        /* samples; 0: auto (power of two near 50 ms) */
	int hop;           /* samples; 0: window / 4 */
	int context;       /* frames of statistics */
	int bands;         /* DCT bands */
	int sweeps;        /* iteration budget per hop */
	double floor;      /* spectral floor */
	int reference_mic; /* 1-based */
	bool permutation_guard;
	bool ordered_lengthscales;
	double gauss_forget;
	double window_ms;  /* live: window in ms (0: use window) */
	double hop_ms;     /* live: hop in ms (0: use hop) */

	/* [audio] */
	int backend;       /* enum strebm_backend_kind */
	int channels;      /* live: input channels M */
	int underrun_fill; /* 0 silence, 1 dry reference */
	int realtime;      /* 0 off, 1 try, 2 require */
	int rt_priority;   /* worker priority when realtime */

	/* [jack] */
	char client_name[STREBM_CONFIG_STR];
	char server[STREBM_CONFIG_STR];
	char connect_inputs[STREBM_CONFIG_LIST];
	char connect_outputs[STREBM_CONFIG_LIST];

	/* [portaudio] */
	char device[STREBM_CONFIG_STR];
	int pa_rate;
	int pa_frames;

	/* [osc] */
	char osc_address[STREBM_CONFIG_STR];
	int osc_port;
	char osc_allow[STREBM_CONFIG_LIST];

	/* [daemon] */
	double status_interval; /* s between STATUS= updates */
	char state_file[STREBM_CONFIG_STR];
};

enum strebm_backend_kind { STREBM_BACKEND_AUTO = 0, STREBM_BACKEND_FILE, STREBM_BACKEND_JACK,
			   STREBM_BACKEND_PORTAUDIO };

/** Built-in defaults. */
void strebm_config_defaults(struct strebm_config *c);

/**
 * Apply "section.key=value" (as given to --set).
 * @return 0, or -EINVAL with a one-line reason in err.
 */
int strebm_config_set(struct strebm_config *c, const char *assignment, char *err, size_t errlen);

/**
 * Apply one key in section with value; origin (e.g. "file:line") prefixes
 * error messages. @return 0 or -EINVAL with err set.
 */
int strebm_config_set_key(struct strebm_config *c, const char *section, const char *key,
			  const char *value, const char *origin, char *err, size_t errlen);

/**
 * Load an INI file on top of c. @return 0, -ENOENT (missing file), or
 * -EINVAL; err names file:line and key.
 */
int strebm_config_load_file(struct strebm_config *c, const char *path, char *err, size_t errlen);

/** Write the commented example config documenting every key. */
void strebm_config_write_example(FILE *f);

#endif
