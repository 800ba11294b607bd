/* SPDX-License-Identifier: MIT */
/*
 * Check suite: io/osc, the OSC control server. It runs on an ephemeral
 * 127.0.0.1 port with fake ops (a recording command queue and a fake status)
 * and is driven by a UDP client whose messages liblo builds and parses.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lo/lo.h>

#include "osc.h"
#include "testutil.h"

/* ---- fake worker side ---- */

#define FAKE_CAP 200000

struct fake {
	pthread_mutex_t lock;
	struct strebmd_cmd *cmds;   /* everything accepted, in order */
	size_t n;
	size_t queue_cap;           /* 0: unbounded; else -EAGAIN when full */
	size_t queued;              /* accepted, not yet drained */
	bool blocked;               /* -EAGAIN for everything */
	int fail_with;              /* nonzero: post returns this */
	struct strebmd_status st;
	char saved[256], loaded[256];
};

static struct fake fake;

static int fake_post(void *data, const struct strebmd_cmd *cmd)
{
	struct fake *f = data;
	int r = 0;

	pthread_mutex_lock(&f->lock);
	if (f->fail_with)
		r = f->fail_with;
	else if (f->blocked || (f->queue_cap && f->queued >= f->queue_cap))
		r = -EAGAIN;
	else if (f->n < FAKE_CAP) {
		f->cmds[f->n++] = *cmd;
		f->queued++;
	}
	pthread_mutex_unlock(&f->lock);
	return r;
}

static void fake_status(void *data, struct strebmd_status *st)
{
	struct fake *f = data;

	pthread_mutex_lock(&f->lock);
	*st = f->st;
	pthread_mutex_unlock(&f->lock);
}

static int fake_save(void *data, const char *path, char *err, size_t errlen)
{
	struct fake *f = data;

	if (!strcmp(path, "/bad")) {
		snprintf(err, errlen, "cannot write %s: Permission denied", path);
		return -EACCES;
	}
	snprintf(f->saved, sizeof(f->saved), "%s", path);
	return 0;
}

static int fake_load(void *data, const char *path, char *err, size_t errlen)
{
	struct fake *f = data;

	if (!strcmp(path, "/bad")) {
		snprintf(err, errlen, "%s: not a state of this engine", path);
		return -EINVAL;
	}
	snprintf(f->loaded, sizeof(f->loaded), "%s", path);
	return 0;
}

static const struct strebmd_osc_ops fake_ops = {
	.post = fake_post, .status = fake_status, .save = fake_save, .load = fake_load,
};

static void fake_init(void)
{
	memset(&fake, 0, sizeof(fake));
	pthread_mutex_init(&fake.lock, NULL);
	fake.cmds = calloc(FAKE_CAP, sizeof(*fake.cmds));
	fake.st.mode = STREBM_MODE_LINEAR;
	fake.st.rate = 16000;
	fake.st.M = 2;
	fake.st.K = 2;
	fake.st.hops = 1234;
	fake.st.xruns = 1;
	fake.st.underruns = 2;
	fake.st.rtf = 0.25;
	fake.st.ell_ms[0] = 0.5;
	fake.st.ell_ms[1] = 3.0;
	fake.st.learn[0] = true;
	fake.st.kernel[1] = STREBM_KERNEL_MATERN32;
	fake.st.gain_db[0] = -6.0;
	fake.st.mute[1] = true;
	fake.st.rms_dbfs[0] = -20.0;
	fake.st.degraded = true;
	fake.st.nonfinite = 7;
	fake.st.dead_mask = 5 | (uint64_t)1 << 40; /* in_1, in_3, in_41 */
	fake.st.refused = 3;
	fake.st.rms_dbfs[1] = -30.0;
}

