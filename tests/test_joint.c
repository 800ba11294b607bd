/* SPDX-License-Identifier: MIT */
/*
 * Check suite for core/joint: the joint StrEBM solver (S, map and log ell by
 * Adam, with the decorrelation scale fix).
 *
 *  - the full objective gradient (S, map parameters, log ell) against central
 *    finite differences, linear and MLP maps;
 *  - separation of two GP sources with very different length-scales, mixed
 *    linearly, from a PCA start; the same with sliding windows;
 *  - post-nonlinear (tanh) mixing: the MLP map initialised from the linear
 *    solution keeps or improves the separation;
 *  - shift, guess, image, bounds on ell, no allocation in the worker calls,
 *    misuse. Measured figures are printed as "# ..." lines.
 */
#include <check.h>
#include <cblas.h>
#include <errno.h>
#include <lapacke.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "joint.h"
#include "metrics.h"

/* ---- allocation counter (RT check) -------------------------------------- */

/*
 * In builds without AddressSanitizer or ThreadSanitizer, malloc and friends are interposed here
 * and counted while alloc_watch is set. The sanitizers have their own interceptors, so
 * there the check is skipped.
 */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define HAVE_ALLOC_WATCH 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HAVE_ALLOC_WATCH 0
#endif
#endif
#ifndef HAVE_ALLOC_WATCH
#define HAVE_ALLOC_WATCH 1
#endif

#if HAVE_ALLOC_WATCH
static volatile int alloc_watch;   /* single-threaded test: no sync needed */
static volatile long alloc_count;

extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t m);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t a, size_t n);
extern void __libc_free(void *p);

void *malloc(size_t n);
void *calloc(size_t n, size_t m);
void *realloc(void *p, size_t n);
void free(void *p);
int posix_memalign(void **out, size_t a, size_t n);
void *aligned_alloc(size_t a, size_t n);

void *malloc(size_t n)
{
	if (alloc_watch)
		alloc_count++;
	return __libc_malloc(n);
}

void *calloc(size_t n, size_t m)
{
	if (alloc_watch)
		alloc_count++;
	return __libc_calloc(n, m);
}

void *realloc(void *p, size_t n)
{
	if (alloc_watch)
		alloc_count++;
	return __libc_realloc(p, n);
}

void free(void *p)
{
	if (alloc_watch && p)
		alloc_count++;
	__libc_free(p);
}

