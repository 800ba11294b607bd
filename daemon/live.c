/* SPDX-License-Identifier: MIT */
#include "live.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "jack.h"
#include "log.h"
#include "pipeline.h"
#include "setup.h"

struct live {
	struct strebm_config cfg;
	const struct strebmd_live_options *opt;
	struct strebmd_pipeline *pipe;
	struct strebm_jack *jack;
	struct strebm_engine_config ec;
	unsigned rate;
	size_t M;
	double next_status;
	bool rt_ok;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Threads that existed before the mask was set (OpenBLAS makes its pool when
 * loaded) may still take a signal: the handler records it for the loop. */
static volatile sig_atomic_t pending_stop, pending_hup;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		pending_hup = 1;
	else if (sig == SIGTERM || sig == SIGINT)
		pending_stop = 1;
}

void strebmd_signals_block(sigset_t *set)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* ---- hooks (JACK threads) ------------------------------------------------ */

static void hook_audio(void *d, const float *const *in, float *const *out, size_t n)
{
	struct live *l = d;

	strebmd_pipeline_audio(l->pipe, in, out, n);
}

static void hook_xrun(void *d)
{
	struct live *l = d;

	strebmd_pipeline_xrun(l->pipe);
}

static size_t hook_latency(void *d, size_t period)
{
	struct live *l = d;

	return strebmd_pipeline_latency(l->pipe, period);
}

static void hook_message(void *d, int level, const char *msg)
{
	(void)d;
	strebmd_log((enum strebmd_log_level)level, "%s", msg);
}

/* ---- pipeline ------------------------------------------------------------ */

static int build_pipeline(struct live *l)
{
	struct strebmd_pipeline_config pc;

	if (strebmd_engine_config(&l->cfg, l->M, l->rate, &l->ec) < 0)
		return -EINVAL;
	memset(&pc, 0, sizeof(pc));
	pc.engine = l->ec;
	pc.rate = l->rate;
	pc.max_period = strebm_jack_max_period();
	pc.fill = (enum strebmd_fill)l->cfg.underrun_fill;
	pc.rt_priority = l->cfg.realtime ? l->cfg.rt_priority : 0;
	l->pipe = strebmd_pipeline_create(&pc);
	if (!l->pipe) {
		log_error("cannot create the pipeline (out of memory?)");
		return -ENOMEM;
	}
	if (strebmd_pipeline_start(l->pipe, &l->rt_ok) < 0) {
		log_error("cannot start the worker thread");
		return -EIO;
	}
	if (l->cfg.realtime && !l->rt_ok) {
		if (l->cfg.realtime == 2) {
			log_error("audio.realtime=require but realtime scheduling was refused "
				  "(needs CAP_SYS_NICE or an rtprio limit, e.g. LimitRTPRIO=)");
			return -EPERM;
		}
		log_warn("realtime scheduling refused: the worker runs at normal priority "
			 "(underruns are more likely)");
	}
	return 0;
}

static void log_status(struct live *l, const char *what)
{
	struct strebmd_status st;
	char dead[160] = "";
	size_t m, n = 0;

	strebmd_pipeline_status(l->pipe, &st);
	for (m = 0; m < st.M && m < 32; m++)
		if (st.dead_mask & (1u << m))
			n += (size_t)snprintf(dead + n, sizeof(dead) - n, "%s%zu", n ? "," : "", m + 1);
	log_info("%s%s mode, %u sources, %u Hz, hops %lu, rtf %.3f, xruns %lu, underruns %lu, "
		 "non-finite hops %lu, dead inputs %s, latency %.1f ms", what,
		 strebm_mode_name(st.mode), st.K, st.rate, (unsigned long)st.hops, st.rtf,
		 (unsigned long)st.xruns, (unsigned long)st.underruns,
		 (unsigned long)st.nonfinite, n ? dead : "none",
		 st.latency_ms + 1e3 * (double)strebm_jack_period(l->jack) / (double)l->rate);
}

/* ---- reload --------------------------------------------------------------- */

static void reload(struct live *l)
{
	struct strebm_config n;
	char err[PATH_MAX + 256];
	struct strebmd_cmd c;
	size_t i, k;

	strebm_config_defaults(&n);
	if (l->opt->config_file &&
	    strebm_config_load_file(&n, l->opt->config_file, err, sizeof(err)) < 0) {
		log_error("reload rejected, the running configuration is kept: %s", err);
		return;
	}
	for (i = 0; i < l->opt->nsets; i++)
		if (strebm_config_set(&n, l->opt->sets[i], err, sizeof(err)) < 0) {
			log_error("reload rejected: %s", err);
			return;
		}
	if (n.mode != l->cfg.mode) {
		memset(&c, 0, sizeof(c));
		c.type = STREBMD_CMD_MODE;
		c.ivalue = n.mode;
		strebmd_pipeline_post(l->pipe, &c);
	}
	if (n.kernel != l->cfg.kernel)
		for (k = 0; k < l->ec.K; k++) {
			memset(&c, 0, sizeof(c));
			c.type = STREBMD_CMD_KERNEL;
			c.source = (int32_t)k;
			c.ivalue = n.kernel;
			strebmd_pipeline_post(l->pipe, &c);
		}
	if (strcmp(n.connect_inputs, l->cfg.connect_inputs) ||
	    strcmp(n.connect_outputs, l->cfg.connect_outputs))
		strebm_jack_set_connect(l->jack, n.connect_inputs, n.connect_outputs);
	l->cfg.mode = n.mode;
	l->cfg.kernel = n.kernel;
	snprintf(l->cfg.connect_inputs, sizeof(l->cfg.connect_inputs), "%s", n.connect_inputs);
	snprintf(l->cfg.connect_outputs, sizeof(l->cfg.connect_outputs), "%s", n.connect_outputs);
	l->cfg.status_interval = n.status_interval;
	log_info("configuration reloaded");
}

