/* tests/stress/stress_breaker.c: the circuit breaker under races.
 *
 * Sub-tests:
 *   probes   round after round, a tripped breaker's timeout passes and 4
 *            threads race to call it at once: exactly max_requests calls
 *            are admitted (one of the racers makes the lazy open ->
 *            half-open transition), the rest get -EAGAIN; the probes'
 *            results close it. Half the rounds the probes report
 *            excluded first (their slots free up, exactly max_requests
 *            more are admitted). on_state_change: closed -> open ->
 *            half-open -> closed once per round, in order, never two at
 *            once.
 *   counts   4 threads run successes, exclusions, failures (ready_to_trip
 *            never trips) and two-step calls on the lock-free closed path
 *            and on a breaker with an interval (the locked path): the
 *            counts are exact at the end.
 *   churn    4 threads call while a fifth forces the breaker open, closed,
 *            resets and disables it: every call returns 0 or -EBUSY,
 *            callbacks form one chain (each from is the previous to) and
 *            never overlap; the counts never hold more results than
 *            requests (a result of an ended generation never lands in the
 *            next); after the last reset, quiescent calls count exactly.
 *
 * Usage: stress_breaker [size]. size (default 1, may be fractional)
 * multiplies the rounds and calls; sanitizer builds divide them by 10.
 * WEFT_STRESS_SEED=<n> in the environment seeds every random stream from n
 * (tests/common/stress.h). The last line, "stress_breaker: items moved N
 * lost 0", counts calls whose outcome was checked: the racing probes'
 * allows (exactly max_requests admitted), the counted calls (exact
 * counts) and the churners' calls plus the 5 quiescent ones.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <weft/breaker.h>

#include "stress.h"

#define THREADS 4
#define SEC 1000000000LL
#define ERR_FAILED (-5)
#define ERR_EXCLUDED (-125)

/* ---- the fake clock and the callback checker ---- */

struct world {
	_Atomic int64_t now;
	_Atomic int in_cb;   /* callbacks running: never above 1 */
	_Atomic int last_to; /* the previous callback's `to` */
	_Atomic uint64_t changes;
	_Atomic uint64_t to_open, to_half, to_closed;
};

static int64_t world_clock(void *user)
{
	return atomic_load(&((struct world *)user)->now);
}

static void world_change(const char *name, int from, int to, void *user)
{
	struct world *w = user;
	(void)name;
	if (atomic_fetch_add(&w->in_cb, 1) != 0)
		fail("two on_state_change callbacks at once");
	if (atomic_load(&w->last_to) != from)
		fail("callback chain broken: %d -> %d after a change to %d", from, to,
		     atomic_load(&w->last_to));
	atomic_store(&w->last_to, to);
	atomic_fetch_add(&w->changes, 1);
	atomic_fetch_add(to == WEFT_BREAKER_OPEN	 ? &w->to_open
			 : to == WEFT_BREAKER_HALF_OPEN ? &w->to_half
							  : &w->to_closed,
			 1);
	atomic_fetch_sub(&w->in_cb, 1);
}

static bool excluded(int rc, void *user)
{
	(void)user;
	return rc == ERR_EXCLUDED;
}

static bool never_trip(const weft_breaker_counts_t *c, void *user)
{
	(void)c;
	(void)user;
	return false;
}

static int fn_ok(void *a)
{
	(void)a;
	return 0;
}

static int fn_rc(void *a)
{
	return (int)(intptr_t)a;
}

/* ---- probes ---- */

struct racer {
	weft_breaker_t *b;
	pthread_barrier_t *go;
	uint64_t rounds;
	_Atomic int *admitted;
	weft_breaker_ticket_t t;
	int rc;
};

