/* SPDX-License-Identifier: MIT */
/*
 * strebm pa: the PortAudio backend. One full-duplex stream, M input and K
 * output channels, 32-bit float, non-interleaved: the stream callback hands
 * PortAudio's planar buffers to the audio hook directly and does nothing
 * else (RT-safe), so the daemon drives the same pipeline as with JACK.
 * (The module is io/pa.{c,h}: portaudio.h is the library's own header,
 * which a file of that name in io/ would shadow on the include path.)
 *
 * Devices are found by index ("3"), by exact name ("system"), or by a
 * case-insensitive substring that matches exactly one device ("usb"); an
 * empty name takes the default input (and output) device. When the device
 * is absent, ambiguous or lacks channels, or does not take the rate, the
 * error is one line that names the available devices (index, name, host
 * API, input/output channels).
 *
 * Supervision: poll() notices a stream that stopped on its own (device
 * unplugged, host API error, a callback that stalls) and reopens it with
 * backoff (0.25 s doubling to 2 s): PortAudio is terminated and initialised
 * again, since it only learns about devices in Pa_Initialize. The rate and
 * period are the configured ones, so a reopened stream needs no new
 * pipeline. One exception: PortAudio's JACK host API (19.6 and later) cannot
 * stop, close or terminate a stream whose server went away (each call waits
 * ten minutes for the dead process thread, then fails an assertion in
 * Debian's build; PortAudio issue #820). That stream is abandoned, poll()
 * says STREBM_PA_FAILED, and PortAudio is unusable for the rest of the
 * process: the daemon should exit non-zero and let its supervisor restart
 * it (or use the native JACK backend, io/jack.h, which reconnects).
 *
 * Noise: Pa_Initialize probes every host API; ALSA prints a page of
 * "ALSA lib ..." lines on a machine without cards, and libjack prints
 * "Cannot connect to server socket" when no server runs. Both are silenced
 * here (snd_lib_error_set_handler when built with libasound, and
 * jack_set_error_function; both are process-wide). PortAudio's own
 * "Expression ... failed" debug lines, printed by some host APIs on errors,
 * cannot be turned off through its public API and may still appear.
 *
 * Threads: everything on the main thread, except the hooks: audio and xrun
 * run on PortAudio's callback thread (must be RT-safe); latency and message
 * are called on the main thread, from the functions here.
 */
#ifndef STREBM_PA_H
#define STREBM_PA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The same shape as struct strebm_jack_hooks: one set of functions serves both. */
struct strebm_pa_hooks {
	/* in[m][i] (in may hold NULLs: read them as silence), out[k][i],
	 * nframes == the period: the audio thread's work. RT-safe. */
	void (*audio)(void *data, const float *const *in, float *const *out, size_t nframes);
	/* an input overflow or output underflow reported by the host API
	 * (audio thread, RT-safe); may be NULL */
	void (*xrun)(void *data);
	/* the algorithmic latency in frames at this period (main thread) */
	size_t (*latency)(void *data, size_t period);
	/* a message for the log (main thread): level 3 error .. 7 debug; may be NULL */
	void (*message)(void *data, int level, const char *msg);
	void *data;
};

struct strebm_pa_config {
	const char *device;        /* index, name or unique substring; NULL/"": default */
	const char *output_device; /* NULL/"": the input device (default output when
				    * device is empty too) */
	size_t M, K;               /* input and output channels, >= 1 */
	unsigned rate;             /* Hz */
	size_t frames;             /* frames per buffer: every callback gets exactly this */
	const char *client_name;   /* NULL/"": PortAudio's default; names the JACK
				    * client when the JACK host API is used */
};

enum strebm_pa_event {
	STREBM_PA_IDLE = 0, /* nothing new */
	STREBM_PA_LOST,     /* the stream stopped on its own; reopening with backoff */
	STREBM_PA_BACK,     /* reopened and running again (same rate and period) */
	STREBM_PA_FAILED,   /* lost for good (JACK host API, see above); reported once */
};

struct strebm_pa;

/**
 * Create (copies cfg's strings; no PortAudio call yet).
 * @return NULL when M, K, rate or frames is 0, frames > strebm_pa_max_period(),
 * M or K > 256, a hook other than xrun/message is NULL, or out of memory.
 */
struct strebm_pa *strebm_pa_create(const struct strebm_pa_config *cfg,
				   const struct strebm_pa_hooks *hooks);
/** Stop, close and free; NULL is a no-op. */
void strebm_pa_destroy(struct strebm_pa *pa);

/**
 * Initialise PortAudio, find the device(s) and open the stream (not started).
 * @return 0; -ENODEV when the device is absent or the name is ambiguous;
 * -EINVAL when it lacks channels or refuses the rate or format; -EIO for
 * other PortAudio errors (also once PortAudio was left unusable, see above).
 * err gets one line saying why (give it 1024 bytes: it lists devices).
 */
int strebm_pa_open(struct strebm_pa *pa, char *err, size_t errlen);
/** Start the stream. @return 0, -EINVAL when not open, or -EIO with err set. */
int strebm_pa_start(struct strebm_pa *pa, char *err, size_t errlen);
/** Stop the stream (waits for the last callback); no-op when not running. */
void strebm_pa_stop(struct strebm_pa *pa);
/** Stop and close the stream and terminate PortAudio; no-op when not open. */
void strebm_pa_close(struct strebm_pa *pa);

/**
 * Supervise (main thread, a few times a second): a lost stream, its reopening
 * with backoff. now is CLOCK_MONOTONIC seconds. Only a started stream is
 * supervised: after stop() poll() does nothing.
 */
enum strebm_pa_event strebm_pa_poll(struct strebm_pa *pa, double now);

/** True while the stream is open, started and running. */
bool strebm_pa_active(const struct strebm_pa *pa);
/** The stream's sample rate in Hz (valid once opened). */
unsigned strebm_pa_rate(const struct strebm_pa *pa);
/** The period: frames per callback (the configured frames per buffer). */
size_t strebm_pa_period(const struct strebm_pa *pa);
/** Largest frames per buffer create() accepts (the pipeline's max_period). */
size_t strebm_pa_max_period(void);
/**
 * Input-to-output latency in frames: the stream's input plus output latency
 * (Pa_GetStreamInfo) plus the latency hook at this period. 0 when not open.
 * device_frames, when not NULL, gets the stream's part alone.
 */
size_t strebm_pa_latency(const struct strebm_pa *pa, size_t *device_frames);
/** Xruns the host API reported (status flags) since create. */
uint64_t strebm_pa_xruns(const struct strebm_pa *pa);
/** Callbacks run since create (progress, any thread). */
uint64_t strebm_pa_callbacks(const struct strebm_pa *pa);
/**
 * What was opened, for the log: e.g. "'system' (JACK Audio Connection Kit),
 * device 0"; "" when not open. Valid until the next open/close/poll.
 */
const char *strebm_pa_device(const struct strebm_pa *pa);

/**
 * Print the devices, one a line: index, name, host API, input/output
 * channels, default rate, and which are the defaults (for --list-devices).
 * Main thread. @return the number of devices, or -EIO with a line on out.
 */
int strebm_pa_list_devices(FILE *out);

/**
 * Test hook: the stream callback ends the stream (returns paAbort) on its
 * next call, the way a host API ends a stream whose device failed; poll()
 * then reports STREBM_PA_LOST and reopens it.
 */
void strebm_pa_inject_loss(struct strebm_pa *pa);

#endif
