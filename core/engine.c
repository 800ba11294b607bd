/* SPDX-License-Identifier: MIT */
#include "engine.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "gaussianize.h"
#include "joint.h"
#include "mm.h"

static const char *const mode_names[STREBM_MODE_COUNT] = { "linear", "nonlinear",
							     "convolutive" };

const char *strebm_mode_name(enum strebm_mode mode)
{
	return (unsigned)mode < STREBM_MODE_COUNT ? mode_names[mode] : NULL;
}

int strebm_mode_from_name(const char *name, enum strebm_mode *out)
{
	unsigned i;

	if (!name || !out)
		return -EINVAL;
	for (i = 0; i < STREBM_MODE_COUNT; i++)
		if (!strcmp(name, mode_names[i])) {
			*out = (enum strebm_mode)i;
			return 0;
		}
	return -EINVAL;
}

struct strebm_engine {
	struct strebm_engine_config cfg;
	size_t M, K, T, H;
	enum strebm_mode mode, next_mode;

	struct strebm_linear *lin;
	struct strebm_gauss *gauss;
	struct strebm_conv *conv; /* NULL when the shape admits no convolutive mode */
	double *xf;               /* K x H: the other mode's output during a switch */

	double *xw;      /* M x T window of input (newest last) */
	double *zw;      /* M x T window of Gaussianized input */
	double *hop;     /* M x H sanitized input hop */
	double *zhop;    /* M x H Gaussianized hop */
	double *Dprev;   /* K x M demixing used at the end of the last hop */
	double *ya, *yb; /* K x H guard scratch */
	double *Did;     /* K x M identity (bypass) */

	/* nonlinear mode's projection on the raw reference microphone */
	double *sw;      /* K x T: the linear latents over the window */
	double *Dnl;     /* K x M: diag(c) W, applied to the Gaussianized hop */
	double cabs[STREBM_MAX_SOURCES]; /* running |c_k| */
	size_t cn;       /* hops in it (0: start again) */

	/* nonlinear mode's joint stage (NULL when joint_iters == 0) */
	struct strebm_joint *joint;
	bool joint_ok;   /* initialised from the current linear solution */
	bool joint_fade; /* first joint hop: cross-fade from the linear output */
	bool have_joint; /* the last hop's output came from the joint stage */
	size_t zfill;    /* hops of Gaussianized input in zw since it was last stale */
	double *js;      /* K x T: start latents, then K x H new columns */
	double *yj;      /* K x H joint output */
	double *jx;      /* M x T raw window divided by jscale */
	double *jscale;  /* M: each channel's rms at the joint's start */
	double *jamix;   /* M x K: the linear solver's mixing at the joint's start */
	double jgain[STREBM_MAX_SOURCES]; /* output gains at the end of the last hop */

	double gain[STREBM_MAX_SOURCES];      /* current linear gains */
	double gain_db[STREBM_MAX_SOURCES];   /* targets */
	bool mute[STREBM_MAX_SOURCES];
	bool have_prev;
	bool frozen;

	unsigned long hops, nonfinite, permutations, breakdowns;
};

void strebm_engine_config_default(struct strebm_engine_config *cfg, size_t M, size_t K,
				  size_t T, size_t H)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->M = M;
	cfg->K = K;
	cfg->T = T;
	cfg->H = H;
	cfg->mode = STREBM_MODE_LINEAR;
	cfg->kernel = STREBM_KERNEL_RBF;
	cfg->ref_mic = 0;
	cfg->context = 64;
	cfg->bands = T >= 64 ? 64 : T;
	cfg->sweeps = 2;
	cfg->floor = 1e-3;
	cfg->ell_ordered = false;
	cfg->perm_guard = true;
	cfg->gauss_forget = 0.999;
	cfg->conv_frame = 0;
	cfg->conv_envelope = false;
	cfg->conv_array_delay = 0.0;
	cfg->conv_array_other = false;
	cfg->conv_null = -1.0;
	cfg->joint_iters = 2;
	cfg->joint_hidden = 16;
	cfg->joint_lr_s = 1e-2;
	cfg->joint_lr_map = 3e-5;
	cfg->joint_lr_skip = 0.0;
	cfg->joint_decay = 0.0;
}

static struct strebm_joint *joint_create(const struct strebm_engine_config *c)
{
	struct strebm_joint_config jc;

	strebm_joint_config_default(&jc, c->M, c->K, c->T);
	jc.use_mlp = 1;
	jc.hidden = c->joint_hidden;
	jc.kernel = c->kernel;
	jc.lr_s = c->joint_lr_s;
	jc.lr_map = c->joint_lr_map;
	jc.lr_skip = c->joint_lr_skip;
	jc.lr_logl = 0.0; /* the linear solver learns the length-scales */
	jc.ell_unordered = 1;
	jc.map_decay = c->joint_decay;
	return strebm_joint_create(&jc);
}

static void linear_config(const struct strebm_engine_config *c, struct strebm_linear_config *lc)
{
	size_t k;

	strebm_linear_config_default(lc, c->M, c->K, c->T);
	lc->N = c->context;
	lc->B = c->bands;
	lc->sweeps = c->sweeps;
	lc->floor = c->floor;
	lc->ell_ordered = c->ell_ordered;
	lc->ref_mic = c->ref_mic;
	for (k = 0; k < STREBM_MAX_SOURCES; k++)
		lc->kernel[k] = c->kernel;
}

