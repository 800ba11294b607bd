/* SPDX-License-Identifier: MIT */
#include "nsm.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lo/lo.h>

#define NSM_BUF 65536             /* largest UDP payload */
#define NSM_HOST_MAX 256
#define NSM_FOREIGN_LOG_S 10      /* at most one foreign-sender note per this */

enum open_state {
	OPEN_NONE = 0,     /* no open handled yet */
	OPEN_DONE,         /* accepted (answered or deferred) */
	OPEN_FAILED,       /* the first open was refused; another may come */
};

struct strebm_nsm {
	struct strebm_nsm_ops ops;
	void *data;
	int fd, evfd, port;
	struct sockaddr_storage server;
	socklen_t serverlen;
	pthread_t thread;
	bool started;
	atomic_bool stop;
	unsigned char *buf;       /* NSM thread */

	/* sending: every datagram leaves through fd, under send_lock */
	pthread_mutex_t send_lock;

	/* session state, under lock; cond signals changes for wait_open */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum open_state open;
	int open_result;          /* ops->open's result for OPEN_FAILED */
	bool deferred;            /* an open awaits strebm_nsm_open_done() */
	bool refused;             /* the announce was answered /error */
	atomic_bool announced;

	struct timespec foreign_logged;
	bool foreign_ever_logged;
};

static void nlog(struct strebm_nsm *n, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void nlog(struct strebm_nsm *n, int level, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!n->ops.log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	n->ops.log(n->data, level, line);
}

/* ---- URL ---- */

int strebm_nsm_parse_url(const char *url, char *host, size_t hostlen, int *port, char *err,
			 size_t errlen)
{
	static const char udp[] = "osc.udp://";
	const char *h, *hend, *p;
	char *end;
	long v;
	size_t hl;

	if (!err || !errlen) {
		static char dummy[8];
		err = dummy;
		errlen = sizeof(dummy);
	}
	if (!url || !*url) {
		snprintf(err, errlen, "NSM_URL is empty");
		return -EINVAL;
	}
	if (strncmp(url, udp, sizeof(udp) - 1)) {
		if (!strncmp(url, "osc.", 4) && strstr(url, "://")) {
			snprintf(err, errlen, "NSM_URL '%.64s': only osc.udp:// is supported", url);
			return -EPROTONOSUPPORT;
		}
		snprintf(err, errlen, "NSM_URL '%.64s' is not an osc.udp://HOST:PORT/ URL", url);
		return -EINVAL;
	}
	h = url + sizeof(udp) - 1;
	if (*h == '[') {
		h++;
		hend = strchr(h, ']');
		if (!hend || hend[1] != ':') {
			snprintf(err, errlen, "NSM_URL '%.64s': bad [IPv6] host or no port", url);
			return -EINVAL;
		}
		p = hend + 2;
	} else {
		hend = strchr(h, ':');
		if (!hend || memchr(h, '/', (size_t)(hend - h))) {
			snprintf(err, errlen, "NSM_URL '%.64s' has no port", url);
			return -EINVAL;
		}
		p = hend + 1;
	}
	hl = (size_t)(hend - h);
	if (hl == 0 || hl >= NSM_HOST_MAX || (host && hl >= hostlen)) {
		snprintf(err, errlen, "NSM_URL '%.64s': %s host", url, hl ? "over-long" : "no");
		return -EINVAL;
	}
	errno = 0;
	v = strtol(p, &end, 10);
	if (errno || end == p || *p == '-' || *p == '+' || v < 1 || v > 65535 ||
	    (*end && *end != '/')) {
		snprintf(err, errlen, "NSM_URL '%.64s': the port is not 1..65535", url);
		return -EINVAL;
	}
	if (host) {
		memcpy(host, h, hl);
		host[hl] = 0;
	}
	if (port)
		*port = (int)v;
	return 0;
}

bool strebm_nsm_wanted(void)
{
	const char *url = getenv("NSM_URL");

	return url && strebm_nsm_parse_url(url, NULL, 0, NULL, NULL, 0) == 0;
}

int strebm_nsm_state_path(const char *path, char *out, size_t outlen)
{
	int k;

	if (!path || !*path || !out || !outlen)
		return -EINVAL;
	k = snprintf(out, outlen, "%s%s", path, STREBM_NSM_STATE_SUFFIX);
	if (k < 0 || (size_t)k >= outlen) {
		out[0] = 0;
		return -ENAMETOOLONG;
	}
	return 0;
}

/* ---- addresses ---- */

static bool is_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)sa;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		if (IN6_IS_ADDR_LOOPBACK(a6))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a6) && a6->s6_addr[12] == 127;
	}
	return false;
}

