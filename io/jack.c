/* SPDX-License-Identifier: MIT */
#include "jack.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jack/jack.h>
#include <jack/metadata.h>
#include <jack/thread.h>
#include <jack/uuid.h>

#define MAX_PERIOD 8192
#define MAX_PORTS 128
#define NAME_LEN 320

struct conn {
	int port;               /* our port: 0..M-1 inputs, M..M+K-1 outputs */
	char peer[NAME_LEN];
	bool pending;           /* the peer did not exist at the last look */
};

struct strebm_jack {
	struct strebm_jack_config cfg;
	struct strebm_jack_hooks hooks;
	char client_name[NAME_LEN], server[NAME_LEN];
	jack_client_t *client;
	jack_port_t *ports[MAX_PORTS];
	const float *in[MAX_PORTS];
	float *out[MAX_PORTS];
	size_t M, K;
	bool active;
	unsigned rate;
	_Atomic size_t period;

	/* set from JACK threads, read by the main thread */
	_Atomic bool lost, graph_changed, bufsize_changed;

	/* supervisor */
	double retry_at, backoff, last_refresh;
	unsigned retries;
	struct conn *conns;
	size_t nconns, capconns;
};

static void say(struct strebm_jack *j, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct strebm_jack *j, int level, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!j->hooks.message)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	j->hooks.message(j->hooks.data, level, msg);
}

/* libjack prints its own errors on stderr; the retries would flood the log */
static void quiet_jack(const char *msg)
{
	(void)msg;
}

int strebm_jack_rt_priority(const struct strebm_jack *j)
{
	if (!j->client || !jack_is_realtime(j->client))
		return -1;
	return jack_client_real_time_priority(j->client);
}

size_t strebm_jack_max_period(void)
{
	return MAX_PERIOD;
}

/* ---- JACK threads ------------------------------------------------------- */

static int on_process(jack_nframes_t nframes, void *arg)
{
	struct strebm_jack *j = arg;
	size_t m, k;

	for (m = 0; m < j->M; m++)
		j->in[m] = jack_port_get_buffer(j->ports[m], nframes);
	for (k = 0; k < j->K; k++)
		j->out[k] = jack_port_get_buffer(j->ports[j->M + k], nframes);
	if (nframes > MAX_PERIOD) {
		for (k = 0; k < j->K; k++)
			memset(j->out[k], 0, nframes * sizeof(float));
		return 0;
	}
	j->hooks.audio(j->hooks.data, j->in, j->out, nframes);
	return 0;
}

static int on_xrun(void *arg)
{
	struct strebm_jack *j = arg;

	if (j->hooks.xrun)
		j->hooks.xrun(j->hooks.data);
	return 0;
}

static int on_bufsize(jack_nframes_t nframes, void *arg)
{
	struct strebm_jack *j = arg;

	if (atomic_exchange(&j->period, (size_t)nframes) != (size_t)nframes)
		atomic_store(&j->bufsize_changed, true);
	return 0;
}

static void on_shutdown(jack_status_t code, const char *reason, void *arg)
{
	struct strebm_jack *j = arg;

	(void)code;
	(void)reason;
	atomic_store(&j->lost, true);
}

static void on_connect(jack_port_id_t a, jack_port_id_t b, int connect, void *arg)
{
	struct strebm_jack *j = arg;

	(void)a;
	(void)b;
	(void)connect;
	atomic_store(&j->graph_changed, true);
}

static void on_register(jack_port_id_t port, int reg, void *arg)
{
	struct strebm_jack *j = arg;

	(void)port;
	(void)reg;
	atomic_store(&j->graph_changed, true);
}

static void on_latency(jack_latency_callback_mode_t mode, void *arg)
{
	struct strebm_jack *j = arg;
	jack_latency_range_t r, up = { 0, 0 };
	size_t L = j->hooks.latency(j->hooks.data, atomic_load(&j->period));
	size_t i, from, to, tgt_from, tgt_to;

	if (mode == JackCaptureLatency) {
		from = 0, to = j->M, tgt_from = j->M, tgt_to = j->M + j->K;
	} else {
		from = j->M, to = j->M + j->K, tgt_from = 0, tgt_to = j->M;
	}
	/* the largest upstream (or downstream) latency, plus ours */
	for (i = from; i < to; i++) {
		jack_port_get_latency_range(j->ports[i], mode, &r);
		if (r.min > up.min)
			up.min = r.min;
		if (r.max > up.max)
			up.max = r.max;
	}
	up.min += (jack_nframes_t)L;
	up.max += (jack_nframes_t)L;
	for (i = tgt_from; i < tgt_to; i++)
		jack_port_set_latency_range(j->ports[i], mode, &up);
}

