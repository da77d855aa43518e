/* lib/internal/ring.c: see ring.h for the scheme.
 *
 * Ordering:
 * - push: acquire-load the slot stamp (pairs with the pop that freed it:
 *   that pop's read of the old element is done before we overwrite);
 *   CAS tail (claims the position; the full barrier before the caller's
 *   load of the receivers' count); write the element; store the stamp
 *   pos + 1 with release (the element to the pop that acquires it).
 * - pop: acquire-load the stamp (pairs with the push's release: the
 *   element is there); CAS head (full barrier before the caller's load of
 *   the senders' count); read the element; release-store the stamp
 *   pos + one_lap (our read done before a producer reuses the slot).
 * - "Empty" is decided on tail, "full" on head, both read after the stamp:
 *   a CAS on tail or head is a full barrier, so a waiter that registered
 *   and then reads tail/head sees any claim the publisher made before it
 *   read the waiter count.
 * - Slot sleepers: faa(the slot's sleeper count), weft__fence_heavy, then
 *   re-read the stamp, then futex on the stamp's low 32 bits (which change
 *   on every transition: +1 or one_lap - 1, both below 2^32). The
 *   publisher's stamp store then load of that count is the other half of
 *   the Dekker pair;
 *   its store-load fence is the sleeper's membarrier (asymmetric fences,
 *   park.h), or, without membarrier, the publisher's xchg.
 */
#include "internal/ring.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "internal/park.h"
#include "internal/sys.h"
#include <weft/common.h>
#include <weft/chan.h>

static inline uint64_t *slot_stamp(const struct weft__ring *r, uint64_t pos)
{
	size_t idx = (size_t)(pos & (r->one_lap - 1));
	return (uint64_t *)(void *)(r->slots + idx * r->stride);
}

/* The sleeper count of the slot at pos. One per slot (slots
 * WEFT__RING_SLEEPER_BUCKETS apart share one in bigger rings), not one per
 * ring: a thread asleep on one slot, which can last a time slice while
 * the preempted owner of that slot waits for a core, must not make every
 * other push and pop of the ring pay a futex wake (measured: mpmc 4x4 on
 * 2 cores made 17 wakes per sleeper, 0.02 syscalls per item). The counts
 * are written only by sleepers, so their lines stay shared in every
 * core's cache. */
static inline uint32_t *slot_sleepers(const struct weft__ring *r, uint64_t pos)
{
	return &r->sleepers[pos & r->sleeper_mask];
}

static inline void *slot_data(uint64_t *stamp)
{
	return (void *)(stamp + 1);
}

/* the futex word: the low half of the 64-bit stamp */
static inline uint32_t *stamp_word(uint64_t *stamp)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return (uint32_t *)(void *)stamp + 1;
#else
	return (uint32_t *)(void *)stamp;
#endif
}

static inline uint64_t pos_next(const struct weft__ring *r, uint64_t pos)
{
	uint64_t idx = pos & (r->one_lap - 1);
	if (idx + 1 < r->cap)
		return pos + 1;
	return (pos & ~(r->one_lap - 1)) + r->one_lap;
}

static inline void copy_elem(void *dst, const void *src, size_t n)
{
	/* gcc, after inlining (LTO) a caller's small destination, warns
	 * about the branches for larger sizes that n rules out at run time:
	 * an empty asm hides where dst points, at no cost */
	__asm__("" : "+r"(dst));
	/* the common sizes inline; memcpy for the rest */
	switch (n) {
	case 0:
		return;
	case 4:
		memcpy(dst, src, 4);
		return;
	case 8:
		memcpy(dst, src, 8);
		return;
	case 16:
		memcpy(dst, src, 16);
		return;
	default:
		memcpy(dst, src, n);
	}
}