struct strebm_engine *strebm_engine_create(const struct strebm_engine_config *cfg)
{
	struct strebm_engine *e;
	struct strebm_linear_config lc;
	size_t M, K, T, H, k;

	if (!cfg || cfg->H < 1 || cfg->H > cfg->T || (cfg->bypass && cfg->K != cfg->M) || (unsigned)cfg->mode >= STREBM_MODE_COUNT ||
	    (unsigned)cfg->kernel >= STREBM_KERNEL_COUNT || cfg->ref_mic >= cfg->M ||
	    !(cfg->gauss_forget > 0.0 && cfg->gauss_forget <= 1.0) ||
	    (cfg->joint_iters && cfg->joint_hidden < 1))
		return NULL;
	linear_config(cfg, &lc);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cfg = *cfg;
	M = e->M = cfg->M;
	K = e->K = cfg->K;
	T = e->T = cfg->T;
	H = e->H = cfg->H;
	e->lin = strebm_linear_create(&lc);
	if (!cfg->bypass) {
		struct strebm_conv_config cc;
		size_t N = cfg->conv_frame ? cfg->conv_frame : T;
		strebm_conv_config_default(&cc, M, K, N, H);
		cc.ref_mic = cfg->ref_mic;
		cc.envelope = cfg->conv_envelope;
		if (cfg->conv_array_delay > 0.0)
			cc.doa_max = fmin(cfg->conv_array_delay, (double)N / 4.0 - 1.0);
		else if (cfg->conv_array_delay < 0.0)
			cc.doa_every = 0;
		cc.doa_linear = !cfg->conv_array_other;
		if (cfg->conv_null >= 0.0)
			cc.doa_null = cfg->conv_null;
		for (k = 0; k < STREBM_MAX_SOURCES; k++)
			cc.kernel[k] = cfg->kernel;
		e->conv = strebm_conv_create(&cc);
	}
	if (cfg->mode == STREBM_MODE_CONVOLUTIVE && !e->conv)
		goto fail;
	if (cfg->joint_iters && !cfg->bypass) {
		e->joint = joint_create(cfg);
		e->js = calloc(K * T, sizeof(double));
		e->yj = calloc(K * H, sizeof(double));
		e->jx = calloc(M * T, sizeof(double));
		e->jscale = calloc(M, sizeof(double));
		e->jamix = calloc(M * K, sizeof(double));
		if (!e->joint || !e->js || !e->yj || !e->jx || !e->jscale || !e->jamix)
			goto fail;
	}
	e->xf = calloc(K * H, sizeof(double));
	e->sw = calloc(K * T, sizeof(double));
	e->Dnl = calloc(K * M, sizeof(double));
	e->gauss = strebm_gauss_create(M, 4096, cfg->gauss_forget);
	e->xw = calloc(M * T, sizeof(double));
	e->zw = calloc(M * T, sizeof(double));
	e->hop = calloc(M * H, sizeof(double));
	e->zhop = calloc(M * H, sizeof(double));
	e->Dprev = calloc(K * M, sizeof(double));
	e->ya = calloc(K * H, sizeof(double));
	e->yb = calloc(K * H, sizeof(double));
	e->Did = calloc(K * M, sizeof(double));
	if (!e->Did)
		goto fail;
	for (k = 0; k < K && k < M; k++)
		e->Did[k * M + k] = 1.0;
	if (!e->lin || !e->gauss || !e->xf || !e->xw || !e->zw || !e->hop || !e->zhop || !e->Dprev ||
	    !e->ya || !e->yb)
		goto fail;
	for (k = 0; k < K; k++) {
		e->gain[k] = 1.0;
		e->gain_db[k] = 0.0;
	}
	e->mode = e->next_mode = cfg->mode;
	strebm_engine_reset(e);
	return e;
fail:
	strebm_engine_destroy(e);
	return NULL;
}

void strebm_engine_destroy(struct strebm_engine *e)
{
	if (!e)
		return;
	strebm_linear_destroy(e->lin);
	strebm_gauss_destroy(e->gauss);
	strebm_conv_destroy(e->conv);
	strebm_joint_destroy(e->joint);
	free(e->js); free(e->yj); free(e->jx); free(e->jscale); free(e->jamix);
	free(e->xf);
	free(e->sw); free(e->Dnl);
	free(e->xw); free(e->zw); free(e->hop); free(e->zhop);
	free(e->Dprev); free(e->ya); free(e->yb); free(e->Did);
	free(e);
}

void strebm_engine_reset(struct strebm_engine *e)
{
	strebm_linear_reset(e->lin);
	strebm_gauss_reset(e->gauss);
	if (e->conv)
		strebm_conv_reset(e->conv);
	memset(e->xw, 0, e->M * e->T * sizeof(double));
	memset(e->zw, 0, e->M * e->T * sizeof(double));
	memset(e->Dprev, 0, e->K * e->M * sizeof(double));
	e->have_prev = false;
	e->joint_ok = false;
	e->cn = 0;
	e->zfill = 0;
}

