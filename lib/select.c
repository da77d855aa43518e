/* lib/select.c: select over any number of channel cases.
 *
 * 1. Try every enabled case once, in a fresh random permutation (so the
 *    choice among ready cases is uniform), with the channels' try paths.
 *    Before answering "none ready" (select_try's -EAGAIN, a timeout), a
 *    validated pass (poll_pass) makes that answer true at one instant.
 * 2. Spin briefly polling readiness. Then, holding the locks of all its
 *    unbuffered channels (taken in address order, as Go does), match a
 *    waiting partner on one of them or register one wait node per case
 *    (all sharing one waiter state word): matching and registering are
 *    atomic for unbuffered channels, so two selects can never both
 *    register against each other and sleep. Then fence and re-check the
 *    buffered cases (Dekker with their lock-free publishers).
 * 3. Sleep. Exactly one waker wins the state word (NOTIFY for a buffered
 *    case: retry it; DONE for an unbuffered case: the peer completed it).
 *    The waiter unregisters every node before it acts.
 *
 * Ordering: as for single operations (chan.c): registration is an RMW on
 * each queue's count followed by weft__fence_rmw_load before the re-check;
 * publishers make their change with an RMW (the ring's claiming CAS)
 * before reading the count.
 * A select never meets itself: its own nodes are skipped by claims and by
 * readiness checks (they carry its waiter pointer), and it is unregistered
 * during its own try passes and while it matches under the locks.
 */
#include <errno.h>
#include <stdlib.h>

#include "internal/chan_impl.h"
#include "internal/ctx_impl.h"
#include "internal/sys.h"
#include <weft/chan.h>

#define SELECT_STACK_CASES 32

static _Thread_local uint64_t rng_state;

