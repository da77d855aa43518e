/* tests/stress/stress_sem.c: the weighted semaphore under contention.
 *
 * Sub-tests:
 *   tokens   8 threads acquire random weights with every kind of call
 *            (acquire, try, short deadlines, contexts cancelled by another
 *            thread, contexts with short deadlines): the tokens held never
 *            exceed the capacity, every successful acquire is released once,
 *            and all tokens are back at the end (nothing leaked by a
 *            timeout or a cancellation, nobody left queued)
 *   convoy   8 threads (more than cores) on capacity 1 and 3, plain and
 *            timed acquires: mutual exclusion, capacity, no waiter left
 *            behind (runnable and sleeping queued waiters, spinners racing
 *            the queue's emptying), tokens back
 *   cancel   acquire_ctx racing the cancellation of its context while
 *            releases race both: each call either got its tokens (and
 *            returns them) or got the ctx's error, never both
 *
 * Usage: stress_sem [size]. size (default 1, may be fractional) multiplies
 * the operation counts; sanitizer builds divide them by 10.
 * WEFT_STRESS_SEED=<n> in the environment seeds every random stream from n
 * (tests/common/stress.h). The last line, "stress_sem: items moved N lost
 * 0", counts acquire calls whose outcome was checked (granted and released
 * once, or refused with nothing taken: every token back at the end).
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

static uint64_t scaled(double base, uint64_t lo)
{
	double v = base * g_size / (STRESS_SANITIZED ? 10 : 1);
	return v < (double)lo ? lo : (uint64_t)v;
}

static uint64_t rnd(uint64_t *s)
{
	/* xorshift64* */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

/* ---- tokens -------------------------------------------------------------- */

enum { NTHREADS = 8, CAP = 16 };

struct shared {
	weft_sem_t sem;
	atomic_llong in_use;
	atomic_llong max_in_use;
	atomic_int stop_cancel;
	_Atomic(weft_ctx_t *) victim; /* a ctx the canceller may cancel */
	_Atomic(weft_ctx_t *) ack;    /* the canceller is done with it */
	uint64_t ops;
};

struct tstat {
	struct shared *sh;
	unsigned id;
	uint64_t ok, fail_busy, fail_time, fail_cancel;
};

static void hold(struct shared *sh, int64_t w, uint64_t *r)
{
	long long u = atomic_fetch_add(&sh->in_use, w) + w;
	CHECK(u <= CAP);
	long long m = atomic_load(&sh->max_in_use);
	while (u > m && !atomic_compare_exchange_weak(&sh->max_in_use, &m, u))
		;
	if ((rnd(r) & 7) == 0)
		weft_yield();
	atomic_fetch_sub(&sh->in_use, w);
	CHECK_EQ(weft_sem_release(&sh->sem, w), 0);
}

static void *tokens_thread(void *arg)
{
	struct tstat *st = arg;
	struct shared *sh = st->sh;
	uint64_t r = stress_seed(0x9E3779B97F4A7C15ULL * (st->id + 1));
	for (uint64_t i = 0; i < sh->ops; i++) {
		/* mostly small weights, sometimes a large one */
		int64_t w = (rnd(&r) & 3) ? 1 + (int64_t)(rnd(&r) % 4) : 1 + (int64_t)(rnd(&r) % CAP);
		int rc;
		weft_ctx_t *ctx = NULL, *none = NULL;
		bool published = false;
		switch (rnd(&r) % 5) {
		case 0:
			rc = weft_sem_acquire(&sh->sem, w);
			break;
		case 1:
			rc = weft_sem_try_acquire(&sh->sem, w);
			break;
		case 2:
			rc = weft_sem_acquire_until(&sh->sem, w,
						    weft_deadline((int64_t)(rnd(&r) % 50000)));
			break;
		case 3:
			/* a ctx that the canceller thread may cancel */
			CHECK_EQ(weft_ctx_with_cancel(&ctx, weft_ctx_background()), 0);
			published = atomic_compare_exchange_strong(&sh->victim, &none, ctx);
			rc = weft_sem_acquire_ctx(&sh->sem, w, ctx);
			break;
		default:
			CHECK_EQ(weft_ctx_with_timeout(&ctx, weft_ctx_background(),
						       (int64_t)(rnd(&r) % 50000)), 0);
			rc = weft_sem_acquire_ctx(&sh->sem, w, ctx);
			break;
		}
		if (published) {
			weft_ctx_t *c = ctx;
			/* take it back before releasing it, or wait until the
			 * canceller, who took it, is done with it */
			if (!atomic_compare_exchange_strong(&sh->victim, &c, NULL)) {
				while (atomic_load(&sh->ack) != ctx)
					weft_yield();
				atomic_store(&sh->ack, NULL);
			}
		}
		if (rc == 0) {
			st->ok++;
			hold(sh, w, &r);
		} else if (rc == -EAGAIN) {
			st->fail_busy++;
		} else if (rc == -ETIMEDOUT) {
			st->fail_time++;
		} else {
			CHECK_EQ(rc, -ECANCELED);
			CHECK(ctx != NULL);
			st->fail_cancel++;
		}
		if (rc && ctx)
			CHECK_EQ(weft_ctx_err(ctx), rc);
		weft_ctx_release(ctx);
	}
	return NULL;
}

