/* lib/chan.c: channels. Buffered channels are the lock-free ring
 * (internal/ring.c) plus two waiter queues; unbuffered channels are the two
 * waiter queues alone, matched under the channel lock (a rendezvous).
 *
 * Ordering:
 * - Buffered, fast path: the ring's CAS on tail (or head) claims a slot
 *   (a full barrier) and a release store publishes it; then the publisher
 *   loads the other side's waiter count, lock-free, and only if it is
 *   nonzero takes the lock and notifies one waiter. A waiter registers
 *   (RMW on the count, under the lock), fences (weft__fence_rmw_load), and
 *   re-tries the ring before sleeping; the ring decides "empty" on tail and
 *   "full" on head, so the re-try sees any claim made before the
 *   publisher's count load. Dekker on (claim, count): one of the two sees
 *   the other. (A claimed slot not yet published is waited for inside the
 *   ring, see ring.c.)
 * - A waiter that leaves holding a notification it will not use (its
 *   re-check succeeded, or it timed out) passes the notification on, so no
 *   element is stranded with a sleeper beside it.
 * - Unbuffered, one waiter at a time (the common case: a pipeline stage,
 *   a ping-pong): the rendezvous word ch->rv holds the waiter's node. A
 *   waiter without deadline or context publishes its node with one CAS
 *   (EMPTY -> node) and a partner takes it with one CAS (node -> EMPTY):
 *   the CAS decides the match, no lock is taken, and the taker alone ends
 *   the wait (weft__waiter_finish_alone: for a parked task, a plain store
 *   and a ready). Both CASes are on the one word, so a sender and a
 *   receiver can never both publish and miss each other. A task publishes
 *   only once its context is saved (weft__task_park_publish).
 * - Unbuffered, everything else (a second waiter on the same side, a
 *   deadline, a context, a select): under the lock. Taking the lock
 *   turns the word to QUEUED (moving a lone waiter into its queue), so
 *   lock-free parties keep out while the queues hold anyone; the last
 *   unlock that leaves both queues empty turns it back to EMPTY. Matching
 *   and registering happen under the lock; the element is copied by
 *   whoever finds the waiting peer, after winning the peer (CLAIMED), and
 *   released to it by the final DONE store.
 * - Close sets the mark in the ring's tail (an RMW that linearizes against
 *   every push) and then notifies everyone under the lock: a waiter either
 *   registered before (notified) or re-checks after (sees the mark). On an
 *   unbuffered channel it also swaps the word to CLOSED, notifying a lone
 *   waiter; a publish CAS from EMPTY then fails for good.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal/chan_impl.h"
#include "internal/clock.h"
#include "internal/ctx_impl.h"
#include "internal/sched.h"
#include "internal/sys.h"
#include <weft/chan.h>

/* ---- create / destroy / introspection ---- */

int weft_chan_create(weft_chan_t **out, size_t elem_size, size_t capacity)
{
	if (!out)
		return -EINVAL;
	if (capacity > WEFT_CHAN_MAX_CAPACITY || elem_size > ((size_t)1 << 40))
		return -ENOMEM;
	size_t size = (sizeof(weft_chan_t) + WEFT__PAD - 1) & ~(size_t)(WEFT__PAD - 1);
	weft_chan_t *ch = weft__sys_aligned_alloc(WEFT__PAD, size);
	if (!ch)
		return -ENOMEM;
	memset(ch, 0, sizeof *ch);
	int rc = weft__ring_init(&ch->ring, capacity, elem_size);
	if (rc) {
		free(ch);
		return rc;
	}
	ch->elem_size = elem_size;
	ch->cap = capacity;
	ch->quick_send = capacity;
	ch->plain_buffered = capacity;
	*out = ch;
	return 0;
}

int weft_chan_create_opts(weft_chan_t **out, const weft_chan_opts_t *opts)
{
	if (!out || !opts)
		return -EINVAL;
	if (opts->overflow == WEFT_OVERFLOW_BLOCK)
		return weft_chan_create(out, opts->elem_size, opts->capacity);
	if (opts->overflow < WEFT_OVERFLOW_BLOCK || opts->overflow > WEFT_OVERFLOW_SPILL ||
	    opts->capacity == 0 || (opts->overflow == WEFT_OVERFLOW_SPILL && opts->elem_size == 0))
		return -EINVAL;
	weft_chan_t *ch;
	int rc = weft_chan_create(&ch, opts->elem_size, opts->capacity);
	if (rc)
		return rc;
	rc = weft__ov_init(ch, opts);
	if (rc) {
		weft_chan_destroy(ch);
		return rc;
	}
	*out = ch;
	return 0;
}

