/* SPDX-License-Identifier: MIT */
/*
 * strebmctl: steer a running strebmd over OSC (see io/osc.h for the address
 * space) and print its answers in plain words.
 *
 *   strebmctl [--host H] [--port P] [--timeout S] COMMAND [ARGS]
 *
 * A setting is followed by /strebm/ping: replies come in order, so an error
 * arrives before the pong and the pong confirms the setting was accepted
 * (the worker applies it at the next hop). Exit status: 0 on success, 1 when
 * strebmd answers /strebm/error or does not answer within the timeout, 2 on
 * a usage error. Single-threaded; `monitor` runs until SIGINT or SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <lo/lo.h>

#include "buildconf.h"

#define MAX_SOURCES 16

struct ctl {
	const char *host;
	const char *port;
	double timeout;         /* s */
	int fd;
	unsigned char buf[65536];
};

struct msg {
	char path[256];
	char types[64];
	lo_message m;
	lo_arg **argv;
	int argc;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: strebmctl [--host H] [--port P] [--timeout S] COMMAND [ARGS]\n"
		"\n"
		"commands (N counts sources from 1; leave the value out to query it):\n"
		"  ping                      check that strebmd answers\n"
		"  status                    mode, rate, channels, sources, counters, length-scales\n"
		"  mode [linear|nonlinear|convolutive]   mixing model\n"
		"  lengthscale N [MS]        set and pin source N's length-scale (ms)\n"
		"  learn N [0|1]             1: learn source N's length-scale again; 0: pin it\n"
		"  kernel N [NAME]           rbf, matern12, matern32 or matern52\n"
		"  gain N [DB]               output gain of source N, -120..24 dB\n"
		"  mute N [0|1]              mute source N\n"
		"  freeze [0|1]              1: stop adapting (the separation keeps running)\n"
		"  reset                     restart the model from its initial state\n"
		"  save PATH, load PATH      save or restore the model state\n"
		"  monitor                   live meters, length-scales and counters (Ctrl-C ends)\n"
		"\n"
		"options: --host (default 127.0.0.1), --port (default 9000),\n"
		"         --timeout seconds to wait for an answer (default 2)\n");
}

/* ---- liblo arguments: 4-byte aligned, read with memcpy ---- */

static double arg_num(const struct msg *r, int i)
{
	int32_t iv;
	int64_t hv;
	float fv;
	double dv;

	switch (r->types[i]) {
	case 'i': memcpy(&iv, (const void *)r->argv[i], 4); return iv;
	case 'h': memcpy(&hv, (const void *)r->argv[i], 8); return (double)hv;
	case 'f': memcpy(&fv, (const void *)r->argv[i], 4); return fv;
	case 'd': memcpy(&dv, (const void *)r->argv[i], 8); return dv;
	default: return NAN;
	}
}

static const char *arg_str(const struct msg *r, int i)
{
	return r->types[i] == 's' || r->types[i] == 'S' ? (const char *)r->argv[i] : "?";
}

/* ---- transport ---- */