/* xorshift64*, seeded per thread from its own address and the clock */
static inline uint32_t rnd32(void)
{
	uint64_t x = rng_state;
	if (x == 0)
		x = ((uint64_t)(uintptr_t)&rng_state * 0x9E3779B97F4A7C15ull) ^ (uint64_t)weft_now() ^ 1;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

/* 0..n-1, without the bias of a modulo that matters here */
static inline uint32_t rnd_below(uint32_t n)
{
	return (uint32_t)(((uint64_t)rnd32() * n) >> 32);
}

static int validate(const weft_case_t *cases, size_t n, size_t *enabled)
{
	if (n > 0 && !cases)
		return -EINVAL;
	if (n > WEFT_SELECT_MAX_CASES)
		return -EINVAL;
	*enabled = 0;
	for (size_t i = 0; i < n; i++) {
		const weft_case_t *c = &cases[i];
		if (!c->chan)
			continue;
		if (c->op != WEFT_SEND && c->op != WEFT_RECV)
			return -EINVAL;
		if (c->op == WEFT_SEND && !c->elem && c->chan->elem_size)
			return -EINVAL;
		(*enabled)++;
	}
	return 0;
}

/* One pass over the cases in a fresh random order (Fisher-Yates, drawn
 * lazily: the pass usually stops early). with_lock: the unbuffered
 * channels are held and only they are tried (a partner won into *peer, to
 * be completed after unlocking); otherwise every enabled case is tried with
 * its channel's try path. Index of the case done, or -EAGAIN. */
static int random_pass(weft_case_t *cases, size_t n, uint32_t *perm, bool with_lock,
		       weft__wnode_t **peer)
{
	for (size_t i = 0; i < n; i++)
		perm[i] = (uint32_t)i;
	for (size_t i = 0; i < n; i++) {
		size_t j = i + rnd_below((uint32_t)(n - i));
		uint32_t k = perm[j];
		perm[j] = perm[i];
		perm[i] = k;
		weft_case_t *c = &cases[k];
		if (!c->chan || (with_lock && c->chan->cap))
			continue;
		int rc = with_lock ? weft__chan_match_locked(c->chan, c->op, NULL, peer)
				   : weft__chan_try(c->chan, c->op, c->elem, NULL);
		if (rc != -EAGAIN) {
			c->err = rc; /* 0, or -EPIPE: closed */
			return (int)k;
		}
	}
	return -EAGAIN;
}

static int try_pass(weft_case_t *cases, size_t n, uint32_t *perm)
{
	return random_pass(cases, n, perm, false, NULL);
}

/* Read every case's version (weft__chan_version); true if some case
 * could proceed in the state read. */
static bool versions(weft_case_t *cases, size_t n, uint64_t *vers)
{
	bool ready = false;
	for (size_t i = 0; i < n; i++)
		if (cases[i].chan) {
			weft__chan_version(cases[i].chan, cases[i].op, &vers[2 * i]);
			ready = ready || weft__chan_ready_at(cases[i].chan, cases[i].op, &vers[2 * i]);
		}
	return ready;
}

static bool versions_unchanged(weft_case_t *cases, size_t n, const uint64_t *vers)
{
	uint64_t v[2];
	for (size_t i = 0; i < n; i++) {
		if (!cases[i].chan)
			continue;
		weft__chan_version(cases[i].chan, cases[i].op, v);
		if (v[0] != vers[2 * i] || v[1] != vers[2 * i + 1])
			return false;
	}
	return true;
}

/* After a try pass found nothing: the answer "no case was ready" must hold
 * at one instant, not case by case (a pass can see c2 still empty, then c1
 * already emptied, while one of them was ready all along). Read every
 * case's version and whether that state lets it proceed, then read the
 * versions again: if none moved, each case stayed not ready from its
 * first read to its second, and the instant between the two rounds lies in
 * all those spans. If a case looks ready, do a try pass (random order, as
 * always) and start over; if a version moved, some other operation on
 * these channels completed: look again (lock-free, not wait-free). Index
 * of a case done, or -EAGAIN. */
static int poll_pass(weft_case_t *cases, size_t n, uint32_t *perm, uint64_t *vers)
{
	for (;;) {
		if (versions(cases, n, vers)) {
			int idx = try_pass(cases, n, perm);
			if (idx >= 0)
				return idx;
			continue;
		}
		/* load-load: the readiness reads before the second versions */
		weft__fence_load();
		if (versions_unchanged(cases, n, vers))
			return -EAGAIN;
	}
}

/* buffered cases only: unbuffered ones are settled under the locks */
static bool any_buffered_ready(weft_case_t *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (cases[i].chan && cases[i].chan->cap &&
		    weft__chan_ready(cases[i].chan, cases[i].op))
			return true;
	return false;
}

static int chan_addr_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (weft_chan_t *const *)a;
	uintptr_t y = (uintptr_t) * (weft_chan_t *const *)b;
	return x < y ? -1 : x > y;
}

/* Lock the distinct unbuffered channels among the cases, in address order
 * (so selects never deadlock on each other); returns how many. */
static size_t lock_unbuffered(weft_case_t *cases, size_t n, weft_chan_t **locked)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (cases[i].chan && cases[i].chan->cap == 0)
			locked[k++] = cases[i].chan;
	qsort(locked, k, sizeof *locked, chan_addr_cmp);
	size_t u = 0;
	for (size_t i = 0; i < k; i++)
		if (u == 0 || locked[u - 1] != locked[i])
			locked[u++] = locked[i];
	for (size_t i = 0; i < u; i++)
		weft__chan_lock(locked[i]);
	return u;
}

static void unlock_all(weft_chan_t **locked, size_t k)
{
	while (k > 0)
		weft__chan_unlock(locked[--k]);
}


/* lock-free readiness poll for the spin phase */
static bool any_ready_fast(weft_case_t *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		weft_chan_t *ch = cases[i].chan;
		if (!ch)
			continue;
		if (ch->cap) {
			if (cases[i].op == WEFT_RECV ? weft__ring_pop_ready(&ch->ring)
						     : weft__ring_push_ready(&ch->ring))
				return true;
		} else if (weft__chan_ready(ch, cases[i].op)) {
			return true;
		}
	}
	return false;
}