static void *racer_main(void *arg)
{
	struct racer *r = arg;
	for (uint64_t i = 0; i < r->rounds; i++) {
		pthread_barrier_wait(r->go); /* the timeout has passed */
		r->rc = weft_breaker_allow(r->b, &r->t);
		if (r->rc == 0)
			atomic_fetch_add(r->admitted, 1);
		else if (r->rc != -EAGAIN)
			fail("half-open race: allow gave %d", r->rc);
		pthread_barrier_wait(r->go); /* main checks */
		pthread_barrier_wait(r->go); /* main lets the admitted report */
	}
	return NULL;
}

static void probes(void)
{
	enum { MAX_REQ = 2 };
	struct world w = { .now = 0 };
	weft_breaker_settings_t s = { .max_requests = MAX_REQ, .timeout = SEC,
				      .on_state_change = world_change, .is_excluded = excluded,
				      .clock = world_clock, .user = &w };
	weft_breaker_t *b;
	pthread_barrier_t go;
	pthread_t t[THREADS];
	struct racer r[THREADS];
	_Atomic int admitted = 0;
	uint64_t rounds = scaled(4000, 50);

	arm(120);
	snprintf(g_ctx, sizeof g_ctx, "probes");
	CHECK_EQ(weft_breaker_create(&b, &s), 0);
	pthread_barrier_init(&go, NULL, THREADS + 1);
	for (int i = 0; i < THREADS; i++) {
		r[i] = (struct racer){ .b = b, .go = &go, .rounds = rounds, .admitted = &admitted };
		spawn(&t[i], racer_main, &r[i]);
	}
	for (uint64_t i = 0; i < rounds; i++) {
		for (int k = 0; k < 6; k++)
			CHECK_EQ(weft_breaker_execute(b, fn_rc, (void *)(intptr_t)ERR_FAILED, NULL), 0);
		CHECK_EQ(weft_breaker_state(b), WEFT_BREAKER_OPEN);
		atomic_fetch_add(&w.now, SEC + 1);
		atomic_store(&admitted, 0);
		pthread_barrier_wait(&go);
		pthread_barrier_wait(&go);
		if (atomic_load(&admitted) != MAX_REQ)
			fail("round %llu: %d calls admitted in half-open, max_requests %d",
			     (unsigned long long)i, atomic_load(&admitted), MAX_REQ);
		if (weft_breaker_state(b) != WEFT_BREAKER_HALF_OPEN)
			fail("round %llu: not half-open with probes out", (unsigned long long)i);
		if (i % 2) {
			/* the probes report excluded: their slots are free again */
			for (int k = 0; k < THREADS; k++)
				if (r[k].rc == 0)
					CHECK_EQ(weft_breaker_done(b, &r[k].t, ERR_EXCLUDED), 0);
			weft_breaker_ticket_t more[THREADS];
			int n = 0;
			while (n < THREADS && weft_breaker_allow(b, &more[n]) == 0)
				n++;
			CHECK_EQ(n, MAX_REQ);
			for (int k = 0; k < n; k++)
				CHECK_EQ(weft_breaker_done(b, &more[k], 0), 0);
		} else {
			for (int k = 0; k < THREADS; k++)
				if (r[k].rc == 0)
					CHECK_EQ(weft_breaker_done(b, &r[k].t, 0), 0);
		}
		if (weft_breaker_state(b) != WEFT_BREAKER_CLOSED)
			fail("round %llu: the probes' successes did not close it",
			     (unsigned long long)i);
		pthread_barrier_wait(&go);
	}
	for (int i = 0; i < THREADS; i++)
		join(t[i]);
	CHECK_EQ(atomic_load(&w.to_open), rounds);
	CHECK_EQ(atomic_load(&w.to_half), rounds);
	CHECK_EQ(atomic_load(&w.to_closed), rounds);
	stress_moved(rounds * THREADS);
	pthread_barrier_destroy(&go);
	weft_breaker_destroy(b);
	printf("stress_breaker probes: %llu rounds, %d threads racing, %d admitted each\n",
		(unsigned long long)rounds, THREADS, MAX_REQ);
}

