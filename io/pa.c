/* SPDX-License-Identifier: MIT */
#include "pa.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include <jack/jack.h>
#include <pa_jack.h>
#include <portaudio.h>

#include "buildconf.h"
#if STREBM_HAVE_ALSA
#include <alsa/asoundlib.h>
#endif

#define MAX_PERIOD 8192
#define MAX_CHANNELS 256
#define NAME_LEN 256
#define DESC_LEN 512
#define STALL_S 2.0         /* no callback for this long: the device hangs */
#define BACKOFF_MIN 0.25
#define BACKOFF_MAX 2.0

struct strebm_pa {
	struct strebm_pa_hooks hooks;
	char device[NAME_LEN], output_device[NAME_LEN], client_name[NAME_LEN];
	size_t M, K, frames;
	unsigned want_rate;

	/* main thread */
	bool initialised;   /* Pa_Initialize succeeded and is ours to terminate */
	PaStream *stream;
	bool running;       /* started and not stopped by us */
	bool jack_api;      /* the stream runs on PortAudio's JACK host API */
	bool failed;        /* lost for good (see portaudio.h) */
	unsigned rate;
	size_t device_latency;
	char desc[DESC_LEN];
	double retry_at, backoff, last_progress;
	uint64_t last_callbacks;
	unsigned retries;

	/* written by the callback thread */
	_Atomic uint64_t xruns, callbacks;
	_Atomic bool inject;   /* main -> callback: end the stream */
	_Atomic bool aborted;  /* callback -> main: we ended it ourselves */
	_Atomic bool finished; /* PortAudio's stream-finished callback ran */
	const float *null_in[MAX_CHANNELS];
};

/* PortAudio's JACK host API lost its server under a running stream: it can
 * be neither closed nor terminated, so PortAudio stays unusable (main thread). */
static bool pa_unusable;

static void say(struct strebm_pa *pa, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void say(struct strebm_pa *pa, int level, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	if (!pa->hooks.message)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pa->hooks.message(pa->hooks.data, level, msg);
}

/* Append to a one-line message; a cut line ends with "..." */
static void add(char *buf, size_t len, size_t *pos, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add(char *buf, size_t len, size_t *pos, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!len || *pos >= len - 1)
		return;
	va_start(ap, fmt);
	n = vsnprintf(buf + *pos, len - *pos, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= len - *pos) {
		*pos = len - 1;
		if (len > 4)
			memcpy(buf + len - 4, "...", 4);
		return;
	}
	*pos += (size_t)n;
}

/* ---- quiet host APIs ---------------------------------------------------- */

#if STREBM_HAVE_ALSA
static void quiet_alsa(const char *file, int line, const char *function, int err,
		       const char *fmt, ...)
{
	(void)file;
	(void)line;
	(void)function;
	(void)err;
	(void)fmt;
}
#endif

static void quiet_jack(const char *msg)
{
	(void)msg;
}

static PaError init_quietly(void)
{
#if STREBM_HAVE_ALSA
	snd_lib_error_set_handler(quiet_alsa);
#endif
	/* PortAudio's JACK host API installs its own (silent) handler once it
	 * is connected; before that, a missing server would be printed */
	jack_set_error_function(quiet_jack);
	jack_set_info_function(quiet_jack);
	return Pa_Initialize();
}

/* ---- the callback thread ------------------------------------------------ */

static int on_audio(const void *input, void *output, unsigned long frames,
		    const PaStreamCallbackTimeInfo *time, PaStreamCallbackFlags flags, void *data)
{
	struct strebm_pa *pa = data;
	const float *const *in = input ? (const float *const *)input : pa->null_in;
	float *const *out = output;
	size_t k;

	(void)time;
	atomic_fetch_add_explicit(&pa->callbacks, 1, memory_order_relaxed);
	if (flags & (paInputUnderflow | paInputOverflow | paOutputUnderflow | paOutputOverflow)) {
		atomic_fetch_add_explicit(&pa->xruns, 1, memory_order_relaxed);
		if (pa->hooks.xrun)
			pa->hooks.xrun(pa->hooks.data);
	}
	if (!out)
		return paContinue;
	if (atomic_load_explicit(&pa->inject, memory_order_relaxed) || frames > pa->frames) {
		for (k = 0; k < pa->K; k++)
			memset(out[k], 0, frames * sizeof(float));
		if (frames <= pa->frames) {
			atomic_store(&pa->aborted, true);
			return paAbort;
		}
		return paContinue;
	}
	pa->hooks.audio(pa->hooks.data, in, out, (size_t)frames);
	return paContinue;
}

static void on_finished(void *data)
{
	struct strebm_pa *pa = data;

	atomic_store(&pa->finished, true);
}

/* ---- devices ------------------------------------------------------------ */

static const char *api_name(const PaDeviceInfo *d)
{
	const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);

	return h && h->name ? h->name : "?";
}