static size_t fake_count(void)
{
	size_t n;

	pthread_mutex_lock(&fake.lock);
	n = fake.n;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

static struct strebmd_cmd fake_last(void)
{
	struct strebmd_cmd c;

	pthread_mutex_lock(&fake.lock);
	ck_assert_uint_gt(fake.n, 0);
	c = fake.cmds[fake.n - 1];
	pthread_mutex_unlock(&fake.lock);
	return c;
}

/* ---- client ---- */

struct client {
	int fd;
	struct sockaddr_in server;
	int port;
};

static void client_open(struct client *c, int server_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int rcv = 1 << 20;

	c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(c->fd, 0);
	setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(c->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(c->fd, (struct sockaddr *)&a, &len), 0);
	c->port = ntohs(a.sin_port);
	memset(&c->server, 0, sizeof(c->server));
	c->server.sin_family = AF_INET;
	c->server.sin_port = htons((uint16_t)server_port);
	c->server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
}

static void client_close(struct client *c)
{
	close(c->fd);
}

static void send_raw(struct client *c, const void *data, size_t n)
{
	ck_assert_int_eq(sendto(c->fd, data, n, 0, (struct sockaddr *)&c->server, sizeof(c->server)),
			 (ssize_t)n);
}

/* Serialise m to path and send it; frees m. */
static void send_msg(struct client *c, const char *path, lo_message m)
{
	size_t n = 0;
	void *data = lo_message_serialise(m, path, NULL, &n);

	ck_assert_ptr_nonnull(data);
	send_raw(c, data, n);
	free(data);
	lo_message_free(m);
}

/* liblo's arguments are 4-byte aligned: read them with memcpy. */
static const char *arg_s(const lo_arg *a)
{
	return (const char *)a;
}

static int32_t arg_i(const lo_arg *a)
{
	int32_t v;

	memcpy(&v, (const void *)a, sizeof(v));
	return v;
}

static int64_t arg_h(const lo_arg *a)
{
	int64_t v;

	memcpy(&v, (const void *)a, sizeof(v));
	return v;
}

static float arg_f(const lo_arg *a)
{
	float v;

	memcpy(&v, (const void *)a, sizeof(v));
	return v;
}

struct reply {
	char path[512];
	char types[64];
	lo_message m;
	lo_arg **argv;
};

/* Next datagram as an OSC message; @return 0 or -ETIMEDOUT. */
static int recv_reply(struct client *c, struct reply *r, int timeout_ms)
{
	static unsigned char buf[65536];
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	ssize_t n;
	int res = 0;

	if (poll(&p, 1, timeout_ms) <= 0)
		return -ETIMEDOUT;
	n = recv(c->fd, buf, sizeof(buf), 0);
	ck_assert_int_gt(n, 0);
	r->m = lo_message_deserialise(buf, (size_t)n, &res);
	ck_assert_msg(r->m != NULL, "reply does not parse (%d)", res);
	{
		size_t l = strnlen((const char *)buf, sizeof(r->path) - 1);
		memcpy(r->path, buf, l);
		r->path[l] = 0;
	}
	snprintf(r->types, sizeof(r->types), "%s", lo_message_get_types(r->m));
	r->argv = lo_message_get_argv(r->m);
	return 0;
}

static void reply_free(struct reply *r)
{
	lo_message_free(r->m);
}

static void expect(struct client *c, const char *path, const char *types, struct reply *r)
{
	ck_assert_int_eq(recv_reply(c, r, 2000), 0);
	ck_assert_str_eq(r->path, path);
	ck_assert_str_eq(r->types, types);
}

/* Ping, and the next reply must be the pong. */
static void barrier(struct client *c)
{
	struct reply r;

	send_msg(c, "/strebm/ping", lo_message_new());
	expect(c, "/strebm/pong", "", &r);
	reply_free(&r);
}

/* Ping, skipping whatever comes first (errors from a previous send). */
static void drain_to_pong(struct client *c)
{
	struct reply r;

	send_msg(c, "/strebm/ping", lo_message_new());
	for (;;) {
		ck_assert_int_eq(recv_reply(c, &r, 3000), 0);
		if (!strcmp(r.path, "/strebm/pong")) {
			reply_free(&r);
			return;
		}
		reply_free(&r);
	}
}

static void drain_quiet(struct client *c, int ms)
{
	struct reply r;

	while (recv_reply(c, &r, ms) == 0)
		reply_free(&r);
}

static struct strebmd_osc *server;
static struct client cl;

static void setup(void)
{
	char err[256];

	fake_init();
	server = strebmd_osc_create("127.0.0.1", 0, "127.0.0.1", &fake_ops, &fake, err, sizeof(err));
	ck_assert_msg(server != NULL, "%s", err);
	client_open(&cl, strebmd_osc_port(server));
}

static void teardown(void)
{
	client_close(&cl);
	strebmd_osc_destroy(server);
	free(fake.cmds);
}

/* ---- the address table ---- */

enum outcome { POSTS, REPLIES };

struct row {
	const char *path;
	const char *types;        /* of the request: i, h, f, d, s, T, F or "" */
	double num;
	const char *str;
	enum outcome what;
	/* POSTS */
	int type, source, ivalue;
	double value;
	/* REPLIES */
	const char *rpath, *rtypes;
};

static lo_message build(const char *types, double num, const char *str)
{
	lo_message m = lo_message_new();
	const char *t;

	for (t = types; *t; t++)
		switch (*t) {
		case 'i': lo_message_add_int32(m, (int32_t)num); break;
		case 'h': lo_message_add_int64(m, (int64_t)num); break;
		case 'f': lo_message_add_float(m, (float)num); break;
		case 'd': lo_message_add_double(m, num); break;
		case 's': lo_message_add_string(m, str); break;
		case 'S': lo_message_add_symbol(m, str); break;
		case 'T': lo_message_add_true(m); break;
		case 'F': lo_message_add_false(m); break;
		case 'N': lo_message_add_nil(m); break;
		default: ck_abort_msg("bad test type %c", *t);
		}
	return m;
}

static const struct row table[] = {
	{ "/strebm/ping", "", 0, NULL, REPLIES, 0, 0, 0, 0, .rpath = "/strebm/pong", .rtypes = "" },
	{ "/strebm/mode", "s", 0, "nonlinear", POSTS, STREBMD_CMD_MODE, 0, STREBM_MODE_NONLINEAR, 0, NULL, NULL },
	{ "/strebm/mode", "S", 0, "linear", POSTS, STREBMD_CMD_MODE, 0, STREBM_MODE_LINEAR, 0, NULL, NULL },
	{ "/strebm/mode", "", 0, NULL, REPLIES, 0, 0, 0, 0, .rpath = "/strebm/mode", .rtypes = "s" },
	{ "/strebm/source/1/lengthscale", "f", 2.5, NULL, POSTS, STREBMD_CMD_ELL, 0, 0, 2.5, NULL, NULL },
	{ "/strebm/source/2/lengthscale", "i", 3, NULL, POSTS, STREBMD_CMD_ELL, 1, 0, 3.0, NULL, NULL },
	{ "/strebm/source/2/lengthscale", "h", 1000, NULL, POSTS, STREBMD_CMD_ELL, 1, 0, 1000.0, NULL, NULL },
	{ "/strebm/source/1/lengthscale", "d", 0.01, NULL, POSTS, STREBMD_CMD_ELL, 0, 0, 0.01, NULL, NULL },
	{ "/strebm/source/2/lengthscale", "", 0, NULL, REPLIES, 0, 0, 0, 0, .rpath = "/strebm/source/2/lengthscale", .rtypes = "f" },
	{ "/strebm/source/2/learn", "i", 1, NULL, POSTS, STREBMD_CMD_LEARN, 1, 1, 0, NULL, NULL },
	{ "/strebm/source/1/learn", "F", 0, NULL, POSTS, STREBMD_CMD_LEARN, 0, 0, 0, NULL, NULL },
	{ "/strebm/source/1/learn", "T", 0, NULL, POSTS, STREBMD_CMD_LEARN, 0, 1, 0, NULL, NULL },
	{ "/strebm/source/1/learn", "d", 0, NULL, POSTS, STREBMD_CMD_LEARN, 0, 0, 0, NULL, NULL },
	{ "/strebm/source/1/learn", "", 0, NULL, REPLIES, 0, 0, 0, 0, .rpath = "/strebm/source/1/learn", .rtypes = "i" },
	{ "/strebm/source/2/kernel", "s", 0, "matern52", POSTS, STREBMD_CMD_KERNEL, 1, STREBM_KERNEL_MATERN52, 0, NULL, NULL },
	{ "/strebm/source/1/kernel", "s", 0, "rbf", POSTS, STREBMD_CMD_KERNEL, 0, STREBM_KERNEL_RBF, 0, NULL, NULL },
	{ "/strebm/source/2/kernel", "", 0, NULL, REPLIES, 0, 0, 0, 0, .rpath = "/strebm/source/2/kernel", .rtypes = "s" },
	{ "/strebm/source/1/gain", "f", -6.5, NULL, POSTS, STREBMD_CMD_GAIN, 0, 0, -6.5, NULL, NULL },
	{ "/strebm/source/2/gain", "d", 24, NULL, POSTS, STREBMD_CMD_GAIN, 1, 0, 24.0, NULL, NULL },
	{ "/strebm/source/2/gain", "i", -120, NULL, POSTS, STREBMD_CMD_GAIN, 1, 0, -120.0, NULL, NULL },
	{ "/strebm/source/1/gain", "h", 0, NULL, POSTS, STREBMD_CMD_GAIN, 0, 0, 0.0, NULL, NULL },
	{ "/strebm/source/1/gain", "", 0, NULL, REPLIES, 0, 0, 0, 0, .rpath = "/strebm/source/1/gain", .rtypes = "f" },
	{ "/strebm/source/2/mute", "i", 1, NULL, POSTS, STREBMD_CMD_MUTE, 1, 1, 0, NULL, NULL },
	{ "/strebm/source/2/mute", "f", 0, NULL, POSTS, STREBMD_CMD_MUTE, 1, 0, 0, NULL, NULL },
	{ "/strebm/source/2/mute", "", 0, NULL, REPLIES, 0, 0, 0, 0, .rpath = "/strebm/source/2/mute", .rtypes = "i" },
	{ "/strebm/freeze", "i", 1, NULL, POSTS, STREBMD_CMD_FREEZE, 0, 1, 0, NULL, NULL },
	{ "/strebm/freeze", "h", 0, NULL, POSTS, STREBMD_CMD_FREEZE, 0, 0, 0, NULL, NULL },
	{ "/strebm/freeze", "", 0, NULL, REPLIES, 0, 0, 0, 0, .rpath = "/strebm/freeze", .rtypes = "i" },
	{ "/strebm/reset", "", 0, NULL, POSTS, STREBMD_CMD_RESET, 0, 0, 0, NULL, NULL },
	{ "/strebm/status", "", 0, NULL, REPLIES, 0, 0, 0, 0, .rpath = "/strebm/status", .rtypes = "siiihhhfff" },
	{ "/strebm/health", "", 0, NULL, REPLIES, 0, 0, 0, 0, .rpath = "/strebm/health", .rtypes = "siihhh" },
	{ "/strebm/save", "s", 0, "/tmp/show.state", REPLIES, 0, 0, 0, 0, .rpath = "/strebm/save", .rtypes = "s" },
	{ "/strebm/load", "s", 0, "/tmp/show.state", REPLIES, 0, 0, 0, 0, .rpath = "/strebm/load", .rtypes = "s" },
};

START_TEST(test_address_table)
{
	const struct row *w = &table[_i];
	size_t before = fake_count();
	struct reply r;

	send_msg(&cl, w->path, build(w->types, w->num, w->str));
	if (w->what == POSTS) {
		struct strebmd_cmd c;
		barrier(&cl); /* no error came before the pong */
		ck_assert_uint_eq(fake_count(), before + 1);
		c = fake_last();
		ck_assert_int_eq(c.type, w->type);
		ck_assert_int_eq(c.source, w->source);
		if (c.type == STREBMD_CMD_ELL || c.type == STREBMD_CMD_GAIN)
			ck_assert_double_eq_tol(c.value, w->value, 1e-6 * (1.0 + fabs(w->value)));
		else if (c.type != STREBMD_CMD_RESET)
			ck_assert_int_eq(c.ivalue, w->ivalue);
	} else {
		expect(&cl, w->rpath, w->rtypes, &r);
		barrier(&cl);
		ck_assert_uint_eq(fake_count(), before);
		/* the values */
		if (!strcmp(w->path, "/strebm/mode"))
			ck_assert_str_eq(arg_s(r.argv[0]), "linear");
		else if (!strcmp(w->path, "/strebm/source/2/lengthscale"))
			ck_assert_double_eq_tol(arg_f(r.argv[0]), 3.0, 1e-6);
		else if (!strcmp(w->path, "/strebm/source/1/learn"))
			ck_assert_int_eq(arg_i(r.argv[0]), 1);
		else if (!strcmp(w->path, "/strebm/source/2/kernel"))
			ck_assert_str_eq(arg_s(r.argv[0]), "matern32");
		else if (!strcmp(w->path, "/strebm/source/1/gain"))
			ck_assert_double_eq_tol(arg_f(r.argv[0]), -6.0, 1e-6);
		else if (!strcmp(w->path, "/strebm/source/2/mute"))
			ck_assert_int_eq(arg_i(r.argv[0]), 1);
		else if (!strcmp(w->path, "/strebm/freeze"))
			ck_assert_int_eq(arg_i(r.argv[0]), 0);
		else if (!strcmp(w->path, "/strebm/status")) {
			ck_assert_str_eq(arg_s(r.argv[0]), "linear");
			ck_assert_int_eq(arg_i(r.argv[1]), 16000);
			ck_assert_int_eq(arg_i(r.argv[2]), 2);
			ck_assert_int_eq(arg_i(r.argv[3]), 2);
			ck_assert_int_eq(arg_h(r.argv[4]), 1234);
			ck_assert_int_eq(arg_h(r.argv[5]), 1);
			ck_assert_int_eq(arg_h(r.argv[6]), 2);
			ck_assert_double_eq_tol(arg_f(r.argv[7]), 0.25, 1e-6);
			ck_assert_double_eq_tol(arg_f(r.argv[8]), 0.5, 1e-6);
			ck_assert_double_eq_tol(arg_f(r.argv[9]), 3.0, 1e-6);
		} else if (!strcmp(w->path, "/strebm/health")) {
			ck_assert_str_eq(arg_s(r.argv[0]), "stopped");
			ck_assert_int_eq(arg_i(r.argv[1]), 1);
			ck_assert_int_eq(arg_i(r.argv[2]), 0);
			ck_assert_int_eq(arg_h(r.argv[3]), 7);
			ck_assert_int_eq(arg_h(r.argv[4]), (int64_t)5 | (int64_t)1 << 40);
			ck_assert_int_eq(arg_h(r.argv[5]), 3);
		} else if (!strcmp(w->path, "/strebm/save")) {
			ck_assert_str_eq(arg_s(r.argv[0]), "/tmp/show.state");
			ck_assert_str_eq(fake.saved, "/tmp/show.state");
		} else if (!strcmp(w->path, "/strebm/load")) {
			ck_assert_str_eq(arg_s(r.argv[0]), "/tmp/show.state");
			ck_assert_str_eq(fake.loaded, "/tmp/show.state");
		}
		reply_free(&r);
	}
}
END_TEST

/* ---- bad input: each is answered /strebm/error (path, reason) ---- */

struct bad {
	const char *path, *types;
	double num;
	const char *str;
};

static const struct bad bad_table[] = {
	/* wrong type, count, value */
	{ "/strebm/mode", "i", 1, NULL },
	{ "/strebm/mode", "s", 0, "fast" },
	{ "/strebm/mode", "ss", 0, "linear" },
	{ "/strebm/source/1/lengthscale", "f", NAN, NULL },
	{ "/strebm/source/1/lengthscale", "d", INFINITY, NULL },
	{ "/strebm/source/1/lengthscale", "f", -INFINITY, NULL },
	{ "/strebm/source/1/lengthscale", "f", 0, NULL },
	{ "/strebm/source/1/lengthscale", "f", -1, NULL },
	{ "/strebm/source/1/lengthscale", "d", 1000.001, NULL },
	{ "/strebm/source/1/lengthscale", "h", 5000, NULL },
	{ "/strebm/source/1/lengthscale", "s", 0, "3" },
	{ "/strebm/source/1/lengthscale", "ff", 3, NULL },
	{ "/strebm/source/1/lengthscale", "T", 0, NULL },
	{ "/strebm/source/1/lengthscale", "N", 0, NULL },
	{ "/strebm/source/1/learn", "i", 2, NULL },
	{ "/strebm/source/1/learn", "f", 0.5, NULL },
	{ "/strebm/source/1/learn", "s", 0, "1" },
	{ "/strebm/source/1/kernel", "s", 0, "gauss" },
	{ "/strebm/source/1/kernel", "i", 1, NULL },
	{ "/strebm/source/1/gain", "f", 24.5, NULL },
	{ "/strebm/source/1/gain", "d", -120.5, NULL },
	{ "/strebm/source/1/gain", "d", NAN, NULL },
	{ "/strebm/source/1/gain", "T", 0, NULL },
	{ "/strebm/source/2/mute", "i", -1, NULL },
	{ "/strebm/source/2/mute", "ii", 1, NULL },
	{ "/strebm/freeze", "i", 3, NULL },
	{ "/strebm/freeze", "f", NAN, NULL },
	{ "/strebm/reset", "i", 1, NULL },
	{ "/strebm/ping", "i", 1, NULL },
	{ "/strebm/status", "f", 1, NULL },
	{ "/strebm/subscribe", "i", 70000, NULL },
	{ "/strebm/subscribe", "i", -1, NULL },
	{ "/strebm/subscribe", "if", 0, NULL },      /* rate 0 */
	{ "/strebm/subscribe", "id", 1000, NULL },   /* port 1000, rate 1000 Hz */
	{ "/strebm/subscribe", "iff", 0, NULL },
	{ "/strebm/unsubscribe", "s", 0, "x" },
	{ "/strebm/save", "", 0, NULL },
	{ "/strebm/save", "i", 1, NULL },
	{ "/strebm/save", "s", 0, "relative/path" },
	{ "/strebm/save", "s", 0, "/bad" },
	{ "/strebm/load", "s", 0, "/bad" },
	{ "/strebm/load", "ss", 0, "/a" },
	/* bad source index */
	{ "/strebm/source/0/gain", "f", 0, NULL },
	{ "/strebm/source/3/gain", "f", 0, NULL },
	{ "/strebm/source/01/gain", "f", 0, NULL },
	{ "/strebm/source/-1/gain", "f", 0, NULL },
	{ "/strebm/source/x/gain", "f", 0, NULL },
	{ "/strebm/source//gain", "f", 0, NULL },
	{ "/strebm/source/99999999999/gain", "f", 0, NULL },
	/* unknown paths, patterns */
	{ "/strebm/source/1/foo", "f", 0, NULL },
	{ "/strebm/source/1", "", 0, NULL },
	{ "/strebm/source/1/gain/", "f", 0, NULL },
	{ "/strebm/unknown", "", 0, NULL },
	{ "/strebm/", "", 0, NULL },
	{ "/strebm", "", 0, NULL },
	{ "/other/ping", "", 0, NULL },
	{ "/", "", 0, NULL },
	{ "/strebm/source/*/gain", "f", 0, NULL },
	{ "/strebm/*", "", 0, NULL },
	{ "/strebm/re?et", "", 0, NULL },
	{ "/strebm/[a-z]*", "", 0, NULL },
	{ "/strebm/{reset,freeze}", "", 0, NULL },
};

START_TEST(test_bad_input)
{
	const struct bad *b = &bad_table[_i];
	size_t before = fake_count();
	struct reply r;

	send_msg(&cl, b->path, build(b->types, b->num, b->str));
	expect(&cl, "/strebm/error", "ss", &r);
	ck_assert_str_eq(arg_s(r.argv[0]), b->path);
	ck_assert_uint_gt(strlen(arg_s(r.argv[1])), 3);
	reply_free(&r);
	barrier(&cl);
	ck_assert_uint_eq(fake_count(), before);
}
END_TEST

/* The engine's own length-scale bounds, when the status gives them. */
START_TEST(test_engine_bounds)
{
	struct reply r;

	pthread_mutex_lock(&fake.lock);
	fake.st.ell_min_ms = 0.02;
	fake.st.ell_max_ms = 4.0;
	pthread_mutex_unlock(&fake.lock);
	send_msg(&cl, "/strebm/source/1/lengthscale", build("f", 5.0, NULL));
	expect(&cl, "/strebm/error", "ss", &r);
	ck_assert_ptr_nonnull(strstr(arg_s(r.argv[1]), "out of range"));
	reply_free(&r);
	send_msg(&cl, "/strebm/source/1/lengthscale", build("f", 0.01, NULL));
	expect(&cl, "/strebm/error", "ss", &r);
	reply_free(&r);
	send_msg(&cl, "/strebm/source/1/lengthscale", build("f", 4.0, NULL));
	barrier(&cl);
	ck_assert_uint_eq(fake_count(), 1);
	/* convolutive mode refused when the engine has none, and nothing posted */
	pthread_mutex_lock(&fake.lock);
	fake.st.no_convolutive = true;
	pthread_mutex_unlock(&fake.lock);
	send_msg(&cl, "/strebm/mode", build("s", 0, "convolutive"));
	expect(&cl, "/strebm/error", "ss", &r);
	ck_assert_ptr_nonnull(strstr(arg_s(r.argv[1]), "even window"));
	reply_free(&r);
	barrier(&cl);
	ck_assert_uint_eq(fake_count(), 1);
	pthread_mutex_lock(&fake.lock);
	fake.st.no_convolutive = false;
	pthread_mutex_unlock(&fake.lock);
	/* a worker that refuses answers as an error */
	pthread_mutex_lock(&fake.lock);
	fake.fail_with = -ENODEV;
	pthread_mutex_unlock(&fake.lock);
	send_msg(&cl, "/strebm/reset", lo_message_new());
	expect(&cl, "/strebm/error", "ss", &r);
	ck_assert_str_eq(arg_s(r.argv[0]), "/strebm/reset");
	reply_free(&r);
	barrier(&cl);
}
END_TEST

/* A huge path is refused, echoed cut short. */
START_TEST(test_huge_path)
{
	char *path = malloc(20000);
	struct reply r;

	memcpy(path, "/strebm/", 8);
	memset(path + 8, 'a', 20000 - 9);
	path[19999] = 0;
	send_msg(&cl, path, build("f", 1, NULL));
	expect(&cl, "/strebm/error", "ss", &r);
	ck_assert_uint_le(strlen(arg_s(r.argv[0])), 140);
	ck_assert_ptr_nonnull(strstr(arg_s(r.argv[1]), "too long"));
	reply_free(&r);
	barrier(&cl);
	ck_assert_uint_eq(fake_count(), 0);
	free(path);
}
END_TEST

/* ---- malformed packets ---- */

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

/* Append an OSC string (NUL, padded) to b at *n. */
static void put_str(unsigned char *b, size_t *n, const char *s)
{
	size_t l = strlen(s) + 1;

	memcpy(b + *n, s, l);
	memset(b + *n + l, 0, pad4(l) - l);
	*n += pad4(l);
}

static void put_be32(unsigned char *b, size_t *n, uint32_t v)
{
	b[*n] = (unsigned char)(v >> 24);
	b[*n + 1] = (unsigned char)(v >> 16);
	b[*n + 2] = (unsigned char)(v >> 8);
	b[*n + 3] = (unsigned char)v;
	*n += 4;
}

static size_t bundle_head(unsigned char *b, uint32_t sec, uint32_t frac)
{
	size_t n = 0;

	put_str(b, &n, "#bundle");
	put_be32(b, &n, sec);
	put_be32(b, &n, frac);
	return n;
}

/* Append a serialised message as a bundle element. */
static void put_elem(unsigned char *b, size_t *n, const char *path, lo_message m)
{
	size_t len = 0;
	void *data = lo_message_serialise(m, path, NULL, &len);

	put_be32(b, n, (uint32_t)len);
	memcpy(b + *n, data, len);
	*n += len;
	free(data);
	lo_message_free(m);
}

START_TEST(test_malformed)
{
	static unsigned char b[70000];
	size_t n, i;
	struct test_rng rng = { 4242 };

	/* empty, text, no type tag, bad type tag, truncated arguments */
	send_raw(&cl, "", 0);
	send_raw(&cl, "hello world", 11);
	send_raw(&cl, "/strebm/ping", 12);
	send_raw(&cl, "/strebm/ping\0\0\0\0", 16);
	send_raw(&cl, "/strebm/reset\0\0\0,i\0\0", 20);
	send_raw(&cl, "/strebm/source/1/gain\0\0\0,f\0\0\x01", 29);
	send_raw(&cl, "/strebm/mode\0\0\0\0,s\0\0linear", 26);
	send_raw(&cl, "/strebm/freeze\0\0,q\0\0\0\0\0\0", 24);
	send_raw(&cl, "/strebm/freeze\0\0,iiiiiiiiiiiiii\0\0", 34);
	drain_to_pong(&cl);
	/* bundles: truncated, lying element lengths, nesting */
	n = bundle_head(b, 0, 1);
	send_raw(&cl, b, n - 3);
	n = bundle_head(b, 0, 1);
	put_be32(b, &n, 1000);
	memcpy(b + n, "/strebm/reset\0\0\0,\0\0\0", 20);
	n += 20;
	send_raw(&cl, b, n);
	n = bundle_head(b, 0, 1);
	put_be32(b, &n, 0xfffffff0u);
	send_raw(&cl, b, n + 4);
	n = bundle_head(b, 0, 1);
	put_be32(b, &n, 3);
	memcpy(b + n, "abc", 3);
	send_raw(&cl, b, n + 3);
	/* deeply nested bundles, each claiming the rest */
	n = 0;
	for (i = 0; i < 2000 && n + 24 < sizeof(b); i++) {
		size_t h = bundle_head(b + n, 0, 1);
		n += h;
		put_be32(b, &n, (uint32_t)(20 * (2000 - i - 1) + 20));
	}
	send_raw(&cl, b, n);
	/* random garbage, some starting with '/' or '#bundle' */
	for (i = 0; i < 50; i++) {
		size_t k, len = 1 + test_rng_next(&rng) % 2000;
		for (k = 0; k < len; k++)
			b[k] = (unsigned char)test_rng_next(&rng);
		if (i % 3 == 0)
			b[0] = '/';
		if (i % 3 == 1 && len > 16)
			memcpy(b, "#bundle\0", 8);
		send_raw(&cl, b, len);
	}
	drain_to_pong(&cl);
	ck_assert_uint_eq(fake_count(), 0);
	barrier(&cl);
}
END_TEST

/* Bundles apply on arrival, whatever their time tag (no queue). */
START_TEST(test_bundles)
{
	static unsigned char b[4096];
	struct strebmd_osc_stats st;
	size_t n;

	/* far future: year 2106 */
	n = bundle_head(b, 0xffffffffu, 0);
	put_elem(b, &n, "/strebm/freeze", build("i", 1, NULL));
	put_elem(b, &n, "/strebm/source/2/gain", build("f", -3, NULL));
	send_raw(&cl, b, n);
	barrier(&cl);
	ck_assert_uint_eq(fake_count(), 2);
	ck_assert_int_eq(fake.cmds[0].type, STREBMD_CMD_FREEZE);
	ck_assert_int_eq(fake.cmds[1].type, STREBMD_CMD_GAIN);
	/* the past, immediate, and nested */
	n = bundle_head(b, 1, 0);
	put_elem(b, &n, "/strebm/reset", lo_message_new());
	send_raw(&cl, b, n);
	n = bundle_head(b, 0, 1);
	{
		unsigned char inner[512];
		size_t m = bundle_head(inner, 0, 1);
		put_elem(inner, &m, "/strebm/source/1/mute", build("i", 1, NULL));
		put_be32(b, &n, (uint32_t)m);
		memcpy(b + n, inner, m);
		n += m;
	}
	send_raw(&cl, b, n);
	barrier(&cl);
	ck_assert_uint_eq(fake_count(), 4);
	ck_assert_int_eq(fake.cmds[3].type, STREBMD_CMD_MUTE);
	strebmd_osc_get_stats(server, &st);
	ck_assert_uint_eq(st.errors, 0);
}
END_TEST

/* ---- seeded random packets over the dispatch path ---- */

static bool cmd_valid(const struct strebmd_cmd *c)
{
	switch (c->type) {
	case STREBMD_CMD_MODE:
		return c->ivalue >= 0 && c->ivalue < STREBM_MODE_COUNT;
	case STREBMD_CMD_ELL:
		return c->source >= 0 && c->source < 2 && isfinite(c->value) && c->value > 0 &&
		       c->value <= 1000.0;
	case STREBMD_CMD_LEARN:
	case STREBMD_CMD_MUTE:
		return c->source >= 0 && c->source < 2 && (c->ivalue == 0 || c->ivalue == 1);
	case STREBMD_CMD_KERNEL:
		return c->source >= 0 && c->source < 2 && c->ivalue >= 0 &&
		       c->ivalue < STREBM_KERNEL_COUNT;
	case STREBMD_CMD_GAIN:
		return c->source >= 0 && c->source < 2 && isfinite(c->value) && c->value >= -120.0 &&
		       c->value <= 24.0;
	case STREBMD_CMD_FREEZE:
		return c->ivalue == 0 || c->ivalue == 1;
	case STREBMD_CMD_RESET:
		return true;
	default:
		return false;
	}
}

/* A valid packet (message or bundle) from the table, into b. */
static size_t seed_packet(struct test_rng *rng, unsigned char *b)
{
	size_t n = 0, k = test_rng_next(rng) % (sizeof(table) / sizeof(table[0]));
	const struct row *w = &table[k];

	if (test_rng_next(rng) % 4 == 0) {
		n = bundle_head(b, (uint32_t)test_rng_next(rng), (uint32_t)test_rng_next(rng));
		put_elem(b, &n, w->path, build(w->types, w->num, w->str));
		w = &table[test_rng_next(rng) % (sizeof(table) / sizeof(table[0]))];
		put_elem(b, &n, w->path, build(w->types, w->num, w->str));
		return n;
	}
	{
		lo_message m = build(w->types, w->num, w->str);
		void *data = lo_message_serialise(m, w->path, NULL, &n);
		memcpy(b, data, n);
		free(data);
		lo_message_free(m);
	}
	return n;
}

static size_t mutate(struct test_rng *rng, unsigned char *b, size_t n, size_t cap)
{
	unsigned k, edits = 1 + (unsigned)(test_rng_next(rng) % 8);
	static const unsigned char interesting[] = { 0, 0xff, 0x7f, 0x80, '/', ',', '*', '#', 'i',
						     'f', 's', 'b', 'h', 'd', 'T', '[', '{', '?' };

	for (k = 0; k < edits && n; k++) {
		size_t at = test_rng_next(rng) % n;
		switch (test_rng_next(rng) % 6) {
		case 0: /* flip */
			b[at] ^= (unsigned char)(1u << (test_rng_next(rng) % 8));
			break;
		case 1: /* interesting byte */
			b[at] = interesting[test_rng_next(rng) % sizeof(interesting)];
			break;
		case 2: /* truncate */
			n = at;
			break;
		case 3: /* grow with junk */
			if (n + 16 < cap) {
				size_t j;
				for (j = 0; j < 16; j++)
					b[n + j] = (unsigned char)test_rng_next(rng);
				n += 16;
			}
			break;
		case 4: /* big-endian length-ish words */
			if (at + 4 <= n) {
				uint32_t v = (uint32_t)test_rng_next(rng);
				memcpy(b + at, &v, 4);
			}
			break;
		default: /* duplicate a chunk */
			if (n * 2 < cap) {
				memcpy(b + n, b, n);
				n *= 2;
			}
			break;
		}
	}
	return n;
}

START_TEST(test_random_packets)
{
	static unsigned char b[8192];
	struct test_rng rng = { 0x5eed0005 };
	struct sockaddr_in from = { .sin_family = AF_INET };
	struct timespec t0, t1;
	size_t i, nvalid = 0, cnt;
	const size_t N = 200000, NUDP = 5000;

	from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	from.sin_port = htons((uint16_t)cl.port);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < N + NUDP; i++) {
		size_t n = seed_packet(&rng, b);
		if (test_rng_next(&rng) % 8 != 0)
			n = mutate(&rng, b, n, sizeof(b));
		else
			nvalid++;
		if (i < N) {
			strebmd_osc_dispatch(server, b, n, (struct sockaddr *)&from, sizeof(from));
			if (i % 256 == 0) { /* keep the client's socket from filling */
				struct reply r;
				while (recv_reply(&cl, &r, 0) == 0)
					reply_free(&r);
			}
		} else {
			send_raw(&cl, b, n);
			if (i % 64 == 0)
				drain_to_pong(&cl);
		}
	}
	/* a mutated packet may hold a ping of its own: wait for quiet */
	drain_quiet(&cl, 300);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	cnt = fake_count();
	fprintf(stderr, "random packets: %zu (%zu unmutated), %zu commands posted, %.2f s\n", N + NUDP,
		nvalid, cnt, (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec));
	ck_assert_uint_gt(cnt, nvalid / 2);
	for (i = 0; i < cnt; i++)
		ck_assert_msg(cmd_valid(&fake.cmds[i]), "posted an invalid command: type %d source %d i %d v %g",
			      fake.cmds[i].type, fake.cmds[i].source, fake.cmds[i].ivalue, fake.cmds[i].value);
	barrier(&cl);
}
END_TEST

