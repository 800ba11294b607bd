/* SPDX-License-Identifier: MIT */
/*
 * Check suite: io/nsm, the NSM client. A fake session manager (a UDP socket
 * on an ephemeral 127.0.0.1 port; liblo builds and parses its messages)
 * stands in for nsmd: it receives the announce, answers it, sends open,
 * save and malformed messages, and checks the answers and the ops calls.
 */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lo/lo.h>

#include "nsm.h"
#include "testutil.h"

#define WAIT_MS 3000   /* generous: answers arrive in well under a millisecond */
#define QUIET_MS 150   /* how long "no answer" is waited for */

/* ---- the fake session manager ---- */

struct fakesrv {
	int fd;
	int port;
	struct sockaddr_in client;  /* where the announce came from */
	bool have_client;
};

struct rx {
	char path[256];
	char types[32];
	lo_message m;               /* owned; rx_free() */
	struct sockaddr_in from;
};

static void srv_open(struct fakesrv *s)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	memset(s, 0, sizeof(*s));
	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(s->fd, 0);
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_eq(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	ck_assert_int_eq(getsockname(s->fd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
}

static void srv_url(const struct fakesrv *s, char *url, size_t len)
{
	snprintf(url, len, "osc.udp://127.0.0.1:%d/", s->port);
}

static void rx_free(struct rx *r)
{
	if (r->m)
		lo_message_free(r->m);
	r->m = NULL;
}

/* Receive one datagram on fd within ms. @return true with r filled. */
static bool recv_on(int fd, int ms, struct rx *r)
{
	static unsigned char buf[65536];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	socklen_t len = sizeof(r->from);
	const char *path, *types;
	ssize_t k;
	int res = 0;

	memset(r, 0, sizeof(*r));
	if (poll(&p, 1, ms) <= 0)
		return false;
	k = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&r->from, &len);
	ck_assert_int_gt(k, 0);
	path = lo_get_path(buf, k);
	ck_assert_ptr_nonnull(path);
	snprintf(r->path, sizeof(r->path), "%s", path);
	r->m = lo_message_deserialise(buf, (size_t)k, &res);
	ck_assert_msg(r->m != NULL, "the client sent a malformed packet (%d)", res);
	types = lo_message_get_types(r->m);
	snprintf(r->types, sizeof(r->types), "%s", types ? types : "");
	return true;
}

static const char *rx_str(const struct rx *r, int i)
{
	ck_assert_int_gt((int)strlen(r->types), i);
	ck_assert(r->types[i] == 's');
	return (const char *)lo_message_get_argv(r->m)[i];
}

static int rx_int(const struct rx *r, int i)
{
	int32_t v;

	ck_assert_int_gt((int)strlen(r->types), i);
	ck_assert(r->types[i] == 'i');
	/* liblo's arguments are only 4-byte aligned */
	memcpy(&v, (const void *)lo_message_get_argv(r->m)[i], sizeof(v));
	return v;
}

static void send_raw_from(int fd, const struct sockaddr_in *to, const void *data, size_t len)
{
	ck_assert_int_eq((int)sendto(fd, data, len, 0, (const struct sockaddr *)to, sizeof(*to)),
			 (int)len);
}

static void send_from(int fd, const struct sockaddr_in *to, const char *path, lo_message m)
{
	size_t len = 0;
	void *data = lo_message_serialise(m, path, NULL, &len);

	ck_assert_ptr_nonnull(data);
	send_raw_from(fd, to, data, len);
	free(data);
	lo_message_free(m);
}

static void srv_send(struct fakesrv *s, const char *path, lo_message m)
{
	ck_assert(s->have_client);
	send_from(s->fd, &s->client, path, m);
}

/* Expect the announce; remember its sender. */
static void srv_expect_announce(struct fakesrv *s, struct rx *r)
{
	ck_assert_msg(recv_on(s->fd, WAIT_MS, r), "no announce");
	ck_assert_str_eq(r->path, "/nsm/server/announce");
	s->client = r->from;
	s->have_client = true;
}

static void srv_accept(struct fakesrv *s)
{
	lo_message m = lo_message_new();

	lo_message_add_string(m, "/nsm/server/announce");
	lo_message_add_string(m, "Howdy, what took you so long?");
	lo_message_add_string(m, "Fake Session Manager");
	lo_message_add_string(m, ":server-control:broadcast:optional-gui:");
	srv_send(s, "/reply", m);
}

static void srv_open_msg(struct fakesrv *s, const char *path, const char *display, const char *id)
{
	lo_message m = lo_message_new();

	lo_message_add_string(m, path);
	lo_message_add_string(m, display);
	lo_message_add_string(m, id);
	srv_send(s, "/nsm/client/open", m);
}

static void srv_plain(struct fakesrv *s, const char *path)
{
	srv_send(s, path, lo_message_new());
}

/* Expect /reply s:to s:message. */
static void srv_expect_reply(struct fakesrv *s, const char *to)
{
	struct rx r;

	ck_assert_msg(recv_on(s->fd, WAIT_MS, &r), "no answer to %s", to);
	ck_assert_msg(!strcmp(r.path, "/reply"), "%s answered %s, not /reply", to, r.path);
	ck_assert_str_eq(r.types, "ss");
	ck_assert_str_eq(rx_str(&r, 0), to);
	ck_assert_str_eq(rx_str(&r, 1), "OK");
	rx_free(&r);
}

/* Expect /error s:to i:code s:message; the message must contain want. */
static void srv_expect_error(struct fakesrv *s, const char *to, int code, const char *want)
{
	struct rx r;

	ck_assert_msg(recv_on(s->fd, WAIT_MS, &r), "no answer to %s", to);
	ck_assert_msg(!strcmp(r.path, "/error"), "%s answered %s, not /error", to, r.path);
	ck_assert_str_eq(r.types, "sis");
	ck_assert_str_eq(rx_str(&r, 0), to);
	ck_assert_int_eq(rx_int(&r, 1), code);
	ck_assert_msg(strlen(rx_str(&r, 2)) > 0, "an empty error message");
	if (want)
		ck_assert_msg(strstr(rx_str(&r, 2), want), "'%s' lacks '%s'", rx_str(&r, 2), want);
	rx_free(&r);
}

static void srv_expect_silence(struct fakesrv *s)
{
	struct rx r;

	if (recv_on(s->fd, QUIET_MS, &r)) {
		char path[256];
		snprintf(path, sizeof(path), "%s", r.path);
		rx_free(&r);
		ck_abort_msg("unexpected %s", path);
	}
}

/* ---- the daemon side: recording ops ---- */

struct rec {
	pthread_mutex_t lock;
	int opens, saves, loaded, logs;
	char path[4096], display[256], id[256];
	int open_result;       /* what ops->open returns */
	int save_result;       /* what ops->save returns */
};

static struct rec rec;

static int rec_open(void *data, const char *path, const char *display, const char *id, char *err,
		    size_t errlen)
{
	struct rec *r = data;
	int res;

	pthread_mutex_lock(&r->lock);
	r->opens++;
	snprintf(r->path, sizeof(r->path), "%s", path);
	snprintf(r->display, sizeof(r->display), "%s", display);
	snprintf(r->id, sizeof(r->id), "%s", id);
	res = r->open_result;
	pthread_mutex_unlock(&r->lock);
	if (res < 0)
		snprintf(err, errlen, "%s.strebm: not a state of this model", path);
	return res;
}

static int rec_save(void *data, char *err, size_t errlen)
{
	struct rec *r = data;
	int res;

	pthread_mutex_lock(&r->lock);
	r->saves++;
	res = r->save_result;
	pthread_mutex_unlock(&r->lock);
	if (res < 0)
		snprintf(err, errlen, "cannot write the state: %s", strerror(-res));
	return res;
}

static void rec_loaded(void *data)
{
	struct rec *r = data;

	pthread_mutex_lock(&r->lock);
	r->loaded++;
	pthread_mutex_unlock(&r->lock);
}

static void rec_log(void *data, int level, const char *msg)
{
	struct rec *r = data;

	(void)level;
	(void)msg;
	pthread_mutex_lock(&r->lock);
	r->logs++;
	pthread_mutex_unlock(&r->lock);
}

static const struct strebm_nsm_ops rec_ops = {
	.open = rec_open, .save = rec_save, .session_is_loaded = rec_loaded, .log = rec_log,
};

static int rec_get(const int *field)
{
	int v;

	pthread_mutex_lock(&rec.lock);
	v = *field;
	pthread_mutex_unlock(&rec.lock);
	return v;
}

static void setup(void)
{
	memset(&rec, 0, sizeof(rec));
	pthread_mutex_init(&rec.lock, NULL);
}

/* A temporary session directory and the open path inside it. */
static char session_dir[256];

static void make_session(char *path, size_t len, const char *id)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(session_dir, sizeof(session_dir), "%s/strebm-nsm-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(session_dir));
	snprintf(path, len, "%s/%s", session_dir, id);
}

/* Fake server + client, announce received and answered. */
static struct strebm_nsm *start(struct fakesrv *s, bool accept)
{
	struct strebm_nsm *n;
	struct rx r;
	char url[64], err[256];

	srv_open(s);
	srv_url(s, url, sizeof(url));
	n = strebm_nsm_create(url, "strebmd", "strebmd", &rec_ops, &rec, err, sizeof(err));
	ck_assert_msg(n != NULL, "%s", err);
	srv_expect_announce(s, &r);
	rx_free(&r);
	if (accept)
		srv_accept(s);
	return n;
}

static void wait_announced(struct strebm_nsm *n)
{
	int i;

	for (i = 0; i < WAIT_MS && !strebm_nsm_announced(n); i++)
		usleep(1000);
	ck_assert(strebm_nsm_announced(n));
}

/* ---- URL ---- */

static const struct {
	const char *url;
	int ret;
	const char *host;
	int port;
} url_cases[] = {
	{ "osc.udp://127.0.0.1:1234/", 0, "127.0.0.1", 1234 },
	{ "osc.udp://host.localdomain:38356/", 0, "host.localdomain", 38356 },
	{ "osc.udp://localhost:9", 0, "localhost", 9 },
	{ "osc.udp://[::1]:65535/", 0, "::1", 65535 },
	{ "osc.udp://127.0.0.1:0/", -EINVAL, NULL, 0 },
	{ "osc.udp://127.0.0.1:65536/", -EINVAL, NULL, 0 },
	{ "osc.udp://127.0.0.1:-5/", -EINVAL, NULL, 0 },
	{ "osc.udp://127.0.0.1:12ab/", -EINVAL, NULL, 0 },
	{ "osc.udp://127.0.0.1/", -EINVAL, NULL, 0 },
	{ "osc.udp://:1234/", -EINVAL, NULL, 0 },
	{ "osc.udp://[::1/", -EINVAL, NULL, 0 },
	{ "osc.udp://", -EINVAL, NULL, 0 },
	{ "osc.tcp://127.0.0.1:1234/", -EPROTONOSUPPORT, NULL, 0 },
	{ "osc.unix:///tmp/sock", -EPROTONOSUPPORT, NULL, 0 },
	{ "garbage", -EINVAL, NULL, 0 },
	{ "", -EINVAL, NULL, 0 },
	{ "127.0.0.1:1234", -EINVAL, NULL, 0 },
};

START_TEST(test_parse_url)
{
	char host[256] = "", err[256] = "";
	int port = -1, r;

	r = strebm_nsm_parse_url(url_cases[_i].url, host, sizeof(host), &port, err, sizeof(err));
	ck_assert_msg(r == url_cases[_i].ret, "'%s': %d, not %d", url_cases[_i].url, r,
		      url_cases[_i].ret);
	if (r == 0) {
		ck_assert_str_eq(host, url_cases[_i].host);
		ck_assert_int_eq(port, url_cases[_i].port);
	} else {
		ck_assert_msg(strlen(err) > 0, "no reason for '%s'", url_cases[_i].url);
	}
}
END_TEST

START_TEST(test_wanted)
{
	unsetenv("NSM_URL");
	ck_assert(!strebm_nsm_wanted());
	setenv("NSM_URL", "", 1);
	ck_assert(!strebm_nsm_wanted());
	setenv("NSM_URL", "garbage", 1);
	ck_assert(!strebm_nsm_wanted());
	setenv("NSM_URL", "osc.tcp://127.0.0.1:1234/", 1);
	ck_assert(!strebm_nsm_wanted());
	setenv("NSM_URL", "osc.udp://127.0.0.1:1234/", 1);
	ck_assert(strebm_nsm_wanted());
	unsetenv("NSM_URL");
}
END_TEST

START_TEST(test_create_fails_clearly)
{
	char err[256];

	unsetenv("NSM_URL");
	err[0] = 0;
	ck_assert_ptr_null(strebm_nsm_create(NULL, "strebmd", "strebmd", &rec_ops, &rec, err,
					     sizeof(err)));
	ck_assert_msg(strstr(err, "NSM_URL is not set"), "%s", err);
	setenv("NSM_URL", "garbage", 1);
	err[0] = 0;
	ck_assert_ptr_null(strebm_nsm_create(NULL, "strebmd", "strebmd", &rec_ops, &rec, err,
					     sizeof(err)));
	ck_assert_msg(strstr(err, "garbage") && strstr(err, "osc.udp"), "%s", err);
	setenv("NSM_URL", "osc.tcp://127.0.0.1:1234/", 1);
	err[0] = 0;
	ck_assert_ptr_null(strebm_nsm_create(NULL, "strebmd", "strebmd", &rec_ops, &rec, err,
					     sizeof(err)));
	ck_assert_msg(strstr(err, "only osc.udp"), "%s", err);
	unsetenv("NSM_URL");
	/* misuse */
	ck_assert_ptr_null(strebm_nsm_create("osc.udp://127.0.0.1:9/", "strebmd", "strebmd", NULL,
					     NULL, err, sizeof(err)));
	ck_assert_ptr_null(strebm_nsm_create("osc.udp://127.0.0.1:9/", "", "strebmd", &rec_ops,
					     &rec, err, sizeof(err)));
	ck_assert_ptr_null(strebm_nsm_create("osc.udp://127.0.0.1:9/", "strebmd", NULL, &rec_ops,
					     &rec, NULL, 0));
	strebm_nsm_destroy(NULL);
	ck_assert_int_eq(strebm_nsm_wait_open(NULL, 0), -EINVAL);
	ck_assert_int_eq(strebm_nsm_open_done(NULL, 0, NULL), -EINVAL);
	ck_assert_int_eq(strebm_nsm_message(NULL, 0, "x"), -EINVAL);
	ck_assert(!strebm_nsm_announced(NULL));
}
END_TEST

START_TEST(test_state_path)
{
	char out[64], tiny[8];

	ck_assert_int_eq(strebm_nsm_state_path("/s/strebmd.nABC", out, sizeof(out)), 0);
	ck_assert_str_eq(out, "/s/strebmd.nABC.strebm");
	ck_assert_int_eq(strebm_nsm_state_path("/s/strebmd.nABC", tiny, sizeof(tiny)),
			 -ENAMETOOLONG);
	ck_assert_int_eq(strebm_nsm_state_path("", out, sizeof(out)), -EINVAL);
	ck_assert_int_eq(strebm_nsm_state_path(NULL, out, sizeof(out)), -EINVAL);
}
END_TEST

/* ---- protocol ---- */

START_TEST(test_announce)
{
	struct fakesrv s;
	struct strebm_nsm *n;
	struct rx r;
	char url[64], err[256];

	srv_open(&s);
	srv_url(&s, url, sizeof(url));
	setenv("NSM_URL", url, 1);
	ck_assert(strebm_nsm_wanted());
	n = strebm_nsm_create(NULL, "strebmd", "/usr/bin/strebmd", &rec_ops, &rec, err,
			      sizeof(err));
	ck_assert_msg(n != NULL, "%s", err);
	srv_expect_announce(&s, &r);
	ck_assert_str_eq(r.types, "sssiii");
	ck_assert_str_eq(rx_str(&r, 0), "strebmd");
	ck_assert_str_eq(rx_str(&r, 1), STREBM_NSM_CAPABILITIES);
	ck_assert_str_eq(rx_str(&r, 2), "/usr/bin/strebmd");
	ck_assert_int_eq(rx_int(&r, 3), 1);
	ck_assert_int_eq(rx_int(&r, 4), 2);
	ck_assert_int_eq(rx_int(&r, 5), (int)getpid());
	/* from the socket it will listen on, on loopback */
	ck_assert_int_eq(ntohs(r.from.sin_port), strebm_nsm_port(n));
	ck_assert_int_eq(ntohl(r.from.sin_addr.s_addr) >> 24, 127);
	rx_free(&r);
	ck_assert(!strebm_nsm_announced(n));
	srv_accept(&s);
	wait_announced(n);
	/* an answer to the announce is not answered */
	srv_expect_silence(&s);
	strebm_nsm_destroy(n);
	unsetenv("NSM_URL");
	close(s.fd);
}
END_TEST

START_TEST(test_open_save)
{
	struct fakesrv s;
	struct strebm_nsm *n = start(&s, true);
	char path[512], state[600];

	make_session(path, sizeof(path), "strebmd.nKXLF");
	ck_assert_int_eq(strebm_nsm_wait_open(n, 0), -ETIMEDOUT);
	srv_open_msg(&s, path, "strebmd", "strebmd.nKXLF");
	srv_expect_reply(&s, "/nsm/client/open");
	ck_assert_int_eq(strebm_nsm_wait_open(n, WAIT_MS), 0);
	ck_assert_int_eq(rec_get(&rec.opens), 1);
	pthread_mutex_lock(&rec.lock);
	ck_assert_str_eq(rec.path, path);
	ck_assert_str_eq(rec.display, "strebmd");
	ck_assert_str_eq(rec.id, "strebmd.nKXLF");
	pthread_mutex_unlock(&rec.lock);
	ck_assert_int_eq(strebm_nsm_state_path(path, state, sizeof(state)), 0);
	ck_assert(!strncmp(state, session_dir, strlen(session_dir)));

	srv_plain(&s, "/nsm/client/save");
	srv_expect_reply(&s, "/nsm/client/save");
	ck_assert_int_eq(rec_get(&rec.saves), 1);
	srv_plain(&s, "/nsm/client/save");
	srv_expect_reply(&s, "/nsm/client/save");
	ck_assert_int_eq(rec_get(&rec.saves), 2);

	srv_plain(&s, "/nsm/client/session_is_loaded");
	srv_expect_silence(&s);
	ck_assert_int_eq(rec_get(&rec.loaded), 1);

	/* no :switch: — a second open is refused and ops->open not called */
	srv_open_msg(&s, path, "strebmd", "strebmd.nOTHR");
	srv_expect_error(&s, "/nsm/client/open", STREBM_NSM_ERR_NOT_NOW, "switch");
	ck_assert_int_eq(rec_get(&rec.opens), 1);
	ck_assert_int_eq(strebm_nsm_wait_open(n, 0), 0);
	strebm_nsm_destroy(n);
	rmdir(session_dir);
	close(s.fd);
}
END_TEST

START_TEST(test_save_fails)
{
	struct fakesrv s;
	struct strebm_nsm *n = start(&s, true);
	char path[512];

	make_session(path, sizeof(path), "strebmd.nAAAA");
	/* before any open: refused without calling ops->save */
	srv_plain(&s, "/nsm/client/save");
	srv_expect_error(&s, "/nsm/client/save", STREBM_NSM_ERR_NO_SESSION_OPEN, NULL);
	ck_assert_int_eq(rec_get(&rec.saves), 0);

	srv_open_msg(&s, path, "strebmd", "strebmd.nAAAA");
	srv_expect_reply(&s, "/nsm/client/open");
	pthread_mutex_lock(&rec.lock);
	rec.save_result = -EACCES;
	pthread_mutex_unlock(&rec.lock);
	srv_plain(&s, "/nsm/client/save");
	srv_expect_error(&s, "/nsm/client/save", STREBM_NSM_ERR_GENERAL, "Permission denied");
	pthread_mutex_lock(&rec.lock);
	rec.save_result = -ETIMEDOUT;
	pthread_mutex_unlock(&rec.lock);
	srv_plain(&s, "/nsm/client/save");
	srv_expect_error(&s, "/nsm/client/save", STREBM_NSM_ERR_NOT_NOW, "timed out");
	pthread_mutex_lock(&rec.lock);
	rec.save_result = 0;
	pthread_mutex_unlock(&rec.lock);
	srv_plain(&s, "/nsm/client/save");
	srv_expect_reply(&s, "/nsm/client/save");
	ck_assert_int_eq(rec_get(&rec.saves), 3);
	strebm_nsm_destroy(n);
	rmdir(session_dir);
	close(s.fd);
}
END_TEST

START_TEST(test_open_fails_then_succeeds)
{
	struct fakesrv s;
	struct strebm_nsm *n = start(&s, true);
	char path[512];

	make_session(path, sizeof(path), "strebmd.nBBBB");
	pthread_mutex_lock(&rec.lock);
	rec.open_result = -EINVAL;
	pthread_mutex_unlock(&rec.lock);
	srv_open_msg(&s, path, "strebmd", "strebmd.nBBBB");
	srv_expect_error(&s, "/nsm/client/open", STREBM_NSM_ERR_BAD_PROJECT, "not a state");
	ck_assert_int_eq(strebm_nsm_wait_open(n, WAIT_MS), -EINVAL);
	pthread_mutex_lock(&rec.lock);
	rec.open_result = -EROFS;
	pthread_mutex_unlock(&rec.lock);
	srv_open_msg(&s, path, "strebmd", "strebmd.nBBBB");
	srv_expect_error(&s, "/nsm/client/open", STREBM_NSM_ERR_CREATE_FAILED, NULL);
	/* save is still refused: no session is open */
	srv_plain(&s, "/nsm/client/save");
	srv_expect_error(&s, "/nsm/client/save", STREBM_NSM_ERR_NO_SESSION_OPEN, NULL);
	pthread_mutex_lock(&rec.lock);
	rec.open_result = 0;
	pthread_mutex_unlock(&rec.lock);
	srv_open_msg(&s, path, "strebmd", "strebmd.nBBBB");
	srv_expect_reply(&s, "/nsm/client/open");
	ck_assert_int_eq(strebm_nsm_wait_open(n, WAIT_MS), 0);
	ck_assert_int_eq(rec_get(&rec.opens), 3);
	ck_assert_int_eq(rec_get(&rec.saves), 0);
	strebm_nsm_destroy(n);
	rmdir(session_dir);
	close(s.fd);
}
END_TEST

START_TEST(test_deferred_open)
{
	struct fakesrv s;
	struct strebm_nsm *n = start(&s, true);
	char path[512];

	make_session(path, sizeof(path), "strebmd.nCCCC");
	ck_assert_int_eq(strebm_nsm_open_done(n, 0, NULL), -EALREADY);
	pthread_mutex_lock(&rec.lock);
	rec.open_result = STREBM_NSM_DEFER;
	pthread_mutex_unlock(&rec.lock);
	srv_open_msg(&s, path, "strebmd", "strebmd.nCCCC");
	ck_assert_int_eq(strebm_nsm_wait_open(n, WAIT_MS), 0);
	srv_expect_silence(&s);
	/* while it opens, save is "not now" and another open too */
	srv_plain(&s, "/nsm/client/save");
	srv_expect_error(&s, "/nsm/client/save", STREBM_NSM_ERR_NOT_NOW, NULL);
	srv_open_msg(&s, path, "strebmd", "strebmd.nCCCC");
	srv_expect_error(&s, "/nsm/client/open", STREBM_NSM_ERR_NOT_NOW, "in progress");
	ck_assert_int_eq(rec_get(&rec.saves), 0);
	ck_assert_int_eq(rec_get(&rec.opens), 1);
	ck_assert_int_eq(strebm_nsm_open_done(n, 0, NULL), 0);
	srv_expect_reply(&s, "/nsm/client/open");
	ck_assert_int_eq(strebm_nsm_open_done(n, 0, NULL), -EALREADY);
	srv_plain(&s, "/nsm/client/save");
	srv_expect_reply(&s, "/nsm/client/save");
	strebm_nsm_destroy(n);
	rmdir(session_dir);
	close(s.fd);
}
END_TEST

START_TEST(test_deferred_open_fails)
{
	struct fakesrv s;
	struct strebm_nsm *n = start(&s, true);
	char path[512];

	make_session(path, sizeof(path), "strebmd.nDDDD");
	pthread_mutex_lock(&rec.lock);
	rec.open_result = STREBM_NSM_DEFER;
	pthread_mutex_unlock(&rec.lock);
	srv_open_msg(&s, path, "strebmd", "strebmd.nDDDD");
	ck_assert_int_eq(strebm_nsm_wait_open(n, WAIT_MS), 0);
	ck_assert_int_eq(strebm_nsm_open_done(n, -EBUSY, "the JACK server is not running"), 0);
	srv_expect_error(&s, "/nsm/client/open", STREBM_NSM_ERR_NOT_NOW, "JACK server");
	/* destroy with a deferred open pending answers it */
	srv_open_msg(&s, path, "strebmd", "strebmd.nDDDD");
	{
		int i;
		for (i = 0; i < WAIT_MS && rec_get(&rec.opens) < 2; i++)
			usleep(1000);
	}
	ck_assert_int_eq(rec_get(&rec.opens), 2);
	srv_expect_silence(&s);
	strebm_nsm_destroy(n);
	srv_expect_error(&s, "/nsm/client/open", STREBM_NSM_ERR_GENERAL, "stopped");
	rmdir(session_dir);
	close(s.fd);
}
END_TEST

/* A malformed message and the answer it must get (NULL: none). */
struct bad_msg {
	const char *path;
	const char *types;      /* s: a string, i: an int, f: a float */
	const char *args[4];
	const char *answer_to;  /* the path echoed in /error, NULL when ignored */
};

static const struct bad_msg bad_msgs[] = {
	{ "/nsm/client/open", "ss", { "/s/strebmd.nX", "strebmd" }, "/nsm/client/open" },
	{ "/nsm/client/open", "", { NULL }, "/nsm/client/open" },
	{ "/nsm/client/open", "ssss", { "/s/a", "b", "c", "d" }, "/nsm/client/open" },
	{ "/nsm/client/open", "sis", { "/s/a", "1", "strebmd.nX" }, "/nsm/client/open" },
	{ "/nsm/client/open", "iii", { "1", "2", "3" }, "/nsm/client/open" },
	{ "/nsm/client/open", "sss", { "relative/path", "strebmd", "strebmd.nX" },
	  "/nsm/client/open" },
	{ "/nsm/client/open", "sss", { "", "strebmd", "strebmd.nX" }, "/nsm/client/open" },
	{ "/nsm/client/open", "sss", { "/s/a", "strebmd", "" }, "/nsm/client/open" },
	{ "/nsm/client/open", "sss",
	  { "/s/a", "strebmd", "strebmd.nXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX" },
	  "/nsm/client/open" },
	{ "/nsm/client/save", "i", { "1" }, "/nsm/client/save" },
	{ "/nsm/client/save", "s", { "now" }, "/nsm/client/save" },
	{ "/reply", "i", { "7" }, NULL },
	{ "/reply", "", { NULL }, NULL },
	{ "/error", "f", { "1.5" }, NULL },
	{ "/error", "sss", { "/nsm/client/save", "x", "y" }, NULL },
	{ "/nsm/client/show_optional_gui", "", { NULL }, NULL },
	{ "/strebm/ping", "", { NULL }, NULL },
};

START_TEST(test_malformed)
{
	const struct bad_msg *b = &bad_msgs[_i];
	struct fakesrv s;
	struct strebm_nsm *n = start(&s, true);
	lo_message m = lo_message_new();
	char path[512];
	size_t i;

	for (i = 0; b->types[i]; i++) {
		if (b->types[i] == 's')
			lo_message_add_string(m, b->args[i]);
		else if (b->types[i] == 'i')
			lo_message_add_int32(m, atoi(b->args[i]));
		else
			lo_message_add_float(m, (float)atof(b->args[i]));
	}
	srv_send(&s, b->path, m);
	if (b->answer_to)
		srv_expect_error(&s, b->answer_to, STREBM_NSM_ERR_GENERAL, NULL);
	else
		srv_expect_silence(&s);
	ck_assert_int_eq(rec_get(&rec.opens), 0);
	ck_assert_int_eq(rec_get(&rec.saves), 0);
	/* still working */
	make_session(path, sizeof(path), "strebmd.nEEEE");
	srv_open_msg(&s, path, "strebmd", "strebmd.nEEEE");
	srv_expect_reply(&s, "/nsm/client/open");
	ck_assert_int_eq(rec_get(&rec.opens), 1);
	strebm_nsm_destroy(n);
	rmdir(session_dir);
	close(s.fd);
}
END_TEST

START_TEST(test_garbage_packets)
{
	static const unsigned char bundle[] = "#bundle\0\0\0\0\0\0\0\0\1";
	static const unsigned char trunc[] = "/nsm/client/open\0\0\0\0,sss\0\0\0\0/tm";
	static const unsigned char junk[] = { 0xff, 0x00, 0x13, 0x37, 0x42 };
	struct fakesrv s;
	struct strebm_nsm *n = start(&s, true);
	char path[512];

	send_raw_from(s.fd, &s.client, bundle, sizeof(bundle) - 1);
	send_raw_from(s.fd, &s.client, trunc, sizeof(trunc) - 1);
	send_raw_from(s.fd, &s.client, junk, sizeof(junk));
	send_raw_from(s.fd, &s.client, "/", 1);
	send_raw_from(s.fd, &s.client, "", 0);
	srv_expect_silence(&s);
	make_session(path, sizeof(path), "strebmd.nFFFF");
	srv_open_msg(&s, path, "strebmd", "strebmd.nFFFF");
	srv_expect_reply(&s, "/nsm/client/open");
	ck_assert_int_eq(rec_get(&rec.opens), 1);
	strebm_nsm_destroy(n);
	rmdir(session_dir);
	close(s.fd);
}
END_TEST

START_TEST(test_foreign_sender_ignored)
{
	struct fakesrv s, other;
	struct strebm_nsm *n = start(&s, true);
	struct rx r;
	lo_message m;
	char path[512];

	srv_open(&other);
	make_session(path, sizeof(path), "strebmd.nGGGG");
	m = lo_message_new();
	lo_message_add_string(m, path);
	lo_message_add_string(m, "evil");
	lo_message_add_string(m, "evil.nXXXX");
	send_from(other.fd, &s.client, "/nsm/client/open", m);
	send_from(other.fd, &s.client, "/nsm/client/save", lo_message_new());
	ck_assert(!recv_on(other.fd, QUIET_MS, &r));
	srv_expect_silence(&s);
	ck_assert_int_eq(rec_get(&rec.opens), 0);
	ck_assert_int_eq(rec_get(&rec.saves), 0);
	srv_open_msg(&s, path, "strebmd", "strebmd.nGGGG");
	srv_expect_reply(&s, "/nsm/client/open");
	pthread_mutex_lock(&rec.lock);
	ck_assert_str_eq(rec.id, "strebmd.nGGGG");
	pthread_mutex_unlock(&rec.lock);
	strebm_nsm_destroy(n);
	rmdir(session_dir);
	close(s.fd);
	close(other.fd);
}
END_TEST

START_TEST(test_announce_refused)
{
	struct fakesrv s;
	struct strebm_nsm *n = start(&s, false);
	lo_message m = lo_message_new();

	lo_message_add_string(m, "/nsm/server/announce");
	lo_message_add_int32(m, STREBM_NSM_ERR_INCOMPATIBLE_API);
	lo_message_add_string(m, "Server is using an incompatible API version.");
	srv_send(&s, "/error", m);
	ck_assert_int_eq(strebm_nsm_wait_open(n, WAIT_MS), -ECONNREFUSED);
	ck_assert(!strebm_nsm_announced(n));
	srv_expect_silence(&s);
	strebm_nsm_destroy(n);
	close(s.fd);
}
END_TEST

START_TEST(test_wait_open_timeout)
{
	struct fakesrv s;
	struct strebm_nsm *n = start(&s, true);
	struct timespec a, b;
	double ms;

	clock_gettime(CLOCK_MONOTONIC, &a);
	ck_assert_int_eq(strebm_nsm_wait_open(n, 120), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = 1e3 * (double)(b.tv_sec - a.tv_sec) + 1e-6 * (double)(b.tv_nsec - a.tv_nsec);
	/* at least the timeout; at most a generous scheduling slack */
	ck_assert_msg(ms >= 119.0 && ms < 2000.0, "waited %.1f ms", ms);
	strebm_nsm_destroy(n);
	close(s.fd);
}
END_TEST

START_TEST(test_message)
{
	struct fakesrv s;
	struct strebm_nsm *n = start(&s, true);
	struct rx r;

	wait_announced(n);
	ck_assert_int_eq(strebm_nsm_message(n, 7, "model state restored"), 0);
	ck_assert(recv_on(s.fd, WAIT_MS, &r));
	ck_assert_str_eq(r.path, "/nsm/client/message");
	ck_assert_str_eq(r.types, "is");
	ck_assert_int_eq(rx_int(&r, 0), 3);
	ck_assert_str_eq(rx_str(&r, 1), "model state restored");
	rx_free(&r);
	ck_assert_int_eq(strebm_nsm_message(n, -2, "x"), 0);
	ck_assert(recv_on(s.fd, WAIT_MS, &r));
	ck_assert_int_eq(rx_int(&r, 0), 0);
	rx_free(&r);
	ck_assert_int_eq(strebm_nsm_message(n, 0, NULL), -EINVAL);
	strebm_nsm_destroy(n);
	close(s.fd);
}
END_TEST

static Suite *nsm_suite(void)
{
	Suite *s = suite_create("nsm");
	TCase *tc;

	tc = tcase_create("url");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_add_loop_test(tc, test_parse_url, 0, (int)(sizeof(url_cases) / sizeof(url_cases[0])));
	tcase_add_test(tc, test_wanted);
	tcase_add_test(tc, test_create_fails_clearly);
	tcase_add_test(tc, test_state_path);
	suite_add_tcase(s, tc);

	tc = tcase_create("protocol");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_announce);
	tcase_add_test(tc, test_open_save);
	tcase_add_test(tc, test_save_fails);
	tcase_add_test(tc, test_open_fails_then_succeeds);
	tcase_add_test(tc, test_deferred_open);
	tcase_add_test(tc, test_deferred_open_fails);
	tcase_add_loop_test(tc, test_malformed, 0, (int)(sizeof(bad_msgs) / sizeof(bad_msgs[0])));
	tcase_add_test(tc, test_garbage_packets);
	tcase_add_test(tc, test_foreign_sender_ignored);
	tcase_add_test(tc, test_announce_refused);
	tcase_add_test(tc, test_wait_open_timeout);
	tcase_add_test(tc, test_message);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return test_run_suite(nsm_suite());
}