void weft_chan_destroy(weft_chan_t *ch)
{
	if (!ch)
		return;
	weft__ov_free(ch->ov);
	weft__ring_fini(&ch->ring);
	free(ch);
}

size_t weft_chan_len(const weft_chan_t *ch)
{
	if (ch && ch->ov)
		return weft__ov_len(ch);
	return ch ? weft__ring_len(&ch->ring) : 0;
}

size_t weft_chan_cap(const weft_chan_t *ch)
{
	return ch ? ch->cap : 0;
}

size_t weft_chan_elem_size(const weft_chan_t *ch)
{
	return ch ? ch->elem_size : 0;
}

int weft_chan_is_closed(const weft_chan_t *ch)
{
	return ch ? weft__ring_is_closed(&ch->ring) : 0;
}

/* ---- the rendezvous word (unbuffered) ----
 *
 * ch->rv: bits 63..48 count the lone waiters ever published (a version
 * for select_try, see weft__chan_version); below them either a lone
 * waiter's node (8-aligned, under 2^48: a user-space stack address) with
 * its side in bit 0, or no node and one of EMPTY (nobody waits), QUEUED
 * (the lock and the queues decide) and CLOSED. Lock-free parties CAS it
 * from EMPTY (publish) and from a node (take); only holders of the lock
 * change QUEUED, and CLOSED is final. */
#define RV_SEND 1u /* with a node: the lone waiter sends */
#define RV_QUEUED 2u
#define RV_CLOSED 4u
#define RV_SEQ_SHIFT 48
#define RV_SEQ_MASK (~(uint64_t)0 << RV_SEQ_SHIFT)
#define RV_NODE_MASK (~RV_SEQ_MASK & ~(uint64_t)7)

static inline weft__wnode_t *rv_node(uint64_t v)
{
	return (weft__wnode_t *)(uintptr_t)(v & RV_NODE_MASK);
}

static inline int rv_side(uint64_t v)
{
	return (v & RV_SEND) ? WEFT_SEND : WEFT_RECV;
}

static inline bool rv_empty(uint64_t v)
{
	return (v & ~RV_SEQ_MASK) == 0;
}

/* Lock held: a lone waiter joins its queue, the word says QUEUED. The
 * waiter is counted in its queue before the CAS takes it out of the word:
 * a try that reads QUEUED, then the count, must not find 0 while the
 * waiter is between the two (rv.pml, COUNT_LATE: try_send and select_try
 * answered "nobody there" to a receiver waiting all along). */
void weft__chan_rv_queue(weft_chan_t *ch)
{
	/* acquire: a lone waiter's node fields, written before its publish */
	uint64_t v = weft__ld64_acq(&ch->rv);
	while (!(v & (RV_QUEUED | RV_CLOSED))) {
		weft__wnode_t *n = rv_node(v);
		weft__waitq_t *q = n ? weft__chan_queue(ch, rv_side(v)) : NULL;
		if (n)
			weft__waitq_count_add(q, 1);
		/* full RMW (release: the count before QUEUED): against a lone
		 * waiter's publish and a taker's CAS */
		if (weft__cas64(&ch->rv, &v, (v & RV_SEQ_MASK) | RV_QUEUED)) {
			if (n)
				weft__waitq_push_counted(q, n);
			return;
		}
		if (n)
			weft__waitq_count_add(q, -1); /* taken meanwhile: not ours */
	}
}

/* Lock held: both queues empty, the word goes back to lock-free use. */
void weft__chan_rv_unqueue(weft_chan_t *ch)
{
	/* relaxed: QUEUED changes only under the lock we hold */
	uint64_t v = weft__ld64_rlx(&ch->rv);
	if ((v & ~RV_SEQ_MASK) == RV_QUEUED && !ch->recvq.head && !ch->sendq.head)
		/* release: the queues' last changes before lock-free parties
		 * may use the word again */
		weft__st64_rel(&ch->rv, v & RV_SEQ_MASK);
}

/* Lock held, closing: the word becomes CLOSED for good; a lone waiter
 * is notified (it retries and sees the close). */
