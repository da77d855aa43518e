/* lib/breaker.c: the circuit breaker (weft/breaker.h).
 *
 * Ordering:
 * - `word` (64 bits, its own cache line with `gen` and `open_until`) is
 *   what every call reads first:
 *     FAST(1) | ST(2) | TAG(13) | REQ(16) | SUCC(16) | EXCL(16)
 *   ST is the state (3: disabled), TAG the low bits of the generation.
 *   FAST is set while the breaker is closed in gobreaker's default shape
 *   (no interval, no window, no rate, no slow-call threshold, not
 *   disabled): then REQ/SUCC/EXCL are deltas over the counts kept under the
 *   lock (`base`), and admitting a call (REQ+1) or counting a success
 *   (SUCC+1) or exclusion (EXCL+1) is one CAS on `word` with no lock. The
 *   CAS both checks and counts: it fails if the generation (TAG) or FAST
 *   changed, so a result can never land in a generation it was not
 *   admitted in. Failures, and a delta that would overflow its 16 bits,
 *   take the lock.
 * - Everything else is under `lock` (a weft__mutex_t): the state machine
 *   (gobreaker's beforeRequest/afterRequest), the rolling counts, the
 *   rates' window, backoff, manual modes, the event queue. Every locked
 *   operation on a FAST breaker first folds the deltas into `base` with a
 *   CAS loop (fold()): deltas go to zero while lock-free CASes keep
 *   landing; under the lock, base + the deltas of one load of `word` is a
 *   consistent snapshot, since base only changes under the lock.
 * - A new generation is published under the lock: `gen` and `open_until`
 *   (relaxed), then `word` (release). Lock-free readers load `word` with
 *   acquire and then `gen` / `open_until`, so they see values at least as
 *   new as that word's. `gen` is checked against the word's TAG before it
 *   is put in a ticket (a word and a gen from two different generations
 *   differ in TAG, unless 8192 generations passed between two loads).
 *   Leaving FAST folds first, then stores the new word: a fast CAS landing
 *   in between counts in the generation being discarded, which is what
 *   gobreaker does with a result of a dying generation (nothing).
 * - An open breaker rejects lock-free: ST == OPEN in `word` (acquire),
 *   the clock not past `open_until`: count the rejection on this thread's
 *   stripe (relaxed add: a statistic, read as a sum) and return -EBUSY.
 * - on_state_change: transitions append {from, to} to `ev` under the
 *   lock, in the order they happen. After unlocking, a thread that
 *   appended one takes `cb_lock` and delivers everything pending, one
 *   event at a time, outside `lock`: callbacks never run concurrently,
 *   come in order, and have run (by this thread or the one that held
 *   cb_lock) before the call that caused them returns. A call made from
 *   inside a callback (cb_owner is its own caller_id(): a task or a
 *   thread) does not take cb_lock (it holds it): the outer delivery loop
 *   picks its events up when the callback returns.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "internal/atomic.h"
#include "internal/park.h"
#include "internal/sched.h"
#include "internal/sys.h"
#include <weft/breaker.h>

/* ---- the fast word ---- */

#define W_FAST ((uint64_t)1 << 63)
#define W_ST_SHIFT 61
#define W_ST_MASK ((uint64_t)3 << W_ST_SHIFT)
#define W_TAG_SHIFT 48
#define W_TAG_BITS 13
#define W_TAG_MASK ((((uint64_t)1 << W_TAG_BITS) - 1) << W_TAG_SHIFT)
#define W_REQ_SHIFT 32
#define W_SUCC_SHIFT 16
#define W_EXCL_SHIFT 0
#define W_FIELD_MAX 0xFFFFu
#define W_FIELD(w, sh) ((uint32_t)(((w) >> (sh)) & W_FIELD_MAX))
#define W_DELTAS (((uint64_t)1 << W_TAG_SHIFT) - 1)
#define ST_DISABLED 3

/* the generation of a ticket whose call was not counted (disabled,
 * rejected): generations start at 1, so done never counts its result. It
 * must not be the generation read from `gen`: that load can be newer than
 * the word it follows, and a later generation would count a result it
 * never admitted (seen as more results than requests under churn). */
#define UNCOUNTED 0

#define TAG_OF(gen) (((uint64_t)(gen) << W_TAG_SHIFT) & W_TAG_MASK)

#define DEFAULT_TIMEOUT (60LL * 1000000000LL)
#define DEFAULT_WINDOW 100
#define DEFAULT_BUCKETS 10
/* the default clock: the precise clock is read only this close to the end
 * of an open timeout (see the header) */
#define COARSE_MARGIN (20LL * 1000000LL)

#define STRIPES 8

enum kind { K_SUCCESS, K_FAILURE, K_EXCLUDED };

typedef weft_breaker_counts_t counts_t;

struct rolling { /* gobreaker v2's rollingCounts */
	counts_t c;
	uint64_t age;
	uint32_t nb;
	counts_t *b;
};

struct tbucket {
	uint32_t calls, fails, slow;
};

struct event {
	int from, to;
};

struct stripe {
	WEFT__ALIGNED uint64_t n;
};

