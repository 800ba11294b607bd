/* SPDX-License-Identifier: MIT */
#include "linear.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dct.h"

/* Whitening floor relative to the largest eigenvalue (-60 dB). Directions
 * below it (a dead or duplicated channel, a rank-deficient mixture) are not
 * amplified at all (scaled as the largest), so they stay silent outputs
 * instead of numerical noise amplified hop after hop. */
#define STREBM_EIG_FLOOR 1e-6

struct strebm_linear {
	struct strebm_linear_config cfg;
	size_t M, K, T, N, B;
	struct strebm_dct *dct;

	double *xd;        /* M x T DCT of the frame */
	size_t *edge;      /* B + 1 band edges */
	double *wb;        /* B band centre frequencies, rad/sample */
	double *cnt;       /* B band widths (coefficients) */

	double *C;         /* M x M running covariance */
	double *c;         /* M x M frame covariance */
	double *W;         /* K x M unmixing, W C W^T = I */
	double *A;         /* M x K mixing estimate */
	double *D;         /* K x M demixing with back-projection */

	double *cb;        /* ring: N x B x M x M band covariances */
	double *R;         /* ring: N x K x M x M band-weighted covariances */
	double *Y;         /* N x K x K x K projected statistics */
	size_t head;       /* next slot */
	size_t nframes;    /* frames held (<= N) */

	double *lam;       /* K x B spectra */
	double ell[STREBM_MAX_SOURCES];
	bool pinned[STREBM_MAX_SOURCES];
	enum strebm_kernel kernel[STREBM_MAX_SOURCES];

	/* scratch */
	double *G;         /* K x K */
	double *tmpKM;     /* K x M */
	double *tmpMM;     /* M x M */
	double *eigw;      /* max(M,K) eigenvalues */
	double *eigwork;   /* mx x mx eigenvectors scratch */
	double *fa, *fb, *fd, *ga, *gb, *gd; /* N per-frame scalars */
	double *pw;        /* N x B band powers of one source */

	unsigned long updates;
	double objective;
	bool ready;
};

void strebm_linear_config_default(struct strebm_linear_config *cfg, size_t M, size_t K, size_t T)
{
	size_t k;

	memset(cfg, 0, sizeof(*cfg));
	cfg->M = M;
	cfg->K = K;
	cfg->T = T;
	cfg->N = 64;
	cfg->B = T >= 64 ? 64 : T;
	for (k = 0; k < STREBM_MAX_SOURCES; k++)
		cfg->kernel[k] = STREBM_KERNEL_RBF;
	cfg->floor = 1e-3;
	cfg->forget = 0.995;
	cfg->sweeps = 2;
	cfg->newton = 3;
	cfg->maxstep = 0.3;
	cfg->settle = 0.02;
	cfg->settle_after = 50;
	cfg->ell_every = 2;
	cfg->ell_lo = 0.3;
	cfg->ell_hi = (double)T / 8.0;
	cfg->ell_init_lo = 1.0;
	cfg->ell_init_hi = 8.0;
	cfg->ell_ordered = false;
	cfg->ref_mic = 0;
}

static bool config_valid(const struct strebm_linear_config *c)
{
	size_t k;

	if (c->M < 1 || c->M > STREBM_MAX_CHANNELS)
		return false;
	if (c->K < 1 || c->K > c->M || c->K > STREBM_MAX_SOURCES)
		return false;
	if (c->T < 16 || c->N < 1 || c->B < 1 || c->B > c->T || c->B > STREBM_LINEAR_MAX_BANDS)
		return false;
	if (!(c->floor > 0.0) || !(c->forget >= 0.0 && c->forget < 1.0))
		return false;
	if (!(c->ell_lo > 0.0) || !(c->ell_hi >= c->ell_lo))
		return false;
	if (!(c->ell_init_lo > 0.0) || !(c->ell_init_hi >= c->ell_init_lo))
		return false;
	if (!(c->maxstep > 0.0) || !(c->settle > 0.0) || c->newton < 1)
		return false;
	if (c->ref_mic >= c->M)
		return false;
	for (k = 0; k < c->K; k++)
		if ((unsigned)c->kernel[k] >= STREBM_KERNEL_COUNT)
			return false;
	return true;
}

static void *zalloc(size_t n, size_t size)
{
	return calloc(n ? n : 1, size);
}

struct strebm_linear *strebm_linear_create(const struct strebm_linear_config *cfg)
{
	struct strebm_linear *l;
	size_t M, K, T, N, B, b, mx;
	if (!cfg || !config_valid(cfg))
		return NULL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->cfg = *cfg;
	M = l->M = cfg->M;
	K = l->K = cfg->K;
	T = l->T = cfg->T;
	N = l->N = cfg->N;
	B = l->B = cfg->B;
	mx = M > K ? M : K;

