/* SPDX-License-Identifier: MIT */
#include "joint.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "energy.h"
#include "map.h"
#include "mm.h"

#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8

#define JOINT_DIM_MAX ((size_t)1 << 12) /* M, K and hidden */
#define JOINT_T_MAX ((size_t)1 << 24)

struct strebm_joint {
	struct strebm_joint_config cfg;
	size_t M, K, T;
	double ell_hi;             /* upper length-scale bound: min(T/4, ELL_MAX) */
	int ready;                 /* set by init */

	/* parameters */
	double *S;                 /* K x T */
	struct strebm_mlp *mlp;    /* NULL for the linear map */
	double *map;               /* A (owned) or the MLP's parameter array */
	size_t n_map;
	double *logl, *ell;        /* K each, kept in sync */

	/* Adam state */
	double *mS, *vS;           /* K x T */
	double *p1S, *p2S;         /* T: beta1^n, beta2^n per column */
	double *mMap, *vMap;       /* n_map */
	double *mL, *vL;           /* K */
	double p1, p2;             /* beta^n of the map and log ell groups */

	/* energies */
	struct strebm_dct_energy **en; /* K */
	double *ell_set;           /* length-scale each energy was last set to */

	/* workspace */
	double *xhat;              /* M x T: g(S), then the residual gradient */
	double *gS;                /* K x T */
	double *gmap;              /* n_map */
	double *glogl;             /* K */
	double *sc;                /* K x T: centred S; image scratch */
	double *gtmp;              /* T */
	double *cov;               /* K x K */
	double *jac;               /* M x K: Jacobian at 0 (guess) */
	double *gram;              /* K x K (guess) */
	double *g0;                /* M: g(0) */
	double *rhs;               /* K */
};

void strebm_joint_config_default(struct strebm_joint_config *cfg, size_t M,
				 size_t K, size_t T)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->M = M;
	cfg->K = K;
	cfg->T = T;
	cfg->use_mlp = 0;
	cfg->hidden = 32;
	cfg->kernel = STREBM_KERNEL_MATERN32;
	cfg->eps = 1e-2;
	cfg->sigma2 = 1e-2;
	cfg->lambda = 1.0;
	cfg->beta = 1.0;
	cfg->lr_s = 1e-2;
	cfg->lr_map = 1e-2;
	cfg->lr_logl = 1e-3;
	cfg->lr_skip = -1.0;
	cfg->seed = 1;
}

static int config_valid(const struct strebm_joint_config *c)
{
	if (c->M == 0 || c->K == 0 || c->T < 8 || c->M > JOINT_DIM_MAX ||
	    c->K > JOINT_DIM_MAX || c->T > JOINT_T_MAX)
		return 0;
	if (c->use_mlp && (c->hidden == 0 || c->hidden > JOINT_DIM_MAX))
		return 0;
	if ((unsigned)c->kernel >= STREBM_KERNEL_COUNT)
		return 0;
	if (!(isfinite(c->eps) && c->eps > 0.0) ||
	    !(isfinite(c->sigma2) && c->sigma2 > 0.0) ||
	    !(isfinite(c->lambda) && c->lambda >= 0.0) ||
	    !(isfinite(c->beta) && c->beta >= 0.0) ||
	    !(isfinite(c->lr_s) && c->lr_s >= 0.0) ||
	    !(isfinite(c->lr_map) && c->lr_map >= 0.0) ||
	    !(isfinite(c->lr_logl) && c->lr_logl >= 0.0) ||
	    !isfinite(c->lr_skip) ||
	    !(isfinite(c->map_decay) && c->map_decay >= 0.0 && c->map_decay < 1.0))
		return 0;
	return 1;
}

static double *alloc_doubles(size_t n)
{
	return calloc(n ? n : 1, sizeof(double));
}

static double *mixing_mut(struct strebm_joint *j)
{
	/* the skip path A is the last block of the MLP parameters */
	return j->mlp ? j->map + j->n_map - j->M * j->K : j->map;
}

