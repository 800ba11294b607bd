/* SPDX-License-Identifier: MIT */
/*
 * strebm dct: orthonormal DCT-II and its inverse (DCT-III) of a fixed length,
 * on FFTW REDFT10 / REDFT01 plans made once at creation.
 *
 * Lifetime: create on the main thread (FFTW planning is not thread-safe and
 * allocates); forward/inverse are RT-safe and may run on any one thread at a
 * time per object.
 */
#ifndef STREBM_DCT_H
#define STREBM_DCT_H

#include <stddef.h>

struct strebm_dct;

/** Create plans for length n (n >= 2). Returns NULL on bad n or no memory. */
struct strebm_dct *strebm_dct_create(size_t n);
/** Destroy; NULL is a no-op. */
void strebm_dct_destroy(struct strebm_dct *d);
/** Length the object was made for. */
size_t strebm_dct_size(const struct strebm_dct *d);
/** out = DCT-II_ortho(in). in and out may alias. RT-safe. */
void strebm_dct_forward(struct strebm_dct *d, const double *in, double *out);
/** out = DCT-III_ortho(in), the inverse of forward. in and out may alias. RT-safe. */
void strebm_dct_inverse(struct strebm_dct *d, const double *in, double *out);

#endif