/* ---- counts ---- */

struct counter {
	weft_breaker_t *b;
	uint64_t calls, seed;
	uint64_t req, succ, fail, excl;
};

static void *counter_main(void *arg)
{
	struct counter *c = arg;
	for (uint64_t i = 0; i < c->calls; i++) {
		uint64_t x = rnd(&c->seed) % 8;
		int rc = x < 4 ? 0 : x < 6 ? ERR_EXCLUDED : ERR_FAILED;
		if (x % 2) {
			weft_breaker_ticket_t t;
			CHECK_EQ(weft_breaker_allow(c->b, &t), 0);
			CHECK_EQ(weft_breaker_done(c->b, &t, rc), 0);
		} else {
			int got;
			CHECK_EQ(weft_breaker_execute(c->b, fn_rc, (void *)(intptr_t)rc, &got), 0);
			CHECK_EQ(got, rc);
		}
		c->req++;
		*(rc == 0 ? &c->succ : rc == ERR_EXCLUDED ? &c->excl : &c->fail) += 1;
	}
	return NULL;
}

static void counts(void)
{
	for (int variant = 0; variant < 2; variant++) {
		struct world w = { .now = 0 };
		weft_breaker_settings_t s = { .ready_to_trip = never_trip, .is_excluded = excluded,
					      .clock = world_clock, .user = &w,
					      .interval = variant ? 3600 * SEC : 0 };
		weft_breaker_t *b;
		struct counter c[THREADS];
		pthread_t t[THREADS];
		uint64_t calls = scaled(200000, 2000);
		weft_breaker_counts_t got;

		arm(120);
		snprintf(g_ctx, sizeof g_ctx, "counts %s", variant ? "interval" : "fast");
		CHECK_EQ(weft_breaker_create(&b, &s), 0);
		for (int i = 0; i < THREADS; i++) {
			c[i] = (struct counter){ .b = b, .calls = calls, .seed = seed_for(i, variant) };
			spawn(&t[i], counter_main, &c[i]);
		}
		for (int i = 0; i < THREADS; i++)
			join(t[i]);
		uint64_t req = 0, succ = 0, fl = 0, ex = 0;
		for (int i = 0; i < THREADS; i++) {
			req += c[i].req;
			succ += c[i].succ;
			fl += c[i].fail;
			ex += c[i].excl;
		}
		CHECK_EQ(weft_breaker_counts(b, &got), 0);
		if (got.requests != req || got.total_successes != succ || got.total_failures != fl ||
		    got.total_exclusions != ex || got.consecutive_successes + got.consecutive_failures == 0 ||
		    (got.consecutive_successes && got.consecutive_failures))
			fail("counts %u/%u/%u/%u (consecutive %u/%u), want %llu/%llu/%llu/%llu",
			     got.requests, got.total_successes, got.total_failures,
			     got.total_exclusions, got.consecutive_successes,
			     got.consecutive_failures, (unsigned long long)req,
			     (unsigned long long)succ, (unsigned long long)fl,
			     (unsigned long long)ex);
		stress_moved(req);
		weft_breaker_destroy(b);
		printf("stress_breaker counts (%s): %llu calls on %d threads, exact\n",
			variant ? "interval, locked" : "lock-free closed path",
			(unsigned long long)req, THREADS);
	}
}

/* ---- churn ---- */

struct churner {
	weft_breaker_t *b;
	_Atomic bool *stop;
	_Atomic uint64_t *total; /* calls by all churners so far */
	uint64_t seed, calls;
};

