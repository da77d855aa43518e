/* tests/unit/test_wg.c: WaitGroup.
 *
 * Every call and error; blocking wait released by done; reuse over many
 * rounds with 16 threads (workers and waiters); misuse (negative counter,
 * overflow) changes nothing; deadlines; a WaitGroup freed by the waiter as
 * soon as wait returns (the last done must not touch it afterwards: ASan);
 * later rounds after a timed-out waiter. (Fork-join through two alternating
 * gates, the benchmark's pattern: tests/stress/stress_wg.c.)
 * No durations are asserted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <weft/chan.h>
#include <weft/sync.h>

#include "check.h"

static void test_wg_args(void)
{
	weft_wg_t wg;
	CHECK_EQ(weft_wg_init(NULL), -EINVAL);
	CHECK_EQ(weft_wg_add(NULL, 1), -EINVAL);
	CHECK_EQ(weft_wg_done(NULL), -EINVAL);
	CHECK_EQ(weft_wg_wait(NULL), -EINVAL);
	CHECK_EQ(weft_wg_wait_until(NULL, WEFT_FOREVER), -EINVAL);
	CHECK_EQ(weft_wg_init(&wg), 0);
	CHECK_EQ(weft_wg_wait(&wg), 0); /* zero: at once */
	CHECK_EQ(weft_wg_wait_until(&wg, 0), 0);
	CHECK_EQ(weft_wg_add(&wg, 0), 0);

	weft_wg_t st = WEFT_WG_INIT;
	CHECK_EQ(weft_wg_wait(&st), 0);
	CHECK_EQ(weft_wg_add(&st, 3), 0);
	CHECK_EQ(weft_wg_done(&st), 0);
	CHECK_EQ(weft_wg_add(&st, -2), 0);
	CHECK_EQ(weft_wg_wait(&st), 0);
}

static void test_wg_misuse(void)
{
	weft_wg_t wg = WEFT_WG_INIT;
	CHECK_EQ(weft_wg_done(&wg), -EINVAL);
	CHECK_EQ(weft_wg_add(&wg, -1), -EINVAL);
	CHECK_EQ(weft_wg_wait(&wg), 0); /* still zero */
	CHECK_EQ(weft_wg_add(&wg, 2), 0);
	CHECK_EQ(weft_wg_add(&wg, -3), -EINVAL); /* nothing changed: still 2 */
	CHECK_EQ(weft_wg_wait_until(&wg, 0), -ETIMEDOUT);
	CHECK_EQ(weft_wg_done(&wg), 0);
	CHECK_EQ(weft_wg_wait_until(&wg, 0), -ETIMEDOUT);
	CHECK_EQ(weft_wg_done(&wg), 0);
	CHECK_EQ(weft_wg_wait_until(&wg, 0), 0);
	CHECK_EQ(weft_wg_done(&wg), -EINVAL);

	/* range: the counter is an int32 */
	CHECK_EQ(weft_wg_add(&wg, (int64_t)INT32_MAX + 1), -EINVAL);
	CHECK_EQ(weft_wg_add(&wg, INT64_MIN), -EINVAL);
	CHECK_EQ(weft_wg_add(&wg, INT32_MAX), 0);
	CHECK_EQ(weft_wg_add(&wg, 1), -EINVAL);
	CHECK_EQ(weft_wg_add(&wg, -INT32_MAX), 0);
	CHECK_EQ(weft_wg_wait(&wg), 0);
}

static void test_wg_deadline(void)
{
	weft_wg_t wg = WEFT_WG_INIT;
	CHECK_EQ(weft_wg_add(&wg, 1), 0);
	int64_t dl = weft_deadline(2000000); /* 2 ms */
	CHECK_EQ(weft_wg_wait_until(&wg, dl), -ETIMEDOUT);
	CHECK(weft_now() >= dl);
	/* the timed-out waiter left nothing behind */
	CHECK_EQ(weft_wg_done(&wg), 0);
	CHECK_EQ(weft_wg_wait(&wg), 0);
	CHECK_EQ(weft_wg_add(&wg, 1), 0);
	CHECK_EQ(weft_wg_wait_until(&wg, weft_deadline(100000)), -ETIMEDOUT);
	CHECK_EQ(weft_wg_done(&wg), 0);
	CHECK_EQ(weft_wg_wait_until(&wg, weft_deadline(100000)), 0);
}

