/* tests/unit/test_sem.c: the weighted semaphore (weft/sync.h), including
 * ports of golang.org/x/sync/semaphore's own tests.
 *
 * Every blocking call is bounded by a deadline or a partner thread that is
 * guaranteed to act; no durations are asserted.
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
#include <weft/sync.h>

#include "check.h"

#define MS 1000000LL

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Wait until someone is queued on s: tokens are free (at least 1) yet
 * try_acquire(1) fails. */
static void wait_queued(weft_sem_t *s)
{
	for (;;) {
		int rc = weft_sem_try_acquire(s, 1);
		if (rc == -EAGAIN)
			return;
		CHECK_EQ(rc, 0);
		CHECK_EQ(weft_sem_release(s, 1), 0);
		sleep_ms(1);
	}
}

/* All cap tokens free and nobody queued. */
static void check_full(weft_sem_t *s, int64_t cap)
{
	CHECK_EQ(weft_sem_try_acquire(s, cap), 0);
	CHECK_EQ(weft_sem_release(s, cap), 0);
}

static void test_args(void)
{
	weft_sem_t s;
	weft_ctx_t *bg = weft_ctx_background(), *done;
	CHECK_EQ(weft_sem_init(NULL, 1), -EINVAL);
	CHECK_EQ(weft_sem_init(&s, 0), -EINVAL);
	CHECK_EQ(weft_sem_init(&s, -1), -EINVAL);
	CHECK_EQ(weft_sem_init(&s, 3), 0);
	weft_sem_destroy(NULL);

	CHECK_EQ(weft_sem_acquire(NULL, 1), -EINVAL);
	CHECK_EQ(weft_sem_try_acquire(NULL, 1), -EINVAL);
	CHECK_EQ(weft_sem_acquire_until(NULL, 1, 0), -EINVAL);
	CHECK_EQ(weft_sem_acquire_ctx(NULL, 1, bg), -EINVAL);
	CHECK_EQ(weft_sem_acquire_ctx(&s, 1, NULL), -EINVAL);
	CHECK_EQ(weft_sem_release(NULL, 1), -EINVAL);

	/* n < 0 and n > capacity on every call */
	CHECK_EQ(weft_sem_acquire(&s, -1), -EINVAL);
	CHECK_EQ(weft_sem_try_acquire(&s, -1), -EINVAL);
	CHECK_EQ(weft_sem_acquire_until(&s, -1, WEFT_FOREVER), -EINVAL);
	CHECK_EQ(weft_sem_acquire_ctx(&s, -1, bg), -EINVAL);
	CHECK_EQ(weft_sem_release(&s, -1), -EINVAL);
	CHECK_EQ(weft_sem_acquire(&s, 4), -EINVAL);
	CHECK_EQ(weft_sem_try_acquire(&s, 4), -EINVAL);
	CHECK_EQ(weft_sem_acquire_until(&s, 4, WEFT_FOREVER), -EINVAL);
	CHECK_EQ(weft_sem_acquire_ctx(&s, 4, bg), -EINVAL);
	CHECK_EQ(weft_sem_release(&s, 4), -EINVAL);
	check_full(&s, 3);

	/* n == 0: at once, always */
	CHECK_EQ(weft_sem_acquire(&s, 3), 0);
	CHECK_EQ(weft_sem_acquire(&s, 0), 0);
	CHECK_EQ(weft_sem_try_acquire(&s, 0), 0);
	CHECK_EQ(weft_sem_acquire_until(&s, 0, 0), 0);
	CHECK_EQ(weft_sem_acquire_ctx(&s, 0, bg), 0);
	CHECK_EQ(weft_sem_release(&s, 0), 0);

	/* over-release changes nothing */
	CHECK_EQ(weft_sem_release(&s, 2), 0);
	CHECK_EQ(weft_sem_release(&s, 2), -EINVAL);
	CHECK_EQ(weft_sem_release(&s, 1), 0);
	CHECK_EQ(weft_sem_release(&s, 1), -EINVAL);
	check_full(&s, 3);

	/* a done context fails even with tokens free, and for n == 0 */
	CHECK_EQ(weft_ctx_with_cancel(&done, bg), 0);
	weft_ctx_cancel(done);
	CHECK_EQ(weft_sem_acquire_ctx(&s, 1, done), -ECANCELED);
	CHECK_EQ(weft_sem_acquire_ctx(&s, 0, done), -ECANCELED);
	weft_ctx_release(done);
	CHECK_EQ(weft_ctx_with_timeout(&done, bg, 0), 0);
	CHECK_EQ(weft_sem_acquire_ctx(&s, 1, done), -ETIMEDOUT);
	weft_ctx_release(done);
	check_full(&s, 3);

	/* a passed deadline behaves like try */
	CHECK_EQ(weft_sem_acquire_until(&s, 2, 0), 0);
	CHECK_EQ(weft_sem_acquire_until(&s, 2, 0), -ETIMEDOUT);
	CHECK_EQ(weft_sem_acquire_until(&s, 1, 0), 0);
	CHECK_EQ(weft_sem_release(&s, 3), 0);
	weft_sem_destroy(&s);

	/* huge capacities */
	CHECK_EQ(weft_sem_init(&s, WEFT_SEM_MAX_CAPACITY + 1), -EINVAL);
	CHECK_EQ(weft_sem_init(&s, INT64_MAX), -EINVAL);
	CHECK_EQ(weft_sem_init(&s, WEFT_SEM_MAX_CAPACITY), 0);
	CHECK_EQ(weft_sem_acquire(&s, WEFT_SEM_MAX_CAPACITY), 0);
	CHECK_EQ(weft_sem_try_acquire(&s, 1), -EAGAIN);
	CHECK_EQ(weft_sem_release(&s, WEFT_SEM_MAX_CAPACITY), 0);
	CHECK_EQ(weft_sem_release(&s, 1), -EINVAL);
	weft_sem_destroy(&s);
}