	l->dct = strebm_dct_create(T);
	l->xd = zalloc(M * T, sizeof(double));
	l->edge = zalloc(B + 1, sizeof(size_t));
	l->wb = zalloc(B, sizeof(double));
	l->cnt = zalloc(B, sizeof(double));
	l->C = zalloc(M * M, sizeof(double));
	l->c = zalloc(M * M, sizeof(double));
	l->W = zalloc(K * M, sizeof(double));
	l->A = zalloc(M * K, sizeof(double));
	l->D = zalloc(K * M, sizeof(double));
	l->cb = zalloc(N * B * M * M, sizeof(double));
	l->R = zalloc(N * K * M * M, sizeof(double));
	l->Y = zalloc(N * K * K * K, sizeof(double));
	l->lam = zalloc(K * B, sizeof(double));
	l->G = zalloc(K * K, sizeof(double));
	l->tmpKM = zalloc(K * M, sizeof(double));
	l->tmpMM = zalloc(mx * mx, sizeof(double));
	l->eigw = zalloc(mx, sizeof(double));
	l->fa = zalloc(N, sizeof(double));
	l->fb = zalloc(N, sizeof(double));
	l->fd = zalloc(N, sizeof(double));
	l->ga = zalloc(N, sizeof(double));
	l->gb = zalloc(N, sizeof(double));
	l->gd = zalloc(N, sizeof(double));
	l->pw = zalloc(N * B, sizeof(double));
	if (!l->dct || !l->xd || !l->edge || !l->wb || !l->cnt || !l->C || !l->c ||
	    !l->W || !l->A || !l->D || !l->cb || !l->R || !l->Y || !l->lam || !l->G ||
	    !l->tmpKM || !l->tmpMM || !l->eigw || !l->fa || !l->fb || !l->fd ||
	    !l->ga || !l->gb || !l->gd || !l->pw)
		goto fail;

	l->eigwork = zalloc(mx * mx, sizeof(double));
	if (!l->eigwork)
		goto fail;

	for (b = 0; b <= B; b++)
		l->edge[b] = (size_t)((double)b * (double)T / (double)B + 0.5);
	for (b = 0; b < B; b++) {
		l->cnt[b] = (double)(l->edge[b + 1] - l->edge[b]);
		l->wb[b] = M_PI * 0.5 * (double)(l->edge[b] + l->edge[b + 1]) / (double)T;
	}
	strebm_linear_reset(l);
	return l;
fail:
	strebm_linear_destroy(l);
	return NULL;
}

void strebm_linear_destroy(struct strebm_linear *l)
{
	if (!l)
		return;
	strebm_dct_destroy(l->dct);
	free(l->xd); free(l->edge); free(l->wb); free(l->cnt);
	free(l->C); free(l->c); free(l->W); free(l->A); free(l->D);
	free(l->cb); free(l->R); free(l->Y); free(l->lam);
	free(l->G); free(l->tmpKM); free(l->tmpMM); free(l->eigw); free(l->eigwork);
	free(l->fa); free(l->fb); free(l->fd); free(l->ga); free(l->gb); free(l->gd);
	free(l->pw);
	free(l);
}

/* Normalised spectrum of source k on the bands: unit total power over the T
 * coefficients, plus the floor. */
static void spectrum(const struct strebm_linear *l, enum strebm_kernel kind, double ell, double *out)
{
	size_t b;
	double z = 0.0;

	for (b = 0; b < l->B; b++) {
		out[b] = strebm_kernel_psd(kind, l->wb[b], ell);
		z += out[b] * l->cnt[b];
	}
	if (!(z > 0.0))
		z = 1.0;
	for (b = 0; b < l->B; b++)
		out[b] = out[b] / z * (double)l->T + l->cfg.floor;
}

/* R_jk for frame slot j and source k from the band statistics. */
static void build_r(struct strebm_linear *l, size_t j, size_t k)
{
	size_t MM = l->M * l->M, b, i;
	double *r = l->R + (j * l->K + k) * MM;
	const double *cb = l->cb + j * l->B * MM;
	const double *lam = l->lam + k * l->B;

	memset(r, 0, MM * sizeof(double));
	for (b = 0; b < l->B; b++) {
		double w = 1.0 / lam[b];
		for (i = 0; i < MM; i++)
			r[i] += w * cb[b * MM + i];
	}
}

void strebm_linear_reset(struct strebm_linear *l)
{
	size_t k, K = l->K;

	l->head = 0;
	l->nframes = 0;
	l->updates = 0;
	l->objective = 0.0;
	l->ready = false;
	memset(l->C, 0, l->M * l->M * sizeof(double));
	memset(l->W, 0, K * l->M * sizeof(double));
	memset(l->A, 0, l->M * K * sizeof(double));
	memset(l->D, 0, K * l->M * sizeof(double));
	for (k = 0; k < K; k++) {
		double r = K > 1 ? (double)k / (double)(K - 1) : 0.0;
		l->ell[k] = l->cfg.ell_init_lo * pow(l->cfg.ell_init_hi / l->cfg.ell_init_lo, r);
		l->pinned[k] = false;
		l->kernel[k] = l->cfg.kernel[k];
		spectrum(l, l->kernel[k], l->ell[k], l->lam + k * l->B);
	}
}

