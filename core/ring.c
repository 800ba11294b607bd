/* SPDX-License-Identifier: MIT */
#include "ring.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

struct strebm_ring {
	/* producer and consumer positions on their own cache lines */
	_Alignas(64) _Atomic uint64_t head; /* written */
	_Alignas(64) _Atomic uint64_t tail; /* read */
	_Alignas(64) size_t elem, cap, mask;
	unsigned char *buf;
};

struct strebm_ring *strebm_ring_create(size_t elem_size, size_t capacity)
{
	struct strebm_ring *r;
	size_t cap = 1;

	if (!elem_size || !capacity || capacity > ((size_t)1 << 40))
		return NULL;
	while (cap < capacity)
		cap <<= 1;
	r = aligned_alloc(64, (sizeof(*r) + 63) / 64 * 64);
	if (!r)
		return NULL;
	memset(r, 0, sizeof(*r));
	r->buf = calloc(cap, elem_size);
	if (!r->buf) {
		free(r);
		return NULL;
	}
	r->elem = elem_size;
	r->cap = cap;
	r->mask = cap - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return r;
}

void strebm_ring_destroy(struct strebm_ring *r)
{
	if (!r)
		return;
	free(r->buf);
	free(r);
}

size_t strebm_ring_capacity(const struct strebm_ring *r)
{
	return r->cap;
}

size_t strebm_ring_read_space(const struct strebm_ring *r)
{
	uint64_t h = atomic_load_explicit(&((struct strebm_ring *)r)->head, memory_order_acquire);
	uint64_t t = atomic_load_explicit(&((struct strebm_ring *)r)->tail, memory_order_relaxed);

	return (size_t)(h - t);
}

size_t strebm_ring_write_space(const struct strebm_ring *r)
{
	uint64_t h = atomic_load_explicit(&((struct strebm_ring *)r)->head, memory_order_relaxed);
	uint64_t t = atomic_load_explicit(&((struct strebm_ring *)r)->tail, memory_order_acquire);

	return r->cap - (size_t)(h - t);
}

void strebm_ring_write_regions(struct strebm_ring *r, void **p1, size_t *n1, void **p2,
			       size_t *n2)
{
	size_t space = strebm_ring_write_space(r);
	size_t at = (size_t)atomic_load_explicit(&r->head, memory_order_relaxed) & r->mask;
	size_t first = r->cap - at;

	if (first > space)
		first = space;
	*p1 = r->buf + at * r->elem;
	*n1 = first;
	*p2 = r->buf;
	*n2 = space - first;
}

void strebm_ring_commit(struct strebm_ring *r, size_t n)
{
	atomic_fetch_add_explicit(&r->head, n, memory_order_release);
}

size_t strebm_ring_write(struct strebm_ring *r, const void *src, size_t n)
{
	void *p1, *p2;
	size_t n1, n2;

	strebm_ring_write_regions(r, &p1, &n1, &p2, &n2);
	if (n > n1 + n2)
		n = n1 + n2;
	if (n <= n1) {
		memcpy(p1, src, n * r->elem);
	} else {
		memcpy(p1, src, n1 * r->elem);
		memcpy(p2, (const unsigned char *)src + n1 * r->elem, (n - n1) * r->elem);
	}
	strebm_ring_commit(r, n);
	return n;
}

void strebm_ring_read_regions(struct strebm_ring *r, const void **p1, size_t *n1,
			      const void **p2, size_t *n2)
{
	size_t avail = strebm_ring_read_space(r);
	size_t at = (size_t)atomic_load_explicit(&r->tail, memory_order_relaxed) & r->mask;
	size_t first = r->cap - at;

	if (first > avail)
		first = avail;
	*p1 = r->buf + at * r->elem;
	*n1 = first;
	*p2 = r->buf;
	*n2 = avail - first;
}

size_t strebm_ring_skip(struct strebm_ring *r, size_t n)
{
	size_t avail = strebm_ring_read_space(r);

	if (n > avail)
		n = avail;
	atomic_fetch_add_explicit(&r->tail, n, memory_order_release);
	return n;
}

size_t strebm_ring_read(struct strebm_ring *r, void *dst, size_t n)
{
	const void *p1, *p2;
	size_t n1, n2;

	strebm_ring_read_regions(r, &p1, &n1, &p2, &n2);
	if (n > n1 + n2)
		n = n1 + n2;
	if (n <= n1) {
		memcpy(dst, p1, n * r->elem);
	} else {
		memcpy(dst, p1, n1 * r->elem);
		memcpy((unsigned char *)dst + n1 * r->elem, p2, (n - n1) * r->elem);
	}
	return strebm_ring_skip(r, n);
}

uint64_t strebm_ring_consumed(const struct strebm_ring *r)
{
	return atomic_load_explicit(&((struct strebm_ring *)r)->tail, memory_order_acquire);
}

uint64_t strebm_ring_produced(const struct strebm_ring *r)
{
	return atomic_load_explicit(&((struct strebm_ring *)r)->head, memory_order_acquire);
}

