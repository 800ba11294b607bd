/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

static enum strebmd_log_level max_level = LOG_LVL_INFO;

void strebmd_log_set_level(enum strebmd_log_level lvl)
{
	max_level = lvl;
}

void strebmd_log(enum strebmd_log_level lvl, const char *fmt, ...)
{
	static const char *const tag[8] = { "", "", "", "error: ", "warning: ", "", "", "debug: " };
	char line[1024];
	va_list ap;
	bool journal = getenv("JOURNAL_STREAM") != NULL;

	if (lvl > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (journal)
		fprintf(stderr, "<%d>%s\n", (int)lvl, line);
	else
		fprintf(stderr, "strebmd: %s%s\n", tag[lvl & 7], line);
}