/* Now and then cancels the ctx a worker has published (one at a time):
 * it takes it out of victim, cancels it, and acks, after which the worker
 * may release it. */
static void *canceller_thread(void *arg)
{
	struct shared *sh = arg;
	uint64_t r = stress_seed(12345);
	while (!atomic_load(&sh->stop_cancel)) {
		weft_ctx_t *c = atomic_load(&sh->victim);
		/* one at a time: the last ack must have been seen */
		if (c && !atomic_load(&sh->ack) && (rnd(&r) & 1) &&
		    atomic_compare_exchange_strong(&sh->victim, &c, NULL))
		{
			weft_ctx_cancel(c);
			atomic_store(&sh->ack, c);
		}
		weft_yield();
	}
	return NULL;
}

static void run_tokens(void)
{
	struct shared sh = {.ops = scaled(20000, 500)};
	struct tstat st[NTHREADS];
	pthread_t t[NTHREADS], tc;
	CHECK_EQ(weft_sem_init(&sh.sem, CAP), 0);
	int64_t t0 = weft_now();
	CHECK_EQ(participant_create(&tc, NULL, canceller_thread, &sh), 0);
	for (unsigned i = 0; i < NTHREADS; i++) {
		st[i] = (struct tstat){.sh = &sh, .id = i};
		CHECK_EQ(participant_create(&t[i], NULL, tokens_thread, &st[i]), 0);
	}
	uint64_t ok = 0, busy = 0, tmo = 0, can = 0;
	for (unsigned i = 0; i < NTHREADS; i++) {
		participant_join_ret(t[i], NULL);
		ok += st[i].ok;
		busy += st[i].fail_busy;
		tmo += st[i].fail_time;
		can += st[i].fail_cancel;
	}
	atomic_store(&sh.stop_cancel, 1);
	participant_join_ret(tc, NULL);
	CHECK_EQ(atomic_load(&sh.in_use), 0);
	/* every token is back and nobody is queued */
	CHECK_EQ(weft_sem_try_acquire(&sh.sem, CAP), 0);
	CHECK_EQ(weft_sem_release(&sh.sem, CAP), 0);
	CHECK_EQ(weft_sem_release(&sh.sem, 1), -EINVAL);
	weft_sem_destroy(&sh.sem);
	stress_moved(sh.ops * NTHREADS);
	fprintf(stderr, "stress_sem tokens: %llu ops, %llu ok, %llu busy, %llu timed out, "
		"%llu cancelled, max in use %lld/%d, %.1f ms\n",
		(unsigned long long)(sh.ops * NTHREADS), (unsigned long long)ok,
		(unsigned long long)busy, (unsigned long long)tmo, (unsigned long long)can,
		(long long)atomic_load(&sh.max_in_use), CAP,
		(double)(weft_now() - t0) / 1e6);
}

/* ---- convoy -------------------------------------------------------------- */

/* More threads than cores hammer a small semaphore with plain and timed
 * acquires: blocked acquires spin unqueued, then queue (staying runnable a
 * while, then sleeping), so spinners, queued waiters, grants, timeouts and
 * the queue emptying all race. Checks mutual exclusion at
 * capacity 1 (a plain counter), the capacity at 3, that nobody sleeps
 * forever (the watchdog), and that all tokens come back. */
struct cvshared {
	weft_sem_t sem;
	int64_t cap;
	uint64_t ops, counter; /* counter: plain, guarded when cap == 1 */
	atomic_llong in_use;
};

struct cvthread {
	struct cvshared *sh;
	unsigned id;
	uint64_t done, timed_out;
};

static void *convoy_thread(void *arg)
{
	struct cvthread *t = arg;
	struct cvshared *sh = t->sh;
	uint64_t r = stress_seed(0xD1B54A32D192ED03ULL * (t->id + 1));
	while (t->done < sh->ops) {
		int64_t w = sh->cap == 1 ? 1 : 1 + (int64_t)(rnd(&r) % (uint64_t)sh->cap);
		int rc;
		if ((rnd(&r) & 7) == 0)
			rc = weft_sem_acquire_until(&sh->sem, w,
						    weft_deadline((int64_t)(rnd(&r) % 20000)));
		else
			rc = weft_sem_acquire(&sh->sem, w);
		if (rc == -ETIMEDOUT) {
			t->timed_out++;
			continue;
		}
		CHECK_EQ(rc, 0);
		CHECK(atomic_fetch_add(&sh->in_use, w) + w <= sh->cap);
		if (sh->cap == 1)
			sh->counter++;
		if ((rnd(&r) & 63) == 0)
			weft_yield(); /* now and then lose the core holding tokens */
		atomic_fetch_sub(&sh->in_use, w);
		CHECK_EQ(weft_sem_release(&sh->sem, w), 0);
		t->done++;
	}
	return NULL;
}

