/* bench/breaker.c: the circuit breaker scenarios (see breaker.h). */
#include "breaker.h"

#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/breaker.h>

#include "baseline/breaker_mutex.h"

#define MAX_THREADS 8
#define SAMPLE_EVERY 64 /* one call in this many is timed alone */
#define HOUR (3600LL * BENCH_NS_PER_S)

#define CASES(kind, name)                                                                \
	{ name "/threads:1", kind, 1 }, { name "/threads:2", kind, 2 },                  \
	{ name "/threads:4", kind, 4 }, { name "/threads:8", kind, 8 }

const struct breaker_bench_case breaker_bench_cases[] = {
	CASES(BREAKER_BENCH_CLOSED, "execute_closed"),
	CASES(BREAKER_BENCH_OPEN, "execute_open"),
	CASES(BREAKER_BENCH_HALF_OPEN, "execute_half_open"),
};
const size_t breaker_bench_ncases = sizeof breaker_bench_cases / sizeof breaker_bench_cases[0];

const char *breaker_bench_impl_name(enum breaker_bench_impl impl)
{
	return impl == BREAKER_IMPL_WEFT ? "weft" : impl == BREAKER_IMPL_MUTEX ? "mutex" : "go";
}

int breaker_bench_supported(enum breaker_bench_impl impl)
{
#ifdef WEFT_GO_PEER
	return impl < BREAKER_IMPL_COUNT;
#else
	return impl == BREAKER_IMPL_WEFT || impl == BREAKER_IMPL_MUTEX;
#endif
}

uint64_t breaker_bench_items(const struct breaker_bench_case *c, uint64_t base)
{
	uint64_t n = c->kind == BREAKER_BENCH_HALF_OPEN ? base / 4 : base;
	n = n < 100 ? 100 : n;
	return n - n % c->threads; /* split evenly */
}

char *breaker_bench_name(char *buf, size_t size, const struct breaker_bench_case *c,
			 enum breaker_bench_impl impl)
{
	snprintf(buf, size, "breaker/%s/%s", c->name, breaker_bench_impl_name(impl));
	return buf;
}

/* ---- either breaker ---- */

struct brk {
	enum breaker_bench_impl impl;
	weft_breaker_t *w;
	mbreaker_t *m;
};

static int brk_execute(struct brk *b, int (*fn)(void *), void *arg)
{
	return b->impl == BREAKER_IMPL_WEFT ? weft_breaker_execute(b->w, fn, arg, NULL)
					    : mbreaker_execute(b->m, fn, arg, NULL);
}

static int brk_state(struct brk *b)
{
	return b->impl == BREAKER_IMPL_WEFT ? weft_breaker_state(b->w) : mbreaker_state(b->m);
}

static int brk_counts(struct brk *b, weft_breaker_counts_t *c)
{
	return b->impl == BREAKER_IMPL_WEFT ? weft_breaker_counts(b->w, c) : mbreaker_counts(b->m, c);
}

static int fn_fail(void *arg)
{
	(void)arg;
	return -EIO;
}

/* the breaker in the case's state (untimed): 0, or -1 with r->error */
static int brk_setup(struct brk *b, const struct breaker_bench_case *c,
		     struct breaker_bench_result *r)
{
	weft_breaker_settings_t s = { .name = "bench" };
	int rc;

	if (c->kind == BREAKER_BENCH_OPEN)
		s.timeout = HOUR;
	if (c->kind == BREAKER_BENCH_HALF_OPEN) {
		s.timeout = 1000000; /* 1 ms, then half-open for good */
		s.max_requests = UINT32_MAX;
	}
	rc = b->impl == BREAKER_IMPL_WEFT ? weft_breaker_create(&b->w, &s) : mbreaker_create(&b->m, &s);
	if (rc != 0) {
		snprintf(r->error, sizeof r->error, "create: %d", rc);
		return -1;
	}
	if (c->kind != BREAKER_BENCH_CLOSED) {
		for (int i = 0; i < 6; i++)
			brk_execute(b, fn_fail, NULL);
		if (c->kind == BREAKER_BENCH_HALF_OPEN)
			bench_sleep_ns(2000000);
	}
	int want = c->kind == BREAKER_BENCH_CLOSED ? WEFT_BREAKER_CLOSED
		   : c->kind == BREAKER_BENCH_OPEN ? WEFT_BREAKER_OPEN
						   : WEFT_BREAKER_HALF_OPEN;
	if (brk_state(b) != want) {
		snprintf(r->error, sizeof r->error, "setup: state %d, want %d", brk_state(b), want);
		return -1;
	}
	return 0;
}

static void brk_destroy(struct brk *b)
{
	weft_breaker_destroy(b->w);
	mbreaker_destroy(b->m);
}

/* ---- the threads ---- */

struct caller {
	alignas(64) struct brk *b;
	pthread_barrier_t *go;
	uint64_t ops, ran, bad;
	int want; /* what every call must return */
	int last_bad;
	int64_t clock_ns;
	struct bench_hist *hist;
	pthread_t tid;
};

static int __attribute__((noinline)) fn_count(void *arg)
{
	++*(uint64_t *)arg;
	return 0;
}

