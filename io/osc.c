/* SPDX-License-Identifier: MIT */
#include "osc.h"

#include "allow.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <lo/lo.h>
#include <lo/lo_throw.h>

#include "engine.h"
#include "kernel.h"

#define OSC_BUF 65536              /* largest UDP payload, plus a spare byte */
#define OSC_BURST 256              /* datagrams per wake before timers run */
#define OSC_RETRY_MS 2             /* backlog retry period */
#define OSC_ECHO 128               /* bytes of a bad path echoed in an error */
#define OSC_REJECT_LOG_S 10        /* at most one rejected-sender log per this */
/* one backlog entry per setting: mode, freeze, reset, 5 per source */
#define OSC_BACKLOG (3 + 5 * STREBM_MAX_SOURCES)

struct subscriber {
	struct sockaddr_storage to;
	socklen_t tolen;
	double period;             /* s */
	struct timespec next;
	uint64_t since;            /* subscription order, for replacement */
	bool used;
};

struct strebmd_osc {
	struct strebmd_osc_ops ops;
	void *data;
	int fd, evfd, port;
	lo_server lo;
	pthread_t thread;
	bool started;
	atomic_bool stop;

	/* dispatch state: the liblo server, the current sender, backlog,
	 * subscribers. OSC thread, or strebmd_osc_dispatch() callers. */
	pthread_mutex_t lock;
	unsigned char *buf;
	struct sockaddr_storage from;
	socklen_t fromlen;
	bool have_from;
	struct strebmd_cmd backlog[OSC_BACKLOG];
	size_t nbacklog;
	struct subscriber subs[STREBMD_OSC_MAX_SUBSCRIBERS];
	uint64_t sub_serial;

	pthread_mutex_t allow_lock;
	struct strebm_allow_entry *allow;
	size_t nallow;
	bool allow_all;
	struct timespec reject_logged;
	bool reject_ever_logged;
	uint64_t reject_quiet;

	_Atomic uint64_t n_datagrams, n_rejected, n_malformed, n_errors, n_posted, n_deferred,
		n_coalesced, n_dropped, n_backlog;
};

static void olog(struct strebmd_osc *o, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void olog(struct strebmd_osc *o, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!o->ops.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	o->ops.log(o->data, level, line);
}

static void inc(_Atomic uint64_t *c)
{
	atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* ---- time ---- */

static struct timespec now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static double ts_diff(struct timespec a, struct timespec b)
{
	return (double)(a.tv_sec - b.tv_sec) + 1e-9 * (double)(a.tv_nsec - b.tv_nsec);
}

static struct timespec ts_add(struct timespec a, double s)
{
	double ns = (double)a.tv_nsec + s * 1e9;
	long long whole = (long long)floor(ns / 1e9);

	a.tv_sec += (time_t)whole;
	a.tv_nsec = (long)(ns - (double)whole * 1e9);
	if (a.tv_nsec >= 1000000000L) {
		a.tv_sec++;
		a.tv_nsec -= 1000000000L;
	}
	if (a.tv_nsec < 0)
		a.tv_nsec = 0;
	return a;
}

/* ---- allow list ---- */

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as IPv4. */
static void normalise(const struct sockaddr *sa, int *family, unsigned char addr[16])
{
	if (sa->sa_family == AF_INET) {
		*family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			*family = AF_INET;
			memcpy(addr, a6->s6_addr + 12, 4);
		} else {
			*family = AF_INET6;
			memcpy(addr, a6->s6_addr, 16);
		}
	} else {
		*family = AF_UNSPEC;
	}
}

int strebmd_osc_set_allow(struct strebmd_osc *o, const char *allow, char *err, size_t errlen)
{
	struct strebm_allow_entry *list = NULL, *old;
	size_t n = 0, cap = 0;
	bool all = false;
	char *copy, *tok, *save = NULL;

	if (!o)
		return -EINVAL;
	copy = strdup(allow ? allow : "");
	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		struct strebm_allow_entry e;
		bool star = false;
		if (strebm_allow_parse(tok, &e, &star) < 0) {
			if (err && errlen)
				snprintf(err, errlen, "osc.allow: '%s' is not an address, address/bits, "
					 "IPv4 prefix ending in '.', or '*'", tok);
			free(copy);
			free(list);
			return -EINVAL;
		}
		if (star) {
			all = true;
			continue;
		}
		if (n == cap) {
			struct strebm_allow_entry *grown;
			cap = cap ? 2 * cap : 8;
			grown = realloc(list, cap * sizeof(*list));
			if (!grown) {
				free(copy);
				free(list);
				return -ENOMEM;
			}
			list = grown;
		}
		list[n++] = e;
	}
	free(copy);
	pthread_mutex_lock(&o->allow_lock);
	old = o->allow;
	o->allow = list;
	o->nallow = n;
	o->allow_all = all;
	pthread_mutex_unlock(&o->allow_lock);
	free(old);
	return 0;
}