static void describe(char *buf, size_t len, size_t *pos, PaDeviceIndex i)
{
	const PaDeviceInfo *d = Pa_GetDeviceInfo(i);

	if (!d)
		return;
	add(buf, len, pos, "%d '%s' (%s, %d in/%d out)", i, d->name, api_name(d),
	    d->maxInputChannels, d->maxOutputChannels);
}

static void list_available(char *buf, size_t len, size_t *pos)
{
	PaDeviceIndex i, n = Pa_GetDeviceCount();

	add(buf, len, pos, "; available: ");
	if (n <= 0) {
		add(buf, len, pos, "none (no sound card, and no JACK server for the JACK host API?)");
		return;
	}
	for (i = 0; i < n; i++) {
		if (i)
			add(buf, len, pos, ", ");
		describe(buf, len, pos, i);
	}
}

static bool enough(PaDeviceIndex i, bool input, size_t want)
{
	const PaDeviceInfo *d = Pa_GetDeviceInfo(i);

	return d && (size_t)(input ? d->maxInputChannels : d->maxOutputChannels) >= want;
}

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/*
 * Resolve name for one direction: an index, an exact name (the first that
 * has the channels, when several host APIs share a name), or a substring
 * (case-insensitive) that matches one device, or one with the channels.
 */
static int find_device(const char *name, bool input, size_t want, PaDeviceIndex *out,
		       char *err, size_t errlen)
{
	PaDeviceIndex i, n = Pa_GetDeviceCount(), exact = paNoDevice, sub = paNoDevice;
	size_t pos = 0, nsub = 0, nsub_ok = 0;
	PaDeviceIndex sub_ok = paNoDevice;
	const char *dir = input ? "input" : "output";

	if (n < 0) {
		snprintf(err, errlen, "PortAudio cannot count devices: %s", Pa_GetErrorText(n));
		return -EIO;
	}
	if (!*name) {
		i = input ? Pa_GetDefaultInputDevice() : Pa_GetDefaultOutputDevice();
		if (i == paNoDevice) {
			add(err, errlen, &pos, "PortAudio has no default %s device", dir);
			list_available(err, errlen, &pos);
			return -ENODEV;
		}
		*out = i;
		return 0;
	}
	if (all_digits(name)) {
		long v = strtol(name, NULL, 10);
		if (v >= n || v < 0) {
			add(err, errlen, &pos, "no PortAudio device with index %s", name);
			list_available(err, errlen, &pos);
			return -ENODEV;
		}
		*out = (PaDeviceIndex)v;
		return 0;
	}
	for (i = 0; i < n; i++) {
		const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
		if (!d || !d->name)
			continue;
		if (!strcmp(d->name, name) &&
		    (exact == paNoDevice || (!enough(exact, input, want) && enough(i, input, want))))
			exact = i;
		if (strcasestr(d->name, name)) {
			if (!nsub++)
				sub = i;
			if (enough(i, input, want) && !nsub_ok++)
				sub_ok = i;
		}
	}
	if (exact != paNoDevice) {
		*out = exact;
		return 0;
	}
	if (nsub == 1 || nsub_ok == 1) {
		*out = nsub == 1 ? sub : sub_ok;
		return 0;
	}
	if (nsub > 1) {
		bool first = true;
		add(err, errlen, &pos, "PortAudio device '%s' is ambiguous, it matches ", name);
		for (i = 0; i < n; i++) {
			const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
			if (!d || !d->name || !strcasestr(d->name, name))
				continue;
			if (!first)
				add(err, errlen, &pos, ", ");
			first = false;
			describe(err, errlen, &pos, i);
		}
		add(err, errlen, &pos, ": give its index or full name");
		return -ENODEV;
	}
	add(err, errlen, &pos, "no PortAudio device '%s'", name);
	list_available(err, errlen, &pos);
	return -ENODEV;
}

