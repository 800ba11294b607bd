/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness for the OSC dispatch path (io/osc): every input is one
 * datagram from an allowed sender, handled exactly as one from the socket
 * (allow list, liblo parsing, routing, validation, replies). Posted commands
 * are checked against the validation rules; a bad one aborts.
 *
 * Built only with -Dfuzz=true and clang (a separate build directory):
 *
 *   CC=clang meson setup build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false
 *   ninja -C build-fuzz tests/fuzz_osc
 *   mkdir -p fuzz-corpus && ./build-fuzz/tests/fuzz_osc -max_total_time=600 -max_len=4096 fuzz-corpus
 *
 * CI runs the bounded, seeded random-packet test in tests/test_osc.c instead.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "osc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_post(void *user, const struct strebmd_cmd *c)
{
	bool src_ok = c->source >= 0 && c->source < 2;
	bool ok;

	(void)user;
	switch (c->type) {
	case STREBMD_CMD_MODE: ok = c->ivalue >= 0 && c->ivalue < STREBM_MODE_COUNT; break;
	case STREBMD_CMD_ELL: ok = src_ok && isfinite(c->value) && c->value > 0 && c->value <= 1000; break;
	case STREBMD_CMD_LEARN:
	case STREBMD_CMD_MUTE: ok = src_ok && (c->ivalue == 0 || c->ivalue == 1); break;
	case STREBMD_CMD_KERNEL: ok = src_ok && c->ivalue >= 0 && c->ivalue < STREBM_KERNEL_COUNT; break;
	case STREBMD_CMD_GAIN: ok = src_ok && isfinite(c->value) && c->value >= -120 && c->value <= 24; break;
	case STREBMD_CMD_FREEZE: ok = c->ivalue == 0 || c->ivalue == 1; break;
	case STREBMD_CMD_RESET: ok = true; break;
	default: ok = false; break;
	}
	if (!ok)
		abort();
	/* sometimes full, to drive the backlog */
	return (c->ivalue ^ c->type) & 1 ? -EAGAIN : 0;
}

static void fuzz_status(void *user, struct strebmd_status *st)
{
	(void)user;
	memset(st, 0, sizeof(*st));
	st->K = 2;
	st->M = 2;
	st->rate = 48000;
}

static int fuzz_file(void *user, const char *path, char *err, size_t errlen)
{
	(void)user;
	(void)path;
	(void)err;
	(void)errlen;
	return 0; /* never touch the file system */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct strebmd_osc_ops ops = {
		.post = fuzz_post, .status = fuzz_status, .save = fuzz_file, .load = fuzz_file,
	};
	static struct strebmd_osc *o;
	static struct sockaddr_in from;
	char err[256];

	if (!o) {
		o = strebmd_osc_create("127.0.0.1", 0, "127.0.0.1", &ops, NULL, err, sizeof(err));
		if (!o)
			abort();
		from.sin_family = AF_INET;
		from.sin_port = htons(9); /* discard: replies go nowhere */
		from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	strebmd_osc_dispatch(o, data, size, (const struct sockaddr *)&from, sizeof(from));
	return 0;
}