/*
 * Symmetric eigen-decomposition of the n x n matrix a (n <= 64): cyclic
 * Jacobi rotations. On return a holds the eigenvectors column-major (column i
 * is eigenvector i) and w the eigenvalues in ascending order.
 *
 * Not LAPACK: OpenBLAS takes a mutex in its buffer pool on every call
 * (dsyev -> dsymv -> blas_memory_alloc), which the worker must not do, and
 * these matrices are at most K x K or M x M. tests/test_rtsafe.c checks it.
 */
static int eigh(struct strebm_linear *l, double *a, size_t n, double *w)
{
	double *v = l->eigwork; /* n x n, column-major */
	size_t i, j, p, q, sweep;

	for (i = 0; i < n * n; i++)
		v[i] = 0.0;
	for (i = 0; i < n; i++)
		v[i + i * n] = 1.0;
	/* a is symmetric: use it in place (column-major == row-major) */
	for (sweep = 0; sweep < 60; sweep++) {
		double off = 0.0, diag = 0.0;
		for (p = 0; p < n; p++) {
			diag += a[p + p * n] * a[p + p * n];
			for (q = p + 1; q < n; q++)
				off += a[p + q * n] * a[p + q * n];
		}
		if (!isfinite(off) || !isfinite(diag))
			return -EDOM;
		if (off <= 1e-30 * diag || off == 0.0)
			break;
		for (p = 0; p < n; p++)
			for (q = p + 1; q < n; q++) {
				double apq = a[p + q * n], app, aqq, theta, t, c, s;
				if (apq == 0.0)
					continue;
				app = a[p + p * n];
				aqq = a[q + q * n];
				theta = (aqq - app) / (2.0 * apq);
				t = (theta >= 0.0 ? 1.0 : -1.0) /
				    (fabs(theta) + sqrt(theta * theta + 1.0));
				c = 1.0 / sqrt(t * t + 1.0);
				s = t * c;
				for (i = 0; i < n; i++) {
					/* columns p, q of a */
					double aip = a[i + p * n], aiq = a[i + q * n];
					a[i + p * n] = c * aip - s * aiq;
					a[i + q * n] = s * aip + c * aiq;
				}
				for (i = 0; i < n; i++) {
					/* rows p, q of a */
					double api = a[p + i * n], aqi = a[q + i * n];
					a[p + i * n] = c * api - s * aqi;
					a[q + i * n] = s * api + c * aqi;
				}
				for (i = 0; i < n; i++) {
					double vip = v[i + p * n], viq = v[i + q * n];
					v[i + p * n] = c * vip - s * viq;
					v[i + q * n] = s * vip + c * viq;
				}
			}
	}
	for (i = 0; i < n; i++)
		w[i] = a[i + i * n];
	/* sort ascending (selection sort; n is small), moving vectors along */
	for (i = 0; i < n; i++) {
		size_t m = i;
		for (j = i + 1; j < n; j++)
			if (w[j] < w[m])
				m = j;
		if (m != i) {
			double t = w[i];
			w[i] = w[m];
			w[m] = t;
			for (p = 0; p < n; p++) {
				t = v[p + i * n];
				v[p + i * n] = v[p + m * n];
				v[p + m * n] = t;
			}
		}
	}
	memcpy(a, v, n * n * sizeof(double));
	return 0;
}

/* out (K x M) = S^-1/2 in, S = in C in^T (K x K): re-decorrelate in place. */
static int decorrelate(struct strebm_linear *l)
{
	size_t K = l->K, M = l->M, i, j, m, n;
	double *S = l->tmpMM, *w = l->eigw, dmax;

	/* tmpKM = W C */
	for (i = 0; i < K; i++)
		for (m = 0; m < M; m++) {
			double s = 0.0;
			for (n = 0; n < M; n++)
				s += l->W[i * M + n] * l->C[n * M + m];
			l->tmpKM[i * M + m] = s;
		}
	for (i = 0; i < K; i++)
		for (j = 0; j < K; j++) {
			double s = 0.0;
			for (m = 0; m < M; m++)
				s += l->tmpKM[i * M + m] * l->W[j * M + m];
			S[i + j * K] = s;
		}
	if (eigh(l, S, K, w) < 0)
		return -EDOM;
	dmax = w[K - 1];
	if (!(dmax > 0.0) || !isfinite(dmax))
		return -EDOM;
	/* G = E diag(w^-1/2) E^T ; W <- G W (G stored in l->G row-major) */
	for (i = 0; i < K; i++)
		for (j = 0; j < K; j++) {
			double s = 0.0;
			for (n = 0; n < K; n++) {
				double d = w[n] > STREBM_EIG_FLOOR * dmax ? w[n] : dmax;
				s += S[i + n * K] * S[j + n * K] / sqrt(d);
			}
			l->G[i * K + j] = s;
		}
	for (i = 0; i < K; i++)
		for (m = 0; m < M; m++) {
			double s = 0.0;
			for (n = 0; n < K; n++)
				s += l->G[i * K + n] * l->W[n * M + m];
			l->tmpKM[i * M + m] = s;
		}
	memcpy(l->W, l->tmpKM, K * M * sizeof(double));
	return 0;
}