struct worker_arg {
	weft_wg_t *wg;
	int *data;
};

static void *set_and_done(void *p)
{
	struct worker_arg *a = p;
	struct timespec ts = {0, 2000000};
	nanosleep(&ts, NULL); /* let the waiter sleep (not asserted) */
	*a->data = 42;        /* plain: published by done, seen after wait */
	CHECK_EQ(weft_wg_done(a->wg), 0);
	return NULL;
}

static void test_wg_blocks(void)
{
	for (int i = 0; i < 20; i++) {
		weft_wg_t wg = WEFT_WG_INIT;
		int data[4] = {0};
		struct worker_arg a[4];
		pthread_t t[4];
		CHECK_EQ(weft_wg_add(&wg, 4), 0);
		for (int k = 0; k < 4; k++) {
			a[k] = (struct worker_arg){&wg, &data[k]};
			CHECK_EQ(pthread_create(&t[k], NULL, set_and_done, &a[k]), 0);
		}
		CHECK_EQ(i & 1 ? weft_wg_wait(&wg) : weft_wg_wait_until(&wg, WEFT_FOREVER), 0);
		for (int k = 0; k < 4; k++)
			CHECK_EQ(data[k], 42);
		for (int k = 0; k < 4; k++)
			pthread_join(t[k], NULL);
	}
}

/* ---- reuse: 16 worker threads, 4 watcher threads, many rounds ---- */

#define NWORK 16
#define NWATCH 4
#define ROUNDS 400

static struct {
	weft_wg_t wg, watched;
	weft_chan_t *work, *watch;
	atomic_long count;
} R;

static void *reuse_worker(void *p)
{
	(void)p;
	long tok;
	while (weft_chan_recv(R.work, &tok) == 0) {
		atomic_fetch_add_explicit(&R.count, 1, memory_order_relaxed);
		CHECK_EQ(weft_wg_done(&R.wg), 0);
	}
	return NULL;
}

static void *reuse_watcher(void *p)
{
	(void)p;
	long round;
	while (weft_chan_recv(R.watch, &round) == 0) {
		CHECK_EQ(weft_wg_wait(&R.wg), 0);
		/* every done of this round happened before; the next round
		 * starts only once every watcher is through */
		CHECK_EQ(atomic_load_explicit(&R.count, memory_order_relaxed),
			 (round + 1) * NWORK);
		CHECK_EQ(weft_wg_done(&R.watched), 0);
	}
	return NULL;
}

static void test_wg_reuse(void)
{
	pthread_t w[NWORK], v[NWATCH];
	weft_wg_init(&R.wg);
	weft_wg_init(&R.watched);
	CHECK_EQ(weft_chan_create(&R.work, sizeof(long), NWORK), 0);
	CHECK_EQ(weft_chan_create(&R.watch, sizeof(long), NWATCH), 0);
	for (int i = 0; i < NWORK; i++)
		CHECK_EQ(pthread_create(&w[i], NULL, reuse_worker, NULL), 0);
	for (int i = 0; i < NWATCH; i++)
		CHECK_EQ(pthread_create(&v[i], NULL, reuse_watcher, NULL), 0);
	for (long r = 0; r < ROUNDS; r++) {
		CHECK_EQ(weft_wg_add(&R.watched, NWATCH), 0);
		CHECK_EQ(weft_wg_add(&R.wg, NWORK), 0);
		for (int i = 0; i < NWATCH; i++)
			CHECK_EQ(weft_chan_send(R.watch, &r), 0);
		for (int i = 0; i < NWORK; i++)
			CHECK_EQ(weft_chan_send(R.work, &r), 0);
		CHECK_EQ(weft_wg_wait(&R.wg), 0);
		CHECK_EQ(atomic_load(&R.count), (r + 1) * NWORK);
		CHECK_EQ(weft_wg_wait(&R.watched), 0);
	}
	weft_chan_close(R.work);
	weft_chan_close(R.watch);
	for (int i = 0; i < NWORK; i++)
		pthread_join(w[i], NULL);
	for (int i = 0; i < NWATCH; i++)
		pthread_join(v[i], NULL);
	weft_chan_destroy(R.work);
	weft_chan_destroy(R.watch);
}