int weft__ring_init(struct weft__ring *r, size_t cap, size_t esize)
{
	memset(r, 0, sizeof *r);
	r->cap = cap;
	r->esize = esize;
	r->stride = (sizeof(uint64_t) + esize + 7) & ~(size_t)7;
	r->one_lap = 1;
	while (r->one_lap <= cap)
		r->one_lap <<= 1;
	if (cap == 0)
		return 0;
	if (esize > ((size_t)1 << 40) || r->stride > SIZE_MAX / cap)
		return -ENOMEM;
	size_t bytes = r->stride * cap;
	size_t nsleepers = r->one_lap < WEFT__RING_SLEEPER_BUCKETS ? r->one_lap
								   : WEFT__RING_SLEEPER_BUCKETS;
	r->sleeper_mask = nsleepers - 1;
	r->slots = weft__sys_aligned_alloc(WEFT__CACHELINE,
				 (bytes + WEFT__CACHELINE - 1) & ~(size_t)(WEFT__CACHELINE - 1));
	r->sleepers = weft__sys_calloc(nsleepers, sizeof *r->sleepers);
	if (!r->slots || !r->sleepers) {
		free(r->slots);
		free(r->sleepers);
		r->slots = NULL;
		r->sleepers = NULL;
		return -ENOMEM;
	}
	for (size_t i = 0; i < cap; i++)
		weft__st64_rlx((uint64_t *)(void *)(r->slots + i * r->stride), i);
	return 0;
}

void weft__ring_fini(struct weft__ring *r)
{
	free(r->slots);
	free(r->sleepers);
	r->slots = NULL;
	r->sleepers = NULL;
}

/* Wait until *stamp != seen: someone is mid-operation on this slot. */
static void slot_wait(struct weft__ring *r, uint64_t pos, uint64_t *stamp, uint64_t seen)
{
	uint32_t *sleepers = slot_sleepers(r, pos);
	weft__spin_t s;
	if (weft__spin_start(&s)) {
		do {
			if (weft__ld64_rlx(stamp) != seen) {
				weft__spin_end(&s);
				return;
			}
		} while (weft__spin_again(&s));
	}
	/* RMW, heavy fence, then re-check: Dekker with slot_publish (whose
	 * side is light when asymmetric fences are on, see park.h) */
	weft__faa32(sleepers, 1);
	weft__fence_heavy();
	while (weft__ld64_rlx(stamp) == seen) {
		weft__park_word(stamp_word(stamp), (uint32_t)seen, WEFT_FOREVER);
	}
	weft__faa32(sleepers, (uint32_t)-1);
	weft__spin_slept();
}

/* out of line: keeps the callers' fast paths free of a call.
 * The stamp store slot_publish made may still sit in our store buffer
 * (asymmetric fences: a plain release store). The wake itself makes it
 * visible before the sleeper can look again: FUTEX_WAKE runs a full
 * barrier in the kernel before it looks for sleepers, and a parked task's
 * wake (weft__task_unpark_word) fences before it reads its bucket. Without
 * that a woken sleeper could read the old stamp and sleep for good
 * (tests/models/ring.pml finds the trace when the wake does not drain). */
static __attribute__((noinline, cold)) void slot_wake(uint64_t *stamp)
{
	weft__unpark_word(stamp_word(stamp));
}

/* After publishing the slot at pos (and the store-load fence, see the
 * callers): wake its sleepers, if it has any. */
static inline void slot_wake_sleepers(struct weft__ring *r, uint64_t pos)
{
	if (__builtin_expect(weft__ld32_rlx(slot_sleepers(r, pos)) != 0, 0))
		slot_wake(slot_stamp(r, pos));
}

static inline void slot_publish(struct weft__ring *r, uint64_t pos, uint64_t *stamp,
				uint64_t val)
{
	if (__builtin_expect(weft__asym(), 1)) {
		/* release: the slot contents before the stamp, for the
		 * acquire of the stamp in the next push or pop. The load of
		 * the sleeper count below stays after it in program order only:
		 * the slot sleeper's weft__fence_heavy is the store-load
		 * fence of this Dekker pair */
		weft__st64_rel(stamp, val);
		__asm__ __volatile__("" ::: "memory");
	} else {
		/* xchg: release of the slot contents, and the full barrier
		 * before reading the sleeper count */
		weft__fas64(stamp, val);
	}
	slot_wake_sleepers(r, pos);
}