/* Clamp and order ell, then refresh log ell. */
static void ell_canonical(struct strebm_joint *j)
{
	size_t k;

	if (j->cfg.ell_unordered) {
		for (k = 0; k < j->K; k++)
			j->ell[k] = fmin(fmax(j->ell[k], STREBM_ELL_MIN), j->ell_hi);
	} else {
		strebm_lengthscale_canonical(j->ell, j->K, STREBM_ELL_MIN, j->ell_hi);
	}
	for (k = 0; k < j->K; k++)
		j->logl[k] = log(j->ell[k]);
}

static double joint_eval(struct strebm_joint *j, const double *X, int grad);

struct strebm_joint *strebm_joint_create(const struct strebm_joint_config *cfg)
{
	struct strebm_joint *j;
	size_t M, K, T, k;

	if (!cfg || !config_valid(cfg))
		return NULL;
	j = calloc(1, sizeof(*j));
	if (!j)
		return NULL;
	j->cfg = *cfg;
	M = j->M = cfg->M;
	K = j->K = cfg->K;
	T = j->T = cfg->T;
	j->ell_hi = fmin((double)T / 4.0, STREBM_ELL_MAX);

	if (cfg->use_mlp) {
		j->mlp = strebm_mlp_create(K, cfg->hidden, M, T);
		if (!j->mlp)
			goto fail;
		j->map = strebm_mlp_params(j->mlp);
		j->n_map = strebm_mlp_param_count(j->mlp);
	} else {
		j->n_map = M * K;
		j->map = alloc_doubles(j->n_map);
		if (!j->map)
			goto fail;
	}
	j->S = alloc_doubles(K * T);
	j->logl = alloc_doubles(K);
	j->ell = alloc_doubles(K);
	j->mS = alloc_doubles(K * T);
	j->vS = alloc_doubles(K * T);
	j->p1S = alloc_doubles(T);
	j->p2S = alloc_doubles(T);
	j->mMap = alloc_doubles(j->n_map);
	j->vMap = alloc_doubles(j->n_map);
	j->mL = alloc_doubles(K);
	j->vL = alloc_doubles(K);
	j->ell_set = alloc_doubles(K);
	j->xhat = alloc_doubles(M * T);
	j->gS = alloc_doubles(K * T);
	j->gmap = alloc_doubles(j->n_map);
	j->glogl = alloc_doubles(K);
	j->sc = alloc_doubles(K * T);
	j->gtmp = alloc_doubles(T);
	j->cov = alloc_doubles(K * K);
	j->jac = alloc_doubles(M * K);
	j->gram = alloc_doubles(K * K);
	j->g0 = alloc_doubles(M);
	j->rhs = alloc_doubles(K);
	j->en = calloc(K, sizeof(*j->en));
	if (!j->S || !j->logl || !j->ell || !j->mS || !j->vS || !j->p1S ||
	    !j->p2S || !j->mMap || !j->vMap || !j->mL || !j->vL || !j->ell_set ||
	    !j->xhat || !j->gS || !j->gmap || !j->glogl || !j->sc || !j->gtmp ||
	    !j->cov || !j->jac || !j->gram || !j->g0 || !j->rhs || !j->en)
		goto fail;
	for (k = 0; k < K; k++) {
		j->en[k] = strebm_dct_energy_create(T);
		if (!j->en[k])
			goto fail;
	}

	/*
	 * Default state (S = 0, map = 0, log-spaced ell in [2, T/8]) and one
	 * gradient evaluation, so that OpenBLAS and the energies do their
	 * first-call set-up here rather than on the worker.
	 */
	for (k = 0; k < K; k++) {
		double f = K > 1 ? (double)k / (double)(K - 1) : 0.0;

		j->ell[k] = 2.0 * pow((double)T / 16.0, f);
	}
	ell_canonical(j);
	if (!isfinite(joint_eval(j, NULL, 1)))
		goto fail;
	return j;
fail:
	strebm_joint_destroy(j);
	return NULL;
}

