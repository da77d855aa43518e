/* lib/chan_overflow.c: overflow policies of buffered channels (DROP_NEWEST,
 * DROP_OLDEST, SPILL). chan.c calls in here only off its BLOCK fast paths
 * (a failed quick push or pop, the try and blocking loops, select), so a
 * BLOCK channel pays nothing for them; a SPILL channel's sends skip the
 * quick path (ch->quick_send is 0).
 *
 * DROP_*: the ring decides "full" (weft__ring_push's -EAGAIN is
 * linearizable); DROP_NEWEST counts and refuses, DROP_OLDEST pops the
 * oldest (an ordinary pop: it competes with receivers, and whoever wins
 * the head CAS has it, exactly once), hands it to on_drop and tries again.
 *
 * SPILL: the ring is the memory part, the spill (spill.c, under sp_lock)
 * the rest. Invariants:
 * - A send goes to the ring only while the spill is empty (count 0 read
 *   with acquire, or under the lock); else it appends to the spill. A
 *   receive takes from the ring first, and from the spill only when the
 *   ring is empty. Elements of one sender are therefore received in order:
 *   a sender that sees count 0 after its own append knows that element was
 *   received already (count only drops when the spill's oldest is taken).
 * - Close takes sp_lock around the ring's closed mark, and a spilling send
 *   checks the mark under it: no element is appended after a receiver has
 *   found "closed, ring empty, spill empty" (it looks under the lock).
 *
 * Ordering (SPILL wake-ups, Dekker pairs as in chan.c):
 * - A spilling send appends (count stored under sp_lock), unlocks (an
 *   xchg: the full barrier), then loads the receivers' waiter count
 *   (weft__fence_rmw_load before it); a receiver registers (RMW on that
 *   count), fences, and re-tries, which reads count (acquire) and looks
 *   under the lock. One sees the other.
 * - A receive that took from the spill (count stored under sp_lock) wakes senders
 *   waiting at spill_max_bytes the same way; ring pops notify them through
 *   the ring path as for BLOCK (they then re-check the limit).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal/chan_impl.h"
#include "internal/spill.h"
#include "internal/sys.h"

struct weft__overflow {
	int policy;
	void (*on_drop)(void *elem, void *user);
	void *user;
	uint64_t dropped;   /* RMW (drop paths only) */
	/* SPILL */
	weft__mutex_t sp_lock;
	struct weft__spill sp;
	uint64_t max_count; /* spill_max_bytes / elem_size; 0: no limit */
};

int weft__ov_init(weft_chan_t *ch, const weft_chan_opts_t *o)
{
	struct weft__overflow *ov = weft__sys_calloc(1, sizeof *ov);
	if (!ov)
		return -ENOMEM;
	ov->policy = o->overflow;
	ov->on_drop = o->on_drop;
	ov->user = o->user;
	ov->sp.fd = -1;
	if (ov->policy == WEFT_OVERFLOW_SPILL) {
		int rc = weft__spill_open(&ov->sp, ch->elem_size, o->spill_dir, o->spill_block_bytes);
		if (rc) {
			free(ov);
			return rc;
		}
		if (o->spill_max_bytes) {
			ov->max_count = o->spill_max_bytes / ch->elem_size;
			if (ov->max_count == 0)
				ov->max_count = 1; /* room for one element at least */
		}
		ch->quick_send = 0;
	}
	ch->plain_buffered = 0;
	ch->ov = ov;
	return 0;
}

void weft__ov_free(struct weft__overflow *ov)
{
	if (!ov)
		return;
	if (ov->policy == WEFT_OVERFLOW_SPILL)
		weft__spill_fini(&ov->sp);
	free(ov);
}

/* After making k elements (send) or k free places (recv) available. */
static inline void notify(weft_chan_t *ch, weft__waitq_t *q, size_t k)
{
	/* the caller's RMW (ring CAS, or count RMW + unlock) came first */
	if (weft__waitq_count(q) != 0)
		weft__chan_notify(ch, q, k);
}