/* The loops behind the fast paths: contention, full/empty, closed, and
 * slots claimed but not yet published. */
static __attribute__((noinline)) int push_slow(struct weft__ring *r, const void *elem,
					       uint64_t tail)
{
	for (;;) {
		if (tail & WEFT__RING_CLOSED)
			return -EPIPE;
		uint64_t *stamp = slot_stamp(r, tail);
		/* acquire: the previous lap's pop finished reading this slot */
		uint64_t st = weft__ld64_acq(stamp);
		if (st == tail) {
			if (weft__cas64(&r->tail, &tail, pos_next(r, tail))) {
				copy_elem(slot_data(stamp), elem, r->esize);
				slot_publish(r, tail, stamp, tail + 1);
				return 0;
			}
			continue; /* tail reloaded by the failed CAS */
		}
		if (st + r->one_lap == tail + 1) {
			/* the slot still holds last lap's element */
			uint64_t head = weft__ld64_acq(&r->head);
			if (head + r->one_lap == tail)
				return -EAGAIN; /* full */
			/* a pop claimed it and is still reading: wait for it */
			slot_wait(r, tail, stamp, st);
		} else {
			weft__cpu_relax(); /* another push moved tail on */
		}
		tail = weft__ld64_rlx(&r->tail);
	}
}

/* The fast paths: the slot at tail (head) is ready and the CAS won. */
static inline bool push_fast(struct weft__ring *r, const void *elem, uint64_t tail)
{
	uint64_t *stamp = slot_stamp(r, tail);
	/* we will write this slot: fetch its line for writing now, one
	 * transfer instead of a shared fetch and then an upgrade */
	__builtin_prefetch(stamp, 1, 3);
	/* the slot at tail is free (a closed tail, bit 63, never equals a
	 * stamp). acquire: the previous lap's pop finished reading the slot */
	if (__builtin_expect(weft__ld64_acq(stamp) == tail, 1) &&
	    weft__cas64(&r->tail, &tail, pos_next(r, tail))) {
		copy_elem(slot_data(stamp), elem, r->esize);
		slot_publish(r, tail, stamp, tail + 1);
		return true;
	}
	return false;
}

int weft__ring_push(struct weft__ring *r, const void *elem)
{
	uint64_t tail = weft__ld64_rlx(&r->tail);
	if (push_fast(r, elem, tail))
		return 0;
	return push_slow(r, elem, weft__ld64_rlx(&r->tail));
}

int weft__ring_push_quick(struct weft__ring *r, const void *elem)
{
	return push_fast(r, elem, weft__ld64_rlx(&r->tail)) ? 0 : -EAGAIN;
}

static __attribute__((noinline)) int pop_slow(struct weft__ring *r, void *elem, uint64_t head)
{
	for (;;) {
		uint64_t *stamp = slot_stamp(r, head);
		/* acquire: pairs with the push's release store; the element is there */
		uint64_t st = weft__ld64_acq(stamp);
		if (st == head + 1) {
			if (weft__cas64(&r->head, &head, pos_next(r, head))) {
				if (elem)
					copy_elem(elem, slot_data(stamp), r->esize);
				slot_publish(r, head, stamp, head + r->one_lap);
				return 0;
			}
			continue;
		}
		if (st == head) {
			uint64_t tail = weft__ld64_acq(&r->tail);
			if ((tail & ~WEFT__RING_CLOSED) == head)
				return (tail & WEFT__RING_CLOSED) ? -EPIPE : -EAGAIN;
			/* a push claimed it and is still writing: wait for it */
			slot_wait(r, head, stamp, st);
		} else {
			weft__cpu_relax(); /* another pop moved head on */
		}
		head = weft__ld64_rlx(&r->head);
	}
}