static int sa_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return -1;
}

static bool same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->sa_family == AF_INET6)
		return !memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			       &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr));
	return false;
}

/* Only the session manager may talk to us (see nsm.h). */
static bool from_manager(struct strebm_nsm *n, const struct sockaddr *from)
{
	const struct sockaddr *srv = (const struct sockaddr *)&n->server;

	if (sa_port(from) != sa_port(srv))
		return false;
	return same_addr(from, srv) || (is_loopback(from) && is_loopback(srv));
}

/* ---- sending ---- */

static int send_msg(struct strebm_nsm *n, const char *path, lo_message m)
{
	size_t len = 0;
	void *data;
	ssize_t k;
	int r = 0;

	data = lo_message_serialise(m, path, NULL, &len);
	lo_message_free(m);
	if (!data)
		return -ENOMEM;
	pthread_mutex_lock(&n->send_lock);
	k = sendto(n->fd, data, len, MSG_NOSIGNAL, (const struct sockaddr *)&n->server,
		   n->serverlen);
	if (k < 0)
		r = -errno;
	pthread_mutex_unlock(&n->send_lock);
	free(data);
	if (r < 0)
		nlog(n, 4, "nsm: cannot send %s: %s", path, strerror(-r));
	return r;
}

static void send_reply(struct strebm_nsm *n, const char *to, const char *msg)
{
	lo_message m = lo_message_new();

	if (!m)
		return;
	lo_message_add_string(m, to);
	lo_message_add_string(m, msg);
	send_msg(n, "/reply", m);
}

static void send_error(struct strebm_nsm *n, const char *to, int code, const char *msg)
{
	lo_message m = lo_message_new();

	nlog(n, 4, "nsm: %s: %s (error %d)", to, msg, code);
	if (!m)
		return;
	lo_message_add_string(m, to);
	lo_message_add_int32(m, code);
	lo_message_add_string(m, msg);
	send_msg(n, "/error", m);
}

static int open_code(int r)
{
	switch (-r) {
	case EINVAL:
	case EBADMSG:
	case EFBIG:
		return STREBM_NSM_ERR_BAD_PROJECT;
	case EACCES:
	case EPERM:
	case EROFS:
	case ENOSPC:
	case ENOENT:
	case ENOTDIR:
	case EEXIST:
	case ENAMETOOLONG:
		return STREBM_NSM_ERR_CREATE_FAILED;
	case EAGAIN:
	case EBUSY:
	case ETIMEDOUT:
		return STREBM_NSM_ERR_NOT_NOW;
	default:
		return STREBM_NSM_ERR_GENERAL;
	}
}

static int save_code(int r)
{
	return r == -EAGAIN || r == -EBUSY || r == -ETIMEDOUT ? STREBM_NSM_ERR_NOT_NOW
							       : STREBM_NSM_ERR_GENERAL;
}

/* ---- handlers (NSM thread) ---- */

/* liblo's arguments are only 4-byte aligned: read them by copy */
static int32_t arg_i32(const lo_arg *a)
{
	int32_t v;

	memcpy(&v, (const void *)a, sizeof(v));
	return v;
}

static const char *arg_str(const char *types, lo_arg **argv, int i)
{
	return types[i] == LO_STRING || types[i] == LO_SYMBOL ? (const char *)argv[i] : NULL;
}

