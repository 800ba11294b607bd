/* SPDX-License-Identifier: MIT */
#include "config.h"

#include "allow.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buildconf.h"
#include "engine.h"
#include "kernel.h"

enum type { T_INT, T_DOUBLE, T_BOOL, T_ENUM, T_STRING };

struct schema {
	const char *section, *key, *name; /* name: "section.key" */
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
static const char *const layout_names[] = { "line", "other", NULL };
static const char *const backend_names[] = { "auto", "file", "jack", "portaudio", NULL };
static const char *const fill_names[] = { "silence", "dry", NULL };
static const char *const realtime_names[] = { "off", "try", "require", NULL };

#define OFF(f) offsetof(struct strebm_config, f)
#define KEY(s, k) s, k, s "." k

static const struct schema schema[] = {
	{ KEY("engine", "mode"), T_ENUM, OFF(mode), "linear", 0, 0, mode_names, true,
	  "Mixing model: linear (instantaneous), nonlinear (post-nonlinear channels) or\n"
	  "# convolutive (delays and reverberation: STFT, latency one frame)." },
	{ KEY("engine", "sources"), T_INT, OFF(sources), "0", 0, 16, NULL, false,
	  "Number of sources K; 0 means as many as input channels." },
	{ KEY("engine", "kernel"), T_ENUM, OFF(kernel), "rbf", 0, 0, kernel_names, true,
	  "GP kernel of every source: rbf, matern12, matern32, matern52." },
	{ KEY("engine", "window"), T_INT, OFF(window), "0", 0, 65536, NULL, false,
	  "Window (frame) length in samples; 0 picks the power of two nearest 50 ms." },
	{ KEY("engine", "hop"), T_INT, OFF(hop), "0", 0, 65536, NULL, false,
	  "Hop in samples (the output latency); 0 means window / 4." },
	{ KEY("engine", "context"), T_INT, OFF(context), "64", 1, 4096, NULL, false,
	  "Frames of statistics the solver keeps (its memory)." },
	{ KEY("engine", "bands"), T_INT, OFF(bands), "64", 1, 1024, NULL, false,
	  "DCT bands per frame for the spectral statistics." },
	{ KEY("engine", "sweeps"), T_INT, OFF(sweeps), "2", 1, 16, NULL, false,
	  "Solver iterations (Jacobi sweeps) per hop: the per-hop budget." },
	{ KEY("engine", "floor"), T_DOUBLE, OFF(floor), "0.001", 1e-9, 1.0, NULL, false,
	  "Spectral floor added to each source's normalised kernel spectrum." },
	{ KEY("engine", "reference_mic"), T_INT, OFF(reference_mic), "1", 1, 64, NULL, false,
	  "Microphone (1-based) each source is projected back to (fixes scale and sign)." },
	{ KEY("engine", "permutation_guard"), T_BOOL, OFF(permutation_guard), "true", 0, 0, NULL, false,
	  "Keep each source on its output when the solver swaps them." },
	{ KEY("engine", "ordered_lengthscales"), T_BOOL, OFF(ordered_lengthscales), "false", 0, 0, NULL, false,
	  "Keep length-scales in ascending order across sources (canonical order)." },
	{ KEY("engine", "gauss_forget"), T_DOUBLE, OFF(gauss_forget), "0.999", 0.5, 1.0, NULL, false,
	  "Nonlinear mode: forgetting factor per hop of the running marginal estimate." },
	{ KEY("engine", "joint_iters"), T_INT, OFF(joint_iters), "2", 0, 64, NULL, false,
	  "Nonlinear mode: Adam steps per hop of the joint solver (latents, MLP map) that\n"
	  "# starts from the linear solution (more steps per hop drift further from it);\n"
	  "# 0 turns it off (Gaussianize + linear only)." },
	{ KEY("engine", "joint_hidden"), T_INT, OFF(joint_hidden), "16", 1, 256, NULL, false,
	  "Nonlinear mode: hidden width of the MLP observation map." },
	{ KEY("engine", "joint_lr_map"), T_DOUBLE, OFF(joint_lr_map), "3e-5", 0, 0.1, NULL, false,
	  "Nonlinear mode: Adam step of the MLP's hidden layers (larger learns faster and\n"
	  "# drifts sooner: the MLP objective has no independence term)." },
	{ KEY("engine", "window_ms"), T_DOUBLE, OFF(window_ms), "0", 0, 2000, NULL, false,
	  "Window in milliseconds, converted with the stream's sample rate; 0: use window." },
	{ KEY("engine", "hop_ms"), T_DOUBLE, OFF(hop_ms), "0", 0, 2000, NULL, false,
	  "Hop in milliseconds (the latency); 0: use hop." },
	{ KEY("engine", "array_size_cm"), T_DOUBLE, OFF(array_size_cm), "17", 0, 10000, NULL, false,
	  "Convolutive mode: the largest distance between two of the microphones, in cm.\n"
	  "# Each source's bins are aligned by direction (delays up to this size), and the\n"
	  "# output falls back towards the dry reference microphone while the demixing fits\n"
	  "# no set of directions. 0 turns both off (widely spaced or unknown microphones)." },
	{ KEY("engine", "array_layout"), T_ENUM, OFF(array_layout), "line", 0, 0, layout_names, false,
	  "Convolutive mode: line (the microphones in channel order along a line, evenly\n"
	  "# spaced: one direction per source is fitted over all of them) or other (each\n"
	  "# microphone's delay fitted on its own)." },
	{ KEY("engine", "spatial_constraint"), T_DOUBLE, OFF(spatial_constraint), "0.2", 0, 1, NULL,
	  false,
	  "Convolutive mode: weight of the spatial constraint (each output nulls the other\n"
	  "# sources' fitted directions), relative to the data. It keeps the bins in one\n"
	  "# order and the separation steady in reverberant rooms; with a strong reflection\n"
	  "# close behind the direct sound (a table under the array) it costs a little\n"
	  "# separation; much above the default, on a mixture that is not a room (no\n"
	  "# delays), the outputs grow loud and cancel. 0: off. Needs array_size_cm > 0." },

	{ KEY("audio", "backend"), T_ENUM, OFF(backend), "auto", 0, 0, backend_names, false,
	  "Audio backend: auto (file with --input, else jack when a server runs, else\n"
	  "# portaudio), file, jack, portaudio." },
	{ KEY("audio", "channels"), T_INT, OFF(channels), "2", 1, 64, NULL, false,
	  "Live backends: number of input channels (microphones) M." },
	{ KEY("audio", "underrun_fill"), T_ENUM, OFF(underrun_fill), "silence", 0, 0, fill_names, true,
	  "What the outputs play when the worker is late: silence, or dry (reference mic / K)." },
	{ KEY("audio", "realtime"), T_ENUM, OFF(realtime), "try", 0, 0, realtime_names, false,
	  "Lock memory and run the worker with realtime priority: off, try (warn), require." },
	{ KEY("audio", "rt_priority"), T_INT, OFF(rt_priority), "0", 0, 98, NULL, false,
	  "SCHED_FIFO priority of the worker thread; 0: just below the audio server's threads." },

	{ KEY("jack", "client_name"), T_STRING, OFF(client_name), "strebmd", 0, STREBM_CONFIG_STR, NULL, false,
	  "JACK client name." },
	{ KEY("jack", "server"), T_STRING, OFF(server), "", 0, STREBM_CONFIG_STR, NULL, false,
	  "JACK server name; empty: $JACK_DEFAULT_SERVER or the default server." },
	{ KEY("jack", "connect_inputs"), T_STRING, OFF(connect_inputs), "", 0, STREBM_CONFIG_LIST, NULL, true,
	  "Ports connected to in_1, in_2, ... (comma-separated); empty: none." },
	{ KEY("jack", "connect_outputs"), T_STRING, OFF(connect_outputs), "", 0, STREBM_CONFIG_LIST, NULL, true,
	  "Ports source_1, source_2, ... are connected to (comma-separated); empty: none." },

	{ KEY("portaudio", "device"), T_STRING, OFF(device), "", 0, STREBM_CONFIG_STR, NULL, false,
	  "PortAudio device, by name or index; empty: the default input device." },
	{ KEY("portaudio", "rate"), T_INT, OFF(pa_rate), "48000", 8000, 384000, NULL, false,
	  "PortAudio sample rate in Hz." },
	{ KEY("portaudio", "frames"), T_INT, OFF(pa_frames), "256", 16, 8192, NULL, false,
	  "PortAudio frames per buffer (the period)." },

	{ KEY("osc", "address"), T_STRING, OFF(osc_address), "127.0.0.1", 0, STREBM_CONFIG_STR, NULL, false,
	  "Address the OSC server binds to (127.0.0.1: this machine only)." },
	{ KEY("osc", "port"), T_INT, OFF(osc_port), "9000", 0, 65535, NULL, false,
	  "OSC UDP port; 0 turns OSC off." },
	{ KEY("osc", "allow"), T_STRING, OFF(osc_allow), "127.0.0.1", 0, STREBM_CONFIG_LIST, NULL, true,
	  "Senders accepted: comma-separated addresses or prefixes (e.g. 192.168.1.)." },

	{ KEY("daemon", "status_interval"), T_DOUBLE, OFF(status_interval), "15", 1, 3600, NULL, true,
	  "Seconds between status summaries (systemd STATUS= and the log)." },
	{ KEY("daemon", "state_file"), T_STRING, OFF(state_file), "", 0, STREBM_CONFIG_STR, NULL, false,
	  "Model state restored at start and saved at stop; empty: none." },
};

#define NSCHEMA (sizeof(schema) / sizeof(schema[0]))
_Static_assert(NSCHEMA <= STREBM_CONFIG_MAX_KEYS, "raise STREBM_CONFIG_MAX_KEYS");

/* Lists: string keys that take comma-separated items (and continuation lines). */
static bool is_list(const struct schema *s)
{
	return s->type == T_STRING && (size_t)s->max == STREBM_CONFIG_LIST;
}

static const struct schema *find_key(const char *section, const char *key, size_t *idx)
{
	size_t i;

	for (i = 0; i < NSCHEMA; i++)
		if (!strcmp(schema[i].section, section) && !strcmp(schema[i].key, key)) {
			if (idx)
				*idx = i;
			return &schema[i];
		}
	return NULL;
}

static const struct schema *find_name(const char *name, size_t *idx)
{
	size_t i;

	for (i = 0; i < NSCHEMA; i++)
		if (!strcmp(schema[i].name, name)) {
			if (idx)
				*idx = i;
			return &schema[i];
		}
	return NULL;
}

static bool known_section(const char *section)
{
	size_t i;

	for (i = 0; i < NSCHEMA; i++)
		if (!strcmp(schema[i].section, section))
			return true;
	return false;
}

/* Remember where key idx was set; an over-long origin keeps its tail
 * (the file name and line matter most). */
static void set_origin(struct strebm_config *c, size_t idx, const char *origin)
{
	size_t n = strlen(origin);

	if (n < STREBM_CONFIG_ORIGIN) {
		memcpy(c->origin[idx], origin, n + 1);
		return;
	}
	memcpy(c->origin[idx], "...", 3);
	memcpy(c->origin[idx] + 3, origin + n - (STREBM_CONFIG_ORIGIN - 4), STREBM_CONFIG_ORIGIN - 3);
}

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
		if (s->offset == OFF(osc_allow)) {
			char why[160];
			if (strebm_allow_check(value, why, sizeof(why)) < 0) {
				snprintf(err, errlen, "%s: %s.%s: %s", origin, s->section, s->key, why);
				return -EINVAL;
			}
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
	for (i = 0; i < NSCHEMA; i++) {
		parse_value(c, &schema[i], schema[i].def, "default", err, sizeof(err));
		set_origin(c, i, "default");
	}
}

int strebm_config_set_key(struct strebm_config *c, const char *section, const char *key,
			  const char *value, const char *origin, char *err, size_t errlen)
{
	const struct schema *s;
	size_t idx;
	int r;

	s = find_key(section, key, &idx);
	if (!s) {
		if (!*section)
			snprintf(err, errlen, "%s: key '%s' is outside any section", origin, key);
		else if (!known_section(section))
			snprintf(err, errlen, "%s: unknown section [%s] (key '%s')", origin, section,
				 key);
		else
			snprintf(err, errlen, "%s: unknown key '%s' in [%s]", origin, key, section);
		return -EINVAL;
	}
	r = parse_value(c, s, value, origin, err, errlen);
	if (r == 0)
		set_origin(c, idx, origin);
	return r;
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

/* Offset of the first byte of s[0..n) that is not well-formed UTF-8
 * (overlong forms, surrogates and code points past U+10FFFF included), or -1. */
static long utf8_invalid(const unsigned char *s, size_t n)
{
	size_t i = 0, len, k;
	uint32_t cp, min;

	while (i < n) {
		unsigned char b = s[i];
		if (b < 0x80) {
			i++;
			continue;
		}
		if ((b & 0xe0) == 0xc0) {
			len = 2, cp = b & 0x1fu, min = 0x80;
		} else if ((b & 0xf0) == 0xe0) {
			len = 3, cp = b & 0x0fu, min = 0x800;
		} else if ((b & 0xf8) == 0xf0) {
			len = 4, cp = b & 0x07u, min = 0x10000;
		} else {
			return (long)i;
		}
		if (i + len > n)
			return (long)i;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return (long)i;
			cp = (cp << 6) | (s[i + k] & 0x3fu);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return (long)i;
		i += len;
	}
	return -1;
}

#define MAX_FILE_BYTES (1 << 20)
#define MAX_SECTION 64

struct load_ctx {
	struct strebm_config *c;
	const char *path;
	const char *buf;           /* the whole file */
	size_t len, pos;
	int line;                  /* of the line inih is parsing */
	char section[MAX_SECTION]; /* current section, as we track it */
	const struct schema *last; /* key of the previous entry in this section */
	bool cont;                 /* this line continues last's value */
	char *err;
	size_t errlen;
	int ret, err_line;
};

/* "section.key: " for a line holding key = value, when the key can be told
 * (ASCII, before '=' or ':' and before offset upto); else "". */
static void line_key(const struct load_ctx *ctx, const char *l, size_t n, size_t upto,
		     char *out, size_t outlen)
{
	size_t a = 0, b, i;

	*out = 0;
	while (a < n && (l[a] == ' ' || l[a] == '\t'))
		a++;
	for (b = a; b < n && l[b] != '=' && l[b] != ':'; b++)
		if ((unsigned char)l[b] >= 0x80 || !l[b])
			return;
	if (b >= n || b > upto || ctx->cont)
		return;
	while (b > a && (l[b - 1] == ' ' || l[b - 1] == '\t'))
		b--;
	for (i = a; i < b; i++)
		if (l[i] == '[' || l[i] == ';' || l[i] == '#')
			return;
	if (b > a)
		snprintf(out, outlen, "%s%s%.*s: ", ctx->section, *ctx->section ? "." : "",
			 (int)(b - a), l + a);
}

static char *fail_line(struct load_ctx *ctx, int ret)
{
	ctx->ret = ret;
	ctx->err_line = ctx->line;
	return NULL;
}

/*
 * inih's reader: hands inih the file line by line from memory, counting
 * lines (Debian's inih has no line numbers in handlers), and checks what
 * inih does not: UTF-8, NUL bytes, over-long lines (inih would split them
 * silently) and unknown [section] headers (inih reports only keys). It
 * also tracks the section and whether the line is a continuation, with
 * inih's own rules, so that the handler can tell them apart.
 */
static char *on_ini_read(char *str, int num, void *stream)
{
	struct load_ctx *ctx = stream;
	const char *l, *nl;
	size_t n, i;
	long bad;
	char key[MAX_SECTION + 80];

	if (ctx->ret || ctx->pos >= ctx->len)
		return NULL;
	l = ctx->buf + ctx->pos;
	nl = memchr(l, '\n', ctx->len - ctx->pos);
	n = nl ? (size_t)(nl - l) : ctx->len - ctx->pos;
	ctx->pos += n + (nl ? 1 : 0);
	ctx->line++;

	i = 0;
	if (ctx->line == 1 && n >= 3 && !memcmp(l, "\xef\xbb\xbf", 3))
		i = 3; /* a byte order mark; inih skips it */
	while (i < n && (l[i] == ' ' || l[i] == '\t' || l[i] == '\r'))
		i++;
	ctx->cont = i > 0 && i < n && ctx->last && l[i] != ';' && l[i] != '#' &&
		    (ctx->line > 1 || l[0] != '\xef');

	if (memchr(l, 0, n)) {
		line_key(ctx, l, n, (size_t)((const char *)memchr(l, 0, n) - l), key, sizeof(key));
		snprintf(ctx->err, ctx->errlen, "%s:%d: %sthe line holds a NUL byte", ctx->path,
			 ctx->line, key);
		return fail_line(ctx, -EINVAL);
	}
	bad = utf8_invalid((const unsigned char *)l, n);
	if (bad >= 0) {
		line_key(ctx, l, n, (size_t)bad, key, sizeof(key));
		snprintf(ctx->err, ctx->errlen, "%s:%d: %sinvalid UTF-8 (byte %ld of the line)",
			 ctx->path, ctx->line, key, bad + 1);
		return fail_line(ctx, -EINVAL);
	}
	if (n + 3 > (size_t)num) {
		line_key(ctx, l, n, n, key, sizeof(key));
		snprintf(ctx->err, ctx->errlen,
			 "%s:%d: %sthe line is too long (%zu bytes, at most %d; continue a list "
			 "on indented lines)", ctx->path, ctx->line, key, n, num - 3);
		return fail_line(ctx, -EINVAL);
	}
	if (!ctx->cont && i < n && l[i] == '[') {
		const char *end = memchr(l + i, ']', n - i);
		if (end) {
			size_t sl = (size_t)(end - (l + i + 1));
			if (sl >= MAX_SECTION) {
				snprintf(ctx->err, ctx->errlen, "%s:%d: unknown section [%.*s]",
					 ctx->path, ctx->line, (int)sl, l + i + 1);
				return fail_line(ctx, -EINVAL);
			}
			memcpy(ctx->section, l + i + 1, sl);
			ctx->section[sl] = 0;
			ctx->last = NULL;
			if (!known_section(ctx->section)) {
				snprintf(ctx->err, ctx->errlen, "%s:%d: unknown section [%s]",
					 ctx->path, ctx->line, ctx->section);
				return fail_line(ctx, -EINVAL);
			}
		}
	}
	memcpy(str, l, n);
	str[n] = '\n';
	str[n + 1] = 0;
	return str;
}

static int on_ini_entry(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *ctx = user;
	char origin[PATH_MAX + 32];

	if (ctx->ret)
		return 0;
	snprintf(origin, sizeof(origin), "%s:%d", ctx->path, ctx->line);
	if (ctx->cont) {
		/* an indented line: inih passes it as more of the previous key */
		const struct schema *s = ctx->last;
		char joined[STREBM_CONFIG_LIST + 2];
		const char *cur = (const char *)ctx->c + s->offset, *sc;
		size_t n = strlen(cur), vl = strlen(value);

		/* Debian's inih keeps inline comments on continuation lines */
		for (sc = value; (sc = strchr(sc, ';')); sc++)
			if (sc > value && (sc[-1] == ' ' || sc[-1] == '\t')) {
				vl = (size_t)(sc - value);
				break;
			}
		while (vl && (value[vl - 1] == ' ' || value[vl - 1] == '\t'))
			vl--;

		if (!is_list(s)) {
			snprintf(ctx->err, ctx->errlen,
				 "%s: %s: an indented line continues the value of %s, which is not "
				 "a list; remove the indentation", origin, s->name, s->name);
			ctx->ret = -EINVAL;
		} else if (n + 1 + vl >= sizeof(joined) - 1) {
			snprintf(ctx->err, ctx->errlen,
				 "%s: %s: value is too long (at most %d bytes)", origin, s->name,
				 (int)s->max - 1);
			ctx->ret = -EINVAL;
		} else {
			memcpy(joined, cur, n);
			if (n && cur[n - 1] != ',')
				joined[n++] = ',';
			memcpy(joined + n, value, vl);
			joined[n + vl] = 0;
			ctx->ret = parse_value(ctx->c, s, joined, origin, ctx->err, ctx->errlen);
		}
	} else {
		ctx->ret = strebm_config_set_key(ctx->c, section, name, value, origin, ctx->err,
						 ctx->errlen);
		ctx->last = ctx->ret ? NULL : find_key(section, name, NULL);
	}
	if (ctx->ret)
		ctx->err_line = ctx->line;
	return ctx->ret ? 0 : 1;
}

/* Read a whole (small, regular) file into a NUL-terminated buffer. */
static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0) {
		e = errno;
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	if (st.st_size > MAX_FILE_BYTES) {
		snprintf(err, errlen, "%s: too large for a configuration file (over %d bytes)", path,
			 MAX_FILE_BYTES);
		close(fd);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			snprintf(err, errlen, "%s: cannot read: %s", path, strerror(e));
			free(buf);
			close(fd);
			return -e;
		}
		if (r == 0)
			break; /* shrank meanwhile: take what is there */
		got += (size_t)r;
	}
	close(fd);
	buf[got] = 0;
	*out = buf;
	*len = got;
	return 0;
}

