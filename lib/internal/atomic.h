/* lib/internal/atomic.h: the only place weft touches ck_pr.h.
 *
 * The names below say what they order. In the normal build they are ck_pr
 * (inline assembly, one instruction each). ck_pr is invisible to
 * ThreadSanitizer, so under TSan (gcc's __SANITIZE_THREAD__, clang's
 * thread_sanitizer feature, or -DWEFT_TSAN_ATOMICS) the same names map to
 * __atomic builtins with the same orders, and TSan sees every access.
 *
 * Conventions:
 *   _rlx  relaxed (no ordering; atomicity only)
 *   _acq  acquire: later accesses stay after it
 *   _rel  release: earlier accesses stay before it
 *   RMWs (cas, faa, fas, or) are full barriers (seq_cst), as on x86.
 * weft__fence_rmw_load() orders a preceding RMW before later loads (a no-op
 * on x86, where locked instructions already do; a real fence elsewhere):
 * the store-load half of every Dekker pattern in weft uses an RMW followed
 * by this. weft__fence_load() keeps earlier loads before later ones (a
 * compiler barrier on x86): a reader that checks a version, reads, and
 * checks the version again puts it before the second check.
 */
#ifndef WEFT_INTERNAL_ATOMIC_H
#define WEFT_INTERNAL_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

#if defined(__SANITIZE_THREAD__) && !defined(WEFT_TSAN_ATOMICS)
#define WEFT_TSAN_ATOMICS 1
#endif
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) && !defined(WEFT_TSAN_ATOMICS)
#define WEFT_TSAN_ATOMICS 1
#endif
#endif

#define WEFT__CACHELINE 64
/* two lines: adjacent-line prefetch pairs lines on x86 */
#define WEFT__PAD 128
#define WEFT__ALIGNED _Alignas(WEFT__PAD)

#if defined(WEFT_TSAN_ATOMICS) && WEFT_TSAN_ATOMICS

#define WEFT__A_DEF(SFX, T)                                                      \
	static inline T weft__ld##SFX##_rlx(const T *p)                          \
	{                                                                        \
		return __atomic_load_n(p, __ATOMIC_RELAXED);                     \
	}                                                                        \
	static inline T weft__ld##SFX##_acq(const T *p)                          \
	{                                                                        \
		return __atomic_load_n(p, __ATOMIC_ACQUIRE);                     \
	}                                                                        \
	static inline void weft__st##SFX##_rlx(T *p, T v)                        \
	{                                                                        \
		__atomic_store_n(p, v, __ATOMIC_RELAXED);                        \
	}                                                                        \
	static inline void weft__st##SFX##_rel(T *p, T v)                        \
	{                                                                        \
		__atomic_store_n(p, v, __ATOMIC_RELEASE);                        \
	}                                                                        \
	static inline bool weft__cas##SFX(T *p, T *expected, T desired)          \
	{                                                                        \
		return __atomic_compare_exchange_n(p, expected, desired, false,  \
						   __ATOMIC_SEQ_CST,             \
						   __ATOMIC_SEQ_CST);            \
	}                                                                        \
	static inline T weft__faa##SFX(T *p, T d)                                \
	{                                                                        \
		return __atomic_fetch_add(p, d, __ATOMIC_SEQ_CST);               \
	}                                                                        \
	static inline T weft__fas##SFX(T *p, T v)                                \
	{                                                                        \
		return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);              \
	}                                                                        \
	static inline T weft__or##SFX(T *p, T v)                                 \
	{                                                                        \
		return __atomic_fetch_or(p, v, __ATOMIC_SEQ_CST);                \
	}

WEFT__A_DEF(64, uint64_t)
WEFT__A_DEF(32, uint32_t)
#undef WEFT__A_DEF

/* pointers */
static inline void *weft__ldp_rlx(void *const *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void *weft__ldp_acq(void *const *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}
static inline void weft__stp_rlx(void **p, void *v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}
static inline void weft__stp_rel(void **p, void *v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}
static inline bool weft__casp(void **p, void **expected, void *desired)
{
	return __atomic_compare_exchange_n(p, expected, desired, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_SEQ_CST);
}
static inline void *weft__fasp(void **p, void *v)
{
	return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST);
}

/* TSan does not model standalone fences (gcc warns about them): a seq_cst
 * RMW on a thread-local word is the same hardware barrier, and TSan sees
 * an atomic access instead of an unsupported fence. */