static bool allowed(struct strebmd_osc *o, const struct sockaddr *sa)
{
	unsigned char addr[16];
	int family;
	bool ok = false;
	size_t i;

	normalise(sa, &family, addr);
	if (family == AF_UNSPEC)
		return false;
	pthread_mutex_lock(&o->allow_lock);
	ok = o->allow_all;
	for (i = 0; i < o->nallow && !ok; i++)
		ok = o->allow[i].family == family && strebm_allow_prefix_match(o->allow[i].addr, addr, o->allow[i].bits);
	if (!ok) {
		/* rate-limited debug log */
		struct timespec t = now_mono();
		if (!o->reject_ever_logged || ts_diff(t, o->reject_logged) >= OSC_REJECT_LOG_S) {
			char host[INET6_ADDRSTRLEN] = "?";
			if (family == AF_INET)
				inet_ntop(AF_INET, addr, host, sizeof(host));
			else
				inet_ntop(AF_INET6, addr, host, sizeof(host));
			olog(o, 7, "osc: ignoring a sender not in osc.allow: %s (%llu more since the last note)",
			     host, (unsigned long long)o->reject_quiet);
			o->reject_logged = t;
			o->reject_ever_logged = true;
			o->reject_quiet = 0;
		} else {
			o->reject_quiet++;
		}
	}
	pthread_mutex_unlock(&o->allow_lock);
	return ok;
}

/* ---- replies ---- */

static void send_to(struct strebmd_osc *o, const struct sockaddr_storage *to, socklen_t tolen,
		    const char *path, lo_message m)
{
	size_t n = 0;
	void *data = lo_message_serialise(m, path, NULL, &n);

	if (!data)
		return;
	/* best effort: a full socket buffer or a vanished client loses a reply */
	(void)!sendto(o->fd, data, n, MSG_DONTWAIT | MSG_NOSIGNAL, (const struct sockaddr *)to, tolen);
	free(data);
}

static void reply(struct strebmd_osc *o, const char *path, lo_message m)
{
	if (o->have_from)
		send_to(o, &o->from, o->fromlen, path, m);
	lo_message_free(m);
}