static void push(double *w, const double *h, size_t M, size_t T, size_t H)
{
	size_t m;

	for (m = 0; m < M; m++) {
		memmove(w + m * T, w + m * T + H, (T - H) * sizeof(double));
		memcpy(w + m * T + T - H, h + m * H, H * sizeof(double));
	}
}

static void apply(const double *D, const double *x, size_t K, size_t M, size_t H, double *y)
{
	size_t k, m, t;

	for (k = 0; k < K; k++) {
		double *yk = y + k * H;
		memset(yk, 0, H * sizeof(double));
		for (m = 0; m < M; m++) {
			double d = D[k * M + m];
			const double *xm = x + m * H;
			if (d == 0.0)
				continue;
			for (t = 0; t < H; t++)
				yk[t] += d * xm[t];
		}
	}
}

/* Largest-sum assignment of |corr| (K x K, row = previous output, col = new). */
static void best_perm(const double *c, size_t K, size_t *perm)
{
	size_t cur[STREBM_MAX_SOURCES], i, j, depth;
	bool used[STREBM_MAX_SOURCES] = { false };
	double best = -1.0;

	if (K > 7) {
		/* greedy for large K */
		for (i = 0; i < K; i++) {
			double bv = -1.0;
			size_t bj = 0;
			for (j = 0; j < K; j++)
				if (!used[j] && c[i * K + j] > bv) {
					bv = c[i * K + j];
					bj = j;
				}
			used[bj] = true;
			perm[i] = bj;
		}
		return;
	}
	/* iterative enumeration of permutations (K! <= 5040) */
	depth = 0;
	cur[0] = 0;
	for (;;) {
		if (cur[depth] >= K) {
			if (depth == 0)
				break;
			depth--;
			used[cur[depth]] = false;
			cur[depth]++;
			continue;
		}
		if (used[cur[depth]]) {
			cur[depth]++;
			continue;
		}
		used[cur[depth]] = true;
		if (depth + 1 == K) {
			double s = 0.0;
			for (i = 0; i < K; i++)
				s += c[i * K + cur[i]];
			if (s > best) {
				best = s;
				for (i = 0; i < K; i++)
					perm[i] = cur[i];
			}
			used[cur[depth]] = false;
			cur[depth]++;
		} else {
			depth++;
			cur[depth] = 0;
		}
	}
}

/* Compare the previous demixing with the new one on the new hop; if the new
 * outputs are a permutation of the old ones, put them back in their slots. */
static void guard(struct strebm_engine *e, const double *x)
{
	size_t K = e->K, H = e->H, i, j;
	double c[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES], sid = 0.0, sbest = 0.0;
	size_t perm[STREBM_MAX_SOURCES];
	bool identity = true;

	apply(e->Dprev, x, K, e->M, H, e->ya);
	apply(strebm_linear_demix(e->lin), x, K, e->M, H, e->yb);
	for (i = 0; i < K; i++)
		for (j = 0; j < K; j++) {
			const double *a = e->ya + i * H, *b = e->yb + j * H;
			double ab = 0.0, aa = 0.0, bb = 0.0;
			size_t t;
			for (t = 0; t < H; t++) {
				ab += a[t] * b[t];
				aa += a[t] * a[t];
				bb += b[t] * b[t];
			}
			c[i * K + j] = aa > 0.0 && bb > 0.0 ? fabs(ab) / sqrt(aa * bb) : 0.0;
		}
	best_perm(c, K, perm);
	for (i = 0; i < K; i++) {
		sid += c[i * K + i];
		sbest += c[i * K + perm[i]];
		identity &= perm[i] == i;
	}
	/* act only on a clear swap: guards against noise on quiet hops */
	if (!identity && sbest > sid + 0.5 && sbest > 0.8 * (double)K) {
		if (strebm_linear_permute(e->lin, perm) == 0) {
			double cp[STREBM_MAX_SOURCES];

			for (i = 0; i < K; i++)
				cp[i] = e->cabs[perm[i]];
			memcpy(e->cabs, cp, K * sizeof(double));
			e->permutations++;
			e->joint_ok = false; /* its latent rows are in the old order */
		}
	}
}

/* Copy one hop of input into e->hop. NaN, Inf, and magnitudes no audio
 * signal has (they would overflow the statistics) become silence; a hop that
 * held any is counted. */
static void take_input(struct strebm_engine *e, const double *in)
{
	size_t m, n = e->M * e->H;
	bool bad = false;

	for (m = 0; m < n; m++) {
		double v = in[m];
		if (!isfinite(v) || fabs(v) > STREBM_INPUT_LIMIT) {
			v = 0.0;
			bad = true;
		}
		e->hop[m] = v;
	}
	if (bad)
		e->nonfinite++;
}

/*
 * Nonlinear mode's projection back to the reference microphone. The linear
 * solver works on the Gaussianized channels, so its own projection
 * (strebm_linear_demix) gives each source's image on the *Gaussianized*
 * reference channel: unit variance, not the microphone's level. Here the
 * raw reference channel over the window is regressed on the latents
 * s = W z (least squares, K x K): y_k = c_k s_k is source k's part of the
 * microphone signal at its scale and sign. The joint stage's output takes
 * the same gains, so a switch between the two keeps the level. The window's
 * fit follows the signal's level through the nonlinearity and would
 * modulate the output, so |c_k| is a running mean over up to CN_MAX hops
 * since the last reset (measured: 64 lost 1.6 dB on nonlinear_tanh_k3_16k
 * against 1024); the sign, which follows W's row, is the current one.
 * @return the K x M matrix diag(c) W.
 */