static void rv_close(weft_chan_t *ch)
{
	uint64_t v = weft__ld64_acq(&ch->rv);
	/* full RMW: against publishes and takes; acquire for the node */
	while (!weft__cas64(&ch->rv, &v, (v & RV_SEQ_MASK) | RV_CLOSED))
		;
	weft__wnode_t *n = rv_node(v);
	if (n)
		weft__waiter_finish_alone(n->w, WEFT__W_NOTIFY | n->index);
}


/* ---- waiter plumbing shared with select.c ---- */

void weft__chan_register(weft_chan_t *ch, int op, weft__wnode_t *n)
{
	weft__chan_lock(ch);
	weft__waitq_push(weft__chan_queue(ch, op), n);
	weft__chan_unlock(ch);
}

void weft__chan_unregister(weft_chan_t *ch, int op, weft__wnode_t *n)
{
	weft__chan_lock(ch);
	weft__waitq_unlink(weft__chan_queue(ch, op), n);
	weft__chan_unlock(ch);
}

void weft__chan_notify(weft_chan_t *ch, weft__waitq_t *q, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		uint32_t notified, old;
		weft__chan_lock(ch);
		weft__waiter_t *w = weft__waitq_notify_one(q, &notified, &old);
		weft__chan_unlock(ch);
		if (w)
			weft__waiter_wake(w, old);
		if (!notified || weft__waitq_count(q) == 0)
			return;
	}
}

/* after making k elements (or k free slots) available to the other side */
static inline void notify_other(weft_chan_t *ch, int op, size_t k)
{
	weft__waitq_t *q = op == WEFT_SEND ? &ch->recvq : &ch->sendq;
	/* the ring's CAS claiming the slot was the full barrier: this load
	 * pairs with the waiter's registration RMW */
	if (__builtin_expect(weft__waitq_count(q) != 0, 0))
		weft__chan_notify(ch, q, k);
}

/* ---- unbuffered handoff ---- */

static inline void handoff_copy(weft_chan_t *ch, int op, void *elem, weft__wnode_t *peer)
{
	if (ch->elem_size) {
		if (op == WEFT_SEND) {
			if (peer->elem)
				memcpy(peer->elem, elem, ch->elem_size);
		} else if (elem) {
			memcpy(elem, peer->elem, ch->elem_size);
		}
	}
}

/* Copy between the caller and a peer won with weft__waitq_claim, then
 * release the peer. */
void weft__chan_handoff(weft_chan_t *ch, int op, void *elem, weft__wnode_t *peer)
{
	handoff_copy(ch, op, elem, peer);
	weft__waiter_finish(peer->w, WEFT__W_DONE | peer->index);
}

/* Take a lone waiter of the other side out of the word and complete the
 * hand-off: 0; -EAGAIN if nobody waits there; -EPIPE if closed; 1 if the
 * queues are in use: the caller decides under the lock. */
static int rv_take(weft_chan_t *ch, int op, void *elem)
{
	/* acquire: the lone waiter's node fields, written before it
	 * published them */
	uint64_t v = weft__ld64_acq(&ch->rv);
	for (;;) {
		weft__wnode_t *n = rv_node(v);
		if (!n)
			return rv_empty(v) ? -EAGAIN : (v & RV_CLOSED) ? -EPIPE : 1;
		if (rv_side(v) == op)
			return -EAGAIN; /* one of ours waits: nobody to meet */
		/* full RMW: the match; whoever wins the node alone ends its
		 * wait (it has no deadline or context) */
		if (weft__cas64(&ch->rv, &v, v & RV_SEQ_MASK)) {
			handoff_copy(ch, op, elem, n);
			weft__waiter_finish_alone(n->w, WEFT__W_DONE | n->index);
			return 0;
		}
	}
}

struct rv_publish {
	weft_chan_t *ch;
	uint64_t empty; /* the word as read: EMPTY */
	uint64_t mine;  /* our node, our side, the next count */
};

static bool rv_publish(void *p)
{
	struct rv_publish *a = p;
	/* full RMW (release): the node and its waiter before the word shows
	 * them; fails if anything happened since the word was read */
	return weft__cas64(&a->ch->rv, &a->empty, a->mine);
}

enum { RV_DONE, RV_RETRY, RV_LOCK };