/* /strebm/error s path s reason. The path is echoed cut to OSC_ECHO bytes. */
static void reply_error(struct strebmd_osc *o, const char *path, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void reply_error(struct strebmd_osc *o, const char *path, const char *fmt, ...)
{
	char echo[OSC_ECHO + 4], reason[256];
	lo_message m;
	va_list ap;
	size_t n = path ? strnlen(path, OSC_ECHO + 1) : 0;

	inc(&o->n_errors);
	if (n > OSC_ECHO) {
		memcpy(echo, path, OSC_ECHO);
		memcpy(echo + OSC_ECHO, "...", 4);
	} else {
		memcpy(echo, path ? path : "", n);
		echo[n] = 0;
	}
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	m = lo_message_new();
	if (!m)
		return;
	lo_message_add_string(m, echo);
	lo_message_add_string(m, reason);
	reply(o, "/strebm/error", m);
}

/* ---- posting with a coalescing backlog ---- */

static bool same_setting(const struct strebmd_cmd *a, const struct strebmd_cmd *b)
{
	return a->type == b->type && a->source == b->source;
}

static void backlog_flush(struct strebmd_osc *o)
{
	while (o->nbacklog) {
		int r = o->ops.post(o->data, &o->backlog[0]);
		if (r == -EAGAIN)
			break;
		if (r == 0)
			inc(&o->n_posted);
		else {
			inc(&o->n_dropped);
			olog(o, 4, "osc: a waiting command (type %d) was refused: %s",
			     (int)o->backlog[0].type, strerror(-r));
		}
		memmove(o->backlog, o->backlog + 1, (o->nbacklog - 1) * sizeof(o->backlog[0]));
		o->nbacklog--;
	}
	atomic_store_explicit(&o->n_backlog, o->nbacklog, memory_order_relaxed);
}

static void backlog_add(struct strebmd_osc *o, const struct strebmd_cmd *c)
{
	size_t i;

	for (i = 0; i < o->nbacklog; i++)
		if (same_setting(&o->backlog[i], c)) {
			memmove(o->backlog + i, o->backlog + i + 1,
				(o->nbacklog - i - 1) * sizeof(o->backlog[0]));
			o->nbacklog--;
			inc(&o->n_coalesced);
			break;
		}
	/* one entry per setting: there is always room */
	if (o->nbacklog < OSC_BACKLOG)
		o->backlog[o->nbacklog++] = *c;
	atomic_store_explicit(&o->n_backlog, o->nbacklog, memory_order_relaxed);
}

static void post(struct strebmd_osc *o, const char *path, const struct strebmd_cmd *c)
{
	int r;

	if (o->nbacklog) {
		/* keep the order: behind what waits */
		inc(&o->n_deferred);
		backlog_add(o, c);
		backlog_flush(o);
		return;
	}
	r = o->ops.post(o->data, c);
	if (r == 0) {
		inc(&o->n_posted);
	} else if (r == -EAGAIN) {
		inc(&o->n_deferred);
		backlog_add(o, c);
	} else {
		reply_error(o, path, "not applied: %s", strerror(-r));
	}
}

/* ---- argument helpers ---- */

/* liblo's arguments sit at 4-byte offsets in the packet, while union lo_arg
 * asks for 8: read them with memcpy, never through the union. */
static int32_t arg_i32(const lo_arg *a)
{
	int32_t v;

	memcpy(&v, (const void *)a, sizeof(v));
	return v;
}

static int64_t arg_i64(const lo_arg *a)
{
	int64_t v;

	memcpy(&v, (const void *)a, sizeof(v));
	return v;
}

static float arg_f32(const lo_arg *a)
{
	float v;

	memcpy(&v, (const void *)a, sizeof(v));
	return v;
}

static double arg_f64(const lo_arg *a)
{
	double v;

	memcpy(&v, (const void *)a, sizeof(v));
	return v;
}

static bool arg_number(char type, const lo_arg *a, double *out)
{
	switch (type) {
	case LO_INT32:
		*out = arg_i32(a);
		return true;
	case LO_INT64:
		*out = (double)arg_i64(a);
		return true;
	case LO_FLOAT:
		*out = arg_f32(a);
		return true;
	case LO_DOUBLE:
		*out = arg_f64(a);
		return true;
	default:
		return false;
	}
}

/* 0/1: integers exactly 0 or 1, floats exactly 0.0 or 1.0, T, F. */
static int arg_flag(char type, const lo_arg *a)
{
	int64_t i;
	double d;

	switch (type) {
	case LO_TRUE:
		return 1;
	case LO_FALSE:
		return 0;
	case LO_INT32:
	case LO_INT64:
		i = type == LO_INT32 ? arg_i32(a) : arg_i64(a);
		return i == 0 || i == 1 ? (int)i : -1;
	case LO_FLOAT:
	case LO_DOUBLE:
		d = type == LO_FLOAT ? arg_f32(a) : arg_f64(a);
		return d == 0.0 ? 0 : d == 1.0 ? 1 : -1;
	default:
		return -1;
	}
}

static const char *arg_string(char type, const lo_arg *a)
{
	return type == LO_STRING || type == LO_SYMBOL ? (const char *)a : NULL;
}

static const char *type_name(char t)
{
	switch (t) {
	case LO_INT32: return "i";
	case LO_INT64: return "h";
	case LO_FLOAT: return "f";
	case LO_DOUBLE: return "d";
	case LO_STRING: return "s";
	case LO_SYMBOL: return "S";
	case LO_TRUE: return "T";
	case LO_FALSE: return "F";
	case LO_NIL: return "N";
	case LO_INFINITUM: return "I";
	case LO_BLOB: return "b";
	case LO_CHAR: return "c";
	case LO_MIDI: return "m";
	case LO_TIMETAG: return "t";
	default: return "?";
	}
}

/* ---- handlers ---- */

struct request {
	struct strebmd_osc *o;
	const char *path;
	const char *types;
	lo_arg **argv;
	int argc;
	int source;            /* 0-based, for /strebm/source/N/... */
	struct strebmd_status st;
};

static void reply_float(struct request *q, double v)
{
	lo_message m = lo_message_new();

	if (!m)
		return;
	lo_message_add_float(m, (float)v);
	reply(q->o, q->path, m);
}

static void reply_int(struct request *q, int v)
{
	lo_message m = lo_message_new();

	if (!m)
		return;
	lo_message_add_int32(m, v);
	reply(q->o, q->path, m);
}

static void reply_string(struct request *q, const char *s)
{
	lo_message m = lo_message_new();

	if (!m)
		return;
	lo_message_add_string(m, s);
	reply(q->o, q->path, m);
}

/* Common arity check: no argument (query, when allowed) or exactly one. */
static bool one_arg(struct request *q, const char *what)
{
	if (q->argc != 1) {
		reply_error(q->o, q->path, "expects %s (got %d arguments)", what, q->argc);
		return false;
	}
	return true;
}

static bool no_arg(struct request *q)
{
	if (q->argc != 0) {
		reply_error(q->o, q->path, "expects no argument (got %d)", q->argc);
		return false;
	}
	return true;
}

static bool get_flag(struct request *q, int *v)
{
	if (!one_arg(q, "0 or 1"))
		return false;
	*v = arg_flag(q->types[0], q->argv[0]);
	if (*v < 0) {
		double d;
		if (arg_number(q->types[0], q->argv[0], &d))
			reply_error(q->o, q->path, "expects 0 or 1");
		else
			reply_error(q->o, q->path, "expects 0 or 1, not type %s", type_name(q->types[0]));
		return false;
	}
	return true;
}

static bool get_number(struct request *q, const char *unit, double lo, double hi, bool lo_open,
		       double *v)
{
	if (!one_arg(q, "one number"))
		return false;
	if (!arg_number(q->types[0], q->argv[0], v)) {
		reply_error(q->o, q->path, "expects a number (i, h, f or d), not type %s",
			    type_name(q->types[0]));
		return false;
	}
	if (!isfinite(*v)) {
		reply_error(q->o, q->path, "expects a finite number");
		return false;
	}
	if ((lo_open ? *v <= lo : *v < lo) || *v > hi) {
		reply_error(q->o, q->path, "out of range: %g %s not in %s%.4g..%.4g %s", *v, unit,
			    lo_open ? "(" : "", lo, hi, unit);
		return false;
	}
	return true;
}

static void on_ping(struct request *q)
{
	lo_message m;

	if (!no_arg(q))
		return;
	m = lo_message_new();
	if (m)
		reply(q->o, "/strebm/pong", m);
}

static void on_mode(struct request *q)
{
	struct strebmd_cmd c = { .type = STREBMD_CMD_MODE };
	enum strebm_mode mode;
	const char *s;

	if (q->argc == 0) {
		s = strebm_mode_name(q->st.mode);
		reply_string(q, s ? s : "unknown");
		return;
	}
	if (!one_arg(q, "linear, nonlinear or convolutive"))
		return;
	s = arg_string(q->types[0], q->argv[0]);
	if (!s) {
		reply_error(q->o, q->path, "expects a string, not type %s", type_name(q->types[0]));
		return;
	}
	if (strebm_mode_from_name(s, &mode) < 0) {
		reply_error(q->o, q->path, "unknown mode (linear, nonlinear or convolutive)");
		return;
	}
	if (mode == STREBM_MODE_CONVOLUTIVE && q->st.no_convolutive) {
		reply_error(q->o, q->path, "convolutive mode needs an even window and hop <= window / 2 "
			    "(engine.window, engine.hop)");
		return;
	}
	c.ivalue = (int32_t)mode;
	post(q->o, q->path, &c);
}

static void on_freeze(struct request *q)
{
	struct strebmd_cmd c = { .type = STREBMD_CMD_FREEZE };
	int v;

	if (q->argc == 0) {
		reply_int(q, q->st.frozen ? 1 : 0);
		return;
	}
	if (!get_flag(q, &v))
		return;
	c.ivalue = v;
	post(q->o, q->path, &c);
}

static void on_reset(struct request *q)
{
	struct strebmd_cmd c = { .type = STREBMD_CMD_RESET };

	if (no_arg(q))
		post(q->o, q->path, &c);
}

static void on_status(struct request *q)
{
	const struct strebmd_status *st = &q->st;
	const char *mode = strebm_mode_name(st->mode);
	lo_message m;
	uint32_t k;

	if (!no_arg(q))
		return;
	m = lo_message_new();
	if (!m)
		return;
	lo_message_add_string(m, mode ? mode : "unknown");
	lo_message_add_int32(m, (int32_t)st->rate);
	lo_message_add_int32(m, (int32_t)st->M);
	lo_message_add_int32(m, (int32_t)st->K);
	lo_message_add_int64(m, (int64_t)st->hops);
	lo_message_add_int64(m, (int64_t)st->xruns);
	lo_message_add_int64(m, (int64_t)st->underruns);
	lo_message_add_float(m, (float)st->rtf);
	for (k = 0; k < st->K && k < STREBM_MAX_SOURCES; k++)
		lo_message_add_float(m, (float)st->ell_ms[k]);
	reply(q->o, q->path, m);
}

/* What /strebm/status leaves out: whether audio flows (no: the JACK server is
 * gone or the device stopped), the convolutive fallback, freeze, and the
 * counters of trouble. */
static void on_health(struct request *q)
{
	const struct strebmd_status *st = &q->st;
	lo_message m;

	if (!no_arg(q))
		return;
	m = lo_message_new();
	if (!m)
		return;
	lo_message_add_string(m, st->running ? "running" : "stopped");
	lo_message_add_int32(m, st->degraded ? 1 : 0);
	lo_message_add_int32(m, st->frozen ? 1 : 0);
	lo_message_add_int64(m, (int64_t)st->nonfinite);
	lo_message_add_int64(m, (int64_t)st->dead_mask);
	lo_message_add_int64(m, (int64_t)st->refused);
	reply(q->o, q->path, m);
}

static void on_lengthscale(struct request *q)
{
	struct strebmd_cmd c = { .type = STREBMD_CMD_ELL, .source = q->source };
	double lo = 0.0, hi = STREBMD_OSC_ELL_MAX_MS, v;
	bool lo_open = true;

	if (q->argc == 0) {
		reply_float(q, q->st.ell_ms[q->source]);
		return;
	}
	if (q->st.ell_max_ms > 0.0 && q->st.ell_max_ms < hi)
		hi = q->st.ell_max_ms;
	if (q->st.ell_min_ms > 0.0) {
		lo = q->st.ell_min_ms;
		lo_open = false;
	}
	if (!get_number(q, "ms", lo, hi, lo_open, &v))
		return;
	c.value = v;
	post(q->o, q->path, &c);
}

static void on_learn(struct request *q)
{
	struct strebmd_cmd c = { .type = STREBMD_CMD_LEARN, .source = q->source };
	int v;

	if (q->argc == 0) {
		reply_int(q, q->st.learn[q->source] ? 1 : 0);
		return;
	}
	if (!get_flag(q, &v))
		return;
	c.ivalue = v;
	post(q->o, q->path, &c);
}

static void on_kernel(struct request *q)
{
	struct strebmd_cmd c = { .type = STREBMD_CMD_KERNEL, .source = q->source };
	enum strebm_kernel kind;
	const char *s;

	if (q->argc == 0) {
		s = strebm_kernel_name((enum strebm_kernel)q->st.kernel[q->source]);
		reply_string(q, s ? s : "unknown");
		return;
	}
	if (!one_arg(q, "a kernel name"))
		return;
	s = arg_string(q->types[0], q->argv[0]);
	if (!s) {
		reply_error(q->o, q->path, "expects a string, not type %s", type_name(q->types[0]));
		return;
	}
	if (strebm_kernel_from_name(s, &kind) < 0) {
		reply_error(q->o, q->path, "unknown kernel (rbf, matern12, matern32, matern52)");
		return;
	}
	c.ivalue = (int32_t)kind;
	post(q->o, q->path, &c);
}

static void on_gain(struct request *q)
{
	struct strebmd_cmd c = { .type = STREBMD_CMD_GAIN, .source = q->source };
	double v;

	if (q->argc == 0) {
		reply_float(q, q->st.gain_db[q->source]);
		return;
	}
	if (!get_number(q, "dB", STREBMD_OSC_GAIN_MIN_DB, STREBMD_OSC_GAIN_MAX_DB, false, &v))
		return;
	c.value = v;
	post(q->o, q->path, &c);
}

static void on_mute(struct request *q)
{
	struct strebmd_cmd c = { .type = STREBMD_CMD_MUTE, .source = q->source };
	int v;

	if (q->argc == 0) {
		reply_int(q, q->st.mute[q->source] ? 1 : 0);
		return;
	}
	if (!get_flag(q, &v))
		return;
	c.ivalue = v;
	post(q->o, q->path, &c);
}

/* Subscriber target: the sender's address with port (0: the sender's). */
static bool sub_target(struct request *q, int port, struct sockaddr_storage *to, socklen_t *tolen)
{
	struct strebmd_osc *o = q->o;

	if (!o->have_from)
		return false;
	*to = o->from;
	*tolen = o->fromlen;
	if (port > 0) {
		if (to->ss_family == AF_INET)
			((struct sockaddr_in *)to)->sin_port = htons((uint16_t)port);
		else if (to->ss_family == AF_INET6)
			((struct sockaddr_in6 *)to)->sin6_port = htons((uint16_t)port);
	}
	return true;
}

static bool same_target(const struct subscriber *s, const struct sockaddr_storage *to, socklen_t len)
{
	return s->used && s->tolen == len && !memcmp(&s->to, to, len);
}

static bool get_port(struct request *q, int i, int *port)
{
	double v;

	if (!arg_number(q->types[i], q->argv[i], &v) || !isfinite(v) || v != floor(v) ||
	    v < 0 || v > 65535) {
		reply_error(q->o, q->path, "port: expects an integer 0..65535 (0: the sender's)");
		return false;
	}
	*port = (int)v;
	return true;
}

static void on_subscribe(struct request *q)
{
	struct strebmd_osc *o = q->o;
	struct sockaddr_storage to;
	socklen_t tolen;
	double rate = STREBMD_OSC_RATE_DEFAULT;
	int port = 0;
	size_t i, slot = STREBMD_OSC_MAX_SUBSCRIBERS;

	if (q->argc > 2) {
		reply_error(o, q->path, "expects [port [rate]] (got %d arguments)", q->argc);
		return;
	}
	if (q->argc >= 1 && !get_port(q, 0, &port))
		return;
	if (q->argc == 2) {
		if (!arg_number(q->types[1], q->argv[1], &rate) || !isfinite(rate) ||
		    rate < STREBMD_OSC_RATE_MIN || rate > STREBMD_OSC_RATE_MAX) {
			reply_error(o, q->path, "rate: expects a number of Hz in %g..%g",
				    STREBMD_OSC_RATE_MIN, STREBMD_OSC_RATE_MAX);
			return;
		}
	}
	if (!sub_target(q, port, &to, &tolen))
		return;
	for (i = 0; i < STREBMD_OSC_MAX_SUBSCRIBERS; i++)
		if (same_target(&o->subs[i], &to, tolen)) {
			slot = i;
			break;
		}
	if (slot == STREBMD_OSC_MAX_SUBSCRIBERS) {
		/* a free slot, else the oldest subscription */
		uint64_t oldest = UINT64_MAX;
		for (i = 0; i < STREBMD_OSC_MAX_SUBSCRIBERS; i++) {
			if (!o->subs[i].used) {
				slot = i;
				break;
			}
			if (o->subs[i].since < oldest) {
				oldest = o->subs[i].since;
				slot = i;
			}
		}
	}
	o->subs[slot].used = true;
	o->subs[slot].to = to;
	o->subs[slot].tolen = tolen;
	o->subs[slot].period = 1.0 / rate;
	o->subs[slot].next = now_mono();
	o->subs[slot].since = ++o->sub_serial;
}

static void on_unsubscribe(struct request *q)
{
	struct strebmd_osc *o = q->o;
	struct sockaddr_storage to;
	socklen_t tolen;
	int port = 0;
	size_t i;

	if (q->argc > 1) {
		reply_error(o, q->path, "expects [port] (got %d arguments)", q->argc);
		return;
	}
	if (q->argc == 1 && !get_port(q, 0, &port))
		return;
	if (!sub_target(q, port, &to, &tolen))
		return;
	for (i = 0; i < STREBMD_OSC_MAX_SUBSCRIBERS; i++)
		if (same_target(&o->subs[i], &to, tolen))
			o->subs[i].used = false;
}

static void on_file(struct request *q, bool save)
{
	struct strebmd_osc *o = q->o;
	int (*fn)(void *, const char *, char *, size_t) = save ? o->ops.save : o->ops.load;
	char err[256] = "";
	const char *path;
	int r;

	if (!one_arg(q, "one string: an absolute path"))
		return;
	path = arg_string(q->types[0], q->argv[0]);
	if (!path) {
		reply_error(o, q->path, "expects a string, not type %s", type_name(q->types[0]));
		return;
	}
	if (path[0] != '/') {
		reply_error(o, q->path, "expects an absolute path");
		return;
	}
	if (strlen(path) >= 4096) {
		reply_error(o, q->path, "path too long");
		return;
	}
	if (!fn) {
		reply_error(o, q->path, "not supported by this server");
		return;
	}
	r = fn(o->data, path, err, sizeof(err));
	if (r < 0) {
		reply_error(o, q->path, "%s", err[0] ? err : strerror(-r));
		return;
	}
	reply_string(q, path);
}

static void on_save(struct request *q)
{
	on_file(q, true);
}

static void on_load(struct request *q)
{
	on_file(q, false);
}

struct route {
	const char *name;
	void (*fn)(struct request *q);
};

static const struct route global_routes[] = {
	{ "ping", on_ping },
	{ "mode", on_mode },
	{ "freeze", on_freeze },
	{ "reset", on_reset },
	{ "status", on_status },
	{ "health", on_health },
	{ "subscribe", on_subscribe },
	{ "unsubscribe", on_unsubscribe },
	{ "save", on_save },
	{ "load", on_load },
};

static const struct route source_routes[] = {
	{ "lengthscale", on_lengthscale },
	{ "learn", on_learn },
	{ "kernel", on_kernel },
	{ "gain", on_gain },
	{ "mute", on_mute },
};

static void route(struct strebmd_osc *o, const char *path, const char *types, lo_arg **argv,
		  int argc)
{
	struct request q = { .o = o, .path = path, .types = types, .argv = argv, .argc = argc };
	const char *rest, *leaf;
	size_t i, n = strnlen(path, STREBMD_OSC_MAX_PATH + 1);

	if (n > STREBMD_OSC_MAX_PATH) {
		reply_error(o, path, "path too long (over %d bytes)", STREBMD_OSC_MAX_PATH);
		return;
	}
	if (strpbrk(path, "*?[]{}")) {
		reply_error(o, path, "pattern matching is not supported: name one method");
		return;
	}
	if (strncmp(path, "/strebm/", 8)) {
		reply_error(o, path, "unknown path");
		return;
	}
	rest = path + 8;
	o->ops.status(o->data, &q.st);
	if (q.st.K > STREBM_MAX_SOURCES)
		q.st.K = STREBM_MAX_SOURCES;
	if (!strncmp(rest, "source/", 7)) {
		const char *p = rest + 7;
		unsigned long idx = 0;
		size_t digits = 0;
		while (*p >= '0' && *p <= '9' && digits < 4) {
			idx = idx * 10 + (unsigned long)(*p - '0');
			p++;
			digits++;
		}
		if (*p != '/' || digits == 0 || digits > 3 || rest[7] == '0') {
			reply_error(o, path, "unknown path (expected /strebm/source/N/...)");
			return;
		}
		leaf = p + 1;
		for (i = 0; i < sizeof(source_routes) / sizeof(source_routes[0]); i++)
			if (!strcmp(leaf, source_routes[i].name))
				break;
		if (i == sizeof(source_routes) / sizeof(source_routes[0])) {
			reply_error(o, path, "unknown path");
			return;
		}
		if (idx < 1 || idx > q.st.K) {
			reply_error(o, path, "bad source index %lu (1..%u)", idx, (unsigned)q.st.K);
			return;
		}
		q.source = (int)idx - 1;
		source_routes[i].fn(&q);
		return;
	}
	for (i = 0; i < sizeof(global_routes) / sizeof(global_routes[0]); i++)
		if (!strcmp(rest, global_routes[i].name)) {
			global_routes[i].fn(&q);
			return;
		}
	reply_error(o, path, "unknown path");
}

/* liblo: every message (the method is registered for any path and types). */
static int on_message(const char *path, const char *types, lo_arg **argv, int argc, lo_message msg,
		      void *user)
{
	(void)msg;
	route(user, path, types ? types : "", argv, argc);
	return 0;
}

/* liblo: a packet it cannot parse. The context is the server (set after
 * creation); errors while liblo creates the server have none. */
static char lo_create_error[256];

static void on_lo_error(int num, const char *msg, const char *where)
{
	struct strebmd_osc *o = lo_error_get_context();

	if (!o) {
		snprintf(lo_create_error, sizeof(lo_create_error), "%s%s%s (%d)", msg ? msg : "?",
			 where ? " in " : "", where ? where : "", num);
		return;
	}
	inc(&o->n_malformed);
	reply_error(o, where ? where : "", "malformed packet: %s (%d)", msg ? msg : "?", num);
}

/* ---- subscriptions ---- */

static void publish(struct strebmd_osc *o, const struct subscriber *s,
		    const struct strebmd_status *st)
{
	const char *mode = strebm_mode_name(st->mode);
	uint32_t k, K = st->K < STREBM_MAX_SOURCES ? st->K : STREBM_MAX_SOURCES;
	lo_message m;

	m = lo_message_new();
	if (m) {
		for (k = 0; k < K; k++)
			lo_message_add_float(m, (float)st->rms_dbfs[k]);
		send_to(o, &s->to, s->tolen, "/strebm/meter", m);
		lo_message_free(m);
	}
	m = lo_message_new();
	if (m) {
		for (k = 0; k < K; k++)
			lo_message_add_float(m, (float)st->ell_ms[k]);
		send_to(o, &s->to, s->tolen, "/strebm/lengthscales", m);
		lo_message_free(m);
	}
	m = lo_message_new();
	if (m) {
		lo_message_add_string(m, mode ? mode : "unknown");
		lo_message_add_int64(m, (int64_t)st->hops);
		lo_message_add_int64(m, (int64_t)st->xruns);
		lo_message_add_int64(m, (int64_t)st->underruns);
		lo_message_add_int64(m, (int64_t)st->nonfinite);
		lo_message_add_int64(m, (int64_t)st->breakdowns);
		lo_message_add_float(m, (float)st->rtf);
		lo_message_add_float(m, (float)st->latency_ms);
		lo_message_add_int32(m, st->frozen ? 1 : 0);
		lo_message_add_int32(m, st->running ? 1 : 0);
		send_to(o, &s->to, s->tolen, "/strebm/stats", m);
		lo_message_free(m);
	}
}

/* Send what is due; @return ms until the next send (-1: none). Locked. */
static int publish_due(struct strebmd_osc *o)
{
	struct timespec t = now_mono();
	struct strebmd_status st;
	bool have = false;
	double wait = -1.0;
	size_t i;

	for (i = 0; i < STREBMD_OSC_MAX_SUBSCRIBERS; i++) {
		struct subscriber *s = &o->subs[i];
		double d;
		if (!s->used)
			continue;
		if (ts_diff(t, s->next) >= 0.0) {
			if (!have) {
				o->ops.status(o->data, &st);
				have = true;
			}
			publish(o, s, &st);
			s->next = ts_add(s->next, s->period);
			if (ts_diff(t, s->next) >= 0.0) /* fell behind: no burst */
				s->next = ts_add(t, s->period);
		}
		d = ts_diff(s->next, t);
		if (wait < 0.0 || d < wait)
			wait = d;
	}
	if (wait < 0.0)
		return -1;
	return (int)ceil(wait * 1000.0);
}

/* ---- datagrams and the thread ---- */

static void handle(struct strebmd_osc *o, size_t len, const struct sockaddr *from, socklen_t fromlen)
{
	if (!allowed(o, from)) {
		inc(&o->n_rejected);
		return;
	}
	inc(&o->n_datagrams);
	memcpy(&o->from, from, fromlen < sizeof(o->from) ? fromlen : sizeof(o->from));
	o->fromlen = fromlen < sizeof(o->from) ? fromlen : sizeof(o->from);
	o->have_from = true;
	if (len == 0) {
		inc(&o->n_malformed);
		reply_error(o, "", "malformed packet: empty");
	} else {
		/* liblo works in place on a writable buffer; keep a NUL after it */
		o->buf[len] = 0;
		lo_server_dispatch_data(o->lo, o->buf, len);
	}
	o->have_from = false;
}

void strebmd_osc_dispatch(struct strebmd_osc *o, const void *data, size_t len,
			  const struct sockaddr *from, socklen_t fromlen)
{
	if (!o || (!data && len) || !from || len >= OSC_BUF)
		return;
	pthread_mutex_lock(&o->lock);
	if (len)
		memcpy(o->buf, data, len);
	handle(o, len, from, fromlen);
	backlog_flush(o);
	pthread_mutex_unlock(&o->lock);
}

static void *osc_thread(void *arg)
{
	struct strebmd_osc *o = arg;
	struct pollfd fds[2];

	fds[0].fd = o->fd;
	fds[0].events = POLLIN;
	fds[1].fd = o->evfd;
	fds[1].events = POLLIN;
	while (!atomic_load(&o->stop)) {
		int timeout, i;

		pthread_mutex_lock(&o->lock);
		timeout = publish_due(o);
		if (o->nbacklog && (timeout < 0 || timeout > OSC_RETRY_MS))
			timeout = OSC_RETRY_MS;
		pthread_mutex_unlock(&o->lock);
		if (poll(fds, 2, timeout) < 0 && errno != EINTR)
			break;
		if (fds[1].revents) {
			uint64_t v;
			(void)!read(o->evfd, &v, sizeof(v));
		}
		if (atomic_load(&o->stop))
			break;
		pthread_mutex_lock(&o->lock);
		for (i = 0; i < OSC_BURST && (fds[0].revents & POLLIN); i++) {
			struct sockaddr_storage from;
			socklen_t fromlen = sizeof(from);
			ssize_t n = recvfrom(o->fd, o->buf, OSC_BUF - 1, MSG_DONTWAIT,
					     (struct sockaddr *)&from, &fromlen);
			if (n < 0)
				break;
			handle(o, (size_t)n, (struct sockaddr *)&from, fromlen);
		}
		backlog_flush(o);
		pthread_mutex_unlock(&o->lock);
	}
	return NULL;
}

/* liblo needs a server to dispatch through. A UDP one would bind every
 * interface, so it is a Unix datagram socket in a private directory, unlinked
 * at once: no name, no network, never read. The UDP socket is ours. */
static lo_server make_dispatcher(char *err, size_t errlen)
{
	const char *tmp = getenv("TMPDIR");
	char dir[128], path[160];
	lo_server s;

	if (!tmp || !*tmp || strlen(tmp) > 64)
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/strebmd-osc-XXXXXX", tmp);
	if (!mkdtemp(dir)) {
		snprintf(err, errlen, "osc: cannot create a directory in %s: %s", tmp, strerror(errno));
		return NULL;
	}
	snprintf(path, sizeof(path), "%s/lo", dir);
	lo_create_error[0] = 0;
	s = lo_server_new_with_proto(path, LO_UNIX, on_lo_error);
	unlink(path);
	rmdir(dir);
	if (!s)
		snprintf(err, errlen, "osc: liblo: %s", lo_create_error[0] ? lo_create_error : "cannot create a server");
	return s;
}

static int bind_socket(struct strebmd_osc *o, const char *address, int port, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *it;
	char service[16];
	int r, last = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	r = getaddrinfo(address, service, &hints, &res);
	if (r) {
		snprintf(err, errlen, "osc: cannot resolve %s: %s", address, gai_strerror(r));
		return -EINVAL;
	}
	for (it = res; it; it = it->ai_next) {
		int fd = socket(it->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		int one = 1, rcv = 1 << 20;
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		if (fd < 0) {
			last = errno;
			continue;
		}
		if (it->ai_family == AF_INET6)
			setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		/* best effort: room for bursts from a control surface */
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
		if (bind(fd, it->ai_addr, it->ai_addrlen) < 0 ||
		    getsockname(fd, (struct sockaddr *)&sa, &salen) < 0) {
			last = errno;
			close(fd);
			continue;
		}
		o->fd = fd;
		o->port = sa.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&sa)->sin6_port)
						   : ntohs(((struct sockaddr_in *)&sa)->sin_port);
		freeaddrinfo(res);
		return 0;
	}
	freeaddrinfo(res);
	snprintf(err, errlen, "osc: cannot bind %s port %d: %s", address, port,
		 strerror(last ? last : EADDRNOTAVAIL));
	return last ? -last : -EADDRNOTAVAIL;
}

