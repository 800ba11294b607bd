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
#include "notify.h"
#include "nsm.h"
#include "osc.h"
#include "pa.h"
#include "pipeline.h"
#include "rtprio.h"
#include "setup.h"
#include "statefile.h"

#define STATE_TIMEOUT_MS 2000

struct live {
	struct strebm_config cfg;
	const struct strebmd_live_options *opt;
	struct strebmd_pipeline *pipe;
	struct strebm_jack *jack; /* one of jack and pa */
	struct strebm_pa *pa;
	struct strebmd_osc *osc;
	struct strebm_nsm *nsm;      /* under a session manager (NSM_URL) */
	char nsm_client[64];
	char nsm_state[STREBM_CONFIG_STR];
	pthread_mutex_t state_lock;  /* the OSC and NSM threads share state_io */
	struct strebmd_watchdog *wd;
	uint64_t refused_seen;       /* refused commands already logged */
	struct strebm_engine_config ec;
	unsigned rate;
	size_t M;
	double next_status;
	uint64_t loops;
	bool ready;
	void *state_io; /* OSC thread: a state-sized buffer */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static size_t be_period(const struct live *l)
{
	return l->jack ? strebm_jack_period(l->jack) : strebm_pa_period(l->pa);
}

static bool be_active(const struct live *l)
{
	return l->jack ? strebm_jack_active(l->jack) : strebm_pa_active(l->pa);
}

/* Threads that existed before the mask was set (OpenBLAS makes its pool when
 * loaded) may still take a signal: the handler records it for the loop. */
/* lock-free atomics: async-signal-safe, and race-free across threads */
static atomic_int pending_stop, pending_hup, pending_usr1;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		atomic_store(&pending_hup, 1);
	else if (sig == SIGUSR1)
		atomic_store(&pending_usr1, 1);
	else if (sig == SIGTERM || sig == SIGINT)
		atomic_store(&pending_stop, 1);
}

void strebmd_signals_block(sigset_t *set)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, set, NULL);
}

/* ---- JACK hooks (JACK threads) ------------------------------------------- */

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

/* ---- OSC ops (OSC thread) -------------------------------------------------- */

static int osc_post(void *d, const struct strebmd_cmd *cmd)
{
	struct live *l = d;

	return strebmd_pipeline_post(l->pipe, cmd);
}

static void osc_status(void *d, struct strebmd_status *st)
{
	struct live *l = d;

	strebmd_pipeline_status(l->pipe, st);
	st->running = be_active(l);
}

/* Take the state lock for a model-state transfer; fails (unlocked) while
 * there is no pipeline (before the stream starts, during a rebuild). */
static int lock_pipe(struct live *l, char *err, size_t errlen)
{
	pthread_mutex_lock(&l->state_lock);
	if (!l->pipe) {
		pthread_mutex_unlock(&l->state_lock);
		snprintf(err, errlen, "not running yet");
		return -EAGAIN;
	}
	return 0;
}

static int osc_save(void *d, const char *path, char *err, size_t errlen)
{
	struct live *l = d;
	size_t len = 0;
	int r;

	if (lock_pipe(l, err, errlen) < 0)
		return -EAGAIN;
	r = strebmd_pipeline_save_state(l->pipe, l->state_io, strebmd_pipeline_state_size(l->pipe),
					&len, STATE_TIMEOUT_MS);
	if (r < 0) {
		pthread_mutex_unlock(&l->state_lock);
		snprintf(err, errlen, "the worker did not hand over its state (%s)", strerror(-r));
		return r;
	}
	r = strebm_statefile_write(path, l->state_io, len, err, errlen);
	pthread_mutex_unlock(&l->state_lock);
	if (r == 0)
		log_info("model state saved to %s", path);
	return r;
}

static int osc_load(void *d, const char *path, char *err, size_t errlen)
{
	struct live *l = d;
	size_t len = 0;
	int r;

	if (lock_pipe(l, err, errlen) < 0)
		return -EAGAIN;
	r = strebm_statefile_read(path, l->state_io, strebmd_pipeline_state_size(l->pipe), &len,
				  err, errlen);
	if (r < 0) { /* err says why */
		pthread_mutex_unlock(&l->state_lock);
		return r;
	}
	r = strebmd_pipeline_load_state(l->pipe, l->state_io, len, STATE_TIMEOUT_MS);
	pthread_mutex_unlock(&l->state_lock);
	if (r == -EINVAL)
		snprintf(err, errlen, "%s: the state does not fit this model (channels, sources, "
			 "window or hop differ) or is corrupt", path);
	else if (r < 0)
		snprintf(err, errlen, "the worker did not take the state (%s)", strerror(-r));
	else
		log_info("model state loaded from %s", path);
	return r;
}