void strebm_joint_destroy(struct strebm_joint *j)
{
	size_t k;

	if (!j)
		return;
	if (j->en) {
		for (k = 0; k < j->K; k++)
			strebm_dct_energy_destroy(j->en[k]);
		free(j->en);
	}
	free(j->rhs);
	free(j->g0);
	free(j->gram);
	free(j->jac);
	free(j->cov);
	free(j->gtmp);
	free(j->sc);
	free(j->glogl);
	free(j->gmap);
	free(j->gS);
	free(j->xhat);
	free(j->ell_set);
	free(j->vL);
	free(j->mL);
	free(j->vMap);
	free(j->mMap);
	free(j->p2S);
	free(j->p1S);
	free(j->vS);
	free(j->mS);
	free(j->ell);
	free(j->logl);
	free(j->S);
	if (j->mlp)
		strebm_mlp_destroy(j->mlp);
	else
		free(j->map);
	free(j);
}

static int ell_valid(const double *ell, size_t K)
{
	size_t k;

	for (k = 0; k < K; k++)
		if (!(isfinite(ell[k]) && ell[k] > 0.0))
			return 0;
	return 1;
}

static void adam_reset(struct strebm_joint *j)
{
	size_t t;

	memset(j->mS, 0, j->K * j->T * sizeof(double));
	memset(j->vS, 0, j->K * j->T * sizeof(double));
	for (t = 0; t < j->T; t++)
		j->p1S[t] = j->p2S[t] = 1.0;
	memset(j->mMap, 0, j->n_map * sizeof(double));
	memset(j->vMap, 0, j->n_map * sizeof(double));
	memset(j->mL, 0, j->K * sizeof(double));
	memset(j->vL, 0, j->K * sizeof(double));
	j->p1 = j->p2 = 1.0;
}

int strebm_joint_init(struct strebm_joint *j, const double *A, const double *S,
		      const double *ell)
{
	if (!j || !A || !S || !ell || !ell_valid(ell, j->K))
		return -EINVAL;
	memcpy(j->S, S, j->K * j->T * sizeof(double));
	if (j->mlp)
		strebm_mlp_init_linear(j->mlp, A, 1.0 / sqrt((double)j->K), j->cfg.seed);
	else
		memcpy(j->map, A, j->M * j->K * sizeof(double));
	memcpy(j->ell, ell, j->K * sizeof(double));
	ell_canonical(j);
	adam_reset(j);
	j->ready = 1;
	return 0;
}

int strebm_joint_init_fit(struct strebm_joint *j, const double *X, const double *S,
			  const double *ell)
{
	size_t M, K, T, a, b, m;
	double *G, *A;

	if (!j || !X || !S || !ell)
		return -EINVAL;
	M = j->M; K = j->K; T = j->T;
	G = j->gram;
	A = j->jac; /* scratch, M x K */
	for (a = 0; a < K; a++)
		for (b = 0; b <= a; b++)
			G[a * K + b] = cblas_ddot((int)T, S + a * T, 1, S + b * T, 1);
	strebm_chol_factor(G, K);
	for (m = 0; m < M; m++) {
		double *r = j->rhs;

		for (a = 0; a < K; a++)
			r[a] = cblas_ddot((int)T, S + a * T, 1, X + m * T, 1);
		strebm_chol_solve(G, K, r);
		for (a = 0; a < K; a++)
			A[m * K + a] = r[a];
	}
	for (a = 0; a < M * K; a++)
		if (!isfinite(A[a]))
			return -EDOM;
	return strebm_joint_init(j, A, S, ell);
}

int strebm_joint_shift(struct strebm_joint *j, size_t H, const double *S_new)
{
	size_t k, T, keep;

	if (!j || !S_new || !j->ready || H == 0 || H > j->T)
		return -EINVAL;
	T = j->T;
	keep = T - H;
	for (k = 0; k < j->K; k++) {
		double *s = j->S + k * T, *m = j->mS + k * T, *v = j->vS + k * T;

		memmove(s, s + H, keep * sizeof(double));
		memcpy(s + keep, S_new + k * H, H * sizeof(double));
		memmove(m, m + H, keep * sizeof(double));
		memset(m + keep, 0, H * sizeof(double));
		memmove(v, v + H, keep * sizeof(double));
		memset(v + keep, 0, H * sizeof(double));
	}
	memmove(j->p1S, j->p1S + H, keep * sizeof(double));
	memmove(j->p2S, j->p2S + H, keep * sizeof(double));
	for (k = keep; k < T; k++)
		j->p1S[k] = j->p2S[k] = 1.0;
	return 0;
}