/* Wait alone in the word, without deadline or context: RV_DONE (a peer
 * completed the hand-off), RV_RETRY (the word moved before we were in it,
 * or a close notified us: try again), RV_LOCK (someone waits on our side
 * already, or the queues are in use: wait under the lock). node: the
 * caller's, with a fresh waiter; unless RV_DONE or a notification ended
 * it, the waiter is left WAITING and unpublished, for the locked path. */
static int rv_wait_alone(weft_chan_t *ch, int op, weft__wnode_t *node)
{
	weft__waiter_t *w = node->w;
	/* relaxed: the publish CAS decides; this only picks the path */
	uint64_t v = weft__ld64_rlx(&ch->rv);
	if (!rv_empty(v) || ((uintptr_t)node & ~RV_NODE_MASK))
		return RV_LOCK;
	struct rv_publish p = {ch, v,
			       ((v & RV_SEQ_MASK) + ((uint64_t)1 << RV_SEQ_SHIFT)) |
				       (uint64_t)(uintptr_t)node | (op == WEFT_SEND ? RV_SEND : 0)};
	uint32_t st;
	if (weft__task_self()) {
		if (!weft__task_park_publish(w, rv_publish, &p))
			return RV_RETRY;
		/* acquire: pairs with the taker's release of the final state */
		st = weft__ld32_acq(&w->state);
	} else {
		if (!rv_publish(&p))
			return RV_RETRY;
		/* spin on our own state: the peer completes the handoff while
		 * we are still awake */
		st = weft__waiter_wait(w, WEFT_FOREVER, true);
	}
	return WEFT__W_KIND(st) == WEFT__W_DONE ? RV_DONE : RV_RETRY;
}

int weft__chan_match_locked(weft_chan_t *ch, int op, const weft__waiter_t *self,
			    weft__wnode_t **peer)
{
	if (weft__ring_is_closed(&ch->ring))
		return -EPIPE;
	*peer = weft__waitq_claim(op == WEFT_SEND ? &ch->recvq : &ch->sendq, self);
	return *peer ? 0 : -EAGAIN;
}

static int try_unbuffered(weft_chan_t *ch, int op, void *elem, const weft__waiter_t *self)
{
	weft__wnode_t *peer;
	if (weft__ring_is_closed(&ch->ring))
		return -EPIPE;
	/* a lone waiter is never a select's (self): selects queue */
	int rc = rv_take(ch, op, elem);
	if (rc <= 0)
		return rc;
	if (weft__waitq_count(op == WEFT_SEND ? &ch->recvq : &ch->sendq) == 0)
		return -EAGAIN; /* nobody there at this instant */
	weft__chan_lock(ch);
	rc = weft__chan_match_locked(ch, op, self, &peer);
	weft__chan_unlock(ch);
	if (rc == 0)
		weft__chan_handoff(ch, op, elem, peer);
	return rc;
}

int weft__chan_try(weft_chan_t *ch, int op, void *elem, const weft__waiter_t *self)
{
	int rc;
	/* one test for both: unbuffered, or an overflow policy */
	if (ch->plain_buffered == 0)
		return ch->cap == 0 ? try_unbuffered(ch, op, elem, self) : weft__ov_try(ch, op, elem);
	if (op == WEFT_SEND)
		rc = weft__ring_push(&ch->ring, elem);
	else
		rc = weft__ring_pop(&ch->ring, elem);
	if (rc == 0)
		notify_other(ch, op, 1);
	return rc;
}

bool weft__chan_ready(weft_chan_t *ch, int op)
{
	if (ch->ov)
		return weft__ov_ready(ch, op);
	if (ch->cap) {
		return op == WEFT_RECV ? weft__ring_can_pop(&ch->ring)
				       : weft__ring_can_push(&ch->ring);
	}
	/* acquire: as the queue counts below */
	uint64_t rv = weft__ld64_acq(&ch->rv);
	if (rv_node(rv))
		return rv_side(rv) != op;
	return weft__ring_is_closed(&ch->ring) ||
	       weft__waitq_count(op == WEFT_SEND ? &ch->recvq : &ch->sendq) != 0;
}