static void on_open(struct strebm_nsm *n, const char *types, lo_arg **argv, int argc)
{
	static const char me[] = "/nsm/client/open";
	const char *path, *display, *id;
	char err[512] = "";
	enum open_state st;
	bool deferred;
	int r;

	if (argc != 3 || !(path = arg_str(types, argv, 0)) || !(display = arg_str(types, argv, 1)) ||
	    !(id = arg_str(types, argv, 2))) {
		send_error(n, me, STREBM_NSM_ERR_GENERAL,
			   "expects s:path s:display_name s:client_id");
		return;
	}
	if (path[0] != '/' || strlen(path) > STREBM_NSM_MAX_PATH) {
		send_error(n, me, STREBM_NSM_ERR_GENERAL,
			   "the path must be absolute and at most 4000 bytes");
		return;
	}
	if (!id[0] || strlen(id) > STREBM_NSM_MAX_CLIENT_ID) {
		send_error(n, me, STREBM_NSM_ERR_GENERAL,
			   "the client id must be 1 to 63 bytes (a JACK client name)");
		return;
	}
	pthread_mutex_lock(&n->lock);
	st = n->open;
	deferred = n->deferred;
	pthread_mutex_unlock(&n->lock);
	if (st == OPEN_DONE) {
		send_error(n, me, STREBM_NSM_ERR_NOT_NOW,
			   deferred ? "the previous open is still in progress"
				    : "strebmd cannot switch sessions; restart it");
		return;
	}
	nlog(n, 6, "nsm: open %s as '%s' (%s)", path, id, display);
	r = n->ops.open(n->data, path, display, id, err, sizeof(err));
	pthread_mutex_lock(&n->lock);
	if (r >= 0) {
		n->open = OPEN_DONE;
		n->deferred = r > 0; /* STREBM_NSM_DEFER */
	} else {
		n->open = OPEN_FAILED;
		n->open_result = r;
	}
	pthread_cond_broadcast(&n->cond);
	pthread_mutex_unlock(&n->lock);
	if (r == 0)
		send_reply(n, me, "OK");
	else if (r < 0)
		send_error(n, me, open_code(r), *err ? err : strerror(-r));
}

static void on_save(struct strebm_nsm *n, int argc)
{
	static const char me[] = "/nsm/client/save";
	char err[512] = "";
	enum open_state st;
	bool deferred;
	int r;

	if (argc != 0) {
		send_error(n, me, STREBM_NSM_ERR_GENERAL, "expects no argument");
		return;
	}
	pthread_mutex_lock(&n->lock);
	st = n->open;
	deferred = n->deferred;
	pthread_mutex_unlock(&n->lock);
	if (st != OPEN_DONE) {
		send_error(n, me, STREBM_NSM_ERR_NO_SESSION_OPEN, "no session is open");
		return;
	}
	if (deferred) {
		send_error(n, me, STREBM_NSM_ERR_NOT_NOW, "the session is still being opened");
		return;
	}
	r = n->ops.save(n->data, err, sizeof(err));
	if (r == 0) {
		nlog(n, 7, "nsm: saved");
		send_reply(n, me, "OK");
	} else {
		send_error(n, me, save_code(r), *err ? err : strerror(r < 0 ? -r : EIO));
	}
}

