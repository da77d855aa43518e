/* lib/internal/sys.h: the failure-injection seam.
 *
 * Every call of lib/ that can fail for want of a resource goes through one
 * of the names below, never through libc directly:
 *   memory   weft__sys_malloc, _calloc, _realloc, _aligned_alloc,
 *            _posix_memalign, _strdup
 *   threads  weft__sys_thread_create (pthread_create)
 *   stacks   weft__sys_mmap, _mprotect (task stacks and their guard page),
 *            _sigaltstack (a carrier's signal stack)
 *   files    weft__sys_open, _mkostemp, _pwrite, _pread, _ftruncate (the
 *            SPILL file)
 *   keys     weft__sys_key_create (pthread_key_create)
 * (Not routed, on purpose: free/munmap/close/unlink, which cannot fail in
 * a way weft could act on; the /proc reads of the spin heuristics and the
 * monitor's probe, whose failure already means "unknown"; membarrier,
 * whose failure already falls back to fences; futex waits, which have no
 * setup to fail. Nothing in lib/ uses timerfd, signalfd or eventfd.)
 *
 * Normal builds: each name is a macro for the libc call itself, so lib/'s
 * compiled code is exactly what it was without the seam (compare
 * `objdump -d` of lib/'s objects with and without it).
 *
 * Fault builds (meson -Dfault_injection=true, which defines
 * WEFT_FAULT_INJECTION=1 for lib/ and the tests; for tests only, never
 * for a library that ships): each call first asks weft__fault_hit(kind,
 * site, func). Each site (file:line) numbers its calls 1, 2, 3, ...; one
 * call fails, once, the way the real call fails (below), and every other
 * goes through. Which one is armed by the test:
 *   weft__fault_arm_site(site, k): the k-th call of that site (the walk of
 *     tests/unit/test_faults.c: every site, every k; independent of the
 *     order in which threads make their calls);
 *   weft__fault_arm(n, mask, cap): the n-th call of the armed kinds across
 *     the process, in the order they happen (one atomic counter; with
 *     several threads the order is that run's; cap > 0: only the first cap
 *     calls of each site are numbered); n 0 only counts;
 *   weft__fault_arm_at(func, kind, k): the k-th call of kind made by the
 *     function func (the regression checks: they name the call).
 * The failed call's site, kind and thread name are kept for the test.
 *
 *   malloc, calloc, realloc, aligned_alloc, strdup: NULL, errno ENOMEM
 *   posix_memalign: ENOMEM                (realloc leaves the block as is)
 *   pthread_create: EAGAIN               pthread_key_create: EAGAIN
 *   mmap: MAP_FAILED, errno ENOMEM       mprotect, sigaltstack: -1, ENOMEM
 *   open, mkostemp: -1, errno EMFILE     pwrite: -1, errno ENOSPC
 *   pread, ftruncate: -1, errno EIO
 *
 * The test's interface is weft__fault_* below (tests/unit/test_faults.c);
 * lib/internal/sys.c holds the counter and is built only in fault builds.
 */
#ifndef WEFT_INTERNAL_SYS_H
#define WEFT_INTERNAL_SYS_H

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

enum {
	WEFT__FAULT_ALLOC = 1,
	WEFT__FAULT_THREAD = 2,
	WEFT__FAULT_STACK = 4,
	WEFT__FAULT_FILE = 8,
	WEFT__FAULT_KEY = 16,
	WEFT__FAULT_ALL = 31,
};

#if defined(WEFT_FAULT_INJECTION) && WEFT_FAULT_INJECTION

#define WEFT__SYS_STR2(x) #x
#define WEFT__SYS_STR(x) WEFT__SYS_STR2(x)
/* where a call is made: "file:line" (a literal: its pointer names the
 * site) and the calling function */
#define WEFT__AT __FILE__ ":" WEFT__SYS_STR(__LINE__), __func__

/* True: this call (of kind, at site, in func) is the one to fail. */
bool weft__fault_hit(unsigned kind, const char *site, const char *func);

/* ---- the test's interface ---- */

/* Start numbering calls of the kinds in mask from 1; the call numbered n
 * fails (n 0: none, only count); cap > 0: number only the first cap calls
 * of each site. Clears what was recorded. */