#define CN_MAX 1024
static const double *nonlinear_projection(struct strebm_engine *e)
{
	const size_t M = e->M, K = e->K, T = e->T;
	const double *W = strebm_linear_unmix(e->lin);
	const double *xr = e->xw + e->cfg.ref_mic * T;
	double G[STREBM_MAX_SOURCES * STREBM_MAX_SOURCES], c[STREBM_MAX_SOURCES];
	size_t a, b, m;
	bool adapt;

	apply(W, e->zw, K, M, T, e->sw);
	for (a = 0; a < K; a++) {
		for (b = 0; b <= a; b++)
			G[a * K + b] = cblas_ddot((int)T, e->sw + a * T, 1, e->sw + b * T, 1);
		c[a] = cblas_ddot((int)T, e->sw + a * T, 1, xr, 1);
	}
	strebm_chol_factor(G, K);
	strebm_chol_solve(G, K, c);
	adapt = !e->frozen || e->cn == 0; /* frozen: the gains stay */
	if (adapt && e->cn < CN_MAX)
		e->cn++;
	for (a = 0; a < K; a++) {
		if (!isfinite(c[a]))
			c[a] = 0.0;
		if (adapt)
			e->cabs[a] += (fabs(c[a]) - e->cabs[a]) / (double)e->cn;
		for (m = 0; m < M; m++)
			e->Dnl[a * M + m] = copysign(e->cabs[a], c[a]) * W[a * M + m];
	}
	return e->Dnl;
}

/*
 * Nonlinear mode's joint stage (DESIGN.md §2 "joint"). The linear solver on
 * the Gaussianized channels gives unit-variance latents s = W z. The joint
 * solver (core/joint, MLP map x = g(s) on the raw channels) starts from
 * them: S0 = W z over the window, the MLP's skip path A0 the least-squares
 * fit of the raw window on S0, the rest of the MLP zero (g = A0 s exactly).
 * Every hop the window slides, the new columns come from the linear solver
 * (which keeps the sources' order: its permutation guard runs first), the
 * length-scales are the linear solver's, and a bounded number of Adam steps
 * refine S and the MLP on the raw window. The output is the newest hop of
 * S with the gains of nonlinear_projection (sign from the skip path's
 * reference row A[ref,k]): the microphone's scale and sign. Any reset,
 * permutation or non-finite objective starts it again from the linear
 * solution.
 * @return true when yj holds this hop's output.
 */
static bool joint_hop(struct strebm_engine *e)
{
	const size_t M = e->M, K = e->K, T = e->T, H = e->H;
	const double *W = strebm_linear_unmix(e->lin);
	const double *S;
	size_t k, t, m, i;

	if (!e->joint)
		return false;
	/* start only from a full window of current Gaussianized input: after
	 * a reset, a load or a switch into this mode the linear output serves */
	if (e->zfill * H < T)
		return false;
	if (e->joint_ok) {
		/*
		 * Start again from the linear solution once its mixing has moved
		 * by its own size (a changed scene). Smaller thresholds restart
		 * on ordinary speech non-stationarity and cost more than they
		 * gain: 0.1 restarted 33 times in 6 s on nonlinear_tanh_k3_16k
		 * and lost 4.4 dB; 1.0 restarted 4 times and equals never.
		 */
		const double *A = strebm_linear_mixing(e->lin);
		double d = 0.0, n = 0.0;
		for (i = 0; i < M * K; i++) {
			d += (A[i] - e->jamix[i]) * (A[i] - e->jamix[i]);
			n += e->jamix[i] * e->jamix[i];
		}
		if (!(d <= n))
			e->joint_ok = false;
	}
	if (!e->joint_ok) {
		const double *A0;

		/* the joint objective's noise variance and step sizes are set for
		 * unit-scale data: each channel is divided by its rms here */
		for (m = 0; m < M; m++) {
			double acc = 0.0;
			for (t = 0; t < T; t++)
				acc += e->xw[m * T + t] * e->xw[m * T + t];
			acc = sqrt(acc / (double)T);
			e->jscale[m] = acc > 1e-6 ? acc : 1e-6;
		}
		for (m = 0; m < M; m++)
			for (t = 0; t < T; t++)
				e->jx[m * T + t] = e->xw[m * T + t] / e->jscale[m];

		memcpy(e->js, e->sw, K * T * sizeof(double)); /* W zw */
		if (strebm_joint_init_fit(e->joint, e->jx, e->js, strebm_linear_ell(e->lin)) < 0)
			return false;
		A0 = strebm_joint_mixing(e->joint);
		/* a restart ramps from the last hop's gains; a first start takes its own */
		for (k = 0; k < K && !e->have_joint; k++)
			e->jgain[k] = copysign(e->cabs[k], A0[e->cfg.ref_mic * K + k]);
		memcpy(e->jamix, strebm_linear_mixing(e->lin), M * K * sizeof(double));
		e->joint_fade = !e->have_joint;
		e->joint_ok = e->have_joint = true;
	} else {
		apply(W, e->zhop, K, M, H, e->js);
		strebm_joint_shift(e->joint, H, e->js);
		for (m = 0; m < M; m++) {
			double *w = e->jx + m * T;
			memmove(w, w + H, (T - H) * sizeof(double));
			for (t = 0; t < H; t++)
				w[T - H + t] = e->hop[m * H + t] / e->jscale[m];
		}
		strebm_joint_set_params(e->joint, NULL, NULL, strebm_linear_ell(e->lin));
		e->joint_fade = false;
	}
	if (!e->frozen && strebm_joint_step(e->joint, e->jx, e->cfg.joint_iters, NULL) < 0) {
		e->joint_ok = false;
		return false;
	}
	S = strebm_joint_latent(e->joint);
	for (k = 0; k < K; k++) {
		double g0 = e->jgain[k];
		double g1 = copysign(e->cabs[k], strebm_joint_mixing(e->joint)[e->cfg.ref_mic * K + k]);
		for (t = 0; t < H; t++) {
			double r = (double)t / (double)H;
			e->yj[k * H + t] = (g0 + (g1 - g0) * r) * S[k * T + T - H + t];
		}
		e->jgain[k] = g1;
	}
	return true;
}