static void run_convoy(int64_t cap)
{
	enum { T = 8 };
	struct cvshared sh = {.cap = cap, .ops = scaled(50000, 1000)};
	struct cvthread th[T];
	pthread_t t[T];
	uint64_t tmo = 0;
	int64_t t0 = weft_now();
	CHECK_EQ(weft_sem_init(&sh.sem, cap), 0);
	for (unsigned i = 0; i < T; i++) {
		th[i] = (struct cvthread){.sh = &sh, .id = i};
		CHECK_EQ(participant_create(&t[i], NULL, convoy_thread, &th[i]), 0);
	}
	for (unsigned i = 0; i < T; i++) {
		participant_join_ret(t[i], NULL);
		tmo += th[i].timed_out;
	}
	if (cap == 1)
		CHECK_EQ(sh.counter, sh.ops * T);
	CHECK_EQ(atomic_load(&sh.in_use), 0);
	CHECK_EQ(weft_sem_try_acquire(&sh.sem, cap), 0);
	CHECK_EQ(weft_sem_release(&sh.sem, cap), 0);
	weft_sem_destroy(&sh.sem);
	stress_moved(sh.ops * T + tmo);
	fprintf(stderr, "stress_sem convoy cap %lld: %llu ops, %llu timed out, %.1f ms\n",
		(long long)cap, (unsigned long long)(sh.ops * T), (unsigned long long)tmo,
		(double)(weft_now() - t0) / 1e6);
}

/* ---- cancel -------------------------------------------------------------- */

struct cround {
	weft_sem_t *sem;
	weft_ctx_t *ctx;
	int64_t n;
	int rc;
	atomic_int *go;
};

static void *cancel_waiter(void *arg)
{
	struct cround *c = arg;
	while (!atomic_load(c->go))
		;
	c->rc = weft_sem_acquire_ctx(c->sem, c->n, c->ctx);
	return NULL;
}

static void run_cancel(void)
{
	enum { W = 3 };
	uint64_t rounds = scaled(1500, 50), got = 0, cancelled = 0;
	uint64_t r = stress_seed(777);
	weft_sem_t sem;
	int64_t t0 = weft_now();
	CHECK_EQ(weft_sem_init(&sem, 4), 0);
	for (uint64_t i = 0; i < rounds; i++) {
		weft_ctx_t *ctx;
		atomic_int go = 0;
		struct cround c[W];
		pthread_t t[W];
		CHECK_EQ(weft_ctx_with_cancel(&ctx, weft_ctx_background()), 0);
		/* hold everything: the waiters queue, then race the release
		 * below against the cancel */
		CHECK_EQ(weft_sem_acquire(&sem, 4), 0);
		for (int k = 0; k < W; k++) {
			c[k] = (struct cround){&sem, ctx, 1 + (int64_t)(rnd(&r) % 4), 1, &go};
			CHECK_EQ(participant_create(&t[k], NULL, cancel_waiter, &c[k]), 0);
		}
		atomic_store(&go, 1);
		if (rnd(&r) & 1)
			weft_yield();
		if (rnd(&r) & 1) {
			CHECK_EQ(weft_sem_release(&sem, 4), 0);
			weft_ctx_cancel(ctx);
		} else {
			weft_ctx_cancel(ctx);
			CHECK_EQ(weft_sem_release(&sem, 4), 0);
		}
		for (int k = 0; k < W; k++) {
			participant_join_ret(t[k], NULL);
			if (c[k].rc == 0) {
				got++;
				CHECK_EQ(weft_sem_release(&sem, c[k].n), 0);
			} else {
				CHECK_EQ(c[k].rc, -ECANCELED);
				cancelled++;
			}
		}
		/* all 4 back, nobody queued */
		CHECK_EQ(weft_sem_try_acquire(&sem, 4), 0);
		CHECK_EQ(weft_sem_release(&sem, 4), 0);
		weft_ctx_release(ctx);
	}
	weft_sem_destroy(&sem);
	stress_moved(got + cancelled);
	fprintf(stderr, "stress_sem cancel: %llu rounds, %llu acquired, %llu cancelled, %.1f ms\n",
		(unsigned long long)rounds, (unsigned long long)got,
		(unsigned long long)cancelled, (double)(weft_now() - t0) / 1e6);
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
	if (!stress_seed_init("stress_sem"))
		return 2;
	test_watchdog((unsigned)(300 * (g_size < 1 ? 1 : g_size)));
	/* every participant a thread, then every one a task */
	for (int tasks = 0; tasks < 2; tasks++) {
		participants_tasks(tasks);
		fprintf(stderr, "stress_sem: participants are %s\n", tasks ? "tasks" : "threads");
		run_tokens();
		run_convoy(1);
		run_convoy(3);
		run_cancel();
	}
	fprintf(stderr, "stress_sem: all ok\n");
	return stress_summary();
}