/*
 * L at the current parameters; with grad, also j->gS, j->gmap, j->glogl.
 * X == NULL stands for all-zero observations.
 */
static double joint_eval(struct strebm_joint *j, const double *X, int grad)
{
	const size_t M = j->M, K = j->K, T = j->T;
	const double Td = (double)T;
	const double wrec = 1.0 / (j->cfg.sigma2 * (double)M * Td);
	const double wen = j->cfg.lambda / Td;
	const double beta = j->cfg.beta;
	double L = 0.0, acc = 0.0;
	size_t i, k, t;

	/* reconstruction: xhat <- g(S) - X, then scaled into dL/dXhat */
	if (j->mlp)
		strebm_mlp_forward(j->mlp, j->S, T, j->xhat);
	else
		strebm_linear_forward(j->map, M, K, j->S, T, j->xhat);
	if (X) {
		for (i = 0; i < M * T; i++)
			j->xhat[i] -= X[i];
	}
	for (i = 0; i < M * T; i++)
		acc += j->xhat[i] * j->xhat[i];
	L = 0.5 * wrec * acc;
	if (grad) {
		for (i = 0; i < M * T; i++)
			j->xhat[i] *= wrec;
		memset(j->gmap, 0, j->n_map * sizeof(double));
		if (j->mlp)
			strebm_mlp_backward(j->mlp, j->S, T, j->xhat, j->gS, j->gmap);
		else
			strebm_linear_backward(j->map, M, K, j->S, T, j->xhat,
					       j->gmap, j->gS);
	}

	/* GP energies */
	for (k = 0; k < K; k++) {
		double gl = 0.0, E;

		if (j->ell_set[k] != j->ell[k]) {
			strebm_dct_energy_set(j->en[k], j->cfg.kernel, j->ell[k], j->cfg.eps);
			j->ell_set[k] = j->ell[k];
		}
		E = strebm_dct_energy_eval(j->en[k], j->S + k * T,
					   grad ? j->gtmp : NULL, grad ? &gl : NULL);
		L += wen * E;
		if (grad) {
			double *g = j->gS + k * T;

			for (t = 0; t < T; t++)
				g[t] += wen * j->gtmp[t];
			j->glogl[k] = wen * gl;
		}
	}

	/* decorrelation: beta ||C - I||^2, C = Sc Sc^T / T; dL/dS = 4 beta/T (C - I) Sc */
	if (beta > 0.0) {
		acc = 0.0;
		for (k = 0; k < K; k++) {
			const double *s = j->S + k * T;
			double *c = j->sc + k * T, mean = 0.0;

			for (t = 0; t < T; t++)
				mean += s[t];
			mean /= Td;
			for (t = 0; t < T; t++)
				c[t] = s[t] - mean;
		}
		strebm_mm_nt(K, K, T, 1.0 / Td, j->sc, j->sc, 0.0, j->cov);
		for (k = 0; k < K; k++)
			j->cov[k * K + k] -= 1.0;
		for (i = 0; i < K * K; i++)
			acc += j->cov[i] * j->cov[i];
		L += beta * acc;
		if (grad)
			strebm_mm_nn(K, K, T, 4.0 * beta / Td, j->cov, j->sc, 1.0, j->gS);
	}
	return L;
}

static void adam_group(double *p, double *m, double *v, const double *g, size_t n,
		       double lr, double bc1, double bc2)
{
	size_t i;

	for (i = 0; i < n; i++) {
		m[i] = ADAM_B1 * m[i] + (1.0 - ADAM_B1) * g[i];
		v[i] = ADAM_B2 * v[i] + (1.0 - ADAM_B2) * g[i] * g[i];
		p[i] -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + ADAM_EPS);
	}
}