static void *caller_main(void *arg)
{
	struct caller *t = arg;
	pthread_barrier_wait(t->go);
	for (uint64_t i = 0; i < t->ops; i++) {
		int rc;
		if (i % SAMPLE_EVERY == 0) {
			int64_t t0 = bench_now_ns();
			rc = brk_execute(t->b, fn_count, &t->ran);
			bench_hist_add(t->hist, bench_now_ns() - t0 - t->clock_ns);
		} else {
			rc = brk_execute(t->b, fn_count, &t->ran);
		}
		if (rc != t->want) {
			t->bad++;
			t->last_bad = rc;
		}
	}
	return NULL;
}

static int run_local(const struct breaker_bench_case *c, enum breaker_bench_impl impl,
		     uint64_t items, struct breaker_bench_result *r)
{
	struct brk b = { .impl = impl };
	struct caller t[MAX_THREADS];
	struct bench_hist *h = calloc(MAX_THREADS + 1, sizeof *h);
	struct bench_meter m = { 0 };
	pthread_barrier_t go;
	unsigned n = c->threads;
	int64_t clock_ns = bench_clock_cost_ns();

	if (!h || n > MAX_THREADS) {
		snprintf(r->error, sizeof r->error, h ? "too many threads" : "out of memory");
		free(h);
		return -1;
	}
	if (brk_setup(&b, c, r) != 0) {
		brk_destroy(&b);
		free(h);
		return -1;
	}
	weft_breaker_counts_t before, after;
	brk_counts(&b, &before);
	pthread_barrier_init(&go, NULL, n + 1);
	for (unsigned i = 0; i < n; i++) {
		t[i] = (struct caller){ .b = &b, .go = &go, .ops = items / n, .clock_ns = clock_ns,
					.want = c->kind == BREAKER_BENCH_OPEN ? -EBUSY : 0,
					.hist = &h[i] };
		if (pthread_create(&t[i].tid, NULL, caller_main, &t[i]) != 0) {
			fprintf(stderr, "weft-bench: pthread_create failed\n");
			abort();
		}
	}
	bench_peak_rss_reset();
	bench_meter_start(&m);
	pthread_barrier_wait(&go);
	for (unsigned i = 0; i < n; i++)
		pthread_join(t[i].tid, NULL);
	bench_meter_stop(&m);
	pthread_barrier_destroy(&go);

	uint64_t ran = 0;
	for (unsigned i = 0; i < n; i++) {
		ran += t[i].ran;
		if (t[i].bad && !r->error[0])
			snprintf(r->error, sizeof r->error, "thread %u: %llu calls returned %d, want %d",
				 i, (unsigned long long)t[i].bad, t[i].last_bad, t[i].want);
		for (unsigned k = 0; k < BENCH_HIST_BUCKETS; k++)
			h[MAX_THREADS].n[k] += h[i].n[k];
		h[MAX_THREADS].count += h[i].count;
		if (h[i].max > h[MAX_THREADS].max)
			h[MAX_THREADS].max = h[i].max;
	}
	uint64_t admitted = c->kind == BREAKER_BENCH_OPEN ? 0 : items;
	brk_counts(&b, &after);
	int want = c->kind == BREAKER_BENCH_CLOSED ? WEFT_BREAKER_CLOSED
		   : c->kind == BREAKER_BENCH_OPEN ? WEFT_BREAKER_OPEN
						   : WEFT_BREAKER_HALF_OPEN;
	if (!r->error[0] && ran != admitted)
		snprintf(r->error, sizeof r->error, "fn ran %llu times, %llu calls admitted",
			 (unsigned long long)ran, (unsigned long long)admitted);
	if (!r->error[0] && (uint32_t)(after.requests - before.requests) != (uint32_t)admitted)
		snprintf(r->error, sizeof r->error, "breaker counted %u requests, %llu admitted",
			 after.requests - before.requests, (unsigned long long)admitted);
	if (!r->error[0] && brk_state(&b) != want)
		snprintf(r->error, sizeof r->error, "state %d after the run, want %d", brk_state(&b),
			 want);
	r->items = items;
	r->wall_ns = m.wall_ns > 0 ? m.wall_ns : 1;
	r->cpu_ns = m.cpu_ns;
	r->ctx_switches = m.ctx_switches;
	r->peak_rss_kb = bench_peak_rss_kb();
	r->has_latency = h[MAX_THREADS].count > 0;
	bench_hist_latency(&h[MAX_THREADS], clock_ns, &r->lat);
	brk_destroy(&b);
	free(h);
	return r->error[0] ? -1 : 0;
}

int breaker_bench_run(const struct breaker_bench_case *c, enum breaker_bench_impl impl,
		      uint64_t base_items, int64_t timeout_ns, struct breaker_bench_result *r)
{
	uint64_t items = breaker_bench_items(c, base_items);

	memset(r, 0, sizeof *r);
	if (!breaker_bench_supported(impl)) {
		snprintf(r->error, sizeof r->error, "not built");
		return -1;
	}
	if (impl == BREAKER_IMPL_GO)
		return go_peer_breaker_run(c, items, timeout_ns > 0 ? timeout_ns : 120 * BENCH_NS_PER_S,
					   r);
	return run_local(c, impl, items, r);
}