/* x/sync TestWeightedTryAcquire */
static void test_try_acquire_port(void)
{
	weft_sem_t s;
	bool tries[4];
	CHECK_EQ(weft_sem_init(&s, 2), 0);
	CHECK_EQ(weft_sem_acquire(&s, 1), 0);
	tries[0] = weft_sem_try_acquire(&s, 1) == 0;
	tries[1] = weft_sem_try_acquire(&s, 1) == 0;
	CHECK_EQ(weft_sem_release(&s, 2), 0);
	tries[2] = weft_sem_try_acquire(&s, 1) == 0;
	CHECK_EQ(weft_sem_acquire(&s, 1), 0);
	tries[3] = weft_sem_try_acquire(&s, 1) == 0;
	CHECK(tries[0] && !tries[1] && tries[2] && !tries[3]);
	weft_sem_destroy(&s);
}

/* x/sync TestWeightedAcquire: acquire / release sequences */
static void test_acquire_sequence(void)
{
	weft_sem_t s;
	CHECK_EQ(weft_sem_init(&s, 2), 0);
	CHECK_EQ(weft_sem_acquire(&s, 1), 0);
	CHECK_EQ(weft_sem_acquire(&s, 1), 0);
	CHECK_EQ(weft_sem_acquire_until(&s, 1, weft_deadline(MS)), -ETIMEDOUT);
	CHECK_EQ(weft_sem_release(&s, 2), 0);
	CHECK_EQ(weft_sem_acquire_until(&s, 2, weft_deadline(MS)), 0);
	CHECK_EQ(weft_sem_release(&s, 2), 0);
	weft_sem_destroy(&s);
}

struct worker {
	weft_sem_t *s;
	weft_ctx_t *ctx;
	int64_t n;
	int rc;
	atomic_int *flag;
};

static void *acquire_one_release(void *arg)
{
	struct worker *w = arg;
	w->rc = weft_sem_acquire_ctx(w->s, w->n, w->ctx);
	if (w->rc == 0) {
		sleep_ms(1);
		CHECK_EQ(weft_sem_release(w->s, w->n), 0);
	}
	return NULL;
}

/* x/sync TestWeightedDoesntBlockIfTooBig: here a request larger than the
 * capacity fails at once (-EINVAL) instead of waiting for its context, and
 * the small ones proceed. */