/* ---- flood ---- */

struct drainer {
	atomic_bool stop;
	struct strebmd_cmd *seen;
	size_t nseen;
};

/* The worker: drains the fake queue every millisecond. */
static void *drain_thread(void *arg)
{
	struct drainer *d = arg;
	struct timespec ms = { 0, 1000000 };

	while (!atomic_load(&d->stop)) {
		pthread_mutex_lock(&fake.lock);
		fake.queued = 0;
		pthread_mutex_unlock(&fake.lock);
		nanosleep(&ms, NULL);
	}
	return NULL;
}

/*
 * 10^5 valid settings against a queue of 32 drained every ms: nothing is
 * lost except superseded values (coalesced), the order holds, and the last
 * value of every setting is the one in force. Datagrams go in windows with a
 * ping barrier: UDP itself drops what overflows a socket buffer, which the
 * server cannot see.
 */
START_TEST(test_flood)
{
	const size_t N = 100000, W = 200;
	struct drainer d = { .stop = false };
	struct strebmd_osc_stats st;
	pthread_t th;
	double last_gain[2] = { 0, 0 };
	int last_mute = -1;
	size_t i, k, cnt;
	int last_idx = -1;

	pthread_mutex_lock(&fake.lock);
	fake.queue_cap = 32;
	pthread_mutex_unlock(&fake.lock);
	pthread_create(&th, NULL, drain_thread, &d);
	for (i = 0; i < N; i++) {
		/* gain of source 1 carries the index: -120 + i * 1e-3 dB */
		if (i % 10 == 9) {
			last_mute = (int)(i / 10) % 2;
			send_msg(&cl, "/strebm/source/2/mute", build("i", last_mute, NULL));
		} else {
			last_gain[0] = -120.0 + (double)i * 1e-3;
			send_msg(&cl, "/strebm/source/1/gain", build("d", last_gain[0], NULL));
		}
		if (i % W == W - 1)
			barrier(&cl);
	}
	barrier(&cl);
	/* let the backlog drain */
	for (k = 0; k < 2000; k++) {
		strebmd_osc_get_stats(server, &st);
		if (st.backlog == 0)
			break;
		usleep(1000);
	}
	atomic_store(&d.stop, true);
	pthread_join(th, NULL);
	strebmd_osc_get_stats(server, &st);
	cnt = fake_count();
	fprintf(stderr, "flood: %zu sent, %llu posted, %llu deferred, %llu coalesced, %llu errors\n", N,
		(unsigned long long)st.posted, (unsigned long long)st.deferred,
		(unsigned long long)st.coalesced, (unsigned long long)st.errors);
	ck_assert_uint_eq(st.backlog, 0);
	ck_assert_uint_eq(st.errors, 0);
	ck_assert_uint_eq(st.dropped, 0);
	ck_assert_uint_eq(st.posted, cnt);
	ck_assert_uint_eq(st.posted + st.coalesced, N);
	ck_assert_uint_gt(st.deferred, 0); /* the full queue was met */
	/* order kept for the gain, and the last values in force */
	for (i = 0; i < cnt; i++) {
		const struct strebmd_cmd *c = &fake.cmds[i];
		if (c->type == STREBMD_CMD_GAIN) {
			int idx = (int)lround((c->value + 120.0) * 1e3);
			ck_assert_int_gt(idx, last_idx);
			last_idx = idx;
			last_gain[1] = c->value;
		} else {
			ck_assert_int_eq(c->type, STREBMD_CMD_MUTE);
		}
	}
	ck_assert_double_eq_tol(last_gain[1], last_gain[0], 1e-9);
	for (i = cnt; i-- > 0;)
		if (fake.cmds[i].type == STREBMD_CMD_MUTE) {
			ck_assert_int_eq(fake.cmds[i].ivalue, last_mute);
			break;
		}
}
END_TEST