struct weft_breaker {
	/* read by every call; written on transitions and fast counts */
	WEFT__ALIGNED uint64_t word;
	uint64_t gen;        /* the full generation (tag in word) */
	int64_t open_until;  /* ST == OPEN: rejected while the clock is not past it */

	/* settings, read-only after create */
	WEFT__ALIGNED char *name;
	uint32_t max_requests;
	int64_t interval, bucket_period, timeout;
	bool (*ready_to_trip)(const counts_t *c, void *user);
	void (*on_state_change)(const char *name, int from, int to, void *user);
	bool (*is_successful)(int rc, void *user);
	bool (*is_excluded)(int rc, void *user);
	void *user;
	int64_t (*clock)(void *user);
	double failure_rate, slow_rate, ho_rate, mult, jitter;
	int64_t slow_ns, backoff_max, win_time;
	uint32_t win_calls, win_nb, min_calls;
	bool fast_ok;    /* FAST whenever closed and not disabled */
	bool rates;      /* a rate is set: the window is kept */

	struct stripe rejected_open[STRIPES];

	/* under lock */
	WEFT__ALIGNED weft__mutex_t lock;
	int state, mode;
	uint64_t gen_l;    /* == gen */
	int64_t start;     /* generation start (ages, since) */
	int64_t since;     /* state entered */
	int64_t expiry;
	bool has_expiry;
	struct rolling rc; /* the counts (FAST: base, plus word's deltas) */
	uint32_t level;    /* backoff: openings since the last close */
	int64_t open_timeout;
	uint64_t rng;
	uint64_t opened, rejected_half, slow_calls;
	uint32_t ho_good, ho_bad; /* half-open with a success rate */
	/* the rates' window: a ring of outcomes (count-based) or buckets */
	uint8_t *ring;     /* bit 0 failure, bit 1 slow */
	struct tbucket *tb;
	uint32_t ring_pos, win_n, win_fails, win_slow;
	int64_t tb_origin, tb_width, tb_head;
	/* pending on_state_change events */
	struct event *ev;
	uint32_t ev_head, ev_tail, ev_cap;
	uint64_t ev_lost;

	weft__mutex_t cb_lock; /* held while delivering events */
	uint64_t cb_owner;     /* caller_id() of cb_lock's holder, or 0 */
};

/* Who is calling: the running weft task, or this thread. A task may
 * resume on another carrier after any park (inside a callback too), so it
 * is the task, not the thread, that holds a delivery. */
static _Thread_local char tl_me;

static uint64_t caller_id(void)
{
	weft__task_t *t = weft__task_self();
	return t ? (uint64_t)(uintptr_t)t : (uint64_t)(uintptr_t)&tl_me;
}
static _Thread_local unsigned tl_stripe = UINT_MAX;
static uint32_t stripe_next;

/* ---- small helpers ---- */

static int64_t now_of(const struct weft_breaker *b)
{
	return b->clock ? b->clock(b->user) : weft_now();
}

static int64_t sat_add(int64_t a, int64_t d)
{
	if (d > 0 && a > INT64_MAX - d)
		return INT64_MAX;
	return a + d;
}

/* b - a for a <= b, without overflow (clocks and tickets are the
 * caller's: any int64 values) */
static uint64_t span(int64_t a, int64_t b)
{
	return (uint64_t)b - (uint64_t)a;
}