/* One hop of the window modes (linear, nonlinear). */
static int window_process(struct strebm_engine *e, const double *in, double *out)
{
	size_t M, K, H, T, m, k, t;
	const double *x, *D;
	double ramp_step;
	bool use_joint = false;

	M = e->M; K = e->K; H = e->H; T = e->T;
	take_input(e, in);
	push(e->xw, e->hop, M, T, H);
	if (e->cfg.bypass) {
		x = e->hop;
		D = e->Did;
		goto output;
	}
	if (e->mode == STREBM_MODE_NONLINEAR) {
		double en = 0.0;
		for (m = 0; m < M * H; m++)
			en += e->hop[m] * e->hop[m];
		/* digital silence stays silence (a constant would Gaussianize to a
		 * constant offset) */
		if (en > 1e-20 * (double)(M * H))
			strebm_gauss_process(e->gauss, e->hop, H, e->zhop);
		else
			memset(e->zhop, 0, M * H * sizeof(double));
		push(e->zw, e->zhop, M, T, H);
		if (e->zfill * H < T)
			e->zfill++;
		x = e->zhop;
		strebm_linear_update(e->lin, e->zw, !e->frozen);
	} else {
		x = e->hop;
		e->zfill = 0;
		strebm_linear_update(e->lin, e->xw, !e->frozen);
	}

	if (!strebm_linear_ready(e->lin)) {
		memset(out, 0, K * H * sizeof(double));
		e->hops++;
		return 0;
	}
	if (e->have_prev && e->cfg.perm_guard && K > 1)
		guard(e, x);
	D = strebm_linear_demix(e->lin);
	if (e->mode == STREBM_MODE_NONLINEAR) {
		D = nonlinear_projection(e);
		use_joint = joint_hop(e);
	}
output:
	if (!e->have_prev) {
		memcpy(e->Dprev, D, K * M * sizeof(double));
		e->have_prev = true;
	}
	/* cross-fade Dprev -> D across the hop: y = (1-r) Dprev x + r D x */
	apply(e->Dprev, x, K, M, H, e->ya);
	apply(D, x, K, M, H, e->yb);
	ramp_step = 1.0 / (double)H;
	for (k = 0; k < K; k++) {
		double g0 = e->gain[k];
		double g1 = e->mute[k] ? 0.0 : pow(10.0, e->gain_db[k] / 20.0);
		for (t = 0; t < H; t++) {
			double r = (double)t * ramp_step;
			double g = g0 + (g1 - g0) * r;
			double v = (1.0 - r) * e->ya[k * H + t] + r * e->yb[k * H + t];
			if (use_joint)
				v = e->joint_fade ? (1.0 - r) * v + r * e->yj[k * H + t]
						  : e->yj[k * H + t];
			out[k * H + t] = g * v;
		}
		e->gain[k] = g1;
	}
	memcpy(e->Dprev, D, K * M * sizeof(double));
	e->have_joint = use_joint;
	for (t = 0; t < K * H; t++)
		if (!isfinite(out[t]) || fabs(out[t]) > 1e6) {
			/* never emit garbage: silence this hop and start the model again */
			memset(out, 0, K * H * sizeof(double));
			strebm_linear_reset(e->lin);
			e->have_prev = false;
			e->joint_ok = false;
			e->cn = 0;
			e->breakdowns++;
			break;
		}
	e->hops++;
	return 0;
}

/* One hop of convolutive mode: sanitized input through core/conv, gains
 * and mutes ramped across the hop, garbage never emitted. */
static int conv_process(struct strebm_engine *e, const double *in, double *out)
{
	size_t K = e->K, H = e->H, k, t;

	take_input(e, in);
	strebm_conv_process(e->conv, e->hop, out, !e->frozen);
	for (k = 0; k < K; k++) {
		double g0 = e->gain[k];
		double g1 = e->mute[k] ? 0.0 : pow(10.0, e->gain_db[k] / 20.0);
		for (t = 0; t < H; t++)
			out[k * H + t] *= g0 + (g1 - g0) * (double)t / (double)H;
		e->gain[k] = g1;
	}
	for (t = 0; t < K * H; t++)
		if (!isfinite(out[t]) || fabs(out[t]) > 1e6) {
			memset(out, 0, K * H * sizeof(double));
			strebm_conv_reset(e->conv);
			e->breakdowns++;
			break;
		}
	e->hops++;
	return 0;
}

