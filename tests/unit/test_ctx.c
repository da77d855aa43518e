/* tests/unit/test_ctx.c: contexts (weft/ctx.h) and the internal watch API.
 *
 * Every blocking call is bounded by a deadline or a partner thread that is
 * guaranteed to act; no durations are asserted (times are only printed).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <weft/ctx.h>

#include "check.h"
#include "internal/ctx_impl.h"

#define MS 1000000LL

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- basics ---- */

static void test_background(void)
{
	weft_ctx_t *bg = weft_ctx_background();
	CHECK(bg != NULL);
	CHECK(bg == weft_ctx_background());
	CHECK_EQ(weft_ctx_err(bg), 0);
	CHECK_EQ(weft_ctx_cause(bg), 0);
	weft_ctx_cancel(bg);
	weft_ctx_cancel_cause(bg, -EIO);
	weft_ctx_release(bg);
	CHECK_EQ(weft_ctx_err(bg), 0);
	CHECK_EQ(weft_ctx_cause(bg), 0);
	CHECK_EQ(weft_ctx_deadline(bg), WEFT_FOREVER);
	CHECK_EQ(weft__ctx_deadline(bg), WEFT_FOREVER);
	CHECK_EQ(weft_ctx_wait(bg, weft_deadline(MS)), -ETIMEDOUT);
	CHECK_EQ(weft_ctx_wait(bg, 0), -ETIMEDOUT);
}