void weft__chan_version(weft_chan_t *ch, int op, uint64_t v[2])
{
	if (ch->cap) {
		weft__ring_positions(&ch->ring, v);
		return;
	}
	/* a partner becomes available by registering (regs grows before
	 * count, which try_unbuffered reads), by waiting alone in the word
	 * (its count grows), or the channel closes */
	v[0] = weft__ring_is_closed(&ch->ring);
	v[1] = weft__waitq_regs(op == WEFT_SEND ? &ch->recvq : &ch->sendq) |
	       (weft__ld64_acq(&ch->rv) >> RV_SEQ_SHIFT) << 32;
}

bool weft__chan_ready_at(weft_chan_t *ch, int op, const uint64_t v[2])
{
	if (ch->ov) {
		if (weft__ov_ready(ch, op))
			return true;
		/* a send under a policy is decided by the policy alone: a
		 * SPILL channel at spill_max_bytes with room in its ring
		 * cannot take a send (it must not overtake the spill), and
		 * the ring's "not full" made poll_pass retry forever
		 * (fuzz_select: select_try hung on such a SEND case) */
		if (op == WEFT_SEND)
			return false;
	}
	if (ch->cap)
		return weft__ring_ready_at(&ch->ring, v, op == WEFT_RECV);
	if (v[0])
		return true;
	/* acquire: the queue count after it */
	uint64_t rv = weft__ld64_acq(&ch->rv);
	if (rv_node(rv))
		return rv_side(rv) != op; /* a lone waiter: live until taken */
	if (rv_empty(rv))
		return false; /* nobody waits at all */
	weft__waitq_t *q = op == WEFT_SEND ? &ch->recvq : &ch->sendq;
	if (weft__waitq_count(q) == 0)
		return false;
	weft__chan_lock(ch);
	bool live = weft__waitq_has_peer(q);
	weft__chan_unlock(ch);
	return live;
}

/* ---- blocking ---- */

/* One attempt: a single element (n == 0) or a batch of up to n.
 * Returns 1 / the batch size on success, or -EAGAIN / -EPIPE. */
static inline long attempt(weft_chan_t *ch, int op, void *elem, size_t n)
{
	if (n == 0 || ch->cap == 0) {
		int rc = weft__chan_try(ch, op, elem, NULL);
		return rc == 0 ? 1 : rc;
	}
	long k = op == WEFT_SEND ? weft__ring_push_many(&ch->ring, elem, n)
				 : weft__ring_pop_many(&ch->ring, elem, n);
	if (k > 0)
		notify_other(ch, op, (size_t)k);
	return k;
}

/* Spin until op looks possible; false if the spin budget ran out. */
static bool spin_until_ready(weft_chan_t *ch, int op)
{
	weft__spin_t s;
	if (!weft__spin_start(&s))
		return false;
	do {
		/* poll only the slot we need: reading tail or head here would
		 * pull the other side's line away from it on every round. A
		 * close is seen after the spin (bounded) by the re-check. */
		bool ready = op == WEFT_RECV ? weft__ring_pop_ready(&ch->ring)
					     : weft__ring_push_ready(&ch->ring);
		if (ready) {
			weft__spin_end(&s);
			return true;
		}
	} while (weft__spin_again(&s));
	return false;
}

/* Leave after registering without sleeping (the re-check decided). */
static void leave_registered(weft_chan_t *ch, int op, weft__wnode_t *node)
{
	uint32_t st = weft__waiter_abort(node->w);
	if (st == WEFT__W_ABORT)
		weft__chan_unregister(ch, op, node);
	else if (WEFT__W_KIND(st) == WEFT__W_NOTIFY)
		/* a wake-up meant for someone who would use it */
		weft__chan_notify(ch, weft__chan_queue(ch, op), 1);
	/* CANCEL: the canceller unlinked only the context node */
	if (WEFT__W_KIND(st) == WEFT__W_CANCEL)
		weft__chan_unregister(ch, op, node);
}

/* The blocking loop of every call: try, spin (buffered), register, re-check,
 * sleep. ctx (may be NULL) is watched while sleeping; the wait ends at the
 * earlier of deadline and the context's deadline. When the context is done
 * the call returns its error and the channel is as if the call had not been
 * made (nothing was sent or received: the CAS on our state settles whether
 * a partner or the context ended the wait). */
