/* SPDX-License-Identifier: MIT */
/*
 * strebm-jack-player: JACK test clients. A player client plays an M-channel
 * WAV file into a client's input ports and a recorder client records K of its
 * output ports (two clients, so the graph player -> target -> recorder has no
 * cycle and adds no period of its own); both index their frames by the
 * cycle's frame time. It then writes the recording aligned by the latency the
 * recorded ports report (so it can be scored like file-mode output), and
 * prints the reported latency and the delay it measures.
 *
 *   strebm-jack-player --server NAME --input MIX.wav --target CLIENT
 *                      --sources K --out-dir DIR [--tail SECONDS] [--loops N]
 *                      [--nan-channel C --nan-at S --nan-for S]
 *                      [--in-ports PREFIX --out-ports PREFIX --base N]
 *                      [--align-measured]
 *
 * --in-ports/--out-ports name the target's ports as PREFIX + index (from
 * --base, default 1), e.g. PortAudio:in_ and PortAudio:out_ with --base 0.
 *
 * The measured delay is the lag that maximises the correlation between the
 * reference channel played and the sum of the recorded outputs (the sources,
 * projected back to the reference microphone, sum to it). Prints
 * "reported_latency N", "measured_delay N", "period P", "xruns X".
 * Exit 0, or 1 with a message.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jack/jack.h>

#include "wavfile.h"

#define MAXCH 64

static jack_port_t *play_ports[MAXCH], *rec_ports[MAXCH];
static float *play, *rec;          /* interleaved */
static size_t M, K, nplay, nrec;
static _Atomic size_t pos;          /* frames played/recorded */
static _Atomic int go;
static _Atomic unsigned xruns;

static _Atomic jack_nframes_t start_frame;
static _Atomic int started;

static int on_play(jack_nframes_t n, void *arg)
{
	jack_client_t *cl = arg;
	jack_nframes_t now = jack_last_frame_time(cl);
	size_t i, c, p;

	if (atomic_load(&go) && !atomic_load(&started)) {
		atomic_store(&start_frame, now);
		atomic_store(&started, 1);
	}
	p = (size_t)(now - atomic_load(&start_frame));
	for (c = 0; c < M; c++) {
		float *o = jack_port_get_buffer(play_ports[c], n);
		for (i = 0; i < n; i++)
			o[i] = atomic_load(&started) && p + i < nplay ? play[(p + i) * M + c] : 0.0f;
	}
	return 0;
}

static int on_record(jack_nframes_t n, void *arg)
{
	jack_client_t *cl = arg;
	size_t i, c, p;

	if (!atomic_load(&started))
		return 0;
	p = (size_t)(jack_last_frame_time(cl) - atomic_load(&start_frame));
	for (c = 0; c < K; c++) {
		const float *in = jack_port_get_buffer(rec_ports[c], n);
		for (i = 0; i < n && p + i < nrec; i++)
			rec[(p + i) * K + c] = in[i];
	}
	atomic_store(&pos, p + n);
	return 0;
}

static int on_xrun(void *arg)
{
	(void)arg;
	atomic_fetch_add(&xruns, 1);
	return 0;
}

static long measure_delay(size_t maxlag)
{
	size_t len = nplay / 2, start = nplay / 4, t, k;
	double best = -1.0;
	long arg = -1;
	size_t lag;

	if (len > 32768)
		len = 32768;
	for (lag = 0; lag <= maxlag && start + lag + len < nrec; lag++) {
		double xy = 0, yy = 0, xx = 0;
		for (t = start; t < start + len; t++) {
			double x = play[t * M], y = 0;
			for (k = 0; k < K; k++)
				y += rec[(t + lag) * K + k];
			xy += x * y;
			yy += y * y;
			xx += x * x;
		}
		if (yy > 0 && xx > 0 && xy / sqrt(xx * yy) > best) {
			best = xy / sqrt(xx * yy);
			arg = (long)lag;
		}
	}
	return arg;
}

/* jack_connect, tried again for up to 5 s: JACK refuses a connection to a
 * client that has registered its ports but is not active yet. */
