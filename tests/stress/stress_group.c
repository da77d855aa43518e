/* tests/stress/stress_group.c: errgroup under racing submitters and
 * cancellation.
 *
 * Sub-tests:
 *   limit   4 threads call go / try_go on one group with limit 6 while
 *           tasks submit more tasks: never more than 6 in flight, every
 *           admitted task runs exactly once, wait sees them all
 *   cancel  round after round, a group with a derived context: tasks block
 *           on the context with random deadlines, one fails with a round-
 *           specific error, and in some rounds another thread cancels the
 *           parent at a random moment racing the go calls. Every admitted
 *           task runs once; wait returns the failing task's error, or
 *           -ECANCELED only in rounds whose parent was canceled; the derived
 *           context is done with the first error as its cause.
 *
 * Usage: stress_group [size] [tests]. size (default 1, may be fractional)
 * multiplies every count; sanitizer builds divide them by 10.
 * WEFT_STRESS_SEED=<n> in the environment seeds every random stream from n
 * (tests/common/stress.h). The last line, "stress_group: items moved N
 * lost 0", counts admitted tasks checked to have run exactly once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft/ctx.h>
#include <weft/group.h>
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

/* ---- limit ---- */

#define LIMIT 6
#define NSUB 4

static struct {
	weft_group_t *g;
	atomic_int active, max_active;
	atomic_long admitted, ran;
	long per_thread;
} L;

static int l_task(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	int a = atomic_fetch_add(&L.active, 1) + 1;
	CHECK(a <= LIMIT);
	int m = atomic_load(&L.max_active);
	while (a > m && !atomic_compare_exchange_weak(&L.max_active, &m, a))
		;
	atomic_fetch_add(&L.ran, 1);
	atomic_fetch_sub(&L.active, 1);
	/* every 16th task tries to spawn a child; at the limit it is refused
	 * (a blocking go from a task could deadlock the group, as in Go) */
	if (((uintptr_t)arg & 15) == 0 && weft_group_try_go(L.g, l_task, (void *)1) == 0)
		atomic_fetch_add(&L.admitted, 1);
	return 0;
}

static void *l_submit(void *p)
{
	long t = (long)(intptr_t)p;
	for (long i = 0; i < L.per_thread; i++) {
		int rc = (t & 1) ? weft_group_try_go(L.g, l_task, (void *)(intptr_t)i)
				 : weft_group_go(L.g, l_task, (void *)(intptr_t)i);
		if (rc == 0)
			atomic_fetch_add(&L.admitted, 1);
		else
			CHECK_EQ(rc, -EAGAIN);
	}
	return NULL;
}

static void stress_limit(void)
{
	long rounds = scaled(20);
	memset(&L, 0, sizeof L); /* a second pass (tasks) starts afresh */
	L.per_thread = scaled(20000) / rounds;
	CHECK_EQ(weft_group_create(&L.g, NULL, NULL), 0);
	CHECK_EQ(weft_group_set_tasks(L.g, g_tasks), 0); /* the tasks pass: tasks too */
	CHECK_EQ(weft_group_set_limit(L.g, LIMIT), 0);
	for (long r = 0; r < rounds; r++) {
		pthread_t t[NSUB];
		for (long i = 0; i < NSUB; i++)
			CHECK_EQ(participant_create(&t[i], NULL, l_submit, (void *)(intptr_t)i), 0);
		for (int i = 0; i < NSUB; i++)
			participant_join_ret(t[i], NULL);
		CHECK_EQ(weft_group_wait(L.g), 0);
		CHECK_EQ(atomic_load(&L.ran), atomic_load(&L.admitted));
	}
	weft_group_stats_t st;
	weft_group_stats(L.g, &st);
	CHECK(st.max_running <= LIMIT);
	CHECK_EQ(st.started, (uint64_t)atomic_load(&L.admitted));
	stress_moved((uint64_t)atomic_load(&L.ran));
	weft_group_destroy(L.g);
	printf("limit: %ld tasks, max in flight %d, threads alive %u, created %llu\n",
	       atomic_load(&L.ran), atomic_load(&L.max_active), st.threads,
	       (unsigned long long)st.threads_created);
}

/* ---- cancel ---- */