static bool spin_until_ready(weft_case_t *cases, size_t n)
{
	weft__spin_t s;
	if (!weft__spin_start(&s))
		return false;
	do {
		if (any_ready_fast(cases, n) ||
		    ((s.iter & 15) == 15 && any_buffered_ready(cases, n))) {
			weft__spin_end(&s);
			return true;
		}
	} while (weft__spin_again(&s));
	return false;
}

/* no enabled case, with a context: wait for it to be done */
static int ctx_wait_until(weft_ctx_t *ctx, int64_t deadline)
{
	return weft_ctx_wait(ctx, deadline);
}

/* no enabled case: wait for the deadline (nothing can wake us) */
static int wait_for_deadline(int64_t deadline)
{
	uint32_t never = 0;
	while (weft__park_word(&never, 0, deadline) != -ETIMEDOUT)
		;
	return -ETIMEDOUT;
}

static int select_impl(weft_case_t *cases, size_t n, int64_t deadline, bool block,
		       weft_ctx_t *ctx)
{
	size_t enabled;
	int rc = validate(cases, n, &enabled);
	if (rc)
		return rc;
	/* the wait ends at the earlier of our deadline and the context's */
	int64_t wait_until = deadline;
	if (ctx) {
		if ((rc = weft_ctx_err(ctx)) != 0)
			return rc;
		int64_t cd = weft__ctx_deadline(ctx);
		if (cd < wait_until)
			wait_until = cd;
	}
	if (enabled == 0) {
		if (!block)
			return -EAGAIN;
		if (ctx && ctx != weft_ctx_background())
			return ctx_wait_until(ctx, deadline);
		if (deadline == WEFT_FOREVER)
			return -EINVAL; /* would block forever */
		return wait_for_deadline(deadline);
	}

	uint32_t perm_stack[SELECT_STACK_CASES];
	weft__wnode_t node_stack[SELECT_STACK_CASES];
	weft_chan_t *locked_stack[SELECT_STACK_CASES];
	uint64_t vers_stack[2 * SELECT_STACK_CASES];
	uint32_t *perm = perm_stack;
	weft__wnode_t *nodes = node_stack;
	weft_chan_t **locked = locked_stack;
	uint64_t *vers = vers_stack;
	if (n > SELECT_STACK_CASES) {
		perm = weft__sys_malloc(n * sizeof *perm);
		nodes = weft__sys_malloc(n * sizeof *nodes);
		locked = weft__sys_malloc(n * sizeof *locked);
		vers = weft__sys_malloc(2 * n * sizeof *vers);
		if (!perm || !nodes || !locked || !vers) {
			free(perm);
			free(nodes);
			free(locked);
			free(vers);
			return -ENOMEM;
		}
	}

	bool may_spin = true, has_unbuffered = false;
	int idx;
	for (size_t i = 0; i < n; i++)
		has_unbuffered |= cases[i].chan && cases[i].chan->cap == 0;
	for (;;) {
		idx = try_pass(cases, n, perm);
		if (idx >= 0)
			break;
		bool expired = wait_until != WEFT_FOREVER && weft_now() >= wait_until;
		if (!block || expired) {
			/* about to answer "none ready": make it hold at one
			 * instant (the fast path above stays a single pass) */
			if ((idx = poll_pass(cases, n, perm, vers)) >= 0)
				break;
			if (!block)
				break;
			if (ctx && (idx = weft_ctx_err(ctx)) != 0)
				break;
			if (weft_now() >= deadline) {
				idx = -ETIMEDOUT;
				break;
			}
		}
		/* Spin before registering only over buffered cases. A
		 * rendezvous needs one side registered: two selects spinning
		 * at each other over unbuffered channels would both spin to
		 * the end. With any unbuffered case, register first and spin
		 * on our own state instead (waiter_wait below). */
		if (may_spin && !has_unbuffered) {
			may_spin = false;
			if (spin_until_ready(cases, n))
				continue;
		}

		weft__waiter_t w = {WEFT__W_WAITING};
		weft__wnode_t *peer = NULL;
		size_t nlocked = lock_unbuffered(cases, n, locked);
		if (nlocked) {
			idx = random_pass(cases, n, perm, true, &peer);
			if (idx >= 0) {
				unlock_all(locked, nlocked);
				if (peer)
					weft__chan_handoff(cases[idx].chan, cases[idx].op,
							   cases[idx].elem, peer);
				break;
			}
		}
		for (size_t i = 0; i < n; i++) {
			weft_chan_t *ch = cases[i].chan;
			if (!ch)
				continue;
			nodes[i] = (weft__wnode_t){.w = &w, .elem = cases[i].elem, .index = (uint32_t)i};
			if (ch->cap == 0)
				weft__waitq_push_locked(weft__chan_queue(ch, cases[i].op), &nodes[i]);
			else
				weft__chan_register(ch, cases[i].op, &nodes[i]);
		}
		unlock_all(locked, nlocked);
		/* the context's node shares our waiter; index n: no case */
		weft__wnode_t cnode = {.w = &w, .index = (uint32_t)n};
		int ctx_done = ctx ? weft__ctx_watch(ctx, &cnode) : 0;
		bool ready = false;
		if (!ctx_done) {
			/* store-load: registrations before the re-check */
			weft__fence_rmw_load();
			ready = any_buffered_ready(cases, n);
		}
		uint32_t st;
		if (ready || ctx_done) {
			st = weft__waiter_abort(&w);
		} else {
			st = weft__waiter_wait(&w, wait_until, nlocked != 0);
			if (st == WEFT__W_TIMEOUT)
				st = weft__waiter_abort(&w);
		}
		if (ctx && !ctx_done)
			weft__ctx_unwatch(ctx, &cnode);
		for (size_t i = 0; i < n; i++)
			if (cases[i].chan)
				weft__chan_unregister(cases[i].chan, cases[i].op, &nodes[i]);

		uint32_t kind = WEFT__W_KIND(st), i = WEFT__W_INDEX(st);
		if (kind == WEFT__W_DONE) {
			cases[i].err = 0; /* an unbuffered peer completed it */
			idx = (int)i;
			break;
		}
		if (kind == WEFT__W_NOTIFY) {
			/* retry the case that woke us first: if it fails, its
			 * element or room went to someone else */
			rc = weft__chan_try(cases[i].chan, cases[i].op, cases[i].elem, NULL);
			if (rc != -EAGAIN) {
				cases[i].err = rc;
				idx = (int)i;
				break;
			}
			may_spin = true;
			continue;
		}
		if (kind == WEFT__W_CANCEL) {
			idx = weft_ctx_err(ctx);
			break;
		}
		/* ABORT: we left on our own, for readiness, the context or
		 * a deadline */
		if (ctx_done) {
			idx = ctx_done;
			break;
		}
		/* readiness, or a deadline: the loop's top tries again and
		 * settles a timeout (the context's or ours) with poll_pass */
	}
	if (perm != perm_stack) {
		free(perm);
		free(nodes);
		free(locked);
		free(vers);
	}
	return idx;
}

int weft_select(weft_case_t *cases, size_t n)
{
	return select_impl(cases, n, WEFT_FOREVER, true, NULL);
}

int weft_select_try(weft_case_t *cases, size_t n)
{
	return select_impl(cases, n, WEFT_FOREVER, false, NULL);
}

int weft_select_until(weft_case_t *cases, size_t n, int64_t deadline)
{
	return select_impl(cases, n, deadline, true, NULL);
}

int weft_select_ctx(weft_case_t *cases, size_t n, weft_ctx_t *ctx)
{
	if (!ctx)
		return -EINVAL;
	return select_impl(cases, n, WEFT_FOREVER, true, ctx);
}
