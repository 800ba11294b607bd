/* SPDX-License-Identifier: MIT */
#include "pipeline.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ring.h"
#include "worker.h"

#ifdef STREBMD_RTCHECK
/* tests/rtcheck.c: aborts on malloc/lock/syscall while armed. With
 * STREBMD_RTCHECK_SELFTEST set, the callback allocates on purpose once audio
 * flows, to show the check fires. */
void strebmd_rtcheck_arm(int on);
static int rtcheck_selftest = -1;
static void *(*volatile rtcheck_alloc)(size_t) = malloc;
#define RT_ARM(on) do { \
		strebmd_rtcheck_arm(on); \
		if ((on) && rtcheck_selftest > 0 && p->pushed > 48000) \
			free(rtcheck_alloc(16)); \
	} while (0)
#else
#define RT_ARM(on) ((void)0)
#endif

#define CMD_QUEUE 1024
#define HOP_TIMES 256 /* completion times of the last hops (power of two) */

struct strebmd_pipeline {
	struct strebmd_pipeline_config cfg;
	struct strebmd_worker *worker;
	struct strebm_ring *in_ring, *out_ring, *cmd_ring;
	size_t M, K, H, ref;

	/* audio thread */
	uint64_t pushed;                 /* frames pushed into in_ring */
	_Atomic uint64_t audio_frames;   /* frames handled by the callback */
	_Atomic uint64_t underruns, xruns, overruns, early;
	_Atomic uint64_t refused;     /* commands the engine refused when applied */
	_Atomic int refused_type;     /* the last one's enum strebmd_cmd_type */
	double hop_done[HOP_TIMES];      /* when the callback completed hop h */

	/* worker thread */
	pthread_t thread;
	bool started;
	_Atomic bool stop, stall;
	_Atomic uint64_t hops;
	_Atomic size_t engine_latency;
	double *xin, *yout;
	float *fin, *fout;

	/* model state hand-over: request (control) -> done (worker) */
	pthread_mutex_t state_lock;  /* one control thread at a time */
	void *state_buf;
	size_t state_size, state_len;
	_Atomic int state_req;       /* 0 idle, 1 save, 2 load */
	_Atomic int state_done;      /* 0 pending, 1 done; result in state_ret */
	_Atomic int state_ret;
	_Atomic int fill;

	/* control */
	pthread_mutex_t post_lock;   /* producers of cmd_ring (control threads only) */
	pthread_mutex_t status_lock; /* worker only ever trylocks it */
	struct strebmd_status status;
};

struct strebmd_pipeline *strebmd_pipeline_create(const struct strebmd_pipeline_config *cfg)
{
	struct strebmd_pipeline *p;
	const struct strebm_engine_config *ec = &cfg->engine;
	size_t cap;

