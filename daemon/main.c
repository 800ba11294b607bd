/* SPDX-License-Identifier: MIT */
/*
 * strebmd: real-time blind source separation with StrEBM.
 *
 * main() reads like a table of contents: parse the command line, load the
 * configuration, set up logging, build the engine, run the backend, tear
 * down in reverse.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cblas.h>

#include "buildconf.h"
#include "config.h"
#include "engine.h"
#include "jack.h"
#include "live.h"
#include "pa.h"
#include "log.h"
#include "setup.h"
#include "statefile.h"
#include "wavfile.h"
#include "worker.h"

#define MAX_SETS 64

struct options {
	const char *input;
	const char *output_dir;
	const char *config_file;
	const char *report;
	const char *sets[MAX_SETS];
	size_t nsets;
	bool quiet, verbose, check_config, print_config, list_devices;
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: strebmd [OPTION]...\n"
"Real-time blind source separation (StrEBM: per-source Gaussian-process\n"
"energies with learnable length-scales, streaming).\n"
"\n"
"  -b, --backend NAME        file, jack or portaudio (audio.backend; default: file\n"
"                            with --input, else jack when a server runs, else portaudio)\n"
"  -i, --input FILE          file backend: the M-channel mixture (any format libsndfile reads)\n"
"  -o, --output-dir DIR      file backend: writes DIR/source_1.wav ... source_K.wav\n"
"                            (float WAV, input rate and length); created (with its\n"
"                            parents) if missing\n"
"  -k, --sources K           number of sources (engine.sources; default: one per channel)\n"
"  -m, --mode MODE           linear | nonlinear | convolutive (engine.mode)\n"
"  -K, --kernel NAME         rbf | matern12 | matern32 | matern52 (engine.kernel)\n"
"  -C, --channels M          live backends: input channels (audio.channels)\n"
"  -n, --client-name NAME    JACK client name (jack.client_name, default strebmd)\n"
"  -s, --set SECTION.KEY=VALUE\n"
"                            override any configuration key (repeatable)\n"
"  -c, --config FILE         configuration file (INI); see conf/strebmd.conf\n"
"      --check-config        validate the configuration and exit\n"
"      --print-config        print the commented example configuration and exit\n"
"      --list-devices        list the PortAudio devices (index, name, host API, channels)\n"
"  -r, --report FILE         file backend: write a JSON run report (timing, latency)\n"
"  -q, --quiet               no progress or summary\n"
"  -v, --verbose             debug messages\n"
"  -h, --help                this help\n"
"  -V, --version             print the version\n"
"\n"
"Exit status: 0 on success, 1 on bad input or a failure (one-line message).\n");
}

static int parse_args(int argc, char **argv, struct options *o, struct strebm_config *cfg)
{
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "input", required_argument, NULL, 'i' },
		{ "output-dir", required_argument, NULL, 'o' },
		{ "sources", required_argument, NULL, 'k' },
		{ "mode", required_argument, NULL, 'm' },
		{ "kernel", required_argument, NULL, 'K' },
		{ "channels", required_argument, NULL, 'C' },
		{ "client-name", required_argument, NULL, 'n' },
		{ "set", required_argument, NULL, 's' },
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 1 },
		{ "print-config", no_argument, NULL, 2 },
		{ "list-devices", no_argument, NULL, 3 },
		{ "report", required_argument, NULL, 'r' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	static char buf[MAX_SETS][STREBM_CONFIG_STR + 32];
	size_t nbuf = 0;
	int c;

	memset(o, 0, sizeof(*o));
	(void)cfg;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "b:i:o:k:m:K:C:n:s:c:r:qvhV", longopts, NULL)) != -1) {
		const char *key = NULL, *opt = NULL;
		switch (c) {
		case 'b': key = "audio.backend"; opt = "--backend"; break;
		case 'i': o->input = optarg; break;
		case 'o': o->output_dir = optarg; break;
		case 'k': key = "engine.sources"; opt = "--sources"; break;
		case 'm': key = "engine.mode"; opt = "--mode"; break;
		case 'K': key = "engine.kernel"; opt = "--kernel"; break;
		case 'C': key = "audio.channels"; opt = "--channels"; break;
		case 'n': key = "jack.client_name"; opt = "--client-name"; break;
		case 's':
			if (o->nsets >= MAX_SETS) {
				log_error("too many --set options (at most %d)", MAX_SETS);
				return -EINVAL;
			}
			o->sets[o->nsets++] = optarg;
			break;
		case 'c': o->config_file = optarg; break;
		case 1: o->check_config = true; break;
		case 2: o->print_config = true; break;
		case 3: o->list_devices = true; break;
		case 'r': o->report = optarg; break;
		case 'q': o->quiet = true; break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("strebmd %s\n", STREBMD_VERSION); exit(0);
		case '?':
		default:
			if (optopt)
				log_error("option '-%c' is unknown or needs a value (see --help)", optopt);
			else
				log_error("option '%s' is unknown or needs a value (see --help)",
					  argv[optind - 1]);
			return -EINVAL;
		}
		if (key) {
			/* the value checked now, so that an error names the option typed */
			static struct strebm_config scratch;
			char section[16], err[STREBM_CONFIG_ERR];
			const char *dot = strchr(key, '.');
			snprintf(section, sizeof(section), "%.*s", (int)(dot - key), key);
			strebm_config_defaults(&scratch);
			if (strebm_config_set_key(&scratch, section, dot + 1, optarg, opt, err,
						  sizeof(err)) < 0) {
				log_error("%s", err);
				return -EINVAL;
			}
			if (nbuf >= MAX_SETS || o->nsets >= MAX_SETS) {
				log_error("too many options");
				return -EINVAL;
			}
			snprintf(buf[nbuf], sizeof(buf[nbuf]), "%s=%s", key, optarg);
			o->sets[o->nsets++] = buf[nbuf++];
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s' (see --help)", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