void weft__fault_arm(uint64_t n, unsigned mask, uint32_t cap);
/* Fail the nth call made at site (a "file:line" as weft__fault_sites
 * gives it; compared as a string), whatever the calls elsewhere: a walk
 * site by site does not depend on the order in which threads call. */
void weft__fault_arm_site(const char *site, uint64_t nth);
/* Number only the calls of kind made by the function named func; the nth
 * fails (for regression checks that name the call, not a count that
 * moves whenever the script changes). */
void weft__fault_arm_at(const char *func, unsigned kind, uint64_t nth);
/* Stop numbering and failing (what was recorded stays). */
void weft__fault_disarm(void);
/* Calls numbered so far. */
uint64_t weft__fault_calls(void);
/* 1 if the numbered call has failed (then site, kind and the name of the
 * thread that made it are set, each pointer may be NULL), else 0. */
int weft__fault_fired(const char **site, unsigned *kind, const char **thread);
/* fn(site, kind, thread) is called by the thread whose call fails, at
 * once (a test that may crash after it still learns the site). */
void weft__fault_set_hook(void (*fn)(const char *site, unsigned kind, const char *thread));
/* Each site that made a call of an armed kind, with its kind and how many
 * it made (numbered or not), in no particular order. */
void weft__fault_sites(void (*fn)(const char *site, unsigned kind, uint64_t calls, void *user),
		       void *user);
const char *weft__fault_kind_name(unsigned kind);

/* ---- the wrappers ---- */

static inline void *weft__sys_malloc_(size_t n, const char *site, const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_ALLOC, site, func)) {
		errno = ENOMEM;
		return NULL;
	}
	return malloc(n);
}

static inline void *weft__sys_calloc_(size_t k, size_t n, const char *site, const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_ALLOC, site, func)) {
		errno = ENOMEM;
		return NULL;
	}
	return calloc(k, n);
}

static inline void *weft__sys_realloc_(void *p, size_t n, const char *site, const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_ALLOC, site, func)) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, n);
}

static inline void *weft__sys_aligned_alloc_(size_t a, size_t n, const char *site, const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_ALLOC, site, func)) {
		errno = ENOMEM;
		return NULL;
	}
	return aligned_alloc(a, n);
}

static inline int weft__sys_posix_memalign_(void **p, size_t a, size_t n, const char *site,
					    const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_ALLOC, site, func))
		return ENOMEM;
	return posix_memalign(p, a, n);
}

static inline char *weft__sys_strdup_(const char *s, const char *site, const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_ALLOC, site, func)) {
		errno = ENOMEM;
		return NULL;
	}
	return strdup(s);
}

static inline int weft__sys_thread_create_(pthread_t *t, const pthread_attr_t *a,
					   void *(*fn)(void *), void *arg, const char *site,
					   const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_THREAD, site, func))
		return EAGAIN;
	return pthread_create(t, a, fn, arg);
}

static inline int weft__sys_key_create_(pthread_key_t *k, void (*dtor)(void *), const char *site,
					const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_KEY, site, func))
		return EAGAIN;
	return pthread_key_create(k, dtor);
}

static inline void *weft__sys_mmap_(void *a, size_t n, int prot, int flags, int fd, off_t off,
				    const char *site, const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_STACK, site, func)) {
		errno = ENOMEM;
		return MAP_FAILED;
	}
	return mmap(a, n, prot, flags, fd, off);
}

static inline int weft__sys_mprotect_(void *a, size_t n, int prot, const char *site,
				      const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_STACK, site, func)) {
		errno = ENOMEM;
		return -1;
	}
	return mprotect(a, n, prot);
}

static inline int weft__sys_sigaltstack_(const stack_t *ss, stack_t *old, const char *site,
					 const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_STACK, site, func)) {
		errno = ENOMEM;
		return -1;
	}
	return sigaltstack(ss, old);
}

static inline int weft__sys_open_(const char *path, int flags, mode_t mode, const char *site,
				  const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_FILE, site, func)) {
		errno = EMFILE;
		return -1;
	}
	return open(path, flags, mode);
}