static void test_null(void)
{
	weft_ctx_t *c = NULL;
	CHECK_EQ(weft_ctx_with_cancel(NULL, weft_ctx_background()), -EINVAL);
	CHECK_EQ(weft_ctx_with_cancel(&c, NULL), -EINVAL);
	CHECK_EQ(weft_ctx_with_deadline(&c, NULL, 0), -EINVAL);
	CHECK_EQ(weft_ctx_with_deadline(NULL, weft_ctx_background(), 0), -EINVAL);
	CHECK_EQ(weft_ctx_with_timeout(&c, NULL, 1), -EINVAL);
	CHECK_EQ(weft_ctx_with_timeout(NULL, weft_ctx_background(), 1), -EINVAL);
	CHECK(c == NULL);
	CHECK_EQ(weft_ctx_err(NULL), -EINVAL);
	CHECK_EQ(weft_ctx_cause(NULL), -EINVAL);
	CHECK_EQ(weft_ctx_wait(NULL, 0), -EINVAL);
	CHECK_EQ(weft_ctx_deadline(NULL), WEFT_FOREVER);
	weft_ctx_cancel(NULL);
	weft_ctx_cancel_cause(NULL, -EIO);
	weft_ctx_release(NULL);
	CHECK_EQ(weft_ctx_after_func(NULL, (void (*)(void *))free, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_ctx_after_func(weft_ctx_background(), NULL, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_ctx_stop(NULL), 0);
	weft_ctx_stop_release(NULL);
}

static void test_cancel(void)
{
	weft_ctx_t *c;
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	CHECK_EQ(weft_ctx_err(c), 0);
	CHECK_EQ(weft_ctx_cause(c), 0);
	CHECK_EQ(weft_ctx_deadline(c), WEFT_FOREVER);
	weft_ctx_cancel(c);
	CHECK_EQ(weft_ctx_err(c), -ECANCELED);
	CHECK_EQ(weft_ctx_cause(c), -ECANCELED);
	weft_ctx_cancel_cause(c, -EIO); /* too late: first wins */
	CHECK_EQ(weft_ctx_cause(c), -ECANCELED);
	CHECK_EQ(weft_ctx_wait(c, 0), -ECANCELED);
	weft_ctx_release(c);
}

static void test_cause_first_wins(void)
{
	weft_ctx_t *c, *k, *g;
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	CHECK_EQ(weft_ctx_with_cancel(&k, c), 0);
	CHECK_EQ(weft_ctx_with_cancel(&g, k), 0);
	weft_ctx_cancel_cause(c, -EIO);
	weft_ctx_cancel_cause(c, -EPIPE);
	weft_ctx_cancel(c);
	CHECK_EQ(weft_ctx_err(c), -ECANCELED);
	CHECK_EQ(weft_ctx_cause(c), -EIO);
	/* through the parent: the parent's cause */
	CHECK_EQ(weft_ctx_err(k), -ECANCELED);
	CHECK_EQ(weft_ctx_cause(k), -EIO);
	CHECK_EQ(weft_ctx_cause(g), -EIO);
	weft_ctx_cancel_cause(g, -EPIPE);
	CHECK_EQ(weft_ctx_cause(g), -EIO);
	weft_ctx_release(g);
	weft_ctx_release(k);
	weft_ctx_release(c);

	/* cause 0 means plain cancel; positive causes are kept as given */
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	weft_ctx_cancel_cause(c, 0);
	CHECK_EQ(weft_ctx_cause(c), -ECANCELED);
	weft_ctx_release(c);
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	weft_ctx_cancel_cause(c, 42);
	CHECK_EQ(weft_ctx_cause(c), 42);
	CHECK_EQ(weft_ctx_err(c), -ECANCELED);
	weft_ctx_release(c);
}

static void test_child_cancel_leaves_parent(void)
{
	weft_ctx_t *p, *k;
	CHECK_EQ(weft_ctx_with_cancel(&p, weft_ctx_background()), 0);
	CHECK_EQ(weft_ctx_with_cancel(&k, p), 0);
	CHECK_EQ(weft__ctx_nchildren(p), 1);
	weft_ctx_cancel(k);
	CHECK_EQ(weft_ctx_err(k), -ECANCELED);
	CHECK_EQ(weft_ctx_err(p), 0);
	CHECK_EQ(weft__ctx_nchildren(p), 0); /* a cancelled child detaches */
	weft_ctx_release(k);
	weft_ctx_release(p);
}

static void test_child_of_done_parent(void)
{
	weft_ctx_t *p, *k, *d;
	CHECK_EQ(weft_ctx_with_cancel(&p, weft_ctx_background()), 0);
	weft_ctx_cancel_cause(p, -EIO);
	CHECK_EQ(weft_ctx_with_cancel(&k, p), 0);
	CHECK_EQ(weft_ctx_err(k), -ECANCELED);
	CHECK_EQ(weft_ctx_cause(k), -EIO);
	CHECK_EQ(weft_ctx_with_deadline(&d, p, WEFT_FOREVER), 0);
	CHECK_EQ(weft_ctx_cause(d), -EIO);
	CHECK_EQ(weft__ctx_nchildren(p), 0);
	weft_ctx_release(d);
	weft_ctx_release(k);
	weft_ctx_release(p);
}

/* 10,000 descendants, wide and deep: one cancel reaches all */
static void test_tree_10000(void)
{
	enum { N = 10000 };
	weft_ctx_t **v = malloc(N * sizeof *v), *root;
	CHECK(v);
	uint64_t live0 = weft__ctx_live();
	CHECK_EQ(weft_ctx_with_cancel(&root, weft_ctx_background()), 0);
	/* a 100-ary tree: node i's parent is node (i - 1) / 100 */
	for (int i = 0; i < N; i++) {
		weft_ctx_t *p = i < 100 ? root : v[(i - 100) / 99];
		CHECK_EQ(weft_ctx_with_cancel(&v[i], p), 0);
	}
	CHECK_EQ(weft__ctx_nchildren(root), 100);
	int64_t t0 = weft_now();
	weft_ctx_cancel_cause(root, -EIO);
	int64_t t1 = weft_now();
	for (int i = 0; i < N; i++) {
		CHECK_EQ(weft_ctx_err(v[i]), -ECANCELED);
		CHECK_EQ(weft_ctx_cause(v[i]), -EIO);
	}
	fprintf(stderr, " [wide: %.1f ns/ctx]", (double)(t1 - t0) / N);
	/* release the root first: the children keep it alive */
	weft_ctx_release(root);
	for (int i = N - 1; i >= 0; i--)
		weft_ctx_release(v[i]);
	CHECK_EQ(weft__ctx_live(), live0);

	/* a chain 10,000 deep: no recursion, no stack overflow */
	CHECK_EQ(weft_ctx_with_cancel(&root, weft_ctx_background()), 0);
	for (int i = 0; i < N; i++)
		CHECK_EQ(weft_ctx_with_cancel(&v[i], i ? v[i - 1] : root), 0);
	t0 = weft_now();
	weft_ctx_cancel(root);
	t1 = weft_now();
	CHECK_EQ(weft_ctx_err(v[N - 1]), -ECANCELED);
	fprintf(stderr, " [deep: %.1f ns/ctx]", (double)(t1 - t0) / N);
	/* releasing the root and then the chain from the top frees a chain
	 * of parents in one loop when the last leaf goes */
	weft_ctx_release(root);
	for (int i = 0; i < N; i++)
		weft_ctx_release(v[i]);
	CHECK_EQ(weft__ctx_live(), live0);
	free(v);
}

/* ---- deadlines ---- */

static void test_timeout_expired(void)
{
	weft_ctx_t *c;
	CHECK_EQ(weft_ctx_with_timeout(&c, weft_ctx_background(), 0), 0);
	CHECK_EQ(weft_ctx_err(c), -ETIMEDOUT);
	CHECK_EQ(weft_ctx_cause(c), -ETIMEDOUT);
	weft_ctx_release(c);
	CHECK_EQ(weft_ctx_with_timeout(&c, weft_ctx_background(), -5), 0);
	CHECK_EQ(weft_ctx_err(c), -ETIMEDOUT);
	weft_ctx_cancel(c);
	CHECK_EQ(weft_ctx_err(c), -ETIMEDOUT); /* first wins */
	weft_ctx_release(c);
	CHECK_EQ(weft_ctx_with_deadline(&c, weft_ctx_background(), weft_now() - 1), 0);
	CHECK_EQ(weft_ctx_cause(c), -ETIMEDOUT);
	weft_ctx_release(c);
}

static void test_deadline_min(void)
{
	weft_ctx_t *p, *a, *b;
	int64_t dp = weft_now() + 3600 * 1000 * MS;
	CHECK_EQ(weft_ctx_with_deadline(&p, weft_ctx_background(), dp), 0);
	CHECK_EQ(weft_ctx_with_deadline(&a, p, dp + 1000), 0);
	CHECK_EQ(weft_ctx_with_deadline(&b, p, dp - 1000), 0);
	CHECK_EQ(weft_ctx_deadline(p), dp);
	CHECK_EQ(weft_ctx_deadline(a), dp);
	CHECK_EQ(weft_ctx_deadline(b), dp - 1000);
	CHECK_EQ(weft__ctx_deadline(a), dp);
	CHECK_EQ(weft_ctx_err(a), 0);
	weft_ctx_release(a);
	weft_ctx_release(b);
	weft_ctx_release(p);
}

/* err() alone notices the deadline: nobody waits */
static void test_deadline_lazy(void)
{
	weft_ctx_t *c;
	int64_t dl = weft_deadline(5 * MS);
	CHECK_EQ(weft_ctx_with_deadline(&c, weft_ctx_background(), dl), 0);
	int e;
	while ((e = weft_ctx_err(c)) == 0)
		sleep_ms(1);
	CHECK(weft_now() >= dl);
	CHECK_EQ(e, -ETIMEDOUT);
	CHECK_EQ(weft_ctx_cause(c), -ETIMEDOUT);
	weft_ctx_release(c);
}

/* the parent's deadline, seen through a child, expires the parent and
 * flows to its other children */
static void test_deadline_through_child(void)
{
	weft_ctx_t *p, *a, *b;
	int64_t dl = weft_deadline(5 * MS);
	CHECK_EQ(weft_ctx_with_deadline(&p, weft_ctx_background(), dl), 0);
	CHECK_EQ(weft_ctx_with_cancel(&a, p), 0);
	CHECK_EQ(weft_ctx_with_cancel(&b, p), 0);
	while (weft_ctx_err(a) == 0)
		sleep_ms(1);
	CHECK_EQ(weft_ctx_err(a), -ETIMEDOUT);
	CHECK_EQ(weft_ctx_cause(a), -ETIMEDOUT);
	CHECK_EQ(weft_ctx_err(p), -ETIMEDOUT);
	CHECK_EQ(weft_ctx_err(b), -ETIMEDOUT);
	CHECK_EQ(weft__ctx_nchildren(p), 0);
	weft_ctx_release(p);
	weft_ctx_release(a);
	weft_ctx_release(b);
}

/* ---- wait ---- */

struct canceller {
	weft_ctx_t *c;
	int cause;
	int delay_ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *k = arg;
	sleep_ms(k->delay_ms);
	weft_ctx_cancel_cause(k->c, k->cause);
	return NULL;
}

static void test_wait(void)
{
	weft_ctx_t *c, *k;
	pthread_t t;
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	CHECK_EQ(weft_ctx_wait(c, weft_deadline(2 * MS)), -ETIMEDOUT);
	CHECK_EQ(weft_ctx_wait(c, 0), -ETIMEDOUT);
	CHECK_EQ(weft_ctx_with_cancel(&k, c), 0);
	struct canceller arg = {c, -EIO, 5};
	CHECK_EQ(pthread_create(&t, NULL, cancel_later, &arg), 0);
	CHECK_EQ(weft_ctx_wait(k, WEFT_FOREVER), -ECANCELED); /* via parent */
	CHECK_EQ(weft_ctx_cause(k), -EIO);
	CHECK_EQ(weft_ctx_wait(c, WEFT_FOREVER), -ECANCELED);
	pthread_join(t, NULL);
	weft_ctx_release(k);
	weft_ctx_release(c);

	/* the ctx's own deadline ends a wait with no deadline of its own */
	CHECK_EQ(weft_ctx_with_timeout(&c, weft_ctx_background(), 3 * MS), 0);
	CHECK_EQ(weft_ctx_wait(c, WEFT_FOREVER), -ETIMEDOUT);
	CHECK_EQ(weft_ctx_err(c), -ETIMEDOUT);
	weft_ctx_release(c);

	/* and through a parent */
	CHECK_EQ(weft_ctx_with_timeout(&c, weft_ctx_background(), 3 * MS), 0);
	CHECK_EQ(weft_ctx_with_cancel(&k, c), 0);
	CHECK_EQ(weft_ctx_wait(k, WEFT_FOREVER), -ETIMEDOUT);
	CHECK_EQ(weft_ctx_err(c), -ETIMEDOUT);
	weft_ctx_release(k);
	weft_ctx_release(c);
}

/* ---- release and references ---- */

static void test_release_detaches(void)
{
	enum { N = 1000 };
	weft_ctx_t *p, *k[N];
	uint64_t live0 = weft__ctx_live();
	CHECK_EQ(weft_ctx_with_cancel(&p, weft_ctx_background()), 0);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++)
			CHECK_EQ(weft_ctx_with_timeout(&k[i], p, 3600 * 1000 * MS), 0);
		CHECK_EQ(weft__ctx_nchildren(p), N);
		for (int i = 0; i < N; i++) {
			weft_ctx_release(k[(i * 7) % N]); /* any order */
			CHECK_EQ(weft_ctx_err(p), 0);
		}
		CHECK_EQ(weft__ctx_nchildren(p), 0);
	}
	CHECK_EQ(weft__ctx_live(), live0 + 1);
	weft_ctx_release(p);
	CHECK_EQ(weft__ctx_live(), live0);
}