struct strebmd_osc *strebmd_osc_create(const char *address, int port, const char *allow,
				       const struct strebmd_osc_ops *ops, void *data, char *err,
				       size_t errlen)
{
	struct strebmd_osc *o;
	char dummy[8];
	sigset_t all, old;
	int r;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	if (!ops || !ops->post || !ops->status || port < 0 || port > 65535) {
		snprintf(err, errlen, "osc: invalid arguments");
		return NULL;
	}
	if (!address || !*address)
		address = "127.0.0.1";
	o = calloc(1, sizeof(*o));
	if (!o) {
		snprintf(err, errlen, "osc: out of memory");
		return NULL;
	}
	o->ops = *ops;
	o->data = data;
	o->fd = o->evfd = -1;
	pthread_mutex_init(&o->lock, NULL);
	pthread_mutex_init(&o->allow_lock, NULL);
	o->buf = malloc(OSC_BUF);
	if (!o->buf) {
		snprintf(err, errlen, "osc: out of memory");
		goto fail;
	}
	if (strebmd_osc_set_allow(o, allow, err, errlen) < 0)
		goto fail;
	if (bind_socket(o, address, port, err, errlen) < 0)
		goto fail;
	o->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (o->evfd < 0) {
		snprintf(err, errlen, "osc: eventfd: %s", strerror(errno));
		goto fail;
	}
	o->lo = make_dispatcher(err, errlen);
	if (!o->lo)
		goto fail;
	lo_server_set_error_context(o->lo, o);
	/* dispatch bundles at once, whatever their time tag: no queue to fill */
	lo_server_enable_queue(o->lo, 0, 1);
	if (!lo_server_add_method(o->lo, NULL, NULL, on_message, o)) {
		snprintf(err, errlen, "osc: liblo: cannot add a method");
		goto fail;
	}
	/* the thread takes no signals: main reads them from a signalfd */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&o->thread, NULL, osc_thread, o);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		snprintf(err, errlen, "osc: cannot start the thread: %s", strerror(r));
		goto fail;
	}
	o->started = true;
	olog(o, 6, "osc: listening on %s port %d", address, o->port);
	return o;
