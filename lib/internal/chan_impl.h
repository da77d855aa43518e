/* lib/internal/chan_impl.h: the channel object, shared by chan.c and
 * select.c. Nothing outside those two files looks inside a channel. */
#ifndef WEFT_INTERNAL_CHAN_IMPL_H
#define WEFT_INTERNAL_CHAN_IMPL_H

#include <stdbool.h>

#include "internal/park.h"
#include "internal/ring.h"
#include <weft/chan.h>

struct weft_chan {
	/* the ring: slots, tail (with the closed mark) and head lines */
	struct weft__ring ring;
	/* slow path: waiter queues (counts read lock-free by publishers)
	 * and the lock guarding both lists */
	WEFT__ALIGNED weft__waitq_t recvq;
	weft__waitq_t sendq;
	weft__mutex_t lock;
	size_t elem_size;
	size_t cap;
};

/* One attempt, never sleeping: 0 | -EAGAIN | -EPIPE. self: the calling
 * select's waiter, never matched (NULL for plain calls). On success the
 * waiters on the other side have been notified. */
int weft__chan_try(weft_chan_t *ch, int op, void *elem, const weft__waiter_t *self);

/* Could op proceed now (or is the channel closed)? A lock-free hint for
 * spinning and for re-checks of buffered cases after registering. */
bool weft__chan_ready(weft_chan_t *ch, int op);

/* Two words that only grow and that change whenever op on ch may have
 * become possible: a buffered channel's ring positions (tail with the
 * closed mark, head); an unbuffered one's closed mark and the number of
 * partners that ever registered on the other side. Equal before and after
 * a failed try: op was impossible for that whole time (select_try's
 * linearizable -EAGAIN). Acquire loads. */
void weft__chan_version(weft_chan_t *ch, int op, uint64_t v[2]);
/* Right after weft__chan_version: could op proceed in the state v
 * describes? Buffered: decided from v alone. Unbuffered: closed, or a live
 * partner is queued (looked at under the lock, so entries of partners that
 * already left do not count). A false answer held at one instant after
 * v was read. */
bool weft__chan_ready_at(weft_chan_t *ch, int op, const uint64_t v[2]);

/* Unbuffered, with ch->lock held: -EPIPE if closed; 0 with *peer set if a
 * waiting partner (not of self) was won, to be completed with
 * weft__chan_handoff after the lock is dropped; else -EAGAIN. */
int weft__chan_match_locked(weft_chan_t *ch, int op, const weft__waiter_t *self,
			    weft__wnode_t **peer);
void weft__chan_handoff(weft_chan_t *ch, int op, void *elem, weft__wnode_t *peer);

static inline weft__waitq_t *weft__chan_queue(weft_chan_t *ch, int op)
{
	return op == WEFT_SEND ? &ch->sendq : &ch->recvq;
}

/* Register n on op's queue / remove it if still there (takes the lock;
 * for unbuffered channels select registers under its own held locks). */
void weft__chan_register(weft_chan_t *ch, int op, weft__wnode_t *n);
void weft__chan_unregister(weft_chan_t *ch, int op, weft__wnode_t *n);

/* Notify up to k waiters of q (after making room or adding elements). */
void weft__chan_notify(weft_chan_t *ch, weft__waitq_t *q, size_t k);

#endif