static void test_release_parent_first(void)
{
	weft_ctx_t *p, *k, *g;
	uint64_t live0 = weft__ctx_live();
	CHECK_EQ(weft_ctx_with_cancel(&p, weft_ctx_background()), 0);
	CHECK_EQ(weft_ctx_with_cancel(&k, p), 0);
	weft_ctx_release(p); /* cancels k; k keeps p's memory */
	CHECK_EQ(weft_ctx_err(k), -ECANCELED);
	CHECK_EQ(weft_ctx_with_cancel(&g, k), 0);
	CHECK_EQ(weft_ctx_err(g), -ECANCELED);
	CHECK_EQ(weft__ctx_live(), live0 + 3);
	weft_ctx_release(k);
	CHECK_EQ(weft__ctx_live(), live0 + 3);
	weft_ctx_release(g); /* frees g, k, p in one go */
	CHECK_EQ(weft__ctx_live(), live0);
}

/* ---- after_func ---- */

static void af_inc(void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
}

/* The runner runs after funcs in order, one at a time: once a sentinel
 * registered on a done context has run, everything queued before it has
 * been decided. */
static void drain_runner(void)
{
	atomic_int done = 0;
	weft_ctx_t *c;
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	weft_ctx_cancel(c);
	CHECK_EQ(weft_ctx_after_func(c, af_inc, &done, NULL), 0);
	while (atomic_load(&done) == 0)
		sleep_ms(1);
	weft_ctx_release(c);
}