/* ---- main loop ------------------------------------------------------------ */

int strebmd_run_live(const struct strebm_config *cfg, const struct strebmd_live_options *o,
		     const sigset_t *sigs)
{
	struct live l;
	struct strebm_jack_config jc;
	struct strebm_jack_hooks hooks = { hook_audio, hook_xrun, hook_latency, hook_message, NULL };
	char err[512];
	int sfd = -1, ret = -EIO, r;
	bool stop = false, stalled = false;

	memset(&l, 0, sizeof(l));
	l.cfg = *cfg;
	l.opt = o;
	l.M = (size_t)cfg->channels;
	hooks.data = &l;
	if (o->backend != STREBM_BACKEND_JACK) {
		log_error("the portaudio backend is not available yet");
		return -ENOTSUP;
	}
	sfd = signalfd(-1, sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return -errno;
	}
	memset(&jc, 0, sizeof(jc));
	jc.client_name = cfg->client_name;
	jc.server = cfg->server;
	jc.M = l.M;
	jc.K = cfg->sources ? (size_t)cfg->sources : l.M;
	jc.connect_inputs = cfg->connect_inputs;
	jc.connect_outputs = cfg->connect_outputs;
	if (jc.K > jc.M) {
		log_error("%zu sources requested but audio.channels is %zu (the %s mode needs "
			  "sources <= channels)", jc.K, jc.M,
			  strebm_mode_name((enum strebm_mode)cfg->mode));
		goto out;
	}
	l.jack = strebm_jack_create(&jc, &hooks);
	if (!l.jack) {
		log_error("cannot create the JACK backend (%zu ports is too many?)", jc.M + jc.K);
		goto out;
	}
	/* wait for a server: a service may start before it */
	while ((r = strebm_jack_open(l.jack, err, sizeof(err))) == -ENOENT) {
		static int said;
		struct signalfd_siginfo si;
		if (!said++)
			log_warn("%s; waiting for one (strebmd never starts a server)", err);
		if ((poll(&(struct pollfd){ .fd = sfd, .events = POLLIN }, 1, 500) > 0 &&
		     read(sfd, &si, sizeof(si)) == sizeof(si) &&
		     (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)) || pending_stop) {
			ret = 0;
			goto out;
		}
	}
	if (r < 0) {
		log_error("%s", err);
		goto out;
	}
	l.rate = strebm_jack_rate(l.jack);
	if ((r = build_pipeline(&l)) < 0) {
		ret = r;
		goto out;
	}
	if (strebm_jack_activate(l.jack, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto out;
	}
	if (!o->quiet)
		log_info("JACK client '%s': %zu inputs in_1.., %zu outputs source_1.., %u Hz, "
			 "period %zu, window %zu, hop %zu, latency %zu frames (%.1f ms)%s",
			 cfg->client_name, l.ec.M, l.ec.K, l.rate, strebm_jack_period(l.jack),
			 l.ec.T, l.ec.H,
			 strebmd_pipeline_latency(l.pipe, strebm_jack_period(l.jack)),
			 1e3 * (double)strebmd_pipeline_latency(l.pipe, strebm_jack_period(l.jack)) /
				 l.rate,
			 l.rt_ok ? ", realtime worker" : "");
	l.next_status = now_s() + cfg->status_interval;
	while (!stop) {
		struct pollfd pfd = { .fd = sfd, .events = POLLIN };
		struct signalfd_siginfo si;
		double t;

		if (poll(&pfd, 1, 100) > 0) {
			while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				switch (si.ssi_signo) {
				case SIGTERM:
				case SIGINT:
					stop = true;
					break;
				case SIGHUP:
					reload(&l);
					break;
				case SIGUSR1:
					/* test hook: stall or release the worker */
					stalled = !stalled;
					strebmd_pipeline_stall(l.pipe, stalled);
					log_warn("worker %s (SIGUSR1)", stalled ? "stalled" : "released");
					break;
				}
			}
		}
		if (pending_stop)
			stop = true;
		if (pending_hup) {
			pending_hup = 0;
			reload(&l);
		}
		t = now_s();
		switch (strebm_jack_poll(l.jack, t)) {
		case STREBM_JACK_REOPENED:
			strebmd_pipeline_destroy(l.pipe);
			l.pipe = NULL;
			l.rate = strebm_jack_rate(l.jack);
			if ((r = build_pipeline(&l)) < 0) {
				ret = r;
				goto out;
			}
			if (strebm_jack_activate(l.jack, err, sizeof(err)) < 0)
				log_error("%s", err);
			break;
		default:
			break;
		}
		if (t >= l.next_status) {
			if (!o->quiet)
				log_status(&l, "");
			l.next_status = t + l.cfg.status_interval;
		}
	}
	if (!o->quiet)
		log_status(&l, "stopping: ");
	ret = 0;
out:
	strebm_jack_destroy(l.jack); /* closes the client before the pipeline goes */
	strebmd_pipeline_destroy(l.pipe);
	if (sfd >= 0)
		close(sfd);
	return ret;
}