static long chan_block(weft_chan_t *ch, int op, void *elem, size_t n, int64_t deadline,
		       weft_ctx_t *ctx)
{
	bool may_spin = true;
	int64_t wait_until = deadline;
	if (ctx) {
		int e = weft_ctx_err(ctx);
		if (e)
			return e;
		int64_t cd = weft__ctx_deadline(ctx);
		if (cd < wait_until)
			wait_until = cd;
	}
	/* Buffered: poll the slot before the first attempt. A caller that
	 * just failed the quick path would otherwise read the other side's
	 * line (to decide "empty" or "full") on its way to spinning; polling
	 * first, it reads that line only once the slot is ready, or after
	 * the spin ran out. (Closed is seen by that attempt: bounded.) */
	if (ch->cap && !weft__deadline_passed(wait_until)) {
		may_spin = false;
		spin_until_ready(ch, op);
	}
	for (;;) {
		long rc = attempt(ch, op, elem, n);
		if (rc != -EAGAIN)
			return rc;
		if (weft__deadline_passed(wait_until)) {
			int e = ctx ? weft_ctx_err(ctx) : 0;
			if (e)
				return e;
			if (weft_now() >= deadline)
				return -ETIMEDOUT;
		}
		if (ch->cap && may_spin) {
			may_spin = false;
			if (spin_until_ready(ch, op))
				continue;
		}

		weft__waiter_t w = {WEFT__W_WAITING};
		weft__wnode_t node = {.w = &w, .elem = elem, .index = 0};
		weft__wnode_t cnode = {.w = &w, .index = 0};
		weft__waitq_t *q = weft__chan_queue(ch, op);
		if (ch->cap == 0) {
			if (wait_until == WEFT_FOREVER && !ctx) {
				int a = rv_wait_alone(ch, op, &node);
				if (a == RV_DONE)
					return 1;
				if (a == RV_RETRY)
					continue;
			}
			/* match or register, atomically under the lock */
			weft__wnode_t *peer;
			weft__chan_lock(ch);
			int m = weft__chan_match_locked(ch, op, NULL, &peer);
			if (m == -EAGAIN)
				weft__waitq_push_locked(q, &node);
			weft__chan_unlock(ch);
			if (m == 0) {
				weft__chan_handoff(ch, op, elem, peer);
				return 1;
			}
			if (m == -EPIPE)
				return -EPIPE;
			if (ctx && (rc = weft__ctx_watch(ctx, &cnode)) != 0) {
				uint32_t st = weft__waiter_abort(&w);
				if (WEFT__W_KIND(st) == WEFT__W_DONE)
					return 1; /* a partner was quicker */
				weft__chan_unregister(ch, op, &node);
				return rc;
			}
		} else {
			weft__chan_register(ch, op, &node);
			if (ctx && (rc = weft__ctx_watch(ctx, &cnode)) != 0) {
				leave_registered(ch, op, &node);
				return rc;
			}
			/* store-load: our registration before the re-check */
			weft__fence_rmw_load();
			rc = attempt(ch, op, elem, n);
			if (rc != -EAGAIN) {
				if (ctx)
					weft__ctx_unwatch(ctx, &cnode);
				leave_registered(ch, op, &node);
				return rc;
			}
		}

		/* unbuffered waiters spin on their own state: the peer
		 * completes the handoff while we are still awake */
		uint32_t st = weft__waiter_wait(&w, wait_until, ch->cap == 0);
		if (st == WEFT__W_TIMEOUT)
			st = weft__waiter_abort(&w);
		if (ctx)
			weft__ctx_unwatch(ctx, &cnode);
		switch (WEFT__W_KIND(st)) {
		case WEFT__W_DONE:
			return 1; /* a peer took (or gave) the element */
		case WEFT__W_CANCEL:
			weft__chan_unregister(ch, op, &node);
			return weft_ctx_err(ctx);
		case WEFT__W_ABORT:
			weft__chan_unregister(ch, op, &node);
			if (ctx && (rc = weft_ctx_err(ctx)) != 0)
				return rc; /* the context's deadline */
			if (weft_now() < deadline)
				continue; /* (not our deadline: cannot happen) */
			/* timed out: a passed deadline behaves like try */
			rc = attempt(ch, op, elem, n);
			return rc == -EAGAIN ? -ETIMEDOUT : rc;
		default:
			/* NOTIFY: the notifier unlinked us; retry */
			may_spin = true;
			break;
		}
	}
}

/* Overflow policies: one attempt under the policy first (it never waits
 * for room, except SPILL at its limit), then the common blocking loop. A
 * context already done fails the call first, as in chan_block. */