static int check_channels(PaDeviceIndex i, bool input, size_t want, char *err, size_t errlen)
{
	const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
	size_t pos = 0;
	int have = input ? d->maxInputChannels : d->maxOutputChannels;

	if ((size_t)have >= want)
		return 0;
	add(err, errlen, &pos, "PortAudio device ");
	describe(err, errlen, &pos, i);
	add(err, errlen, &pos, " has %d %s channel%s, %zu wanted (%s)", have,
	    input ? "input" : "output", have == 1 ? "" : "s", want,
	    input ? "audio.channels" : "engine.sources");
	list_available(err, errlen, &pos);
	return -EINVAL;
}

/* ---- lifecycle ---------------------------------------------------------- */

struct strebm_pa *strebm_pa_create(const struct strebm_pa_config *cfg,
				   const struct strebm_pa_hooks *hooks)
{
	struct strebm_pa *pa;

	if (!cfg || !hooks || !cfg->M || !cfg->K || cfg->M > MAX_CHANNELS ||
	    cfg->K > MAX_CHANNELS || !cfg->rate || !cfg->frames || cfg->frames > MAX_PERIOD ||
	    !hooks->audio || !hooks->latency)
		return NULL;
	if ((cfg->device && strlen(cfg->device) >= NAME_LEN) ||
	    (cfg->output_device && strlen(cfg->output_device) >= NAME_LEN))
		return NULL;
	pa = calloc(1, sizeof(*pa));
	if (!pa)
		return NULL;
	pa->hooks = *hooks;
	snprintf(pa->device, sizeof(pa->device), "%s", cfg->device ? cfg->device : "");
	snprintf(pa->output_device, sizeof(pa->output_device), "%s",
		 cfg->output_device ? cfg->output_device : "");
	snprintf(pa->client_name, sizeof(pa->client_name), "%s",
		 cfg->client_name ? cfg->client_name : "");
	pa->M = cfg->M;
	pa->K = cfg->K;
	pa->frames = cfg->frames;
	pa->want_rate = cfg->rate;
	return pa;
}

/* The JACK host API's server went away under a started stream: every
 * PortAudio call on it would block for ten minutes (see portaudio.h). */
static bool jack_server_gone(struct strebm_pa *pa)
{
	return pa->stream && pa->jack_api && pa->running && !atomic_load(&pa->aborted) &&
	       Pa_IsStreamActive(pa->stream) != 1;
}

static void abandon(struct strebm_pa *pa)
{
	pa->stream = NULL;
	pa->running = false;
	pa->initialised = false; /* Pa_Terminate would close the stream: never call it */
	pa->failed = true;
	pa_unusable = true;
	pa->desc[0] = 0;
}

void strebm_pa_close(struct strebm_pa *pa)
{
	if (!pa)
		return;
	if (jack_server_gone(pa)) {
		abandon(pa);
		return;
	}
	if (pa->stream) {
		if (Pa_IsStreamStopped(pa->stream) == 0)
			Pa_AbortStream(pa->stream);
		Pa_CloseStream(pa->stream);
		pa->stream = NULL;
	}
	pa->running = false;
	if (pa->initialised) {
		Pa_Terminate();
		pa->initialised = false;
	}
	pa->desc[0] = 0;
}

