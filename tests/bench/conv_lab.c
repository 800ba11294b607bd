/* SPDX-License-Identifier: MIT */
/*
 * conv-lab: run core/conv directly on a mixture file with configuration
 * overrides, for measuring convolutive-mode settings (not installed).
 *
 *   conv-lab MIX.wav OUT_DIR K [key=value ...]
 *
 * Frame and hop default to the daemon's (power of two nearest 128 ms, a
 * quarter of it); every field of struct strebm_conv_config can be
 * overridden by name. Writes OUT_DIR/source_1.wav ... time-aligned with the
 * input (the frame's delay beyond the hop dropped, as strebmd's file mode
 * does) and prints the final status and the CPU seconds per audio second.
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conv.h"
#include "wavfile.h"

#define FD(name) { #name, 'd', offsetof(struct strebm_conv_config, name) }
#define FU(name) { #name, 'u', offsetof(struct strebm_conv_config, name) }
#define FZ(name) { #name, 'z', offsetof(struct strebm_conv_config, name) }
#define FB(name) { #name, 'b', offsetof(struct strebm_conv_config, name) }

static const struct {
	const char *name;
	char type;
	size_t off;
} fields[] = {
	FZ(N), FZ(H), FZ(ref_mic), FD(forget), FD(load), FU(sweeps), FU(warm_sweeps),
	FU(warm_hops), FB(envelope), FD(floor), FU(ell_every), FB(two_starts), FU(pca_hop),
	FU(startup_hops), FU(perm_every), FZ(perm_bands), FZ(ring), FB(health), FD(health_min), FU(ctx_frames), FU(ctx_sweeps), FD(ctx_load), FB(ctx_uniform), FB(ensemble), FU(align_every), FD(taper), FU(taper_hops), FU(taper_fade), FU(doa_every), FU(doa_start), FU(doa_hops), FD(doa_max), FD(doa_margin), FD(doa_conf), FD(doa_lo), FD(doa_hi),
	FD(doa_null), FB(doa_linear), FD(doa_sep),
#ifdef CONV_LAB_EXTRA
	CONV_LAB_EXTRA
#endif
};

static int set_field(struct strebm_conv_config *cfg, const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t i, n;

	if (!eq)
		return -1;
	n = (size_t)(eq - kv);
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char *p = (char *)cfg + fields[i].off;
		if (strlen(fields[i].name) != n || strncmp(fields[i].name, kv, n))
			continue;
		switch (fields[i].type) {
		case 'd': *(double *)p = atof(eq + 1); break;
		case 'u': *(unsigned *)p = (unsigned)atol(eq + 1); break;
		case 'z': *(size_t *)p = (size_t)atol(eq + 1); break;
		case 'b': *(bool *)p = atoi(eq + 1) != 0; break;
		}
		return 0;
	}
	return -1;
}

int main(int argc, char **argv)
{
	struct strebm_wav_info info;
	struct strebm_wav_in *in;
	struct strebm_wav_out *out;
	struct strebm_conv_config cfg;
	struct strebm_conv_status st;
	struct strebm_conv *c;
	char err[PATH_MAX + 64];
	double *x, *hin, *hout, cpu = 0.0;
	size_t K, M, N, H, lag, done = 0, pos = 0, m, i;
	int a;

	if (argc < 4) {
		fprintf(stderr, "usage: conv-lab MIX.wav OUT_DIR K [key=value ...]\n");
		return 2;
	}
	in = strebm_wav_in_open(argv[1], &info, err, sizeof(err));
	if (!in) {
		fprintf(stderr, "conv-lab: %s\n", err);
		return 1;
	}
	M = info.channels;
	K = (size_t)atol(argv[3]);
	for (N = 16; (double)N * 1.5 <= 0.128 * info.rate; N *= 2)
		;
	H = N / 4;
	strebm_conv_config_default(&cfg, M, K, N, H);
	for (a = 4; a < argc; a++)
		if (set_field(&cfg, argv[a]) < 0) {
			fprintf(stderr, "conv-lab: unknown setting '%s'\n", argv[a]);
			return 2;
		}
	N = cfg.N;
	H = cfg.H;
	c = strebm_conv_create(&cfg);
	x = malloc(M * info.frames * sizeof(double));
	hin = calloc(M * H, sizeof(double));
	hout = calloc(K * H, sizeof(double));
	if (!c || !x || !hin || !hout || strebm_wav_in_read(in, x, info.frames) < 0) {
		fprintf(stderr, "conv-lab: bad config or input\n");
		return 1;
	}
	out = strebm_wav_out_open(argv[2], K, info.rate, err, sizeof(err));
	if (!out) {
		fprintf(stderr, "conv-lab: %s\n", err);
		return 1;
	}
	lag = strebm_conv_latency(c) - H;
	while (done < info.frames) {
		struct timespec t0, t1;
		size_t off, n;
		for (m = 0; m < M; m++)
			for (i = 0; i < H; i++)
				hin[m * H + i] = pos + i < info.frames ? x[m * info.frames + pos + i] : 0.0;
		pos += H;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
		strebm_conv_process(c, hin, hout, true);
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
		cpu += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
		off = lag < H ? lag : H;
		lag -= off;
		n = H - off < info.frames - done ? H - off : info.frames - done;
		if (n)
			strebm_wav_out_write(out, hout + off, H, n);
		done += n;
	}
	strebm_wav_out_close(out);
	strebm_conv_get_status(c, &st);
	printf("rtf %.4f spatial %.3f health %.3f mix %.3f degraded %d aligned %lu objective %.4f\n",
	       cpu / ((double)info.frames / info.rate), st.spatial, st.health, st.mix,
	       st.degraded, st.aligned, st.objective);
	strebm_conv_destroy(c);
	strebm_wav_in_close(in);
	free(x);
	free(hin);
	free(hout);
	return 0;
}
