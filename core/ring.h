/* SPDX-License-Identifier: MIT */
/*
 * strebm ring: a lock-free single-producer single-consumer ring of
 * fixed-size elements (audio frames, commands). Capacity is rounded up to a
 * power of two. Indices are free-running 64-bit counters published with
 * acquire/release atomics, so the totals written and read are exact stream
 * positions.
 *
 * Threads: create/destroy on a control thread while neither side runs;
 * write/write_space/written from the one producer thread; read/peek/skip/
 * read_space/consumed from the one consumer thread. All of these are RT-safe
 * (no allocation, locks or system calls).
 */
#ifndef STREBM_RING_H
#define STREBM_RING_H

#include <stddef.h>
#include <stdint.h>

struct strebm_ring;

/** Create a ring of at least capacity elements of elem_size bytes. */
struct strebm_ring *strebm_ring_create(size_t elem_size, size_t capacity);
/** Destroy; NULL is a no-op. */
void strebm_ring_destroy(struct strebm_ring *r);
/** Capacity in elements. */
size_t strebm_ring_capacity(const struct strebm_ring *r);
/** Elements that can be read now (consumer). */
size_t strebm_ring_read_space(const struct strebm_ring *r);
/** Elements that can be written now (producer). */
size_t strebm_ring_write_space(const struct strebm_ring *r);
/** Write up to n elements; @return how many were written. Producer. */
size_t strebm_ring_write(struct strebm_ring *r, const void *src, size_t n);
/**
 * The writable region as up to two contiguous parts (the second after the
 * wrap); counts in elements. Fill them, then strebm_ring_commit(). Producer.
 */
void strebm_ring_write_regions(struct strebm_ring *r, void **p1, size_t *n1, void **p2,
			       size_t *n2);
/** Publish n elements written through write_regions. Producer. */
void strebm_ring_commit(struct strebm_ring *r, size_t n);
/** Read up to n elements; @return how many were read. Consumer. */
size_t strebm_ring_read(struct strebm_ring *r, void *dst, size_t n);
/** The readable region as up to two parts. Consumer. */
void strebm_ring_read_regions(struct strebm_ring *r, const void **p1, size_t *n1,
			      const void **p2, size_t *n2);
/** Drop up to n elements; @return how many were dropped. Consumer. */
size_t strebm_ring_skip(struct strebm_ring *r, size_t n);
/** Total elements ever read or skipped (consumer's stream position). */
uint64_t strebm_ring_consumed(const struct strebm_ring *r);
/** Total elements ever written (producer's stream position). */
uint64_t strebm_ring_produced(const struct strebm_ring *r);

#endif
