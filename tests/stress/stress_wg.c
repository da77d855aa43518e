/* tests/stress/stress_wg.c: WaitGroup and Once under racing threads.
 *
 * Sub-tests:
 *   rounds  a WaitGroup reused round after round: 8 workers done, 4
 *           watchers wait with very short deadlines (timeouts racing the
 *           final done, deregistration racing the release); a wait that
 *           returned 0 saw every done of its round
 *   free    a heap WaitGroup freed by its waiter as soon as wait returns
 *           while timed waiters and the last done race (ASan/TSan)
 *   gates   fork-join rounds through two alternating gates (1 -> N
 *           release, N -> 1 join; timed waits racing the release): every
 *           thread passes every gate once, wait sees every done
 *   once    many onces hit by 8 threads at once: each function runs
 *           exactly once and every caller gets its result
 *
 * Usage: stress_wg [size] [tests]. size (default 1, may be fractional)
 * multiplies every count; sanitizer builds divide them by 10.
 * WEFT_STRESS_SEED=<n> in the environment seeds every random stream from n
 * (tests/common/stress.h). The last line, "stress_wg: items moved N lost
 * 0", counts dones a wait was checked to have seen (rounds: the workers';
 * free: one per WaitGroup; gates: each thread's per round) and once calls
 * that got their once's result, its function run exactly once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/chan.h>
#include <weft/sync.h>

#include <weft/task.h>

#include "check.h"
#include "participant.h"
#define STRESS_OWN_HARNESS
#include "stress.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define STRESS_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define STRESS_SANITIZED 1
#endif
#endif
#ifndef STRESS_SANITIZED
#define STRESS_SANITIZED 0
#endif

static double g_size = 1.0;

static long scaled(long n)
{
	double v = n * g_size / (STRESS_SANITIZED ? 10 : 1);
	return v < 1 ? 1 : (long)v;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- rounds ---- */

#define NWORK 8
#define NWATCH 4

static struct {
	weft_wg_t wg, watched;
	weft_chan_t *work, *watch;
	atomic_long count;
	atomic_long timeouts;
} R;

static void *r_worker(void *p)
{
	(void)p;
	long tok;
	while (weft_chan_recv(R.work, &tok) == 0) {
		atomic_fetch_add_explicit(&R.count, 1, memory_order_relaxed);
		CHECK_EQ(weft_wg_done(&R.wg), 0);
	}
	return NULL;
}

static void *r_watcher(void *p)
{
	uint64_t seed = stress_seed((uintptr_t)p * 2654435761u + 1);
	long round;
	while (weft_chan_recv(R.watch, &round) == 0) {
		int rc;
		while ((rc = weft_wg_wait_until(&R.wg, weft_deadline((int64_t)(rnd(&seed) % 20000)))) ==
		       -ETIMEDOUT)
			atomic_fetch_add_explicit(&R.timeouts, 1, memory_order_relaxed);
		CHECK_EQ(rc, 0);
		CHECK_EQ(atomic_load_explicit(&R.count, memory_order_relaxed), (round + 1) * NWORK);
		CHECK_EQ(weft_wg_done(&R.watched), 0);
	}
	return NULL;
}