static int load_config(const struct options *o, struct strebm_config *cfg)
{
	char err[STREBM_CONFIG_ERR];

	if (strebm_config_load(cfg, o->config_file, o->sets, o->nsets, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -EINVAL;
	}
	return 0;
}

/* One pass over the file: count the samples the engine cannot use, NaN/Inf
 * and magnitudes beyond STREBM_INPUT_LIMIT (both become silence). */
static int scan_input(struct strebm_wav_in *in, const struct strebm_wav_info *info,
		      size_t *bad_out, size_t *huge_out)
{
	size_t chunk = 8192, done = 0, bad = 0, huge = 0, i, m;
	double *buf = malloc(chunk * info->channels * sizeof(double));

	if (!buf)
		return -ENOMEM;
	while (done < info->frames) {
		long got = strebm_wav_in_read(in, buf, chunk);
		if (got < 0) {
			free(buf);
			return (int)got;
		}
		if (got == 0)
			break;
		/* channel-major: channel m's frames at buf[m * chunk] */
		for (m = 0; m < info->channels; m++)
			for (i = 0; i < (size_t)got; i++) {
				double v = buf[m * chunk + i];
				if (!isfinite(v))
					bad++;
				else if (fabs(v) > STREBM_INPUT_LIMIT)
					huge++;
			}
		done += (size_t)got;
	}
	free(buf);
	*bad_out = bad + huge;
	*huge_out = huge;
	return strebm_wav_in_rewind(in);
}

static int ensure_dir(const char *dir)
{
	char path[PATH_MAX];
	struct stat st;
	size_t i;

	/* like mkdir -p: the parents first */
	if (strlen(dir) >= sizeof(path)) {
		log_error("output directory name is too long");
		return -ENAMETOOLONG;
	}
	strcpy(path, dir);
	for (i = 1; path[i]; i++) {
		if (path[i] != '/')
			continue;
		path[i] = 0;
		if (stat(path, &st) < 0 && mkdir(path, 0777) < 0 && errno != EEXIST) {
			log_error("cannot create directory '%s': %s", path, strerror(errno));
			return -errno;
		}
		path[i] = '/';
	}
	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode)) {
			log_error("output directory '%s' exists and is not a directory", dir);
			return -ENOTDIR;
		}
	} else if (mkdir(dir, 0777) < 0) {
		log_error("cannot create output directory '%s': %s", dir, strerror(errno));
		return -errno;
	}
	if (access(dir, W_OK | X_OK) < 0) {
		log_error("output directory '%s' is not writable: %s", dir, strerror(errno));
		return -EACCES;
	}
	return 0;
}

