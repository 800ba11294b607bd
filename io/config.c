/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "kernel.h"

enum type { T_INT, T_DOUBLE, T_BOOL, T_ENUM, T_STRING };

struct schema {
	const char *section, *key;
	enum type type;
	size_t offset;
	const char *def;
	double min, max;           /* T_STRING: max is the buffer size */
	const char *const *names; /* T_ENUM */
	bool reload;
	const char *help;
};

static const char *const mode_names[] = { "linear", "nonlinear", "convolutive", NULL };
static const char *const kernel_names[] = { "rbf", "matern12", "matern32", "matern52", NULL };
static const char *const backend_names[] = { "auto", "file", "jack", "portaudio", NULL };
static const char *const fill_names[] = { "silence", "dry", NULL };
static const char *const realtime_names[] = { "off", "try", "require", NULL };

#define OFF(f) offsetof(struct strebm_config, f)

static const struct schema schema[] = {
	{ "engine", "mode", T_ENUM, OFF(mode), "linear", 0, 0, mode_names, true,
	  "Mixing model: linear (instantaneous) or nonlinear (post-nonlinear channels)." },
	{ "engine", "sources", T_INT, OFF(sources), "0", 0, 16, NULL, false,
	  "Number of sources K; 0 means as many as input channels." },
	{ "engine", "kernel", T_ENUM, OFF(kernel), "rbf", 0, 0, kernel_names, true,
	  "GP kernel of every source: rbf, matern12, matern32, matern52." },
	{ "engine", "window", T_INT, OFF(window), "0", 0, 65536, NULL, false,
	  "Window (frame) length in samples; 0 picks the power of two nearest 50 ms." },
	{ "engine", "hop", T_INT, OFF(hop), "0", 0, 65536, NULL, false,
	  "Hop in samples (the output latency); 0 means window / 4." },
	{ "engine", "context", T_INT, OFF(context), "64", 1, 4096, NULL, false,
	  "Frames of statistics the solver keeps (its memory)." },
	{ "engine", "bands", T_INT, OFF(bands), "64", 1, 1024, NULL, false,
	  "DCT bands per frame for the spectral statistics." },
	{ "engine", "sweeps", T_INT, OFF(sweeps), "2", 1, 16, NULL, true,
	  "Solver iterations (Jacobi sweeps) per hop: the per-hop budget." },
	{ "engine", "floor", T_DOUBLE, OFF(floor), "0.001", 1e-9, 1.0, NULL, false,
	  "Spectral floor added to each source's normalised kernel spectrum." },
	{ "engine", "reference_mic", T_INT, OFF(reference_mic), "1", 1, 64, NULL, false,
	  "Microphone (1-based) each source is projected back to (fixes scale and sign)." },
	{ "engine", "permutation_guard", T_BOOL, OFF(permutation_guard), "true", 0, 0, NULL, true,
	  "Keep each source on its output when the solver swaps them." },
	{ "engine", "ordered_lengthscales", T_BOOL, OFF(ordered_lengthscales), "false", 0, 0, NULL, false,
	  "Keep length-scales in ascending order across sources (canonical order)." },
	{ "engine", "gauss_forget", T_DOUBLE, OFF(gauss_forget), "0.999", 0.5, 1.0, NULL, false,
	  "Nonlinear mode: forgetting factor per hop of the running marginal estimate." },
	{ "engine", "window_ms", T_DOUBLE, OFF(window_ms), "0", 0, 2000, NULL, false,
	  "Window in milliseconds, converted with the stream's sample rate; 0: use window." },
	{ "engine", "hop_ms", T_DOUBLE, OFF(hop_ms), "0", 0, 2000, NULL, false,
	  "Hop in milliseconds (the latency); 0: use hop." },

	{ "audio", "backend", T_ENUM, OFF(backend), "auto", 0, 0, backend_names, false,
	  "Audio backend: auto (file with --input, else jack), file, jack, portaudio." },
	{ "audio", "channels", T_INT, OFF(channels), "2", 1, 64, NULL, false,
	  "Live backends: number of input channels (microphones) M." },
	{ "audio", "underrun_fill", T_ENUM, OFF(underrun_fill), "silence", 0, 0, fill_names, true,
	  "What the outputs play when the worker is late: silence, or dry (reference mic / K)." },
	{ "audio", "realtime", T_ENUM, OFF(realtime), "try", 0, 0, realtime_names, false,
	  "Lock memory and run the worker with realtime priority: off, try (warn), require." },
	{ "audio", "rt_priority", T_INT, OFF(rt_priority), "60", 1, 98, NULL, false,
	  "SCHED_FIFO priority of the worker thread when realtime is on." },

	{ "jack", "client_name", T_STRING, OFF(client_name), "strebmd", 0, STREBM_CONFIG_STR, NULL, false,
	  "JACK client name." },
	{ "jack", "server", T_STRING, OFF(server), "", 0, STREBM_CONFIG_STR, NULL, false,
	  "JACK server name; empty: $JACK_DEFAULT_SERVER or the default server." },
	{ "jack", "connect_inputs", T_STRING, OFF(connect_inputs), "", 0, STREBM_CONFIG_LIST, NULL, true,
	  "Ports connected to in_1, in_2, ... (comma-separated); empty: none." },
	{ "jack", "connect_outputs", T_STRING, OFF(connect_outputs), "", 0, STREBM_CONFIG_LIST, NULL, true,
	  "Ports source_1, source_2, ... are connected to (comma-separated); empty: none." },

	{ "portaudio", "device", T_STRING, OFF(device), "", 0, STREBM_CONFIG_STR, NULL, false,
	  "PortAudio device, by name or index; empty: the default input device." },
	{ "portaudio", "rate", T_INT, OFF(pa_rate), "48000", 8000, 384000, NULL, false,
	  "PortAudio sample rate in Hz." },
	{ "portaudio", "frames", T_INT, OFF(pa_frames), "256", 16, 8192, NULL, false,
	  "PortAudio frames per buffer (the period)." },

	{ "osc", "address", T_STRING, OFF(osc_address), "127.0.0.1", 0, STREBM_CONFIG_STR, NULL, false,
	  "Address the OSC server binds to (127.0.0.1: this machine only)." },
	{ "osc", "port", T_INT, OFF(osc_port), "9000", 0, 65535, NULL, false,
	  "OSC UDP port; 0 turns OSC off." },
	{ "osc", "allow", T_STRING, OFF(osc_allow), "127.0.0.1", 0, STREBM_CONFIG_LIST, NULL, true,
	  "Senders accepted: comma-separated addresses or prefixes (e.g. 192.168.1.)." },

	{ "daemon", "status_interval", T_DOUBLE, OFF(status_interval), "15", 1, 3600, NULL, true,
	  "Seconds between status summaries (systemd STATUS= and the log)." },
	{ "daemon", "state_file", T_STRING, OFF(state_file), "", 0, STREBM_CONFIG_STR, NULL, false,
	  "Model state restored at start and saved at stop; empty: none." },
};