static inline int weft__sys_mkostemp_(char *tmpl, int flags, const char *site, const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_FILE, site, func)) {
		errno = EMFILE;
		return -1;
	}
	return mkostemp(tmpl, flags);
}

static inline ssize_t weft__sys_pwrite_(int fd, const void *buf, size_t n, off_t off,
					const char *site, const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_FILE, site, func)) {
		errno = ENOSPC;
		return -1;
	}
	return pwrite(fd, buf, n, off);
}

static inline ssize_t weft__sys_pread_(int fd, void *buf, size_t n, off_t off, const char *site,
				       const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_FILE, site, func)) {
		errno = EIO;
		return -1;
	}
	return pread(fd, buf, n, off);
}

static inline int weft__sys_ftruncate_(int fd, off_t len, const char *site, const char *func)
{
	if (weft__fault_hit(WEFT__FAULT_FILE, site, func)) {
		errno = EIO;
		return -1;
	}
	return ftruncate(fd, len);
}

#define weft__sys_malloc(n) weft__sys_malloc_((n), WEFT__AT)
#define weft__sys_calloc(k, n) weft__sys_calloc_((k), (n), WEFT__AT)
#define weft__sys_realloc(p, n) weft__sys_realloc_((p), (n), WEFT__AT)
#define weft__sys_aligned_alloc(a, n) weft__sys_aligned_alloc_((a), (n), WEFT__AT)
#define weft__sys_posix_memalign(p, a, n) weft__sys_posix_memalign_((p), (a), (n), WEFT__AT)
#define weft__sys_strdup(s) weft__sys_strdup_((s), WEFT__AT)
#define weft__sys_thread_create(t, a, fn, arg) \
	weft__sys_thread_create_((t), (a), (fn), (arg), WEFT__AT)
#define weft__sys_key_create(k, d) weft__sys_key_create_((k), (d), WEFT__AT)
#define weft__sys_mmap(a, n, p, f, fd, o) weft__sys_mmap_((a), (n), (p), (f), (fd), (o), WEFT__AT)
#define weft__sys_mprotect(a, n, p) weft__sys_mprotect_((a), (n), (p), WEFT__AT)
#define weft__sys_sigaltstack(s, o) weft__sys_sigaltstack_((s), (o), WEFT__AT)
#define weft__sys_open(p, f, m) weft__sys_open_((p), (f), (m), WEFT__AT)
#define weft__sys_mkostemp(t, f) weft__sys_mkostemp_((t), (f), WEFT__AT)
#define weft__sys_pwrite(fd, b, n, o) weft__sys_pwrite_((fd), (b), (n), (o), WEFT__AT)
#define weft__sys_pread(fd, b, n, o) weft__sys_pread_((fd), (b), (n), (o), WEFT__AT)
#define weft__sys_ftruncate(fd, n) weft__sys_ftruncate_((fd), (n), WEFT__AT)

#else /* the plain calls: no cost, no trace */

#define weft__sys_malloc(n) malloc(n)
#define weft__sys_calloc(k, n) calloc(k, n)
#define weft__sys_realloc(p, n) realloc(p, n)
#define weft__sys_aligned_alloc(a, n) aligned_alloc(a, n)
#define weft__sys_posix_memalign(p, a, n) posix_memalign(p, a, n)
#define weft__sys_strdup(s) strdup(s)
#define weft__sys_thread_create(t, a, fn, arg) pthread_create(t, a, fn, arg)
#define weft__sys_key_create(k, d) pthread_key_create(k, d)
#define weft__sys_mmap(a, n, p, f, fd, o) mmap(a, n, p, f, fd, o)
#define weft__sys_mprotect(a, n, p) mprotect(a, n, p)
#define weft__sys_sigaltstack(s, o) sigaltstack(s, o)
#define weft__sys_open(p, f, m) open(p, f, m)
#define weft__sys_mkostemp(t, f) mkostemp(t, f)
#define weft__sys_pwrite(fd, b, n, o) pwrite(fd, b, n, o)
#define weft__sys_pread(fd, b, n, o) pread(fd, b, n, o)
#define weft__sys_ftruncate(fd, n) ftruncate(fd, n)

#endif

#endif