int strebm_config_load_file(struct strebm_config *c, const char *path, char *err, size_t errlen)
{
	struct load_ctx ctx;
	char *buf = NULL;
	size_t len = 0;
	int r;

	if (!c || !path || !err || !errlen)
		return -EINVAL;
	r = read_file(path, &buf, &len, err, errlen);
	if (r < 0)
		return r;
	memset(&ctx, 0, sizeof(ctx));
	ctx.c = c;
	ctx.path = path;
	ctx.buf = buf;
	ctx.len = len;
	ctx.err = err;
	ctx.errlen = errlen;
	r = ini_parse_stream(on_ini_read, &ctx, on_ini_entry, &ctx);
	if (r > 0 && (!ctx.ret || r < ctx.err_line)) {
		/* a line inih could not parse, before any error of ours */
		const char *l = buf;
		size_t n;
		int i;
		for (i = 1; i < r; i++)
			l = strchr(l, '\n') + 1;
		n = strcspn(l, "\r\n");
		if (n > 60) {
			n = 60;
			while (n && ((unsigned char)l[n] & 0xc0) == 0x80)
				n--;
		}
		snprintf(err, errlen, "%s:%d: syntax error: '%.*s' (expected key = value or "
			 "[section])", path, r, (int)n, l);
		ctx.ret = -EINVAL;
	} else if (r < 0 && !ctx.ret) {
		snprintf(err, errlen, "%s: out of memory", path);
		ctx.ret = -ENOMEM;
	}
	free(buf);
	return ctx.ret;
}