static void *churner_main(void *arg)
{
	struct churner *c = arg;
	while (!atomic_load_explicit(c->stop, memory_order_relaxed)) {
		int rc = rnd(&c->seed) % 4 ? 0 : ERR_FAILED;
		weft_breaker_ticket_t t;
		int e = weft_breaker_allow(c->b, &t);
		if (e == 0)
			CHECK_EQ(weft_breaker_done(c->b, &t, rc), 0);
		else if (e != -EBUSY && e != -EAGAIN)
			fail("churn: allow gave %d", e);
		c->calls++;
		atomic_fetch_add_explicit(c->total, 1, memory_order_relaxed);
		if (c->calls % 64 == 0) {
			/* a result counts only in its request's generation: never
			 * more results than requests (a stale one would show) */
			weft_breaker_counts_t k;
			CHECK_EQ(weft_breaker_counts(c->b, &k), 0);
			if ((uint64_t)k.total_successes + k.total_failures + k.total_exclusions >
			    k.requests)
				fail("churn: %u results counted for %u requests",
				     k.total_successes + k.total_failures + k.total_exclusions,
				     k.requests);
		}
	}
	return NULL;
}

static void churn(void)
{
	struct world w = { .now = 0 };
	weft_breaker_settings_t s = { .on_state_change = world_change, .timeout = SEC,
				      .clock = world_clock, .user = &w };
	weft_breaker_t *b;
	struct churner c[THREADS];
	pthread_t t[THREADS];
	_Atomic bool stop = false;
	_Atomic uint64_t total = 0;
	uint64_t steps = scaled(20000, 500), calls = 0;

	arm(120);
	snprintf(g_ctx, sizeof g_ctx, "churn");
	CHECK_EQ(weft_breaker_create(&b, &s), 0);
	for (int i = 0; i < THREADS; i++) {
		c[i] = (struct churner){ .b = b, .stop = &stop, .total = &total,
					 .seed = seed_for(i, 7) };
		spawn(&t[i], churner_main, &c[i]);
	}
	uint64_t seed = stress_seed(99);
	/* at least `steps` changes, and go on until the callers have made
	 * 20 calls per change (they may start late) */
	for (uint64_t i = 0; i < steps || atomic_load(&total) < 20 * steps; i++) {
		switch (rnd(&seed) % 6) {
		case 0:
			CHECK_EQ(weft_breaker_force_open(b), 0);
			break;
		case 1:
			CHECK_EQ(weft_breaker_force_closed(b), 0);
			break;
		case 2:
			CHECK_EQ(weft_breaker_disable(b), 0);
			break;
		case 3:
			atomic_fetch_add(&w.now, SEC + 1); /* open ones go half-open */
			CHECK(weft_breaker_state(b) >= 0);
			break;
		default:
			CHECK_EQ(weft_breaker_reset(b), 0);
			break;
		}
	}
	atomic_store(&stop, true);
	for (int i = 0; i < THREADS; i++) {
		join(t[i]);
		calls += c[i].calls;
	}
	CHECK_EQ(weft_breaker_reset(b), 0);
	CHECK_EQ(atomic_load(&w.last_to), WEFT_BREAKER_CLOSED);
	weft_breaker_counts_t got;
	CHECK_EQ(weft_breaker_counts(b, &got), 0);
	CHECK_EQ(got.requests, 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(weft_breaker_execute(b, fn_ok, NULL, NULL), 0);
	CHECK_EQ(weft_breaker_counts(b, &got), 0);
	CHECK_EQ(got.requests, 5);
	CHECK_EQ(got.total_successes, 5);
	CHECK_EQ(got.total_failures + got.total_exclusions, 0);
	stress_moved(calls + 5);
	weft_breaker_destroy(b);
	printf("stress_breaker churn: at least %llu mode changes, %llu calls, %llu transitions "
		"in one chain\n", (unsigned long long)steps, (unsigned long long)calls,
		(unsigned long long)atomic_load(&w.changes));
}

int main(int argc, char **argv)
{
	if (!stress_args(argc, argv, "stress_breaker", 8))
		return 2;
	probes();
	counts();
	churn();
	printf("stress_breaker: all ok\n");
	return stress_summary();
}