void strebm_pa_destroy(struct strebm_pa *pa)
{
	if (!pa)
		return;
	strebm_pa_close(pa);
	free(pa);
}

int strebm_pa_open(struct strebm_pa *pa, char *err, size_t errlen)
{
	PaStreamParameters ip, op;
	PaDeviceIndex in_dev, out_dev;
	const PaDeviceInfo *di, *dout;
	const PaStreamInfo *si;
	const char *out_name;
	PaError e;
	size_t pos = 0;
	int r;

	if (!pa || !err || !errlen)
		return -EINVAL;
	err[0] = 0;
	if (pa->stream)
		return 0;
	if (pa_unusable) {
		snprintf(err, errlen, "PortAudio is unusable in this process: its JACK host API "
			 "lost its server under a running stream (restart strebmd)");
		return -EIO;
	}
	/* PortAudio's JACK host API takes its client name before initialising
	 * (it keeps the pointer: pa->client_name lives as long as pa) */
	if (pa->client_name[0])
		PaJack_SetClientName(pa->client_name);
	e = init_quietly();
	if (e != paNoError) {
		snprintf(err, errlen, "PortAudio cannot initialise: %s", Pa_GetErrorText(e));
		return -EIO;
	}
	pa->initialised = true;
	r = find_device(pa->device, true, pa->M, &in_dev, err, errlen);
	if (r < 0)
		goto fail;
	out_name = pa->output_device[0] ? pa->output_device : pa->device;
	if (!pa->output_device[0] && pa->device[0])
		out_dev = in_dev;
	else if ((r = find_device(out_name, false, pa->K, &out_dev, err, errlen)) < 0)
		goto fail;
	if ((r = check_channels(in_dev, true, pa->M, err, errlen)) < 0 ||
	    (r = check_channels(out_dev, false, pa->K, err, errlen)) < 0)
		goto fail;
	di = Pa_GetDeviceInfo(in_dev);
	dout = Pa_GetDeviceInfo(out_dev);

	memset(&ip, 0, sizeof(ip));
	ip.device = in_dev;
	ip.channelCount = (int)pa->M;
	ip.sampleFormat = paFloat32 | paNonInterleaved;
	ip.suggestedLatency = di->defaultLowInputLatency;
	memset(&op, 0, sizeof(op));
	op.device = out_dev;
	op.channelCount = (int)pa->K;
	op.sampleFormat = paFloat32 | paNonInterleaved;
	op.suggestedLatency = dout->defaultLowOutputLatency;
	e = Pa_IsFormatSupported(&ip, &op, (double)pa->want_rate);
	if (e != paFormatIsSupported) {
		add(err, errlen, &pos, "PortAudio device ");
		describe(err, errlen, &pos, in_dev);
		if (out_dev != in_dev) {
			add(err, errlen, &pos, " with ");
			describe(err, errlen, &pos, out_dev);
		}
		add(err, errlen, &pos, " refuses %zu in/%zu out float32 at %u Hz: %s "
		    "(its default rate is %.0f Hz; set portaudio.rate)", pa->M, pa->K,
		    pa->want_rate, Pa_GetErrorText(e), di->defaultSampleRate);
		r = -EINVAL;
		goto fail;
	}
	atomic_store(&pa->inject, false);
	atomic_store(&pa->aborted, false);
	atomic_store(&pa->finished, false);
	e = Pa_OpenStream(&pa->stream, &ip, &op, (double)pa->want_rate,
			  (unsigned long)pa->frames, paClipOff | paDitherOff, on_audio, pa);
	if (e != paNoError) {
		pa->stream = NULL;
		add(err, errlen, &pos, "cannot open a PortAudio stream on ");
		describe(err, errlen, &pos, in_dev);
		add(err, errlen, &pos, ": %s", Pa_GetErrorText(e));
		if (e == paUnanticipatedHostError)
			add(err, errlen, &pos, " (%s)", Pa_GetLastHostErrorInfo()->errorText);
		r = -EIO;
		goto fail;
	}
	Pa_SetStreamFinishedCallback(pa->stream, on_finished);
	si = Pa_GetStreamInfo(pa->stream);
	pa->rate = si && si->sampleRate > 0 ? (unsigned)lround(si->sampleRate) : pa->want_rate;
	pa->device_latency = si ? (size_t)lround((si->inputLatency + si->outputLatency) *
						 (double)pa->rate) : 0;
	pa->jack_api = Pa_GetHostApiInfo(di->hostApi)->type == paJACK ||
		       Pa_GetHostApiInfo(dout->hostApi)->type == paJACK;
	pos = 0;
	add(pa->desc, sizeof(pa->desc), &pos, "'%s' (%s), device %d", di->name, api_name(di),
	    in_dev);
	if (out_dev != in_dev)
		add(pa->desc, sizeof(pa->desc), &pos, ", output '%s' (%s), device %d",
		    dout->name, api_name(dout), out_dev);
	return 0;
fail:
	strebm_pa_close(pa);
	return r;
}