/* ---- the waiter frees the WaitGroup as soon as wait returns ---- */

static void *done_later(void *p)
{
	CHECK_EQ(weft_wg_done(p), 0);
	return NULL;
}

static void test_wg_free_after_wait(void)
{
	for (int i = 0; i < 300; i++) {
		weft_wg_t *wg = malloc(sizeof *wg);
		CHECK(wg);
		weft_wg_init(wg);
		CHECK_EQ(weft_wg_add(wg, 2), 0);
		pthread_t t[2];
		for (int k = 0; k < 2; k++)
			CHECK_EQ(pthread_create(&t[k], NULL, done_later, wg), 0);
		CHECK_EQ(weft_wg_wait(wg), 0);
		free(wg); /* the last done may still be returning */
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
	}
}

/* ---- a new round started while the last round's waiters still wake ---- */

static weft_wg_t G;

static void *wait_once(void *p)
{
	(void)p;
	CHECK_EQ(weft_wg_wait(&G), 0);
	return NULL;
}

static void test_wg_add_while_waking(void)
{
	for (int i = 0; i < 200; i++) {
		pthread_t t[3];
		weft_wg_init(&G);
		CHECK_EQ(weft_wg_add(&G, 1), 0);
		for (int k = 0; k < 3; k++)
			CHECK_EQ(pthread_create(&t[k], NULL, wait_once, NULL), 0);
		if (i & 1) {
			struct timespec ts = {0, 100000};
			nanosleep(&ts, NULL);
		}
		CHECK_EQ(weft_wg_done(&G), 0);
		/* may meet the release in progress: waits for it, never a
		 * waiter of the old round counted in the new one */
		CHECK_EQ(weft_wg_add(&G, 1), 0);
		CHECK_EQ(weft_wg_wait_until(&G, 0), -ETIMEDOUT);
		CHECK_EQ(weft_wg_done(&G), 0);
		/* old waiters return; a late one waited for the new round */
		for (int k = 0; k < 3; k++)
			pthread_join(t[k], NULL);
		CHECK_EQ(weft_wg_wait(&G), 0);
	}
}

/* ---- a waiter that timed out leaves nothing that breaks later rounds ---- */

static void test_wg_timeout_then_rounds(void)
{
	weft_wg_t wg = WEFT_WG_INIT;
	for (int r = 0; r < 50; r++) {
		CHECK_EQ(weft_wg_add(&wg, 2), 0);
		/* long enough to go past any spin and sleep */
		CHECK_EQ(weft_wg_wait_until(&wg, weft_deadline(200000)), -ETIMEDOUT);
		pthread_t t[2];
		for (int k = 0; k < 2; k++)
			CHECK_EQ(pthread_create(&t[k], NULL, done_later, &wg), 0);
		CHECK_EQ(weft_wg_wait(&wg), 0);
		CHECK_EQ(weft_wg_wait_until(&wg, 0), 0);
		for (int k = 0; k < 2; k++)
			pthread_join(t[k], NULL);
		CHECK_EQ(weft_wg_add(&wg, -1), -EINVAL); /* zero, unchanged */
	}
}

int main(void)
{
	test_watchdog(120);
	RUN(test_wg_args);
	RUN(test_wg_misuse);
	RUN(test_wg_deadline);
	RUN(test_wg_blocks);
	RUN(test_wg_reuse);
	RUN(test_wg_free_after_wait);
	RUN(test_wg_add_while_waking);
	RUN(test_wg_timeout_then_rounds);
	return 0;
}