/* /reply s:path ... and /error s:path i:code s:message from the manager */
static void on_answer(struct strebm_nsm *n, bool error, const char *types, lo_arg **argv,
		      int argc)
{
	const char *to = argc >= 1 ? arg_str(types, argv, 0) : NULL;

	if (!to) {
		nlog(n, 7, "nsm: ignoring a malformed %s", error ? "/error" : "/reply");
		return;
	}
	if (error) {
		const char *msg = argc >= 3 ? arg_str(types, argv, 2) : NULL;
		int code = argc >= 2 && types[1] == LO_INT32 ? arg_i32(argv[1]) : 0;
		if (!strcmp(to, "/nsm/server/announce")) {
			nlog(n, 3, "nsm: the session manager refused us: %s (error %d)",
			     msg ? msg : "no reason given", code);
			pthread_mutex_lock(&n->lock);
			n->refused = true;
			pthread_cond_broadcast(&n->cond);
			pthread_mutex_unlock(&n->lock);
		} else {
			nlog(n, 4, "nsm: the session manager answered %s with an error: %s (%d)", to,
			     msg ? msg : "no reason given", code);
		}
		return;
	}
	if (!strcmp(to, "/nsm/server/announce")) {
		const char *msg = argc >= 2 ? arg_str(types, argv, 1) : NULL;
		const char *name = argc >= 3 ? arg_str(types, argv, 2) : NULL;
		const char *caps = argc >= 4 ? arg_str(types, argv, 3) : NULL;
		atomic_store(&n->announced, true);
		nlog(n, 6, "nsm: under session management by %s (capabilities %s)%s%s",
		     name ? name : "an unnamed manager", caps && *caps ? caps : "none",
		     msg && *msg ? ": " : "", msg ? msg : "");
	} else {
		nlog(n, 7, "nsm: the session manager acknowledged %s", to);
	}
}

static void route(struct strebm_nsm *n, const char *path, const char *types, lo_arg **argv,
		  int argc)
{
	if (!strcmp(path, "/nsm/client/open"))
		on_open(n, types, argv, argc);
	else if (!strcmp(path, "/nsm/client/save"))
		on_save(n, argc);
	else if (!strcmp(path, "/nsm/client/session_is_loaded")) {
		nlog(n, 7, "nsm: the session is loaded");
		if (n->ops.session_is_loaded)
			n->ops.session_is_loaded(n->data);
	} else if (!strcmp(path, "/reply"))
		on_answer(n, false, types, argv, argc);
	else if (!strcmp(path, "/error"))
		on_answer(n, true, types, argv, argc);
	else
		nlog(n, 7, "nsm: ignoring %.128s", path);
}

static struct timespec now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts;
}

static void handle(struct strebm_nsm *n, size_t len, const struct sockaddr *from)
{
	lo_message m;
	int result = 0;
	const char *path;

	if (!from_manager(n, from)) {
		struct timespec t = now_mono();
		if (!n->foreign_ever_logged || t.tv_sec - n->foreign_logged.tv_sec >= NSM_FOREIGN_LOG_S) {
			nlog(n, 7, "nsm: ignoring a datagram from someone other than the session manager");
			n->foreign_logged = t;
			n->foreign_ever_logged = true;
		}
		return;
	}
	if (len == 0 || n->buf[0] != '/') {
		nlog(n, 7, "nsm: ignoring a bundle or a malformed packet");
		return;
	}
	path = lo_get_path(n->buf, (ssize_t)len);
	m = path ? lo_message_deserialise(n->buf, len, &result) : NULL;
	if (!m) {
		nlog(n, 7, "nsm: ignoring a malformed packet (liblo %d)", result);
		return;
	}
	{
		const char *types = lo_message_get_types(m);
		route(n, path, types ? types : "", lo_message_get_argv(m), lo_message_get_argc(m));
	}
	lo_message_free(m);
}

static void *nsm_thread(void *arg)
{
	struct strebm_nsm *n = arg;
	struct pollfd fds[2];

	fds[0].fd = n->fd;
	fds[0].events = POLLIN;
	fds[1].fd = n->evfd;
	fds[1].events = POLLIN;
	while (!atomic_load(&n->stop)) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			nlog(n, 3, "nsm: poll: %s", strerror(errno));
			break;
		}
		if (atomic_load(&n->stop))
			break;
		while (fds[0].revents & POLLIN) {
			struct sockaddr_storage from;
			socklen_t fromlen = sizeof(from);
			ssize_t k = recvfrom(n->fd, n->buf, NSM_BUF - 1, MSG_DONTWAIT,
					     (struct sockaddr *)&from, &fromlen);
			if (k < 0)
				break;
			n->buf[k] = 0;
			handle(n, (size_t)k, (struct sockaddr *)&from);
			if (atomic_load(&n->stop))
				break;
		}
	}
	return NULL;
}

/* ---- lifecycle ---- */