/* ---- connections (main thread) ----------------------------------------- */

static int add_conn(struct strebm_jack *j, int port, const char *peer, bool pending)
{
	size_t i;

	for (i = 0; i < j->nconns; i++)
		if (j->conns[i].port == port && !strcmp(j->conns[i].peer, peer))
			return 0;
	if (strlen(peer) >= NAME_LEN)
		return -ENAMETOOLONG;
	if (j->nconns == j->capconns) {
		size_t cap = j->capconns ? 2 * j->capconns : 16;
		struct conn *c = realloc(j->conns, cap * sizeof(*c));
		if (!c)
			return -ENOMEM;
		j->conns = c;
		j->capconns = cap;
	}
	j->conns[j->nconns].port = port;
	snprintf(j->conns[j->nconns].peer, NAME_LEN, "%s", peer);
	j->conns[j->nconns].pending = pending;
	j->nconns++;
	return 0;
}

/* A positional list: entry i (0-based) goes with our port first + i; empty
 * entries ("a,,b") leave a port unconnected. */
static void add_list(struct strebm_jack *j, const char *list, int first, size_t n)
{
	const char *p = list;
	size_t i = 0;

	if (!list || !*list)
		return;
	while (i < n) {
		const char *end = strchr(p, ','), *a = p, *b;
		char peer[NAME_LEN];
		if (!end)
			end = p + strlen(p);
		b = end;
		while (a < b && (*a == ' ' || *a == '\t'))
			a++;
		while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
			b--;
		if (b > a && (size_t)(b - a) < sizeof(peer)) {
			memcpy(peer, a, (size_t)(b - a));
			peer[b - a] = 0;
			add_conn(j, first + (int)i, peer, true);
		}
		if (!*end)
			break;
		p = end + 1;
		i++;
	}
}

static const char *own_name(struct strebm_jack *j, int port)
{
	return jack_port_name(j->ports[port]);
}

static void connect_pending(struct strebm_jack *j)
{
	size_t i;

	for (i = 0; i < j->nconns; i++) {
		struct conn *c = &j->conns[i];
		jack_port_t *peer = jack_port_by_name(j->client, c->peer);
		int r;
		if (!c->pending || !peer)
			continue;
		if (c->port < (int)j->M)
			r = jack_connect(j->client, c->peer, own_name(j, c->port));
		else
			r = jack_connect(j->client, own_name(j, c->port), c->peer);
		if (r == 0 || r == EEXIST) {
			c->pending = false;
			say(j, 7, "connected %s %s %s", own_name(j, c->port),
			    c->port < (int)j->M ? "<-" : "->", c->peer);
		} else {
			say(j, 7, "cannot connect %s to %s", own_name(j, c->port), c->peer);
			c->pending = true; /* retried on the next graph change */
		}
	}
}

/* Bring the remembered set up to date: keep what is connected, keep
 * connections whose peer went away (restored when it returns), forget those
 * the user undid while both ends existed, and learn new ones. */
static void refresh_conns(struct strebm_jack *j)
{
	size_t i, p;

	for (i = 0; i < j->nconns;) {
		struct conn *c = &j->conns[i];
		jack_port_t *peer = jack_port_by_name(j->client, c->peer);
		bool made = peer && jack_port_connected_to(j->ports[c->port], c->peer);
		if (made) {
			c->pending = false;
		} else if (!peer) {
			c->pending = true;
		} else if (!c->pending) {
			say(j, 7, "forgetting connection %s - %s (undone)", own_name(j, c->port),
			    c->peer);
			j->conns[i] = j->conns[--j->nconns];
			continue;
		}
		i++;
	}
	for (p = 0; p < j->M + j->K; p++) {
		const char **list = jack_port_get_all_connections(j->client, j->ports[p]);
		size_t n;
		if (!list)
			continue;
		for (n = 0; list[n]; n++)
			add_conn(j, (int)p, list[n], false);
		jack_free(list);
	}
	connect_pending(j);
}

/* ---- lifecycle ---------------------------------------------------------- */