static void test_too_big_doesnt_block(void)
{
	enum { N = 2 };
	weft_sem_t s;
	weft_ctx_t *ctx;
	pthread_t t[N * 3];
	struct worker w[N * 3];
	CHECK_EQ(weft_sem_init(&s, N), 0);
	CHECK_EQ(weft_ctx_with_cancel(&ctx, weft_ctx_background()), 0);
	CHECK_EQ(weft_sem_acquire_ctx(&s, N + 1, ctx), -EINVAL);
	for (int i = 0; i < N * 3; i++) {
		w[i] = (struct worker){.s = &s, .ctx = ctx, .n = 1};
		CHECK_EQ(pthread_create(&t[i], NULL, acquire_one_release, &w[i]), 0);
	}
	for (int i = 0; i < N * 3; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(w[i].rc, 0);
	}
	check_full(&s, N);
	weft_ctx_release(ctx);
	weft_sem_destroy(&s);
}

struct churn {
	weft_sem_t *s;
	atomic_int *running;
};

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	while (atomic_load(c->running)) {
		sleep_ms(1);
		CHECK_EQ(weft_sem_release(c->s, 1), 0);
		CHECK_EQ(weft_sem_acquire(c->s, 1), 0);
	}
	CHECK_EQ(weft_sem_release(c->s, 1), 0);
	return NULL;
}

/* x/sync TestLargeAcquireDoesntStarve */
static void test_large_doesnt_starve(void)
{
	enum { N = 8 };
	weft_sem_t s;
	atomic_int running = 1;
	pthread_t t[N];
	struct churn c = {&s, &running};
	CHECK_EQ(weft_sem_init(&s, N), 0);
	for (int i = 0; i < N; i++) {
		CHECK_EQ(weft_sem_acquire(&s, 1), 0);
		CHECK_EQ(pthread_create(&t[i], NULL, churn_thread, &c), 0);
	}
	CHECK_EQ(weft_sem_acquire(&s, N), 0);
	atomic_store(&running, 0);
	CHECK_EQ(weft_sem_release(&s, N), 0);
	for (int i = 0; i < N; i++)
		pthread_join(t[i], NULL);
	check_full(&s, N);
	weft_sem_destroy(&s);
}

static void *acquire_ctx_thread(void *arg)
{
	struct worker *w = arg;
	w->rc = weft_sem_acquire_ctx(w->s, w->n, w->ctx);
	return NULL;
}

static void *cancel_thread(void *arg)
{
	weft_ctx_cancel(arg);
	return NULL;
}

/* x/sync TestAllocCancelDoesntStarve: a cancelled head waiter wakes the
 * next one */
static void test_cancel_doesnt_starve(void)
{
	weft_sem_t s;
	weft_ctx_t *ctx;
	pthread_t t, tc;
	CHECK_EQ(weft_sem_init(&s, 10), 0);
	CHECK_EQ(weft_sem_acquire(&s, 1), 0);
	CHECK_EQ(weft_ctx_with_cancel(&ctx, weft_ctx_background()), 0);
	struct worker w = {.s = &s, .ctx = ctx, .n = 10};
	CHECK_EQ(pthread_create(&t, NULL, acquire_ctx_thread, &w), 0);
	wait_queued(&s);
	CHECK_EQ(pthread_create(&tc, NULL, cancel_thread, ctx), 0);
	CHECK_EQ(weft_sem_acquire(&s, 1), 0);
	CHECK_EQ(weft_sem_release(&s, 1), 0);
	pthread_join(tc, NULL);
	pthread_join(t, NULL);
	CHECK_EQ(w.rc, -ECANCELED);
	CHECK_EQ(weft_sem_release(&s, 1), 0);
	check_full(&s, 10);
	weft_ctx_release(ctx);
	weft_sem_destroy(&s);
}

struct timed {
	weft_sem_t *s;
	int64_t n, deadline;
	int rc;
};

static void *acquire_until_thread(void *arg)
{
	struct timed *t = arg;
	t->rc = weft_sem_acquire_until(t->s, t->n, t->deadline);
	return NULL;
}