/* The backlog keeps the order of distinct settings and keeps one per setting. */
START_TEST(test_backlog_order)
{
	struct strebmd_osc_stats st;
	size_t k;

	pthread_mutex_lock(&fake.lock);
	fake.blocked = true;
	pthread_mutex_unlock(&fake.lock);
	send_msg(&cl, "/strebm/source/1/lengthscale", build("f", 1, NULL));
	send_msg(&cl, "/strebm/reset", lo_message_new());
	send_msg(&cl, "/strebm/source/1/lengthscale", build("f", 2, NULL));
	send_msg(&cl, "/strebm/source/2/gain", build("f", -1, NULL));
	send_msg(&cl, "/strebm/source/1/gain", build("f", -2, NULL));
	send_msg(&cl, "/strebm/source/2/gain", build("f", -3, NULL));
	barrier(&cl);
	ck_assert_uint_eq(fake_count(), 0);
	strebmd_osc_get_stats(server, &st);
	ck_assert_uint_eq(st.backlog, 4);
	ck_assert_uint_eq(st.coalesced, 2);
	pthread_mutex_lock(&fake.lock);
	fake.blocked = false;
	pthread_mutex_unlock(&fake.lock);
	for (k = 0; k < 1000 && fake_count() < 4; k++)
		usleep(1000);
	ck_assert_uint_eq(fake_count(), 4);
	ck_assert_int_eq(fake.cmds[0].type, STREBMD_CMD_RESET);
	ck_assert_int_eq(fake.cmds[1].type, STREBMD_CMD_ELL);
	ck_assert_double_eq_tol(fake.cmds[1].value, 2.0, 1e-9);
	ck_assert_int_eq(fake.cmds[2].type, STREBMD_CMD_GAIN);
	ck_assert_int_eq(fake.cmds[2].source, 0);
	ck_assert_int_eq(fake.cmds[3].type, STREBMD_CMD_GAIN);
	ck_assert_int_eq(fake.cmds[3].source, 1);
	ck_assert_double_eq_tol(fake.cmds[3].value, -3.0, 1e-9);
}
END_TEST