static void test_after_func(void)
{
	atomic_int ran = 0;
	weft_ctx_t *c;
	weft_ctx_stop_t *st;

	/* runs once, when cancelled */
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	CHECK_EQ(weft_ctx_after_func(c, af_inc, &ran, &st), 0);
	CHECK_EQ(weft_ctx_after_func(c, af_inc, &ran, NULL), 0);
	drain_runner();
	CHECK_EQ(atomic_load(&ran), 0);
	weft_ctx_cancel(c);
	weft_ctx_cancel(c);
	while (atomic_load(&ran) < 2)
		sleep_ms(1);
	CHECK_EQ(weft_ctx_stop(st), 0); /* already ran */
	weft_ctx_stop_release(st);
	drain_runner();
	CHECK_EQ(atomic_load(&ran), 2);
	weft_ctx_release(c);

	/* on a done context: runs soon */
	atomic_store(&ran, 0);
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	weft_ctx_release(c);
	CHECK_EQ(weft_ctx_with_timeout(&c, weft_ctx_background(), 0), 0);
	CHECK_EQ(weft_ctx_after_func(c, af_inc, &ran, NULL), 0);
	while (atomic_load(&ran) < 1)
		sleep_ms(1);
	weft_ctx_release(c);

	/* stopped before: never runs, and the handle outlives the ctx */
	atomic_store(&ran, 0);
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	CHECK_EQ(weft_ctx_after_func(c, af_inc, &ran, &st), 0);
	CHECK_EQ(weft_ctx_stop(st), 1);
	CHECK_EQ(weft_ctx_stop(st), 0);
	weft_ctx_release(c);
	drain_runner();
	CHECK_EQ(atomic_load(&ran), 0);
	weft_ctx_stop_release(st);

	/* background: never runs; stop stops it */
	CHECK_EQ(weft_ctx_after_func(weft_ctx_background(), af_inc, &ran, &st), 0);
	CHECK_EQ(weft_ctx_after_func(weft_ctx_background(), af_inc, &ran, NULL), 0);
	CHECK_EQ(weft_ctx_stop(st), 1);
	weft_ctx_stop_release(st);

	/* a deadline fires the after func with nobody calling err(): the
	 * shared timer thread */
	atomic_store(&ran, 0);
	CHECK_EQ(weft_ctx_with_timeout(&c, weft_ctx_background(), 3 * MS), 0);
	weft_ctx_t *k;
	CHECK_EQ(weft_ctx_with_cancel(&k, c), 0); /* the parent's deadline */
	CHECK_EQ(weft_ctx_after_func(k, af_inc, &ran, NULL), 0);
	CHECK_EQ(weft_ctx_after_func(c, af_inc, &ran, NULL), 0);
	while (atomic_load(&ran) < 2)
		sleep_ms(1);
	CHECK_EQ(weft_ctx_cause(k), -ETIMEDOUT);
	weft_ctx_release(k);
	weft_ctx_release(c);

	/* many deadlines in the heap, out of order, some cancelled early */
	enum { M = 200 };
	weft_ctx_t *v[M];
	atomic_store(&ran, 0);
	for (int i = 0; i < M; i++) {
		/* those cancelled below get deadlines far away */
		int64_t tmo = i % 3 ? ((i * 37) % M) * MS / 20 + MS : 3600 * 1000 * MS;
		CHECK_EQ(weft_ctx_with_timeout(&v[i], weft_ctx_background(), tmo), 0);
		CHECK_EQ(weft_ctx_after_func(v[i], af_inc, &ran, NULL), 0);
	}
	for (int i = 0; i < M; i += 3)
		weft_ctx_cancel(v[i]);
	while (atomic_load(&ran) < M)
		sleep_ms(1);
	for (int i = 0; i < M; i++) {
		CHECK_EQ(weft_ctx_err(v[i]), i % 3 ? -ETIMEDOUT : -ECANCELED);
		weft_ctx_release(v[i]);
	}
}