static void stress_rounds(void)
{
	long rounds = scaled(3000);
	pthread_t w[NWORK], v[NWATCH];
	weft_wg_init(&R.wg);
	weft_wg_init(&R.watched);
	atomic_store(&R.count, 0);
	atomic_store(&R.timeouts, 0);
	CHECK_EQ(weft_chan_create(&R.work, sizeof(long), NWORK), 0);
	CHECK_EQ(weft_chan_create(&R.watch, sizeof(long), NWATCH), 0);
	for (long i = 0; i < NWORK; i++)
		CHECK_EQ(participant_create(&w[i], NULL, r_worker, (void *)i), 0);
	for (long i = 0; i < NWATCH; i++)
		CHECK_EQ(participant_create(&v[i], NULL, r_watcher, (void *)(i + 1)), 0);
	for (long r = 0; r < rounds; r++) {
		CHECK_EQ(weft_wg_add(&R.watched, NWATCH), 0);
		CHECK_EQ(weft_wg_add(&R.wg, NWORK), 0);
		for (int i = 0; i < NWATCH; i++)
			CHECK_EQ(weft_chan_send(R.watch, &r), 0);
		for (int i = 0; i < NWORK; i++)
			CHECK_EQ(weft_chan_send(R.work, &r), 0);
		CHECK_EQ(weft_wg_wait(&R.wg), 0);
		CHECK_EQ(weft_wg_wait(&R.watched), 0);
	}
	weft_chan_close(R.work);
	weft_chan_close(R.watch);
	for (int i = 0; i < NWORK; i++)
		participant_join_ret(w[i], NULL);
	for (int i = 0; i < NWATCH; i++)
		participant_join_ret(v[i], NULL);
	weft_chan_destroy(R.work);
	weft_chan_destroy(R.watch);
	stress_moved((uint64_t)rounds * NWORK);
	printf("rounds: %ld rounds, %ld timed-out waits\n", rounds, atomic_load(&R.timeouts));
}

/* ---- free ---- */

struct fr {
	weft_wg_t *wg;
};

static void *fr_timed(void *p)
{
	struct fr *f = p;
	weft_wg_t *wg = f->wg;
	/* timed waits until the round is over; then the main thread may
	 * free wg only after joining us, so this thread never touches freed
	 * memory (the done thread is the one under test) */
	while (weft_wg_wait_until(wg, weft_deadline(3000)) == -ETIMEDOUT)
		;
	return NULL;
}

static void *fr_done(void *p)
{
	CHECK_EQ(weft_wg_done(p), 0);
	return NULL;
}

static void stress_free(void)
{
	long n = scaled(2000);
	for (long i = 0; i < n; i++) {
		weft_wg_t *wg = malloc(sizeof *wg);
		CHECK(wg);
		weft_wg_init(wg);
		CHECK_EQ(weft_wg_add(wg, 1), 0);
		struct fr f = {wg};
		pthread_t a, b;
		CHECK_EQ(participant_create(&a, NULL, fr_timed, &f), 0);
		CHECK_EQ(participant_create(&b, NULL, fr_done, wg), 0);
		CHECK_EQ(weft_wg_wait(wg), 0);
		participant_join_ret(a, NULL);
		free(wg); /* b may still be inside its done */
		participant_join_ret(b, NULL);
	}
	stress_moved((uint64_t)n);
	printf("free: %ld WaitGroups freed right after wait\n", n);
}

/* ---- gates ----
 * The sync/wg benchmark's round, racing: 8 threads wait on gate[r % 2]
 * (some with deadlines short enough to expire around the release), each
 * done()s the measured wg, main arms the next gate before opening this
 * one and checks that wait saw every done of the round. */

#define NGT 8

static struct {
	weft_wg_t wg, gate[2];
	atomic_long arrived;
	long rounds;
} GT;

static void *gt_thread(void *p)
{
	uint64_t seed = stress_seed((uintptr_t)p * 0x9e3779b97f4a7c15u + 1);
	for (long r = 0; r < GT.rounds; r++) {
		weft_wg_t *gate = &GT.gate[r % 2];
		int rc;
		if (rnd(&seed) & 1)
			while ((rc = weft_wg_wait_until(gate, weft_deadline((int64_t)(rnd(&seed) % 30000)))) ==
			       -ETIMEDOUT)
				;
		else
			rc = weft_wg_wait(gate);
		CHECK_EQ(rc, 0);
		atomic_fetch_add_explicit(&GT.arrived, 1, memory_order_relaxed);
		CHECK_EQ(weft_wg_done(&GT.wg), 0);
	}
	return NULL;
}

