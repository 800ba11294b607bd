/* SPDX-License-Identifier: MIT */
/* Check suite: io/config (schema table, --set, INI files, example config). */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

static char tmpdir[] = "/tmp/strebm-config-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void make_dir(const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	ck_assert_int_eq(mkdir(path, 0755) == 0 || errno == EEXIST, 1);
}

static const char *tmp_path(const char *name)
{
	static char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

START_TEST(test_defaults)
{
	struct strebm_config c;

	strebm_config_defaults(&c);
	ck_assert_int_eq(c.mode, 0);
	ck_assert_int_eq(c.sources, 0);
	ck_assert_int_eq(c.context, 64);
	ck_assert_int_eq(c.reference_mic, 1);
	ck_assert(c.permutation_guard);
	ck_assert_double_eq_tol(c.floor, 1e-3, 1e-15);
}
END_TEST

static const struct {
	const char *set;
	int ok;
	const char *msg;
} set_cases[] = {
	{ "engine.mode=nonlinear", 1, NULL },
	{ "engine.kernel=matern32", 1, NULL },
	{ "engine.context=128", 1, NULL },
	{ "engine.floor=0.01", 1, NULL },
	{ "engine.permutation_guard=false", 1, NULL },
	{ "engine.mode=cubic", 0, "unknown value 'cubic'" },
	{ "engine.context=0", 0, "out of range" },
	{ "engine.context=12x", 0, "not an integer" },
	{ "engine.floor=nan", 0, "not a number" },
	{ "engine.permutation_guard=maybe", 0, "not a boolean" },
	{ "engine.nokey=1", 0, "unknown key" },
	{ "nosection.key=1", 0, "unknown section" },
	{ "engine.mode", 0, "section.key=value" },
	{ "=1", 0, "section.key=value" },
	{ "osc.allow=10.0.0.0/8, 192.168.1., ::1, *", 1, NULL },
	{ "osc.allow=1.2.3.4.5.", 0, "'1.2.3.4.5.' is not an address" },
};

START_TEST(test_set)
{
	struct strebm_config c;
	char err[256] = "";
	int r;

	strebm_config_defaults(&c);
	r = strebm_config_set(&c, set_cases[_i].set, err, sizeof(err));
	if (set_cases[_i].ok) {
		ck_assert_int_eq(r, 0);
	} else {
		ck_assert_int_eq(r, -EINVAL);
		ck_assert_msg(strstr(err, set_cases[_i].msg), "'%s' -> '%s'", set_cases[_i].set, err);
	}
}
END_TEST

START_TEST(test_set_applies)
{
	struct strebm_config c;
	char err[256];

	strebm_config_defaults(&c);
	ck_assert_int_eq(strebm_config_set(&c, "engine.mode=nonlinear", err, sizeof(err)), 0);
	ck_assert_int_eq(c.mode, 1);
	ck_assert_int_eq(strebm_config_set(&c, "engine.kernel=matern52", err, sizeof(err)), 0);
	ck_assert_int_eq(c.kernel, 3);
	/* a rejected value leaves the old one */
	ck_assert_int_eq(strebm_config_set(&c, "engine.context=99999", err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(c.context, 64);
}
END_TEST

START_TEST(test_file)
{
	struct strebm_config c;
	char err[PATH_MAX + 256];
	const char *p;

	strebm_config_defaults(&c);
	p = write_file("good.conf", "# comment\n[engine]\nmode = nonlinear\n\ncontext = 32\n");
	ck_assert_int_eq(strebm_config_load_file(&c, p, err, sizeof(err)), 0);
	ck_assert_int_eq(c.mode, 1);
	ck_assert_int_eq(c.context, 32);

	p = write_file("badval.conf", "[engine]\nmode = linear\n\ncontext = -4\n");
	ck_assert_int_eq(strebm_config_load_file(&c, p, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "badval.conf:4") && strstr(err, "engine.context"), "%s", err);

	p = write_file("badkey.conf", "[engine]\ncontxt = 4\n");
	ck_assert_int_eq(strebm_config_load_file(&c, p, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "badkey.conf:2") && strstr(err, "contxt"), "%s", err);

	p = write_file("badsec.conf", "[engine]\n[jack]\nname = x\n");
	ck_assert_int_eq(strebm_config_load_file(&c, p, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "badsec.conf:3") && strstr(err, "[jack]"), "%s", err);

	p = write_file("syntax.conf", "[engine]\nthis line has no equals\n");
	ck_assert_int_eq(strebm_config_load_file(&c, p, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "syntax.conf:2"), "%s", err);

	ck_assert_int_eq(strebm_config_load_file(&c, "/nonexistent/strebmd.conf", err, sizeof(err)),
			 -ENOENT);
}
END_TEST

/* Files the parser must refuse, each with what the message has to name. */
static const struct {
	const char *text;
	const char *want1, *want2;
} bad_files[] = {
	{ "[engine]\nmode = lin\xc3\x28""ear\n", ":2: engine.mode:", "invalid UTF-8 (byte 11" },
	{ "[jack]\nclient_name = \xc0\xaf\n", ":2: jack.client_name:", "invalid UTF-8" },      /* overlong */
	{ "[jack]\nclient_name = \xed\xa0\x80\n", ":2: jack.client_name:", "invalid UTF-8" },  /* surrogate */
	{ "[jack]\nclient_name = \xf4\x90\x80\x80\n", ":2:", "invalid UTF-8" },               /* > U+10FFFF */
	{ "[jack]\nclient_name = x\xe2\x82\n", ":2:", "invalid UTF-8" },                      /* cut short */
	{ "# ok\n[en\xffgine]\n", ":2:", "invalid UTF-8" },
	{ "[jack]\nserver = a\0b\n", ":2: jack.server:", "NUL byte" },
	{ "[jackk]\n", ":1:", "unknown section [jackk]" },
	{ "[engine]\n[ engine ]\nmode = linear\n", ":2:", "unknown section [ engine ]" },
	{ "mode = linear\n", ":1:", "'mode' is outside any section" },
	{ "[engine]\nmode = linear\n  context = 3\n", ":3: engine.mode:", "not a list" },
	{ "[engine]\nbroken line\ncontext = 0\n", ":2: syntax error", "'broken line'" },
	{ "[engine]\ncontxt = 1\nbroken line\n", ":2:", "unknown key 'contxt' in [engine]" },
	{ "[engine\nmode = linear\n", ":1: syntax error", "'[engine'" },
	{ "[osc]\nport = 9000 # comment\n", ":2: osc.port:", "not an integer" },
	{ "[osc]\nport = 70000\n", ":2: osc.port:", "out of range" },
	{ "[audio]\nrealtime = always\n", ":2: audio.realtime:", "one of: off, try, require" },
	{ "[engine]\nfloor = 1e-3x\n", ":2: engine.floor:", "not a number" },
	{ "[osc]\nallow = 127.0.0.1,\n  10.0.0.0/33\n", ":3: osc.allow:", "'10.0.0.0/33' is not an address" },
	{ "[osc]\nallow = 127.0.0.1 localhost\n", ":2: osc.allow:", "'localhost' is not an address" },
};

START_TEST(test_bad_file)
{
	struct strebm_config c;
	char err[STREBM_CONFIG_ERR], name[32], text[512];
	const char *p;
	size_t len = strlen(bad_files[_i].text);
	FILE *f;

	/* written with fwrite: one case holds a NUL byte */
	if (_i == 6)
		len = strlen("[jack]\nserver = a") + 1 + strlen("b\n");
	memcpy(text, bad_files[_i].text, len);
	snprintf(name, sizeof(name), "bad%d.conf", _i);
	p = tmp_path(name);
	f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	fclose(f);
	strebm_config_defaults(&c);
	ck_assert_int_eq(strebm_config_load_file(&c, p, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, name) && strstr(err, bad_files[_i].want1) &&
		      strstr(err, bad_files[_i].want2), "case %d: '%s'", _i, err);
}
END_TEST

START_TEST(test_file_forms)
{
	struct strebm_config c;
	char err[STREBM_CONFIG_ERR], longline[400];
	const char *p;

	/* valid UTF-8, a byte order mark, CRLF line ends, inline comments,
	 * ':' separators, indented keys at the start of a section */
	strebm_config_defaults(&c);
	p = write_file("forms.conf", "\xef\xbb\xbf[jack]\r\nclient_name = str\xc3\xa9""bmd \xf0\x9f\x8e\xa4\r\n"
				     "[engine]\r\n  context = 12 ; twelve\r\nmode: nonlinear\r\n");
	ck_assert_msg(strebm_config_load_file(&c, p, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c.client_name, "str\xc3\xa9""bmd \xf0\x9f\x8e\xa4");
	ck_assert_int_eq(c.context, 12);
	ck_assert_int_eq(c.mode, 1);
	ck_assert_str_eq(strebm_config_origin(&c, "engine.context"), tmp_path("forms.conf:4"));

	/* a list continues on indented lines, joined with commas */
	p = write_file("list.conf", "[jack]\nconnect_inputs = system:capture_1,\n"
				    "   system:capture_2\n\tsystem:capture_3 ; the third\n"
				    "# comment\n[osc]\nallow = 127.0.0.1\n  192.168.1.\n");
	ck_assert_msg(strebm_config_load_file(&c, p, err, sizeof(err)) == 0, "%s", err);
	ck_assert_str_eq(c.connect_inputs, "system:capture_1,system:capture_2,system:capture_3");
	ck_assert_str_eq(c.osc_allow, "127.0.0.1,192.168.1.");
	ck_assert_str_eq(strebm_config_origin(&c, "jack.connect_inputs"), tmp_path("list.conf:2"));

	/* a line longer than inih takes is refused, not split */
	memset(longline, 'x', sizeof(longline));
	memcpy(longline, "[jack]\nconnect_inputs = ", 24);
	longline[sizeof(longline) - 2] = '\n';
	longline[sizeof(longline) - 1] = 0;
	p = write_file("long.conf", longline);
	ck_assert_int_eq(strebm_config_load_file(&c, p, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "long.conf:2: jack.connect_inputs:") && strstr(err, "too long"),
		      "%s", err);

	/* a directory is not a configuration file */
	make_dir("adir.conf");
	ck_assert_int_eq(strebm_config_load_file(&c, tmp_path("adir.conf"), err, sizeof(err)),
			 -EINVAL);
	ck_assert_msg(strstr(err, "adir.conf: not a regular file"), "%s", err);
}
END_TEST

START_TEST(test_load_order)
{
	struct strebm_config c;
	char err[STREBM_CONFIG_ERR], want[PATH_MAX];
	const char *sets[] = { "engine.sweeps=5", "osc.port=9100" };

	make_dir("order");
	make_dir("order/main.conf.d");
	write_file("order/main.conf", "[engine]\ncontext = 10\nbands = 20\nsweeps = 3\n");
	write_file("order/main.conf.d/20-b.conf", "[engine]\ncontext = 12\n");
	write_file("order/main.conf.d/10-a.conf", "[engine]\ncontext = 11\n\nbands = 21\n");
	write_file("order/main.conf.d/100-c.conf", "[osc]\nport = 9001\n"); /* "100" < "20" */
	/* not drop-ins: wrong suffix, hidden, a backup; their content would fail */
	write_file("order/main.conf.d/notes.txt", "garbage\n");
	write_file("order/main.conf.d/.hidden.conf", "garbage\n");
	write_file("order/main.conf.d/30.conf~", "garbage\n");

	strebm_config_defaults(&c);
	c.context = 99;
	ck_assert_msg(strebm_config_load(&c, tmp_path("order/main.conf"), sets, 2, err,
					 sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(c.context, 12);
	ck_assert_int_eq(c.bands, 21);
	ck_assert_int_eq(c.sweeps, 5);
	ck_assert_int_eq(c.osc_port, 9100);
	ck_assert_int_eq(c.kernel, 0);
	snprintf(want, sizeof(want), "%s/order/main.conf.d/20-b.conf:2", tmpdir);
	ck_assert_str_eq(strebm_config_origin(&c, "engine.context"), want);
	snprintf(want, sizeof(want), "%s/order/main.conf.d/10-a.conf:4", tmpdir);
	ck_assert_str_eq(strebm_config_origin(&c, "engine.bands"), want);
	ck_assert_str_eq(strebm_config_origin(&c, "engine.sweeps"), "--set");
	ck_assert_str_eq(strebm_config_origin(&c, "engine.kernel"), "default");
	ck_assert_ptr_null(strebm_config_origin(&c, "engine.nokey"));

	/* without --set the drop-in 100-c.conf sets the port (after 10-a, before 20-b) */
	ck_assert_int_eq(strebm_config_load(&c, tmp_path("order/main.conf"), NULL, 0, err,
					    sizeof(err)), 0);
	ck_assert_int_eq(c.osc_port, 9001);
	ck_assert_int_eq(c.sweeps, 3);

	/* an error in a drop-in names it; the configuration is left untouched */
	write_file("order/main.conf.d/50-bad.conf", "[engine]\n\nsweeps = 99\n");
	{
		struct strebm_config before = c;
		ck_assert_int_eq(strebm_config_load(&c, tmp_path("order/main.conf"), NULL, 0, err,
						    sizeof(err)), -EINVAL);
		ck_assert_msg(strstr(err, "main.conf.d/50-bad.conf:3: engine.sweeps:") &&
			      strstr(err, "out of range"), "%s", err);
		ck_assert(!memcmp(&before, &c, sizeof(c)));
	}
	/* and an error in --set too */
	unlink(tmp_path("order/main.conf.d/50-bad.conf"));
	{
		const char *bad[] = { "engine.sweeps=2", "engine.kernel=sinc" };
		ck_assert_int_eq(strebm_config_load(&c, tmp_path("order/main.conf"), bad, 2, err,
						    sizeof(err)), -EINVAL);
		ck_assert_msg(strstr(err, "--set") && strstr(err, "engine.kernel"), "%s", err);
	}
}
END_TEST

START_TEST(test_missing_main_file)
{
	struct strebm_config c, d;
	char err[STREBM_CONFIG_ERR];

	/* an explicit file must exist */
	ck_assert_int_eq(strebm_config_load(&c, tmp_path("nope.conf"), NULL, 0, err, sizeof(err)),
			 -ENOENT);
	ck_assert_msg(strstr(err, "nope.conf: cannot open"), "%s", err);
	/* a default one may be missing: defaults, and its drop-ins still apply */
	ck_assert_int_eq(strebm_config_load_at(&c, tmp_path("absent.conf"), true, NULL, 0, err,
					       sizeof(err)), 0);
	strebm_config_defaults(&d);
	ck_assert(!memcmp(&c, &d, sizeof(c)));
	make_dir("absent.conf.d");
	write_file("absent.conf.d/a.conf", "[engine]\nsweeps = 4\n");
	ck_assert_int_eq(strebm_config_load_at(&c, tmp_path("absent.conf"), true, NULL, 0, err,
					       sizeof(err)), 0);
	ck_assert_int_eq(c.sweeps, 4);
	ck_assert_int_eq(strebm_config_load_at(&c, tmp_path("absent.conf"), false, NULL, 0, err,
					       sizeof(err)), -ENOENT);
	/* misuse */
	ck_assert_int_eq(strebm_config_load_at(NULL, "x", true, NULL, 0, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(strebm_config_load_at(&c, "x", true, NULL, 1, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(strebm_config_default_path(), "strebmd/strebmd.conf"));
}
END_TEST

/* Rules across keys: assignments (--set), live backend, and what the
 * message must hold (NULL: valid). */
static const struct {
	const char *sets[4];
	bool live;
	const char *want1, *want2;
} cross_cases[] = {
	{ { NULL }, true, NULL, NULL },
	{ { "engine.sources=3" }, true, "engine.sources=3 (from --set) exceeds audio.channels=2 (default)",
	  "linear mode" },
	{ { "engine.sources=3", "engine.mode=nonlinear" }, true, "engine.sources=3", "nonlinear mode" },
	{ { "engine.sources=3" }, false, NULL, NULL },
	{ { "engine.sources=4", "audio.channels=4" }, true, NULL, NULL },
	{ { "engine.reference_mic=3" }, true, "engine.reference_mic=3 (from --set) exceeds audio.channels=2", "" },
	{ { "engine.window=512", "engine.hop=1024" }, false,
	  "engine.hop=1024 (from --set) is longer than engine.window=512 (from --set)", "" },
	{ { "engine.window=512", "engine.hop=512" }, false, NULL, NULL },
	{ { "engine.window=8" }, false, "engine.window=8", "too short" },
	{ { "engine.hop=15" }, false, "engine.hop=15", "too short" },
	{ { "engine.window=1024", "engine.window_ms=20" }, false,
	  "engine.window_ms=20 (from --set) and engine.window=1024 (from --set) are both set", "" },
	{ { "engine.hop=256", "engine.hop_ms=5" }, false, "engine.hop_ms=5", "both set" },
	{ { "engine.window_ms=20", "engine.hop_ms=30" }, false,
	  "engine.hop_ms=30 (from --set) is longer than engine.window_ms=20", "" },
	{ { "engine.window_ms=20", "engine.hop_ms=5" }, false, NULL, NULL },
	/* mixed units: decidable only when the rate is in the configuration */
	{ { "audio.backend=portaudio", "engine.window_ms=10", "engine.hop=960" }, true,
	  "engine.hop=960 (from --set) is longer than engine.window_ms=10", "portaudio.rate" },
	{ { "audio.backend=portaudio", "engine.window_ms=10", "engine.hop=240" }, true, NULL, NULL },
	{ { "audio.backend=jack", "engine.window_ms=10", "engine.hop=960" }, true, NULL, NULL },
	{ { "engine.window=512", "engine.bands=1024" }, false, "engine.bands=1024", "engine.window=512" },
};

START_TEST(test_validate)
{
	struct strebm_config c;
	char err[STREBM_CONFIG_ERR] = "";
	size_t n = 0;
	int r;

	while (n < 4 && cross_cases[_i].sets[n])
		n++;
	ck_assert_int_eq(strebm_config_load_at(&c, tmp_path("none.conf"), true,
					       cross_cases[_i].sets, n, err, sizeof(err)), 0);
	r = strebm_config_validate(&c, cross_cases[_i].live, err, sizeof(err));
	if (!cross_cases[_i].want1) {
		ck_assert_msg(r == 0, "case %d: %s", _i, err);
	} else {
		ck_assert_int_eq(r, -EINVAL);
		ck_assert_msg(strstr(err, cross_cases[_i].want1) && strstr(err, cross_cases[_i].want2),
			      "case %d: '%s'", _i, err);
	}
}
END_TEST

START_TEST(test_validate_names_file)
{
	struct strebm_config c;
	char err[STREBM_CONFIG_ERR];
	const char *p;

	p = write_file("k.conf", "[audio]\nchannels = 2\n[engine]\n# K\nsources = 4\n");
	ck_assert_int_eq(strebm_config_load(&c, p, NULL, 0, err, sizeof(err)), 0);
	ck_assert_int_eq(strebm_config_validate(&c, true, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, "engine.sources=4 (at ") && strstr(err, "k.conf:5)") &&
		      strstr(err, "audio.channels=2 (at ") && strstr(err, "k.conf:2)"), "%s", err);
	ck_assert_int_eq(strebm_config_validate(NULL, true, err, sizeof(err)), -EINVAL);
}
END_TEST

START_TEST(test_get_and_origin)
{
	struct strebm_config c;
	char buf[64], err[STREBM_CONFIG_ERR], origin[STREBM_CONFIG_ORIGIN + 64];
	size_t i;

	strebm_config_defaults(&c);
	ck_assert_int_eq(strebm_config_get(&c, "engine.mode", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "linear");
	ck_assert_int_eq(strebm_config_get(&c, "engine.permutation_guard", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "true");
	ck_assert_int_eq(strebm_config_get(&c, "engine.floor", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "0.001");
	ck_assert_int_eq(strebm_config_get(&c, "jack.client_name", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "strebmd");
	ck_assert_int_eq(strebm_config_get(&c, "audio.rt_priority", buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "0");
	ck_assert_int_eq(strebm_config_get(&c, "engine.bogus", buf, sizeof(buf)), -ENOENT);
	ck_assert_int_eq(strebm_config_get(&c, "jack.client_name", buf, 4), -ENOSPC);

	/* an over-long origin keeps its tail: the file name and the line */
	for (i = 0; i < sizeof(origin) - 16; i++)
		origin[i] = 'd';
	snprintf(origin + i, sizeof(origin) - i, "/x.conf:7");
	ck_assert_int_eq(strebm_config_set_key(&c, "engine", "sweeps", "3", origin, err,
					       sizeof(err)), 0);
	ck_assert_uint_eq(strlen(strebm_config_origin(&c, "engine.sweeps")), STREBM_CONFIG_ORIGIN - 1);
	ck_assert_ptr_nonnull(strstr(strebm_config_origin(&c, "engine.sweeps"), "/x.conf:7"));
	ck_assert(!strncmp(strebm_config_origin(&c, "engine.sweeps"), "...", 3));
}
END_TEST

START_TEST(test_reload)
{
	struct strebm_config run, next;
	struct strebm_config_changes ch;
	char err[STREBM_CONFIG_ERR];
	const char *p;
	size_t i;
	bool saw_sweeps = false, saw_allow = false;

	p = write_file("run.conf", "[engine]\nkernel = rbf\nwindow = 512\n[osc]\nallow = 127.0.0.1\n");
	ck_assert_int_eq(strebm_config_load(&run, p, NULL, 0, err, sizeof(err)), 0);
	strebm_config_compare(&run, &run, &ch);
	ck_assert_uint_eq(ch.nreload + ch.nrestart, 0);

	p = write_file("run.conf", "[engine]\nkernel = matern32\nwindow = 1024\nsources = 2\n[osc]\n"
				   "allow = 127.0.0.1,10.0.0.\n");
	ck_assert_int_eq(strebm_config_load(&next, p, NULL, 0, err, sizeof(err)), 0);
	strebm_config_compare(&run, &next, &ch);
	ck_assert_uint_eq(ch.nreload, 2);
	ck_assert_uint_eq(ch.nrestart, 2);
	for (i = 0; i < ch.nreload; i++) {
		saw_sweeps |= !strcmp(ch.reload[i], "engine.kernel");
		saw_allow |= !strcmp(ch.reload[i], "osc.allow");
	}
	ck_assert(saw_sweeps && saw_allow);
	ck_assert_str_eq(ch.restart[0], "engine.sources");
	ck_assert_str_eq(ch.restart[1], "engine.window");
	/* compare changed nothing */
	ck_assert_int_eq(run.kernel, 0);

	ck_assert_uint_eq(strebm_config_reload(&run, &next, &ch), 2);
	ck_assert_int_eq(run.kernel, 2);
	ck_assert_str_eq(run.osc_allow, "127.0.0.1,10.0.0.");
	ck_assert_int_eq(run.window, 512); /* needs a restart: kept */
	ck_assert_int_eq(run.sources, 0);
	ck_assert_str_eq(strebm_config_origin(&run, "engine.kernel"), tmp_path("run.conf:2"));
	ck_assert_str_eq(strebm_config_origin(&run, "engine.window"), tmp_path("run.conf:3"));
	ck_assert_str_eq(strebm_config_origin(&run, "engine.sources"), "default");
	/* applied: a second comparison finds only what needs a restart */
	strebm_config_compare(&run, &next, &ch);
	ck_assert_uint_eq(ch.nreload, 0);
	ck_assert_uint_eq(ch.nrestart, 2);
	/* NULLs */
	strebm_config_compare(NULL, &next, &ch);
	ck_assert_uint_eq(ch.nreload + ch.nrestart, 0);
	ck_assert_uint_eq(strebm_config_reload(NULL, &next, &ch), 0);
}
END_TEST

START_TEST(test_example_in_sync)
{
	/* conf/strebmd.conf must be exactly what the schema generates */
	const char *root = getenv("STREBM_SOURCE_ROOT");
	char path[PATH_MAX], *want = NULL, *have = NULL;
	size_t wl = 0, hl = 0;
	FILE *w, *h;
	struct strebm_config c;
	char err[PATH_MAX + 256];

	ck_assert_msg(root != NULL, "STREBM_SOURCE_ROOT not set");
	snprintf(path, sizeof(path), "%s/conf/strebmd.conf", root);
	w = open_memstream(&want, &wl);
	strebm_config_write_example(w);
	fclose(w);
	h = fopen(path, "r");
	ck_assert_ptr_nonnull(h);
	have = calloc(1, wl + 2);
	hl = fread(have, 1, wl + 1, h);
	fclose(h);
	ck_assert_msg(hl == wl && !memcmp(want, have, wl),
		      "conf/strebmd.conf is out of date: regenerate with strebmd --print-config");
	/* and the example (all keys commented out) loads cleanly */
	strebm_config_defaults(&c);
	ck_assert_int_eq(strebm_config_load_file(&c, path, err, sizeof(err)), 0);
	free(want);
	free(have);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_defaults);
	tcase_add_loop_test(tc, test_set, 0, (int)(sizeof(set_cases) / sizeof(set_cases[0])));
	tcase_add_test(tc, test_set_applies);
	tcase_add_test(tc, test_file);
	tcase_add_loop_test(tc, test_bad_file, 0, (int)(sizeof(bad_files) / sizeof(bad_files[0])));
	tcase_add_test(tc, test_file_forms);
	tcase_add_test(tc, test_load_order);
	tcase_add_test(tc, test_missing_main_file);
	tcase_add_loop_test(tc, test_validate, 0, (int)(sizeof(cross_cases) / sizeof(cross_cases[0])));
	tcase_add_test(tc, test_validate_names_file);
	tcase_add_test(tc, test_get_and_origin);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_example_in_sync);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (!mkdtemp(tmpdir))
		return 1;
	sr = srunner_create(config_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	{
		char cmd[PATH_MAX];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
		if (system(cmd) != 0)
			failed++;
	}
	return failed ? 1 : 0;
}