/* First unmixing: PCA whitening onto the K strongest directions (symmetric
 * whitening when M == K). */
static int init_unmix(struct strebm_linear *l)
{
	size_t M = l->M, K = l->K, i, m, n;
	double *E = l->tmpMM, *w = l->eigw, dmax;

	memcpy(E, l->C, M * M * sizeof(double));
	if (eigh(l, E, M, w) < 0)
		return -EDOM;
	dmax = w[M - 1];
	if (!(dmax > 0.0) || !isfinite(dmax))
		return -EDOM;
	for (i = 0; i < K; i++) {
		size_t col = M - 1 - i; /* descending */
		double d = w[col] > STREBM_EIG_FLOOR * dmax ? w[col] : dmax;
		for (m = 0; m < M; m++)
			l->W[i * M + m] = E[m + col * M] / sqrt(d);
	}
	if (M == K) {
		/* symmetric form E^T-rotated back: W <- E W */
		for (i = 0; i < K; i++)
			for (m = 0; m < M; m++) {
				double s = 0.0;
				for (n = 0; n < K; n++)
					s += E[i + (M - 1 - n) * M] * l->W[n * M + m];
				l->tmpKM[i * M + m] = s;
			}
		memcpy(l->W, l->tmpKM, K * M * sizeof(double));
	}
	return 0;
}

/* Y_jk = W R_jk W^T for every held frame and source. */
static void project_all(struct strebm_linear *l)
{
	size_t K = l->K, M = l->M, MM = M * M, KK = K * K, j, k, i, p, m, n;

	for (j = 0; j < l->nframes; j++)
		for (k = 0; k < K; k++) {
			const double *r = l->R + (j * K + k) * MM;
			double *y = l->Y + (j * K + k) * KK;
			for (i = 0; i < K; i++)
				for (m = 0; m < M; m++) {
					double s = 0.0;
					for (n = 0; n < M; n++)
						s += l->W[i * M + n] * r[n * M + m];
					l->tmpKM[i * M + m] = s;
				}
			for (i = 0; i < K; i++)
				for (p = i; p < K; p++) {
					double s = 0.0;
					for (m = 0; m < M; m++)
						s += l->tmpKM[i * M + m] * l->W[p * M + m];
					y[i * K + p] = y[p * K + i] = s;
				}
		}
}

/* u^T Y v for K x K symmetric Y */
static double quad(const double *Y, const double *u, const double *v, size_t K)
{
	size_t i, j;
	double s = 0.0;

	for (i = 0; i < K; i++) {
		double t = 0.0;
		for (j = 0; j < K; j++)
			t += Y[i * K + j] * v[j];
		s += u[i] * t;
	}
	return s;
}