static void adam_update(struct strebm_joint *j)
{
	const size_t K = j->K, T = j->T;
	const double lr = j->cfg.lr_s;
	size_t k, t;

	/* S: bias correction per column (columns enter at different times) */
	for (t = 0; t < T; t++) {
		j->p1S[t] *= ADAM_B1;
		j->p2S[t] *= ADAM_B2;
	}
	for (k = 0; k < K; k++) {
		double *s = j->S + k * T, *m = j->mS + k * T, *v = j->vS + k * T;
		const double *g = j->gS + k * T;

		for (t = 0; t < T; t++) {
			m[t] = ADAM_B1 * m[t] + (1.0 - ADAM_B1) * g[t];
			v[t] = ADAM_B2 * v[t] + (1.0 - ADAM_B2) * g[t] * g[t];
			s[t] -= lr * (m[t] / (1.0 - j->p1S[t])) /
				(sqrt(v[t] / (1.0 - j->p2S[t])) + ADAM_EPS);
		}
	}

	j->p1 *= ADAM_B1;
	j->p2 *= ADAM_B2;
	if (j->mlp && j->cfg.lr_skip >= 0.0) {
		size_t na = j->M * K, nn = j->n_map - na;

		adam_group(j->map, j->mMap, j->vMap, j->gmap, nn, j->cfg.lr_map,
			   1.0 - j->p1, 1.0 - j->p2);
		adam_group(j->map + nn, j->mMap + nn, j->vMap + nn, j->gmap + nn, na,
			   j->cfg.lr_skip, 1.0 - j->p1, 1.0 - j->p2);
	} else {
		adam_group(j->map, j->mMap, j->vMap, j->gmap, j->n_map, j->cfg.lr_map,
			   1.0 - j->p1, 1.0 - j->p2);
	}
	if (j->mlp && j->cfg.map_decay > 0.0) {
		/* W2 follows W1 (hidden x K) and b1 (hidden) */
		double *w2 = j->map + j->cfg.hidden * (K + 1), f = 1.0 - j->cfg.map_decay;
		size_t i;

		for (i = 0; i < j->M * j->cfg.hidden; i++)
			w2[i] *= f;
	}
	adam_group(j->logl, j->mL, j->vL, j->glogl, K, j->cfg.lr_logl,
		   1.0 - j->p1, 1.0 - j->p2);
	for (k = 0; k < K; k++)
		j->ell[k] = exp(j->logl[k]);
	ell_canonical(j);
}

int strebm_joint_step(struct strebm_joint *j, const double *X, unsigned iters,
		      double *objective)
{
	unsigned it;

	if (!j || !X || !j->ready)
		return -EINVAL;
	for (it = 0; it < iters; it++) {
		if (!isfinite(joint_eval(j, X, 1)))
			return -EDOM;
		adam_update(j);
	}
	if (objective) {
		*objective = joint_eval(j, X, 0);
		if (!isfinite(*objective))
			return -EDOM;
	}
	return 0;
}

int strebm_joint_gradient(struct strebm_joint *j, const double *X, double *objective,
			  double *grad_S, double *grad_map, double *grad_logl)
{
	double L;

	if (!j || !j->ready)
		return -EINVAL;
	L = joint_eval(j, X, 1);
	if (objective)
		*objective = L;
	if (grad_S)
		memcpy(grad_S, j->gS, j->K * j->T * sizeof(double));
	if (grad_map)
		memcpy(grad_map, j->gmap, j->n_map * sizeof(double));
	if (grad_logl)
		memcpy(grad_logl, j->glogl, j->K * sizeof(double));
	return isfinite(L) ? 0 : -EDOM;
}

const double *strebm_joint_latent(const struct strebm_joint *j)
{
	return j ? j->S : NULL;
}

const double *strebm_joint_ell(const struct strebm_joint *j)
{
	return j ? j->ell : NULL;
}

size_t strebm_joint_map_param_count(const struct strebm_joint *j)
{
	return j ? j->n_map : 0;
}

const double *strebm_joint_map_params(const struct strebm_joint *j)
{
	return j ? j->map : NULL;
}

const double *strebm_joint_mixing(const struct strebm_joint *j)
{
	if (!j)
		return NULL;
	return j->mlp ? j->map + j->n_map - j->M * j->K : j->map;
}

