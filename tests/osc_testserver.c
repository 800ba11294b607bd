/* SPDX-License-Identifier: MIT */
/*
 * A stand-in for strebmd behind io/osc, for tests/strebmctl.sh: it serves
 * OSC on 127.0.0.1 (ephemeral port, printed on stdout), applies every posted
 * command to a fake status at once (so queries show settings), saves and
 * loads a small text file, and publishes changing meters. It stops on
 * SIGTERM/SIGINT. Test code only.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "osc.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct strebmd_status status;

static int on_post(void *data, const struct strebmd_cmd *c)
{
	(void)data;
	pthread_mutex_lock(&lock);
	switch (c->type) {
	case STREBMD_CMD_MODE: status.mode = (enum strebm_mode)c->ivalue; break;
	case STREBMD_CMD_ELL: status.ell_ms[c->source] = c->value; status.learn[c->source] = false; break;
	case STREBMD_CMD_LEARN: status.learn[c->source] = c->ivalue; break;
	case STREBMD_CMD_KERNEL: status.kernel[c->source] = c->ivalue; break;
	case STREBMD_CMD_GAIN: status.gain_db[c->source] = c->value; break;
	case STREBMD_CMD_MUTE: status.mute[c->source] = c->ivalue; break;
	case STREBMD_CMD_FREEZE: status.frozen = c->ivalue; break;
	case STREBMD_CMD_RESET: status.hops = 0; break;
	default: break;
	}
	pthread_mutex_unlock(&lock);
	return 0;
}

static void on_status(void *data, struct strebmd_status *st)
{
	(void)data;
	pthread_mutex_lock(&lock);
	status.hops++;
	status.rms_dbfs[0] = -20.0 - (double)(status.hops % 10);
	*st = status;
	pthread_mutex_unlock(&lock);
}

static int on_save(void *data, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "w");

	(void)data;
	if (!f) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		return -errno;
	}
	pthread_mutex_lock(&lock);
	fprintf(f, "strebm-test-state %d %.17g\n", (int)status.mode, status.ell_ms[0]);
	pthread_mutex_unlock(&lock);
	fclose(f);
	return 0;
}

static int on_load(void *data, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	int mode;
	double ell;

	(void)data;
	if (!f) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (fscanf(f, "strebm-test-state %d %lg", &mode, &ell) != 2) {
		fclose(f);
		snprintf(err, errlen, "%s: not a state of this engine", path);
		return -EINVAL;
	}
	fclose(f);
	pthread_mutex_lock(&lock);
	status.mode = (enum strebm_mode)mode;
	status.ell_ms[0] = ell;
	pthread_mutex_unlock(&lock);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct strebmd_osc_ops ops = {
		.post = on_post, .status = on_status, .save = on_save, .load = on_load,
	};
	struct strebmd_osc *o;
	char err[256];
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	status.rate = 48000;
	status.M = 4;
	status.K = 2;
	status.ell_ms[0] = 0.25;
	status.ell_ms[1] = 2.0;
	status.learn[0] = status.learn[1] = true;
	status.rms_dbfs[1] = -35.0;
	status.running = true;
	status.dead_mask = 2;
	if (argc > 1) /* the worker's real-time factor (an overloaded daemon: > 1) */
		status.rtf = atof(argv[1]);
	o = strebmd_osc_create("127.0.0.1", 0, "127.0.0.1", &ops, NULL, err, sizeof(err));
	if (!o) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	printf("%d\n", strebmd_osc_port(o));
	fflush(stdout);
	sigwait(&set, &sig);
	strebmd_osc_destroy(o);
	return 0;
}