static unsigned my_stripe(void)
{
	if (tl_stripe == UINT_MAX) /* once per thread; atomicity only */
		tl_stripe = weft__faa32(&stripe_next, 1) % STRIPES;
	return tl_stripe;
}

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64 */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* ---- counts (gobreaker's Counts and rollingCounts) ---- */

static void c_success(counts_t *c)
{
	c->total_successes++;
	c->consecutive_successes++;
	c->consecutive_failures = 0;
}

static void c_failure(counts_t *c)
{
	c->total_failures++;
	c->consecutive_failures++;
	c->consecutive_successes = 0;
}

static uint32_t c_valid(const counts_t *c)
{
	return c->requests < c->total_exclusions ? 0 : c->requests - c->total_exclusions;
}

static void r_clear(struct rolling *r)
{
	memset(&r->c, 0, sizeof r->c);
	r->age = 0;
	memset(r->b, 0, r->nb * sizeof *r->b);
}

static counts_t *r_bucket(struct rolling *r, uint64_t age)
{
	return &r->b[age % r->nb];
}

static void r_request(struct rolling *r)
{
	r->c.requests++;
	r_bucket(r, r->age)->requests++;
}

/* a result of a call admitted at `age`: counted if its bucket is still in
 * the window */
static void r_result(struct rolling *r, uint64_t age, enum kind k)
{
	if (age > r->age || r->age - age >= r->nb)
		return;
	counts_t *bk = r_bucket(r, age);
	if (k == K_SUCCESS) {
		c_success(&r->c);
		c_success(bk);
	} else if (k == K_FAILURE) {
		c_failure(&r->c);
		c_failure(bk);
	} else {
		r->c.total_exclusions++;
		bk->total_exclusions++;
	}
}

static uint32_t sub_floor(uint32_t a, uint32_t b)
{
	return a > b ? a - b : 0;
}

/* drop the oldest bucket from the totals (gobreaker's subtract: a
 * consecutive run is shortened only if it spans every bucket from the
 * oldest on) */
static void r_subtract(struct rolling *r, uint64_t oldest)
{
	counts_t *o = &r->b[oldest % r->nb];
	uint32_t s = o->consecutive_successes, f = o->consecutive_failures;
	for (uint32_t i = 1; i < r->nb; i++) {
		const counts_t *k = &r->b[(oldest + i) % r->nb];
		s += k->total_successes;
		f += k->total_failures;
	}
	if (r->c.consecutive_successes == s)
		r->c.consecutive_successes = sub_floor(r->c.consecutive_successes, o->consecutive_successes);
	if (r->c.consecutive_failures == f)
		r->c.consecutive_failures = sub_floor(r->c.consecutive_failures, o->consecutive_failures);
	r->c.requests = sub_floor(r->c.requests, o->requests);
	r->c.total_successes = sub_floor(r->c.total_successes, o->total_successes);
	r->c.total_failures = sub_floor(r->c.total_failures, o->total_failures);
	r->c.total_exclusions = sub_floor(r->c.total_exclusions, o->total_exclusions);
}

static void r_grow(struct rolling *r, uint64_t age)
{
	if (age <= r->age)
		return;
	if (age - r->age >= r->nb) {
		r_clear(r);
		r->age = age;
		return;
	}
	while (r->age < age) {
		r->age++;
		r_subtract(r, r->age);
		memset(r_bucket(r, r->age), 0, sizeof(counts_t));
	}
}

/* ---- the fast word's deltas ---- */

/* c + the deltas of word w (a success streak continues c's or starts) */
static void add_deltas(counts_t *c, uint64_t w)
{
	uint32_t s = W_FIELD(w, W_SUCC_SHIFT);
	c->requests += W_FIELD(w, W_REQ_SHIFT);
	c->total_exclusions += W_FIELD(w, W_EXCL_SHIFT);
	if (s) {
		/* at most one of the two runs is nonzero in c */
		c->total_successes += s;
		c->consecutive_successes += s;
		c->consecutive_failures = 0;
	}
}

/* under lock, FAST: move the word's deltas into the base counts */
static void fold(struct weft_breaker *b)
{
	uint64_t w = weft__ld64_rlx(&b->word); /* relaxed: the CAS re-checks it */
	while (w & W_DELTAS) {
		/* full RMW: takes exactly the deltas it clears; lock-free
		 * CASes that land first are in w when this one succeeds */
		if (weft__cas64(&b->word, &w, w & ~W_DELTAS)) {
			add_deltas(&b->rc.c, w);
			break;
		}
	}
}

static void snapshot(struct weft_breaker *b, counts_t *out)
{
	*out = b->rc.c;
	/* relaxed: the deltas at one instant; base only changes under the
	 * lock, which the caller holds (fold takes deltas and adds them to
	 * base in one step) */
	uint64_t w = weft__ld64_rlx(&b->word);
	if (w & W_FAST)
		add_deltas(out, w);
}

/* ---- the rates' window ---- */

static void win_reset(struct weft_breaker *b, int64_t now)
{
	b->win_n = b->win_fails = b->win_slow = 0;
	b->ring_pos = 0;
	if (b->ring)
		memset(b->ring, 0, b->win_calls);
	if (b->tb) {
		memset(b->tb, 0, b->win_nb * sizeof *b->tb);
		b->tb_origin = now;
		b->tb_head = 0;
	}
}

/* time-based: drop the buckets that fell out of the window at `now` */
static void win_advance(struct weft_breaker *b, int64_t now)
{
	if (!b->tb || now < b->tb_origin)
		return;
	uint64_t q = span(b->tb_origin, now) / (uint64_t)b->tb_width;
	/* the bucket index saturates one short of INT64_MAX, so i++ below
	 * cannot overflow (fuzz_opts: an injected clock jumping across the
	 * int64 range with 1 ns buckets made e INT64_MAX, and the loop's i
	 * wrapped to a negative bucket index; spans past INT64_MAX turned
	 * negative and the window was never aged) */
	int64_t e = q >= (uint64_t)INT64_MAX ? INT64_MAX - 1 : (int64_t)q;
	if (e <= b->tb_head)
		return;
	int64_t from = b->tb_head + 1;
	if (e - from >= (int64_t)b->win_nb)
		from = e - (int64_t)b->win_nb + 1;
	for (int64_t i = from; i <= e; i++) {
		struct tbucket *k = &b->tb[i % b->win_nb];
		b->win_n -= k->calls;
		b->win_fails -= k->fails;
		b->win_slow -= k->slow;
		*k = (struct tbucket){ 0 };
	}
	b->tb_head = e;
}

static void win_record(struct weft_breaker *b, bool fail, bool slow, int64_t now)
{
	if (b->ring) {
		uint8_t *o = &b->ring[b->ring_pos];
		if (b->win_n == b->win_calls) {
			b->win_fails -= *o & 1;
			b->win_slow -= (*o >> 1) & 1;
		} else {
			b->win_n++;
		}
		*o = (uint8_t)((fail ? 1 : 0) | (slow ? 2 : 0));
		b->win_fails += fail;
		b->win_slow += slow;
		b->ring_pos = (b->ring_pos + 1) % b->win_calls;
	} else if (b->tb) {
		win_advance(b, now);
		struct tbucket *k = &b->tb[b->tb_head % b->win_nb];
		k->calls++;
		k->fails += fail;
		k->slow += slow;
		b->win_n++;
		b->win_fails += fail;
		b->win_slow += slow;
	}
}

static bool win_trips(const struct weft_breaker *b)
{
	if (!b->rates || b->win_n == 0 || b->win_n < b->min_calls)
		return false;
	double n = b->win_n;
	return (b->failure_rate > 0 && b->win_fails / n >= b->failure_rate) ||
	       (b->slow_rate > 0 && b->win_slow / n >= b->slow_rate);
}

/* ---- events ---- */

#define EV_PREALLOC 8 /* events queued without allocating (see create) */

static void ev_push(struct weft_breaker *b, int from, int to)
{
	if (!b->on_state_change)
		return;
	if (b->ev_tail == b->ev_cap) {
		if (b->ev_head > 0) {
			memmove(b->ev, b->ev + b->ev_head, (b->ev_tail - b->ev_head) * sizeof *b->ev);
			b->ev_tail -= b->ev_head;
			b->ev_head = 0;
		} else {
			uint32_t cap = b->ev_cap ? 2 * b->ev_cap : EV_PREALLOC;
			struct event *e = weft__sys_realloc(b->ev, cap * sizeof *e);
			if (!e) {
				/* the transition stands; its callback is lost,
				 * counted (stats: callbacks_lost) */
				b->ev_lost++;
				return;
			}
			b->ev = e;
			b->ev_cap = cap;
		}
	}
	b->ev[b->ev_tail++] = (struct event){ from, to };
}

static void unlock_and_deliver(struct weft_breaker *b)
{
	bool pending = b->ev_tail != b->ev_head;
	uint64_t me = caller_id();
	weft__mutex_unlock(&b->lock);
	/* relaxed: only this caller ever stores its own id there, so seeing
	 * it means this call comes from inside one of b's callbacks (maybe
	 * through another breaker's): the outer delivery loop will deliver */
	if (!pending || weft__ld64_rlx(&b->cb_owner) == me)
		return;
	weft__mutex_lock(&b->cb_lock);
	weft__st64_rlx(&b->cb_owner, me); /* relaxed: see above */
	for (;;) {
		weft__mutex_lock(&b->lock);
		if (b->ev_head == b->ev_tail) {
			b->ev_head = b->ev_tail = 0;
			weft__mutex_unlock(&b->lock);
			break;
		}
		struct event e = b->ev[b->ev_head++];
		weft__mutex_unlock(&b->lock);
		b->on_state_change(b->name, e.from, e.to, b->user);
	}
	weft__st64_rlx(&b->cb_owner, 0);
	weft__mutex_unlock(&b->cb_lock);
}

/* ---- the state machine (under lock) ---- */

static bool fast_now(const struct weft_breaker *b)
{
	return b->fast_ok && b->state == WEFT_BREAKER_CLOSED && b->mode != WEFT_BREAKER_DISABLED;
}

static void publish(struct weft_breaker *b)
{
	int st = b->mode == WEFT_BREAKER_DISABLED ? ST_DISABLED : b->state;
	uint64_t w = ((uint64_t)st << W_ST_SHIFT) | TAG_OF(b->gen_l);
	if (fast_now(b))
		w |= W_FAST;
	/* relaxed, both: published by the release store of word below */
	weft__st64_rlx(&b->gen, b->gen_l);
	weft__st64_rlx((uint64_t *)&b->open_until,
		       (uint64_t)(b->state == WEFT_BREAKER_OPEN ? b->expiry : 0));
	/* release: gen and open_until before the word that names them; pairs
	 * with the acquire loads of word in the lock-free paths. A fast CAS
	 * on the old word that lands before this store counted in the
	 * generation that ends here (folded away, see fold's callers). */
	weft__st64_rel(&b->word, w);
}

static int64_t next_open_timeout(struct weft_breaker *b)
{
	int64_t d = b->timeout;
	if (b->mult > 1) {
		double x = (double)b->timeout;
		for (uint32_t i = 0; i < b->level && x < 9.2e18; i++)
			x *= b->mult;
		d = x >= 9.2e18 ? INT64_MAX : (int64_t)x;
	}
	if (b->backoff_max > 0 && d > b->backoff_max)
		d = b->backoff_max;
	if (b->jitter > 0) {
		double u = (double)(rng_next(&b->rng) >> 11) / 9007199254740992.0; /* [0, 1) */
		d -= (int64_t)((double)d * b->jitter * u);
	}
	return d > 0 ? d : 1;
}

/* the next opening's timeout once closed (before jitter) */
static int64_t first_timeout(const struct weft_breaker *b)
{
	return b->backoff_max > 0 && b->timeout > b->backoff_max ? b->backoff_max : b->timeout;
}

static void new_generation(struct weft_breaker *b, int64_t now)
{
	/* relaxed: FAST only changes under the lock we hold */
	if (weft__ld64_rlx(&b->word) & W_FAST)
		fold(b); /* the deltas go with the counts being cleared */
	b->gen_l++;
	b->start = now;
	r_clear(&b->rc);
	b->ho_good = b->ho_bad = 0;
	b->has_expiry = false;
	switch (b->state) {
	case WEFT_BREAKER_CLOSED:
		if (b->interval > 0 && b->rc.nb < 2) {
			b->expiry = sat_add(now, b->interval);
			b->has_expiry = true;
		}
		break;
	case WEFT_BREAKER_OPEN:
		b->expiry = b->mode == WEFT_BREAKER_FORCED_OPEN ? INT64_MAX
								: sat_add(now, b->open_timeout);
		b->has_expiry = true;
		break;
	default:
		break;
	}
	publish(b);
}

static void set_state(struct weft_breaker *b, int to, int64_t now)
{
	int from = b->state;
	if (from == to)
		return;
	b->state = to;
	b->since = now;
	if (to == WEFT_BREAKER_OPEN) {
		b->opened++;
		if (b->mode != WEFT_BREAKER_FORCED_OPEN) {
			b->open_timeout = next_open_timeout(b);
			b->level++;
		}
	} else if (to == WEFT_BREAKER_CLOSED) {
		b->level = 0;
		b->open_timeout = first_timeout(b);
	}
	new_generation(b, now);
	win_reset(b, now); /* the rates' window starts afresh in each state */
	ev_push(b, from, to);
}

static uint64_t age_at(const struct weft_breaker *b, int64_t now)
{
	if (b->bucket_period <= 0 || now <= b->start)
		return 0;
	return span(b->start, now) / (uint64_t)b->bucket_period;
}

/* gobreaker's currentState: the due transitions */
static void current_state(struct weft_breaker *b, int64_t now)
{
	switch (b->state) {
	case WEFT_BREAKER_CLOSED:
		if (b->has_expiry && b->expiry < now)
			new_generation(b, now); /* interval reset: no state change */
		else if (b->rc.nb >= 2)
			r_grow(&b->rc, age_at(b, now));
		break;
	case WEFT_BREAKER_OPEN:
		if (b->mode != WEFT_BREAKER_FORCED_OPEN && b->expiry < now)
			set_state(b, WEFT_BREAKER_HALF_OPEN, now);
		break;
	default:
		break;
	}
}

static bool trips(struct weft_breaker *b, bool failed)
{
	if (b->mode != WEFT_BREAKER_NORMAL)
		return false;
	if (failed) {
		if (b->ready_to_trip) {
			if (b->ready_to_trip(&b->rc.c, b->user))
				return true;
		} else if (!b->rates && b->rc.c.consecutive_failures > 5) {
			return true;
		}
	}
	return win_trips(b);
}

/* half-open with a success rate: close / open once certain */
static void half_open_judge(struct weft_breaker *b, int64_t now)
{
	uint32_t n = b->max_requests;
	double want = b->ho_rate * n - 1e-9; /* successes needed: ceil(want) */
	uint32_t need = (uint32_t)want;
	if (need < want)
		need++;
	if (need < 1)
		need = 1;
	if (b->ho_good >= need)
		set_state(b, WEFT_BREAKER_CLOSED, now);
	else if (b->ho_bad > n - need)
		set_state(b, WEFT_BREAKER_OPEN, now);
}

static void on_result(struct weft_breaker *b, enum kind k, uint64_t age, bool slow, int64_t now)
{
	if (slow)
		b->slow_calls++;
	if (k == K_EXCLUDED) {
		r_result(&b->rc, age, k);
		return;
	}
	if (b->state == WEFT_BREAKER_CLOSED) {
		r_result(&b->rc, age, k);
		win_record(b, k == K_FAILURE, slow, now);
		if (trips(b, k == K_FAILURE))
			set_state(b, WEFT_BREAKER_OPEN, now);
	} else if (b->state == WEFT_BREAKER_HALF_OPEN) {
		r_result(&b->rc, age, k);
		bool bad = k == K_FAILURE || (slow && b->slow_rate > 0);
		if (b->ho_rate > 0) {
			if (bad)
				b->ho_bad++;
			else
				b->ho_good++;
			half_open_judge(b, now);
		} else if (bad) {
			set_state(b, WEFT_BREAKER_OPEN, now);
		} else if (b->rc.c.consecutive_successes >= b->max_requests) {
			set_state(b, WEFT_BREAKER_CLOSED, now);
		}
	}
}

/* ---- create / destroy ---- */

static bool bad_rate(double r)
{
	return !(r >= 0 && r <= 1); /* NaN too */
}

int weft_breaker_create(weft_breaker_t **out, const weft_breaker_settings_t *s)
{
	static const weft_breaker_settings_t zero;
	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!s)
		s = &zero;
	if (bad_rate(s->failure_rate) || bad_rate(s->slow_call_rate) ||
	    bad_rate(s->half_open_success_rate) || bad_rate(s->backoff_jitter) ||
	    !(s->backoff_multiplier >= 0) || s->backoff_max < 0 || s->slow_call_duration < 0 ||
	    s->window_time < 0 || s->window_calls > WEFT_BREAKER_MAX_WINDOW ||
	    s->window_buckets > WEFT_BREAKER_MAX_WINDOW ||
	    (s->slow_call_rate > 0 && s->slow_call_duration == 0))
		return -EINVAL;

	/* gobreaker's normalisation of interval and bucket_period */
	int64_t interval = 0, period = 0;
	uint64_t nb = 1;
	if (s->interval > 0 && s->bucket_period <= 0) {
		interval = period = s->interval;
	} else if (s->interval > 0) {
		uint64_t k = (uint64_t)(s->interval / s->bucket_period) +
			     (s->interval % s->bucket_period != 0);
		if (k > WEFT_BREAKER_MAX_WINDOW)
			return -EINVAL;
		nb = k;
		period = s->bucket_period;
		/* rounded up to whole buckets, saturating */
		interval = (uint64_t)period > INT64_MAX / k ? INT64_MAX : (int64_t)k * period;
	}

	struct weft_breaker *b = weft__sys_aligned_alloc(WEFT__PAD, sizeof *b);
	if (!b)
		return -ENOMEM;
	memset(b, 0, sizeof *b);
	b->name = weft__sys_strdup(s->name ? s->name : "");
	b->rc.nb = (uint32_t)nb;
	b->rc.b = weft__sys_calloc(nb, sizeof *b->rc.b);
	b->max_requests = s->max_requests ? s->max_requests : 1;
	b->interval = interval;
	b->bucket_period = period;
	b->timeout = s->timeout > 0 ? s->timeout : DEFAULT_TIMEOUT;
	b->ready_to_trip = s->ready_to_trip;
	b->on_state_change = s->on_state_change;
	b->is_successful = s->is_successful;
	b->is_excluded = s->is_excluded;
	b->user = s->user;
	b->clock = s->clock;
	b->failure_rate = s->failure_rate;
	b->slow_rate = s->slow_call_rate;
	b->ho_rate = s->half_open_success_rate;
	b->mult = s->backoff_multiplier;
	b->jitter = s->backoff_jitter;
	b->slow_ns = s->slow_call_duration;
	b->backoff_max = s->backoff_max;
	b->rates = b->failure_rate > 0 || b->slow_rate > 0;
	if (b->rates) {
		if (s->window_time > 0) {
			b->win_time = s->window_time;
			b->win_nb = s->window_buckets ? s->window_buckets : DEFAULT_BUCKETS;
			b->tb_width = b->win_time / b->win_nb > 0 ? b->win_time / b->win_nb : 1;
			b->tb = weft__sys_calloc(b->win_nb, sizeof *b->tb);
		} else {
			b->win_calls = s->window_calls ? s->window_calls : DEFAULT_WINDOW;
			b->ring = weft__sys_calloc(b->win_calls, 1);
		}
		b->min_calls = s->min_calls ? s->min_calls : DEFAULT_WINDOW;
		if (b->win_calls && b->min_calls > b->win_calls)
			b->min_calls = b->win_calls;
	}
	/* room for EV_PREALLOC pending events from the start: a transition
	 * cannot fail, so with no memory at its first event the callback
	 * was lost (ev_lost). Now only a backlog beyond that (transitions
	 * piling up while a callback runs) needs memory then. */
	if (b->on_state_change) {
		b->ev = weft__sys_calloc(EV_PREALLOC, sizeof *b->ev);
		b->ev_cap = b->ev ? EV_PREALLOC : 0;
	}
	b->fast_ok = interval == 0 && !b->rates && b->slow_ns == 0;
	int64_t now = now_of(b);
	b->rng = s->seed ? s->seed : (uint64_t)now ^ (uint64_t)(uintptr_t)b;
	if (!b->name || !b->rc.b || (b->rates && !b->ring && !b->tb) ||
	    (b->on_state_change && !b->ev)) {
		weft_breaker_destroy(b);
		return -ENOMEM;
	}
	b->state = WEFT_BREAKER_CLOSED;
	b->since = now;
	b->open_timeout = first_timeout(b);
	win_reset(b, now);
	new_generation(b, now); /* generation 1, as gobreaker's first */
	*out = b;
	return 0;
}