struct strebm_jack *strebm_jack_create(const struct strebm_jack_config *cfg,
				       const struct strebm_jack_hooks *hooks)
{
	struct strebm_jack *j;

	if (!cfg->M || !cfg->K || cfg->M + cfg->K > MAX_PORTS || !hooks->audio ||
	    !hooks->latency)
		return NULL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->cfg = *cfg;
	j->hooks = *hooks;
	j->M = cfg->M;
	j->K = cfg->K;
	snprintf(j->client_name, sizeof(j->client_name), "%s",
		 cfg->client_name && *cfg->client_name ? cfg->client_name : "strebmd");
	snprintf(j->server, sizeof(j->server), "%s", cfg->server ? cfg->server : "");
	j->cfg.client_name = j->client_name;
	j->cfg.server = j->server;
	j->cfg.connect_inputs = j->cfg.connect_outputs = NULL;
	add_list(j, cfg->connect_inputs, 0, j->M);
	add_list(j, cfg->connect_outputs, (int)j->M, j->K);
	jack_set_error_function(quiet_jack);
	jack_set_info_function(quiet_jack);
	return j;
}

static void close_client(struct strebm_jack *j)
{
	if (!j->client)
		return;
	if (j->active && !atomic_load(&j->lost)) {
		size_t i;
		jack_deactivate(j->client);
		/* ports unregistered one by one before the close: jack2 (1.9.21)
		 * never answered jack_client_close for a client of 33 ports or
		 * more that still held them (SIGTERM hung; tests/live_jack.sh) */
		for (i = 0; i < j->M + j->K; i++)
			if (j->ports[i])
				jack_port_unregister(j->client, j->ports[i]);
	}
	jack_client_close(j->client);
	j->client = NULL;
	j->active = false;
	memset(j->ports, 0, sizeof(j->ports));
}

void strebm_jack_destroy(struct strebm_jack *j)
{
	if (!j)
		return;
	close_client(j);
	free(j->conns);
	free(j);
}

static void set_pretty(struct strebm_jack *j, jack_port_t *port, const char *pretty)
{
	jack_uuid_t uuid = jack_port_uuid(port);

	if (!jack_uuid_empty(uuid))
		jack_set_property(j->client, uuid, JACK_METADATA_PRETTY_NAME, pretty, "text/plain");
}

int strebm_jack_open(struct strebm_jack *j, char *err, size_t errlen)
{
	jack_status_t status = 0;
	jack_options_t opts = JackNoStartServer | JackUseExactName;
	size_t i;

	if (j->client)
		return 0;
	if (*j->server)
		opts |= JackServerName;
	j->client = jack_client_open(j->client_name, opts, &status, j->server);
	if (!j->client) {
		if (status & JackServerFailed) {
			snprintf(err, errlen, "no JACK server is running%s%s%s",
				 *j->server ? " (server '" : "", j->server, *j->server ? "')" : "");
			return -ENOENT;
		}
		if (status & JackNameNotUnique)
			snprintf(err, errlen, "JACK client name '%s' is taken (another strebmd? "
				 "set jack.client_name)", j->client_name);
		else if (status & JackServerError)
			/* jackd 2 refuses a name in use this way (its log says
			 * "already exists") when the exact name is asked for */
			snprintf(err, errlen, "the JACK server refused client '%s' (status 0x%x): is "
				 "the name in use (another strebmd)? set --client-name or "
				 "jack.client_name", j->client_name, (unsigned)status);
		else
			snprintf(err, errlen, "cannot open JACK client '%s' (status 0x%x)",
				 j->client_name, (unsigned)status);
		return -EIO;
	}
	atomic_store(&j->lost, false);
	j->rate = jack_get_sample_rate(j->client);
	atomic_store(&j->period, (size_t)jack_get_buffer_size(j->client));
	for (i = 0; i < j->M + j->K; i++) {
		char name[32], pretty[64];
		bool input = i < j->M;
		if (input) {
			snprintf(name, sizeof(name), "in_%zu", i + 1);
			snprintf(pretty, sizeof(pretty), "Mic %zu", i + 1);
		} else {
			snprintf(name, sizeof(name), "source_%zu", i - j->M + 1);
			snprintf(pretty, sizeof(pretty), "Source %zu", i - j->M + 1);
		}
		j->ports[i] = jack_port_register(j->client, name, JACK_DEFAULT_AUDIO_TYPE,
						 input ? JackPortIsInput : JackPortIsOutput, 0);
		if (!j->ports[i]) {
			snprintf(err, errlen, "cannot register JACK port %s", name);
			close_client(j);
			return -EIO;
		}
		set_pretty(j, j->ports[i], pretty);
	}
	jack_set_process_callback(j->client, on_process, j);
	jack_set_xrun_callback(j->client, on_xrun, j);
	jack_set_buffer_size_callback(j->client, on_bufsize, j);
	jack_set_latency_callback(j->client, on_latency, j);
	jack_set_port_connect_callback(j->client, on_connect, j);
	jack_set_port_registration_callback(j->client, on_register, j);
	jack_on_info_shutdown(j->client, on_shutdown, j);
	return 0;
}

