/* SPDX-License-Identifier: MIT */
/*
 * strebm config: one schema table (section, key, type, default, range,
 * whether a reload may change it, help) drives the INI file parser (inih),
 * the --set section.key=value overrides and the commented example config.
 *
 * Load order (strebm_config_load): built-in defaults, the main file, its
 * drop-ins (FILE.d/, files named *.conf) in name order, then the --set list; a later
 * layer overrides an earlier one key by key. Every key remembers where it
 * was last set ("default", "FILE:LINE" or "--set"), so that errors about
 * combinations of keys (strebm_config_validate) can name the line to fix.
 *
 * A struct strebm_config is a plain value: no pointers, copy it with '='.
 *
 * Threads: main thread only (parsing uses library globals of inih and
 * messages are built in caller buffers; nothing here is RT-safe).
 */
#ifndef STREBM_CONFIG_H
#define STREBM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define STREBM_CONFIG_STR 256
#define STREBM_CONFIG_LIST 1024
/* Room for every key of the schema (a static assertion keeps it so). */
#define STREBM_CONFIG_MAX_KEYS 64
/* Bytes of one origin ("FILE:LINE"; long paths keep their tail). */
#define STREBM_CONFIG_ORIGIN 192
/* Bytes an error message may need (file name, line, key, values). */
#define STREBM_CONFIG_ERR 1024

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
	int joint_iters;   /* nonlinear: joint Adam steps per hop (0: off) */
	int joint_hidden;  /* nonlinear: MLP hidden width */
	double joint_lr_map; /* nonlinear: Adam step of the MLP's hidden layers */
	double window_ms;  /* live: window in ms (0: use window) */
	double hop_ms;     /* live: hop in ms (0: use hop) */
	double array_size_cm; /* convolutive: largest microphone distance (0: no spatial alignment) */
	int array_layout;     /* convolutive: 0 line, 1 other */
	double spatial_constraint; /* convolutive: core/conv doa_null */

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

	/* Where each key was last set, indexed like the schema: "default",
	 * "FILE:LINE" or "--set". Read it with strebm_config_origin(). */
	char origin[STREBM_CONFIG_MAX_KEYS][STREBM_CONFIG_ORIGIN];
};

enum strebm_backend_kind { STREBM_BACKEND_AUTO = 0, STREBM_BACKEND_FILE, STREBM_BACKEND_JACK,
			   STREBM_BACKEND_PORTAUDIO };

/** Built-in defaults; every origin is "default". */
void strebm_config_defaults(struct strebm_config *c);

/**
 * Apply "section.key=value" (as given to --set); the key's origin becomes
 * "--set". @return 0, or -EINVAL with a one-line reason in err (the old value
 * is kept).
 */
int strebm_config_set(struct strebm_config *c, const char *assignment, char *err, size_t errlen);

/**
 * Apply one key in section with value; origin (e.g. "file:line") prefixes
 * error messages and is remembered as the key's origin. @return 0 or -EINVAL
 * with err set (the old value is kept).
 */
int strebm_config_set_key(struct strebm_config *c, const char *section, const char *key,
			  const char *value, const char *origin, char *err, size_t errlen);

/**
 * Load one INI file on top of c (no drop-ins). Lines are at most 197 bytes
 * (inih's limit); a list value (jack.connect_inputs, jack.connect_outputs,
 * osc.allow) may continue on indented lines, which are appended with a comma.
 * @return 0; -ENOENT when the file does not exist; another negative errno
 * when it cannot be opened or read (-EACCES, -EFBIG over 1 MiB, ...);
 * -EINVAL for the content (not a regular file, invalid UTF-8, a NUL byte, a
 * line too long, a syntax error, an unknown section or key, a bad value),
 * with err naming FILE:LINE and the key. On error c may hold the keys of the lines
 * before the bad one: load into a scratch copy (strebm_config_load does).
 */
int strebm_config_load_file(struct strebm_config *c, const char *path, char *err, size_t errlen);

/** The main file read when none is given: SYSCONFDIR/strebmd/strebmd.conf. */
const char *strebm_config_default_path(void);

/**
 * The whole load order into c: defaults; the main file path (NULL: the
 * default path, which may be missing; a path given explicitly must exist);
 * then every file named *.conf in PATH.d/ (regular files, in strcmp order of their names;
 * a missing directory is fine); then sets[0..nsets) ("section.key=value",
 * as --set takes them).
 * @return 0, or a negative errno with err (STREBM_CONFIG_ERR bytes suffice)
 * naming the file, line and key; c is untouched on error, so a reload can
 * load into a fresh struct and keep the running one when this fails.
 */
int strebm_config_load(struct strebm_config *c, const char *path, const char *const *sets,
		       size_t nsets, char *err, size_t errlen);

/**
 * strebm_config_load() with the main file named and whether it may be
 * missing (as the default file may); its drop-ins are read either way.
 */
int strebm_config_load_at(struct strebm_config *c, const char *path, bool missing_ok,
			  const char *const *sets, size_t nsets, char *err, size_t errlen);

/**
 * Rules across keys that the configuration alone decides: engine.sources
 * at most audio.channels (live backends), engine.reference_mic at most
 * audio.channels (live), window and hop at least 16 samples when set, hop
 * not longer than window, bands not more than window, window and window_ms
 * (hop and hop_ms) not both set, and the same in milliseconds (converted
 * with portaudio.rate for the PortAudio backend). Each message names the
 * keys with their values and origins.
 * @param live true when M comes from audio.channels (jack, portaudio); false
 *	for the file backend, whose M is the file's (main.c checks it there).
 * @return 0 or -EINVAL with err set.
 */
int strebm_config_validate(const struct strebm_config *c, bool live, char *err, size_t errlen);

/**
 * Where "section.key" was last set: "default", "FILE:LINE" or "--set".
 * @return a string inside c, or NULL for an unknown name.
 */
const char *strebm_config_origin(const struct strebm_config *c, const char *name);

/**
 * The value of "section.key" as text (enums by name, booleans true/false).
 * @return 0, -ENOENT for an unknown name, -ENOSPC when buf is too small.
 */
int strebm_config_get(const struct strebm_config *c, const char *name, char *buf, size_t len);

/** Keys that differ between a running configuration and a reloaded one. */
struct strebm_config_changes {
	size_t nreload;   /* changed keys a reload applies */
	size_t nrestart;  /* changed keys that need a restart */
	const char *reload[STREBM_CONFIG_MAX_KEYS];  /* "section.key", static strings */
	const char *restart[STREBM_CONFIG_MAX_KEYS];
};

/** Compare running and next, key by key, into ch (nothing is modified). */
void strebm_config_compare(const struct strebm_config *running, const struct strebm_config *next,
			   struct strebm_config_changes *ch);

/**
 * SIGHUP helper: compare (as above) and copy into running the changed keys
 * a reload may change, with their origins; keys that need a restart keep
 * their running values (warn about ch->restart[], "engine.window changed:
 * restart needed"). next should have passed strebm_config_validate().
 * @return the number of keys applied (ch->nreload).
 */
size_t strebm_config_reload(struct strebm_config *running, const struct strebm_config *next,
			    struct strebm_config_changes *ch);

/** Write the commented example config documenting every key. */
void strebm_config_write_example(FILE *f);

#endif
