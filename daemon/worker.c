/* SPDX-License-Identifier: MIT */
#include "worker.h"

#include <stdlib.h>
#include <time.h>

struct strebmd_worker {
	struct strebm_engine *engine;
	double cpu;
};

struct strebmd_worker *strebmd_worker_create(const struct strebm_engine_config *cfg)
{
	struct strebmd_worker *w = calloc(1, sizeof(*w));

	if (!w)
		return NULL;
	w->engine = strebm_engine_create(cfg);
	if (!w->engine) {
		free(w);
		return NULL;
	}
	return w;
}

void strebmd_worker_destroy(struct strebmd_worker *w)
{
	if (!w)
		return;
	strebm_engine_destroy(w->engine);
	free(w);
}

struct strebm_engine *strebmd_worker_engine(struct strebmd_worker *w)
{
	return w->engine;
}

static double thread_cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int strebmd_worker_hop(struct strebmd_worker *w, const double *in, double *out)
{
	double t0 = thread_cpu();
	int r = strebm_engine_process(w->engine, in, out);

	w->cpu += thread_cpu() - t0;
	return r;
}

double strebmd_worker_cpu_seconds(const struct strebmd_worker *w)
{
	return w->cpu;
}