static int open_socket(struct strebm_nsm *n, const char *host, int port, char *err, size_t errlen)
{
	struct addrinfo hints, *res = NULL, *it;
	char service[16];
	int r, last = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%d", port);
	r = getaddrinfo(host, service, &hints, &res);
	if (r) {
		snprintf(err, errlen, "nsm: cannot resolve the session manager's host %s: %s", host,
			 gai_strerror(r));
		return -EHOSTUNREACH;
	}
	for (it = res; it; it = it->ai_next) {
		struct sockaddr_storage local, bound;
		socklen_t boundlen = sizeof(bound);
		int fd;

		if (it->ai_addrlen > sizeof(n->server))
			continue;
		fd = socket(it->ai_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			last = errno;
			continue;
		}
		memset(&local, 0, sizeof(local));
		local.ss_family = (sa_family_t)it->ai_family;
		if (it->ai_family == AF_INET && is_loopback(it->ai_addr))
			((struct sockaddr_in *)&local)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		else if (it->ai_family == AF_INET6 && is_loopback(it->ai_addr) &&
			 IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)it->ai_addr)->sin6_addr))
			((struct sockaddr_in6 *)&local)->sin6_addr = in6addr_loopback;
		if (bind(fd, (struct sockaddr *)&local,
			 it->ai_family == AF_INET ? sizeof(struct sockaddr_in)
						  : sizeof(struct sockaddr_in6)) < 0 ||
		    getsockname(fd, (struct sockaddr *)&bound, &boundlen) < 0) {
			last = errno;
			close(fd);
			continue;
		}
		memcpy(&n->server, it->ai_addr, it->ai_addrlen);
		n->serverlen = it->ai_addrlen;
		n->fd = fd;
		n->port = sa_port((struct sockaddr *)&bound);
		freeaddrinfo(res);
		return 0;
	}
	freeaddrinfo(res);
	snprintf(err, errlen, "nsm: cannot open a socket towards %s port %d: %s", host, port,
		 strerror(last ? last : EADDRNOTAVAIL));
	return last ? -last : -EADDRNOTAVAIL;
}

static int announce(struct strebm_nsm *n, const char *app, const char *exe)
{
	lo_message m = lo_message_new();

	if (!m)
		return -ENOMEM;
	lo_message_add_string(m, app);
	lo_message_add_string(m, STREBM_NSM_CAPABILITIES);
	lo_message_add_string(m, exe);
	lo_message_add_int32(m, STREBM_NSM_API_MAJOR);
	lo_message_add_int32(m, STREBM_NSM_API_MINOR);
	lo_message_add_int32(m, (int32_t)getpid());
	return send_msg(n, "/nsm/server/announce", m);
}

struct strebm_nsm *strebm_nsm_create(const char *nsm_url, const char *app_name,
				     const char *exe_name, const struct strebm_nsm_ops *ops,
				     void *data, char *err, size_t errlen)
{
	struct strebm_nsm *n;
	pthread_condattr_t ca;
	char dummy[8], host[NSM_HOST_MAX];
	sigset_t all, old;
	int port = 0, r;

	if (!err || !errlen) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = 0;
	if (!ops || !ops->open || !ops->save || !app_name || !*app_name || !exe_name ||
	    !*exe_name) {
		snprintf(err, errlen, "nsm: invalid arguments");
		return NULL;
	}
	if (!nsm_url)
		nsm_url = getenv("NSM_URL");
	if (!nsm_url) {
		snprintf(err, errlen, "nsm: NSM_URL is not set");
		return NULL;
	}
	if (strebm_nsm_parse_url(nsm_url, host, sizeof(host), &port, err, errlen) < 0)
		return NULL;
	n = calloc(1, sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "nsm: out of memory");
		return NULL;
	}
	n->ops = *ops;
	n->data = data;
	n->fd = n->evfd = -1;
	pthread_mutex_init(&n->send_lock, NULL);
	pthread_mutex_init(&n->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&n->cond, &ca);
	pthread_condattr_destroy(&ca);
	n->buf = malloc(NSM_BUF);
	if (!n->buf) {
		snprintf(err, errlen, "nsm: out of memory");
		goto fail;
	}
	if (open_socket(n, host, port, err, errlen) < 0)
		goto fail;
	n->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (n->evfd < 0) {
		snprintf(err, errlen, "nsm: eventfd: %s", strerror(errno));
		goto fail;
	}
	/* the thread takes no signals: main reads them from a signalfd */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&n->thread, NULL, nsm_thread, n);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r) {
		snprintf(err, errlen, "nsm: cannot start the thread: %s", strerror(r));
		goto fail;
	}
	n->started = true;
	/* ready to answer open: announce */
	r = announce(n, app_name, exe_name);
	if (r < 0) {
		snprintf(err, errlen, "nsm: cannot send the announce to %s: %s", nsm_url,
			 strerror(-r));
		goto fail;
	}
	nlog(n, 6, "nsm: announced to %s as %s", nsm_url, app_name);
	return n;