/* ---- allow list ---- */

START_TEST(test_allow)
{
	struct strebmd_osc_stats st;
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };
	char err[256];
	struct reply r;

	ck_assert_int_eq(strebmd_osc_set_allow(server, "10.0.0.0/8, 192.168.1.", err, sizeof(err)), 0);
	send_msg(&cl, "/strebm/ping", lo_message_new());
	send_msg(&cl, "/strebm/reset", lo_message_new());
	send_msg(&cl, "/strebm/nonsense", lo_message_new());
	ck_assert_int_eq(recv_reply(&cl, &r, 300), -ETIMEDOUT);
	strebmd_osc_get_stats(server, &st);
	ck_assert_uint_eq(st.rejected, 3);
	ck_assert_uint_eq(fake_count(), 0);

	/* prefix and CIDR entries match through the dispatch path */
	a.sin_port = htons(9);
	inet_pton(AF_INET, "192.168.1.77", &a.sin_addr);
	strebmd_osc_dispatch(server, "/strebm/reset\0\0\0,\0\0\0", 20, (struct sockaddr *)&a, sizeof(a));
	inet_pton(AF_INET, "10.200.0.1", &a.sin_addr);
	strebmd_osc_dispatch(server, "/strebm/reset\0\0\0,\0\0\0", 20, (struct sockaddr *)&a, sizeof(a));
	inet_pton(AF_INET, "192.168.2.1", &a.sin_addr);
	strebmd_osc_dispatch(server, "/strebm/reset\0\0\0,\0\0\0", 20, (struct sockaddr *)&a, sizeof(a));
	ck_assert_uint_eq(fake_count(), 2);

	/* bad entries are refused and the old list stays */
	ck_assert_int_eq(strebmd_osc_set_allow(server, "127.0.0.1, nonsense", err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "nonsense"));
	ck_assert_int_eq(strebmd_osc_set_allow(server, "10.0.0.0/33", err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(strebmd_osc_set_allow(server, "1.2.3.4.5.", err, sizeof(err)), -EINVAL);
	send_msg(&cl, "/strebm/ping", lo_message_new());
	ck_assert_int_eq(recv_reply(&cl, &r, 200), -ETIMEDOUT);

	/* IPv4-mapped IPv6 senders match IPv4 entries; IPv6 CIDR */
	ck_assert_int_eq(strebmd_osc_set_allow(server, "127.0.0.1 fd00::/8", err, sizeof(err)), 0);
	a6.sin6_port = htons(9);
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &a6.sin6_addr);
	strebmd_osc_dispatch(server, "/strebm/reset\0\0\0,\0\0\0", 20, (struct sockaddr *)&a6, sizeof(a6));
	inet_pton(AF_INET6, "fd12::1", &a6.sin6_addr);
	strebmd_osc_dispatch(server, "/strebm/reset\0\0\0,\0\0\0", 20, (struct sockaddr *)&a6, sizeof(a6));
	inet_pton(AF_INET6, "fe80::1", &a6.sin6_addr);
	strebmd_osc_dispatch(server, "/strebm/reset\0\0\0,\0\0\0", 20, (struct sockaddr *)&a6, sizeof(a6));
	ck_assert_uint_eq(fake_count(), 4);

	/* reloaded: we are let in again */
	barrier(&cl);
	/* empty list: nobody; "*": everybody */
	ck_assert_int_eq(strebmd_osc_set_allow(server, "", err, sizeof(err)), 0);
	send_msg(&cl, "/strebm/ping", lo_message_new());
	ck_assert_int_eq(recv_reply(&cl, &r, 200), -ETIMEDOUT);
	ck_assert_int_eq(strebmd_osc_set_allow(server, "*", err, sizeof(err)), 0);
	barrier(&cl);
}
END_TEST