static inline bool pop_fast(struct weft__ring *r, void *elem, uint64_t head)
{
	uint64_t *stamp = slot_stamp(r, head);
	/* the slot at head is full. acquire: pairs with the push's release
	 * store; the element is there */
	if (__builtin_expect(weft__ld64_acq(stamp) == head + 1, 1) &&
	    weft__cas64(&r->head, &head, pos_next(r, head))) {
		if (elem)
			copy_elem(elem, slot_data(stamp), r->esize);
		slot_publish(r, head, stamp, head + r->one_lap);
		return true;
	}
	return false;
}

int weft__ring_pop(struct weft__ring *r, void *elem)
{
	uint64_t head = weft__ld64_rlx(&r->head);
	if (pop_fast(r, elem, head))
		return 0;
	return pop_slow(r, elem, weft__ld64_rlx(&r->head));
}

int weft__ring_pop_quick(struct weft__ring *r, void *elem)
{
	return pop_fast(r, elem, weft__ld64_rlx(&r->head)) ? 0 : -EAGAIN;
}

long weft__ring_push_many(struct weft__ring *r, const void *elems, size_t n)
{
	const unsigned char *src = elems;
	uint64_t tail = weft__ld64_rlx(&r->tail);
	for (;;) {
		if (tail & WEFT__RING_CLOSED)
			return -EPIPE;
		/* count free slots from tail: free stays free until claimed,
		 * and claiming needs our CAS on tail to succeed */
		uint64_t end = tail;
		size_t k = 0;
		while (k < n && weft__ld64_acq(slot_stamp(r, end)) == end) {
			end = pos_next(r, end);
			k++;
		}
		if (k == 0) {
			uint64_t *stamp = slot_stamp(r, tail);
			uint64_t st = weft__ld64_acq(stamp);
			if (st + r->one_lap == tail + 1) {
				uint64_t head = weft__ld64_acq(&r->head);
				if (head + r->one_lap == tail)
					return -EAGAIN;
				slot_wait(r, tail, stamp, st);
			} else if (st != tail) {
				weft__cpu_relax();
			}
			tail = weft__ld64_rlx(&r->tail);
			continue;
		}
		if (!weft__cas64(&r->tail, &tail, end))
			continue;
		uint64_t pos = tail;
		for (size_t i = 0; i < k; i++, pos = pos_next(r, pos)) {
			uint64_t *stamp = slot_stamp(r, pos);
			/* src is NULL for a signal-only channel (elem_size 0,
			 * allowed): no arithmetic on it (fuzz_chan: send_many
			 * of NULL elements was UB, "zero offset to null
			 * pointer"), as pop_many below */
			if (src)
				copy_elem(slot_data(stamp), src + i * r->esize, r->esize);
			/* release: element before stamp, for the pop that
			 * acquires it */
			weft__st64_rel(stamp, pos + 1);
		}
		/* store-load before the slot sleepers' counts: one full
		 * barrier for the batch, or none with asymmetric fences */
		if (!weft__asym())
			weft__fence_sc();
		else
			__asm__ __volatile__("" ::: "memory");
		for (size_t i = 0; i < k; i++, tail = pos_next(r, tail))
			slot_wake_sleepers(r, tail);
		return (long)k;
	}
}