static int mode_process(struct strebm_engine *e, const double *in, double *out)
{
	return e->mode == STREBM_MODE_CONVOLUTIVE ? conv_process(e, in, out)
						  : window_process(e, in, out);
}

/* The user's per-source settings that a mode switch keeps: kernels, pins
 * and pinned length-scales (a switch restarts the model, not the setup). */
struct source_settings {
	enum strebm_kernel kernel[STREBM_MAX_SOURCES];
	bool pinned[STREBM_MAX_SOURCES];
	double ell[STREBM_MAX_SOURCES];
};

static void sources_get(const struct strebm_engine *e, struct source_settings *s)
{
	size_t k;

	if (e->mode == STREBM_MODE_CONVOLUTIVE) {
		struct strebm_conv_status cs;
		strebm_conv_get_status(e->conv, &cs);
		for (k = 0; k < e->K; k++) {
			s->kernel[k] = cs.kernel[k];
			s->pinned[k] = cs.pinned[k];
			s->ell[k] = cs.ell[k];
		}
		return;
	}
	for (k = 0; k < e->K; k++) {
		strebm_linear_get_source(e->lin, k, &s->kernel[k], &s->pinned[k]);
		s->ell[k] = strebm_linear_ell(e->lin)[k];
	}
}

/* Applied to the solver of the mode now in force; a pinned length-scale
 * outside that solver's bounds is pinned at the nearest bound. */
static void sources_put(struct strebm_engine *e, const struct source_settings *s)
{
	double lo, hi;
	size_t k;

	if (e->mode == STREBM_MODE_CONVOLUTIVE)
		strebm_conv_ell_bounds(e->conv, &lo, &hi);
	else
		strebm_linear_ell_bounds(e->lin, &lo, &hi);
	for (k = 0; k < e->K; k++) {
		double ell = s->ell[k] < lo ? lo : s->ell[k] > hi ? hi : s->ell[k];
		if (e->mode == STREBM_MODE_CONVOLUTIVE) {
			strebm_conv_set_kernel(e->conv, k, s->kernel[k]);
			if (s->pinned[k])
				strebm_conv_set_ell(e->conv, k, ell, true);
		} else {
			strebm_linear_set_kernel(e->lin, k, s->kernel[k]);
			if (s->pinned[k])
				strebm_linear_set_ell(e->lin, k, ell, true);
		}
	}
}

int strebm_engine_process(struct strebm_engine *e, const double *in, double *out)
{
	size_t K, H, k, t;
	unsigned long hops, nonfinite;
	struct source_settings keep;
	double gain[STREBM_MAX_SOURCES];

	if (!e || !in || !out)
		return -EINVAL;
	if (e->next_mode == e->mode)
		return mode_process(e, in, out);
	if (e->mode != STREBM_MODE_CONVOLUTIVE && e->next_mode != STREBM_MODE_CONVOLUTIVE) {
		sources_get(e, &keep);
		e->mode = e->next_mode;
		strebm_linear_reset(e->lin);
		sources_put(e, &keep);
		e->have_prev = false;
		e->joint_ok = false;
		e->cn = 0;
		return mode_process(e, in, out);
	}
	/* into or out of convolutive mode: both modes run on this hop and the
	 * output cross-fades from the old one to the new one */
	K = e->K;
	H = e->H;
	hops = e->hops;
	nonfinite = e->nonfinite;
	memcpy(gain, e->gain, sizeof(gain));
	sources_get(e, &keep);
	mode_process(e, in, e->xf);
	e->hops = hops;
	e->nonfinite = nonfinite;
	memcpy(e->gain, gain, sizeof(gain));
	e->mode = e->next_mode;
	if (e->mode == STREBM_MODE_CONVOLUTIVE) {
		strebm_conv_reset(e->conv);
	} else {
		strebm_linear_reset(e->lin);
		e->have_prev = false;
		e->joint_ok = false;
		e->cn = 0;
		e->zfill = 0; /* zw did not move in convolutive mode */
	}
	sources_put(e, &keep);
	mode_process(e, in, out);
	for (k = 0; k < K; k++)
		for (t = 0; t < H; t++) {
			double r = (double)(t + 1) / (double)H;
			out[k * H + t] = (1.0 - r) * e->xf[k * H + t] + r * out[k * H + t];
		}
	return 0;
}

void strebm_engine_freeze(struct strebm_engine *e, bool freeze)
{
	e->frozen = freeze;
}

int strebm_engine_set_mode(struct strebm_engine *e, enum strebm_mode mode)
{
	if (!e || (unsigned)mode >= STREBM_MODE_COUNT ||
	    (mode == STREBM_MODE_CONVOLUTIVE && !e->conv))
		return -EINVAL;
	e->next_mode = mode;
	return 0;
}

int strebm_engine_set_gain(struct strebm_engine *e, size_t k, double db)
{
	if (!e || k >= e->K || !isfinite(db) || db > 24.0 || db < -144.0)
		return -EINVAL;
	e->gain_db[k] = db;
	return 0;
}