#define NSCHEMA (sizeof(schema) / sizeof(schema[0]))

static int parse_value(struct strebm_config *c, const struct schema *s, const char *value,
		       const char *origin, char *err, size_t errlen)
{
	char *end;
	void *p = (char *)c + s->offset;
	unsigned i;

	switch (s->type) {
	case T_INT: {
		long v;
		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end) {
			snprintf(err, errlen, "%s: %s.%s: '%s' is not an integer", origin,
				 s->section, s->key, value);
			return -EINVAL;
		}
		if ((double)v < s->min || (double)v > s->max) {
			snprintf(err, errlen, "%s: %s.%s: %ld is out of range [%g, %g]", origin,
				 s->section, s->key, v, s->min, s->max);
			return -EINVAL;
		}
		*(int *)p = (int)v;
		return 0;
	}
	case T_DOUBLE: {
		double v;
		errno = 0;
		v = strtod(value, &end);
		if (errno || end == value || *end || !isfinite(v)) {
			snprintf(err, errlen, "%s: %s.%s: '%s' is not a number", origin,
				 s->section, s->key, value);
			return -EINVAL;
		}
		if (v < s->min || v > s->max) {
			snprintf(err, errlen, "%s: %s.%s: %g is out of range [%g, %g]", origin,
				 s->section, s->key, v, s->min, s->max);
			return -EINVAL;
		}
		*(double *)p = v;
		return 0;
	}
	case T_BOOL:
		if (!strcmp(value, "true") || !strcmp(value, "yes") || !strcmp(value, "1") ||
		    !strcmp(value, "on")) {
			*(bool *)p = true;
			return 0;
		}
		if (!strcmp(value, "false") || !strcmp(value, "no") || !strcmp(value, "0") ||
		    !strcmp(value, "off")) {
			*(bool *)p = false;
			return 0;
		}
		snprintf(err, errlen, "%s: %s.%s: '%s' is not a boolean (true/false)", origin,
			 s->section, s->key, value);
		return -EINVAL;
	case T_ENUM: {
		char list[128] = "";
		for (i = 0; s->names[i]; i++)
			if (!strcmp(value, s->names[i])) {
				*(int *)p = (int)i;
				return 0;
			}
		for (i = 0; s->names[i]; i++) {
			strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
			strncat(list, s->names[i], sizeof(list) - strlen(list) - 1);
		}
		snprintf(err, errlen, "%s: %s.%s: unknown value '%s' (one of: %s)", origin,
			 s->section, s->key, value, list);
		return -EINVAL;
	}
	case T_STRING: {
		size_t n = strlen(value);
		if (n >= (size_t)s->max) {
			snprintf(err, errlen, "%s: %s.%s: value is too long (at most %d bytes)",
				 origin, s->section, s->key, (int)s->max - 1);
			return -EINVAL;
		}
		memcpy(p, value, n + 1);
		return 0;
	}
	}
	return -EINVAL;
}

