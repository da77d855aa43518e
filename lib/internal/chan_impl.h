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

/* Could op proceed now (or is the channel closed)? A hint for re-checks
 * after registering. mine: the caller's registered node on this channel
 * (NULL if none). On an unbuffered channel only partners with an earlier
 * ticket (node seq) count: when two selects register against each other
 * at once, on one channel or across several, the later one acts (backs
 * off and claims the earlier) while the earlier keeps waiting, so they
 * never both back off and retry forever. Plain blocking calls register
 * with seq 0 (they matched under the lock already and never re-check). */
bool weft__chan_ready(weft_chan_t *ch, int op, const weft__wnode_t *mine);

static inline weft__waitq_t *weft__chan_queue(weft_chan_t *ch, int op)
{
	return op == WEFT_SEND ? &ch->sendq : &ch->recvq;
}

/* A fresh select ticket: later registrations get larger tickets. */
uint64_t weft__chan_ticket(void);

/* Register n on op's queue / remove it if still there (takes the lock). */
void weft__chan_register(weft_chan_t *ch, int op, weft__wnode_t *n);
void weft__chan_unregister(weft_chan_t *ch, int op, weft__wnode_t *n);

/* Notify up to k waiters of q (after making room or adding elements). */
void weft__chan_notify(weft_chan_t *ch, weft__waitq_t *q, size_t k);

#endif