void weft_breaker_destroy(weft_breaker_t *b)
{
	if (!b)
		return;
	free(b->name);
	free(b->rc.b);
	free(b->ring);
	free(b->tb);
	free(b->ev);
	free(b);
}

/* ---- calls ---- */

/* the default clock is not past `until` (checked cheaply when far) */
static bool before(const struct weft_breaker *b, int64_t until)
{
	if (until == INT64_MAX)
		return true;
	if (!b->clock) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		/* the coarse clock is at most a few ticks behind the precise
		 * one, never ahead */
		int64_t coarse = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
		if (coarse < until - COARSE_MARGIN)
			return true;
	}
	return now_of(b) <= until;
}

static void count_rejected(struct weft_breaker *b)
{
	/* relaxed: a statistic, summed by stats() */
	weft__faa64(&b->rejected_open[my_stripe()].n, 1);
}

/* the locked paths are out of line: the lock-free ones stay small (no
 * registers to save, no frame) */
static __attribute__((noinline)) int allow_slow(struct weft_breaker *b, weft_breaker_ticket_t *t)
{
	int64_t now = now_of(b);
	int rc = 0;
	weft__mutex_lock(&b->lock);
	current_state(b, now);
	if (b->mode == WEFT_BREAKER_DISABLED) {
		/* nothing counted; done ignores it */
	} else if (b->state == WEFT_BREAKER_OPEN) {
		count_rejected(b);
		rc = -EBUSY;
	} else if (b->state == WEFT_BREAKER_HALF_OPEN && c_valid(&b->rc.c) >= b->max_requests) {
		b->rejected_half++;
		rc = -EAGAIN;
	} else {
		if (weft__ld64_rlx(&b->word) & W_FAST) /* relaxed: as in new_generation */
			fold(b);
		r_request(&b->rc);
	}
	t->generation = rc == 0 && b->mode != WEFT_BREAKER_DISABLED ? b->gen_l : UNCOUNTED;
	t->age = b->rc.age;
	t->start = b->slow_ns ? now : 0;
	unlock_and_deliver(b);
	return rc;
}