int strebm_jack_activate(struct strebm_jack *j, char *err, size_t errlen)
{
	size_t i;

	if (!j->client) {
		snprintf(err, errlen, "JACK client is not open");
		return -EINVAL;
	}
	if (j->active)
		return 0;
	if (jack_activate(j->client) != 0) {
		snprintf(err, errlen, "cannot activate the JACK client");
		return -EIO;
	}
	j->active = true;
	for (i = 0; i < j->nconns; i++)
		j->conns[i].pending = true;
	connect_pending(j);
	for (i = 0; i < j->nconns; i++)
		if (j->conns[i].pending && !jack_port_by_name(j->client, j->conns[i].peer))
			say(j, 4, "port %s does not exist (yet): %s is connected to it when it "
			    "appears", j->conns[i].peer, own_name(j, j->conns[i].port));
	jack_recompute_total_latencies(j->client);
	return 0;
}

enum strebm_jack_event strebm_jack_poll(struct strebm_jack *j, double now)
{
	char err[256];
	unsigned old_rate = j->rate;

	if (j->client && atomic_load(&j->lost)) {
		say(j, 4, "JACK server went away; reconnecting (the model is kept)");
		close_client(j);
		j->backoff = 0.25;
		j->retries = 0;
		j->retry_at = now + j->backoff;
		return STREBM_JACK_LOST;
	}
	if (!j->client) {
		if (now < j->retry_at)
			return STREBM_JACK_IDLE;
		if (strebm_jack_open(j, err, sizeof(err)) < 0) {
			j->retries++;
			if (j->retries == 1 || j->retries % 30 == 0)
				say(j, j->retries == 1 ? 6 : 7, "%s; still waiting", err);
			j->backoff = j->backoff < 0.25 ? 0.25 : j->backoff * 2;
			if (j->backoff > 1.0)
				j->backoff = 1.0;
			j->retry_at = now + j->backoff;
			return STREBM_JACK_IDLE;
		}
		if (old_rate && j->rate != old_rate) {
			say(j, 4, "JACK server is back at %u Hz (was %u Hz)", j->rate, old_rate);
			return STREBM_JACK_REOPENED;
		}
		if (strebm_jack_activate(j, err, sizeof(err)) < 0) {
			say(j, 3, "%s", err);
			close_client(j);
			j->retry_at = now + 1.0;
			return STREBM_JACK_IDLE;
		}
		say(j, 6, "JACK server is back: ports registered again, connections restored");
		j->last_refresh = now;
		return STREBM_JACK_BACK;
	}
	if (!j->active)
		return STREBM_JACK_IDLE;
	if (atomic_exchange(&j->bufsize_changed, false)) {
		say(j, 6, "JACK period is now %zu frames", atomic_load(&j->period));
		jack_recompute_total_latencies(j->client);
	}
	if (atomic_exchange(&j->graph_changed, false) || now - j->last_refresh > 1.0) {
		refresh_conns(j);
		j->last_refresh = now;
	}
	return STREBM_JACK_IDLE;
}

bool strebm_jack_active(const struct strebm_jack *j)
{
	return j->client && j->active && !atomic_load(&((struct strebm_jack *)j)->lost);
}

unsigned strebm_jack_rate(const struct strebm_jack *j)
{
	return j->rate;
}

size_t strebm_jack_period(const struct strebm_jack *j)
{
	return atomic_load(&((struct strebm_jack *)j)->period);
}

void strebm_jack_recompute_latency(struct strebm_jack *j)
{
	if (j->client && j->active && !atomic_load(&j->lost))
		jack_recompute_total_latencies(j->client);
}

void strebm_jack_set_connect(struct strebm_jack *j, const char *inputs, const char *outputs)
{
	add_list(j, inputs, 0, j->M);
	add_list(j, outputs, (int)j->M, j->K);
	if (j->active)
		connect_pending(j);
}

bool strebm_jack_server_running(const char *server)
{
	jack_status_t status = 0;
	jack_options_t opts = JackNoStartServer;
	jack_client_t *c;

	jack_set_error_function(quiet_jack);
	jack_set_info_function(quiet_jack);
	if (server && *server)
		opts |= JackServerName;
	c = jack_client_open("strebmd-probe", opts, &status, server);
	if (!c)
		return false;
	jack_client_close(c);
	return true;
}