void strebm_config_defaults(struct strebm_config *c)
{
	size_t i;
	char err[8];

	memset(c, 0, sizeof(*c));
	for (i = 0; i < NSCHEMA; i++)
		parse_value(c, &schema[i], schema[i].def, "default", err, sizeof(err));
}

int strebm_config_set_key(struct strebm_config *c, const char *section, const char *key,
			  const char *value, const char *origin, char *err, size_t errlen)
{
	size_t i;
	bool known_section = false;

	for (i = 0; i < NSCHEMA; i++) {
		if (strcmp(schema[i].section, section))
			continue;
		known_section = true;
		if (!strcmp(schema[i].key, key))
			return parse_value(c, &schema[i], value, origin, err, errlen);
	}
	if (!known_section)
		snprintf(err, errlen, "%s: unknown section [%s]", origin, section);
	else
		snprintf(err, errlen, "%s: unknown key '%s' in [%s]", origin, key, section);
	return -EINVAL;
}

int strebm_config_set(struct strebm_config *c, const char *assignment, char *err, size_t errlen)
{
	char section[64], key[64];
	const char *dot, *eq;
	size_t ls, lk;

	dot = strchr(assignment, '.');
	eq = strchr(assignment, '=');
	if (!dot || !eq || dot > eq) {
		snprintf(err, errlen, "--set %s: expected section.key=value", assignment);
		return -EINVAL;
	}
	ls = (size_t)(dot - assignment);
	lk = (size_t)(eq - dot - 1);
	if (!ls || !lk || ls >= sizeof(section) || lk >= sizeof(key)) {
		snprintf(err, errlen, "--set %s: expected section.key=value", assignment);
		return -EINVAL;
	}
	memcpy(section, assignment, ls);
	section[ls] = 0;
	memcpy(key, dot + 1, lk);
	key[lk] = 0;
	return strebm_config_set_key(c, section, key, eq + 1, "--set", err, errlen);
}

struct load_ctx {
	struct strebm_config *c;
	const char *path;
	FILE *f;
	int line;
	char *err;
	size_t errlen;
	int ret;
};

/* Our reader counts lines, so that the handler (called right after its line
 * is read; Debian's inih has no line numbers in handlers) can name file:line. */
static char *on_ini_read(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	char *r = fgets(str, num, ctx->f);

	if (r)
		ctx->line++;
	return r;
}

static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	char origin[PATH_MAX + 32];

	if (ctx->ret)
		return 0;
	snprintf(origin, sizeof(origin), "%s:%d", ctx->path, ctx->line);
	ctx->ret = strebm_config_set_key(ctx->c, section, name, value, origin, ctx->err,
					 ctx->errlen);
	return ctx->ret ? 0 : 1;
}

int strebm_config_load_file(struct strebm_config *c, const char *path, char *err, size_t errlen)
{
	struct load_ctx ctx = { c, path, NULL, 0, err, errlen, 0 };
	int r;

	ctx.f = fopen(path, "r");
	if (!ctx.f) {
		int e = errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
		return e == ENOENT ? -ENOENT : -EINVAL;
	}
	r = ini_parse_stream(on_ini_read, &ctx, on_ini_entry, &ctx);
	fclose(ctx.f);
	if (ctx.ret)
		return ctx.ret;
	if (r != 0) {
		snprintf(err, errlen, "%s:%d: syntax error", path, r);
		return -EINVAL;
	}
	return 0;
}

void strebm_config_write_example(FILE *f)
{
	size_t i;
	const char *section = "";

	fprintf(f, "# strebmd configuration: every key, with its default and range.\n"
		   "# Generated by `strebmd --print-config`; keep it in sync (a test checks).\n"
		   "# Any key can be overridden with --set section.key=value.\n");
	for (i = 0; i < NSCHEMA; i++) {
		const struct schema *s = &schema[i];
		if (strcmp(section, s->section)) {
			section = s->section;
			fprintf(f, "\n[%s]\n", section);
		}
		fprintf(f, "\n# %s\n", s->help);
		switch (s->type) {
		case T_INT:
		case T_DOUBLE:
			fprintf(f, "# range: %g .. %g", s->min, s->max);
			break;
		case T_BOOL:
			fprintf(f, "# values: true, false");
			break;
		case T_STRING:
			fprintf(f, "# text");
			break;
		case T_ENUM: {
			unsigned j;
			fprintf(f, "# values:");
			for (j = 0; s->names[j]; j++)
				fprintf(f, "%s %s", j ? "," : "", s->names[j]);
			break;
		}
		}
		fprintf(f, "%s\n#%s = %s\n", s->reload ? "; reloadable" : "; restart needed",
			s->key, s->def);
	}
}