int weft_breaker_allow(weft_breaker_t *b, weft_breaker_ticket_t *t)
{
	if (!b || !t)
		return -EINVAL;
	/* acquire: gen and open_until as new as this word (publish) */
	uint64_t w = weft__ld64_acq(&b->word);
	for (;;) {
		if (w & W_FAST) {
			/* relaxed: after the acquire of word, so at least
			 * its generation; a newer one differs in TAG */
			uint64_t g = weft__ld64_rlx(&b->gen);
			if (TAG_OF(g) != (w & W_TAG_MASK) || W_FIELD(w, W_REQ_SHIFT) == W_FIELD_MAX)
				break;
			/* full RMW: admitted and counted in the generation
			 * of w, or w changed (retry) */
			if (weft__cas64(&b->word, &w, w + ((uint64_t)1 << W_REQ_SHIFT))) {
				*t = (weft_breaker_ticket_t){ g, 0, 0 };
				return 0;
			}
			continue;
		}
		/* relaxed loads of gen and open_until below: after the
		 * acquire of word (see publish) */
		if ((w & W_ST_MASK) == ((uint64_t)ST_DISABLED << W_ST_SHIFT)) {
			*t = (weft_breaker_ticket_t){ UNCOUNTED, 0, 0 };
			return 0; /* nothing counted; done ignores it */
		}
		if ((w & W_ST_MASK) == ((uint64_t)WEFT_BREAKER_OPEN << W_ST_SHIFT) &&
		    before(b, (int64_t)weft__ld64_rlx((uint64_t *)&b->open_until))) {
			count_rejected(b);
			*t = (weft_breaker_ticket_t){ UNCOUNTED, 0, 0 };
			return -EBUSY;
		}
		break;
	}
	return allow_slow(b, t);
}

