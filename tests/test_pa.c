/* SPDX-License-Identifier: MIT */
/*
 * Check suite: io/pa (the PortAudio backend), through PortAudio's JACK host
 * API against a private dummy JACK server (there is no sound card here).
 * Each test starts `jackd -n strebmtest_pa -d dummy -r 48000 -p 256`; main()
 * sets JACK_DEFAULT_SERVER, which libjack (and so PortAudio's JACK host API,
 * whose jack_client_open names no server) honours; the server's client
 * "system" is then PortAudio device "system" with 2 inputs and 2 outputs.
 *
 * The stream runs a hook that copies its inputs to its outputs while a
 * player client plays two tones into the PortAudio client's input ports and
 * a recorder client records its output ports: each tone must come back on
 * its own channel at its level. Also: opening by name, substring, index and
 * default; the one-line errors (they name the available devices); a stream
 * that ends on its own is reopened in-process; a killed server is reported
 * (STREBM_PA_FAILED, without hanging), and after the server is back a fresh
 * process opens the device again (PortAudio's JACK host API cannot, in the
 * same process: see io/pa.h).
 *
 * Without jackd the suite fails (it does not skip): CI installs jackd2.
 */
#include <check.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jack/jack.h>

#include "jack.h"
#include "pa.h"

#define RATE 48000
#define PERIOD 256
#define HOOK_LATENCY 100
#define F0 440.0
#define F1 1000.0
#define AMP 0.5
#define REC_MAX (RATE * 4)

static char server[64], pidfile[256], logfile[256], self_exe[4096];

/* ---- the dummy server ---------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };

	nanosleep(&ts, NULL);
}

static pid_t read_pid(void)
{
	FILE *f = fopen(pidfile, "r");
	long pid = 0;

	if (!f)
		return 0;
	if (fscanf(f, "%ld", &pid) != 1)
		pid = 0;
	fclose(f);
	return (pid_t)pid;
}

/* Start the server (unless it answers) and wait until it does; "" or a reason. */
static const char *server_start(void)
{
	static char why[512];
	pid_t pid;
	double t0;
	FILE *f;

	if (strebm_jack_server_running(server))
		return "";
	pid = fork();
	if (pid < 0)
		return "fork failed";
	if (pid == 0) {
		if (!freopen(logfile, "a", stdout) || !freopen(logfile, "a", stderr))
			_exit(126);
		setsid(); /* not in the test's process group */
		execlp("jackd", "jackd", "-n", server, "-d", "dummy", "-r", "48000", "-p", "256",
		       "-C", "2", "-P", "2", (char *)NULL);
		_exit(127);
	}
	f = fopen(pidfile, "w");
	if (f) {
		fprintf(f, "%ld\n", (long)pid);
		fclose(f);
	}
	for (t0 = now_s(); now_s() - t0 < 10.0; sleep_s(0.1)) {
		if (strebm_jack_server_running(server))
			return "";
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
	}
	snprintf(why, sizeof(why), "jackd -n %s -d dummy did not start (log: %s)", server, logfile);
	return why;
}

/* Stop the server (SIGTERM, then SIGKILL; hard makes it a crash) and reap it
 * when it is this process's child. */
static void server_stop(bool hard)
{
	pid_t pid = read_pid();
	double t0;

	if (pid <= 0)
		return;
	kill(pid, hard ? SIGKILL : SIGTERM);
	for (t0 = now_s(); now_s() - t0 < 5.0; sleep_s(0.02)) {
		if (waitpid(pid, NULL, WNOHANG) == pid || kill(pid, 0) != 0)
			break;
		if (now_s() - t0 > 3.0)
			kill(pid, SIGKILL);
	}
	unlink(pidfile);
}

/* Checked fixture: each test (in its own process) starts its own server, so
 * that it can kill it and start it again (a server is reaped by the process
 * that started it: jackd refuses to start while a zombie holds the name). */
static void need_server(void)
{
	const char *why = server_start();

	ck_assert_msg(!*why, "%s", why);
}

