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
 *   death   round after round, 4 threads go tasks into one group (a limit
 *           in some rounds) of which one in 6 ends its thread
 *           (pthread_exit, pthread_cancel of itself, from code with and
 *           without unwind info, or blocked in read and canceled by
 *           another thread), and in some rounds one returns an error:
 *           every task runs once, wait returns the first error
 *           (-EOWNERDEAD or the returned one), the derived context has it
 *           as cause, nothing is left in flight (hundreds of deaths: the
 *           sanitizer builds check for leaks)
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
#include <unistd.h>

#include <weft/ctx.h>
#include <weft/group.h>
#include <weft/sync.h>

#include <weft/task.h>

#include "check.h"
#include "die_noeh.h"
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

/* ---- death ---- */

enum { K_OK, K_EXIT = DIE_EXIT, K_EXIT_NOEH = DIE_EXIT_NOEH, K_SELF_CANCEL = DIE_SELF_CANCEL,
       K_CANCEL_NOEH = DIE_CANCEL_NOEH, K_BLOCK = DIE_BLOCK, K_FAIL = DIE_BLOCK + 1 };

struct dslot {
	int kind;
	atomic_int ran, blocked, canceled;
	pthread_t self;
};

static int never_fds[2];

static int d_task(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	struct dslot *d = arg;
	atomic_fetch_add(&d->ran, 1);
	if (d->kind == K_FAIL)
		return -EIO;
	die_as(d->kind, never_fds[0], &d->self, &d->blocked);
	return 0;
}

static struct {
	weft_group_t *g;
	struct dslot *d;
	long n;
	atomic_int stop;
} D;

static void *d_canceller(void *arg)
{
	(void)arg;
	while (!atomic_load(&D.stop)) {
		for (long i = 0; i < D.n; i++) {
			struct dslot *d = &D.d[i];
			if (d->kind == K_BLOCK && atomic_load(&d->blocked) &&
			    !atomic_exchange(&d->canceled, 1))
				CHECK_EQ(pthread_cancel(d->self), 0);
		}
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void *d_submit(void *p)
{
	long t = (long)(intptr_t)p;
	for (long i = t; i < D.n; i += 4)
		CHECK_EQ(weft_group_go(D.g, d_task, &D.d[i]), 0);
	return NULL;
}

static void stress_death(void)
{
	long rounds = scaled(60), per = 120, deaths = 0;
	if (rounds < 6)
		rounds = 6;
	CHECK_EQ(pipe(never_fds), 0);
	D.d = calloc((size_t)per, sizeof *D.d);
	CHECK(D.d);
	D.n = per;
	for (long r = 0; r < rounds; r++) {
		static const int kinds[6] = {K_OK, K_EXIT, K_EXIT_NOEH, K_OK, K_SELF_CANCEL,
					     K_CANCEL_NOEH};
		long ndie = 0;
		bool fails = r % 3 == 0;
		for (long i = 0; i < per; i++) {
			int k = i % 30 == 13 ? K_BLOCK : kinds[(i + r) % 6];
			if (fails && i == per / 2)
				k = K_FAIL;
			D.d[i] = (struct dslot){.kind = k};
			ndie += k != K_OK && k != K_FAIL;
		}
		weft_ctx_t *ctx;
		CHECK_EQ(weft_group_create(&D.g, NULL, &ctx), 0);
		CHECK_EQ(weft_group_set_tasks(D.g, g_tasks), 0);
		if (r % 2)
			CHECK_EQ(weft_group_set_limit(D.g, 1 + (int)(r % 5)), 0);
		atomic_store(&D.stop, 0);
		pthread_t canceller, t[4];
		CHECK_EQ(pthread_create(&canceller, NULL, d_canceller, NULL), 0);
		for (long i = 0; i < 4; i++)
			CHECK_EQ(participant_create(&t[i], NULL, d_submit, (void *)(intptr_t)i), 0);
		for (int i = 0; i < 4; i++)
			participant_join_ret(t[i], NULL);
		int err = weft_group_wait(D.g);
		atomic_store(&D.stop, 1);
		CHECK_EQ(pthread_join(canceller, NULL), 0);
		for (long i = 0; i < per; i++)
			if (atomic_load(&D.d[i].ran) != 1) {
				fprintf(stderr, "round %ld task %ld (kind %d) ran %d times\n", r, i,
					D.d[i].kind, atomic_load(&D.d[i].ran));
				abort();
			}
		if (fails)
			CHECK(err == -EOWNERDEAD || err == -EIO);
		else
			CHECK_EQ(err, -EOWNERDEAD);
		CHECK_EQ(weft_ctx_cause(ctx), err);
		weft_group_stats_t st;
		CHECK_EQ(weft_group_stats(D.g, &st), 0);
		CHECK_EQ(st.started, per);
		CHECK_EQ(st.running, 0);
		weft_group_destroy(D.g);
		deaths += ndie;
	}
	free(D.d);
	close(never_fds[0]);
	close(never_fds[1]);
	printf("death: %ld rounds, %ld tasks ended their thread\n", rounds, deaths);
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
		if (!only || strstr(only, "death"))
			stress_death();
	}
	return stress_summary();
}
