/* lib/internal/ring.h: the lock-free bounded MPMC slot ring under buffered
 * channels (Vyukov's bounded queue with crossbeam's lap encoding, so any
 * capacity works, not only powers of two).
 *
 * Positions (head, tail) are lap | index with one_lap the next power of two
 * above cap: stepping past the last index jumps to the next lap, so no
 * division on the hot path. Each slot carries a stamp: stamp == pos means
 * free for the push at pos; stamp == pos + 1 means full for the pop at pos.
 * Bit 63 of tail marks the ring closed.
 *
 * A push or pop claims its position with one CAS on tail or head (padded on
 * their own lines; a full barrier, so the caller may then read waiter
 * counts: Dekker, see park.h), copies the element, and publishes the slot
 * with a release store on its stamp: one atomic RMW per operation. A thread
 * that finds the slot it needs claimed but not yet published (its owner was
 * preempted mid-operation) waits for that slot: a short spin, then a futex
 * on the stamp; the publisher wakes slot sleepers only when that slot has
 * some (a count per slot, so a sleeper costs nobody else a syscall)
 * (the store-load fence of that pair is on the sleeper's side, through
 * membarrier(2): see park.h, asymmetric fences; without membarrier the
 * publish is an xchg). So no thread spins unboundedly on another.
 *
 * Try semantics are linearizable: -EAGAIN means empty (head == tail) or
 * full (tail == head + one lap) at one instant, never "busy".
 */
#ifndef WEFT_INTERNAL_RING_H
#define WEFT_INTERNAL_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal/atomic.h"

#define WEFT__RING_CLOSED ((uint64_t)1 << 63)
/* sleeper counts per ring at most (slots this far apart share one) */
#define WEFT__RING_SLEEPER_BUCKETS 1024

struct weft__ring {
	/* read-only after init */
	unsigned char *slots;
	size_t cap;
	size_t esize;
	size_t stride;
	uint64_t one_lap;
	uint32_t *sleepers;    /* per slot: threads asleep on its stamp */
	uint64_t sleeper_mask; /* slot index -> sleepers[] */
	WEFT__ALIGNED uint64_t tail; /* producers' line */
	WEFT__ALIGNED uint64_t head; /* consumers' line */
	WEFT__ALIGNED char end_pad_[1];
};

/* cap 0 is allowed (no slots: only the closed mark is used). */
int weft__ring_init(struct weft__ring *r, size_t cap, size_t esize);
void weft__ring_fini(struct weft__ring *r);

/* 0 | -EAGAIN (full) | -EPIPE (closed) */
int weft__ring_push(struct weft__ring *r, const void *elem);
/* 0 | -EAGAIN (empty) | -EPIPE (closed and empty) */
int weft__ring_pop(struct weft__ring *r, void *elem);
/* The fast path alone, for a caller that blocks when it fails and then
 * tries again with push/pop: 0, or -EAGAIN when the next slot is not ready
 * or another thread won it (the ring may be full/empty, contended or
 * closed: not decided). It never reads the other side's line (tail for a
 * pop, head for a push), which a failed push/pop does to decide "full" or
 * "empty": that line would then have to be taken back from us by the other
 * side's next claim, a transfer on its critical path. */
int weft__ring_push_quick(struct weft__ring *r, const void *elem);
int weft__ring_pop_quick(struct weft__ring *r, void *elem);
/* Up to n at once; returns how many (>= 1), or -EAGAIN / -EPIPE. */
long weft__ring_push_many(struct weft__ring *r, const void *elems, size_t n);
long weft__ring_pop_many(struct weft__ring *r, void *elems, size_t n);

/* Set the closed mark: 0, or -EPIPE if it was set. */
int weft__ring_close(struct weft__ring *r);
bool weft__ring_is_closed(const struct weft__ring *r);
size_t weft__ring_len(const struct weft__ring *r);
/* hints for spinning and select re-checks (one instant, may change) */
bool weft__ring_can_pop(const struct weft__ring *r);  /* non-empty or closed */
bool weft__ring_can_push(const struct weft__ring *r); /* not full or closed */
/* tail (with the closed mark) and head, each an acquire load: together
 * they only grow, and any push, pop or close changes one of them, so a
 * caller that reads them before and after a failed try and finds them
 * equal knows the ring stayed empty (or full) in between */
void weft__ring_positions(const struct weft__ring *r, uint64_t pos[2]);
/* Could a pop (pop true) or push proceed in the state pos describes
 * (non-empty / not full, or closed)? */
bool weft__ring_ready_at(const struct weft__ring *r, const uint64_t pos[2], bool pop);
/* cheaper polls for spinning: the next slot is ready (touches one line) */
bool weft__ring_pop_ready(const struct weft__ring *r);
bool weft__ring_push_ready(const struct weft__ring *r);

#endif