static void drop_server(void)
{
	server_stop(false);
}

/* ---- the hook: copy inputs to outputs ------------------------------------ */

struct hook_state {
	_Atomic uint64_t calls, xruns;
	_Atomic size_t max_frames, min_frames;
	_Atomic int null_inputs;
};

static struct hook_state hs;

static void hook_audio(void *d, const float *const *in, float *const *out, size_t n)
{
	struct hook_state *h = d;
	size_t k;

	for (k = 0; k < 2; k++) {
		if (in[k])
			memcpy(out[k], in[k], n * sizeof(float));
		else
			memset(out[k], 0, n * sizeof(float));
	}
	if (!in[0] || !in[1])
		atomic_store_explicit(&h->null_inputs, 1, memory_order_relaxed);
	if (n > atomic_load_explicit(&h->max_frames, memory_order_relaxed))
		atomic_store_explicit(&h->max_frames, n, memory_order_relaxed);
	if (n < atomic_load_explicit(&h->min_frames, memory_order_relaxed))
		atomic_store_explicit(&h->min_frames, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->calls, 1, memory_order_relaxed);
}

static void hook_xrun(void *d)
{
	struct hook_state *h = d;

	atomic_fetch_add_explicit(&h->xruns, 1, memory_order_relaxed);
}

static size_t hook_latency(void *d, size_t period)
{
	(void)d;
	return period + HOOK_LATENCY;
}

static void hook_message(void *d, int level, const char *msg)
{
	(void)d;
	fprintf(stderr, "pa[%d]: %s\n", level, msg);
}

static struct strebm_pa *make(const char *device, size_t M, size_t K, unsigned rate,
			      size_t frames)
{
	struct strebm_pa_config c = { device, NULL, M, K, rate, frames, NULL };
	struct strebm_pa_hooks h = { hook_audio, hook_xrun, hook_latency, hook_message, &hs };

	memset(&hs, 0, sizeof(hs));
	hs.min_frames = (size_t)-1;
	return strebm_pa_create(&c, &h);
}

/* ---- player and recorder (two JACK clients, so the graph has no cycle) ---- */

static jack_client_t *player, *recorder;
static jack_port_t *play_port[2], *rec_port[2];
static float rec[2][REC_MAX];
static _Atomic size_t rec_pos;
static _Atomic int rec_armed;
static uint64_t play_t;

static int on_play(jack_nframes_t n, void *arg)
{
	size_t i;
	float *o0 = jack_port_get_buffer(play_port[0], n), *o1 = jack_port_get_buffer(play_port[1], n);

	(void)arg;
	for (i = 0; i < n; i++, play_t++) {
		double t = (double)play_t / RATE;
		o0[i] = (float)(AMP * sin(2.0 * M_PI * F0 * t));
		o1[i] = (float)(AMP * sin(2.0 * M_PI * F1 * t));
	}
	return 0;
}

static int on_record(jack_nframes_t n, void *arg)
{
	size_t p = atomic_load(&rec_pos), i, k;

	(void)arg;
	if (!atomic_load(&rec_armed))
		return 0;
	for (k = 0; k < 2; k++) {
		const float *in = jack_port_get_buffer(rec_port[k], n);
		for (i = 0; i < n && p + i < REC_MAX; i++)
			rec[k][p + i] = in[i];
	}
	atomic_store(&rec_pos, p + i);
	return 0;
}

static jack_client_t *client(const char *name)
{
	jack_status_t st;
	jack_client_t *c = jack_client_open(name, JackNoStartServer | JackServerName, &st, server);

	ck_assert_msg(c != NULL, "cannot open JACK client %s on %s (status 0x%x)", name, server,
		      (unsigned)st);
	return c;
}