static void osc_log(void *d, int level, const char *msg)
{
	(void)d;
	strebmd_log((enum strebmd_log_level)level, "%s", msg);
}

/* ---- NSM ops (NSM thread) --------------------------------------------------- */

static int nsm_open(void *d, const char *path, const char *display, const char *id, char *err,
		    size_t errlen)
{
	struct live *l = d;

	(void)display;
	snprintf(l->nsm_client, sizeof(l->nsm_client), "%s", id);
	if (strebm_nsm_state_path(path, l->nsm_state, sizeof(l->nsm_state)) < 0) {
		snprintf(err, errlen, "session path too long");
		return -ENAMETOOLONG;
	}
	return 0;
}

static int nsm_save(void *d, char *err, size_t errlen)
{
	struct live *l = d;

	return osc_save(l, l->nsm_state, err, errlen);
}

static void nsm_log(void *d, int level, const char *msg)
{
	(void)d;
	strebmd_log((enum strebmd_log_level)level, "nsm: %s", msg);
}

/* ---- pipeline ------------------------------------------------------------ */

static int build_pipeline(struct live *l)
{
	struct strebmd_pipeline_config pc;
	char msg[512];
	int prio = l->cfg.rt_priority, r;

	if (strebmd_engine_config(&l->cfg, l->M, l->rate, &l->ec) < 0)
		return -EINVAL;
	memset(&pc, 0, sizeof(pc));
	pc.engine = l->ec;
	pc.rate = l->rate;
	/* PortAudio hands exactly its period to every callback */
	pc.max_period = l->jack ? strebm_jack_max_period() : strebm_pa_period(l->pa);
	pc.fill = (enum strebmd_fill)l->cfg.underrun_fill;
	l->pipe = strebmd_pipeline_create(&pc);
	free(l->state_io);
	l->state_io = l->pipe ? malloc(strebmd_pipeline_state_size(l->pipe) + 1) : NULL;
	if (!l->pipe || !l->state_io) {
		log_error("cannot create the pipeline (out of memory?)");
		return -ENOMEM;
	}
	if (*l->cfg.state_file) {
		enum strebm_mode sm;
		if (strebmd_state_restore(&l->cfg, strebmd_pipeline_engine(l->pipe), !l->nsm, &sm) == 0)
			log_info("model state restored from %s (%s mode%s)", l->cfg.state_file,
				 strebm_mode_name(sm), strebmd_state_note(sm));
	}
	if (strebmd_pipeline_start(l->pipe) < 0) {
		log_error("cannot start the worker thread");
		return -EIO;
	}
	/* the worker runs just below the server's process threads, so it never
	 * delays them, and above everything else */
	if (prio == 0) {
		int jp = l->jack ? strebm_jack_rt_priority(l->jack) : -1;
		prio = jp > 1 ? jp - 1 : 1;
	}
	r = strebmd_rt_apply((enum strebmd_rt_mode)l->cfg.realtime,
			     strebmd_pipeline_thread(l->pipe), prio, msg, sizeof(msg));
	if (r < 0) {
		log_error("%s", msg);
		return r;
	}
	if (r > 0)
		log_warn("%s", msg);
	else if (*msg)
		log_info("%s", msg);
	return 0;
}

/* An allow list without an item accepts no sender at all, this machine's
 * included: legal, but rarely meant. */
static void warn_empty_allow(const struct strebm_config *c)
{
	if (!c->osc_allow[strspn(c->osc_allow, ", \t")])
		log_warn("osc.allow is empty (%s): OSC accepts no sender, not even this machine "
			 "('*' accepts any)", strebm_config_origin(c, "osc.allow"));
}

/* Input to output, frames: the engine, one period, and (PortAudio) what the
 * device reports for its own buffers. The same figure at start and in the
 * status lines. */