static double wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int write_report(const char *path, const struct strebm_engine_config *ec,
			size_t latency, const struct strebm_wav_info *info, double audio_s, double cpu_s,
			const struct strebm_engine_status *st, size_t nonfinite_samples,
			bool interrupted)
{
	FILE *f = fopen(path, "w");
	size_t k;

	if (!f) {
		log_error("cannot write report '%s': %s", path, strerror(errno));
		return -errno;
	}
	fprintf(f, "{\n  \"version\": \"%s\",\n  \"mode\": \"%s\",\n", STREBMD_VERSION,
		strebm_mode_name(ec->mode));
	fprintf(f, "  \"sample_rate\": %u,\n  \"channels\": %zu,\n  \"sources\": %zu,\n",
		info->rate, ec->M, ec->K);
	fprintf(f, "  \"window\": %zu,\n  \"hop\": %zu,\n  \"latency_samples\": %zu,\n", ec->T,
		ec->H, latency);
	fprintf(f, "  \"audio_seconds\": %.6f,\n  \"worker_cpu_seconds\": %.6f,\n  \"rtf\": %.6f,\n",
		audio_s, cpu_s, audio_s > 0 ? cpu_s / audio_s : 0.0);
	fprintf(f, "  \"hops\": %lu,\n  \"updates\": %lu,\n  \"permutation_fixes\": %lu,\n",
		st->hops, st->updates, st->permutations);
	fprintf(f, "  \"nonfinite_samples\": %zu,\n  \"interrupted\": %s,\n", nonfinite_samples,
		interrupted ? "true" : "false");
	fprintf(f, "  \"degraded\": %s,\n", st->degraded ? "true" : "false");
	fprintf(f, "  \"lengthscales_samples\": [");
	for (k = 0; k < ec->K; k++)
		fprintf(f, "%s%.6g", k ? ", " : "", st->ell[k]);
	fprintf(f, "]\n}\n");
	return fclose(f) == 0 ? 0 : -EIO;
}

/* The mode the engine runs (a restored state may have set it). */
static enum strebm_mode run_mode(struct strebmd_worker *w)
{
	struct strebm_engine_status es;

	strebm_engine_get_status(strebmd_worker_engine(w), &es);
	return es.next_mode;
}