struct c_round {
	weft_ctx_t *parent;
	atomic_long ran;
	int fail_err;
	int64_t cancel_after_ns; /* < 0: the parent is not canceled */
};

static int c_fail(weft_ctx_t *ctx, void *arg)
{
	struct c_round *r = arg;
	(void)ctx;
	atomic_fetch_add(&r->ran, 1);
	return r->fail_err;
}

static int c_block(weft_ctx_t *ctx, void *arg)
{
	struct c_round *r = arg;
	atomic_fetch_add(&r->ran, 1);
	uint64_t seed = stress_seed((uint64_t)atomic_load(&r->ran) * 0x9e3779b97f4a7c15ull + 1);
	int rc = weft_ctx_wait(ctx, weft_deadline((int64_t)(rnd(&seed) % 200000)));
	return rc == -ETIMEDOUT ? 0 : rc; /* a deadline is not a failure */
}

static void *c_canceler(void *p)
{
	struct c_round *r = p;
	struct timespec ts = {0, r->cancel_after_ns};
	nanosleep(&ts, NULL);
	weft_ctx_cancel(r->parent);
	return NULL;
}

static void stress_cancel(void)
{
	long rounds = scaled(400);
	uint64_t seed = stress_seed(88172645463325252ull);
	long canceled = 0, failed = 0;
	for (long i = 0; i < rounds; i++) {
		struct c_round r = {0};
		weft_group_t *g;
		weft_ctx_t *ctx;
		pthread_t t;
		int ntasks = 1 + (int)(rnd(&seed) % 24);
		int fail_at = (int)(rnd(&seed) % (uint64_t)(ntasks * 2)); /* maybe none */
		r.fail_err = -(int)(1000 + i);
		r.cancel_after_ns = (rnd(&seed) & 1) ? (int64_t)(rnd(&seed) % 300000) : -1;
		CHECK_EQ(weft_ctx_with_cancel(&r.parent, weft_ctx_background()), 0);
		CHECK_EQ(weft_group_create(&g, r.parent, &ctx), 0);
		CHECK_EQ(weft_group_set_tasks(g, g_tasks), 0);
		if ((rnd(&seed) & 3) == 0)
			CHECK_EQ(weft_group_set_limit(g, 1 + (int)(rnd(&seed) % 8)), 0);
		if (r.cancel_after_ns >= 0)
			CHECK_EQ(participant_create(&t, NULL, c_canceler, &r), 0);
		for (int k = 0; k < ntasks; k++)
			CHECK_EQ(weft_group_go(g, k == fail_at ? c_fail : c_block, &r), 0);
		int err = weft_group_wait(g);
		if (r.cancel_after_ns >= 0)
			participant_join_ret(t, NULL);
		CHECK_EQ(atomic_load(&r.ran), ntasks);
		CHECK_EQ(weft_ctx_err(ctx), -ECANCELED);
		if (err == -ECANCELED) {
			/* only a canceled parent can make a task see it first */
			CHECK(r.cancel_after_ns >= 0);
			canceled++;
		} else if (fail_at < ntasks) {
			CHECK_EQ(err, r.fail_err);
			if (r.cancel_after_ns < 0)
				CHECK_EQ(weft_ctx_cause(ctx), r.fail_err);
			failed++;
		} else {
			CHECK_EQ(err, 0);
		}
		stress_moved((uint64_t)ntasks);
		weft_group_destroy(g);
		weft_ctx_release(r.parent);
	}
	printf("cancel: %ld rounds, %ld failed first, %ld canceled first\n", rounds, failed,
	       canceled);
}

int main(int argc, char **argv)
{
	if (argc > 1 && atof(argv[1]) > 0)
		g_size = atof(argv[1]);
	const char *only = argc > 2 ? argv[2] : NULL;
	test_watchdog((unsigned)(300 * (g_size < 1 ? 1 : g_size)));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!stress_seed_init("stress_group"))
		return 2;
	/* every participant a thread, then every one a task */
	for (int tasks = 0; tasks < 2; tasks++) {
		participants_tasks(tasks);
		printf("stress_group: participants are %s\n", tasks ? "tasks" : "threads");
		if (!only || strstr(only, "limit"))
			stress_limit();
		if (!only || strstr(only, "cancel"))
			stress_cancel();
	}
	return stress_summary();
}
