/* SPDX-License-Identifier: MIT */
/* Check suite: io/config (schema table, --set, INI files, example config). */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