int strebm_pa_start(struct strebm_pa *pa, char *err, size_t errlen)
{
	PaError e;

	if (!pa || !pa->stream) {
		if (err && errlen)
			snprintf(err, errlen, "the PortAudio stream is not open");
		return -EINVAL;
	}
	if (pa->running)
		return 0;
	atomic_store(&pa->aborted, false);
	atomic_store(&pa->finished, false);
	e = Pa_StartStream(pa->stream);
	if (e != paNoError) {
		if (err && errlen)
			snprintf(err, errlen, "cannot start the PortAudio stream on %s: %s", pa->desc,
				 Pa_GetErrorText(e));
		return -EIO;
	}
	pa->running = true;
	pa->last_progress = -1.0; /* the next poll starts the stall clock */
	return 0;
}

void strebm_pa_stop(struct strebm_pa *pa)
{
	if (!pa || !pa->stream || !pa->running)
		return;
	if (jack_server_gone(pa)) {
		abandon(pa);
		return;
	}
	Pa_StopStream(pa->stream);
	pa->running = false;
}

enum strebm_pa_event strebm_pa_poll(struct strebm_pa *pa, double now)
{
	char err[1024];
	const char *why = NULL;
	int r;

	if (!pa || pa->failed)
		return STREBM_PA_IDLE;
	if (pa->stream) {
		uint64_t c = atomic_load_explicit(&pa->callbacks, memory_order_relaxed);
		if (!pa->running)
			return STREBM_PA_IDLE;
		if (Pa_IsStreamActive(pa->stream) != 1 || atomic_load(&pa->finished)) {
			why = atomic_load(&pa->aborted) ? "ended by request" : "the device went away";
		} else if (c != pa->last_callbacks || pa->last_progress < 0) {
			pa->last_callbacks = c;
			pa->last_progress = now;
		} else if (!pa->jack_api && now - pa->last_progress > STALL_S) {
			/* (a JACK server that stops its clock is not a lost device) */
			why = "no callback for 2 s";
		}
		if (!why)
			return STREBM_PA_IDLE;
		if (jack_server_gone(pa)) {
			say(pa, 3, "the JACK server behind PortAudio's JACK host API went away: "
			    "PortAudio cannot stop, close or reopen the stream on %s (PortAudio "
			    "issue #820); restart strebmd, or use the jack backend, which "
			    "reconnects", pa->desc);
			abandon(pa);
			return STREBM_PA_FAILED;
		}
		say(pa, 4, "PortAudio stream on %s stopped (%s); reopening", pa->desc, why);
		strebm_pa_close(pa);
		pa->running = true; /* still wanted: reopen and start */
		pa->backoff = BACKOFF_MIN;
		pa->retries = 0;
		pa->retry_at = now + pa->backoff;
		return STREBM_PA_LOST;
	}
	if (!pa->running || now < pa->retry_at)
		return STREBM_PA_IDLE;
	pa->running = false;
	r = strebm_pa_open(pa, err, sizeof(err));
	if (r == 0)
		r = strebm_pa_start(pa, err, sizeof(err));
	if (r < 0) {
		strebm_pa_close(pa);
		pa->running = true;
		pa->retries++;
		if (pa->retries == 1 || pa->retries % 30 == 0)
			say(pa, pa->retries == 1 ? 6 : 7, "%s; still waiting", err);
		pa->backoff = pa->backoff < BACKOFF_MIN ? BACKOFF_MIN : 2.0 * pa->backoff;
		if (pa->backoff > BACKOFF_MAX)
			pa->backoff = BACKOFF_MAX;
		pa->retry_at = now + pa->backoff;
		return STREBM_PA_IDLE;
	}
	say(pa, 6, "PortAudio stream is back on %s", pa->desc);
	return STREBM_PA_BACK;
}