int strebm_engine_set_mute(struct strebm_engine *e, size_t k, bool mute)
{
	if (!e || k >= e->K)
		return -EINVAL;
	e->mute[k] = mute;
	return 0;
}

int strebm_engine_set_ell(struct strebm_engine *e, size_t k, double ell, bool pinned)
{
	int r;

	if (!e)
		return -EINVAL;
	r = strebm_linear_set_ell(e->lin, k, ell, pinned);
	if (e->conv) {
		int rc = strebm_conv_set_ell(e->conv, k, ell, pinned);
		if (e->mode == STREBM_MODE_CONVOLUTIVE)
			return rc;
	}
	return r;
}

int strebm_engine_set_kernel(struct strebm_engine *e, size_t k, enum strebm_kernel kind)
{
	int r;

	if (!e)
		return -EINVAL;
	r = strebm_linear_set_kernel(e->lin, k, kind);
	if (e->conv) {
		int rc = strebm_conv_set_kernel(e->conv, k, kind);
		if (e->mode == STREBM_MODE_CONVOLUTIVE)
			return rc;
	}
	return r;
}

void strebm_engine_get_status(const struct strebm_engine *e, struct strebm_engine_status *st)
{
	size_t k;
	const double *ell = strebm_linear_ell(e->lin);

	memset(st, 0, sizeof(*st));
	st->hops = e->hops;
	st->updates = strebm_linear_updates(e->lin);
	st->nonfinite = e->nonfinite;
	st->permutations = e->permutations;
	st->breakdowns = e->breakdowns;
	st->objective = strebm_linear_objective(e->lin);
	for (k = 0; k < e->K; k++) {
		st->ell[k] = ell[k];
		strebm_linear_get_source(e->lin, k, &st->kernel[k], &st->pinned[k]);
		st->gain_db[k] = e->gain_db[k];
		st->mute[k] = e->mute[k];
	}
	st->mode = e->mode;
	st->next_mode = e->next_mode;
	st->ready = strebm_linear_ready(e->lin);
	st->frozen = e->frozen;
	st->joint = e->have_joint && e->mode == STREBM_MODE_NONLINEAR;
	st->convolutive = e->conv != NULL;
	if (e->mode == STREBM_MODE_CONVOLUTIVE) {
		struct strebm_conv_status cs;
		strebm_conv_get_status(e->conv, &cs);
		st->updates = cs.updates;
		st->objective = cs.objective;
		for (k = 0; k < e->K; k++) {
			st->ell[k] = cs.ell[k];
			st->kernel[k] = cs.kernel[k];
			st->pinned[k] = cs.pinned[k];
		}
		st->ready = cs.ready;
		st->reseeds = cs.reseeds;
		st->health = cs.health;
		st->separation = cs.mix;
		st->degraded = cs.degraded;
	}
}

void strebm_engine_ell_bounds(const struct strebm_engine *e, double *lo, double *hi)
{
	/* the mode asked for: a length-scale sent after a switch is for it */
	if (e->next_mode == STREBM_MODE_CONVOLUTIVE && e->conv)
		strebm_conv_ell_bounds(e->conv, lo, hi);
	else
		strebm_linear_ell_bounds(e->lin, lo, hi);
}

size_t strebm_engine_latency(const struct strebm_engine *e)
{
	return e->mode == STREBM_MODE_CONVOLUTIVE ? strebm_conv_latency(e->conv) : e->H;
}

/*
 * State serialisation (see engine.h). A 64-byte header, then the payload:
 * per source the gain target (dB) and the mute flag, the solver's state
 * (strebm_linear_save_state) and the marginals (strebm_gauss_save_state).
 *
 *   0  magic "STREBMST"       8  u32 version    12 u32 byte-order mark
 *   16 u32 M  20 u32 K  24 u32 T  28 u32 H  32 u32 mode  36 u32 bypass
 *   40 u64 payload bytes      48 u64 FNV-1a 64 of the payload   56 zero
 */
#define ENGINE_STATE_MAGIC STREBM_STATE_MAGIC
#define ENGINE_STATE_VERSION 2u /* 2: per source also the nonlinear output gain */
#define ENGINE_STATE_BOM 0x01020304u
#define ENGINE_STATE_HEADER 64
#define SRC_REC 24 /* per source: gain dB, mute, nonlinear |c| */