const char *strebm_config_default_path(void)
{
	return STREBMD_CONFIG_PATH;
}

static int on_dropin_filter(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".conf");
}

static int on_dropin_compare(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int strebm_config_load(struct strebm_config *c, const char *path, const char *const *sets,
		       size_t nsets, char *err, size_t errlen)
{
	return strebm_config_load_at(c, path ? path : strebm_config_default_path(), !path, sets,
				     nsets, err, errlen);
}

int strebm_config_load_at(struct strebm_config *c, const char *path, bool missing_ok,
			  const char *const *sets, size_t nsets, char *err, size_t errlen)
{
	struct strebm_config *t;
	struct dirent **names = NULL;
	char dir[PATH_MAX], file[PATH_MAX];
	int n = 0, i, r;
	size_t k;

	if (!c || !path || (nsets && !sets) || !err || !errlen)
		return -EINVAL;
	t = malloc(sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	strebm_config_defaults(t);
	r = strebm_config_load_file(t, path, err, errlen);
	if (r == -ENOENT && missing_ok)
		r = 0;
	if (r < 0)
		goto out;

	if ((size_t)snprintf(dir, sizeof(dir), "%s.d", path) >= sizeof(dir)) {
		snprintf(err, errlen, "%s: path too long", path);
		r = -ENAMETOOLONG;
		goto out;
	}
	n = scandir(dir, &names, on_dropin_filter, on_dropin_compare);
	if (n < 0) {
		int e = errno;
		n = 0;
		if (e != ENOENT && e != ENOTDIR) {
			snprintf(err, errlen, "%s: cannot read the drop-in directory: %s", dir,
				 strerror(e));
			r = -e;
			goto out;
		}
	}
	for (i = 0; i < n && r == 0; i++) {
		if ((size_t)snprintf(file, sizeof(file), "%s/%s", dir, names[i]->d_name) >=
		    sizeof(file)) {
			snprintf(err, errlen, "%s/%s: path too long", dir, names[i]->d_name);
			r = -ENAMETOOLONG;
			break;
		}
		r = strebm_config_load_file(t, file, err, errlen);
	}
	for (k = 0; k < nsets && r == 0; k++)
		r = strebm_config_set(t, sets[k], err, errlen);
	if (r == 0)
		*c = *t;
out:
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(t);
	return r;
}

int strebm_config_get(const struct strebm_config *c, const char *name, char *buf, size_t len)
{
	const struct schema *s = c && name ? find_name(name, NULL) : NULL;
	const char *p;
	int n = -1, v;

	if (!s)
		return -ENOENT;
	if (!buf || !len)
		return -ENOSPC;
	p = (const char *)c + s->offset;
	switch (s->type) {
	case T_INT:
		n = snprintf(buf, len, "%d", *(const int *)p);
		break;
	case T_DOUBLE:
		n = snprintf(buf, len, "%g", *(const double *)p);
		break;
	case T_BOOL:
		n = snprintf(buf, len, "%s", *(const bool *)p ? "true" : "false");
		break;
	case T_ENUM:
		v = *(const int *)p;
		for (n = 0; s->names[n] && n < v; n++)
			;
		n = snprintf(buf, len, "%s", v >= 0 && s->names[n] ? s->names[n] : "?");
		break;
	case T_STRING:
		n = snprintf(buf, len, "%s", p);
		break;
	}
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

const char *strebm_config_origin(const struct strebm_config *c, const char *name)
{
	size_t idx;

	if (!c || !name || !find_name(name, &idx))
		return NULL;
	return c->origin[idx];
}

/* "engine.sources=3 (at FILE:LINE)", "... (default)", "... (from --set)" */
static const char *describe(const struct strebm_config *c, const char *name, char *buf,
			    size_t len)
{
	const char *o = strebm_config_origin(c, name);
	char v[96];

	if (strebm_config_get(c, name, v, sizeof(v)) < 0)
		snprintf(v, sizeof(v), "...");
	if (!strcmp(o, "default"))
		snprintf(buf, len, "%s=%s (default)", name, v);
	else if (!strcmp(o, "--set"))
		snprintf(buf, len, "%s=%s (from --set)", name, v);
	else
		snprintf(buf, len, "%s=%s (at %s)", name, v, o);
	return buf;
}

/* Window or hop in samples: the samples key, else the ms key converted with
 * rate (0: unknown), else 0 (auto or unknown). *key names what decided it. */
static double in_samples(int samples, double ms, double rate, const char *skey, const char *mkey,
			 const char **key)
{
	*key = skey;
	if (samples)
		return samples;
	*key = mkey;
	return ms > 0 && rate > 0 ? ms * rate / 1000.0 : 0.0;
}

int strebm_config_validate(const struct strebm_config *c, bool live, char *err, size_t errlen)
{
	char a[STREBM_CONFIG_ORIGIN + 128], b[STREBM_CONFIG_ORIGIN + 128];
	const char *wkey, *hkey;
	double rate, w, h;

	if (!c || !err || !errlen)
		return -EINVAL;
#define FAIL(...)                                         \
	do {                                              \
		snprintf(err, errlen, __VA_ARGS__);       \
		return -EINVAL;                           \
	} while (0)
	if (c->window > 0 && c->window < 16)
		FAIL("%s is too short: at least 16 samples (0 picks one)",
		     describe(c, "engine.window", a, sizeof(a)));
	if (c->hop > 0 && c->hop < 16)
		FAIL("%s is too short: at least 16 samples (0 means window / 4)",
		     describe(c, "engine.hop", a, sizeof(a)));
	if (c->window && c->window_ms > 0)
		FAIL("%s and %s are both set: set one of them to 0",
		     describe(c, "engine.window_ms", a, sizeof(a)),
		     describe(c, "engine.window", b, sizeof(b)));
	if (c->hop && c->hop_ms > 0)
		FAIL("%s and %s are both set: set one of them to 0",
		     describe(c, "engine.hop_ms", a, sizeof(a)),
		     describe(c, "engine.hop", b, sizeof(b)));
	if (c->window_ms > 0 && c->hop_ms > c->window_ms)
		FAIL("%s is longer than %s", describe(c, "engine.hop_ms", a, sizeof(a)),
		     describe(c, "engine.window_ms", b, sizeof(b)));
	rate = c->backend == STREBM_BACKEND_PORTAUDIO ? (double)c->pa_rate : 0.0;
	w = in_samples(c->window, c->window_ms, rate, "engine.window", "engine.window_ms", &wkey);
	h = in_samples(c->hop, c->hop_ms, rate, "engine.hop", "engine.hop_ms", &hkey);
	if (w > 0 && h > w)
		FAIL("%s is longer than %s%s", describe(c, hkey, a, sizeof(a)),
		     describe(c, wkey, b, sizeof(b)),
		     (strstr(wkey, "_ms") != NULL) != (strstr(hkey, "_ms") != NULL) ?
		     " at portaudio.rate" : "");
	if (w > 0 && c->bands > w)
		FAIL("%s exceeds the samples in %s", describe(c, "engine.bands", a, sizeof(a)),
		     describe(c, wkey, b, sizeof(b)));
	if (live && c->sources > c->channels)
		FAIL("%s exceeds %s: the %s mode separates at most one source per input channel",
		     describe(c, "engine.sources", a, sizeof(a)),
		     describe(c, "audio.channels", b, sizeof(b)),
		     strebm_mode_name((enum strebm_mode)c->mode));
	if (live && c->reference_mic > c->channels)
		FAIL("%s exceeds %s", describe(c, "engine.reference_mic", a, sizeof(a)),
		     describe(c, "audio.channels", b, sizeof(b)));
#undef FAIL
	return 0;
}

static bool same_value(const struct strebm_config *x, const struct strebm_config *y,
		       const struct schema *s)
{
	const char *px = (const char *)x + s->offset, *py = (const char *)y + s->offset;

	switch (s->type) {
	case T_INT:
	case T_ENUM:
		return *(const int *)px == *(const int *)py;
	case T_DOUBLE:
		return *(const double *)px == *(const double *)py;
	case T_BOOL:
		return *(const bool *)px == *(const bool *)py;
	case T_STRING:
		return !strcmp(px, py);
	}
	return false;
}

static void copy_value(struct strebm_config *dst, const struct strebm_config *src,
		       const struct schema *s)
{
	char *pd = (char *)dst + s->offset;
	const char *ps = (const char *)src + s->offset;

	switch (s->type) {
	case T_INT:
	case T_ENUM:
		memcpy(pd, ps, sizeof(int));
		break;
	case T_DOUBLE:
		memcpy(pd, ps, sizeof(double));
		break;
	case T_BOOL:
		memcpy(pd, ps, sizeof(bool));
		break;
	case T_STRING:
		memcpy(pd, ps, strlen(ps) + 1);
		break;
	}
}

void strebm_config_compare(const struct strebm_config *running, const struct strebm_config *next,
			   struct strebm_config_changes *ch)
{
	size_t i;

	if (!ch)
		return;
	ch->nreload = ch->nrestart = 0;
	if (!running || !next)
		return;
	for (i = 0; i < NSCHEMA; i++) {
		if (same_value(running, next, &schema[i]))
			continue;
		if (schema[i].reload)
			ch->reload[ch->nreload++] = schema[i].name;
		else
			ch->restart[ch->nrestart++] = schema[i].name;
	}
}

size_t strebm_config_reload(struct strebm_config *running, const struct strebm_config *next,
			    struct strebm_config_changes *ch)
{
	size_t i;

	strebm_config_compare(running, next, ch);
	if (!running || !next)
		return 0;
	for (i = 0; i < NSCHEMA; i++)
		if (schema[i].reload) {
			copy_value(running, next, &schema[i]);
			memcpy(running->origin[i], next->origin[i], STREBM_CONFIG_ORIGIN);
		}
	return ch ? ch->nreload : 0;
}

void strebm_config_write_example(FILE *f)
{
	size_t i;
	const char *section = "";

	fprintf(f, "# strebmd configuration: every key, with its default and range.\n"
		   "# Generated by `strebmd --print-config`; keep it in sync (a test checks).\n"
		   "# Read in this order, a later setting winning key by key: built-in\n"
		   "# defaults, this file, the drop-ins in strebmd.conf.d/ beside it (files\n"
		   "# named *.conf, in name order), then --set section.key=value options.\n"
		   "# A list value (connect_inputs, connect_outputs, allow) may continue on\n"
		   "# indented lines; lines are at most 197 bytes.\n");
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