bool strebm_pa_active(const struct strebm_pa *pa)
{
	return pa && pa->stream && pa->running && Pa_IsStreamActive(pa->stream) == 1;
}

unsigned strebm_pa_rate(const struct strebm_pa *pa)
{
	return pa->rate ? pa->rate : pa->want_rate;
}

size_t strebm_pa_period(const struct strebm_pa *pa)
{
	return pa->frames;
}

size_t strebm_pa_max_period(void)
{
	return MAX_PERIOD;
}

size_t strebm_pa_latency(const struct strebm_pa *pa, size_t *device_frames)
{
	size_t dev = pa->stream ? pa->device_latency : 0;

	if (device_frames)
		*device_frames = dev;
	if (!pa->stream)
		return 0;
	return dev + pa->hooks.latency(pa->hooks.data, pa->frames);
}

uint64_t strebm_pa_xruns(const struct strebm_pa *pa)
{
	return atomic_load(&((struct strebm_pa *)pa)->xruns);
}

uint64_t strebm_pa_callbacks(const struct strebm_pa *pa)
{
	return atomic_load(&((struct strebm_pa *)pa)->callbacks);
}

const char *strebm_pa_device(const struct strebm_pa *pa)
{
	return pa->desc;
}

void strebm_pa_inject_loss(struct strebm_pa *pa)
{
	atomic_store(&pa->inject, true);
}

int strebm_pa_list_devices(FILE *out)
{
	PaDeviceIndex i, n, din, dout;
	PaError e;

	if (pa_unusable) {
		fprintf(out, "PortAudio is unusable in this process (its JACK host API lost its "
			"server)\n");
		return -EIO;
	}
	e = init_quietly();
	if (e != paNoError) {
		fprintf(out, "PortAudio cannot initialise: %s\n", Pa_GetErrorText(e));
		return -EIO;
	}
	n = Pa_GetDeviceCount();
	din = Pa_GetDefaultInputDevice();
	dout = Pa_GetDefaultOutputDevice();
	if (n <= 0)
		fprintf(out, "no PortAudio devices (no sound card, and no JACK server for the "
			"JACK host API?)\n");
	else
		fprintf(out, "%5s  %-32s %-28s %4s %4s %8s\n", "index", "name", "host API", "in",
			"out", "rate");
	for (i = 0; i < n; i++) {
		const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
		if (!d)
			continue;
		fprintf(out, "%5d  %-32s %-28s %4d %4d %8.0f%s%s\n", i, d->name, api_name(d),
			d->maxInputChannels, d->maxOutputChannels, d->defaultSampleRate,
			i == din ? "  default input" : "", i == dout ? "  default output" : "");
	}
	Pa_Terminate();
	return n < 0 ? -EIO : (int)n;
}