/* a timed-out head waiter leaks nothing and lets the next proceed */
static void test_timeout_wakes_next(void)
{
	weft_sem_t s;
	pthread_t a, b;
	CHECK_EQ(weft_sem_init(&s, 10), 0);
	CHECK_EQ(weft_sem_acquire(&s, 5), 0);
	struct timed big = {&s, 10, weft_deadline(20 * MS), 1};
	CHECK_EQ(pthread_create(&a, NULL, acquire_until_thread, &big), 0);
	wait_queued(&s);
	struct timed small = {&s, 3, WEFT_FOREVER, 1};
	CHECK_EQ(pthread_create(&b, NULL, acquire_until_thread, &small), 0);
	pthread_join(a, NULL);
	CHECK_EQ(big.rc, -ETIMEDOUT);
	pthread_join(b, NULL); /* would hang if nobody woke it */
	CHECK_EQ(small.rc, 0);
	CHECK_EQ(weft_sem_release(&s, 8), 0);
	check_full(&s, 10);
	weft_sem_destroy(&s);
}

/* strict FIFO: a large head is not overtaken; grants go in order */
static void test_fifo(void)
{
	weft_sem_t s;
	pthread_t a, b;
	CHECK_EQ(weft_sem_init(&s, 4), 0);
	CHECK_EQ(weft_sem_acquire(&s, 3), 0);
	struct timed big = {&s, 4, WEFT_FOREVER, 1};
	CHECK_EQ(pthread_create(&a, NULL, acquire_until_thread, &big), 0);
	wait_queued(&s);
	/* 1 token is free, but the head wants 4 */
	CHECK_EQ(weft_sem_try_acquire(&s, 1), -EAGAIN);
	CHECK_EQ(weft_sem_acquire_until(&s, 1, weft_deadline(MS)), -ETIMEDOUT);
	struct timed small = {&s, 1, WEFT_FOREVER, 1};
	CHECK_EQ(pthread_create(&b, NULL, acquire_until_thread, &small), 0);
	sleep_ms(2);
	CHECK_EQ(weft_sem_release(&s, 3), 0);
	pthread_join(a, NULL);
	CHECK_EQ(big.rc, 0);
	CHECK_EQ(weft_sem_release(&s, 4), 0);
	pthread_join(b, NULL);
	CHECK_EQ(small.rc, 0);
	CHECK_EQ(weft_sem_release(&s, 1), 0);
	check_full(&s, 4);
	weft_sem_destroy(&s);
}

/* strict FIFO among equals: waiters that queued one after another are
 * served in that order, each by the release of the one before it */
#define ORDER_N 4
struct ordered {
	weft_sem_t *s;
	int id;
	atomic_int *started, *next; /* next: the id that must be served now */
	int rc, seen;
};

static void *ordered_thread(void *arg)
{
	struct ordered *o = arg;
	atomic_store(o->started, o->id + 1);
	o->rc = weft_sem_acquire(o->s, 1);
	o->seen = atomic_fetch_add(o->next, 1);
	weft_sem_release(o->s, 1);
	return NULL;
}

static void test_fifo_order(void)
{
	weft_sem_t s;
	pthread_t t[ORDER_N];
	struct ordered o[ORDER_N];
	atomic_int started = 0, next = 0;
	CHECK_EQ(weft_sem_init(&s, 1), 0);
	CHECK_EQ(weft_sem_acquire(&s, 1), 0);
	for (int i = 0; i < ORDER_N; i++) {
		o[i] = (struct ordered){.s = &s, .id = i, .started = &started, .next = &next};
		CHECK_EQ(pthread_create(&t[i], NULL, ordered_thread, &o[i]), 0);
		while (atomic_load(&started) != i + 1)
			sleep_ms(1);
		/* long past its spin: it has queued (try_acquire's -EAGAIN
		 * with no token free says nothing, so give it time) */
		sleep_ms(10);
	}
	CHECK_EQ(weft_sem_release(&s, 1), 0);
	for (int i = 0; i < ORDER_N; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(o[i].rc, 0);
		CHECK_EQ(o[i].seen, i);
	}
	check_full(&s, 1);
	weft_sem_destroy(&s);
}