/* ---- subscriptions ---- */

static void expect_publication(struct client *c)
{
	struct reply r;
	bool meter = false, ell = false, stats = false;
	int k;

	for (k = 0; k < 3; k++) {
		ck_assert_int_eq(recv_reply(c, &r, 1000), 0);
		if (!strcmp(r.path, "/strebm/meter")) {
			ck_assert_str_eq(r.types, "ff");
			ck_assert_double_eq_tol(arg_f(r.argv[0]), -20.0, 1e-6);
			meter = true;
		} else if (!strcmp(r.path, "/strebm/lengthscales")) {
			ck_assert_str_eq(r.types, "ff");
			ck_assert_double_eq_tol(arg_f(r.argv[1]), 3.0, 1e-6);
			ell = true;
		} else {
			ck_assert_str_eq(r.path, "/strebm/stats");
			ck_assert_str_eq(r.types, "shhhhhffii");
			ck_assert_int_eq(arg_h(r.argv[1]), 1234);
			stats = true;
		}
		reply_free(&r);
	}
	ck_assert(meter && ell && stats);
}

START_TEST(test_subscribe)
{
	struct client other[STREBMD_OSC_MAX_SUBSCRIBERS + 1];
	struct timespec t0, t1;
	struct reply r;
	int k, n = 0;

	/* to the sender, at 50 Hz: about 50 rounds a second */
	send_msg(&cl, "/strebm/subscribe", build("if", 0, NULL));
	drain_quiet(&cl, 100);
	send_msg(&cl, "/strebm/unsubscribe", lo_message_new());
	drain_quiet(&cl, 100);
	{
		lo_message m = lo_message_new();
		lo_message_add_int32(m, 0);
		lo_message_add_float(m, 50.0f);
		send_msg(&cl, "/strebm/subscribe", m);
	}
	expect_publication(&cl);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		ck_assert_int_eq(recv_reply(&cl, &r, 1000), 0);
		n += !strcmp(r.path, "/strebm/stats");
		reply_free(&r);
		clock_gettime(CLOCK_MONOTONIC, &t1);
	} while ((double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec) < 0.5);
	ck_assert_int_ge(n, 15);
	ck_assert_int_le(n, 35);
	send_msg(&cl, "/strebm/unsubscribe", lo_message_new());
	drain_quiet(&cl, 100);
	ck_assert_int_eq(recv_reply(&cl, &r, 200), -ETIMEDOUT);

	/* to a given port; the ninth subscriber replaces the first */
	for (k = 0; k <= STREBMD_OSC_MAX_SUBSCRIBERS; k++) {
		lo_message m = lo_message_new();
		client_open(&other[k], strebmd_osc_port(server));
		lo_message_add_int32(m, other[k].port);
		lo_message_add_double(m, 20.0);
		send_msg(&cl, "/strebm/subscribe", m);
		if (k == 0)
			expect_publication(&other[0]);
	}
	barrier(&cl);
	expect_publication(&other[STREBMD_OSC_MAX_SUBSCRIBERS]);
	expect_publication(&other[1]);
	drain_quiet(&other[0], 150);
	ck_assert_int_eq(recv_reply(&other[0], &r, 200), -ETIMEDOUT);
	for (k = 0; k <= STREBMD_OSC_MAX_SUBSCRIBERS; k++) {
		lo_message m = lo_message_new();
		lo_message_add_int32(m, other[k].port);
		send_msg(&cl, "/strebm/unsubscribe", m);
	}
	barrier(&cl);
	for (k = 0; k <= STREBMD_OSC_MAX_SUBSCRIBERS; k++) {
		drain_quiet(&other[k], 60);
		ck_assert_int_eq(recv_reply(&other[k], &r, 100), -ETIMEDOUT);
		client_close(&other[k]);
	}
}
END_TEST

