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
	/* unbuffered: the rendezvous word (chan.c): nobody waits, one
	 * waiter alone (its node), or the queues are in use */
	uint64_t rv;
	size_t elem_size;
	size_t cap;
	/* nonzero: weft_chan_send may try the ring's quick path first (a
	 * buffered channel whose policy is not SPILL: a spilling channel
	 * must not let a send overtake what is on disk) */
	size_t quick_send;
	/* nonzero: buffered under BLOCK (weft__chan_try's one test) */
	size_t plain_buffered;
	/* overflow policy state (chan_overflow.c); NULL under BLOCK */
	struct weft__overflow *ov;
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

/* Unbuffered, with ch->lock held (weft__chan_lock): -EPIPE if closed; 0 with *peer set if a
 * waiting partner (not of self) was won, to be completed with
 * weft__chan_handoff after the lock is dropped; else -EAGAIN. */
int weft__chan_match_locked(weft_chan_t *ch, int op, const weft__waiter_t *self,
			    weft__wnode_t **peer);
void weft__chan_handoff(weft_chan_t *ch, int op, void *elem, weft__wnode_t *peer);

static inline weft__waitq_t *weft__chan_queue(weft_chan_t *ch, int op)
{
	return op == WEFT_SEND ? &ch->sendq : &ch->recvq;
}

/* Take / drop ch->lock. On an unbuffered channel, taking it also moves a
 * waiter that waits alone in the rendezvous word into its queue, so that
 * under the lock the queues hold every waiter; dropping it hands the word
 * back to lock-free use once both queues are empty. */
void weft__chan_rv_queue(weft_chan_t *ch);
void weft__chan_rv_unqueue(weft_chan_t *ch);

/* inline: a buffered channel's notify takes the lock on the hot side */
static inline void weft__chan_lock(weft_chan_t *ch)
{
	weft__mutex_lock(&ch->lock);
	if (ch->cap == 0)
		weft__chan_rv_queue(ch);
}

static inline void weft__chan_unlock(weft_chan_t *ch)
{
	if (ch->cap == 0)
		weft__chan_rv_unqueue(ch);
	weft__mutex_unlock(&ch->lock);
}

/* Register n on op's queue / remove it if still there (takes the lock;
 * for unbuffered channels select registers under its own held locks). */
void weft__chan_register(weft_chan_t *ch, int op, weft__wnode_t *n);
void weft__chan_unregister(weft_chan_t *ch, int op, weft__wnode_t *n);

/* Notify up to k waiters of q (after making room or adding elements). */
void weft__chan_notify(weft_chan_t *ch, weft__waitq_t *q, size_t k);

/* ---- overflow policies (chan_overflow.c, spill.c) ---- */

/* Set up ch's policy from opts (ch created, ring ready): 0 or -errno. */
int weft__ov_init(weft_chan_t *ch, const weft_chan_opts_t *opts);
void weft__ov_free(struct weft__overflow *ov);
/* One attempt under the policy, never waiting for room: 0, -EAGAIN
 * (empty; SPILL at its limit), -EPIPE, -ENOBUFS (DROP_NEWEST), or a disk
 * error (SPILL). Waiters on the other side are notified. */
int weft__ov_try(weft_chan_t *ch, int op, void *elem);
/* After the first element of a bulk call: as many more as go now, in
 * order (a DROP_NEWEST refusal ends the batch uncounted: those elements
 * were not sent and stay the caller's). Returns how many. */
size_t weft__ov_more(weft_chan_t *ch, int op, unsigned char *elems, size_t n);
/* Could op proceed now (a hint, as weft__chan_ready)? */
bool weft__ov_ready(weft_chan_t *ch, int op);
int weft__ov_close(weft_chan_t *ch);
size_t weft__ov_len(const weft_chan_t *ch);
void weft__ov_stats(const weft_chan_t *ch, weft_chan_stats_t *out);

/* A receive bounded by both an absolute deadline and a context (either
 * may be WEFT_FOREVER / never done): 0, -EPIPE, -ETIMEDOUT (the deadline),
 * or ctx's error. For compositions that retire idle workers. */
int weft__chan_recv_until_ctx(weft_chan_t *ch, void *elem, int64_t deadline, weft_ctx_t *ctx);

#endif