/* One Jacobi sweep over all pairs; rotations accumulate in l->G. */
static void jacobi_sweep(struct strebm_linear *l, double lim)
{
	size_t K = l->K, KK = K * K, NF = l->nframes, p, q, j, i;
	unsigned it;
	double half_t = 0.5 * (double)l->T;

	for (p = 0; p < K; p++)
		for (q = p + 1; q < K; q++) {
			const double *gp = l->G + p * K, *gq = l->G + q * K;
			double th = 0.0, c, s;

			for (j = 0; j < NF; j++) {
				const double *yp = l->Y + (j * K + p) * KK;
				const double *yq = l->Y + (j * K + q) * KK;
				l->fa[j] = quad(yp, gp, gp, K);
				l->fb[j] = quad(yp, gp, gq, K);
				l->fd[j] = quad(yp, gq, gq, K);
				l->ga[j] = quad(yq, gq, gq, K);
				l->gb[j] = quad(yq, gq, gp, K);
				l->gd[j] = quad(yq, gp, gp, K);
			}
			for (it = 0; it < l->cfg.newton; it++) {
				double c2 = cos(2.0 * th), s2 = sin(2.0 * th);
				double f1 = 0.0, f2 = 0.0, step;
				for (j = 0; j < NF; j++) {
					double a = l->fa[j], b = l->fb[j], d = l->fd[j];
					double u = 0.5 * (a + d) + 0.5 * (a - d) * c2 - b * s2;
					double u1 = -(a - d) * s2 - 2.0 * b * c2;
					double u2 = -2.0 * (a - d) * c2 + 4.0 * b * s2;
					double v, v1, v2;
					if (u <= 0.0)
						u = 1e-300;
					f1 += u1 / u;
					f2 += u2 / u - (u1 / u) * (u1 / u);
					a = l->ga[j]; b = l->gb[j]; d = l->gd[j];
					v = 0.5 * (a + d) + 0.5 * (a - d) * c2 + b * s2;
					v1 = -(a - d) * s2 + 2.0 * b * c2;
					v2 = -2.0 * (a - d) * c2 - 4.0 * b * s2;
					if (v <= 0.0)
						v = 1e-300;
					f1 += v1 / v;
					f2 += v2 / v - (v1 / v) * (v1 / v);
				}
				f1 *= half_t;
				f2 *= half_t;
				if (f2 > 0.0)
					step = -f1 / f2;
				else
					step = f1 > 0.0 ? -0.1 : 0.1;
				if (step > lim)
					step = lim;
				if (step < -lim)
					step = -lim;
				th += step;
			}
			if (th > lim)
				th = lim;
			if (th < -lim)
				th = -lim;
			c = cos(th);
			s = sin(th);
			for (i = 0; i < K; i++) {
				double a = l->G[p * K + i], b = l->G[q * K + i];
				l->G[p * K + i] = c * a - s * b;
				l->G[q * K + i] = s * a + c * b;
			}
		}
}

/* Band powers of source k in every held frame: pw[j*B + b] = w_k C_jb w_k^T. */
static void band_powers(struct strebm_linear *l, size_t k)
{
	size_t M = l->M, MM = M * M, B = l->B, j, b, m, n;
	const double *w = l->W + k * M;

	for (j = 0; j < l->nframes; j++)
		for (b = 0; b < B; b++) {
			const double *cb = l->cb + (j * B + b) * MM;
			double s = 0.0;
			for (m = 0; m < M; m++) {
				double t = 0.0;
				for (n = 0; n < M; n++)
					t += cb[m * M + n] * w[n];
				s += w[m] * t;
			}
			l->pw[j * B + b] = s;
		}
}

/* Profiled energy of source k over the context as a function of log ell;
 * lam is scratch (B values). */
static double ell_objective(struct strebm_linear *l, size_t k, double le, double *lam)
{
	size_t j, b, B = l->B;
	double f = 0.0, ld = 0.0;

	spectrum(l, l->kernel[k], exp(le), lam);
	for (b = 0; b < B; b++)
		ld += l->cnt[b] * log(lam[b]);
	for (j = 0; j < l->nframes; j++) {
		double s = 0.0;
		for (b = 0; b < B; b++)
			s += l->pw[j * B + b] / lam[b];
		f += 0.5 * (double)l->T * log(s / (double)l->T + 1e-300);
	}
	return f + 0.5 * (double)l->nframes * ld;
}

static void update_ell(struct strebm_linear *l)
{
	size_t k, j, K = l->K;
	double lam[STREBM_LINEAR_MAX_BANDS];
	double prev[STREBM_MAX_SOURCES];

	for (k = 0; k < K; k++) {
		double le, h = 1e-3, f0, fp, fm, g, c, step;
		prev[k] = l->ell[k];
		if (l->pinned[k])
			continue;
		band_powers(l, k);
		le = log(l->ell[k]);
		f0 = ell_objective(l, k, le, lam);
		fp = ell_objective(l, k, le + h, lam);
		fm = ell_objective(l, k, le - h, lam);
		g = (fp - fm) / (2.0 * h);
		c = (fp - 2.0 * f0 + fm) / (h * h);
		step = c > 0.0 ? -g / c : (g > 0.0 ? -0.1 : 0.1);
		if (step > 0.3)
			step = 0.3;
		if (step < -0.3)
			step = -0.3;
		if (isfinite(step))
			l->ell[k] = exp(le + step);
	}
	if (l->cfg.ell_ordered) {
		/* pinned sources keep their value: order only when none is pinned */
		bool any = false;
		for (k = 0; k < K; k++)
			any |= l->pinned[k];
		if (!any)
			strebm_lengthscale_canonical(l->ell, K, l->cfg.ell_lo, l->cfg.ell_hi);
	}
	for (k = 0; k < K; k++) {
		if (!l->pinned[k]) {
			if (l->ell[k] < l->cfg.ell_lo)
				l->ell[k] = l->cfg.ell_lo;
			if (l->ell[k] > l->cfg.ell_hi)
				l->ell[k] = l->cfg.ell_hi;
		}
		if (l->ell[k] != prev[k]) {
			spectrum(l, l->kernel[k], l->ell[k], l->lam + k * l->B);
			for (j = 0; j < l->nframes; j++)
				build_r(l, j, k);
		}
	}
}