fail:
	strebmd_osc_destroy(o);
	return NULL;
}

void strebmd_osc_destroy(struct strebmd_osc *o)
{
	if (!o)
		return;
	if (o->started) {
		uint64_t one = 1;
		atomic_store(&o->stop, true);
		(void)!write(o->evfd, &one, sizeof(one));
		pthread_join(o->thread, NULL);
	}
	if (o->lo)
		lo_server_free(o->lo);
	if (o->fd >= 0)
		close(o->fd);
	if (o->evfd >= 0)
		close(o->evfd);
	pthread_mutex_destroy(&o->lock);
	pthread_mutex_destroy(&o->allow_lock);
	free(o->allow);
	free(o->buf);
	free(o);
}

int strebmd_osc_port(const struct strebmd_osc *o)
{
	return o ? o->port : 0;
}

void strebmd_osc_get_stats(const struct strebmd_osc *o, struct strebmd_osc_stats *st)
{
	if (!o || !st)
		return;
	st->datagrams = atomic_load_explicit(&o->n_datagrams, memory_order_relaxed);
	st->rejected = atomic_load_explicit(&o->n_rejected, memory_order_relaxed);
	st->malformed = atomic_load_explicit(&o->n_malformed, memory_order_relaxed);
	st->errors = atomic_load_explicit(&o->n_errors, memory_order_relaxed);
	st->posted = atomic_load_explicit(&o->n_posted, memory_order_relaxed);
	st->deferred = atomic_load_explicit(&o->n_deferred, memory_order_relaxed);
	st->coalesced = atomic_load_explicit(&o->n_coalesced, memory_order_relaxed);
	st->dropped = atomic_load_explicit(&o->n_dropped, memory_order_relaxed);
	st->backlog = atomic_load_explicit(&o->n_backlog, memory_order_relaxed);
}