static size_t total_latency(const struct live *l)
{
	return l->pa ? strebm_pa_latency(l->pa, NULL) : strebmd_pipeline_latency(l->pipe, be_period(l));
}

/* A command OSC accepted that the engine then refused at its hop (the
 * state it was checked against changed in between): say so. */
static void refused_note(struct live *l)
{
	static const char *const names[] = {
		[STREBMD_CMD_MODE] = "mode", [STREBMD_CMD_ELL] = "lengthscale",
		[STREBMD_CMD_LEARN] = "learn", [STREBMD_CMD_KERNEL] = "kernel",
		[STREBMD_CMD_GAIN] = "gain", [STREBMD_CMD_MUTE] = "mute",
		[STREBMD_CMD_FREEZE] = "freeze", [STREBMD_CMD_RESET] = "reset",
	};
	struct strebmd_status st;
	const char *name = NULL;

	strebmd_pipeline_status(l->pipe, &st);
	if (st.refused == l->refused_seen)
		return;
	if (st.refused_type > 0 && (size_t)st.refused_type < sizeof(names) / sizeof(names[0]))
		name = names[st.refused_type];
	log_warn("the engine refused %lu command%s at its hop (the last: %s): not applied",
		 (unsigned long)(st.refused - l->refused_seen), st.refused - l->refused_seen == 1 ? "" : "s",
		 name ? name : "?");
	l->refused_seen = st.refused;
}

static void status_line(struct live *l, char *buf, size_t len)
{
	struct strebmd_status st;
	char dead[4 * 64] = "";
	size_t m, n = 0;

	strebmd_pipeline_status(l->pipe, &st);
	for (m = 0; m < st.M && m < 64; m++)
		if (st.dead_mask & ((uint64_t)1 << m))
			n += (size_t)snprintf(dead + n, sizeof(dead) - n, "%s%zu", n ? "+" : "",
					      m + 1);
	snprintf(buf, len, "%s mode, %u sources, %u Hz, hops %lu, rtf %.3f (mean %.3f), xruns %lu, "
		 "underruns %lu (+%lu after server xruns), non-finite hops %lu, dead inputs %s, latency %.1f ms%s%s",
		 strebm_mode_name(st.mode), st.K, st.rate, (unsigned long)st.hops, st.rtf,
		 st.rtf_mean, (unsigned long)st.xruns, (unsigned long)st.underruns, (unsigned long)st.early,
		 (unsigned long)st.nonfinite,
		 n ? dead : "none",
		 1e3 * (double)total_latency(l) / (double)l->rate,
		 st.degraded ? ", degraded (cannot separate: passing the reference through)" : "",
		 be_active(l) ? "" : (l->jack ? ", JACK server gone" : ", audio stopped"));
}

/* ---- reload --------------------------------------------------------------- */

