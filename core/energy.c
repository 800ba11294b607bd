/* SPDX-License-Identifier: MIT */
/*
 * GP energies: exact (dense Cholesky) and spectral DCT-II; see
 * ../shared/docs/strebm-math.md §5.2 and §5.4.
 */
#include "energy.h"

#include <errno.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "dct.h"

#define LOG_2PI 1.8378770664093454835606594728112

/* Largest T the exact energy accepts: T^2 doubles must stay sane (512 MiB). */
#define EXACT_T_MAX 8192u

static int kernel_ok(enum strebm_kernel kind)
{
	return (unsigned)kind < STREBM_KERNEL_COUNT;
}

static int positive(double x)
{
	return x > 0.0 && isfinite(x);
}

int strebm_energy_exact(enum strebm_kernel kind, double ell, double eps,
			const double *s, size_t T, double *energy,
			double *grad_s, double *grad_logl)
{
	double *kcol = NULL, *dkcol = NULL, *L = NULL, *alpha = NULL;
	double quad = 0.0, logdet = 0.0;
	lapack_int n, info;
	size_t i, j;
	int ret;

	if (!kernel_ok(kind) || !positive(ell) || !positive(eps) || !s ||
	    T == 0 || T > EXACT_T_MAX || !energy)
		return -EINVAL;
	n = (lapack_int)T;

	ret = -ENOMEM;
	kcol = malloc(T * sizeof(*kcol));
	dkcol = malloc(T * sizeof(*dkcol));
	alpha = malloc(T * sizeof(*alpha));
	L = malloc(T * T * sizeof(*L));
	if (!kcol || !dkcol || !alpha || !L)
		goto out;

	for (i = 0; i < T; i++) {
		kcol[i] = strebm_kernel_eval(kind, (double)i, ell);
		dkcol[i] = strebm_kernel_dlogl(kind, (double)i, ell);
	}
	kcol[0] += eps;
	/* column-major, lower triangle */
	for (j = 0; j < T; j++)
		for (i = j; i < T; i++)
			L[j * T + i] = kcol[i - j];

	ret = -EDOM;
	info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', n, L, n);
	if (info != 0)
		goto out;
	for (i = 0; i < T; i++) {
		logdet += 2.0 * log(L[i * T + i]);
		alpha[i] = s[i];
	}
	info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'L', n, 1, L, n, alpha, n);
	if (info != 0)
		goto out;
	for (i = 0; i < T; i++)
		quad += s[i] * alpha[i];
	if (grad_logl) {
		/*
		 * dE/dlog ell = 1/2 tr(K^-1 dK) - 1/2 alpha^T dK alpha, with
		 * dK Toeplitz(dk); both sums over the lower triangle only.
		 */
		double tr = 0.0, adka = 0.0;

		info = LAPACKE_dpotri(LAPACK_COL_MAJOR, 'L', n, L, n);
		if (info != 0)
			goto out;
		for (j = 0; j < T; j++) {
			tr += L[j * T + j] * dkcol[0];
			adka += alpha[j] * alpha[j] * dkcol[0];
			for (i = j + 1; i < T; i++) {
				tr += 2.0 * L[j * T + i] * dkcol[i - j];
				adka += 2.0 * alpha[i] * alpha[j] * dkcol[i - j];
			}
		}
		*grad_logl = 0.5 * tr - 0.5 * adka;
	}
	*energy = 0.5 * quad + 0.5 * logdet + 0.5 * (double)T * LOG_2PI;
	if (grad_s)
		for (i = 0; i < T; i++)
			grad_s[i] = alpha[i];
	ret = 0;
out:
	free(L);
	free(alpha);
	free(dkcol);
	free(kcol);
	return ret;
}

struct strebm_dct_energy {
	size_t T;
	struct strebm_dct *dct;
	double *lambda;		/* f(pi j / T; ell) + eps */
	double *dlam_rel;	/* (d lambda_j / dlog ell) / lambda_j */
	double *c;		/* work: DCT coefficients */
	double half_logdet;	/* 1/2 sum log lambda + T/2 log 2 pi */
};

struct strebm_dct_energy *strebm_dct_energy_create(size_t T)
{
	struct strebm_dct_energy *e;
	size_t j;

	if (T < 2 || T > SIZE_MAX / sizeof(double))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->T = T;
	e->dct = strebm_dct_create(T);
	e->lambda = malloc(T * sizeof(double));
	e->dlam_rel = malloc(T * sizeof(double));
	e->c = malloc(T * sizeof(double));
	if (!e->dct || !e->lambda || !e->dlam_rel || !e->c)
		goto fail;
	/* until the first set(): white unit-variance model */
	for (j = 0; j < T; j++) {
		e->lambda[j] = 1.0;
		e->dlam_rel[j] = 0.0;
	}
	e->half_logdet = 0.5 * (double)T * LOG_2PI;
	return e;
fail:
	strebm_dct_energy_destroy(e);
	return NULL;
}

void strebm_dct_energy_destroy(struct strebm_dct_energy *e)
{
	if (!e)
		return;
	strebm_dct_destroy(e->dct);
	free(e->lambda);
	free(e->dlam_rel);
	free(e->c);
	free(e);
}

int strebm_dct_energy_set(struct strebm_dct_energy *e, enum strebm_kernel kind,
			  double ell, double eps)
{
	double w, f, df, lam, sumlog = 0.0;
	size_t j, T;

	if (!e || !kernel_ok(kind) || !positive(ell) || !positive(eps))
		return -EINVAL;
	T = e->T;
	for (j = 0; j < T; j++) {
		w = M_PI * (double)j / (double)T;
		f = strebm_kernel_psd_grad(kind, w, ell, &df);
		/* f >= 0 up to rounding; never let it eat into the jitter */
		lam = (f > 0.0 ? f : 0.0) + eps;
		e->lambda[j] = lam;
		e->dlam_rel[j] = df / lam;
		sumlog += log(lam);
	}
	e->half_logdet = 0.5 * sumlog + 0.5 * (double)T * LOG_2PI;
	return 0;
}

const double *strebm_dct_energy_lambda(const struct strebm_dct_energy *e)
{
	return e ? e->lambda : NULL;
}

double strebm_dct_energy_eval(struct strebm_dct_energy *e, const double *s,
			      double *grad_s, double *grad_logl)
{
	double quad = 0.0, gl = 0.0;
	size_t j, T;

	if (!e || !s) {
		if (grad_logl)
			*grad_logl = NAN;
		return NAN;
	}
	T = e->T;
	strebm_dct_forward(e->dct, s, e->c);
	for (j = 0; j < T; j++) {
		double q = e->c[j] * e->c[j] / e->lambda[j];

		quad += q;
		gl += (1.0 - q) * e->dlam_rel[j];
		/* c / lambda, for the gradient */
		e->c[j] /= e->lambda[j];
	}
	if (grad_logl)
		*grad_logl = 0.5 * gl;
	if (grad_s)
		strebm_dct_inverse(e->dct, e->c, grad_s);
	return 0.5 * quad + e->half_logdet;
}
