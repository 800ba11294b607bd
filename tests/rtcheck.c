/* SPDX-License-Identifier: MIT */
/*
 * rtcheck: linked into the test build strebmd-rtcheck (with -DSTREBMD_RTCHECK)
 * to prove the audio callback's rule. It interposes the allocator, the lock
 * and wait primitives and the common system-call wrappers; while the audio
 * callback has armed it (strebmd_rtcheck_arm), any call aborts the process
 * with the function's name. At exit it prints how many callbacks it checked.
 * Built without sanitizers (their allocator cannot be interposed this way).
 */
#include <dlfcn.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

void strebmd_rtcheck_arm(int on);

static _Thread_local int armed;
static atomic_ulong checked;

void strebmd_rtcheck_arm(int on)
{
	armed = on;
	if (on)
		atomic_fetch_add_explicit(&checked, 1, memory_order_relaxed);
}

static void violation(const char *what)
{
	static const char pre[] = "rtcheck: VIOLATION on the audio thread: ";

	armed = 0;
	/* raw write: stdio might allocate */
	if (write(2, pre, sizeof(pre) - 1) < 0 || write(2, what, strlen(what)) < 0 ||
	    write(2, "\n", 1) < 0)
		abort();
	abort();
}

#define CHECK(name) do { if (armed) violation(name); } while (0)

__attribute__((destructor)) static void report(void)
{
	fprintf(stderr, "rtcheck: %lu audio callbacks checked, no violation\n",
		atomic_load(&checked));
}

/* ---- allocator ---- */
void *malloc(size_t n);
void *calloc(size_t a, size_t b);
void *realloc(void *p, size_t n);
void free(void *p);
int posix_memalign(void **p, size_t a, size_t n);
void *aligned_alloc(size_t a, size_t n);
void *memalign(size_t a, size_t n);

void *malloc(size_t n) { CHECK("malloc"); return __libc_malloc(n); }
void *calloc(size_t a, size_t b) { CHECK("calloc"); return __libc_calloc(a, b); }
void *realloc(void *p, size_t n) { CHECK("realloc"); return __libc_realloc(p, n); }
void free(void *p) { if (p) CHECK("free"); __libc_free(p); }
void *aligned_alloc(size_t a, size_t n) { CHECK("aligned_alloc"); return __libc_memalign(a, n); }
void *memalign(size_t a, size_t n) { CHECK("memalign"); return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n)
{
	CHECK("posix_memalign");
	*p = __libc_memalign(a, n);
	return *p ? 0 : 12;
}

/* ---- forwarding helpers for the rest ---- */
#define REAL(ret, name, ...) \
	static ret (*real_##name)(__VA_ARGS__); \
	if (!real_##name) \
		real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

int pthread_mutex_lock(pthread_mutex_t *m)
{
	REAL(int, pthread_mutex_lock, pthread_mutex_t *);
	CHECK("pthread_mutex_lock");
	return real_pthread_mutex_lock(m);
}

int pthread_mutex_trylock(pthread_mutex_t *m)
{
	REAL(int, pthread_mutex_trylock, pthread_mutex_t *);
	CHECK("pthread_mutex_trylock");
	return real_pthread_mutex_trylock(m);
}

int pthread_cond_wait(pthread_cond_t *c, pthread_mutex_t *m)
{
	REAL(int, pthread_cond_wait, pthread_cond_t *, pthread_mutex_t *);
	CHECK("pthread_cond_wait");
	return real_pthread_cond_wait(c, m);
}

int pthread_cond_timedwait(pthread_cond_t *c, pthread_mutex_t *m, const struct timespec *t)
{
	REAL(int, pthread_cond_timedwait, pthread_cond_t *, pthread_mutex_t *,
	     const struct timespec *);
	CHECK("pthread_cond_timedwait");
	return real_pthread_cond_timedwait(c, m, t);
}

int pthread_cond_signal(pthread_cond_t *c)
{
	REAL(int, pthread_cond_signal, pthread_cond_t *);
	CHECK("pthread_cond_signal");
	return real_pthread_cond_signal(c);
}

int pthread_cond_broadcast(pthread_cond_t *c)
{
	REAL(int, pthread_cond_broadcast, pthread_cond_t *);
	CHECK("pthread_cond_broadcast");
	return real_pthread_cond_broadcast(c);
}

int sem_wait(sem_t *s)
{
	REAL(int, sem_wait, sem_t *);
	CHECK("sem_wait");
	return real_sem_wait(s);
}

int sem_post(sem_t *s)
{
	REAL(int, sem_post, sem_t *);
	CHECK("sem_post");
	return real_sem_post(s);
}

ssize_t write(int fd, const void *b, size_t n)
{
	REAL(ssize_t, write, int, const void *, size_t);
	CHECK("write");
	return real_write(fd, b, n);
}

ssize_t read(int fd, void *b, size_t n)
{
	REAL(ssize_t, read, int, void *, size_t);
	CHECK("read");
	return real_read(fd, b, n);
}

int nanosleep(const struct timespec *a, struct timespec *b)
{
	REAL(int, nanosleep, const struct timespec *, struct timespec *);
	CHECK("nanosleep");
	return real_nanosleep(a, b);
}

int clock_nanosleep(clockid_t c, int f, const struct timespec *a, struct timespec *b)
{
	REAL(int, clock_nanosleep, clockid_t, int, const struct timespec *, struct timespec *);
	CHECK("clock_nanosleep");
	return real_clock_nanosleep(c, f, a, b);
}

int usleep(useconds_t us)
{
	REAL(int, usleep, useconds_t);
	CHECK("usleep");
	return real_usleep(us);
}

int poll(struct pollfd *f, nfds_t n, int t)
{
	REAL(int, poll, struct pollfd *, nfds_t, int);
	CHECK("poll");
	return real_poll(f, n, t);
}

int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *t)
{
	REAL(int, select, int, fd_set *, fd_set *, fd_set *, struct timeval *);
	CHECK("select");
	return real_select(n, r, w, e, t);
}

int vfprintf(FILE *f, const char *fmt, va_list ap)
{
	REAL(int, vfprintf, FILE *, const char *, va_list);
	CHECK("vfprintf");
	return real_vfprintf(f, fmt, ap);
}

int fprintf(FILE *f, const char *fmt, ...)
{
	va_list ap;
	int r;

	CHECK("fprintf");
	va_start(ap, fmt);
	r = vfprintf(f, fmt, ap);
	va_end(ap);
	return r;
}