static void update_outputs(struct strebm_linear *l)
{
	size_t K = l->K, M = l->M, i, m, n;

	/* A = C W^T (W C W^T = I), M x K */
	for (m = 0; m < M; m++)
		for (i = 0; i < K; i++) {
			double s = 0.0;
			for (n = 0; n < M; n++)
				s += l->C[m * M + n] * l->W[i * M + n];
			l->A[m * K + i] = s;
		}
	for (i = 0; i < K; i++) {
		double a = l->A[l->cfg.ref_mic * K + i];
		for (m = 0; m < M; m++)
			l->D[i * M + m] = a * l->W[i * M + m];
	}
}

static double context_objective(struct strebm_linear *l)
{
	size_t j, k, K = l->K, KK = K * K;
	double f = 0.0;

	if (!l->nframes)
		return 0.0;
	for (j = 0; j < l->nframes; j++)
		for (k = 0; k < K; k++) {
			double y = l->Y[(j * K + k) * KK + k * K + k];
			f += 0.5 * log(y > 1e-300 ? y : 1e-300);
		}
	return f / (double)l->nframes;
}

static bool all_finite(const double *x, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isfinite(x[i]))
			return false;
	return true;
}

int strebm_linear_update(struct strebm_linear *l, const double *X, bool adapt)
{
	size_t M, K, T, B, MM, m, n, t, b, k, slot;
	double tr = 0.0, trC = 0.0, f, lim;
	unsigned sw;

	if (!l || !X)
		return -EINVAL;
	M = l->M; K = l->K; T = l->T; B = l->B; MM = M * M;

	for (m = 0; m < M; m++)
		for (n = m; n < M; n++) {
			double s = 0.0;
			for (t = 0; t < T; t++)
				s += X[m * T + t] * X[n * T + t];
			l->c[m * M + n] = l->c[n * M + m] = s / (double)T;
		}
	for (m = 0; m < M; m++) {
		tr += l->c[m * M + m];
		trC += l->C[m * M + m];
	}
	if (!isfinite(tr) || tr < 1e-14 || (l->ready && tr < 1e-9 * trC))
		return 0;

	/* running covariance, an exact mean over the first frames */
	f = 1.0 - 1.0 / (double)(l->updates + 1);
	if (f > l->cfg.forget)
		f = l->cfg.forget;
	for (m = 0; m < MM; m++)
		l->C[m] = f * l->C[m] + (1.0 - f) * l->c[m];

	/* band statistics of this frame into the ring */
	slot = l->head;
	for (m = 0; m < M; m++)
		strebm_dct_forward(l->dct, X + m * T, l->xd + m * T);
	for (b = 0; b < B; b++) {
		size_t lo = l->edge[b], nb = l->edge[b + 1] - lo;
		double *cb = l->cb + (slot * B + b) * MM;
		if (!nb) {
			memset(cb, 0, MM * sizeof(double));
			continue;
		}
		/* plain loops, not BLAS: M x M x nb is tiny, and OpenBLAS takes a
		 * mutex in its buffer pool on every level-3 call */
		for (m = 0; m < M; m++)
			for (n = m; n < M; n++) {
				const double *a = l->xd + m * T + lo, *c = l->xd + n * T + lo;
				double s = 0.0;
				for (t = 0; t < nb; t++)
					s += a[t] * c[t];
				cb[m * M + n] = cb[n * M + m] = s;
			}
	}
	for (k = 0; k < K; k++)
		build_r(l, slot, k);
	l->head = (l->head + 1) % l->N;
	if (l->nframes < l->N)
		l->nframes++;
	/* ring order does not matter for the objective: slots 0..nframes-1 */

	if (!l->ready) {
		if (init_unmix(l) < 0)
			return 0;
		l->ready = true;
	}
	if (adapt) {
		if (decorrelate(l) < 0) {
			if (init_unmix(l) < 0)
				return 0;
		}
		project_all(l);
		memset(l->G, 0, K * K * sizeof(double));
		for (k = 0; k < K; k++)
			l->G[k * K + k] = 1.0;
		lim = l->updates < l->cfg.settle_after ? l->cfg.maxstep : l->cfg.settle;
		if (K > 1)
			for (sw = 0; sw < l->cfg.sweeps; sw++)
				jacobi_sweep(l, lim);
		/* W <- G W */
		for (k = 0; k < K; k++)
			for (m = 0; m < M; m++) {
				double s = 0.0;
				for (n = 0; n < K; n++)
					s += l->G[k * K + n] * l->W[n * M + m];
				l->tmpKM[k * M + m] = s;
			}
		memcpy(l->W, l->tmpKM, K * M * sizeof(double));
		if (l->cfg.ell_every && (l->updates % l->cfg.ell_every) == 0)
			update_ell(l);
		project_all(l);
		l->objective = context_objective(l);
	}
	update_outputs(l);
	if (!all_finite(l->W, K * M) || !all_finite(l->D, K * M)) {
		/* numerical breakdown: start again rather than emit garbage */
		strebm_linear_reset(l);
		return 0;
	}
	l->updates++;
	return 1;
}