static void players_open(void)
{
	player = client("strebm-pa-player");
	recorder = client("strebm-pa-recorder");
	play_port[0] = jack_port_register(player, "out_1", JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
	play_port[1] = jack_port_register(player, "out_2", JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput, 0);
	rec_port[0] = jack_port_register(recorder, "in_1", JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
	rec_port[1] = jack_port_register(recorder, "in_2", JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput, 0);
	ck_assert(play_port[0] && play_port[1] && rec_port[0] && rec_port[1]);
	jack_set_process_callback(player, on_play, NULL);
	jack_set_process_callback(recorder, on_record, NULL);
	ck_assert_int_eq(jack_activate(player), 0);
	ck_assert_int_eq(jack_activate(recorder), 0);
}

/* Wire player -> PortAudio's inputs and PortAudio's outputs -> recorder (the
 * PortAudio client's ports, in registration order; names vary by version). */
static void players_connect(void)
{
	const char **in = jack_get_ports(player, "^PortAudio:", JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput);
	const char **out = jack_get_ports(player, "^PortAudio:", JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput);
	size_t k;

	ck_assert_msg(in && in[0] && in[1] && !in[2], "PortAudio's client should have 2 input ports");
	ck_assert_msg(out && out[0] && out[1] && !out[2], "PortAudio's client should have 2 output ports");
	for (k = 0; k < 2; k++) {
		ck_assert_int_eq(jack_connect(player, jack_port_name(play_port[k]), in[k]), 0);
		ck_assert_int_eq(jack_connect(recorder, out[k], jack_port_name(rec_port[k])), 0);
	}
	jack_free(in);
	jack_free(out);
}

static void players_close(void)
{
	if (player)
		jack_client_close(player);
	if (recorder)
		jack_client_close(recorder);
	player = recorder = NULL;
}

/* Power of x at frequency f (Goertzel), per sample. */
static double tone(const float *x, size_t n, double f)
{
	double w = 2.0 * M_PI * f / RATE, c = 2.0 * cos(w), s1 = 0, s2 = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		double s = x[i] + c * s1 - s2;
		s2 = s1;
		s1 = s;
	}
	return (s1 * s1 + s2 * s2 - c * s1 * s2) / ((double)n * (double)n);
}

/* Record for `seconds` (polling the backend) and check both tones came back
 * on their own channels at their level. */
static void record_and_check(struct strebm_pa *pa, double seconds)
{
	const double f[2] = { F0, F1 };
	size_t n, skip = RATE / 5, k;
	double t0;

	atomic_store(&rec_pos, 0);
	atomic_store(&rec_armed, 1);
	for (t0 = now_s(); now_s() - t0 < seconds; sleep_s(0.05))
		ck_assert_int_eq(strebm_pa_poll(pa, now_s()), STREBM_PA_IDLE);
	atomic_store(&rec_armed, 0);
	n = atomic_load(&rec_pos);
	ck_assert_msg(n > skip + RATE / 2, "recorded only %zu frames in %.1f s", n, seconds);
	for (k = 0; k < 2; k++) {
		const float *x = rec[k] + skip;
		size_t m = n - skip, i;
		double rms = 0, own = tone(x, m, f[k]), other = tone(x, m, f[1 - k]);
		for (i = 0; i < m; i++)
			rms += (double)x[i] * x[i];
		rms = sqrt(rms / (double)m);
		/* a sine of amplitude A has RMS A/sqrt(2); the copy is exact, so
		 * only edge effects of the recording window count: 2% */
		ck_assert_msg(fabs(rms - AMP / sqrt(2.0)) < 0.02 * AMP,
			      "channel %zu: rms %.4f, want %.4f", k + 1, rms, AMP / sqrt(2.0));
		ck_assert_msg(own > 1000.0 * other, "channel %zu: its tone %.3g vs the other %.3g",
			      k + 1, own, other);
	}
}

static void run_checked(struct strebm_pa *pa, double seconds, size_t frames)
{
	char err[1024];

	ck_assert_int_eq(strebm_pa_start(pa, err, sizeof(err)), 0);
	ck_assert(strebm_pa_active(pa));
	players_open();
	players_connect();
	record_and_check(pa, seconds);
	ck_assert_uint_gt(atomic_load(&hs.calls), (uint64_t)(seconds * RATE / (double)frames / 2));
	ck_assert_uint_eq(atomic_load(&hs.max_frames), frames);
	ck_assert_uint_eq(atomic_load(&hs.min_frames), frames);
	ck_assert_int_eq(atomic_load(&hs.null_inputs), 0);
	ck_assert_uint_eq(strebm_pa_callbacks(pa), atomic_load(&hs.calls));
	ck_assert_uint_eq(strebm_pa_xruns(pa), atomic_load(&hs.xruns));
	strebm_pa_stop(pa);
	ck_assert(!strebm_pa_active(pa));
	players_close();
}

/* ---- tests ---------------------------------------------------------------- */

START_TEST(test_misuse)
{
	struct strebm_pa_config c = { "", NULL, 2, 2, RATE, PERIOD, NULL };
	struct strebm_pa_hooks h = { hook_audio, NULL, hook_latency, NULL, &hs };
	struct strebm_pa_hooks no_audio = { NULL, NULL, hook_latency, NULL, NULL };
	struct strebm_pa_hooks no_latency = { hook_audio, NULL, NULL, NULL, NULL };
	struct strebm_pa *pa;
	char err[64], longname[300];

	ck_assert_ptr_null(strebm_pa_create(NULL, &h));
	ck_assert_ptr_null(strebm_pa_create(&c, NULL));
	ck_assert_ptr_null(strebm_pa_create(&c, &no_audio));
	ck_assert_ptr_null(strebm_pa_create(&c, &no_latency));
	c.M = 0;
	ck_assert_ptr_null(strebm_pa_create(&c, &h));
	c.M = 2, c.K = 0;
	ck_assert_ptr_null(strebm_pa_create(&c, &h));
	c.K = 2, c.rate = 0;
	ck_assert_ptr_null(strebm_pa_create(&c, &h));
	c.rate = RATE, c.frames = 0;
	ck_assert_ptr_null(strebm_pa_create(&c, &h));
	c.frames = strebm_pa_max_period() + 1;
	ck_assert_ptr_null(strebm_pa_create(&c, &h));
	c.frames = PERIOD;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	c.device = longname;
	ck_assert_ptr_null(strebm_pa_create(&c, &h));
	c.device = "";
	strebm_pa_destroy(NULL);

	pa = strebm_pa_create(&c, &h);
	ck_assert_ptr_nonnull(pa);
	/* not open yet */
	ck_assert_int_eq(strebm_pa_start(pa, err, sizeof(err)), -EINVAL);
	ck_assert_int_eq(strebm_pa_poll(pa, now_s()), STREBM_PA_IDLE);
	ck_assert(!strebm_pa_active(pa));
	ck_assert_uint_eq(strebm_pa_latency(pa, NULL), 0);
	ck_assert_uint_eq(strebm_pa_period(pa), PERIOD);
	ck_assert_str_eq(strebm_pa_device(pa), "");
	ck_assert_int_eq(strebm_pa_open(pa, NULL, 0), -EINVAL);
	strebm_pa_stop(pa);
	strebm_pa_close(pa);
	strebm_pa_destroy(pa);
}
END_TEST

START_TEST(test_by_name)
{
	struct strebm_pa *pa = make("system", 2, 2, RATE, PERIOD);
	char err[1024];
	size_t dev, lat;

	ck_assert_ptr_nonnull(pa);
	ck_assert_msg(strebm_pa_open(pa, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(strstr(strebm_pa_device(pa), "'system'") &&
		      strstr(strebm_pa_device(pa), "JACK Audio Connection Kit"), "%s",
		      strebm_pa_device(pa));
	ck_assert_uint_eq(strebm_pa_rate(pa), RATE);
	ck_assert_uint_eq(strebm_pa_period(pa), PERIOD);
	/* the stream's latency plus the hook's, in frames */
	lat = strebm_pa_latency(pa, &dev);
	ck_assert_uint_eq(lat, dev + PERIOD + HOOK_LATENCY);
	ck_assert_uint_le(dev, 8 * PERIOD);
	run_checked(pa, 2.0, PERIOD);
	/* opened again after a stop, and a second start after stop works */
	ck_assert_int_eq(strebm_pa_start(pa, err, sizeof(err)), 0);
	sleep_s(0.2);
	ck_assert_uint_gt(atomic_load(&hs.calls), 0);
	strebm_pa_close(pa);
	ck_assert_str_eq(strebm_pa_device(pa), "");

	/* a unique case-insensitive substring finds it too */
	strebm_pa_destroy(pa);
	pa = make("YST", 2, 2, RATE, PERIOD);
	ck_assert_msg(strebm_pa_open(pa, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(strstr(strebm_pa_device(pa), "'system'"), "%s", strebm_pa_device(pa));
	strebm_pa_destroy(pa);
}
END_TEST

START_TEST(test_by_index)
{
	struct strebm_pa *pa;
	char *list = NULL, *line, idx[16] = "", err[1024];
	size_t len = 0;
	FILE *f = open_memstream(&list, &len);
	int n;

	/* --list-devices output: find the index of 'system' */
	ck_assert_ptr_nonnull(f);
	n = strebm_pa_list_devices(f);
	fclose(f);
	ck_assert_msg(n >= 1, "%s", list);
	ck_assert_msg(strstr(list, "JACK Audio Connection Kit") && strstr(list, "default input"),
		      "%s", list);
	for (line = list; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		int i;
		char name[64];
		if (sscanf(line, "%d %63s", &i, name) == 2 && !strcmp(name, "system"))
			snprintf(idx, sizeof(idx), "%d", i);
	}
	ck_assert_msg(*idx, "no 'system' in\n%s", list);
	free(list);

	/* and a period that is half the server's: the callback gets exactly it */
	pa = make(idx, 2, 2, RATE, PERIOD / 2);
	ck_assert_ptr_nonnull(pa);
	ck_assert_msg(strebm_pa_open(pa, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(strstr(strebm_pa_device(pa), "'system'"), "%s", strebm_pa_device(pa));
	ck_assert_uint_eq(strebm_pa_period(pa), PERIOD / 2);
	run_checked(pa, 1.5, PERIOD / 2);
	strebm_pa_destroy(pa);
}
END_TEST

START_TEST(test_default)
{
	struct strebm_pa *pa = make("", 2, 2, RATE, PERIOD);
	char err[1024];

	ck_assert_msg(strebm_pa_open(pa, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(strstr(strebm_pa_device(pa), "'system'"), "%s", strebm_pa_device(pa));
	strebm_pa_destroy(pa);
}
END_TEST

static void expect_error(const char *device, size_t M, size_t K, unsigned rate, int want,
			 const char *const *needles)
{
	struct strebm_pa *pa = make(device, M, K, rate, PERIOD);
	char err[1024];
	int r;

	ck_assert_ptr_nonnull(pa);
	r = strebm_pa_open(pa, err, sizeof(err));
	ck_assert_msg(r == want, "device '%s' %zu/%zu at %u: got %d (%s), want %d", device, M, K,
		      rate, r, err, want);
	ck_assert_msg(!strchr(err, '\n'), "one line: %s", err);
	for (; *needles; needles++)
		ck_assert_msg(strstr(err, *needles), "'%s' not in: %s", *needles, err);
	ck_assert_str_eq(strebm_pa_device(pa), "");
	strebm_pa_destroy(pa);
}

START_TEST(test_errors)
{
	struct strebm_pa *pa;
	char err[1024];

	expect_error("nosuchdevice", 2, 2, RATE, -ENODEV, (const char *const[]){
		"'nosuchdevice'", "available", "'system'", "JACK Audio Connection Kit",
		"2 in/2 out", NULL });
	expect_error("42", 2, 2, RATE, -ENODEV, (const char *const[]){
		"index 42", "available", "'system'", NULL });
	expect_error("system", 3, 2, RATE, -EINVAL, (const char *const[]){
		"2 input channels, 3 wanted", "audio.channels", "available", NULL });
	expect_error("system", 2, 5, RATE, -EINVAL, (const char *const[]){
		"2 output channels, 5 wanted", NULL });
	expect_error("system", 2, 2, 44100, -EINVAL, (const char *const[]){
		"44100 Hz", "48000 Hz", "portaudio.rate", NULL });
	/* a short buffer gets a cut line, not an overflow */
	pa = make("nosuchdevice", 2, 2, RATE, PERIOD);
	ck_assert_int_eq(strebm_pa_open(pa, err, 40), -ENODEV);
	ck_assert_uint_eq(strlen(err), 39);
	ck_assert_str_eq(err + 36, "...");
	/* after the errors, the same process opens a device fine */
	strebm_pa_destroy(pa);
	pa = make("system", 2, 2, RATE, PERIOD);
	ck_assert_msg(strebm_pa_open(pa, err, sizeof(err)) == 0, "%s", err);
	strebm_pa_destroy(pa);
}
END_TEST

/* A stream that ends on its own (as when a host API loses its device) is
 * closed, PortAudio initialised again and the stream reopened, in-process. */
START_TEST(test_reopen)
{
	struct strebm_pa *pa = make("system", 2, 2, RATE, PERIOD);
	char err[1024];
	bool lost = false, back = false;
	double t0;

	ck_assert_msg(strebm_pa_open(pa, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(strebm_pa_start(pa, err, sizeof(err)), 0);
	sleep_s(0.3);
	ck_assert_int_eq(strebm_pa_poll(pa, now_s()), STREBM_PA_IDLE);
	strebm_pa_inject_loss(pa);
	for (t0 = now_s(); now_s() - t0 < 5.0 && !back; sleep_s(0.05)) {
		enum strebm_pa_event ev = strebm_pa_poll(pa, now_s());
		ck_assert_int_ne(ev, STREBM_PA_FAILED);
		if (ev == STREBM_PA_LOST) {
			ck_assert(!lost);
			lost = true;
			ck_assert(!strebm_pa_active(pa));
		}
		if (ev == STREBM_PA_BACK) {
			ck_assert(lost);
			back = true;
		}
	}
	ck_assert_msg(lost && back, "lost %d, back %d after 5 s", lost, back);
	ck_assert(strebm_pa_active(pa));
	ck_assert_uint_eq(strebm_pa_rate(pa), RATE);
	/* the reopened stream carries audio again */
	memset(&hs, 0, sizeof(hs));
	hs.min_frames = (size_t)-1;
	players_open();
	players_connect();
	record_and_check(pa, 1.0);
	players_close();
	ck_assert_uint_gt(atomic_load(&hs.calls), 0);
	strebm_pa_destroy(pa);
}
END_TEST

/* Run in a fresh process by test_server_lost once the server is back:
 * open by name and carry audio. */
START_TEST(test_reopen_child)
{
	struct strebm_pa *pa = make("system", 2, 2, RATE, PERIOD);
	char err[1024];

	ck_assert_msg(strebm_pa_open(pa, err, sizeof(err)) == 0, "%s", err);
	run_checked(pa, 1.0, PERIOD);
	strebm_pa_destroy(pa);
}
END_TEST

static int reopen_main(void)
{
	Suite *s = suite_create("pa reopen");
	TCase *tc = tcase_create("after the server came back");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_reopen_child);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}

START_TEST(test_server_lost)
{
	struct strebm_pa *pa = make("system", 2, 2, RATE, PERIOD), *again;
	char err[1024];
	enum strebm_pa_event ev = STREBM_PA_IDLE;
	double t0, t1;
	pid_t child;
	int status = -1;

	ck_assert_msg(strebm_pa_open(pa, err, sizeof(err)) == 0, "%s", err);
	ck_assert_int_eq(strebm_pa_start(pa, err, sizeof(err)), 0);
	sleep_s(0.3);
	ck_assert_uint_gt(strebm_pa_callbacks(pa), 0);
	server_stop(true);
	/* reported promptly, without blocking in PortAudio */
	for (t0 = now_s(); now_s() - t0 < 5.0 && ev == STREBM_PA_IDLE; sleep_s(0.05))
		ev = strebm_pa_poll(pa, now_s());
	ck_assert_int_eq(ev, STREBM_PA_FAILED);
	ck_assert(!strebm_pa_active(pa));
	ck_assert_int_eq(strebm_pa_poll(pa, now_s()), STREBM_PA_IDLE);
	again = make("system", 2, 2, RATE, PERIOD);
	ck_assert_int_eq(strebm_pa_open(again, err, sizeof(err)), -EIO);
	ck_assert_msg(strstr(err, "restart"), "%s", err);
	t1 = now_s();
	strebm_pa_destroy(again);
	strebm_pa_destroy(pa);
	ck_assert_msg(now_s() - t1 < 1.0, "destroy blocked for %.1f s", now_s() - t1);

	/* the server comes back: a new process opens the device again */
	need_server();
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0) {
		execl(self_exe, self_exe, "--reopen", server, (char *)NULL);
		_exit(127);
	}
	for (t0 = now_s(); now_s() - t0 < 20.0; sleep_s(0.05))
		if (waitpid(child, &status, WNOHANG) == child)
			break;
	if (!WIFEXITED(status)) {
		kill(child, SIGKILL);
		waitpid(child, &status, 0);
	}
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		      "reopening in a new process after the server came back failed (status 0x%x)",
		      (unsigned)status);
}
END_TEST

static Suite *pa_suite(void)
{
	Suite *s = suite_create("pa");
	TCase *tc = tcase_create("misuse");
	TCase *live = tcase_create("jack host api");

	tcase_add_test(tc, test_misuse);
	suite_add_tcase(s, tc);
	tcase_add_checked_fixture(live, need_server, drop_server);
	tcase_set_timeout(live, 30);
	tcase_add_test(live, test_by_name);
	tcase_add_test(live, test_by_index);
	tcase_add_test(live, test_default);
	tcase_add_test(live, test_errors);
	tcase_add_test(live, test_reopen);
	tcase_add_test(live, test_server_lost);
	suite_add_tcase(s, live);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	const char *tmp = getenv("TMPDIR");
	ssize_t n;
	int failed;

	snprintf(server, sizeof(server), "strebmtest_pa"); /* fixed: see live_jack.sh */
	if (argc > 2 && !strcmp(argv[1], "--reopen")) {
		/* the child of test_server_lost: same server */
		snprintf(server, sizeof(server), "%s", argv[2]);
		setenv("JACK_DEFAULT_SERVER", server, 1);
		return reopen_main();
	}
	n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0) {
		fprintf(stderr, "cannot read /proc/self/exe\n");
		return 1;
	}
	self_exe[n] = 0;
	snprintf(pidfile, sizeof(pidfile), "%s/%s.pid", tmp && *tmp ? tmp : "/tmp", server);
	snprintf(logfile, sizeof(logfile), "%s/%s.log", tmp && *tmp ? tmp : "/tmp", server);
	/* PortAudio's JACK host API opens its client without a server name:
	 * libjack then takes $JACK_DEFAULT_SERVER */
	setenv("JACK_DEFAULT_SERVER", server, 1);
	if (system("command -v jackd >/dev/null 2>&1") != 0) {
		fprintf(stderr, "test_pa: jackd is not installed (apt-get install jackd2): the "
			"PortAudio tests need a dummy JACK server\n");
		return 1;
	}
	sr = srunner_create(pa_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* a test that failed skipped its teardown: stop what it left */
	server_stop(false);
	if (!failed)
		unlink(logfile);
	return failed ? 1 : 0;
}