struct stopper {
	weft_ctx_stop_t *st;
	int got;
	atomic_int *go;
};

static void *stop_thread(void *arg)
{
	struct stopper *s = arg;
	while (atomic_load(s->go) == 0)
		;
	s->got = weft_ctx_stop(s->st);
	return NULL;
}

/* stop racing cancel: fn runs exactly when stop returned 0 */
static void test_after_func_stop_race(void)
{
	enum { ROUNDS = 300 };
	atomic_int ran = 0;
	int stopped = 0;
	for (int r = 0; r < ROUNDS; r++) {
		weft_ctx_t *c;
		atomic_int go = 0;
		struct stopper s = {.go = &go};
		pthread_t t;
		CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
		CHECK_EQ(weft_ctx_after_func(c, af_inc, &ran, &s.st), 0);
		CHECK_EQ(pthread_create(&t, NULL, stop_thread, &s), 0);
		atomic_store(&go, 1);
		weft_ctx_cancel(c);
		pthread_join(t, NULL);
		stopped += s.got;
		weft_ctx_stop_release(s.st);
		weft_ctx_release(c);
	}
	drain_runner();
	CHECK_EQ(atomic_load(&ran) + stopped, ROUNDS);
	fprintf(stderr, " [%d stopped, %d ran]", stopped, atomic_load(&ran));
}