static __attribute__((noinline)) long ov_block(weft_chan_t *ch, int op, void *elem,
					       int64_t deadline, weft_ctx_t *ctx)
{
	if (ctx) {
		int e = weft_ctx_err(ctx);
		if (e)
			return e;
	}
	int rc = weft__ov_try(ch, op, elem);
	if (rc != -EAGAIN)
		return rc == 0 ? 1 : rc;
	return chan_block(ch, op, elem, 0, deadline, ctx);
}

/* Bulk under a policy: the first as a single blocking call, then as many
 * more as go without waiting. */
static long ov_many(weft_chan_t *ch, int op, unsigned char *elems, size_t n)
{
	long rc = ov_block(ch, op, elems, WEFT_FOREVER, NULL);
	if (rc < 0)
		return rc;
	if (n == 1)
		return 1;
	return 1 + (long)weft__ov_more(ch, op, elems ? elems + ch->elem_size : NULL, n - 1);
}

static inline int check_args(const weft_chan_t *ch, const void *elem)
{
	if (!ch || (!elem && ch->elem_size))
		return -EINVAL;
	return 0;
}

/* The hot path of send and recv: a buffered channel with room or an
 * element is one ring operation and one waiter-count load; everything
 * else goes through chan_block (which polls, then tries again). The quick
 * ring calls do not decide "full" or "empty" (see ring.h): chan_block's
 * first attempt does, after the spin. */
int weft_chan_send(weft_chan_t *ch, const void *elem)
{
	int rc = check_args(ch, elem);
	if (rc)
		return rc;
	if (__builtin_expect(ch->quick_send != 0, 1)) {
		if (weft__ring_push_quick(&ch->ring, elem) == 0) {
			notify_other(ch, WEFT_SEND, 1);
			return 0;
		}
	}
	long r = __builtin_expect(ch->ov != NULL, 0)
			 ? ov_block(ch, WEFT_SEND, (void *)elem, WEFT_FOREVER, NULL)
			 : chan_block(ch, WEFT_SEND, (void *)elem, 0, WEFT_FOREVER, NULL);
	return r > 0 ? 0 : (int)r;
}

int weft_chan_recv(weft_chan_t *ch, void *elem)
{
	int rc = check_args(ch, elem);
	if (rc)
		return rc;
	if (__builtin_expect(ch->cap != 0, 1)) {
		if (weft__ring_pop_quick(&ch->ring, elem) == 0) {
			notify_other(ch, WEFT_RECV, 1);
			return 0;
		}
	}
	long r = __builtin_expect(ch->ov != NULL, 0)
			 ? ov_block(ch, WEFT_RECV, elem, WEFT_FOREVER, NULL)
			 : chan_block(ch, WEFT_RECV, elem, 0, WEFT_FOREVER, NULL);
	return r > 0 ? 0 : (int)r;
}

int weft_chan_send_until(weft_chan_t *ch, const void *elem, int64_t deadline)
{
	int rc = check_args(ch, elem);
	if (rc)
		return rc;
	long r = ch->ov ? ov_block(ch, WEFT_SEND, (void *)elem, deadline, NULL)
			: chan_block(ch, WEFT_SEND, (void *)elem, 0, deadline, NULL);
	return r > 0 ? 0 : (int)r;
}

int weft_chan_recv_until(weft_chan_t *ch, void *elem, int64_t deadline)
{
	int rc = check_args(ch, elem);
	if (rc)
		return rc;
	long r = ch->ov ? ov_block(ch, WEFT_RECV, elem, deadline, NULL)
			: chan_block(ch, WEFT_RECV, elem, 0, deadline, NULL);
	return r > 0 ? 0 : (int)r;
}

int weft_chan_send_ctx(weft_chan_t *ch, const void *elem, weft_ctx_t *ctx)
{
	int rc = check_args(ch, elem);
	if (rc || !ctx)
		return -EINVAL;
	long r = ch->ov ? ov_block(ch, WEFT_SEND, (void *)elem, WEFT_FOREVER, ctx)
			: chan_block(ch, WEFT_SEND, (void *)elem, 0, WEFT_FOREVER, ctx);
	return r > 0 ? 0 : (int)r;
}