/* acquire_ctx: cancelled while waiting, the ctx's deadline, a grant */
static void test_acquire_ctx(void)
{
	weft_sem_t s;
	weft_ctx_t *ctx, *k;
	pthread_t t;
	CHECK_EQ(weft_sem_init(&s, 2), 0);
	CHECK_EQ(weft_sem_acquire(&s, 2), 0);

	CHECK_EQ(weft_ctx_with_cancel(&ctx, weft_ctx_background()), 0);
	CHECK_EQ(weft_ctx_with_cancel(&k, ctx), 0);
	struct worker w = {.s = &s, .ctx = k, .n = 1};
	CHECK_EQ(pthread_create(&t, NULL, acquire_ctx_thread, &w), 0);
	sleep_ms(2);
	weft_ctx_cancel_cause(ctx, -EIO); /* through the parent */
	pthread_join(t, NULL);
	CHECK_EQ(w.rc, -ECANCELED);
	weft_ctx_release(k);
	weft_ctx_release(ctx);

	CHECK_EQ(weft_ctx_with_timeout(&ctx, weft_ctx_background(), 3 * MS), 0);
	CHECK_EQ(weft_sem_acquire_ctx(&s, 1, ctx), -ETIMEDOUT);
	CHECK_EQ(weft_ctx_err(ctx), -ETIMEDOUT);
	weft_ctx_release(ctx);

	CHECK_EQ(weft_ctx_with_cancel(&ctx, weft_ctx_background()), 0);
	w = (struct worker){.s = &s, .ctx = ctx, .n = 2};
	CHECK_EQ(pthread_create(&t, NULL, acquire_ctx_thread, &w), 0);
	wait_queued(&s);
	CHECK_EQ(weft_sem_release(&s, 2), 0);
	pthread_join(t, NULL);
	CHECK_EQ(w.rc, 0);
	CHECK_EQ(weft_sem_release(&s, 2), 0);
	weft_ctx_release(ctx);
	check_full(&s, 2);
	weft_sem_destroy(&s);
}

/* A granted waiter may free the semaphore as soon as its acquire returns
 * (its own release first): the releaser that granted it must be done with
 * the memory by then (see lib/sem.c, Ordering: CLAIMED until after the
 * unlock). Under ASan a late access is a use after free; the window is a
 * few instructions wide, so this catches a regression only when the
 * releaser is preempted in it: the guarantee is the protocol's. */
static void *grant_then_free_waiter(void *arg)
{
	weft_sem_t *s = arg;
	CHECK_EQ(weft_sem_acquire(s, 2), 0);
	CHECK_EQ(weft_sem_release(s, 2), 0);
	weft_sem_destroy(s);
	free(s);
	return NULL;
}

static void test_granted_waiter_frees(void)
{
	for (int i = 0; i < 100; i++) {
		weft_sem_t *s = malloc(sizeof *s);
		pthread_t t;
		CHECK(s != NULL);
		CHECK_EQ(weft_sem_init(s, 2), 0);
		CHECK_EQ(weft_sem_acquire(s, 1), 0);
		CHECK_EQ(pthread_create(&t, NULL, grant_then_free_waiter, s), 0);
		wait_queued(s); /* it wants 2: queued behind our 1 */
		CHECK_EQ(weft_sem_release(s, 1), 0); /* grants it; s is its now */
		CHECK_EQ(pthread_join(t, NULL), 0);
	}
}

int main(void)
{
	test_watchdog(120);
	fprintf(stderr, "test_sem:\n");
	RUN(test_args);
	RUN(test_try_acquire_port);
	RUN(test_acquire_sequence);
	RUN(test_too_big_doesnt_block);
	RUN(test_large_doesnt_starve);
	RUN(test_cancel_doesnt_starve);
	RUN(test_timeout_wakes_next);
	RUN(test_fifo);
	RUN(test_fifo_order);
	RUN(test_acquire_ctx);
	RUN(test_granted_waiter_frees);
	fprintf(stderr, "all ok\n");
	return 0;
}