static void reload(struct live *l)
{
	struct strebm_config n, old = l->cfg;
	struct strebm_config_changes ch;
	char err[STREBM_CONFIG_ERR];
	struct strebmd_cmd c;
	size_t i, k;

	strebmd_notify_reloading();
	if (strebm_config_load(&n, l->opt->config_file, l->opt->sets, l->opt->nsets, err,
			       sizeof(err)) < 0 ||
	    strebm_config_validate(&n, true, err, sizeof(err)) < 0) {
		strebmd_log_always(LOG_LVL_ERROR,
				   "reload rejected, the running configuration is kept: %s", err);
		strebmd_notify_ready();
		return;
	}
	/* the one reloadable key only the OSC server can check: before anything
	 * is applied, so a bad list rejects the whole reload */
	if (l->osc && strcmp(n.osc_allow, old.osc_allow) &&
	    strebmd_osc_set_allow(l->osc, n.osc_allow, err, sizeof(err)) < 0) {
		strebmd_log_always(LOG_LVL_ERROR, "reload rejected, the running configuration is "
				   "kept: %s (%s)", err, strebm_config_origin(&n, "osc.allow"));
		strebmd_notify_ready();
		return;
	}
	if (l->osc && strcmp(n.osc_allow, old.osc_allow))
		warn_empty_allow(&n);
	strebm_config_reload(&l->cfg, &n, &ch);
	for (i = 0; i < ch.nrestart; i++)
		log_warn("%s changed: restart needed (the running value is kept)", ch.restart[i]);
	if (l->cfg.mode != old.mode) {
		struct strebmd_status st;
		strebmd_pipeline_status(l->pipe, &st);
		if (l->cfg.mode == STREBM_MODE_CONVOLUTIVE && st.no_convolutive) {
			/* said here, not as a refusal after "reloaded" */
			log_warn("engine.mode = convolutive needs an even window and hop <= window / 2 "
				 "(engine.window, engine.hop; restart needed): the running mode is kept");
			l->cfg.mode = old.mode;
			ch.nreload--;
		} else {
			memset(&c, 0, sizeof(c));
			c.type = STREBMD_CMD_MODE;
			c.ivalue = l->cfg.mode;
			strebmd_pipeline_post(l->pipe, &c);
		}
	}
	if (l->cfg.kernel != old.kernel)
		for (k = 0; k < l->ec.K; k++) {
			memset(&c, 0, sizeof(c));
			c.type = STREBMD_CMD_KERNEL;
			c.source = (int32_t)k;
			c.ivalue = l->cfg.kernel;
			strebmd_pipeline_post(l->pipe, &c);
		}
	strebmd_pipeline_set_fill(l->pipe, (enum strebmd_fill)l->cfg.underrun_fill);
	if (l->jack && (strcmp(l->cfg.connect_inputs, old.connect_inputs) ||
			strcmp(l->cfg.connect_outputs, old.connect_outputs)))
		strebm_jack_set_connect(l->jack, l->cfg.connect_inputs, l->cfg.connect_outputs);
	log_info("configuration reloaded (%zu key%s changed)", ch.nreload,
		 ch.nreload == 1 ? "" : "s");
	strebmd_notify_ready();
}

/* ---- main loop ------------------------------------------------------------ */

static bool wait_for_server(struct live *l, int sfd)
{
	char err[512];
	int r;
	bool said = false;

	while ((r = strebm_jack_open(l->jack, err, sizeof(err))) == -ENOENT) {
		struct signalfd_siginfo si;
		if (!said) {
			log_warn("%s; waiting for one (strebmd never starts a server)", err);
			said = true;
		}
		strebmd_notify_status("waiting for a JACK server");
		if (poll(&(struct pollfd){ .fd = sfd, .events = POLLIN }, 1, 500) > 0 &&
		    read(sfd, &si, sizeof(si)) == sizeof(si))
			/* kept for the main loop (a stop is a clean exit, a reload
			 * is done once the server is there) */
			on_signal((int)si.ssi_signo);
		if (atomic_load(&pending_stop))
			return false;
		/* the watchdog sees the main loop alive */
		l->loops++;
		strebmd_watchdog_poll(l->wd, l->loops, l->loops);
	}
	if (r < 0) {
		log_error("%s", err);
		return false;
	}
	return true;
}

