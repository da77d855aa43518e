/* tests/stress/stress_ctx.c: contexts under concurrency.
 *
 * Sub-tests:
 *   tree      threads create and release children (and grandchildren) of a
 *             shared parent while another thread cancels it: every child
 *             ends done with the parent's cause or its own, the parent's
 *             children list ends empty, and every context is freed
 *   wait      waiters (weft_ctx_wait, some with short deadlines) race the
 *             cancellation and the deadline of their context: a wait
 *             without a deadline returns exactly the context's final error
 *   afterfunc after funcs and stop racing cancel and deadlines: each fn
 *             runs exactly when its stop did not win
 *
 * Usage: stress_ctx [size]. size (default 1, may be fractional) multiplies
 * the round counts; sanitizer builds divide them by 10. WEFT_STRESS_SEED=<n>
 * in the environment seeds every random stream from n
 * (tests/common/stress.h). The last line, "stress_ctx: items moved N lost
 * 0", counts contexts made and freed (tree), waits that returned what they
 * must (wait) and after funcs that ran or were stopped, exactly one of the
 * two (afterfunc).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <weft/ctx.h>

#include <weft/task.h>

#include "check.h"
#include "participant.h"
#include "internal/ctx_impl.h"
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

static uint64_t scaled(double base, uint64_t lo)
{
	double v = base * g_size / (STRESS_SANITIZED ? 10 : 1);
	return v < (double)lo ? lo : (uint64_t)v;
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- tree ---------------------------------------------------------------- */

enum { TREE_THREADS = 4, TREE_KEEP = 64 };

struct tree {
	weft_ctx_t *parent;
	atomic_int go;
	unsigned id;
	uint64_t made;
};

static void *tree_thread(void *arg)
{
	struct tree *t = arg;
	weft_ctx_t *keep[TREE_KEEP];
	unsigned nk = 0;
	uint64_t r = stress_seed(0xABCDEFULL + t->id);
	while (!atomic_load(&t->go))
		;
	for (int i = 0; i < 400; i++) {
		weft_ctx_t *c, *g;
		CHECK_EQ(weft_ctx_with_cancel(&c, t->parent), 0);
		CHECK_EQ(weft_ctx_with_timeout(&g, c, (int64_t)(rnd(&r) % 200000)), 0);
		t->made += 2;
		switch (rnd(&r) % 3) {
		case 0: /* release at once, child first or parent first */
			if (rnd(&r) & 1) {
				weft_ctx_release(g);
				weft_ctx_release(c);
			} else {
				weft_ctx_release(c);
				CHECK(weft_ctx_err(g) != 0);
				weft_ctx_release(g);
			}
			break;
		case 1:
			weft_ctx_cancel_cause(c, -EIO);
			CHECK(weft_ctx_cause(c) == -EIO || weft_ctx_cause(c) == -EPIPE);
			CHECK(weft_ctx_err(g) != 0);
			weft_ctx_release(g);
			weft_ctx_release(c);
			break;
		default: /* keep for later: must be cancelled by the parent */
			if (nk + 2 <= TREE_KEEP) {
				keep[nk++] = c;
				keep[nk++] = g;
			} else {
				weft_ctx_release(c);
				weft_ctx_release(g);
			}
		}
	}
	/* once the parent is cancelled, everything kept is done */
	CHECK_EQ(weft_ctx_wait(t->parent, WEFT_FOREVER), -ECANCELED);
	for (unsigned i = 0; i < nk; i++) {
		int e = weft_ctx_err(keep[i]);
		int cause = weft_ctx_cause(keep[i]);
		CHECK(e == -ECANCELED || e == -ETIMEDOUT);
		CHECK(cause == -EPIPE || cause == -ETIMEDOUT);
		weft_ctx_release(keep[i]);
	}
	return NULL;
}