static enum kind judge(const struct weft_breaker *b, int rc)
{
	if (b->is_excluded && b->is_excluded(rc, b->user))
		return K_EXCLUDED;
	bool ok = b->is_successful ? b->is_successful(rc, b->user) : rc == 0;
	return ok ? K_SUCCESS : K_FAILURE;
}

static __attribute__((noinline)) int done_slow(struct weft_breaker *b,
						      const weft_breaker_ticket_t *t, enum kind k)
{
	int64_t now = now_of(b);
	weft__mutex_lock(&b->lock);
	current_state(b, now);
	if (t->generation == b->gen_l && b->mode != WEFT_BREAKER_DISABLED) {
		bool slow = b->slow_ns > 0 && now > t->start &&
			    span(t->start, now) > (uint64_t)b->slow_ns;
		if (weft__ld64_rlx(&b->word) & W_FAST) /* relaxed: as in new_generation */
			fold(b);
		on_result(b, k, t->age, slow, now);
	}
	unlock_and_deliver(b);
	return 0;
}

int weft_breaker_done(weft_breaker_t *b, const weft_breaker_ticket_t *t, int rc)
{
	if (!b || !t)
		return -EINVAL;
	enum kind k = judge(b, rc); /* the user's callbacks: no lock held */
	/* relaxed: the CAS below checks the word again; gen is checked
	 * against the ticket, then the CAS's TAG check makes it exact */
	uint64_t w = weft__ld64_rlx(&b->word);
	if ((w & W_ST_MASK) == ((uint64_t)ST_DISABLED << W_ST_SHIFT))
		return 0;
	if (k != K_FAILURE && t->generation == weft__ld64_rlx(&b->gen)) {
		unsigned sh = k == K_SUCCESS ? W_SUCC_SHIFT : W_EXCL_SHIFT;
		/* full RMW: counted only if still FAST in the ticket's
		 * generation (TAG); otherwise the locked path decides */
		while ((w & W_FAST) && (w & W_TAG_MASK) == TAG_OF(t->generation) &&
		       W_FIELD(w, sh) != W_FIELD_MAX)
			if (weft__cas64(&b->word, &w, w + ((uint64_t)1 << sh)))
				return 0;
	}
	return done_slow(b, t, k);
}