int strebmd_run_live(const struct strebm_config *cfg, const struct strebmd_live_options *o,
		     const sigset_t *sigs)
{
	static const struct strebmd_osc_ops ops = { osc_post, osc_status, osc_save, osc_load,
						    osc_log };
	struct live l;
	struct strebm_jack_config jc;
	struct strebm_jack_hooks hooks = { hook_audio, hook_xrun, hook_latency, hook_message, NULL };
	char err[512], line[512];
	int sfd = -1, ret = -EIO, r;
	bool stop = false, stalled = false;
	/* STREBMD_TEST_HOOKS=1: SIGUSR1 stalls/releases the worker (watchdog tests) */
	bool test_hooks = getenv("STREBMD_TEST_HOOKS") != NULL;
	uint64_t last_frames = 0;
	size_t K, lat, last_lat = 0;

	memset(&l, 0, sizeof(l));
	pthread_mutex_init(&l.state_lock, NULL);
	l.cfg = *cfg;
	l.opt = o;
	l.M = (size_t)cfg->channels;
	hooks.data = &l;
	sfd = signalfd(-1, sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		log_error("signalfd: %s", strerror(errno));
		return -errno;
	}
	l.wd = strebmd_watchdog_create();
	K = cfg->sources ? (size_t)cfg->sources : l.M;
	if (strebm_nsm_wanted()) {
		/* the session manager names the JACK client and the state file */
		static const struct strebm_nsm_ops nops = { nsm_open, nsm_save, NULL, nsm_log };
		l.nsm = strebm_nsm_create(NULL, "strebmd", program_invocation_name, &nops, &l, err,
					  sizeof(err));
		if (!l.nsm)
			log_warn("%s: running without session management", err);
		r = -ETIMEDOUT;
		while (l.nsm && (r = strebm_nsm_wait_open(l.nsm, 200)) == -ETIMEDOUT &&
		       !atomic_load(&pending_stop))
			strebmd_notify_status("waiting for the session manager's open");
		if (l.nsm && r < 0) {
			log_error("NSM: no session opened (%s)", strerror(-r));
			ret = atomic_load(&pending_stop) ? 0 : r;
			goto out;
		}
		if (l.nsm) {
			snprintf(l.cfg.state_file, sizeof(l.cfg.state_file), "%s", l.nsm_state);
			log_info("NSM session: client '%s', state %s", l.nsm_client, l.nsm_state);
		}
	}
	if (o->backend == STREBM_BACKEND_JACK) {
		memset(&jc, 0, sizeof(jc));
		jc.client_name = l.nsm ? l.nsm_client : cfg->client_name;
		jc.server = cfg->server;
		jc.M = l.M;
		jc.K = K;
		jc.connect_inputs = cfg->connect_inputs;
		jc.connect_outputs = cfg->connect_outputs;
		l.jack = strebm_jack_create(&jc, &hooks);
		if (!l.jack) {
			log_error("cannot create the JACK backend (%zu ports is too many?)",
				  jc.M + jc.K);
			goto out;
		}
		if (!wait_for_server(&l, sfd)) {
			ret = atomic_load(&pending_stop) ? 0 : -EIO;
			goto out;
		}
		l.rate = strebm_jack_rate(l.jack);
	} else {
		struct strebm_pa_config pac = { cfg->device, NULL, l.M, K, (unsigned)cfg->pa_rate,
						(size_t)cfg->pa_frames,
						l.nsm ? l.nsm_client : cfg->client_name };
		struct strebm_pa_hooks pah = { hook_audio, hook_xrun, hook_latency, hook_message,
					       &l };
		char perr[1024];
		l.pa = strebm_pa_create(&pac, &pah);
		if (!l.pa) {
			log_error("bad PortAudio configuration (channels, sources, rate or frames)");
			goto out;
		}
		if (strebm_pa_open(l.pa, perr, sizeof(perr)) < 0) {
			log_error("%s", perr);
			goto out;
		}
		l.rate = strebm_pa_rate(l.pa);
	}
	if ((r = build_pipeline(&l)) < 0) {
		ret = r;
		goto out;
	}
	if (cfg->osc_port) {
		l.osc = strebmd_osc_create(cfg->osc_address, cfg->osc_port, cfg->osc_allow, &ops, &l,
					   err, sizeof(err));
		if (!l.osc) {
			log_error("%s (%s, or osc.port=0 to turn OSC off)", err,
				  strstr(err, "cannot resolve") || strstr(err, "assign requested")
				  ? "set osc.address to an address of this machine"
				  : "another strebmd? set osc.port");
			goto out;
		}
		warn_empty_allow(cfg);
	}
	if ((l.jack ? strebm_jack_activate(l.jack, err, sizeof(err))
		    : strebm_pa_start(l.pa, err, sizeof(err))) < 0) {
		log_error("%s", err);
		goto out;
	}
	if (!o->quiet)
		log_info("%s %s: %zu inputs, %zu outputs, %u Hz, period %zu, window %zu, hop %zu, "
			 "latency %zu frames (%.1f ms); OSC %s%s%.0d",
			 l.jack ? "JACK client" : "PortAudio device",
			 l.jack ? (l.nsm ? l.nsm_client : cfg->client_name) : strebm_pa_device(l.pa),
			 l.ec.M, l.ec.K, l.rate,
			 be_period(&l), l.ec.T, l.ec.H,
			 total_latency(&l), 1e3 * (double)total_latency(&l) / l.rate,
			 l.osc ? cfg->osc_address : "off", l.osc ? ":" : "",
			 l.osc ? strebmd_osc_port(l.osc) : 0);
	l.next_status = now_s() + 1.0;
	while (!stop) {
		struct pollfd pfd = { .fd = sfd, .events = POLLIN };
		struct signalfd_siginfo si;
		uint64_t frames;
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
					atomic_store(&pending_usr1, 1);
					break;
				}
			}
		}
		if (atomic_load(&pending_stop))
			stop = true;
		if (atomic_exchange(&pending_hup, 0)) {
			reload(&l);
		}
		if (atomic_exchange(&pending_usr1, 0)) {
			/* test hook: stall or release the worker */
			if (test_hooks) {
				stalled = !stalled;
				strebmd_pipeline_stall(l.pipe, stalled);
				log_warn("worker %s (SIGUSR1)", stalled ? "stalled" : "released");
			} else {
				log_warn("SIGUSR1 ignored");
			}
		}
		if (stop)
			break;
		t = now_s();
		l.loops++;
		if (l.pa) {
			if (strebm_pa_poll(l.pa, t) == STREBM_PA_FAILED) {
				log_error("the audio stream is lost for good; exiting so that the "
					  "service manager restarts strebmd");
				ret = -EIO;
				goto out;
			}
		} else if (strebm_jack_poll(l.jack, t) == STREBM_JACK_REOPENED) {
			strebmd_osc_destroy(l.osc);
			l.osc = NULL;
			pthread_mutex_lock(&l.state_lock);
			strebmd_pipeline_destroy(l.pipe);
			l.pipe = NULL;
			l.rate = strebm_jack_rate(l.jack);
			r = build_pipeline(&l);
			pthread_mutex_unlock(&l.state_lock);
			if (r < 0) {
				ret = r;
				goto out;
			}
			if (cfg->osc_port)
				l.osc = strebmd_osc_create(cfg->osc_address, cfg->osc_port,
							   l.cfg.osc_allow, &ops, &l, err,
							   sizeof(err));
			if (strebm_jack_activate(l.jack, err, sizeof(err)) < 0)
				log_error("%s", err);
		}
		/* a mode switch may change the latency: tell JACK */
		lat = strebmd_pipeline_latency(l.pipe, be_period(&l));
		if (l.jack && lat != last_lat && last_lat)
			strebm_jack_recompute_latency(l.jack);
		last_lat = lat;
		frames = strebmd_pipeline_audio_frames(l.pipe);
		/* READY=1 once audio flows (ports exist, OSC bound) */
		if (!l.ready && frames > last_frames) {
			strebmd_notify_ready();
			l.ready = true;
		}
		last_frames = frames;
		if (be_active(&l))
			strebmd_watchdog_poll(l.wd, frames, strebmd_pipeline_worker_hops(l.pipe));
		else /* a known outage, not a hang: the loop itself is the progress */
			strebmd_watchdog_poll(l.wd, l.loops, l.loops);
		refused_note(&l);
		if (t >= l.next_status) {
			status_line(&l, line, sizeof(line));
			strebmd_notify_status("%s", line);
			if (!o->quiet)
				log_info("%s", line);
			strebmd_log_flush();
			l.next_status = t + l.cfg.status_interval;
		}
	}
	strebmd_notify_stopping();
	status_line(&l, line, sizeof(line));
	if (!o->quiet)
		log_info("stopping: %s", line);
	ret = 0;
out:
	strebm_nsm_destroy(l.nsm);
	strebmd_osc_destroy(l.osc);
	/* the state is saved before the backend goes (closing a JACK client can
	 * block): the worker stops first, and until the backend is closed its
	 * callback, which only copies, finds no hops and fills */
	if (l.pipe && *l.cfg.state_file && ret == 0 && !l.nsm) {
		strebmd_pipeline_stop(l.pipe);
		if (strebm_statefile_save_engine(l.cfg.state_file, strebmd_pipeline_engine(l.pipe),
						 err, sizeof(err)) < 0)
			log_warn("%s", err);
		else
			log_info("model state saved to %s", l.cfg.state_file);
	}
	/* the backend stops calling the pipeline before it goes */
	strebm_jack_destroy(l.jack);
	strebm_pa_destroy(l.pa);
	strebmd_pipeline_destroy(l.pipe);
	strebmd_watchdog_destroy(l.wd);
	free(l.state_io);
	pthread_mutex_destroy(&l.state_lock);
	if (sfd >= 0)
		close(sfd);
	return ret;
}