static void run_tree(void)
{
	uint64_t rounds = scaled(40, 4), made = 0;
	uint64_t live0 = weft__ctx_live();
	int64_t t0 = weft_now();
	for (uint64_t i = 0; i < rounds; i++) {
		weft_ctx_t *p;
		struct tree t[TREE_THREADS];
		pthread_t th[TREE_THREADS];
		CHECK_EQ(weft_ctx_with_cancel(&p, weft_ctx_background()), 0);
		for (unsigned k = 0; k < TREE_THREADS; k++) {
			t[k] = (struct tree){.parent = p, .id = k + (unsigned)i * 16};
			CHECK_EQ(participant_create(&th[k], NULL, tree_thread, &t[k]), 0);
		}
		for (unsigned k = 0; k < TREE_THREADS; k++)
			atomic_store(&t[k].go, 1);
		/* cancel racing the creations */
		if (i & 1)
			weft_yield();
		weft_ctx_cancel_cause(p, -EPIPE);
		for (unsigned k = 0; k < TREE_THREADS; k++) {
			participant_join_ret(th[k], NULL);
			made += t[k].made;
		}
		CHECK_EQ(weft__ctx_nchildren(p), 0);
		weft_ctx_release(p);
	}
	/* timer/runner hold no references here (no after funcs) */
	CHECK_EQ(weft__ctx_live(), live0);
	stress_moved(made);
	fprintf(stderr, "stress_ctx tree: %llu rounds, %llu contexts, %.1f ms\n",
		(unsigned long long)rounds, (unsigned long long)made,
		(double)(weft_now() - t0) / 1e6);
}

/* ---- wait ---------------------------------------------------------------- */

enum { WAITERS = 4 };

struct waiter {
	weft_ctx_t *ctx;
	int64_t deadline;
	int rc;
};

static void *wait_thread(void *arg)
{
	struct waiter *w = arg;
	w->rc = weft_ctx_wait(w->ctx, w->deadline);
	return NULL;
}

static void run_wait(void)
{
	uint64_t rounds = scaled(1500, 50), r = stress_seed(4242);
	uint64_t n_cancel = 0, n_time = 0, n_own = 0;
	int64_t t0 = weft_now();
	for (uint64_t i = 0; i < rounds; i++) {
		weft_ctx_t *root, *ctx, *mid = NULL;
		struct waiter w[WAITERS];
		pthread_t th[WAITERS];
		CHECK_EQ(weft_ctx_with_cancel(&root, weft_ctx_background()), 0);
		/* the deadline on the parent or on the ctx itself */
		int64_t tmo = 1000 + (int64_t)(rnd(&r) % 100000);
		if (rnd(&r) & 1) {
			CHECK_EQ(weft_ctx_with_timeout(&ctx, root, tmo), 0);
		} else {
			CHECK_EQ(weft_ctx_with_timeout(&mid, root, tmo), 0);
			CHECK_EQ(weft_ctx_with_cancel(&ctx, mid), 0);
		}
		for (int k = 0; k < WAITERS; k++) {
			/* half wait forever, half with their own short deadline */
			w[k] = (struct waiter){ctx,
				(k & 1) ? weft_deadline((int64_t)(rnd(&r) % 100000)) : WEFT_FOREVER, 1};
			CHECK_EQ(participant_create(&th[k], NULL, wait_thread, &w[k]), 0);
		}
		int64_t spin = (int64_t)(rnd(&r) % 100000);
		int64_t until = weft_now() + spin;
		while (weft_now() < until)
			;
		if (rnd(&r) & 1)
			weft_ctx_cancel_cause(root, -EIO);
		for (int k = 0; k < WAITERS; k++)
			participant_join_ret(th[k], NULL);
		/* without a deadline of its own: done, and its error */
		int e = weft_ctx_err(ctx);
		for (int k = 0; k < WAITERS; k += 2)
			CHECK_EQ(w[k].rc, e);
		for (int k = 1; k < WAITERS; k += 2) {
			CHECK(w[k].rc == e || w[k].rc == -ETIMEDOUT);
			n_own += w[k].rc == -ETIMEDOUT;
		}
		if (e == -ECANCELED) {
			n_cancel++;
			CHECK_EQ(weft_ctx_cause(ctx), -EIO);
		} else {
			CHECK_EQ(e, -ETIMEDOUT);
			CHECK_EQ(weft_ctx_cause(ctx), -ETIMEDOUT);
			n_time++;
		}
		weft_ctx_release(ctx);
		weft_ctx_release(mid);
		weft_ctx_release(root);
	}
	stress_moved(rounds * WAITERS);
	fprintf(stderr, "stress_ctx wait: %llu rounds, %llu cancelled, %llu deadlines, "
		"%llu own timeouts, %.1f ms\n",
		(unsigned long long)rounds, (unsigned long long)n_cancel,
		(unsigned long long)n_time, (unsigned long long)n_own,
		(double)(weft_now() - t0) / 1e6);
}