static uint64_t state_fnv1a(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static size_t state_payload(const struct strebm_engine *e)
{
	return SRC_REC * e->K + strebm_linear_state_size(e->lin) + strebm_gauss_state_size(e->gauss);
}

size_t strebm_engine_state_size(const struct strebm_engine *e)
{
	return e ? ENGINE_STATE_HEADER + state_payload(e) : 0;
}

static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

int strebm_engine_save_state(const struct strebm_engine *e, void *buf, size_t len)
{
	unsigned char *p = buf, *q;
	size_t k, ll, payload;
	uint64_t v;
	int r;

	if (!e || !buf || len < strebm_engine_state_size(e))
		return -EINVAL;
	payload = state_payload(e);
	memset(p, 0, ENGINE_STATE_HEADER);
	memcpy(p, ENGINE_STATE_MAGIC, 8);
	put32(p + 8, ENGINE_STATE_VERSION);
	put32(p + 12, ENGINE_STATE_BOM);
	put32(p + 16, (uint32_t)e->M);
	put32(p + 20, (uint32_t)e->K);
	put32(p + 24, (uint32_t)e->T);
	put32(p + 28, (uint32_t)e->H);
	put32(p + 32, (uint32_t)e->next_mode);
	put32(p + 36, e->cfg.bypass ? 1u : 0u);
	v = payload;
	memcpy(p + 40, &v, 8);
	q = p + ENGINE_STATE_HEADER;
	for (k = 0; k < e->K; k++) {
		double c = e->cn ? e->cabs[k] : 0.0;

		memcpy(q, &e->gain_db[k], 8);
		v = e->mute[k] ? 1u : 0u;
		memcpy(q + 8, &v, 8);
		memcpy(q + 16, &c, 8);
		q += SRC_REC;
	}
	ll = strebm_linear_state_size(e->lin);
	r = strebm_linear_save_state(e->lin, q, ll);
	if (r < 0)
		return r;
	r = strebm_gauss_save_state(e->gauss, q + ll, strebm_gauss_state_size(e->gauss));
	if (r < 0)
		return r;
	v = state_fnv1a(p + ENGINE_STATE_HEADER, payload);
	memcpy(p + 48, &v, 8);
	return 0;
}

int strebm_engine_load_state(struct strebm_engine *e, const void *buf, size_t len)
{
	const unsigned char *p = buf, *q;
	size_t k, ll, gl, payload;
	uint64_t v, sum;
	uint32_t mode;
	int r;

	if (!e || !buf || len != strebm_engine_state_size(e))
		return -EINVAL;
	payload = state_payload(e);
	if (memcmp(p, ENGINE_STATE_MAGIC, 8) || get32(p + 8) != ENGINE_STATE_VERSION ||
	    get32(p + 12) != ENGINE_STATE_BOM || get32(p + 16) != e->M || get32(p + 20) != e->K ||
	    get32(p + 24) != e->T || get32(p + 28) != e->H ||
	    get32(p + 36) != (e->cfg.bypass ? 1u : 0u))
		return -EINVAL;
	mode = get32(p + 32);
	memcpy(&v, p + 40, 8);
	memcpy(&sum, p + 56, 8);
	if (sum != 0)
		return -EINVAL;
	memcpy(&sum, p + 48, 8);
	if (mode >= STREBM_MODE_COUNT || v != payload ||
	    sum != state_fnv1a(p + ENGINE_STATE_HEADER, payload))
		return -EINVAL;
	q = p + ENGINE_STATE_HEADER;
	for (k = 0; k < e->K; k++) {
		double db, c;
		memcpy(&db, q + SRC_REC * k, 8);
		memcpy(&v, q + SRC_REC * k + 8, 8);
		memcpy(&c, q + SRC_REC * k + 16, 8);
		if (!isfinite(db) || db > 24.0 || db < -144.0 || v > 1 || !(c >= 0.0 && c < 1e6))
			return -EINVAL;
	}
	ll = strebm_linear_state_size(e->lin);
	gl = strebm_gauss_state_size(e->gauss);
	if (strebm_linear_check_state(e->lin, q + SRC_REC * e->K, ll) < 0 ||
	    strebm_gauss_check_state(e->gauss, q + SRC_REC * e->K + ll, gl) < 0)
		return -EINVAL;

	/* everything checked: commit */
	e->cn = CN_MAX; /* the saved gains are a full running mean */
	for (k = 0; k < e->K; k++) {
		memcpy(&e->gain_db[k], q + SRC_REC * k, 8);
		memcpy(&v, q + SRC_REC * k + 8, 8);
		e->mute[k] = v != 0;
		memcpy(&e->cabs[k], q + SRC_REC * k + 16, 8);
		if (e->cabs[k] == 0.0)
			e->cn = 0; /* none saved (not run in nonlinear mode) */
	}
	r = strebm_linear_load_state(e->lin, q + SRC_REC * e->K, ll);
	if (r == 0)
		r = strebm_gauss_load_state(e->gauss, q + SRC_REC * e->K + ll, gl);
	if (r < 0)
		return r; /* not reached: both were checked above */
	e->mode = e->next_mode = (enum strebm_mode)mode;
	if (e->conv) {
		/* the convolutive solver (not in the state) takes the restored
		 * kernels and pins, as the setters give them to both */
		const double *ell = strebm_linear_ell(e->lin);
		struct strebm_conv_status cs;
		strebm_conv_get_status(e->conv, &cs);
		for (k = 0; k < e->K; k++) {
			enum strebm_kernel kind;
			bool pin;
			strebm_linear_get_source(e->lin, k, &kind, &pin);
			strebm_conv_set_kernel(e->conv, k, kind);
			if (strebm_conv_set_ell(e->conv, k, pin ? ell[k] : cs.ell[k], pin) < 0)
				strebm_conv_set_ell(e->conv, k, cs.ell[k], false);
		}
	}
	/* no cross-fade from the replaced model, and no permutation guard
	 * against it: the restored slots are the ones that count */
	e->have_prev = false;
	e->joint_ok = false;
	return 0;
}