static int ctl_open(struct ctl *c)
{
	struct addrinfo hints, *res, *it;
	int r;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_DGRAM;
	r = getaddrinfo(c->host, c->port, &hints, &res);
	if (r) {
		fprintf(stderr, "strebmctl: %s port %s: %s\n", c->host, c->port, gai_strerror(r));
		return -1;
	}
	for (it = res; it; it = it->ai_next) {
		c->fd = socket(it->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (c->fd < 0)
			continue;
		/* connected: only the server's datagrams reach us */
		if (connect(c->fd, it->ai_addr, it->ai_addrlen) == 0)
			break;
		close(c->fd);
		c->fd = -1;
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		fprintf(stderr, "strebmctl: cannot reach %s port %s: %s\n", c->host, c->port,
			strerror(errno));
		return -1;
	}
	return 0;
}

static int send_msg(struct ctl *c, const char *path, lo_message m)
{
	size_t n = 0;
	void *data = lo_message_serialise(m, path, NULL, &n);
	ssize_t w;

	lo_message_free(m);
	if (!data)
		return -ENOMEM;
	w = send(c->fd, data, n, 0);
	free(data);
	return w == (ssize_t)n ? 0 : -errno;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/*
 * Next message within timeout seconds (extra: another fd to watch, -1 for
 * none). @return 0, 1 when extra became readable, -ETIMEDOUT, -ECONNREFUSED
 * (nothing listens there) or another negative errno.
 */
static int recv_msg(struct ctl *c, struct msg *r, double timeout, int extra)
{
	double end = now_s() + timeout;

	for (;;) {
		struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN }, { .fd = extra, .events = POLLIN } };
		double left = end - now_s();
		ssize_t n;
		int res = 0, k;

		if (left <= 0)
			return -ETIMEDOUT;
		k = poll(p, extra >= 0 ? 2 : 1, (int)ceil(left * 1000.0));
		if (k < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (k == 0)
			return -ETIMEDOUT;
		if (extra >= 0 && p[1].revents)
			return 1;
		n = recv(c->fd, c->buf, sizeof(c->buf), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		r->m = lo_message_deserialise(c->buf, (size_t)n, &res);
		if (!r->m)
			continue; /* not OSC: ignore */
		snprintf(r->path, sizeof(r->path), "%.*s", (int)sizeof(r->path) - 1, (const char *)c->buf);
		snprintf(r->types, sizeof(r->types), "%.*s", (int)sizeof(r->types) - 1,
			 lo_message_get_types(r->m));
		r->argv = lo_message_get_argv(r->m);
		r->argc = lo_message_get_argc(r->m);
		return 0;
	}
}

static void msg_free(struct msg *r)
{
	lo_message_free(r->m);
	r->m = NULL;
}

static int no_answer(struct ctl *c, int r)
{
	if (r == -ECONNREFUSED)
		fprintf(stderr, "strebmctl: nothing listens on %s port %s (is strebmd running, with OSC on?)\n",
			c->host, c->port);
	else if (r == -ETIMEDOUT)
		fprintf(stderr, "strebmctl: no answer from %s port %s within %g s\n", c->host, c->port,
			c->timeout);
	else
		fprintf(stderr, "strebmctl: %s\n", strerror(-r));
	return 1;
}

static int print_error(const struct msg *r)
{
	if (!strcmp(r->types, "ss"))
		fprintf(stderr, "strebmctl: error: %s: %s\n", arg_str(r, 0), arg_str(r, 1));
	else
		fprintf(stderr, "strebmctl: error (malformed error reply)\n");
	return 1;
}

/*
 * Wait for a reply with path want (NULL: /strebm/pong), skipping others
 * (subscription traffic). @return 0 with r filled, 1 after an error reply
 * or no answer (printed).
 */
static int await(struct ctl *c, const char *want, struct msg *r)
{
	double end = now_s() + c->timeout;

	for (;;) {
		int e = recv_msg(c, r, end - now_s(), -1);
		if (e < 0)
			return no_answer(c, e);
		if (!strcmp(r->path, "/strebm/error")) {
			print_error(r);
			msg_free(r);
			return 1;
		}
		if (!strcmp(r->path, want ? want : "/strebm/pong"))
			return 0;
		msg_free(r);
	}
}

/* Send a setting, then a ping as a barrier. @return exit status. */
static int set(struct ctl *c, const char *path, lo_message m)
{
	struct msg r;
	int e;

	if ((e = send_msg(c, path, m)) < 0 || (e = send_msg(c, "/strebm/ping", lo_message_new())) < 0)
		return no_answer(c, e);
	if (await(c, NULL, &r))
		return 1;
	msg_free(&r);
	return 0;
}

/* Query path (no argument) and wait for its reply with the given types. */
static int query(struct ctl *c, const char *path, const char *types, struct msg *r)
{
	int e = send_msg(c, path, lo_message_new());

	if (e < 0)
		return no_answer(c, e);
	if (await(c, path, r))
		return 1;
	if (strncmp(r->types, types, strlen(types))) {
		fprintf(stderr, "strebmctl: unexpected reply to %s (types '%s')\n", path, r->types);
		msg_free(r);
		return 1;
	}
	return 0;
}

/* ---- argument parsing ---- */

static bool parse_double(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return s[0] && !*end && !errno && isfinite(*v);
}

static bool parse_int(const char *s, long lo, long hi, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(s, &end, 10);
	return s[0] && !*end && !errno && *v >= lo && *v <= hi;
}

static int bad_usage(const char *fmt, const char *what)
{
	fprintf(stderr, "strebmctl: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n(strebmctl --help lists the commands)\n");
	return 2;
}

/* ---- commands ---- */

static int cmd_ping(struct ctl *c)
{
	double t0 = now_s();
	struct msg r;
	int e = send_msg(c, "/strebm/ping", lo_message_new());

	if (e < 0)
		return no_answer(c, e);
	if (await(c, NULL, &r))
		return 1;
	msg_free(&r);
	printf("strebmd at %s port %s answers (%.2f ms)\n", c->host, c->port, 1e3 * (now_s() - t0));
	return 0;
}

static int cmd_status(struct ctl *c)
{
	struct msg r;
	int k, K;
	double rtf;

	if (query(c, "/strebm/status", "siiihhhf", &r))
		return 1;
	K = (int)arg_num(&r, 3);
	rtf = arg_num(&r, 7);
	printf("mode: %s\n", arg_str(&r, 0));
	printf("sample rate: %.0f Hz\n", arg_num(&r, 1));
	printf("channels: %.0f, sources: %d\n", arg_num(&r, 2), K);
	printf("hops: %.0f\n", arg_num(&r, 4));
	printf("xruns: %.0f, underruns: %.0f\n", arg_num(&r, 5), arg_num(&r, 6));
	printf("real-time factor: %.3f\n", arg_num(&r, 7));
	for (k = 0; k < K && 8 + k < r.argc; k++)
		printf("source %d length-scale: %.3f ms\n", k + 1, arg_num(&r, 8 + k));
	msg_free(&r);
	if (query(c, "/strebm/health", "siihhh", &r))
		return 1;
	{
		uint64_t dead;
		unsigned m;
		int n = 0;
		bool running = !strcmp(arg_str(&r, 0), "running");
		printf("audio: %s", running ? "running" : "stopped (the JACK server "
		       "is gone or the device stopped; strebmd waits for it)");
		if (running && rtf > 1.0) /* the worker cannot keep up: outputs drop out */
			printf(", overloaded (the separation needs %.1fx real time: fewer sources, "
			       "a longer hop or another mode)", rtf);
		printf("\n");
		printf("separation: %s%s\n", arg_num(&r, 1) != 0.0 ? "degraded (cannot separate: "
		       "passing the reference microphone through)" : "ok",
		       arg_num(&r, 2) != 0.0 ? ", frozen" : "");
		printf("non-finite input hops: %.0f\n", arg_num(&r, 3));
		memcpy(&dead, (const void *)r.argv[4], 8); /* h: all 64 bits */
		printf("dead inputs:");
		for (m = 0; m < 64; m++)
			if (dead & ((uint64_t)1 << m))
				printf("%s%u", n++ ? "+" : " ", m + 1);
		printf("%s\n", n ? "" : " none");
		printf("commands refused by the engine: %.0f\n", arg_num(&r, 5));
	}
	msg_free(&r);
	return 0;
}

static int cmd_mode(struct ctl *c, int argc, char **argv)
{
	struct msg r;
	lo_message m;

	if (argc == 0) {
		if (query(c, "/strebm/mode", "s", &r))
			return 1;
		printf("mode: %s\n", arg_str(&r, 0));
		msg_free(&r);
		return 0;
	}
	if (argc != 1 || (strcmp(argv[0], "linear") && strcmp(argv[0], "nonlinear") &&
			  strcmp(argv[0], "convolutive")))
		return bad_usage("mode takes linear, nonlinear or convolutive%s", "");
	m = lo_message_new();
	lo_message_add_string(m, argv[0]);
	if (set(c, "/strebm/mode", m))
		return 1;
	printf("mode set to %s (from the next hop)\n", argv[0]);
	return 0;
}

/* Commands on one source: lengthscale, learn, kernel, gain, mute. */
static int cmd_source(struct ctl *c, const char *leaf, int argc, char **argv)
{
	char path[64];
	struct msg r;
	lo_message m;
	long n, flag = 0;
	double v = 0;

	if (argc < 1 || argc > 2 || !parse_int(argv[0], 1, MAX_SOURCES, &n))
		return bad_usage("%s takes a source number N (from 1) and an optional value", leaf);
	snprintf(path, sizeof(path), "/strebm/source/%ld/%s", n, leaf);
	if (argc == 1) {
		bool is_str = !strcmp(leaf, "kernel"), is_flag = !strcmp(leaf, "learn") || !strcmp(leaf, "mute");
		if (query(c, path, is_str ? "s" : is_flag ? "i" : "f", &r))
			return 1;
		if (is_str)
			printf("source %ld kernel: %s\n", n, arg_str(&r, 0));
		else if (!strcmp(leaf, "learn"))
			printf("source %ld length-scale: %s\n", n, arg_num(&r, 0) != 0 ? "learned" : "pinned");
		else if (!strcmp(leaf, "mute"))
			printf("source %ld: %s\n", n, arg_num(&r, 0) != 0 ? "muted" : "not muted");
		else if (!strcmp(leaf, "gain"))
			printf("source %ld gain: %.1f dB\n", n, arg_num(&r, 0));
		else
			printf("source %ld length-scale: %.3f ms\n", n, arg_num(&r, 0));
		msg_free(&r);
		return 0;
	}
	m = lo_message_new();
	if (!strcmp(leaf, "kernel")) {
		lo_message_add_string(m, argv[1]);
	} else if (!strcmp(leaf, "learn") || !strcmp(leaf, "mute")) {
		if (!parse_int(argv[1], 0, 1, &flag)) {
			lo_message_free(m);
			return bad_usage("%s takes 0 or 1", leaf);
		}
		lo_message_add_int32(m, (int32_t)flag);
	} else {
		if (!parse_double(argv[1], &v)) {
			lo_message_free(m);
			return bad_usage("%s takes a number", leaf);
		}
		lo_message_add_float(m, (float)v);
	}
	if (set(c, path, m))
		return 1;
	if (!strcmp(leaf, "kernel"))
		printf("source %ld kernel set to %s\n", n, argv[1]);
	else if (!strcmp(leaf, "learn"))
		printf("source %ld length-scale %s\n", n, flag ? "learned again" : "pinned");
	else if (!strcmp(leaf, "mute"))
		printf("source %ld %s\n", n, flag ? "muted" : "unmuted");
	else if (!strcmp(leaf, "gain"))
		printf("source %ld gain set to %.1f dB\n", n, v);
	else
		printf("source %ld length-scale set to %.3f ms (pinned)\n", n, v);
	return 0;
}

static int cmd_freeze(struct ctl *c, int argc, char **argv)
{
	struct msg r;
	lo_message m;
	long v;

	if (argc == 0) {
		if (query(c, "/strebm/freeze", "i", &r))
			return 1;
		printf("adaptation: %s\n", arg_num(&r, 0) != 0 ? "frozen" : "running");
		msg_free(&r);
		return 0;
	}
	if (argc != 1 || !parse_int(argv[0], 0, 1, &v))
		return bad_usage("freeze takes 0 or 1%s", "");
	m = lo_message_new();
	lo_message_add_int32(m, (int32_t)v);
	if (set(c, "/strebm/freeze", m))
		return 1;
	printf("adaptation %s\n", v ? "frozen" : "resumed");
	return 0;
}

static int cmd_file(struct ctl *c, bool save, int argc, char **argv)
{
	const char *path = save ? "/strebm/save" : "/strebm/load";
	char abs[PATH_MAX + 2];
	struct msg r;
	lo_message m;
	int e;

	if (argc != 1 || !argv[0][0])
		return bad_usage("%s takes one PATH", save ? "save" : "load");
	if (argv[0][0] == '/') {
		snprintf(abs, sizeof(abs), "%s", argv[0]);
	} else {
		/* strebmd runs elsewhere: send an absolute path */
		char cwd[PATH_MAX];
		if (!getcwd(cwd, sizeof(cwd)) || strlen(cwd) + strlen(argv[0]) + 2 > sizeof(abs))
			return bad_usage("cannot make %s absolute", argv[0]);
		size_t a = strlen(cwd), b = strlen(argv[0]);
		memcpy(abs, cwd, a);
		abs[a] = '/';
		memcpy(abs + a + 1, argv[0], b + 1);
	}
	m = lo_message_new();
	lo_message_add_string(m, abs);
	if ((e = send_msg(c, path, m)) < 0)
		return no_answer(c, e);
	if (await(c, path, &r))
		return 1;
	printf("%s %s\n", save ? "model state saved to" : "model state loaded from", arg_str(&r, 0));
	msg_free(&r);
	return 0;
}

static int cmd_monitor(struct ctl *c)
{
	bool tty = isatty(STDOUT_FILENO);
	double meter[MAX_SOURCES] = { 0 }, ell[MAX_SOURCES] = { 0 }, last_sub = 0, last_data;
	int K = 0, sfd, k;
	struct msg r;
	sigset_t mask;
	char line[1024];

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0) {
		perror("strebmctl: signalfd");
		return 1;
	}
	last_data = now_s();
	for (;;) {
		int e;
		if (now_s() - last_sub > 5.0) {
			/* (re)subscribe: survives a strebmd restart */
			lo_message m = lo_message_new();
			lo_message_add_int32(m, 0);
			lo_message_add_float(m, 10.0f);
			send_msg(c, "/strebm/subscribe", m);
			last_sub = now_s();
		}
		e = recv_msg(c, &r, 1.0, sfd);
		if (e == 1)
			break;
		if (e < 0) {
			if (e == -ETIMEDOUT && now_s() - last_data < c->timeout)
				continue;
			if (e != -ETIMEDOUT && e != -ECONNREFUSED)
				return no_answer(c, e);
			if (now_s() - last_data >= c->timeout) {
				close(sfd);
				if (tty)
					printf("\n");
				return no_answer(c, e == -ECONNREFUSED ? e : -ETIMEDOUT);
			}
			continue;
		}
		last_data = now_s();
		if (!strcmp(r.path, "/strebm/error")) {
			print_error(&r);
			msg_free(&r);
			close(sfd);
			return 1;
		}
		if (!strcmp(r.path, "/strebm/meter")) {
			K = r.argc < MAX_SOURCES ? r.argc : MAX_SOURCES;
			for (k = 0; k < K; k++)
				meter[k] = arg_num(&r, k);
		} else if (!strcmp(r.path, "/strebm/lengthscales")) {
			for (k = 0; k < r.argc && k < MAX_SOURCES; k++)
				ell[k] = arg_num(&r, k);
		} else if (!strcmp(r.path, "/strebm/stats") && !strncmp(r.types, "shhhhhffii", 10)) {
			size_t n = 0;
			n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%s hops %.0f xruns %.0f underruns %.0f rtf %.2f",
					      arg_str(&r, 0), arg_num(&r, 8) != 0 ? " (frozen)" : "",
					      arg_num(&r, 1), arg_num(&r, 2), arg_num(&r, 3), arg_num(&r, 6));
			for (k = 0; k < K && n < sizeof(line) - 64; k++)
				n += (size_t)snprintf(line + n, sizeof(line) - n, " | source %d %6.1f dBFS %7.3f ms",
						      k + 1, meter[k], ell[k]);
			if (tty)
				printf("\r\033[K%s", line);
			else
				printf("%s\n", line);
			fflush(stdout);
		}
		msg_free(&r);
	}
	send_msg(c, "/strebm/unsubscribe", lo_message_new());
	close(sfd);
	if (tty)
		printf("\n");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "port", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { .host = "127.0.0.1", .port = "9000", .timeout = 2.0, .fd = -1 };
	const char *cmd;
	long port;
	int o, r, n;
	char **args;

	while ((o = getopt_long(argc, argv, "+H:p:t:hV", opts, NULL)) != -1) {
		switch (o) {
		case 'H':
			c.host = optarg;
			break;
		case 'p':
			if (!parse_int(optarg, 1, 65535, &port))
				return bad_usage("--port takes 1..65535, not '%s'", optarg);
			c.port = optarg;
			break;
		case 't':
			if (!parse_double(optarg, &c.timeout) || c.timeout <= 0 || c.timeout > 3600)
				return bad_usage("--timeout takes seconds (0..3600], not '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("strebmctl %s\n", STREBMD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	args = argv + optind + 1;
	n = argc - optind - 1;
	if (strcmp(cmd, "ping") && strcmp(cmd, "status") && strcmp(cmd, "mode") &&
	    strcmp(cmd, "lengthscale") && strcmp(cmd, "learn") && strcmp(cmd, "kernel") &&
	    strcmp(cmd, "gain") && strcmp(cmd, "mute") && strcmp(cmd, "freeze") &&
	    strcmp(cmd, "reset") && strcmp(cmd, "save") && strcmp(cmd, "load") &&
	    strcmp(cmd, "monitor"))
		return bad_usage("unknown command '%s'", cmd);
	if ((!strcmp(cmd, "ping") || !strcmp(cmd, "status") || !strcmp(cmd, "reset") ||
	     !strcmp(cmd, "monitor")) && n != 0)
		return bad_usage("%s takes no argument", cmd);
	if (ctl_open(&c) < 0)
		return 1;
	if (!strcmp(cmd, "ping"))
		r = cmd_ping(&c);
	else if (!strcmp(cmd, "status"))
		r = cmd_status(&c);
	else if (!strcmp(cmd, "mode"))
		r = cmd_mode(&c, n, args);
	else if (!strcmp(cmd, "freeze"))
		r = cmd_freeze(&c, n, args);
	else if (!strcmp(cmd, "reset")) {
		r = set(&c, "/strebm/reset", lo_message_new());
		if (!r)
			printf("model reset\n");
	} else if (!strcmp(cmd, "save") || !strcmp(cmd, "load"))
		r = cmd_file(&c, !strcmp(cmd, "save"), n, args);
	else if (!strcmp(cmd, "monitor"))
		r = cmd_monitor(&c);
	else
		r = cmd_source(&c, cmd, n, args);
	close(c.fd);
	return r;
}