/* ---- creation, binding, misuse ---- */

START_TEST(test_create)
{
	struct strebmd_osc_ops none = { 0 };
	struct strebmd_osc *o, *again;
	char err[256];

	fake_init();
	strebmd_osc_destroy(NULL);
	err[0] = 0;
	ck_assert_ptr_null(strebmd_osc_create("127.0.0.1", 0, "", &none, NULL, err, sizeof(err)));
	ck_assert_uint_gt(strlen(err), 0);
	ck_assert_ptr_null(strebmd_osc_create("127.0.0.1", 70000, "", &fake_ops, &fake, err, sizeof(err)));
	ck_assert_ptr_null(strebmd_osc_create("127.0.0.1", 0, "bogus!", &fake_ops, &fake, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "bogus!"));
	/* an address this machine does not have */
	ck_assert_ptr_null(strebmd_osc_create("192.0.2.1", 0, "", &fake_ops, &fake, err, sizeof(err)));
	ck_assert_ptr_nonnull(strstr(err, "192.0.2.1"));
	ck_assert_ptr_null(strebmd_osc_create("no.such.host.invalid", 0, "", &fake_ops, &fake, err, sizeof(err)));

	/* default address is 127.0.0.1 only: the same port stays free on
	 * another local address */
	o = strebmd_osc_create(NULL, 0, "127.0.0.1", &fake_ops, &fake, err, sizeof(err));
	ck_assert_msg(o != NULL, "%s", err);
	again = strebmd_osc_create("127.0.0.1", strebmd_osc_port(o), "", &fake_ops, &fake, err,
				   sizeof(err));
	ck_assert_ptr_null(again);
	again = strebmd_osc_create("127.0.0.2", strebmd_osc_port(o), "", &fake_ops, &fake, err,
				   sizeof(err));
	ck_assert_msg(again != NULL, "127.0.0.2:%d taken: the server bound more than 127.0.0.1 (%s)",
		      strebmd_osc_port(o), err);
	strebmd_osc_destroy(again);
	strebmd_osc_destroy(o);
	free(fake.cmds);
}
END_TEST

static Suite *osc_suite(void)
{
	Suite *s = suite_create("osc");
	TCase *tc = tcase_create("protocol");
	TCase *tl = tcase_create("load");
	TCase *tm = tcase_create("create");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_address_table, 0, sizeof(table) / sizeof(table[0]));
	tcase_add_loop_test(tc, test_bad_input, 0, sizeof(bad_table) / sizeof(bad_table[0]));
	tcase_add_test(tc, test_engine_bounds);
	tcase_add_test(tc, test_huge_path);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_bundles);
	tcase_add_test(tc, test_backlog_order);
	tcase_add_test(tc, test_allow);
	tcase_add_test(tc, test_subscribe);
	suite_add_tcase(s, tc);

	tcase_add_checked_fixture(tl, setup, teardown);
	tcase_set_timeout(tl, 240);
	tcase_add_test(tl, test_random_packets);
	tcase_add_test(tl, test_flood);
	suite_add_tcase(s, tl);

	tcase_add_test(tm, test_create);
	suite_add_tcase(s, tm);
	return s;
}

int main(void)
{
	return test_run_suite(osc_suite());
}