/* ---- the internal watch API ---- */

static void test_watch(void)
{
	weft_ctx_t *c;
	weft__waiter_t w = {WEFT__W_WAITING};
	weft__wnode_t n = {.w = &w, .index = 7};

	CHECK_EQ(weft__ctx_watch(weft_ctx_background(), &n), 0);
	weft__ctx_unwatch(weft_ctx_background(), &n);

	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	CHECK_EQ(weft__ctx_watch(c, &n), 0);
	weft__ctx_unwatch(c, &n);
	weft_ctx_cancel(c);
	CHECK_EQ(w.state, WEFT__W_WAITING); /* unwatched: not notified */
	CHECK_EQ(weft__ctx_watch(c, &n), -ECANCELED);
	weft_ctx_release(c);

	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	CHECK_EQ(weft__ctx_watch(c, &n), 0);
	weft_ctx_cancel_cause(c, -EIO);
	CHECK_EQ(w.state, WEFT__W_CANCEL | 7);
	CHECK(!n.linked);
	weft__ctx_unwatch(c, &n); /* safe after the notification */
	weft_ctx_release(c);

	/* an expired deadline is noticed by watch */
	CHECK_EQ(weft_ctx_with_deadline(&c, weft_ctx_background(), WEFT_FOREVER - 1), 0);
	CHECK_EQ(weft__ctx_deadline(c), WEFT_FOREVER - 1);
	weft_ctx_release(c);
	CHECK_EQ(weft_ctx_with_timeout(&c, weft_ctx_background(), 0), 0);
	w.state = WEFT__W_WAITING;
	CHECK_EQ(weft__ctx_watch(c, &n), -ETIMEDOUT);
	weft_ctx_release(c);

	/* a waiter won by someone else first is left alone */
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	w.state = WEFT__W_WAITING;
	CHECK_EQ(weft__ctx_watch(c, &n), 0);
	w.state = WEFT__W_DONE;
	weft_ctx_cancel(c);
	CHECK_EQ(w.state, WEFT__W_DONE);
	weft_ctx_release(c);
}

int main(void)
{
	test_watchdog(120);
	fprintf(stderr, "test_ctx:\n");
	uint64_t live0 = weft__ctx_live();
	RUN(test_background);
	RUN(test_null);
	RUN(test_cancel);
	RUN(test_cause_first_wins);
	RUN(test_child_cancel_leaves_parent);
	RUN(test_child_of_done_parent);
	RUN(test_tree_10000);
	RUN(test_timeout_expired);
	RUN(test_deadline_min);
	RUN(test_deadline_lazy);
	RUN(test_deadline_through_child);
	RUN(test_wait);
	RUN(test_release_detaches);
	RUN(test_release_parent_first);
	RUN(test_after_func);
	RUN(test_after_func_stop_race);
	RUN(test_watch);
	/* every context freed (the runner drops its last record's reference
	 * just after running it) */
	drain_runner();
	while (weft__ctx_live() != live0)
		sleep_ms(1);
	fprintf(stderr, "all ok\n");
	return 0;
}