static int run_file(const struct options *o, const struct strebm_config *cfg)
{
	struct strebm_wav_in *in = NULL;
	struct strebm_wav_out *out = NULL;
	struct strebmd_worker *w = NULL;
	struct strebm_wav_info info;
	struct strebm_engine_config ec;
	struct strebm_engine_status st;
	double *xin = NULL, *yout = NULL, t_last = 0.0, audio_s;
	size_t done = 0, nread = 0, lag, bad = 0, huge = 0;
	bool progress, interrupted = false;
	char err[PATH_MAX + 256];
	int ret = -EINVAL;

	if (!o->input) {
		log_error("the file backend needs --input FILE");
		return -EINVAL;
	}
	if (!o->output_dir) {
		log_error("the file backend needs --output-dir DIR");
		return -EINVAL;
	}
	{
		struct stat sb;
		/* a FIFO or a device would block or never end */
		if (stat(o->input, &sb) == 0 && !S_ISREG(sb.st_mode)) {
			log_error("'%s' is not a regular file", o->input);
			return -EINVAL;
		}
	}
	if (o->report) {
		/* fail before the work, not after it */
		FILE *f = fopen(o->report, "a");
		if (!f) {
			log_error("cannot write report '%s': %s", o->report, strerror(errno));
			return -errno;
		}
		fclose(f);
	}
	if (strcmp(strebm_config_origin(cfg, "audio.channels"), "default"))
		log_warn("audio.channels is for the live backends: the file's channel count is used");
	in = strebm_wav_in_open(o->input, &info, err, sizeof(err));
	if (!in) {
		log_error("%s", err);
		goto out;
	}
	if (strebmd_engine_config(cfg, info.channels, info.rate, &ec) < 0)
		goto out;
	if (scan_input(in, &info, &bad, &huge) < 0) {
		log_error("cannot read '%s'", o->input);
		goto out;
	}
	if (bad * 100 > info.frames * info.channels) {
		log_error("'%s' has %zu unusable samples (%.1f%%: %zu NaN/Inf, %zu beyond +-%g): "
			  "too many to repair%s", o->input, bad,
			  100.0 * (double)bad / (double)(info.frames * info.channels), bad - huge,
			  huge, STREBM_INPUT_LIMIT,
			  huge ? " (is the file scaled? audio samples are within +-1)" : "");
		goto out;
	}
	if (bad)
		log_warn("'%s' has %zu unusable samples (%zu NaN/Inf, %zu beyond +-%g); they are "
			 "replaced by silence", o->input, bad, bad - huge, huge, STREBM_INPUT_LIMIT);
	if (ensure_dir(o->output_dir) < 0)
		goto out;
	w = strebmd_worker_create(&ec, info.rate);
	xin = calloc(ec.M * ec.H, sizeof(double));
	yout = calloc(ec.K * ec.H, sizeof(double));
	if (!w || !xin || !yout) {
		log_error("cannot create the engine (out of memory?)");
		ret = -ENOMEM;
		goto out;
	}
	if (*cfg->state_file) {
		/* a run that starts already separated, as the live daemon does */
		enum strebm_mode sm;
		if (strebmd_state_restore(cfg, strebmd_worker_engine(w), true, &sm) == 0) {
			if (sm != ec.mode && strcmp(strebm_config_origin(cfg, "engine.mode"), "default")) {
				/* the mode asked for wins over the one in the file */
				log_warn("%s holds a %s-mode model; engine.mode is %s (from %s): "
					 "starting from a fresh model", cfg->state_file,
					 strebm_mode_name(sm), strebm_mode_name(ec.mode),
					 strebm_config_origin(cfg, "engine.mode"));
				strebmd_worker_destroy(w);
				w = strebmd_worker_create(&ec, info.rate);
				if (!w) {
					log_error("cannot create the engine (out of memory?)");
					ret = -ENOMEM;
					goto out;
				}
			} else if (!o->quiet) {
				log_info("model state restored from %s (%s mode%s)", cfg->state_file,
					 strebm_mode_name(sm), strebmd_state_note(sm));
			}
		}
	}
	out = strebm_wav_out_open(o->output_dir, ec.K, info.rate, err, sizeof(err));
	if (!out) {
		log_error("%s", err);
		goto out;
	}
	if (!o->quiet)
		log_info("%s: %zu channel%s, %u Hz, %.2f s; %s mode, %zu source%s, window %zu, "
			 "hop %zu (latency %.1f ms)", o->input, info.channels,
			 info.channels == 1 ? "" : "s", info.rate,
			 (double)info.frames / info.rate, strebm_mode_name(run_mode(w)), ec.K,
			 ec.K == 1 ? "" : "s", ec.T,
			 ec.H, 1000.0 * (double)strebm_engine_latency(strebmd_worker_engine(w)) /
				 info.rate);
	progress = !o->quiet && isatty(STDERR_FILENO) && info.frames > 10 * (size_t)info.rate;
	/* outputs are written time-aligned with the input: the engine's delay
	 * beyond the hop (convolutive mode: N - H) is dropped at the start and
	 * the tail flushed with silence */
	lag = strebm_engine_latency(strebmd_worker_engine(w)) - ec.H;
	while (done < info.frames && !stop_requested) {
		long got = 0;
		size_t n, off;
		if (nread < info.frames) {
			got = strebm_wav_in_read(in, xin, ec.H);
			if (got < 0) {
				log_error("read error on '%s'", o->input);
				goto out;
			}
			if (got == 0)
				break;
			nread += (size_t)got;
		} else {
			memset(xin, 0, ec.M * ec.H * sizeof(double));
		}
		if (strebmd_worker_hop(w, xin, yout) < 0) {
			log_error("engine failure");
			goto out;
		}
		off = lag < ec.H ? lag : ec.H;
		lag -= off;
		n = ec.H - off < info.frames - done ? ec.H - off : info.frames - done;
		if (n && strebm_wav_out_write(out, yout + off, ec.H, n) < 0) {
			log_error("write error in '%s'", o->output_dir);
			goto out;
		}
		done += n;
		if (progress && wall() - t_last > 0.5) {
			t_last = wall();
			fprintf(stderr, "\rstrebmd: %3.0f%% (%.1f / %.1f s)",
				100.0 * (double)done / (double)info.frames,
				(double)done / info.rate, (double)info.frames / info.rate);
		}
	}
	if (progress)
		fprintf(stderr, "\r%60s\r", "");
	interrupted = stop_requested;
	if (strebm_wav_out_close(out) < 0) {
		out = NULL;
		log_error("could not complete the output files in '%s'", o->output_dir);
		goto out;
	}
	out = NULL;
	if (*cfg->state_file) {
		if (strebm_statefile_save_engine(cfg->state_file, strebmd_worker_engine(w), err,
						 sizeof(err)) < 0)
			log_warn("%s", err);
		else if (!o->quiet)
			log_info("model state saved to %s", cfg->state_file);
	}
	audio_s = (double)done / info.rate;
	strebm_engine_get_status(strebmd_worker_engine(w), &st);
	if (st.degraded)
		log_warn("the separation degraded: at the end of the file the outputs were falling "
			 "back to the reference microphone / %zu (this mode could not separate this "
			 "input; the report says \"degraded\": true)", ec.K);
	if (o->report && write_report(o->report, &ec, strebm_engine_latency(strebmd_worker_engine(w)),
				      &info, audio_s,
				      strebmd_worker_cpu_seconds(w), &st, bad, interrupted) < 0)
		goto out;
	if (!o->quiet) {
		if (interrupted)
			log_info("stopped by signal after %.2f s of audio; the files hold what was done",
				 audio_s);
		char files[64];
		if (ec.K == 1)
			snprintf(files, sizeof(files), "source_1.wav");
		else
			snprintf(files, sizeof(files), "source_1.wav .. source_%zu.wav", ec.K);
		log_info("wrote %zu source%s to %s/%s "
			 "(%.2f s of audio, worker %.3f s CPU, real-time factor %.4f)", ec.K,
			 ec.K == 1 ? "" : "s", o->output_dir, files, audio_s, strebmd_worker_cpu_seconds(w),
			 audio_s > 0 ? strebmd_worker_cpu_seconds(w) / audio_s : 0.0);
	}
	ret = 0;
out:
	strebm_wav_out_close(out);
	free(yout);
	free(xin);
	strebmd_worker_destroy(w);
	strebm_wav_in_close(in);
	return ret;
}