bool strebm_linear_ready(const struct strebm_linear *l)
{
	return l && l->ready;
}

const double *strebm_linear_demix(const struct strebm_linear *l)
{
	return l->D;
}

const double *strebm_linear_unmix(const struct strebm_linear *l)
{
	return l->W;
}

const double *strebm_linear_mixing(const struct strebm_linear *l)
{
	return l->A;
}

const double *strebm_linear_ell(const struct strebm_linear *l)
{
	return l->ell;
}

void strebm_linear_ell_bounds(const struct strebm_linear *l, double *lo, double *hi)
{
	*lo = l->cfg.ell_lo;
	*hi = l->cfg.ell_hi;
}

int strebm_linear_set_ell(struct strebm_linear *l, size_t k, double ell, bool pinned)
{
	size_t j;

	if (!l || k >= l->K || !isfinite(ell) || ell < l->cfg.ell_lo || ell > l->cfg.ell_hi)
		return -EINVAL;
	l->ell[k] = ell;
	l->pinned[k] = pinned;
	spectrum(l, l->kernel[k], ell, l->lam + k * l->B);
	for (j = 0; j < l->nframes; j++)
		build_r(l, j, k);
	return 0;
}

int strebm_linear_get_source(const struct strebm_linear *l, size_t k, enum strebm_kernel *kind,
			     bool *pinned)
{
	if (!l || k >= l->K)
		return -EINVAL;
	*kind = l->kernel[k];
	*pinned = l->pinned[k];
	return 0;
}

int strebm_linear_set_kernel(struct strebm_linear *l, size_t k, enum strebm_kernel kind)
{
	size_t j;

	if (!l || k >= l->K || (unsigned)kind >= STREBM_KERNEL_COUNT)
		return -EINVAL;
	l->kernel[k] = kind;
	spectrum(l, kind, l->ell[k], l->lam + k * l->B);
	for (j = 0; j < l->nframes; j++)
		build_r(l, j, k);
	return 0;
}

int strebm_linear_permute(struct strebm_linear *l, const size_t *perm)
{
	size_t K, M, i, j;
	double ell[STREBM_MAX_SOURCES];
	bool pin[STREBM_MAX_SOURCES], seen[STREBM_MAX_SOURCES] = { false };
	enum strebm_kernel kind[STREBM_MAX_SOURCES];

	if (!l || !perm)
		return -EINVAL;
	K = l->K;
	M = l->M;
	for (i = 0; i < K; i++) {
		if (perm[i] >= K || seen[perm[i]])
			return -EINVAL;
		seen[perm[i]] = true;
	}
	for (i = 0; i < K; i++) {
		memcpy(l->tmpKM + i * M, l->W + perm[i] * M, M * sizeof(double));
		ell[i] = l->ell[perm[i]];
		pin[i] = l->pinned[perm[i]];
		kind[i] = l->kernel[perm[i]];
	}
	memcpy(l->W, l->tmpKM, K * M * sizeof(double));
	for (i = 0; i < K; i++) {
		l->ell[i] = ell[i];
		l->pinned[i] = pin[i];
		l->kernel[i] = kind[i];
		spectrum(l, kind[i], ell[i], l->lam + i * l->B);
		for (j = 0; j < l->nframes; j++)
			build_r(l, j, i);
	}
	update_outputs(l);
	return 0;
}

unsigned long strebm_linear_updates(const struct strebm_linear *l)
{
	return l->updates;
}

double strebm_linear_objective(const struct strebm_linear *l)
{
	return l->objective;
}

/*
 * State serialisation (see linear.h). Layout, native byte order, every field
 * 8 bytes: M K T N B head nframes updates ready, objective, then per source
 * ell, pinned, kernel, then C (M x M), W (K x M) and the N x B x M x M ring of
 * band statistics. The derived spectra, R, A and D are rebuilt on load.
 */
#define LINEAR_STATE_FIELDS 9

struct state_cursor {
	unsigned char *w;
	const unsigned char *r;
	size_t pos, len;
};

static void put_u64(struct state_cursor *c, uint64_t v)
{
	memcpy(c->w + c->pos, &v, sizeof(v));
	c->pos += sizeof(v);
}

static void put_f64(struct state_cursor *c, const double *v, size_t n)
{
	memcpy(c->w + c->pos, v, n * sizeof(double));
	c->pos += n * sizeof(double);
}

