/* SPDX-License-Identifier: MIT */
#include "worker.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kernel.h"

/* An input channel is "dead" after this many seconds of digital silence. */
#define DEAD_SECONDS 1.0
/* Recent real-time factor: exponential average over about this many hops. */
#define RTF_HOPS 32.0

struct strebmd_worker {
	struct strebm_engine *engine;
	struct strebm_engine_config cfg;
	unsigned rate;
	double cpu;
	double rtf;
	double rms_dbfs[STREBM_MAX_SOURCES];
	size_t silent[STREBM_MAX_CHANNELS]; /* consecutive silent samples */
};

struct strebmd_worker *strebmd_worker_create(const struct strebm_engine_config *cfg,
					     unsigned rate)
{
	struct strebmd_worker *w;
	size_t k;

	if (!rate)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->engine = strebm_engine_create(cfg);
	if (!w->engine) {
		free(w);
		return NULL;
	}
	w->cfg = *cfg;
	w->rate = rate;
	for (k = 0; k < cfg->K; k++)
		w->rms_dbfs[k] = -120.0;
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

static void track_levels(struct strebmd_worker *w, const double *in, const double *out)
{
	size_t M = w->cfg.M, K = w->cfg.K, H = w->cfg.H, m, k, t;

	for (m = 0; m < M; m++) {
		const double *x = in + m * H;
		bool silent = true;
		for (t = 0; t < H; t++)
			if (x[t] != 0.0 && isfinite(x[t])) {
				silent = false;
				break;
			}
		w->silent[m] = silent ? w->silent[m] + H : 0;
	}
	for (k = 0; k < K; k++) {
		const double *y = out + k * H;
		double e = 0.0;
		for (t = 0; t < H; t++)
			e += y[t] * y[t];
		e /= (double)H;
		w->rms_dbfs[k] = e > 1e-12 ? 10.0 * log10(e) : -120.0;
	}
}

int strebmd_worker_hop(struct strebmd_worker *w, const double *in, double *out)
{
	double t0 = thread_cpu(), dt;
	int r = strebm_engine_process(w->engine, in, out);

	dt = thread_cpu() - t0;
	w->cpu += dt;
	w->rtf += (dt * (double)w->rate / (double)w->cfg.H - w->rtf) / RTF_HOPS;
	if (r == 0)
		track_levels(w, in, out);
	return r;
}

int strebmd_worker_apply(struct strebmd_worker *w, const struct strebmd_cmd *c)
{
	struct strebm_engine_status st;
	size_t k = (size_t)c->source;
	bool per_source = c->type == STREBMD_CMD_ELL || c->type == STREBMD_CMD_LEARN ||
			  c->type == STREBMD_CMD_KERNEL || c->type == STREBMD_CMD_GAIN ||
			  c->type == STREBMD_CMD_MUTE;

	if (per_source && (c->source < 0 || k >= w->cfg.K))
		return -EINVAL;
	switch (c->type) {
	case STREBMD_CMD_MODE:
		return strebm_engine_set_mode(w->engine, (enum strebm_mode)c->ivalue);
	case STREBMD_CMD_ELL:
		if (!isfinite(c->value) || c->value <= 0.0)
			return -EINVAL;
		return strebm_engine_set_ell(w->engine, k, c->value * 1e-3 * (double)w->rate, true);
	case STREBMD_CMD_LEARN:
		strebm_engine_get_status(w->engine, &st);
		return strebm_engine_set_ell(w->engine, k, st.ell[k], c->ivalue == 0);
	case STREBMD_CMD_KERNEL:
		return strebm_engine_set_kernel(w->engine, k, (enum strebm_kernel)c->ivalue);
	case STREBMD_CMD_GAIN:
		if (!isfinite(c->value))
			return -EINVAL;
		return strebm_engine_set_gain(w->engine, k, c->value);
	case STREBMD_CMD_MUTE:
		return strebm_engine_set_mute(w->engine, k, c->ivalue != 0);
	case STREBMD_CMD_FREEZE:
		strebm_engine_freeze(w->engine, c->ivalue != 0);
		return 0;
	case STREBMD_CMD_RESET:
		strebm_engine_reset(w->engine);
		return 0;
	default:
		return -EINVAL;
	}
}

void strebmd_worker_status(struct strebmd_worker *w, struct strebmd_status *st)
{
	struct strebm_engine_status es;
	size_t k, m;

	strebm_engine_get_status(w->engine, &es);
	/* every setting as the engine holds it: after a state load or a slot
	 * swap the engine, not the last command, is right */
	st->mode = es.next_mode;
	st->rate = w->rate;
	st->M = (uint32_t)w->cfg.M;
	st->K = (uint32_t)w->cfg.K;
	st->hops = es.hops;
	st->nonfinite = es.nonfinite;
	st->breakdowns = es.breakdowns;
	st->rtf = w->rtf;
	st->rtf_mean = es.hops ? w->cpu * (double)w->rate / ((double)es.hops * (double)w->cfg.H)
			       : 0.0;
	st->latency_ms = 1e3 * (double)strebm_engine_latency(w->engine) / (double)w->rate;
	st->frozen = es.frozen;
	st->degraded = es.degraded;
	st->no_convolutive = !es.convolutive;
	{
		double lo, hi;
		strebm_engine_ell_bounds(w->engine, &lo, &hi);
		/* OSC refuses what the engine would (with a small margin for rounding) */
		st->ell_min_ms = 1e3 * lo / (double)w->rate * 1.000001;
		st->ell_max_ms = 1e3 * hi / (double)w->rate * 0.999999;
	}
	st->dead_mask = 0;
	for (m = 0; m < w->cfg.M && m < 64; m++)
		if ((double)w->silent[m] >= DEAD_SECONDS * (double)w->rate)
			st->dead_mask |= (uint64_t)1 << m;
	for (k = 0; k < w->cfg.K; k++) {
		st->ell_ms[k] = 1e3 * es.ell[k] / (double)w->rate;
		st->learn[k] = !es.pinned[k];
		st->kernel[k] = (int)es.kernel[k];
		st->gain_db[k] = es.gain_db[k];
		st->mute[k] = es.mute[k];
		st->rms_dbfs[k] = w->rms_dbfs[k];
	}
}

double strebmd_worker_cpu_seconds(const struct strebmd_worker *w)
{
	return w->cpu;
}