int weft_chan_recv_ctx(weft_chan_t *ch, void *elem, weft_ctx_t *ctx)
{
	int rc = check_args(ch, elem);
	if (rc || !ctx)
		return -EINVAL;
	long r = ch->ov ? ov_block(ch, WEFT_RECV, elem, WEFT_FOREVER, ctx)
			: chan_block(ch, WEFT_RECV, elem, 0, WEFT_FOREVER, ctx);
	return r > 0 ? 0 : (int)r;
}

int weft_chan_try_send(weft_chan_t *ch, const void *elem)
{
	int rc = check_args(ch, elem);
	return rc ? rc : weft__chan_try(ch, WEFT_SEND, (void *)elem, NULL);
}

int weft_chan_try_recv(weft_chan_t *ch, void *elem)
{
	int rc = check_args(ch, elem);
	return rc ? rc : weft__chan_try(ch, WEFT_RECV, elem, NULL);
}

/* Bulk on an unbuffered channel: one blocking handoff, then as many more
 * as there are partners already waiting. */
static long many_unbuffered(weft_chan_t *ch, int op, unsigned char *elems, size_t n)
{
	long rc = chan_block(ch, op, elems, 0, WEFT_FOREVER, NULL);
	if (rc < 0)
		return rc;
	size_t k = 1;
	while (k < n && weft__chan_try(ch, op, elems ? elems + k * ch->elem_size : NULL, NULL) == 0)
		k++;
	return (long)k;
}

long weft_chan_send_many(weft_chan_t *ch, const void *elems, size_t n)
{
	int rc = check_args(ch, elems);
	if (rc || n == 0)
		return -EINVAL;
	if (ch->cap == 0)
		return many_unbuffered(ch, WEFT_SEND, (unsigned char *)elems, n);
	if (ch->ov)
		return ov_many(ch, WEFT_SEND, (unsigned char *)elems, n);
	return chan_block(ch, WEFT_SEND, (void *)elems, n, WEFT_FOREVER, NULL);
}

long weft_chan_recv_many(weft_chan_t *ch, void *elems, size_t max)
{
	int rc = check_args(ch, elems);
	if (rc || max == 0)
		return -EINVAL;
	if (ch->cap == 0)
		return many_unbuffered(ch, WEFT_RECV, elems, max);
	if (ch->ov)
		return ov_many(ch, WEFT_RECV, elems, max);
	return chan_block(ch, WEFT_RECV, elems, max, WEFT_FOREVER, NULL);
}

int weft_chan_close(weft_chan_t *ch)
{
	if (!ch)
		return -EINVAL;
	int rc = ch->ov ? weft__ov_close(ch) : weft__ring_close(&ch->ring);
	if (rc)
		return rc;
	weft__mutex_lock(&ch->lock);
	if (ch->cap == 0)
		rv_close(ch);
	weft__waitq_notify_all(&ch->recvq);
	weft__waitq_notify_all(&ch->sendq);
	weft__mutex_unlock(&ch->lock);
	return 0;
}

/* For compositions (pipeline.c): a receive that ends at the earlier of an
 * absolute deadline and ctx being done (-ETIMEDOUT / ctx's error). */
int weft__chan_recv_until_ctx(weft_chan_t *ch, void *elem, int64_t deadline, weft_ctx_t *ctx)
{
	int rc = check_args(ch, elem);
	if (rc || !ctx)
		return -EINVAL;
	long r = chan_block(ch, WEFT_RECV, elem, 0, deadline, ctx);
	return r > 0 ? 0 : (int)r;
}

/* Ring positions count operations: lap * cap + index. */
static uint64_t ring_ops(const struct weft__ring *r, uint64_t pos)
{
	pos &= ~WEFT__RING_CLOSED;
	return (pos / r->one_lap) * r->cap + (pos & (r->one_lap - 1));
}

int weft_chan_stats(const weft_chan_t *ch, weft_chan_stats_t *out)
{
	if (!ch || !out)
		return -EINVAL;
	memset(out, 0, sizeof *out);
	if (ch->cap) {
		uint64_t pos[2];
		weft__ring_positions(&ch->ring, pos);
		out->sent = ring_ops(&ch->ring, pos[0]);
		out->received = ring_ops(&ch->ring, pos[1]);
	}
	out->len = weft_chan_len(ch);
	if (ch->ov)
		weft__ov_stats(ch, out); /* adjusts sent/received for its policy */
	return 0;
}