static uint64_t get_u64(struct state_cursor *c)
{
	uint64_t v;

	memcpy(&v, c->r + c->pos, sizeof(v));
	c->pos += sizeof(v);
	return v;
}

static double get_f64(struct state_cursor *c)
{
	double v;

	memcpy(&v, c->r + c->pos, sizeof(v));
	c->pos += sizeof(v);
	return v;
}

static bool finite_run(struct state_cursor *c, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!isfinite(get_f64(c)))
			return false;
	return true;
}

size_t strebm_linear_state_size(const struct strebm_linear *l)
{
	size_t M, K;

	if (!l)
		return 0;
	M = l->M;
	K = l->K;
	return 8 * (LINEAR_STATE_FIELDS + 1 + 3 * K + M * M + K * M + l->N * l->B * M * M);
}

int strebm_linear_save_state(const struct strebm_linear *l, void *buf, size_t len)
{
	struct state_cursor c = { .w = buf, .len = len };
	size_t k;

	if (!l || !buf || len < strebm_linear_state_size(l))
		return -EINVAL;
	put_u64(&c, l->M);
	put_u64(&c, l->K);
	put_u64(&c, l->T);
	put_u64(&c, l->N);
	put_u64(&c, l->B);
	put_u64(&c, l->head);
	put_u64(&c, l->nframes);
	put_u64(&c, l->updates);
	put_u64(&c, l->ready);
	put_f64(&c, &l->objective, 1);
	for (k = 0; k < l->K; k++) {
		put_f64(&c, &l->ell[k], 1);
		put_u64(&c, l->pinned[k]);
		put_u64(&c, (uint64_t)l->kernel[k]);
	}
	put_f64(&c, l->C, l->M * l->M);
	put_f64(&c, l->W, l->K * l->M);
	put_f64(&c, l->cb, l->N * l->B * l->M * l->M);
	return 0;
}

int strebm_linear_check_state(const struct strebm_linear *l, const void *buf, size_t len)
{
	struct state_cursor c = { .r = buf, .len = len };
	size_t k, MM;
	uint64_t head, nframes, ready;

	if (!l || !buf || len != strebm_linear_state_size(l))
		return -EINVAL;
	MM = l->M * l->M;
	if (get_u64(&c) != l->M || get_u64(&c) != l->K || get_u64(&c) != l->T ||
	    get_u64(&c) != l->N || get_u64(&c) != l->B)
		return -EINVAL;
	head = get_u64(&c);
	nframes = get_u64(&c);
	(void)get_u64(&c); /* updates: any value */
	ready = get_u64(&c);
	if (head >= l->N || nframes > l->N || ready > 1)
		return -EINVAL;
	if (!finite_run(&c, 1))
		return -EINVAL;
	for (k = 0; k < l->K; k++) {
		double ell = get_f64(&c);
		uint64_t pinned = get_u64(&c), kind = get_u64(&c);
		if (!isfinite(ell) || ell < l->cfg.ell_lo || ell > l->cfg.ell_hi || pinned > 1 ||
		    kind >= STREBM_KERNEL_COUNT)
			return -EINVAL;
	}
	if (!finite_run(&c, MM + l->K * l->M + l->N * l->B * MM))
		return -EINVAL;
	return 0;
}

int strebm_linear_load_state(struct strebm_linear *l, const void *buf, size_t len)
{
	struct state_cursor c = { .r = buf, .len = len };
	size_t k, j, MM;
	int r = strebm_linear_check_state(l, buf, len);

	if (r < 0)
		return r;
	MM = l->M * l->M;
	c.pos = 5 * 8;
	l->head = get_u64(&c);
	l->nframes = get_u64(&c);
	l->updates = get_u64(&c);
	l->ready = get_u64(&c) != 0;
	l->objective = get_f64(&c);
	for (k = 0; k < l->K; k++) {
		l->ell[k] = get_f64(&c);
		l->pinned[k] = get_u64(&c) != 0;
		l->kernel[k] = (enum strebm_kernel)get_u64(&c);
	}
	memcpy(l->C, c.r + c.pos, MM * sizeof(double));
	c.pos += MM * sizeof(double);
	memcpy(l->W, c.r + c.pos, l->K * l->M * sizeof(double));
	c.pos += l->K * l->M * sizeof(double);
	memcpy(l->cb, c.r + c.pos, l->N * l->B * MM * sizeof(double));
	for (k = 0; k < l->K; k++) {
		spectrum(l, l->kernel[k], l->ell[k], l->lam + k * l->B);
		for (j = 0; j < l->nframes; j++)
			build_r(l, j, k);
	}
	if (l->ready)
		update_outputs(l);
	else {
		memset(l->A, 0, l->M * l->K * sizeof(double));
		memset(l->D, 0, l->K * l->M * sizeof(double));
	}
	return 0;
}