static inline void weft__fence_sc(void)
{
	static _Thread_local uint32_t fence_word;
	__atomic_fetch_add(&fence_word, 0, __ATOMIC_SEQ_CST);
}
static inline void weft__fence_rmw_load(void)
{
	weft__fence_sc();
}
static inline void weft__fence_load(void)
{
	weft__fence_sc();
}
static inline void weft__cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

#else /* ck_pr */

#include <ck_pr.h>

#define WEFT__A_DEF(SFX, T, CK)                                                  \
	static inline T weft__ld##SFX##_rlx(const T *p)                          \
	{                                                                        \
		return (T)ck_pr_load_##CK((T *)p);                               \
	}                                                                        \
	static inline T weft__ld##SFX##_acq(const T *p)                          \
	{                                                                        \
		T v = (T)ck_pr_load_##CK((T *)p);                                \
		ck_pr_fence_acquire();                                           \
		return v;                                                        \
	}                                                                        \
	static inline void weft__st##SFX##_rlx(T *p, T v)                        \
	{                                                                        \
		ck_pr_store_##CK(p, v);                                          \
	}                                                                        \
	static inline void weft__st##SFX##_rel(T *p, T v)                        \
	{                                                                        \
		ck_pr_fence_release();                                           \
		ck_pr_store_##CK(p, v);                                          \
	}                                                                        \
	static inline bool weft__cas##SFX(T *p, T *expected, T desired)          \
	{                                                                        \
		return ck_pr_cas_##CK##_value(p, *expected, desired, expected);  \
	}                                                                        \
	static inline T weft__fas##SFX(T *p, T v)                                \
	{                                                                        \
		return (T)ck_pr_fas_##CK(p, v);                                  \
	}

WEFT__A_DEF(64, uint64_t, 64)
WEFT__A_DEF(32, uint32_t, 32)
#undef WEFT__A_DEF

/* pointers */
static inline void *weft__ldp_rlx(void *const *p)
{
	return ck_pr_load_ptr(p);
}
static inline void *weft__ldp_acq(void *const *p)
{
	void *v = ck_pr_load_ptr(p);
	ck_pr_fence_acquire();
	return v;
}
static inline void weft__stp_rlx(void **p, void *v)
{
	ck_pr_store_ptr(p, v);
}
static inline void weft__stp_rel(void **p, void *v)
{
	ck_pr_fence_release();
	ck_pr_store_ptr(p, v);
}
static inline bool weft__casp(void **p, void **expected, void *desired)
{
	return ck_pr_cas_ptr_value(p, *expected, desired, expected);
}
static inline void *weft__fasp(void **p, void *v)
{
	return ck_pr_fas_ptr(p, v);
}

static inline uint64_t weft__faa64(uint64_t *p, uint64_t d)
{
	return ck_pr_faa_64(p, d);
}
static inline uint32_t weft__faa32(uint32_t *p, uint32_t d)
{
	return ck_pr_faa_32(p, d);
}
static inline uint64_t weft__or64(uint64_t *p, uint64_t v)
{
	uint64_t old = ck_pr_load_64(p);
	while (!ck_pr_cas_64_value(p, old, old | v, &old))
		;
	return old;
}
static inline uint32_t weft__or32(uint32_t *p, uint32_t v)
{
	uint32_t old = ck_pr_load_32(p);
	while (!ck_pr_cas_32_value(p, old, old | v, &old))
		;
	return old;
}
static inline void weft__fence_rmw_load(void)
{
	ck_pr_fence_atomic_load();
}
static inline void weft__fence_load(void)
{
	ck_pr_fence_load();
}
static inline void weft__fence_sc(void)
{
#if defined(__x86_64__)
	/* A locked RMW is as full a barrier as mfence for ordinary memory
	 * (weft has no non-temporal stores or write-combining mappings) and
	 * costs a quarter of it here: 5.7 ns against 23 on this EPYC VM (the
	 * kernel's smp_mb does the same). OR 0 into the word at the stack
	 * pointer: always mapped (a task's stack included) and left as it
	 * was; only this thread uses it. */
	__asm__ __volatile__("lock orl $0, (%%rsp)" ::: "memory", "cc");
#else
	ck_pr_fence_memory();
#endif
}
static inline void weft__cpu_relax(void)
{
	ck_pr_stall();
}

#endif

#endif /* WEFT_INTERNAL_ATOMIC_H */