static inline uint64_t spill_count(struct weft__overflow *ov)
{
	/* acquire: pairs with the RMWs on count (a taken element's removal
	 * before we push to the ring behind it) */
	return weft__ld64_acq(&ov->sp.count);
}

static int drop_oldest_send(weft_chan_t *ch, struct weft__overflow *ov, const void *elem)
{
	unsigned char small[256];
	unsigned char *old = ch->elem_size <= sizeof small ? small : NULL;
	int rc;
	for (;;) {
		rc = weft__ring_push(&ch->ring, elem);
		if (rc != -EAGAIN)
			break;
		if (!old && !(old = weft__sys_malloc(ch->elem_size)))
			return -ENOMEM;
		/* full: evict the oldest (if a receiver took it first, the
		 * push simply tries again) */
		if (weft__ring_pop(&ch->ring, ch->elem_size ? old : NULL) == 0) {
			/* RMW: a counter for stats only, no data behind it */
			weft__faa64(&ov->dropped, 1);
			if (ov->on_drop)
				ov->on_drop(old, ov->user);
		}
	}
	if (old != small)
		free(old);
	if (rc == 0)
		notify(ch, &ch->recvq, 1);
	return rc;
}

static int spill_send(weft_chan_t *ch, struct weft__overflow *ov, const void *elem)
{
	int rc;
	if (spill_count(ov) == 0) {
		rc = weft__ring_push(&ch->ring, elem);
		if (rc == 0) {
			notify(ch, &ch->recvq, 1);
			return 0;
		}
		if (rc != -EAGAIN)
			return rc;
	}
	/* count is read relaxed below: under sp_lock, which orders every
	 * store to it */
	weft__mutex_lock(&ov->sp_lock);
	if (weft__ring_is_closed(&ch->ring)) {
		rc = -EPIPE;
	} else if (weft__ld64_rlx(&ov->sp.count) == 0 &&
		   (rc = weft__ring_push(&ch->ring, elem)) != -EAGAIN) {
		/* the ring had room again (0), or closed meanwhile */
	} else if (ov->max_count && weft__ld64_rlx(&ov->sp.count) >= ov->max_count) {
		rc = -EAGAIN;
	} else {
		rc = weft__spill_push(&ov->sp, elem);
	}
	weft__mutex_unlock(&ov->sp_lock);
	if (rc == 0) {
		/* store-load: the append (and unlock, RMWs) before the
		 * receivers' count; Dekker with a registering receiver */
		weft__fence_rmw_load();
		notify(ch, &ch->recvq, 1);
	}
	return rc;
}

static int spill_recv(weft_chan_t *ch, struct weft__overflow *ov, void *elem)
{
	int rc = weft__ring_pop(&ch->ring, elem);
	if (rc == 0) {
		notify(ch, &ch->sendq, 1);
		return 0;
	}
	if (spill_count(ov) == 0 && rc == -EAGAIN)
		return -EAGAIN;
	weft__mutex_lock(&ov->sp_lock);
	/* the ring again first: it may have been refilled meanwhile (only
	 * while the spill was empty, so it holds the older elements) */
	int r2 = weft__ring_pop(&ch->ring, elem);
	if (r2 != 0)
		r2 = weft__spill_pop(&ov->sp, elem);
	if (r2 == -EAGAIN && weft__ring_is_closed(&ch->ring))
		r2 = -EPIPE; /* closed (under the lock), ring and spill empty */
	weft__mutex_unlock(&ov->sp_lock);
	if (r2 == 0) {
		/* store-load: as in spill_send, for senders at the limit */
		weft__fence_rmw_load();
		notify(ch, &ch->sendq, 1);
	}
	return r2;
}