static void stress_gates(void)
{
	pthread_t t[NGT];
	GT.rounds = scaled(20000);
	weft_wg_init(&GT.wg);
	weft_wg_init(&GT.gate[0]);
	weft_wg_init(&GT.gate[1]);
	atomic_store(&GT.arrived, 0);
	CHECK_EQ(weft_wg_add(&GT.gate[0], 1), 0);
	for (long i = 0; i < NGT; i++)
		CHECK_EQ(participant_create(&t[i], NULL, gt_thread, (void *)(intptr_t)(i + 1)), 0);
	for (long r = 0; r < GT.rounds; r++) {
		CHECK_EQ(weft_wg_add(&GT.wg, NGT), 0);
		CHECK_EQ(weft_wg_add(&GT.gate[(r + 1) % 2], 1), 0);
		CHECK_EQ(weft_wg_done(&GT.gate[r % 2]), 0);
		CHECK_EQ(weft_wg_wait(&GT.wg), 0);
		CHECK_EQ(atomic_load_explicit(&GT.arrived, memory_order_relaxed), (r + 1) * NGT);
	}
	for (int i = 0; i < NGT; i++)
		participant_join_ret(t[i], NULL);
	CHECK_EQ(weft_wg_done(&GT.gate[GT.rounds % 2]), 0); /* armed, never opened */
	CHECK_EQ(weft_wg_done(&GT.gate[GT.rounds % 2]), -EINVAL);
	stress_moved((uint64_t)GT.rounds * NGT);
	printf("gates: %ld rounds x %d threads\n", GT.rounds, NGT);
}

/* ---- once ---- */

#define NONCE_THREADS 8

static struct {
	weft_once_t *o;
	atomic_int *runs;
	long n;
	weft_wg_t start;
} O;

static int once_fn(void *arg)
{
	long i = (long)(intptr_t)arg;
	atomic_fetch_add_explicit(&O.runs[i], 1, memory_order_relaxed);
	return (int)(i % 1000) - 500;
}

static void *once_thread(void *p)
{
	long t = (long)(intptr_t)p;
	CHECK_EQ(weft_wg_wait(&O.start), 0);
	for (long i = 0; i < O.n; i++) {
		/* odd threads walk backwards: they meet the others mid-way */
		long k = (t & 1) ? O.n - 1 - i : i;
		CHECK_EQ(weft_once_try(&O.o[k], once_fn, (void *)(intptr_t)k), (int)(k % 1000) - 500);
	}
	return NULL;
}

static void stress_once(void)
{
	O.n = scaled(20000);
	O.o = calloc((size_t)O.n, sizeof *O.o); /* all zero: WEFT_ONCE_INIT */
	O.runs = calloc((size_t)O.n, sizeof *O.runs);
	CHECK(O.o && O.runs);
	weft_wg_init(&O.start);
	weft_wg_add(&O.start, 1);
	pthread_t t[NONCE_THREADS];
	for (long i = 0; i < NONCE_THREADS; i++)
		CHECK_EQ(participant_create(&t[i], NULL, once_thread, (void *)(intptr_t)i), 0);
	weft_wg_done(&O.start);
	for (int i = 0; i < NONCE_THREADS; i++)
		participant_join_ret(t[i], NULL);
	for (long i = 0; i < O.n; i++)
		CHECK_EQ(atomic_load(&O.runs[i]), 1);
	stress_moved((uint64_t)O.n * NONCE_THREADS);
	free(O.o);
	free(O.runs);
	printf("once: %ld onces x %d threads\n", O.n, NONCE_THREADS);
}

int main(int argc, char **argv)
{
	if (argc > 1 && atof(argv[1]) > 0)
		g_size = atof(argv[1]);
	const char *only = argc > 2 ? argv[2] : NULL;
	test_watchdog((unsigned)(300 * (g_size < 1 ? 1 : g_size)));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!stress_seed_init("stress_wg"))
		return 2;
	/* every participant a thread, then every one a task */
	for (int tasks = 0; tasks < 2; tasks++) {
		participants_tasks(tasks);
		printf("stress_wg: participants are %s\n", tasks ? "tasks" : "threads");
		if (!only || strstr(only, "rounds"))
			stress_rounds();
		if (!only || strstr(only, "free"))
			stress_free();
		if (!only || strstr(only, "gates"))
			stress_gates();
		if (!only || strstr(only, "once"))
			stress_once();
	}
	return stress_summary();
}