	if (!cfg->rate || !cfg->max_period || ec->H == 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
#ifdef STREBMD_RTCHECK
	rtcheck_selftest = getenv("STREBMD_RTCHECK_SELFTEST") != NULL;
#endif
	p->cfg = *cfg;
	p->M = ec->M;
	p->K = ec->K;
	p->H = ec->H;
	p->ref = ec->ref_mic < ec->M ? ec->ref_mic : 0;
	/* room for the latency in flight plus slack for a late worker */
	cap = 4 * (p->H + cfg->max_period);
	if (cap < cfg->rate)
		cap = cfg->rate;
	pthread_mutex_init(&p->post_lock, NULL);
	pthread_mutex_init(&p->state_lock, NULL);
	atomic_store(&p->fill, (int)cfg->fill);
	pthread_mutex_init(&p->status_lock, NULL);
	p->worker = strebmd_worker_create(ec, cfg->rate);
	p->in_ring = strebm_ring_create(p->M * sizeof(float), cap);
	p->out_ring = strebm_ring_create(p->K * sizeof(float), cap);
	p->cmd_ring = strebm_ring_create(sizeof(struct strebmd_cmd), CMD_QUEUE);
	p->xin = calloc(p->M * p->H, sizeof(double));
	p->yout = calloc(p->K * p->H, sizeof(double));
	p->fin = calloc(p->M * p->H, sizeof(float));
	p->fout = calloc(p->K * p->H, sizeof(float));
	if (p->worker) {
		p->state_size = strebm_engine_state_size(strebmd_worker_engine(p->worker));
		p->state_buf = calloc(1, p->state_size ? p->state_size : 1);
	}
	if (!p->worker || !p->state_buf || !p->in_ring || !p->out_ring || !p->cmd_ring || !p->xin || !p->yout ||
	    !p->fin || !p->fout) {
		strebmd_pipeline_destroy(p);
		return NULL;
	}
	atomic_store(&p->engine_latency, strebm_engine_latency(strebmd_worker_engine(p->worker)));
	strebmd_worker_status(p->worker, &p->status);
	return p;
}

void strebmd_pipeline_destroy(struct strebmd_pipeline *p)
{
	if (!p)
		return;
	strebmd_pipeline_stop(p);
	strebmd_worker_destroy(p->worker);
	strebm_ring_destroy(p->in_ring);
	strebm_ring_destroy(p->out_ring);
	strebm_ring_destroy(p->cmd_ring);
	free(p->xin);
	free(p->yout);
	free(p->fin);
	free(p->fout);
	free(p->state_buf);
	pthread_mutex_destroy(&p->state_lock);
	pthread_mutex_destroy(&p->post_lock);
	pthread_mutex_destroy(&p->status_lock);
	free(p);
}

/* ---- audio thread ------------------------------------------------------- */

static void fill(struct strebmd_pipeline *p, const float *const *in, float *const *out,
		 size_t from, size_t to)
{
	const float *ref = in ? in[p->ref] : NULL;
	float scale = 1.0f / (float)p->K;
	size_t k, i;

	for (k = 0; k < p->K; k++) {
		if (atomic_load_explicit(&p->fill, memory_order_relaxed) == STREBMD_FILL_DRY && ref) {
			for (i = from; i < to; i++)
				out[k][i] = isfinite(ref[i]) ? ref[i] * scale : 0.0f;
		} else {
			memset(out[k] + from, 0, (to - from) * sizeof(float));
		}
	}
}

static double mono_now(void)
{
	struct timespec ts;

	/* vDSO: no system call */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Frames from worker position m on are missing: was the worker late (it has
 * had a whole period since the hop holding m was complete) or did this
 * period come early (the server catching up after an xrun)? */
static void count_missing(struct strebmd_pipeline *p, int64_t m, size_t nframes, double now)
{
	uint64_t h = (uint64_t)(m < 0 ? 0 : m) / p->H;
	double since = now - p->hop_done[h & (HOP_TIMES - 1)];

	if ((h + 1) * p->H <= p->pushed && since < (double)nframes / (double)p->cfg.rate)
		atomic_fetch_add_explicit(&p->early, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&p->underruns, 1, memory_order_relaxed);
}

static void push_input(struct strebmd_pipeline *p, const float *const *in, size_t n)
{
	void *r1, *r2;
	size_t n1, n2, m, i, M = p->M;
	float *d;

	strebm_ring_write_regions(p->in_ring, &r1, &n1, &r2, &n2);
	d = r1;
	for (i = 0; i < n; i++) {
		if (i == n1)
			d = r2;
		for (m = 0; m < M; m++)
			d[m] = in && in[m] ? in[m][i] : 0.0f;
		d += M;
	}
	strebm_ring_commit(p->in_ring, n);
}

static size_t pull_output(struct strebmd_pipeline *p, float *const *out, size_t at, size_t n)
{
	const void *r1, *r2;
	size_t n1, n2, k, i, K = p->K;
	const float *s;

	strebm_ring_read_regions(p->out_ring, &r1, &n1, &r2, &n2);
	if (n > n1 + n2)
		n = n1 + n2;
	s = r1;
	for (i = 0; i < n; i++) {
		if (i == n1)
			s = r2;
		for (k = 0; k < K; k++)
			out[k][at + i] = s[k];
		s += K;
	}
	strebm_ring_skip(p->out_ring, n);
	return n;
}

void strebmd_pipeline_audio(struct strebmd_pipeline *p, const float *const *in,
			    float *const *out, size_t nframes)
{
	int64_t a, R;
	uint64_t h;
	size_t i = 0, n;
	double now;
	bool pushed = false;

	RT_ARM(1);
	atomic_fetch_add_explicit(&p->audio_frames, nframes, memory_order_relaxed);
	if (nframes <= p->cfg.max_period && strebm_ring_write_space(p->in_ring) >= nframes) {
		push_input(p, in, nframes);
		pushed = true;
	} else {
		atomic_fetch_add_explicit(&p->overruns, 1, memory_order_relaxed);
	}
	if (!pushed) {
		fill(p, in, out, 0, nframes);
		atomic_fetch_add_explicit(&p->underruns, 1, memory_order_relaxed);
		RT_ARM(0);
		return;
	}
	/* output position: this period plays input frames [a, a + nframes) */
	a = (int64_t)p->pushed - (int64_t)p->H - (int64_t)nframes;
	now = mono_now();
	for (h = (p->pushed + nframes) / p->H; h > p->pushed / p->H; h--)
		p->hop_done[(h - 1) & (HOP_TIMES - 1)] = now;
	p->pushed += nframes;
	if (a < 0) {
		/* priming: nothing can be due yet */
		n = (size_t)(-a) < nframes ? (size_t)(-a) : nframes;
		fill(p, NULL, out, 0, n);
		i = n;
		a += (int64_t)n;
	}
	if (i < nframes) {
		R = (int64_t)strebm_ring_consumed(p->out_ring);
		if (R < a)
			R += (int64_t)strebm_ring_skip(p->out_ring, (size_t)(a - R));
		if (R > a) {
			/* the latency grew (longer period): silence up to R */
			n = (size_t)(R - a) < nframes - i ? (size_t)(R - a) : nframes - i;
			fill(p, NULL, out, i, i + n);
			i += n;
			a += (int64_t)n;
		}
		if (R == a && i < nframes) {
			n = pull_output(p, out, i, nframes - i);
			i += n;
			a += (int64_t)n;
		}
		if (i < nframes) {
			fill(p, in, out, i, nframes);
			count_missing(p, a, nframes, now);
		}
	}
	RT_ARM(0);
}

void strebmd_pipeline_xrun(struct strebmd_pipeline *p)
{
	atomic_fetch_add_explicit(&p->xruns, 1, memory_order_relaxed);
}

/* ---- worker thread ------------------------------------------------------ */

static void sleep_ns(long ns)
{
	struct timespec ts = { 0, ns };

	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
}

static size_t drain_commands(struct strebmd_pipeline *p)
{
	struct strebmd_cmd c;
	size_t n = 0;

	while (strebm_ring_read(p->cmd_ring, &c, 1) == 1) {
		if (strebmd_worker_apply(p->worker, &c) < 0) {
			/* OSC checked it against a status that the hop changed
			 * (a mode switch, a load): counted, logged by the main loop */
			atomic_store(&p->refused_type, (int)c.type);
			atomic_fetch_add(&p->refused, 1);
		}
		n++;
	}
	return n;
}

static void serve_state(struct strebmd_pipeline *p)
{
	struct strebm_engine *e = strebmd_worker_engine(p->worker);
	int req = atomic_load_explicit(&p->state_req, memory_order_acquire);
	int r;

	if (!req || atomic_load(&p->state_done))
		return;
	if (req == 1)
		r = strebm_engine_save_state(e, p->state_buf, p->state_size);
	else
		r = strebm_engine_load_state(e, p->state_buf, p->state_len);
	atomic_store(&p->state_ret, r);
	atomic_store_explicit(&p->state_done, 1, memory_order_release);
}

static void publish(struct strebmd_pipeline *p)
{
	/* never wait for a reader: skip this snapshot if one holds the lock */
	if (pthread_mutex_trylock(&p->status_lock) != 0)
		return;
	strebmd_worker_status(p->worker, &p->status);
	pthread_mutex_unlock(&p->status_lock);
}

static void take_hop(struct strebmd_pipeline *p)
{
	size_t M = p->M, K = p->K, H = p->H, m, k, t;

	strebm_ring_read(p->in_ring, p->fin, H);
	for (m = 0; m < M; m++)
		for (t = 0; t < H; t++)
			p->xin[m * H + t] = (double)p->fin[t * M + m];
	strebmd_worker_hop(p->worker, p->xin, p->yout);
	for (k = 0; k < K; k++)
		for (t = 0; t < H; t++)
			p->fout[t * K + k] = (float)p->yout[k * H + t];
	/* the callback consumes steadily; a full ring means audio stopped */
	while (strebm_ring_write_space(p->out_ring) < H && !atomic_load(&p->stop)) {
		/* between hops: control keeps working while audio is stopped */
		drain_commands(p);
		serve_state(p);
		sleep_ns(1000000);
	}
	strebm_ring_write(p->out_ring, p->fout, H);
	atomic_store(&p->engine_latency, strebm_engine_latency(strebmd_worker_engine(p->worker)));
	atomic_fetch_add(&p->hops, 1);
}

static void *worker_main(void *arg)
{
	struct strebmd_pipeline *p = arg;
	/* poll: the worker must notice a completed hop well within a period */
	long max_sleep = (long)(1e9 * (double)p->H / (double)p->cfg.rate / 16.0);

	if (max_sleep > 250000)
		max_sleep = 250000;
	if (max_sleep < 50000)
		max_sleep = 50000;
	while (!atomic_load(&p->stop)) {
		/* a query right after a setting sees it: publish at once */
		if (drain_commands(p))
			publish(p);
		serve_state(p);
		if (!atomic_load(&p->stall) && strebm_ring_read_space(p->in_ring) >= p->H) {
			take_hop(p);
			publish(p);
			continue;
		}
		sleep_ns(max_sleep);
	}
	return NULL;
}

int strebmd_pipeline_start(struct strebmd_pipeline *p)
{
	int r;

	if (p->started)
		return 0;
	atomic_store(&p->stop, false);
	r = pthread_create(&p->thread, NULL, worker_main, p);
	if (r != 0)
		return -r;
	pthread_setname_np(p->thread, "strebmd-worker");
	p->started = true;
	return 0;
}

pthread_t strebmd_pipeline_thread(const struct strebmd_pipeline *p)
{
	return p->thread;
}

struct strebm_engine *strebmd_pipeline_engine(struct strebmd_pipeline *p)
{
	return strebmd_worker_engine(p->worker);
}

void strebmd_pipeline_set_fill(struct strebmd_pipeline *p, enum strebmd_fill fill)
{
	atomic_store(&p->fill, (int)fill);
}

/* Run a state request through the worker (or directly when it is not
 * running) and wait for it. */
static int state_request(struct strebmd_pipeline *p, int req, int timeout_ms)
{
	struct timespec ts = { 0, 1000000 };
	int waited = 0;

	atomic_store(&p->state_done, 0);
	atomic_store_explicit(&p->state_req, req, memory_order_release);
	if (!p->started)
		serve_state(p);
	while (!atomic_load_explicit(&p->state_done, memory_order_acquire)) {
		if (waited++ >= timeout_ms) {
			/* withdraw; the worker may still be taking it */
			atomic_store(&p->state_req, 0);
			return -ETIMEDOUT;
		}
		nanosleep(&ts, NULL);
	}
	atomic_store(&p->state_req, 0);
	return atomic_load(&p->state_ret);
}

int strebmd_pipeline_save_state(struct strebmd_pipeline *p, void *buf, size_t cap, size_t *len,
				int timeout_ms)
{
	int r;

	if (cap < p->state_size)
		return -ENOSPC;
	pthread_mutex_lock(&p->state_lock);
	r = state_request(p, 1, timeout_ms);
	if (r == 0) {
		memcpy(buf, p->state_buf, p->state_size);
		*len = p->state_size;
	}
	pthread_mutex_unlock(&p->state_lock);
	return r;
}

int strebmd_pipeline_load_state(struct strebmd_pipeline *p, const void *buf, size_t len,
				int timeout_ms)
{
	int r;

	if (len > p->state_size)
		return -E2BIG;
	pthread_mutex_lock(&p->state_lock);
	memcpy(p->state_buf, buf, len);
	p->state_len = len;
	r = state_request(p, 2, timeout_ms);
	pthread_mutex_unlock(&p->state_lock);
	return r;
}

size_t strebmd_pipeline_state_size(const struct strebmd_pipeline *p)
{
	return p->state_size;
}

void strebmd_pipeline_stop(struct strebmd_pipeline *p)
{
	if (!p->started)
		return;
	atomic_store(&p->stop, true);
	pthread_join(p->thread, NULL);
	p->started = false;
}

/* ---- control ------------------------------------------------------------ */

int strebmd_pipeline_post(struct strebmd_pipeline *p, const struct strebmd_cmd *cmd)
{
	size_t n;

	pthread_mutex_lock(&p->post_lock);
	n = strebm_ring_write(p->cmd_ring, cmd, 1);
	pthread_mutex_unlock(&p->post_lock);
	return n == 1 ? 0 : -EAGAIN;
}

void strebmd_pipeline_status(struct strebmd_pipeline *p, struct strebmd_status *st)
{
	pthread_mutex_lock(&p->status_lock);
	*st = p->status;
	pthread_mutex_unlock(&p->status_lock);
	st->underruns = atomic_load(&p->underruns);
	st->early = atomic_load(&p->early);
	st->xruns = atomic_load(&p->xruns);
	st->refused = atomic_load(&p->refused);
	st->refused_type = atomic_load(&p->refused_type);
	st->latency_ms = 1e3 * (double)atomic_load(&p->engine_latency) / (double)p->cfg.rate;
}

uint64_t strebmd_pipeline_audio_frames(const struct strebmd_pipeline *p)
{
	return atomic_load(&((struct strebmd_pipeline *)p)->audio_frames);
}

uint64_t strebmd_pipeline_worker_hops(const struct strebmd_pipeline *p)
{
	return atomic_load(&((struct strebmd_pipeline *)p)->hops);
}

size_t strebmd_pipeline_latency(const struct strebmd_pipeline *p, size_t period)
{
	return atomic_load(&((struct strebmd_pipeline *)p)->engine_latency) + period;
}

void strebmd_pipeline_stall(struct strebmd_pipeline *p, bool stall)
{
	atomic_store(&p->stall, stall);
}