int weft__ov_try(weft_chan_t *ch, int op, void *elem)
{
	struct weft__overflow *ov = ch->ov;
	int rc;
	if (ov->policy == WEFT_OVERFLOW_SPILL)
		return op == WEFT_SEND ? spill_send(ch, ov, elem) : spill_recv(ch, ov, elem);
	if (op == WEFT_RECV) {
		rc = weft__ring_pop(&ch->ring, elem);
		if (rc == 0)
			notify(ch, &ch->sendq, 1);
		return rc;
	}
	if (ov->policy == WEFT_OVERFLOW_DROP_OLDEST)
		return drop_oldest_send(ch, ov, elem);
	rc = weft__ring_push(&ch->ring, elem);
	if (rc == 0) {
		notify(ch, &ch->recvq, 1);
	} else if (rc == -EAGAIN) {
		/* RMW: a counter for stats only, no data behind it */
		weft__faa64(&ov->dropped, 1);
		rc = -ENOBUFS;
	}
	return rc;
}

size_t weft__ov_more(weft_chan_t *ch, int op, unsigned char *elems, size_t n)
{
	size_t k = 0;
	for (; k < n; k++) {
		void *e = elems ? elems + k * ch->elem_size : NULL;
		int rc;
		if (op == WEFT_SEND && ch->ov->policy == WEFT_OVERFLOW_DROP_NEWEST) {
			rc = weft__ring_push(&ch->ring, e);
			if (rc == 0)
				notify(ch, &ch->recvq, 1);
		} else {
			rc = weft__ov_try(ch, op, e);
		}
		if (rc)
			break;
	}
	return k;
}

bool weft__ov_ready(weft_chan_t *ch, int op)
{
	struct weft__overflow *ov = ch->ov;
	if (op == WEFT_RECV)
		return weft__ring_can_pop(&ch->ring) ||
		       (ov->policy == WEFT_OVERFLOW_SPILL && spill_count(ov) != 0);
	if (ov->policy != WEFT_OVERFLOW_SPILL)
		return true; /* never waits for room */
	return !ov->max_count || spill_count(ov) < ov->max_count ||
	       weft__ring_is_closed(&ch->ring);
}

int weft__ov_close(weft_chan_t *ch)
{
	struct weft__overflow *ov = ch->ov;
	if (ov->policy != WEFT_OVERFLOW_SPILL)
		return weft__ring_close(&ch->ring);
	weft__mutex_lock(&ov->sp_lock);
	int rc = weft__ring_close(&ch->ring);
	weft__mutex_unlock(&ov->sp_lock);
	return rc;
}

size_t weft__ov_len(const weft_chan_t *ch)
{
	size_t n = weft__ring_len(&ch->ring);
	if (ch->ov->policy == WEFT_OVERFLOW_SPILL)
		/* relaxed: a snapshot (len) */
		n += (size_t)weft__ld64_rlx(&ch->ov->sp.count);
	return n;
}

void weft__ov_stats(const weft_chan_t *ch, weft_chan_stats_t *out)
{
	struct weft__overflow *ov = ch->ov;
	out->overflow = ov->policy;
	/* relaxed: a counter for a snapshot */
	out->dropped = weft__ld64_rlx(&ov->dropped);
	if (ov->policy == WEFT_OVERFLOW_DROP_OLDEST) {
		/* evictions are ring pops that nobody received */
		out->received -= out->dropped < out->received ? out->dropped : out->received;
	}
	if (ov->policy == WEFT_OVERFLOW_SPILL) {
		weft__mutex_lock(&ov->sp_lock);
		out->spilled = ov->sp.pushed;
		out->sent += ov->sp.pushed;
		out->received += ov->sp.popped;
		/* relaxed (here and above): counters for a snapshot */
		out->spill_bytes = weft__ld64_rlx(&ov->sp.count) * ch->elem_size;
		out->spill_file_written = ov->sp.file_written;
		out->spill_file_read = ov->sp.file_read;
		weft__mutex_unlock(&ov->sp_lock);
	}
}