fail:
	strebm_nsm_destroy(n);
	return NULL;
}

void strebm_nsm_destroy(struct strebm_nsm *n)
{
	if (!n)
		return;
	if (n->started) {
		uint64_t one = 1;
		atomic_store(&n->stop, true);
		(void)!write(n->evfd, &one, sizeof(one));
		pthread_join(n->thread, NULL);
	}
	if (n->fd >= 0)
		strebm_nsm_open_done(n, -ECANCELED, "strebmd stopped before the session opened");
	if (n->fd >= 0)
		close(n->fd);
	if (n->evfd >= 0)
		close(n->evfd);
	pthread_cond_destroy(&n->cond);
	pthread_mutex_destroy(&n->lock);
	pthread_mutex_destroy(&n->send_lock);
	free(n->buf);
	free(n);
}

int strebm_nsm_wait_open(struct strebm_nsm *n, int timeout_ms)
{
	struct timespec until;
	int r = 0;

	if (!n)
		return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &until);
	if (timeout_ms >= 0) {
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&n->lock);
	while (n->open == OPEN_NONE && !n->refused && r == 0) {
		if (timeout_ms < 0)
			pthread_cond_wait(&n->cond, &n->lock);
		else
			r = pthread_cond_timedwait(&n->cond, &n->lock, &until);
	}
	if (n->open == OPEN_DONE)
		r = 0;
	else if (n->open == OPEN_FAILED)
		r = n->open_result;
	else if (n->refused)
		r = -ECONNREFUSED;
	else
		r = -ETIMEDOUT;
	pthread_mutex_unlock(&n->lock);
	return r;
}

int strebm_nsm_open_done(struct strebm_nsm *n, int r, const char *msg)
{
	bool pending;

	if (!n)
		return -EINVAL;
	pthread_mutex_lock(&n->lock);
	pending = n->deferred;
	n->deferred = false;
	if (pending && r < 0) {
		/* the open did not complete after all: another may come */
		n->open = OPEN_FAILED;
		n->open_result = r;
	}
	pthread_mutex_unlock(&n->lock);
	if (!pending)
		return -EALREADY;
	if (r >= 0)
		send_reply(n, "/nsm/client/open", msg && *msg ? msg : "OK");
	else
		send_error(n, "/nsm/client/open", open_code(r), msg && *msg ? msg : strerror(-r));
	return 0;
}

int strebm_nsm_message(struct strebm_nsm *n, int priority, const char *msg)
{
	lo_message m;

	if (!n || !msg)
		return -EINVAL;
	m = lo_message_new();
	if (!m)
		return -ENOMEM;
	lo_message_add_int32(m, priority < 0 ? 0 : priority > 3 ? 3 : priority);
	lo_message_add_string(m, msg);
	return send_msg(n, "/nsm/client/message", m);
}

bool strebm_nsm_announced(const struct strebm_nsm *n)
{
	return n && atomic_load(&n->announced);
}

int strebm_nsm_port(const struct strebm_nsm *n)
{
	return n ? n->port : 0;
}