int weft_breaker_execute(weft_breaker_t *b, int (*fn)(void *arg), void *arg, int *rc)
{
	weft_breaker_ticket_t t;
	if (!b || !fn)
		return -EINVAL;
	int e = weft_breaker_allow(b, &t);
	if (e)
		return e;
	int r = fn(arg);
	if (rc)
		*rc = r;
	return weft_breaker_done(b, &t, r);
}

int weft_breaker_state(weft_breaker_t *b)
{
	if (!b)
		return -EINVAL;
	/* acquire: pairs with publish, as in allow */
	uint64_t w = weft__ld64_acq(&b->word);
	if (w & W_FAST)
		return WEFT_BREAKER_CLOSED; /* nothing falls due while FAST */
	int64_t now = now_of(b);
	weft__mutex_lock(&b->lock);
	current_state(b, now);
	int s = b->state;
	unlock_and_deliver(b);
	return s;
}

int weft_breaker_counts(weft_breaker_t *b, weft_breaker_counts_t *out)
{
	if (!b || !out)
		return -EINVAL;
	weft__mutex_lock(&b->lock);
	snapshot(b, out);
	weft__mutex_unlock(&b->lock);
	return 0;
}

const char *weft_breaker_name(const weft_breaker_t *b)
{
	return b ? b->name : "";
}