int strebm_joint_set_params(struct strebm_joint *j, const double *S,
			    const double *map, const double *ell)
{
	if (!j || !j->ready || (ell && !ell_valid(ell, j->K)))
		return -EINVAL;
	if (S)
		memcpy(j->S, S, j->K * j->T * sizeof(double));
	if (map)
		memcpy(j->map, map, j->n_map * sizeof(double));
	if (ell) {
		memcpy(j->ell, ell, j->K * sizeof(double));
		ell_canonical(j);
	}
	return 0;
}

int strebm_joint_reconstruct(struct strebm_joint *j, double *Xhat)
{
	if (!j || !Xhat || !j->ready)
		return -EINVAL;
	if (j->mlp)
		return strebm_mlp_forward(j->mlp, j->S, j->T, Xhat);
	strebm_linear_forward(j->map, j->M, j->K, j->S, j->T, Xhat);
	return 0;
}

/* g(0) (M values) and the Jacobian at 0 (M x K) into j->g0, j->jac. */
static void map_at_zero(struct strebm_joint *j)
{
	const size_t M = j->M, K = j->K;

	memcpy(j->jac, mixing_mut(j), M * K * sizeof(double));
	memset(j->g0, 0, M * sizeof(double));
	if (j->mlp) {
		/* g(0) = W2 tanh(b1) + b2; J(0) = A + W2 diag(1 - tanh(b1)^2) W1 */
		const size_t Hd = j->cfg.hidden;
		const double *W1 = j->map, *b1 = W1 + Hd * K, *W2 = b1 + Hd;
		const double *b2 = W2 + M * Hd;
		size_t i, h, k;

		for (i = 0; i < M; i++) {
			double acc = b2[i];

			for (h = 0; h < Hd; h++) {
				double a = tanh(b1[h]), w = W2[i * Hd + h];

				acc += w * a;
				for (k = 0; k < K; k++)
					j->jac[i * K + k] += w * (1.0 - a * a) * W1[h * K + k];
			}
			j->g0[i] = acc;
		}
	}
}

int strebm_joint_guess(struct strebm_joint *j, const double *X_new, size_t H,
		       double *S_new)
{
	const size_t M = j ? j->M : 0, K = j ? j->K : 0;
	double *G, *J;
	size_t a, b, i, t;

	if (!j || !X_new || !S_new || !j->ready || H == 0 || H > j->T)
		return -EINVAL;
	map_at_zero(j);
	G = j->gram;
	J = j->jac;
	/* G = J^T J, then its Cholesky factor in place */
	for (a = 0; a < K; a++)
		for (b = 0; b <= a; b++) {
			double acc = 0.0;

			for (i = 0; i < M; i++)
				acc += J[i * K + a] * J[i * K + b];
			G[a * K + b] = acc;
		}
	strebm_chol_factor(G, K);
	for (t = 0; t < H; t++) {
		double *r = j->rhs;

		/* r = J^T (x_t - g0), then forward and back substitution */
		for (a = 0; a < K; a++) {
			double acc = 0.0;

			for (i = 0; i < M; i++)
				acc += J[i * K + a] * (X_new[i * H + t] - j->g0[i]);
			r[a] = acc;
		}
		strebm_chol_solve(G, K, r);
		for (a = 0; a < K; a++)
			S_new[a * H + t] = r[a];
	}
	return 0;
}

int strebm_joint_image(struct strebm_joint *j, size_t r, double *Y)
{
	const size_t K = j ? j->K : 0, T = j ? j->T : 0;
	size_t k, t;

	if (!j || !Y || !j->ready || r >= j->M)
		return -EINVAL;
	if (!j->mlp) {
		for (k = 0; k < K; k++) {
			const double a = j->map[r * K + k];

			for (t = 0; t < T; t++)
				Y[k * T + t] = a * j->S[k * T + t];
		}
		return 0;
	}
	map_at_zero(j);
	for (k = 0; k < K; k++) {
		/* g(s_k e_k) at channel r, minus g(0)_r */
		memset(j->sc, 0, K * T * sizeof(double));
		memcpy(j->sc + k * T, j->S + k * T, T * sizeof(double));
		strebm_mlp_forward(j->mlp, j->sc, T, j->xhat);
		for (t = 0; t < T; t++)
			Y[k * T + t] = j->xhat[r * T + t] - j->g0[r];
	}
	return 0;
}