static int connect_retry(jack_client_t *c, const char *src, const char *dst)
{
	int n, rc = -1;

	for (n = 0; n < 50; n++) {
		rc = jack_connect(c, src, dst);
		if (rc == 0 || rc == EEXIST)
			return 0;
		usleep(100000);
	}
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "input", required_argument, NULL, 'i' },
		{ "target", required_argument, NULL, 't' },
		{ "sources", required_argument, NULL, 'k' },
		{ "out-dir", required_argument, NULL, 'o' },
		{ "tail", required_argument, NULL, 'T' },
		{ "loops", required_argument, NULL, 'l' },
		{ "in-ports", required_argument, NULL, 'I' },
		{ "out-ports", required_argument, NULL, 'O' },
		{ "base", required_argument, NULL, 'B' },
		{ "align-measured", no_argument, NULL, 'M' },
		{ "nan-channel", required_argument, NULL, 'c' },
		{ "nan-at", required_argument, NULL, 'a' },
		{ "nan-for", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	const char *server = NULL, *input = NULL, *target = "strebmd", *outdir = NULL;
	double tail = 1.0, nan_at = 0, nan_for = 0;
	int nan_ch = -1, c;
	size_t loops = 1, base = 1;
	int align_measured = 0;
	const char *in_prefix = NULL, *out_prefix = NULL;
	struct strebm_wav_info info;
	struct strebm_wav_in *in;
	struct strebm_wav_out *out;
	char err[PATH_MAX + 64], name[256];
	jack_client_t *client, *recorder;
	jack_status_t status;
	jack_latency_range_t lr;
	double *buf, *shifted;
	size_t i, rate, L, period;
	long delay;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 's': server = optarg; break;
		case 'i': input = optarg; break;
		case 't': target = optarg; break;
		case 'k': K = (size_t)atoi(optarg); break;
		case 'o': outdir = optarg; break;
		case 'T': tail = atof(optarg); break;
		case 'l': loops = (size_t)atoi(optarg); break;
		case 'I': in_prefix = optarg; break;
		case 'O': out_prefix = optarg; break;
		case 'B': base = (size_t)atoi(optarg); break;
		case 'M': align_measured = 1; break;
		case 'c': nan_ch = atoi(optarg); break;
		case 'a': nan_at = atof(optarg); break;
		case 'f': nan_for = atof(optarg); break;
		default: return 1;
		}
	}
	if (!input || !outdir || !K || K > MAXCH) {
		fprintf(stderr, "usage: see the header of tests/jack_player.c\n");
		return 1;
	}
	in = strebm_wav_in_open(input, &info, err, sizeof(err));
	if (!in) {
		fprintf(stderr, "player: %s\n", err);
		return 1;
	}
	M = info.channels;
	nplay = info.frames;
	buf = malloc(nplay * M * sizeof(double));
	if (!loops)
		loops = 1;
	play = malloc(loops * nplay * M * sizeof(float));
	if (!buf || !play || strebm_wav_in_read(in, buf, nplay) < 0) {
		free(buf);
		return 1;
	}
	for (i = 0; i < nplay * M; i++) /* planar to interleaved */
		play[(i % nplay) * M + i / nplay] = (float)buf[i];
	free(buf); /* every exit below leaks nothing LeakSanitizer reports */
	for (i = 1; i < loops; i++)
		memcpy(play + i * nplay * M, play, nplay * M * sizeof(float));
	nplay *= loops;
	if (nan_ch >= 0 && (size_t)nan_ch < M) {
		size_t a = (size_t)(nan_at * info.rate), b = a + (size_t)(nan_for * info.rate);
		for (i = a; i < b && i < nplay; i++)
			play[i * M + (size_t)nan_ch] = (i & 1) ? NAN : INFINITY;
	}
	strebm_wav_in_close(in);

	client = jack_client_open("strebm-player", server ? JackServerName | JackNoStartServer :
				  JackNoStartServer, &status, server);
	recorder = jack_client_open("strebm-recorder", server ? JackServerName | JackNoStartServer :
				    JackNoStartServer, &status, server);
	if (!client || !recorder) {
		fprintf(stderr, "player: cannot open a JACK client\n");
		return 1;
	}
	rate = jack_get_sample_rate(client);
	if (rate != info.rate)
		fprintf(stderr, "player: warning: server runs at %zu Hz, file is %u Hz\n", rate,
			info.rate);
	nrec = nplay + (size_t)(tail * (double)rate);
	rec = calloc(nrec * K, sizeof(float));
	if (!rec)
		return 1;
	for (i = 0; i < M; i++) {
		snprintf(name, sizeof(name), "out_%zu", i + 1);
		play_ports[i] = jack_port_register(client, name, JACK_DEFAULT_AUDIO_TYPE,
						   JackPortIsOutput, 0);
	}
	for (i = 0; i < K; i++) {
		snprintf(name, sizeof(name), "rec_%zu", i + 1);
		rec_ports[i] = jack_port_register(recorder, name, JACK_DEFAULT_AUDIO_TYPE,
						  JackPortIsInput, 0);
	}
	jack_set_process_callback(client, on_play, client);
	jack_set_process_callback(recorder, on_record, recorder);
	jack_set_xrun_callback(client, on_xrun, NULL);
	if (jack_activate(client) || jack_activate(recorder)) {
		fprintf(stderr, "player: cannot activate\n");
		return 1;
	}
	for (i = 0; i < M; i++) {
		char to[300];
		if (in_prefix)
			snprintf(to, sizeof(to), "%s%zu", in_prefix, i + base);
		else
			snprintf(to, sizeof(to), "%s:in_%zu", target, i + 1);
		if (connect_retry(client, jack_port_name(play_ports[i]), to)) {
			fprintf(stderr, "player: cannot connect to %s\n", to);
			return 1;
		}
	}
	for (i = 0; i < K; i++) {
		char from[300];
		if (out_prefix)
			snprintf(from, sizeof(from), "%s%zu", out_prefix, i + base);
		else
			snprintf(from, sizeof(from), "%s:source_%zu", target, i + 1);
		if (connect_retry(recorder, from, jack_port_name(rec_ports[i]))) {
			fprintf(stderr, "player: cannot connect from %s\n", from);
			return 1;
		}
	}
	usleep(200000);
	jack_recompute_total_latencies(client);
	usleep(100000);
	atomic_store(&go, 1);
	{
		size_t last = 0, still = 0;
		while (atomic_load(&pos) < nrec) {
			usleep(20000);
			if (atomic_load(&pos) == last) {
				/* zombified or the server is gone */
				if (++still > 250) {
					fprintf(stderr, "player: no audio cycles for 5 s\n");
					return 1;
				}
			} else {
				still = 0;
				last = atomic_load(&pos);
			}
		}
	}
	jack_port_get_latency_range(rec_ports[0], JackCaptureLatency, &lr);
	period = jack_get_buffer_size(client);
	L = lr.max;
	jack_deactivate(client);
	jack_deactivate(recorder);
	jack_client_close(client);
	jack_client_close(recorder);

	delay = measure_delay(16384);
	printf("reported_latency %zu\nmeasured_delay %ld\nperiod %zu\nxruns %u\n", L, delay,
	       period, atomic_load(&xruns));

	/* write the recording advanced by the reported latency (or the measured
	 * delay: a PortAudio client cannot tell JACK its latency), file length */
	if (align_measured && delay >= 0)
		L = (size_t)delay;
	shifted = calloc(nplay * K, sizeof(double));
	if (!shifted)
		return 1;
	for (i = 0; i < nplay; i++)
		for (c = 0; c < (int)K; c++)
			shifted[(size_t)c * nplay + i] =
				i + L < nrec ? (double)rec[(i + L) * K + (size_t)c] : 0.0;
	mkdir(outdir, 0777);
	out = strebm_wav_out_open(outdir, K, info.rate, err, sizeof(err));
	if (!out || strebm_wav_out_write(out, shifted, nplay, nplay) < 0 ||
	    strebm_wav_out_close(out) < 0) {
		fprintf(stderr, "player: cannot write to %s\n", outdir);
		free(shifted);
		return 1;
	}
	for (i = 0; i < nplay * K; i++)
		if (!isfinite(shifted[i])) {
			fprintf(stderr, "player: non-finite output sample\n");
			free(shifted);
			return 1;
		}
	free(shifted);
	free(play);
	free(rec);
	return 0;
}