const char *weft_breaker_state_name(int state)
{
	switch (state) {
	case WEFT_BREAKER_CLOSED:
		return "closed";
	case WEFT_BREAKER_HALF_OPEN:
		return "half-open";
	case WEFT_BREAKER_OPEN:
		return "open";
	default:
		return "unknown";
	}
}

/* ---- manual control ---- */

static int set_mode(weft_breaker_t *b, int mode, int state)
{
	if (!b)
		return -EINVAL;
	int64_t now = now_of(b);
	weft__mutex_lock(&b->lock);
	int was = b->mode;
	b->mode = mode;
	if (state == WEFT_BREAKER_CLOSED && mode == WEFT_BREAKER_NORMAL) {
		/* reset: a new generation even when closed already */
		b->level = 0;
		if (b->state == WEFT_BREAKER_CLOSED) {
			new_generation(b, now);
			win_reset(b, now);
		} else {
			set_state(b, WEFT_BREAKER_CLOSED, now);
		}
	} else if (b->state != state) {
		set_state(b, state, now);
	} else if (was != mode) {
		/* same state, new rules: counts start afresh */
		new_generation(b, now);
		win_reset(b, now);
	}
	unlock_and_deliver(b);
	return 0;
}

int weft_breaker_force_open(weft_breaker_t *b)
{
	return set_mode(b, WEFT_BREAKER_FORCED_OPEN, WEFT_BREAKER_OPEN);
}

int weft_breaker_force_closed(weft_breaker_t *b)
{
	return set_mode(b, WEFT_BREAKER_FORCED_CLOSED, WEFT_BREAKER_CLOSED);
}

int weft_breaker_disable(weft_breaker_t *b)
{
	return set_mode(b, WEFT_BREAKER_DISABLED, WEFT_BREAKER_CLOSED);
}

int weft_breaker_reset(weft_breaker_t *b)
{
	return set_mode(b, WEFT_BREAKER_NORMAL, WEFT_BREAKER_CLOSED);
}

int weft_breaker_stats(weft_breaker_t *b, weft_breaker_stats_t *out)
{
	if (!b || !out)
		return -EINVAL;
	int64_t now = now_of(b);
	memset(out, 0, sizeof *out);
	weft__mutex_lock(&b->lock);
	current_state(b, now);
	win_advance(b, now);
	out->state = b->state;
	out->mode = b->mode;
	out->generation = b->gen_l;
	out->since = b->since;
	uint64_t in_state = now > b->since ? span(b->since, now) : 0;
	out->time_in_state = in_state > INT64_MAX ? INT64_MAX : (int64_t)in_state;
	out->open_until = b->state == WEFT_BREAKER_OPEN ? b->expiry : 0;
	out->open_timeout = b->open_timeout;
	out->backoff_level = b->level;
	out->opened = b->opened;
	out->rejected_half_open = b->rejected_half;
	out->slow_calls = b->slow_calls;
	snapshot(b, &out->counts);
	out->window_results = b->win_n;
	out->window_failures = b->win_fails;
	out->window_slow = b->win_slow;
	out->callbacks_lost = b->ev_lost;
	unlock_and_deliver(b);
	for (int i = 0; i < STRIPES; i++) /* relaxed: a statistic */
		out->rejected_open += weft__ld64_rlx(&b->rejected_open[i].n);
	out->rejected = out->rejected_open + out->rejected_half_open;
	return 0;
}