long weft__ring_pop_many(struct weft__ring *r, void *elems, size_t n)
{
	unsigned char *dst = elems;
	uint64_t head = weft__ld64_rlx(&r->head);
	for (;;) {
		uint64_t end = head;
		size_t k = 0;
		/* full stays full until popped, which needs our CAS on head */
		while (k < n && weft__ld64_acq(slot_stamp(r, end)) == end + 1) {
			end = pos_next(r, end);
			k++;
		}
		if (k == 0) {
			uint64_t *stamp = slot_stamp(r, head);
			uint64_t st = weft__ld64_acq(stamp);
			if (st == head) {
				uint64_t tail = weft__ld64_acq(&r->tail);
				if ((tail & ~WEFT__RING_CLOSED) == head)
					return (tail & WEFT__RING_CLOSED) ? -EPIPE : -EAGAIN;
				slot_wait(r, head, stamp, st);
			} else if (st != head + 1) {
				weft__cpu_relax();
			}
			head = weft__ld64_rlx(&r->head);
			continue;
		}
		if (!weft__cas64(&r->head, &head, end))
			continue;
		uint64_t pos = head;
		for (size_t i = 0; i < k; i++, pos = pos_next(r, pos)) {
			uint64_t *stamp = slot_stamp(r, pos);
			if (dst)
				copy_elem(dst + i * r->esize, slot_data(stamp), r->esize);
			/* release: our read before a push reuses the slot */
			weft__st64_rel(stamp, pos + r->one_lap);
		}
		/* as push_many */
		if (!weft__asym())
			weft__fence_sc();
		else
			__asm__ __volatile__("" ::: "memory");
		for (size_t i = 0; i < k; i++, head = pos_next(r, head))
			slot_wake_sleepers(r, head);
		return (long)k;
	}
}

int weft__ring_close(struct weft__ring *r)
{
	/* RMW: linearizes close against every push's CAS on tail */
	uint64_t old = weft__or64(&r->tail, WEFT__RING_CLOSED);
	return (old & WEFT__RING_CLOSED) ? -EPIPE : 0;
}

bool weft__ring_is_closed(const struct weft__ring *r)
{
	return (weft__ld64_acq(&r->tail) & WEFT__RING_CLOSED) != 0;
}

size_t weft__ring_len(const struct weft__ring *r)
{
	if (r->cap == 0)
		return 0;
	for (;;) {
		uint64_t tail = weft__ld64_acq(&r->tail) & ~WEFT__RING_CLOSED;
		uint64_t head = weft__ld64_acq(&r->head);
		/* a consistent pair: tail unchanged around the head read */
		if ((weft__ld64_acq(&r->tail) & ~WEFT__RING_CLOSED) != tail)
			continue;
		uint64_t hix = head & (r->one_lap - 1), tix = tail & (r->one_lap - 1);
		if (hix < tix)
			return (size_t)(tix - hix);
		if (hix > tix)
			return (size_t)(r->cap - hix + tix);
		return tail == head ? 0 : r->cap;
	}
}

bool weft__ring_can_pop(const struct weft__ring *r)
{
	uint64_t tail = weft__ld64_acq(&r->tail);
	return (tail & WEFT__RING_CLOSED) || tail != weft__ld64_acq(&r->head);
}

bool weft__ring_can_push(const struct weft__ring *r)
{
	uint64_t tail = weft__ld64_acq(&r->tail);
	return (tail & WEFT__RING_CLOSED) || weft__ld64_acq(&r->head) + r->one_lap != tail;
}

void weft__ring_positions(const struct weft__ring *r, uint64_t pos[2])
{
	pos[0] = weft__ld64_acq(&r->tail);
	pos[1] = weft__ld64_acq(&r->head);
}

bool weft__ring_ready_at(const struct weft__ring *r, const uint64_t pos[2], bool pop)
{
	if (pos[0] & WEFT__RING_CLOSED)
		return true;
	return pop ? pos[0] != pos[1] : pos[1] + r->one_lap != pos[0];
}

bool weft__ring_pop_ready(const struct weft__ring *r)
{
	/* one line to poll: the slot at head (the consumers' own head line
	 * stays put); closed is noticed by weft__ring_can_pop */
	uint64_t head = weft__ld64_rlx(&r->head);
	return weft__ld64_rlx(slot_stamp(r, head)) == head + 1;
}

bool weft__ring_push_ready(const struct weft__ring *r)
{
	uint64_t tail = weft__ld64_rlx(&r->tail);
	return weft__ld64_rlx(slot_stamp(r, tail)) == tail;
}