int posix_memalign(void **out, size_t a, size_t n)
{
	void *p;

	if (alloc_watch)
		alloc_count++;
	p = __libc_memalign(a, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *aligned_alloc(size_t a, size_t n)
{
	if (alloc_watch)
		alloc_count++;
	return __libc_memalign(a, n);
}
#endif

/* ---- helpers ------------------------------------------------------------ */

struct rng {
	uint64_t s;
};

static double urand(struct rng *r)
{
	r->s = r->s * 6364136223846793005ULL + 1442695040888963407ULL;
	return ((double)(r->s >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static double nrand(struct rng *r)
{
	double u1 = urand(r), u2 = urand(r);

	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static double *dalloc(size_t n)
{
	double *p = calloc(n, sizeof(double));

	ck_assert_ptr_nonnull(p);
	return p;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Matérn 3/2 kernel (the test's own formula, independent of kernel.c). */
static double matern32(double tau, double ell)
{
	double a = sqrt(3.0) * fabs(tau) / ell;

	return (1.0 + a) * exp(-a);
}

/*
 * One exact GP draw of length n with a Matérn 3/2 kernel (dense Cholesky),
 * standardised to zero mean and unit variance.
 */
static void gp_draw(double *out, size_t n, double ell, struct rng *r)
{
	double *Kmat = dalloc(n * n), mean = 0.0, var = 0.0;
	size_t a, b;

	for (a = 0; a < n; a++)
		for (b = 0; b < n; b++)
			Kmat[a * n + b] = matern32((double)a - (double)b, ell) +
					  (a == b ? 1e-8 : 0.0);
	/* column-major lower factor of a symmetric matrix = row-major upper */
	ck_assert_int_eq(LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'L', (lapack_int)n, Kmat,
					(lapack_int)n), 0);
	for (a = 0; a < n; a++)
		out[a] = nrand(r);
	/* out = L z, L[a][b] at Kmat[b * n + a] (column-major), in place from the end */
	for (a = n; a-- > 0;) {
		double acc = 0.0;

		for (b = 0; b <= a; b++)
			acc += Kmat[b * n + a] * out[b];
		out[a] = acc;
	}
	for (a = 0; a < n; a++)
		mean += out[a];
	mean /= (double)n;
	for (a = 0; a < n; a++) {
		out[a] -= mean;
		var += out[a] * out[a];
	}
	var = sqrt(var / (double)n);
	for (a = 0; a < n; a++)
		out[a] /= var;
	free(Kmat);
}


/*
 * Mean |corr| of K = 2 estimates against 2 references after the best
 * permutation; rows of length n with strides ld_est and ld_ref.
 */
static double match2(const double *est, size_t ld_est, const double *ref,
		     size_t ld_ref, size_t n)
{
	double id = fabs(strebm_corr(est, ref, n)) + fabs(strebm_corr(est + ld_est, ref + ld_ref, n));
	double sw = fabs(strebm_corr(est, ref + ld_ref, n)) + fabs(strebm_corr(est + ld_est, ref, n));

	return 0.5 * fmax(id, sw);
}

/*
 * PCA start: A0 = E D^1/2, S0 = D^-1/2 E^T X for the K leading eigenpairs of
 * X X^T / T (X is M x T with row stride ld).
 */
static void pca_start(const double *X, size_t M, size_t K, size_t T, size_t ld,
		      double *A0, double *S0)
{
	double *C = dalloc(M * M), *w = dalloc(M);
	size_t a, b, t, k;

	for (a = 0; a < M; a++)
		for (b = 0; b < M; b++) {
			double acc = 0.0;

			for (t = 0; t < T; t++)
				acc += X[a * ld + t] * X[b * ld + t];
			C[a * M + b] = acc / (double)T;
		}
	ck_assert_int_eq(LAPACKE_dsyev(LAPACK_ROW_MAJOR, 'V', 'U', (lapack_int)M, C,
				       (lapack_int)M, w), 0);
	/* ascending eigenvalues: take the last K columns, largest first */
	for (k = 0; k < K; k++) {
		size_t c = M - 1 - k;
		double d = sqrt(fmax(w[c], 1e-12));

		for (a = 0; a < M; a++)
			A0[a * K + k] = C[a * M + c] * d;
		for (t = 0; t < T; t++) {
			double acc = 0.0;

			for (a = 0; a < M; a++)
				acc += C[a * M + c] * X[a * ld + t];
			S0[k * T + t] = acc / d;
		}
	}
	free(C);
	free(w);
}

/* ---- gradient against finite differences -------------------------------- */

static double objective_of(struct strebm_joint *j, const double *X)
{
	double L = NAN;

	ck_assert_int_eq(strebm_joint_gradient(j, X, &L, NULL, NULL, NULL), 0);
	return L;
}

static double rel_err(const double *a, const double *b, size_t n)
{
	double num = 0.0, den = 0.0;
	size_t i;

	for (i = 0; i < n; i++) {
		num += (a[i] - b[i]) * (a[i] - b[i]);
		den += b[i] * b[i];
	}
	return sqrt(num) / fmax(sqrt(den), 1e-300);
}

static const struct {
	int use_mlp;
	enum strebm_kernel kernel;
} grad_cases[] = {
	{ 0, STREBM_KERNEL_MATERN32 },
	{ 1, STREBM_KERNEL_MATERN32 },
	{ 0, STREBM_KERNEL_RBF },
	{ 1, STREBM_KERNEL_MATERN52 },
};

START_TEST(test_gradient_fd)
{
	const size_t M = 3, K = 2, T = 64;
	const double h = 1e-5;
	struct strebm_joint_config cfg;
	struct strebm_joint *j;
	struct rng r = { 1234 + (uint64_t)_i };
	double *A = dalloc(M * K), *S = dalloc(K * T), *X = dalloc(M * T);
	double ell[2] = { 3.0, 8.0 }, gl[2], fdl[2], L0;
	double *gS = dalloc(K * T), *fdS = dalloc(K * T), *p, *gP, *fdP;
	size_t P, i;
	double eS, eP, eL;

	strebm_joint_config_default(&cfg, M, K, T);
	cfg.use_mlp = grad_cases[_i].use_mlp;
	cfg.kernel = grad_cases[_i].kernel;
	cfg.hidden = 6;
	j = strebm_joint_create(&cfg);
	ck_assert_ptr_nonnull(j);
	for (i = 0; i < M * K; i++)
		A[i] = nrand(&r);
	for (i = 0; i < K * T; i++)
		S[i] = 0.3 + nrand(&r);  /* non-zero mean: exercises the centring */
	for (i = 0; i < M * T; i++)
		X[i] = nrand(&r);
	ck_assert_int_eq(strebm_joint_init(j, A, S, ell), 0);

	/* all map parameters non-zero (after init_linear W2 = 0 hides W1) */
	P = strebm_joint_map_param_count(j);
	p = dalloc(P);
	gP = dalloc(P);
	fdP = dalloc(P);
	for (i = 0; i < P; i++)
		p[i] = 0.5 * nrand(&r);
	ck_assert_int_eq(strebm_joint_set_params(j, NULL, p, NULL), 0);

	ck_assert_int_eq(strebm_joint_gradient(j, X, &L0, gS, gP, gl), 0);
	ck_assert(isfinite(L0));

	for (i = 0; i < K * T; i++) {
		double s0 = S[i], lp, lm;

		S[i] = s0 + h;
		strebm_joint_set_params(j, S, NULL, NULL);
		lp = objective_of(j, X);
		S[i] = s0 - h;
		strebm_joint_set_params(j, S, NULL, NULL);
		lm = objective_of(j, X);
		S[i] = s0;
		fdS[i] = (lp - lm) / (2.0 * h);
	}
	strebm_joint_set_params(j, S, NULL, NULL);
	for (i = 0; i < P; i++) {
		double p0 = p[i], lp, lm;

		p[i] = p0 + h;
		strebm_joint_set_params(j, NULL, p, NULL);
		lp = objective_of(j, X);
		p[i] = p0 - h;
		strebm_joint_set_params(j, NULL, p, NULL);
		lm = objective_of(j, X);
		p[i] = p0;
		fdP[i] = (lp - lm) / (2.0 * h);
	}
	strebm_joint_set_params(j, NULL, p, NULL);
	for (i = 0; i < K; i++) {
		double e2[2] = { ell[0], ell[1] }, lp, lm;

		e2[i] = ell[i] * exp(h);
		strebm_joint_set_params(j, NULL, NULL, e2);
		lp = objective_of(j, X);
		e2[i] = ell[i] * exp(-h);
		strebm_joint_set_params(j, NULL, NULL, e2);
		lm = objective_of(j, X);
		fdl[i] = (lp - lm) / (2.0 * h);
	}
	eS = rel_err(gS, fdS, K * T);
	eP = rel_err(gP, fdP, P);
	eL = rel_err(gl, fdl, K);
	printf("# gradient vs FD (%s, %s): S %.1e, map %.1e, log ell %.1e\n",
	       cfg.use_mlp ? "mlp" : "linear", strebm_kernel_name(cfg.kernel), eS, eP, eL);
	/*
	 * measured: S ~5e-10, map ~1e-10, log ell 1e-11..1e-9 with a psd
	 * derivative consistent with the psd; with kernel.c's Matérn 3/2 alias
	 * tail the log-ell error is ~1.5e-6 (psd_dlogl against a difference of
	 * psd is off by up to 7e-6 relative near omega = pi at ell = 8), hence
	 * the looser bound on log ell.
	 */
	ck_assert_double_le(eS, 1e-6);
	ck_assert_double_le(eP, 1e-6);
	ck_assert_double_le(eL, 1e-5);

	free(A); free(S); free(X); free(gS); free(fdS); free(p); free(gP); free(fdP);
	strebm_joint_destroy(j);
}
END_TEST

/* ---- separation ---------------------------------------------------------- */

/* Two standardised Matérn 3/2 draws with ell 2 and 20 (rows of length n). */
static double *make_sources(size_t n, uint64_t seed)
{
	struct rng r = { seed };
	double *S = dalloc(2 * n);

	gp_draw(S, n, 2.0, &r);
	gp_draw(S + n, n, 20.0, &r);
	return S;
}

static const double A_true[4] = { 1.0, 0.8, 0.6, 1.0 };

/* X = A_true S + noise (M = K = 2). */
static double *mix_linear(const double *S, size_t n, double noise, uint64_t seed)
{
	struct rng r = { seed };
	double *X = dalloc(2 * n);
	size_t m, t;

	for (m = 0; m < 2; m++)
		for (t = 0; t < n; t++)
			X[m * n + t] = A_true[m * 2] * S[t] + A_true[m * 2 + 1] * S[n + t] +
				       noise * nrand(&r);
	return X;
}

START_TEST(test_separation_linear)
{
	const size_t M = 2, K = 2, T = 512;
	struct strebm_joint_config cfg;
	struct strebm_joint *j;
	double *S_true = make_sources(T, 77), *X = mix_linear(S_true, T, 0.01, 5);
	double *A0 = dalloc(M * K), *S0 = dalloc(K * T);
	const double ell0[2] = { 4.0, 8.0 };
	const double *ell;
	double c0, c1, L0, L1, t0;
	int it;

	strebm_joint_config_default(&cfg, M, K, T);
	j = strebm_joint_create(&cfg);
	ck_assert_ptr_nonnull(j);
	pca_start(X, M, K, T, T, A0, S0);
	c0 = match2(S0, T, S_true, T, T);
	ck_assert_int_eq(strebm_joint_init(j, A0, S0, ell0), 0);
	ck_assert_int_eq(strebm_joint_step(j, X, 0, &L0), 0);
	t0 = now_s();
	for (it = 0; it < 10; it++)
		ck_assert_int_eq(strebm_joint_step(j, X, 300, &L1), 0);
	c1 = match2(strebm_joint_latent(j), T, S_true, T, T);
	ell = strebm_joint_ell(j);
	printf("# linear T=512, 3000 steps (%.2f s): |corr| PCA start %.3f -> %.3f; "
	       "L %.4g -> %.4g; ell %.2f %.2f\n", now_s() - t0, c0, c1, L0, L1,
	       ell[0], ell[1]);
	/* the start must be genuinely poor for the test to mean anything */
	ck_assert_double_lt(c0, 0.85);
	/* measured: 0.99 */
	ck_assert_double_ge(c1, 0.95);
	ck_assert_double_lt(L1, L0);
	/* canonical order; the rough source gets the short length-scale */
	ck_assert_double_le(ell[0], ell[1]);
	ck_assert_double_lt(ell[0], 6.0);
	ck_assert_double_gt(ell[1], 8.0);

	free(S_true); free(X); free(A0); free(S0);
	strebm_joint_destroy(j);
}
END_TEST

START_TEST(test_separation_sliding)
{
	const size_t M = 2, K = 2, T = 512, H = 128, hops = 8, N = T + hops * H;
	struct strebm_joint_config cfg;
	struct strebm_joint *j;
	double *S_true = make_sources(N, 91), *X = mix_linear(S_true, N, 0.01, 6);
	double *A0 = dalloc(M * K), *S0 = dalloc(K * T), *Xw = dalloc(M * T);
	double *Snew = dalloc(K * H), *prev = dalloc(K * T), *Xn = dalloc(M * H);
	double worst = 1.0, c;
	const double ell0[2] = { 4.0, 8.0 };
	size_t hop, m, k, t;

	strebm_joint_config_default(&cfg, M, K, T);
	j = strebm_joint_create(&cfg);
	ck_assert_ptr_nonnull(j);
	pca_start(X, M, K, T, N, A0, S0);
	printf("# sliding: PCA start |corr| %.3f\n", match2(S0, T, S_true, N, T));
	ck_assert_int_eq(strebm_joint_init(j, A0, S0, ell0), 0);
	for (m = 0; m < M; m++)
		memcpy(Xw + m * T, X + m * N, T * sizeof(double));
	ck_assert_int_eq(strebm_joint_step(j, Xw, 2000, NULL), 0);
	c = match2(strebm_joint_latent(j), T, S_true, N, T);
	printf("# sliding: first window |corr| %.3f\n", c);

	for (hop = 1; hop <= hops; hop++) {
		size_t off = hop * H;

		for (m = 0; m < M; m++)
			memcpy(Xw + m * T, X + m * N + off, T * sizeof(double));
		/* new columns from the fresh observations */
		for (m = 0; m < M; m++)
			memcpy(Xn + m * H, Xw + m * T + T - H, H * sizeof(double));
		ck_assert_int_eq(strebm_joint_guess(j, Xn, H, Snew), 0);
		memcpy(prev, strebm_joint_latent(j), K * T * sizeof(double));
		ck_assert_int_eq(strebm_joint_shift(j, H, Snew), 0);
		/* continuity: the kept part moved by H, the new part appended */
		for (k = 0; k < K; k++) {
			const double *s = strebm_joint_latent(j) + k * T;

			for (t = 0; t + H < T; t++)
				ck_assert_double_eq(s[t], prev[k * T + t + H]);
			for (t = 0; t < H; t++)
				ck_assert_double_eq(s[T - H + t], Snew[k * H + t]);
		}
		ck_assert_int_eq(strebm_joint_step(j, Xw, 300, NULL), 0);
		c = match2(strebm_joint_latent(j), T, S_true + off, N, T);
		printf("# hop %zu: %.3f ell %.2f %.2f\n", hop, c, strebm_joint_ell(j)[0], strebm_joint_ell(j)[1]);
		worst = fmin(worst, c);
	}
	printf("# sliding T=512 H=128, 300 steps/hop: worst window |corr| %.3f, last %.3f\n",
	       worst, c);
	/* measured: worst 0.99 */
	ck_assert_double_ge(worst, 0.93);

	free(S_true); free(X); free(A0); free(S0); free(Xw); free(Snew); free(prev); free(Xn);
	strebm_joint_destroy(j);
}
END_TEST

START_TEST(test_separation_nonlinear)
{
	const size_t M = 2, K = 2, T = 512;
	struct strebm_joint_config cfg;
	struct strebm_joint *jl, *jn;
	double *S_true = make_sources(T, 77), *X = mix_linear(S_true, T, 0.0, 5);
	double *A0 = dalloc(M * K), *S0 = dalloc(K * T), *Xh = dalloc(M * T);
	const double ell0[2] = { 4.0, 8.0 };
	double c0, cl, cn, Ll, Ln, msel = 0.0, msen = 0.0;
	size_t i;

	/* post-nonlinear mixing: x = tanh(z) + 0.3 z, z = A_true s */
	for (i = 0; i < M * T; i++)
		X[i] = tanh(X[i]) + 0.3 * X[i];

	strebm_joint_config_default(&cfg, M, K, T);
	jl = strebm_joint_create(&cfg);
	ck_assert_ptr_nonnull(jl);
	pca_start(X, M, K, T, T, A0, S0);
	c0 = match2(S0, T, S_true, T, T);
	ck_assert_int_eq(strebm_joint_init(jl, A0, S0, ell0), 0);
	ck_assert_int_eq(strebm_joint_step(jl, X, 3000, &Ll), 0);
	cl = match2(strebm_joint_latent(jl), T, S_true, T, T);
	ck_assert_int_eq(strebm_joint_reconstruct(jl, Xh), 0);
	for (i = 0; i < M * T; i++)
		msel += (Xh[i] - X[i]) * (Xh[i] - X[i]) / (double)(M * T);

	cfg.use_mlp = 1;
	cfg.hidden = 16;
	cfg.lr_map = 3e-5;
	jn = strebm_joint_create(&cfg);
	ck_assert_ptr_nonnull(jn);
	ck_assert_int_eq(strebm_joint_init(jn, strebm_joint_mixing(jl),
					   strebm_joint_latent(jl), strebm_joint_ell(jl)), 0);
	ck_assert_int_eq(strebm_joint_step(jn, X, 1500, &Ln), 0);
	cn = match2(strebm_joint_latent(jn), T, S_true, T, T);
	ck_assert_int_eq(strebm_joint_reconstruct(jn, Xh), 0);
	for (i = 0; i < M * T; i++)
		msen += (Xh[i] - X[i]) * (Xh[i] - X[i]) / (double)(M * T);
	printf("# tanh(z)+0.3z mixing: |corr| PCA %.3f, linear %.3f (mse %.2e, L %.4g), "
	       "mlp %.3f (mse %.2e, L %.4g)\n", c0, cl, msel, Ll, cn, msen, Ln);
	/*
	 * Measured with this setting (lr_map 3e-5, 16 hidden, 1500 steps) over 8
	 * data seeds: linear 0.958 -> MLP 0.960 mean |corr|, every seed within
	 * -0.002..+0.009, MSE 4e-3 -> 3e-3; this seed 0.965 -> 0.963.
	 * The MLP joint objective is not stable in the long run: L keeps falling
	 * while |corr| erodes, on a time scale ~ 1/lr_map (lr_map 1e-3: 0.82
	 * mean after 400 steps, ~0.5 after 3000; lr_map 3e-5: 0.82 after 8000).
	 * The second-order decorrelation does not stop the MLP from hiding one
	 * source as a small perturbation on a smooth nonlinear function of the
	 * other (see joint.h).
	 */
	ck_assert_double_ge(cn, cl - 0.01);
	ck_assert_double_ge(cn, 0.93);
	ck_assert_double_lt(msen, msel);

	free(S_true); free(X); free(A0); free(S0); free(Xh);
	strebm_joint_destroy(jn);
	strebm_joint_destroy(jl);
}
END_TEST

/* ---- smaller behaviour --------------------------------------------------- */

/* guess inverts an exact linear mixture; image sums to the reconstruction. */
START_TEST(test_guess_image)
{
	const size_t M = 3, K = 2, T = 64;
	struct strebm_joint_config cfg;
	struct strebm_joint *j;
	struct rng r = { 99 };
	double *A = dalloc(M * K), *S = dalloc(K * T), *X = dalloc(M * T);
	double *G = dalloc(K * T), *Y = dalloc(K * T), *Y2 = dalloc(K * T);
	double *Xh = dalloc(M * T), ell[2] = { 2.0, 5.0 };
	size_t i, t, k, rch;
	int mlp;

	for (i = 0; i < M * K; i++)
		A[i] = nrand(&r);
	for (i = 0; i < K * T; i++)
		S[i] = nrand(&r);
	for (i = 0; i < M; i++)
		for (t = 0; t < T; t++)
			X[i * T + t] = A[i * K] * S[t] + A[i * K + 1] * S[T + t];

	for (mlp = 0; mlp <= 1; mlp++) {
		strebm_joint_config_default(&cfg, M, K, T);
		cfg.use_mlp = mlp;
		cfg.hidden = 4;
		j = strebm_joint_create(&cfg);
		ck_assert_ptr_nonnull(j);
		ck_assert_int_eq(strebm_joint_init(j, A, S, ell), 0);
		/* after init the MLP is exactly linear, so both recover S */
		ck_assert_int_eq(strebm_joint_guess(j, X, T, G), 0);
		ck_assert_double_le(rel_err(G, S, K * T), 1e-10);
		ck_assert_int_eq(strebm_joint_reconstruct(j, Xh), 0);
		ck_assert_double_le(rel_err(Xh, X, M * T), 1e-12);
		for (rch = 0; rch < M; rch++) {
			ck_assert_int_eq(strebm_joint_image(j, rch, Y), 0);
			for (t = 0; t < T; t++)
				ck_assert_double_eq_tol(Y[t] + Y[T + t], X[rch * T + t], 1e-10);
		}
		strebm_joint_destroy(j);
	}

	/* the image is invariant to (a_k, s_k) -> (a_k / c, c s_k) */
	strebm_joint_config_default(&cfg, M, K, T);
	j = strebm_joint_create(&cfg);
	ck_assert_ptr_nonnull(j);
	ck_assert_int_eq(strebm_joint_init(j, A, S, ell), 0);
	ck_assert_int_eq(strebm_joint_image(j, 1, Y), 0);
	for (k = 0; k < K; k++) {
		double c = k ? -3.0 : 0.5;

		for (i = 0; i < M; i++)
			A[i * K + k] /= c;
		for (t = 0; t < T; t++)
			S[k * T + t] *= c;
	}
	ck_assert_int_eq(strebm_joint_set_params(j, S, A, NULL), 0);
	ck_assert_int_eq(strebm_joint_image(j, 1, Y2), 0);
	ck_assert_double_le(rel_err(Y2, Y, K * T), 1e-13);
	strebm_joint_destroy(j);

	free(A); free(S); free(X); free(G); free(Y); free(Y2); free(Xh);
}
END_TEST

/* Length-scales stay in [ELL_MIN, T/4] and in non-decreasing order. */
START_TEST(test_ell_bounds)
{
	const size_t M = 2, K = 3, T = 64;
	struct strebm_joint_config cfg;
	struct strebm_joint *j;
	struct rng r = { 5 };
	double *A = dalloc(M * K), *S = dalloc(K * T), *X = dalloc(M * T);
	const double ell_in[3] = { 100.0, 0.01, 3.0 };
	const double *ell;
	size_t i, k;
	int round;

	strebm_joint_config_default(&cfg, M, K, T);
	cfg.lr_logl = 0.2; /* push hard */
	j = strebm_joint_create(&cfg);
	ck_assert_ptr_nonnull(j);
	for (i = 0; i < M * K; i++)
		A[i] = nrand(&r);
	for (i = 0; i < K * T; i++)
		S[i] = nrand(&r);
	for (i = 0; i < M * T; i++)
		X[i] = nrand(&r);
	ck_assert_int_eq(strebm_joint_init(j, A, S, ell_in), 0);
	for (round = 0; round < 5; round++) {
		ell = strebm_joint_ell(j);
		for (k = 0; k < K; k++) {
			ck_assert_double_ge(ell[k], STREBM_ELL_MIN * (1.0 - 1e-12));
			ck_assert_double_le(ell[k], (double)T / 4.0 * (1.0 + 1e-12));
			if (k)
				ck_assert_double_le(ell[k - 1], ell[k] * (1.0 + 1e-12));
		}
		ck_assert_int_eq(strebm_joint_step(j, X, 50, NULL), 0);
	}
	free(A); free(S); free(X);
	strebm_joint_destroy(j);
}
END_TEST

/*
 * The engine's options: init_fit recovers A from X = A S; with lr_skip 0 the
 * skip path stays put while the rest of the MLP learns; map_decay shrinks
 * W2; ell_unordered clamps but keeps the given order.
 */
START_TEST(test_engine_options)
{
	const size_t M = 3, K = 2, T = 256, hid = 4;
	struct strebm_joint_config cfg;
	struct strebm_joint *j;
	struct rng r = { 9 };
	double *A = dalloc(M * K), *S = dalloc(K * T), *X = dalloc(M * T);
	const double ell_in[2] = { 30.0, 1e-3 };
	const double *p;
	double w2before = 0.0, w2after = 0.0, moved = 0.0;
	size_t i, nn;

	strebm_joint_config_default(&cfg, M, K, T);
	cfg.use_mlp = 1;
	cfg.hidden = hid;
	cfg.lr_map = 1e-2;
	cfg.lr_skip = 0.0;
	cfg.ell_unordered = 1;
	j = strebm_joint_create(&cfg);
	ck_assert_ptr_nonnull(j);
	for (i = 0; i < M * K; i++)
		A[i] = nrand(&r);
	gp_draw(S, T, 2.0, &r);
	gp_draw(S + T, T, 20.0, &r);
	for (i = 0; i < M * T; i++) {
		size_t m = i / T, t = i % T;
		X[i] = A[m * K] * S[t] + A[m * K + 1] * S[T + t];
	}
	ck_assert_int_eq(strebm_joint_init_fit(j, X, S, ell_in), 0);
	ck_assert_double_le(rel_err(strebm_joint_mixing(j), A, M * K), 1e-9);
	memcpy(A, strebm_joint_mixing(j), M * K * sizeof(double));
	/* clamped, order kept */
	ck_assert_double_eq_tol(strebm_joint_ell(j)[0], 30.0, 1e-9);
	ck_assert_double_eq_tol(strebm_joint_ell(j)[1], STREBM_ELL_MIN, 1e-12);
	for (i = 0; i < M * T; i++)
		X[i] = tanh(X[i]) + 0.05 * nrand(&r);
	ck_assert_int_eq(strebm_joint_step(j, X, 20, NULL), 0);
	ck_assert_int_eq(memcmp(strebm_joint_mixing(j), A, M * K * sizeof(double)), 0);
	p = strebm_joint_map_params(j);
	nn = strebm_joint_map_param_count(j) - M * K;
	for (i = 0; i < nn; i++)
		moved += fabs(p[i]);
	ck_assert_double_gt(moved, 0.0);
	strebm_joint_destroy(j);

	/* the same with map_decay 0.5: W2 (after W1 and b1) stays smaller */
	for (int pass = 0; pass < 2; pass++) {
		double acc = 0.0;

		cfg.map_decay = pass ? 0.5 : 0.0;
		j = strebm_joint_create(&cfg);
		ck_assert_ptr_nonnull(j);
		ck_assert_int_eq(strebm_joint_init_fit(j, X, S, ell_in), 0);
		ck_assert_int_eq(strebm_joint_step(j, X, 20, NULL), 0);
		p = strebm_joint_map_params(j) + hid * (K + 1);
		for (i = 0; i < M * hid; i++)
			acc += p[i] * p[i];
		*(pass ? &w2after : &w2before) = acc;
		strebm_joint_destroy(j);
	}
	ck_assert_double_lt(w2after, 0.25 * w2before);
	cfg.map_decay = 1.0;
	ck_assert_ptr_null(strebm_joint_create(&cfg));
	free(A); free(S); free(X);
}
END_TEST

/*
 * The worker calls do not allocate (and K=2, M=2, T=1024 timing). Without
 * the interposer (ASan builds) only the timing is measured.
 */
START_TEST(test_rt_no_alloc_and_timing)
{
	const size_t M = 2, K = 2, T = 1024, H = 256;
	struct strebm_joint_config cfg;
	struct strebm_joint *j;
	double *S_true = make_sources(T, 3), *X = mix_linear(S_true, T, 0.01, 4);
	double *A0 = dalloc(M * K), *S0 = dalloc(K * T), *Y = dalloc(K * T);
	double *Xh = dalloc(M * T), *Sn = dalloc(K * H), *gS = dalloc(K * T);
	double *gP, L, t0, dt, ell0[2] = { 3.0, 10.0 };
	const unsigned iters = 500;
	int mlp, rc[8];
	size_t i;

	for (mlp = 0; mlp <= 1; mlp++) {
		strebm_joint_config_default(&cfg, M, K, T);
		cfg.use_mlp = mlp;
		if (mlp)
			cfg.lr_map = 1e-3;
		j = strebm_joint_create(&cfg);
		ck_assert_ptr_nonnull(j);
		gP = dalloc(strebm_joint_map_param_count(j));
		pca_start(X, M, K, T, T, A0, S0);
		/* no ck_assert inside the watched region: Check allocates there */
#if HAVE_ALLOC_WATCH
		alloc_count = 0;
		alloc_watch = 1;
#endif
		rc[0] = strebm_joint_init(j, A0, S0, ell0);
		t0 = now_s();
		rc[1] = strebm_joint_step(j, X, iters, &L);
		dt = now_s() - t0;
		rc[2] = strebm_joint_gradient(j, X, &L, gS, gP, NULL);
		rc[3] = strebm_joint_guess(j, X, H, Sn);
		rc[4] = strebm_joint_shift(j, H, Sn);
		rc[5] = strebm_joint_reconstruct(j, Xh);
		rc[6] = strebm_joint_image(j, 0, Y);
		rc[7] = strebm_joint_set_params(j, S0, NULL, ell0);
#if HAVE_ALLOC_WATCH
		alloc_watch = 0;
		ck_assert_int_eq(alloc_count, 0);
#endif
		for (i = 0; i < 8; i++)
			ck_assert_int_eq(rc[i], 0);
		printf("# K=2 M=2 T=1024 %s: %.1f us per step (%u steps)\n",
		       mlp ? "mlp(32)" : "linear", 1e6 * dt / iters, iters);
		free(gP);
		strebm_joint_destroy(j);
	}
	free(S_true); free(X); free(A0); free(S0); free(Y); free(Xh); free(Sn); free(gS);
}
END_TEST

START_TEST(test_misuse)
{
	struct strebm_joint_config cfg, bad;
	struct strebm_joint *j;
	double A[4] = { 1, 0, 0, 1 }, S[2 * 16] = { 0 }, X[2 * 16] = { 0 };
	double ell[2] = { 1.0, 2.0 }, ell_bad[2] = { 1.0, -1.0 }, Y[2 * 16];

	strebm_joint_destroy(NULL);
	ck_assert_ptr_null(strebm_joint_create(NULL));
	strebm_joint_config_default(&cfg, 2, 2, 16);

	bad = cfg; bad.M = 0;
	ck_assert_ptr_null(strebm_joint_create(&bad));
	bad = cfg; bad.K = 0;
	ck_assert_ptr_null(strebm_joint_create(&bad));
	bad = cfg; bad.T = 4;
	ck_assert_ptr_null(strebm_joint_create(&bad));
	bad = cfg; bad.use_mlp = 1; bad.hidden = 0;
	ck_assert_ptr_null(strebm_joint_create(&bad));
	bad = cfg; bad.kernel = STREBM_KERNEL_COUNT;
	ck_assert_ptr_null(strebm_joint_create(&bad));
	bad = cfg; bad.eps = 0.0;
	ck_assert_ptr_null(strebm_joint_create(&bad));
	bad = cfg; bad.sigma2 = -1.0;
	ck_assert_ptr_null(strebm_joint_create(&bad));
	bad = cfg; bad.lambda = NAN;
	ck_assert_ptr_null(strebm_joint_create(&bad));
	bad = cfg; bad.beta = -1.0;
	ck_assert_ptr_null(strebm_joint_create(&bad));
	bad = cfg; bad.lr_s = INFINITY;
	ck_assert_ptr_null(strebm_joint_create(&bad));

	j = strebm_joint_create(&cfg);
	ck_assert_ptr_nonnull(j);
	/* not initialised yet */
	ck_assert_int_eq(strebm_joint_step(j, X, 1, NULL), -EINVAL);
	ck_assert_int_eq(strebm_joint_shift(j, 1, S), -EINVAL);
	ck_assert_int_eq(strebm_joint_gradient(j, X, NULL, NULL, NULL, NULL), -EINVAL);
	ck_assert_int_eq(strebm_joint_reconstruct(j, X), -EINVAL);
	ck_assert_int_eq(strebm_joint_image(j, 0, Y), -EINVAL);
	ck_assert_int_eq(strebm_joint_guess(j, X, 4, S), -EINVAL);
	ck_assert_int_eq(strebm_joint_set_params(j, S, NULL, NULL), -EINVAL);
	/* bad init */
	ck_assert_int_eq(strebm_joint_init(NULL, A, S, ell), -EINVAL);
	ck_assert_int_eq(strebm_joint_init(j, NULL, S, ell), -EINVAL);
	ck_assert_int_eq(strebm_joint_init(j, A, NULL, ell), -EINVAL);
	ck_assert_int_eq(strebm_joint_init(j, A, S, NULL), -EINVAL);
	ck_assert_int_eq(strebm_joint_init(j, A, S, ell_bad), -EINVAL);
	ck_assert_int_eq(strebm_joint_init(j, A, S, ell), 0);
	/* bad calls after init */
	ck_assert_int_eq(strebm_joint_step(j, NULL, 1, NULL), -EINVAL);
	ck_assert_int_eq(strebm_joint_step(NULL, X, 1, NULL), -EINVAL);
	ck_assert_int_eq(strebm_joint_shift(j, 0, S), -EINVAL);
	ck_assert_int_eq(strebm_joint_shift(j, 17, S), -EINVAL);
	ck_assert_int_eq(strebm_joint_shift(j, 4, NULL), -EINVAL);
	ck_assert_int_eq(strebm_joint_image(j, 2, Y), -EINVAL);
	ck_assert_int_eq(strebm_joint_image(j, 0, NULL), -EINVAL);
	ck_assert_int_eq(strebm_joint_guess(j, X, 0, S), -EINVAL);
	ck_assert_int_eq(strebm_joint_guess(j, X, 17, S), -EINVAL);
	ck_assert_int_eq(strebm_joint_reconstruct(j, NULL), -EINVAL);
	ck_assert_int_eq(strebm_joint_set_params(j, NULL, NULL, ell_bad), -EINVAL);
	ck_assert_ptr_null(strebm_joint_latent(NULL));
	ck_assert_ptr_null(strebm_joint_ell(NULL));
	ck_assert_uint_eq(strebm_joint_map_param_count(NULL), 0);
	/* a full-window shift and zero iterations are fine */
	ck_assert_int_eq(strebm_joint_shift(j, 16, S), 0);
	ck_assert_int_eq(strebm_joint_step(j, X, 0, NULL), 0);
	/* a non-finite window is reported, not hidden */
	X[3] = NAN;
	ck_assert_int_eq(strebm_joint_step(j, X, 1, NULL), -EDOM);
	strebm_joint_destroy(j);
}
END_TEST

static Suite *joint_suite(void)
{
	Suite *s = suite_create("joint");
	TCase *tc = tcase_create("core");
	TCase *sep = tcase_create("separation");

	tcase_add_loop_test(tc, test_gradient_fd, 0,
			    (int)(sizeof(grad_cases) / sizeof(grad_cases[0])));
	tcase_add_test(tc, test_guess_image);
	tcase_add_test(tc, test_ell_bounds);
	tcase_add_test(tc, test_engine_options);
	tcase_add_test(tc, test_rt_no_alloc_and_timing);
	tcase_add_test(tc, test_misuse);
	suite_add_tcase(s, tc);

	tcase_set_timeout(sep, 120);
	tcase_add_test(sep, test_separation_linear);
	tcase_add_test(sep, test_separation_sliding);
	tcase_add_test(sep, test_separation_nonlinear);
	suite_add_tcase(s, sep);
	return s;
}

int main(void)
{
	SRunner *sr;
	int failed;

	/* STYLE.md §6: OpenBLAS single-threaded inside our threads */
	openblas_set_num_threads(1);
	/* forked children may exit without flushing: keep the # lines */
	setvbuf(stdout, NULL, _IOLBF, 0);
	sr = srunner_create(joint_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