/* ---- afterfunc ----------------------------------------------------------- */

static atomic_llong af_ran;

static void af_fn(void *arg)
{
	atomic_fetch_add(&af_ran, 1);
	atomic_fetch_add((atomic_int *)arg, 1);
}

struct afstop {
	weft_ctx_stop_t *st[4];
	int stopped;
	atomic_int *go;
};

static void *af_stop_thread(void *arg)
{
	struct afstop *a = arg;
	while (!atomic_load(a->go))
		;
	for (int k = 0; k < 4; k++)
		a->stopped += weft_ctx_stop(a->st[k]);
	return NULL;
}

static void run_afterfunc(void)
{
	atomic_store(&af_ran, 0); /* a second pass (tasks) starts afresh */
	uint64_t rounds = scaled(1500, 50), r = stress_seed(99);
	int64_t t0 = weft_now();
	int *ran = calloc(rounds, sizeof *ran);
	int *stopped = calloc(rounds, sizeof *stopped);
	weft_ctx_t **ctxs = calloc(rounds, sizeof *ctxs);
	CHECK(ran && stopped && ctxs);
	long long total_stopped = 0;
	for (uint64_t i = 0; i < rounds; i++) {
		atomic_int go = 0;
		struct afstop a = {.go = &go};
		pthread_t th;
		weft_ctx_t *c;
		CHECK_EQ(weft_ctx_with_timeout(&c, weft_ctx_background(),
					       (int64_t)(rnd(&r) % 200000)), 0);
		for (int k = 0; k < 4; k++)
			CHECK_EQ(weft_ctx_after_func(c, af_fn, &ran[i], &a.st[k]), 0);
		CHECK_EQ(participant_create(&th, NULL, af_stop_thread, &a), 0);
		atomic_store(&go, 1);
		if (rnd(&r) & 1)
			weft_ctx_cancel(c);
		participant_join_ret(th, NULL);
		for (int k = 0; k < 4; k++)
			weft_ctx_stop_release(a.st[k]);
		stopped[i] = a.stopped;
		total_stopped += a.stopped;
		ctxs[i] = c;
	}
	/* every ctx done, then every fn decided: wait for the count */
	for (uint64_t i = 0; i < rounds; i++)
		weft_ctx_cancel(ctxs[i]);
	long long want = (long long)rounds * 4 - total_stopped;
	while (atomic_load(&af_ran) < want)
		sleep_ms(1);
	sleep_ms(5); /* a stray extra run would show now */
	CHECK_EQ(atomic_load(&af_ran), want);
	for (uint64_t i = 0; i < rounds; i++) {
		CHECK_EQ(ran[i] + stopped[i], 4);
		weft_ctx_release(ctxs[i]);
	}
	stress_moved(rounds * 4);
	fprintf(stderr, "stress_ctx afterfunc: %llu rounds, %lld stopped, %lld ran, %.1f ms\n",
		(unsigned long long)rounds, total_stopped, want,
		(double)(weft_now() - t0) / 1e6);
	free(ran);
	free(stopped);
	free(ctxs);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		g_size = strtod(argv[1], NULL);
		if (!(g_size > 0)) {
			fprintf(stderr, "usage: %s [size > 0]\n", argv[0]);
			return 2;
		}
	}
	if (!stress_seed_init("stress_ctx"))
		return 2;
	test_watchdog((unsigned)(300 * (g_size < 1 ? 1 : g_size)));
	/* every participant a thread, then every one a task */
	for (int tasks = 0; tasks < 2; tasks++) {
		participants_tasks(tasks);
		fprintf(stderr, "stress_ctx: participants are %s\n", tasks ? "tasks" : "threads");
		run_tree();
		run_wait();
		run_afterfunc();
	}
	fprintf(stderr, "stress_ctx: all ok\n");
	return stress_summary();
}