int main(int argc, char **argv)
{
	struct options opt;
	struct strebm_config cfg;
	struct sigaction sa;
	enum strebm_backend_kind backend;
	sigset_t sigs;
	char err[STREBM_CONFIG_ERR];
	int ret;

	if (parse_args(argc, argv, &opt, &cfg) < 0)
		return 1;
	if (opt.print_config) {
		strebm_config_write_example(stdout);
		return 0;
	}
	if (opt.list_devices)
		return strebm_pa_list_devices(stdout) < 0 ? 1 : 0;
	strebmd_log_init();
	strebmd_log_set_level(opt.verbose ? LOG_LVL_DEBUG : LOG_LVL_INFO);
	if (load_config(&opt, &cfg) < 0)
		return 1;
	backend = (enum strebm_backend_kind)cfg.backend;
	if (backend == STREBM_BACKEND_AUTO && (opt.input || opt.output_dir))
		backend = STREBM_BACKEND_FILE;
	if (strebm_config_validate(&cfg, backend != STREBM_BACKEND_FILE, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return 1;
	}
	if (opt.check_config) {
		printf("configuration OK\n");
		return 0;
	}
	openblas_set_num_threads(1);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	if (backend == STREBM_BACKEND_AUTO) {
		if (strebm_jack_server_running(cfg.server))
			backend = STREBM_BACKEND_JACK;
		else
			backend = STREBM_BACKEND_PORTAUDIO;
	}
	if (backend == STREBM_BACKEND_FILE) {
		ret = run_file(&opt, &cfg);
	} else {
		struct strebmd_live_options lo = { backend, opt.config_file, opt.sets, opt.nsets,
						   opt.quiet };
		if (opt.input || opt.output_dir) {
			log_error("--input and --output-dir belong to the file backend");
			return 1;
		}
		/* the worker, JACK and OSC threads inherit this mask: the main loop
		 * alone reads the signals, from a signalfd */
		strebmd_signals_block(&sigs);
		ret = strebmd_run_live(&cfg, &lo, &sigs);
	}
	return ret < 0 ? 1 : 0;
}
