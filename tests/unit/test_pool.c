/* tests/unit/test_pool.c: the worker pool, call by call.
 *
 * Arguments and errors (create, submit variants, wait, shutdown, stats);
 * defaults; jobs run once and stats add up; on_error with the job's arg;
 * a full queue: try_submit -EAGAIN, submit_until -ETIMEDOUT (also with a
 * passed deadline), submit_ctx canceled while blocked and with a done
 * context, a blocked submit released by a pop, and blocked submitters
 * refused by shutdown; wait sees every earlier job; self-submit on a full
 * queue runs inline; shutdown DRAIN runs the queue, CANCEL discards it
 * (on_discard once per job), twice, CANCEL after DRAIN, from inside a job;
 * wait from a job is -EDEADLK; thread names; sched_batch (the workers'
 * policy, and the normal one by default); dynamic sizing starts and
 * retires workers; the wake policy on an idle pool (few futex wakes);
 * beyond one awake worker per core, the monitor wakes more for jobs
 * blocked outside weft (all of them run at once) and for jobs asleep in
 * weft waiting for a job still queued (no deadlock). Jobs that end their
 * worker's thread (pthread_exit, pthread_cancel of themselves, from code
 * with and without unwind info, and a worker canceled by another thread
 * while blocked in read), as threads and as tasks: on_error sees exactly
 * those (-EOWNERDEAD), every other job runs once, the pool is back to its
 * size and shuts down; one that dies in a job run inline (its outer job
 * dies with it), and in on_error (reported once); a submitter canceled
 * while blocked in weft is not canceled there.
 * Every test is guarded by the watchdog; no durations are asserted.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <weft/ctx.h>
#include <weft/chan.h>
#include <weft/pool.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "check.h"
#include "die_noeh.h"

static void nap(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static int ret_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

static int count_job(void *arg)
{
	atomic_fetch_add((atomic_long *)arg, 1);
	return 0;
}

/* A gate: jobs block until opened (a WaitGroup at 1). */
static weft_wg_t gate;
static atomic_int gate_in;

static int gated(void *arg)
{
	atomic_fetch_add(&gate_in, 1);
	weft_wg_wait(&gate);
	if (arg)
		atomic_fetch_add((atomic_long *)arg, 1);
	return 0;
}

static void gate_close(void)
{
	weft_wg_init(&gate);
	weft_wg_add(&gate, 1);
	atomic_store(&gate_in, 0);
}

static void gate_open(void)
{
	weft_wg_done(&gate);
}

static int open_gate_job(void *arg)
{
	(void)arg;
	gate_open();
	return 0;
}

static void *opener_main(void *arg)
{
	(void)arg;
	nap(1000);
	gate_open();
	return NULL;
}

static void wait_in(int n)
{
	while (atomic_load(&gate_in) < n)
		nap(100);
}

static void test_args(void)
{
	weft_pool_t *p;
	weft_pool_opts_t o = {0};
	weft_pool_stats_t st;

	CHECK_EQ(weft_pool_create(NULL, NULL), -EINVAL);
	CHECK_EQ(weft_pool_create(&p, &o), -EINVAL); /* zero workers, no range */
	o = (weft_pool_opts_t){.min_workers = 3, .max_workers = 2};
	CHECK_EQ(weft_pool_create(&p, &o), -EINVAL);
	o = (weft_pool_opts_t){.workers = 2, .max_workers = 4};
	CHECK_EQ(weft_pool_create(&p, &o), -EINVAL);
	o = (weft_pool_opts_t){.workers = WEFT_POOL_MAX_WORKERS + 1};
	CHECK_EQ(weft_pool_create(&p, &o), -EINVAL);
	o = (weft_pool_opts_t){.workers = 1, .idle_timeout_ns = -1};
	CHECK_EQ(weft_pool_create(&p, &o), -EINVAL);
	o = (weft_pool_opts_t){.workers = 1, .queue_capacity = WEFT_POOL_MAX_QUEUE + 1};
	CHECK_EQ(weft_pool_create(&p, &o), -ENOMEM);
	o = (weft_pool_opts_t){.workers = 1, .queue_capacity = SIZE_MAX};
	CHECK_EQ(weft_pool_create(&p, &o), -ENOMEM);

	CHECK_EQ(weft_pool_submit(NULL, ret_arg, NULL), -EINVAL);
	CHECK_EQ(weft_pool_try_submit(NULL, ret_arg, NULL), -EINVAL);
	CHECK_EQ(weft_pool_submit_until(NULL, ret_arg, NULL, WEFT_FOREVER), -EINVAL);
	CHECK_EQ(weft_pool_submit_ctx(NULL, ret_arg, NULL, weft_ctx_background()), -EINVAL);
	CHECK_EQ(weft_pool_wait(NULL), -EINVAL);
	CHECK_EQ(weft_pool_shutdown(NULL, WEFT_POOL_DRAIN), -EINVAL);
	CHECK_EQ(weft_pool_stats(NULL, &st), -EINVAL);
	weft_pool_destroy(NULL);

	o = (weft_pool_opts_t){.workers = 2, .queue_capacity = 4};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	CHECK_EQ(weft_pool_submit(p, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_pool_try_submit(p, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_pool_submit_until(p, NULL, NULL, WEFT_FOREVER), -EINVAL);
	CHECK_EQ(weft_pool_submit_ctx(p, NULL, NULL, weft_ctx_background()), -EINVAL);
	CHECK_EQ(weft_pool_submit_ctx(p, ret_arg, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_pool_shutdown(p, 0), -EINVAL);
	CHECK_EQ(weft_pool_shutdown(p, 3), -EINVAL);
	CHECK_EQ(weft_pool_stats(p, NULL), -EINVAL);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.submitted, 0);
	CHECK_EQ(st.workers, 2);
	CHECK_EQ(st.workers_started, 2);
	CHECK_EQ(weft_pool_wait(p), 0);
	/* the failed calls changed nothing: the pool still works */
	atomic_long n = 0;
	CHECK_EQ(weft_pool_submit(p, count_job, &n), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(atomic_load(&n), 1);
	CHECK_EQ(weft_pool_shutdown(p, WEFT_POOL_DRAIN), 0);
	CHECK_EQ(weft_pool_shutdown(p, WEFT_POOL_DRAIN), -EPIPE);
	CHECK_EQ(weft_pool_shutdown(p, WEFT_POOL_CANCEL), -EPIPE);
	CHECK_EQ(weft_pool_submit(p, count_job, &n), -EPIPE);
	CHECK_EQ(weft_pool_try_submit(p, count_job, &n), -EPIPE);
	CHECK_EQ(weft_pool_submit_until(p, count_job, &n, 0), -EPIPE);
	CHECK_EQ(weft_pool_submit_ctx(p, count_job, &n, weft_ctx_background()), -EPIPE);
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.submitted, 1);
	CHECK_EQ(st.completed, 1);
	CHECK_EQ(st.workers, 0);
	weft_pool_destroy(p);
}

static void test_defaults(void)
{
	weft_pool_t *p;
	weft_pool_stats_t st;
	atomic_long n = 0;
	CHECK_EQ(weft_pool_create(&p, NULL), 0);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK(st.workers >= 1);
	for (int i = 0; i < 2000; i++) /* more than the default queue */
		CHECK_EQ(weft_pool_submit(p, count_job, &n), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(atomic_load(&n), 2000);
	weft_pool_destroy(p); /* without shutdown: drains */
}

/* ---- errors ---- */

static atomic_long err_calls, err_sum;
static void *_Atomic err_user_seen;

static void on_err(weft_job_fn fn, void *arg, int rc, void *user)
{
	CHECK(fn == ret_arg);
	CHECK_EQ((intptr_t)arg, rc);
	err_user_seen = user;
	atomic_fetch_add(&err_calls, 1);
	atomic_fetch_add(&err_sum, rc);
}

static void test_errors(void)
{
	weft_pool_t *p;
	weft_pool_stats_t st;
	int user;
	weft_pool_opts_t o = {.workers = 3, .queue_capacity = 8, .on_error = on_err, .user = &user};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	long sum = 0;
	for (int i = 0; i < 100; i++) {
		int rc = i % 3 == 0 ? i : 0;
		sum += rc;
		CHECK_EQ(weft_pool_submit(p, ret_arg, (void *)(intptr_t)rc), 0);
	}
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(atomic_load(&err_calls), 33); /* 3, 6, ..., 99 (0 is success) */
	CHECK_EQ(atomic_load(&err_sum), sum);
	CHECK(err_user_seen == &user);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.submitted, 100);
	CHECK_EQ(st.completed, 100);
	CHECK_EQ(st.failed, 33);
	CHECK_EQ(st.workers, 3); /* failures never shrink the pool */
	weft_pool_destroy(p);
}

/* ---- full queue ---- */

struct blocked_sub {
	weft_pool_t *p;
	atomic_long *n;
	int mode; /* 0 submit, 1 until forever, 2 ctx */
	weft_ctx_t *ctx;
	int rc;
	pthread_t t;
};

static void *blocked_submitter(void *arg)
{
	struct blocked_sub *b = arg;
	if (b->mode == 0)
		b->rc = weft_pool_submit(b->p, count_job, b->n);
	else if (b->mode == 1)
		b->rc = weft_pool_submit_until(b->p, count_job, b->n, WEFT_FOREVER);
	else
		b->rc = weft_pool_submit_ctx(b->p, count_job, b->n, b->ctx);
	return NULL;
}

static void wait_blocked(weft_pool_t *p, uint64_t n)
{
	weft_pool_stats_t st;
	do {
		nap(200);
		CHECK_EQ(weft_pool_stats(p, &st), 0);
	} while (st.submits_blocked < n);
	nap(2000); /* let it reach the futex (not needed for correctness) */
}

static void test_full(void)
{
	weft_pool_t *p;
	weft_pool_stats_t st;
	atomic_long n = 0, g = 0;
	weft_pool_opts_t o = {.workers = 1, .queue_capacity = 2};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	gate_close();
	CHECK_EQ(weft_pool_submit(p, gated, &g), 0);
	wait_in(1); /* the worker is busy */
	CHECK_EQ(weft_pool_try_submit(p, count_job, &n), 0);
	CHECK_EQ(weft_pool_try_submit(p, count_job, &n), 0);
	CHECK_EQ(weft_pool_try_submit(p, count_job, &n), -EAGAIN);
	CHECK_EQ(weft_pool_submit_until(p, count_job, &n, 0), -ETIMEDOUT);
	CHECK_EQ(weft_pool_submit_until(p, count_job, &n, weft_deadline(2000000)), -ETIMEDOUT);
	weft_ctx_t *c;
	CHECK_EQ(weft_ctx_with_cancel(&c, weft_ctx_background()), 0);
	weft_ctx_cancel(c);
	CHECK_EQ(weft_pool_submit_ctx(p, count_job, &n, c), -ECANCELED);
	weft_ctx_release(c);
	CHECK_EQ(weft_ctx_with_timeout(&c, weft_ctx_background(), 2000000), 0);
	CHECK_EQ(weft_pool_submit_ctx(p, count_job, &n, c), -ETIMEDOUT);
	weft_ctx_release(c);
	/* a ctx canceled while blocked */
	struct blocked_sub b = {.p = p, .n = &n, .mode = 2};
	CHECK_EQ(weft_ctx_with_cancel(&b.ctx, weft_ctx_background()), 0);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	pthread_create(&b.t, NULL, blocked_submitter, &b);
	wait_blocked(p, st.submits_blocked + 1);
	weft_ctx_cancel(b.ctx);
	pthread_join(b.t, NULL);
	CHECK_EQ(b.rc, -ECANCELED);
	weft_ctx_release(b.ctx);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.queued, 2);
	CHECK_EQ(st.running, 1);
	CHECK_EQ(st.submitted, 3); /* refusals changed nothing */
	/* blocked submits released when the worker pops */
	struct blocked_sub b0 = {.p = p, .n = &n, .mode = 0}, b1 = {.p = p, .n = &n, .mode = 1};
	pthread_create(&b0.t, NULL, blocked_submitter, &b0);
	pthread_create(&b1.t, NULL, blocked_submitter, &b1);
	wait_blocked(p, st.submits_blocked + 2);
	gate_open();
	pthread_join(b0.t, NULL);
	pthread_join(b1.t, NULL);
	CHECK_EQ(b0.rc, 0);
	CHECK_EQ(b1.rc, 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(atomic_load(&n), 4);
	CHECK_EQ(atomic_load(&g), 1);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.submitted, 5);
	CHECK_EQ(st.completed, 5);
	CHECK_EQ(st.submits_blocked, 6);
	weft_pool_destroy(p);
}

/* blocked submitters are refused (-EPIPE) by shutdown; nothing is lost */
static atomic_long disc_calls;
static void on_disc(weft_job_fn fn, void *arg, void *user)
{
	(void)fn;
	(void)arg;
	(void)user;
	atomic_fetch_add(&disc_calls, 1);
}

static void test_full_shutdown(void)
{
	for (int how = WEFT_POOL_DRAIN; how <= WEFT_POOL_CANCEL; how++) {
		weft_pool_t *p;
		weft_pool_stats_t st;
		atomic_long n = 0;
		atomic_store(&disc_calls, 0);
		weft_pool_opts_t o = {.workers = 1, .queue_capacity = 3, .on_discard = on_disc};
		CHECK_EQ(weft_pool_create(&p, &o), 0);
		gate_close();
		CHECK_EQ(weft_pool_submit(p, gated, &n), 0);
		wait_in(1);
		for (int i = 0; i < 3; i++)
			CHECK_EQ(weft_pool_submit(p, count_job, &n), 0);
		struct blocked_sub b[3];
		for (int i = 0; i < 3; i++) {
			b[i] = (struct blocked_sub){.p = p, .n = &n, .mode = i, .ctx = weft_ctx_background()};
			pthread_create(&b[i].t, NULL, blocked_submitter, &b[i]);
		}
		wait_blocked(p, 3);
		/* the shutdown joins only once the running job ends: open
		 * the gate from another thread (the blocked submits may go
		 * through first, or be refused by the close) */
		pthread_t opener;
		pthread_create(&opener, NULL, opener_main, NULL);
		CHECK_EQ(weft_pool_shutdown(p, how), 0);
		pthread_join(opener, NULL);
		long ok = 0;
		for (int i = 0; i < 3; i++) {
			pthread_join(b[i].t, NULL);
			CHECK(b[i].rc == 0 || b[i].rc == -EPIPE);
			ok += b[i].rc == 0;
		}
		CHECK_EQ(weft_pool_stats(p, &st), 0);
		CHECK_EQ(st.submitted, 4 + ok);
		CHECK_EQ(st.completed + st.discarded, st.submitted);
		CHECK_EQ(atomic_load(&n), (long)st.completed);
		CHECK_EQ(atomic_load(&disc_calls), (long)st.discarded);
		if (how == WEFT_POOL_DRAIN)
			CHECK_EQ(st.discarded, 0);
		CHECK_EQ(st.workers, 0);
		weft_pool_destroy(p);
	}
}

/* ---- wait ---- */

static void test_wait(void)
{
	weft_pool_t *p;
	atomic_long n = 0;
	weft_pool_opts_t o = {.workers = 4, .queue_capacity = 16};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	for (int r = 1; r <= 50; r++) {
		for (int i = 0; i < 37; i++)
			CHECK_EQ(weft_pool_submit(p, count_job, &n), 0);
		CHECK_EQ(weft_pool_wait(p), 0);
		CHECK_EQ(atomic_load(&n), 37L * r);
	}
	CHECK_EQ(weft_pool_wait(p), 0); /* nothing pending */
	weft_pool_destroy(p);
}

/* ---- jobs that use their own pool ---- */

static weft_pool_t *self_pool;
static atomic_long self_n;
static atomic_int self_rc;

static int leaf(void *arg)
{
	(void)arg;
	atomic_fetch_add(&self_n, 1);
	return 0;
}

static int spawner(void *arg)
{
	long k = (long)(intptr_t)arg;
	for (long i = 0; i < k; i++)
		CHECK_EQ(weft_pool_submit(self_pool, leaf, NULL), 0);
	atomic_fetch_add(&self_n, 1);
	return 0;
}

static int waits_itself(void *arg)
{
	(void)arg;
	atomic_store(&self_rc, weft_pool_wait(self_pool));
	return 0;
}

static void test_self_submit(void)
{
	weft_pool_stats_t st;
	weft_pool_opts_t o = {.workers = 2, .queue_capacity = 2};
	CHECK_EQ(weft_pool_create(&self_pool, &o), 0);
	atomic_store(&self_n, 0);
	for (int i = 0; i < 20; i++)
		CHECK_EQ(weft_pool_submit(self_pool, spawner, (void *)(intptr_t)50), 0);
	CHECK_EQ(weft_pool_wait(self_pool), 0);
	CHECK_EQ(atomic_load(&self_n), 20 + 20 * 50);
	CHECK_EQ(weft_pool_stats(self_pool, &st), 0);
	CHECK_EQ(st.submitted, 20 + 20 * 50);
	CHECK_EQ(st.completed, 20 + 20 * 50);
	atomic_store(&self_rc, 1);
	CHECK_EQ(weft_pool_submit(self_pool, waits_itself, NULL), 0);
	CHECK_EQ(weft_pool_wait(self_pool), 0);
	CHECK_EQ(atomic_load(&self_rc), -EDEADLK);
	weft_pool_destroy(self_pool);
}

/* ---- shutdown ---- */

static void test_shutdown_drain_cancel(void)
{
	for (int how = WEFT_POOL_DRAIN; how <= WEFT_POOL_CANCEL; how++) {
		weft_pool_t *p;
		weft_pool_stats_t st;
		atomic_long n = 0;
		atomic_store(&disc_calls, 0);
		weft_pool_opts_t o = {.workers = 2, .queue_capacity = 100, .on_discard = on_disc};
		CHECK_EQ(weft_pool_create(&p, &o), 0);
		gate_close();
		CHECK_EQ(weft_pool_submit(p, gated, &n), 0);
		CHECK_EQ(weft_pool_submit(p, gated, &n), 0);
		wait_in(2);
		for (int i = 0; i < 50; i++)
			CHECK_EQ(weft_pool_submit(p, count_job, &n), 0);
		pthread_t opener;
		pthread_create(&opener, NULL, opener_main, NULL);
		CHECK_EQ(weft_pool_shutdown(p, how), 0);
		pthread_join(opener, NULL);
		CHECK_EQ(weft_pool_stats(p, &st), 0);
		CHECK_EQ(st.submitted, 52);
		CHECK_EQ(st.completed + st.discarded, 52);
		CHECK_EQ(atomic_load(&n), (long)st.completed);
		CHECK_EQ(atomic_load(&disc_calls), (long)st.discarded);
		if (how == WEFT_POOL_DRAIN)
			CHECK_EQ(st.completed, 52);
		CHECK_EQ(st.queued, 0);
		CHECK_EQ(weft_pool_shutdown(p, how), -EPIPE);
		weft_pool_destroy(p);
	}
}

/* CANCEL with no on_discard still counts; CANCEL after DRAIN started */
static void *shut_drain(void *arg)
{
	CHECK_EQ(weft_pool_shutdown(arg, WEFT_POOL_DRAIN), 0);
	return NULL;
}

static void test_cancel_after_drain(void)
{
	weft_pool_t *p;
	weft_pool_stats_t st;
	atomic_long n = 0;
	weft_pool_opts_t o = {.workers = 1, .queue_capacity = 64};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	gate_close();
	CHECK_EQ(weft_pool_submit(p, gated, &n), 0);
	wait_in(1);
	for (int i = 0; i < 40; i++)
		CHECK_EQ(weft_pool_submit(p, count_job, &n), 0);
	pthread_t t;
	pthread_create(&t, NULL, shut_drain, p);
	while (weft_pool_try_submit(p, count_job, &n) != -EPIPE)
		nap(100); /* (accepted ones are counted below) */
	pthread_t opener;
	pthread_create(&opener, NULL, opener_main, NULL);
	CHECK_EQ(weft_pool_shutdown(p, WEFT_POOL_CANCEL), -EPIPE);
	pthread_join(opener, NULL);
	pthread_join(t, NULL);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.completed + st.discarded, st.submitted);
	CHECK_EQ(atomic_load(&n), (long)st.completed);
	CHECK(st.discarded > 0);
	weft_pool_destroy(p);
}

static atomic_int inner_rc1, inner_rc2;
static weft_pool_t *inner_pool;

static int shuts_down(void *arg)
{
	atomic_store(&inner_rc1, weft_pool_shutdown(inner_pool, (int)(intptr_t)arg));
	atomic_store(&inner_rc2, weft_pool_shutdown(inner_pool, (int)(intptr_t)arg));
	return 0;
}

static void test_shutdown_from_job(void)
{
	for (int how = WEFT_POOL_DRAIN; how <= WEFT_POOL_CANCEL; how++) {
		weft_pool_stats_t st;
		atomic_long n = 0;
		atomic_store(&disc_calls, 0);
		weft_pool_opts_t o = {.workers = 1, .queue_capacity = 64, .on_discard = on_disc};
		CHECK_EQ(weft_pool_create(&inner_pool, &o), 0);
		gate_close();
		CHECK_EQ(weft_pool_submit(inner_pool, gated, &n), 0);
		wait_in(1);
		CHECK_EQ(weft_pool_submit(inner_pool, shuts_down, (void *)(intptr_t)how), 0);
		for (int i = 0; i < 10; i++)
			CHECK_EQ(weft_pool_submit(inner_pool, count_job, &n), 0);
		gate_open();
		/* the job's shutdown returns at once; wait sees the rest */
		CHECK_EQ(weft_pool_wait(inner_pool), 0);
		CHECK_EQ(atomic_load(&inner_rc1), 0);
		CHECK_EQ(atomic_load(&inner_rc2), -EPIPE);
		CHECK_EQ(weft_pool_submit(inner_pool, count_job, &n), -EPIPE);
		CHECK_EQ(weft_pool_stats(inner_pool, &st), 0);
		CHECK_EQ(st.submitted, 12);
		CHECK_EQ(st.completed + st.discarded, 12);
		CHECK_EQ(st.discarded, how == WEFT_POOL_CANCEL ? 10 : 0);
		CHECK_EQ(atomic_load(&disc_calls), (long)st.discarded);
		/* an outside shutdown now joins and reports the second call */
		CHECK_EQ(weft_pool_shutdown(inner_pool, WEFT_POOL_DRAIN), -EPIPE);
		CHECK_EQ(weft_pool_stats(inner_pool, &st), 0);
		CHECK_EQ(st.workers, 0);
		weft_pool_destroy(inner_pool);
	}
	/* destroy alone joins after a shutdown from a job */
	atomic_long n = 0;
	weft_pool_opts_t o = {.workers = 2};
	CHECK_EQ(weft_pool_create(&inner_pool, &o), 0);
	CHECK_EQ(weft_pool_submit(inner_pool, shuts_down, (void *)(intptr_t)WEFT_POOL_DRAIN), 0);
	CHECK_EQ(weft_pool_wait(inner_pool), 0);
	(void)n;
	weft_pool_destroy(inner_pool);
}

/* ---- names ---- */

static atomic_int name_ok;

static int check_name(void *arg)
{
	char buf[32];
	CHECK_EQ(pthread_getname_np(pthread_self(), buf, sizeof buf), 0);
	CHECK(strlen(buf) <= 15);
	if (strncmp(buf, (const char *)arg, strlen((const char *)arg)) == 0 &&
	    strchr(buf, '-') != NULL)
		atomic_fetch_add(&name_ok, 1);
	return 0;
}

static void test_names(void)
{
	weft_pool_t *p;
	weft_pool_opts_t o = {.workers = 1, .name = "io"};
	atomic_store(&name_ok, 0);
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	CHECK_EQ(weft_pool_submit(p, check_name, "io-0"), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	weft_pool_destroy(p);
	/* a long prefix is shortened, the index kept */
	o.name = "a-very-long-pool-name";
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	CHECK_EQ(weft_pool_submit(p, check_name, "a-very-long-p-0"), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	weft_pool_destroy(p);
	o.name = NULL;
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	CHECK_EQ(weft_pool_submit(p, check_name, "weft-pool-0"), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	weft_pool_destroy(p);
	CHECK_EQ(atomic_load(&name_ok), 3);
}

/* sched_batch: the workers' policy, seen from inside a job */
static _Atomic int job_policy;
static int record_policy(void *arg)
{
	(void)arg;
	atomic_store(&job_policy, sched_getscheduler(0));
	return 0;
}

static void test_sched_batch(void)
{
	weft_pool_t *p;
	weft_pool_opts_t o = {.workers = 2, .sched_batch = 1};
	atomic_store(&job_policy, -1);
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	CHECK_EQ(weft_pool_submit(p, record_policy, NULL), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	weft_pool_destroy(p);
	CHECK_EQ(atomic_load(&job_policy), SCHED_BATCH);
	/* the default leaves the normal policy */
	o.sched_batch = 0;
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	CHECK_EQ(weft_pool_submit(p, record_policy, NULL), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	weft_pool_destroy(p);
	CHECK_EQ(atomic_load(&job_policy), SCHED_OTHER);
}

/* ---- dynamic sizing ---- */

static void test_dynamic(void)
{
	weft_pool_t *p;
	weft_pool_stats_t st;
	atomic_long n = 0;
	/* min 0: the first submit starts a worker */
	weft_pool_opts_t o = {.min_workers = 0, .max_workers = 4, .queue_capacity = 8,
			      .idle_timeout_ns = 20000000};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.workers, 0);
	CHECK_EQ(weft_pool_submit(p, count_job, &n), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(atomic_load(&n), 1);
	/* grows while the queue stays above capacity/4 */
	gate_close();
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_pool_submit(p, gated, &n), 0);
	for (int k = 0; k < 20000 && atomic_load(&gate_in) < 4; k++) {
		/* keep the queue above the threshold: it grows */
		if (weft_pool_try_submit(p, count_job, &n) != 0)
			nap(100);
	}
	wait_in(4);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.workers, 4);
	CHECK(st.workers_started >= 4);
	gate_open();
	CHECK_EQ(weft_pool_wait(p), 0);
	/* idle workers retire, down to min (0) */
	do {
		nap(5000);
		CHECK_EQ(weft_pool_stats(p, &st), 0);
	} while (st.workers > 0);
	CHECK(st.workers_retired >= 4);
	/* and it comes back */
	long before = atomic_load(&n);
	CHECK_EQ(weft_pool_submit(p, count_job, &n), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(atomic_load(&n), before + 1);
	weft_pool_destroy(p);

	/* min 2: never below */
	o = (weft_pool_opts_t){.min_workers = 2, .max_workers = 3, .idle_timeout_ns = 1000000};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	nap(30000);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.workers, 2);
	CHECK_EQ(st.workers_retired, 0);
	weft_pool_destroy(p);
}

/* ---- the wake policy: an idle pool of many workers ---- */

static void test_idle_many(void)
{
	weft_pool_t *p;
	weft_pool_stats_t st;
	atomic_long n = 0;
	weft_pool_opts_t o = {.workers = 64, .queue_capacity = 32};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	do {
		nap(1000);
		CHECK_EQ(weft_pool_stats(p, &st), 0);
	} while (st.parked < 64);
	/* one job at a time on an idle pool: one worker woken per job, at
	 * most (never a herd) */
	for (int i = 0; i < 200; i++) {
		CHECK_EQ(weft_pool_submit(p, count_job, &n), 0);
		CHECK_EQ(weft_pool_wait(p), 0);
	}
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK(st.futex_wakes <= 200);
	CHECK_EQ(atomic_load(&n), 200);
	weft_pool_destroy(p);
}

/* ---- the monitor: more workers than cores ---- */

static unsigned cores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

static atomic_int out_in, out_max;

/* Blocked outside weft (nanosleep) until every one of them has started:
 * only a pool that runs them all at once lets any finish. */
static int sleep_until_all(void *arg)
{
	int all = (int)(intptr_t)arg, in = atomic_fetch_add(&out_in, 1) + 1;
	int m = atomic_load(&out_max);
	while (in > m && !atomic_compare_exchange_weak(&out_max, &m, in))
		;
	for (int k = 0; k < 100000 && atomic_load(&out_in) < all; k++)
		nap(100); /* at most 10 s: then the check below fails */
	return 0;
}

static void test_monitor_blocked_outside(void)
{
	weft_pool_t *p;
	int n = (int)cores() + 6;
	weft_pool_opts_t o = {.workers = (unsigned)n, .queue_capacity = 64};
	atomic_store(&out_in, 0);
	atomic_store(&out_max, 0);
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	for (int i = 0; i < n; i++)
		CHECK_EQ(weft_pool_submit(p, sleep_until_all, (void *)(intptr_t)n), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(atomic_load(&out_max), n); /* all n ran at the same time */
	weft_pool_destroy(p);
}

static void test_monitor_weft_dependency(void)
{
	weft_pool_t *p;
	weft_pool_stats_t st;
	atomic_long n = 0;
	int blocked = (int)cores() + 2;
	weft_pool_opts_t o = {.workers = (unsigned)blocked + 1, .queue_capacity = 64};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	gate_close();
	/* more jobs asleep in weft than cores, and the one that would
	 * release them queued behind them */
	for (int i = 0; i < blocked; i++)
		CHECK_EQ(weft_pool_submit(p, gated, &n), 0);
	CHECK_EQ(weft_pool_submit(p, open_gate_job, NULL), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(atomic_load(&n), blocked);
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.completed, (uint64_t)blocked + 1);
	weft_pool_destroy(p);
}

/* ---- workers as tasks (opts.tasks) ---- */

static weft_wg_t tk_gate, tk_started;
static atomic_int tk_in_task, tk_ran;
static weft_chan_t *tk_results;

/* blocks on a gate that opens only once every job has started: possible
 * only if a blocked job parks its task (200 jobs, 2 carriers) */
static int tk_gated(void *arg)
{
	if (weft_in_task())
		atomic_fetch_add(&tk_in_task, 1);
	weft_wg_done(&tk_started);
	CHECK_EQ(weft_wg_wait(&tk_gate), 0);
	long v = (long)(intptr_t)arg;
	CHECK_EQ(weft_chan_send(tk_results, &v), 0);
	atomic_fetch_add(&tk_ran, 1);
	return 0;
}

static void test_tasks(void)
{
	enum { N = 200 };
	weft_pool_t *p;
	weft_pool_opts_t o = {.workers = N, .queue_capacity = 16, .tasks = 1, .name = "tk"};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	CHECK_EQ(weft_chan_create(&tk_results, sizeof(long), N), 0);
	weft_wg_init(&tk_gate);
	weft_wg_init(&tk_started);
	weft_wg_add(&tk_gate, 1);
	weft_wg_add(&tk_started, N);
	for (long i = 0; i < N; i++)
		CHECK_EQ(weft_pool_submit(p, tk_gated, (void *)(intptr_t)i), 0);
	CHECK_EQ(weft_wg_wait(&tk_started), 0); /* all N blocked at once */
	CHECK_EQ(atomic_load(&tk_in_task), N);
	CHECK_EQ(weft_wg_done(&tk_gate), 0);
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(atomic_load(&tk_ran), N);
	/* each result once */
	unsigned char seen[N] = {0};
	long v;
	for (int i = 0; i < N; i++) {
		CHECK_EQ(weft_chan_try_recv(tk_results, &v), 0);
		CHECK(v >= 0 && v < N && !seen[v]);
		seen[v] = 1;
	}
	CHECK_EQ(weft_chan_try_recv(tk_results, &v), -EAGAIN);
	weft_pool_stats_t st;
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.completed, N);
	CHECK_EQ(st.workers_started, N);
	CHECK_EQ(weft_pool_shutdown(p, WEFT_POOL_DRAIN), 0);
	weft_pool_destroy(p);
	weft_chan_destroy(tk_results);
}

/* ---- jobs that end their thread ---- */

/* ThreadSanitizer's pthread_exit refuses to run on a fiber (a CHECK that
 * the thread runs its own state: tsan_interceptors_posix.cpp), so under
 * it a task ends its carrier by canceling itself, which takes the same
 * path through glibc (forced unwinding) without that interceptor. */
/* TSAN_BUILD: die_noeh.h */

__attribute__((noreturn)) static void end_thread(void)
{
	if (TSAN_BUILD && weft_in_task()) {
		pthread_cancel(pthread_self());
		for (;;)
			pthread_testcancel();
	}
	pthread_exit(NULL);
}

enum { D_OK, D_EXIT, D_EXIT_NOEH, D_SELF_CANCEL, D_CANCEL_NOEH, D_BLOCK };

struct dying {
	int kind;
	atomic_int ran, errs;
	atomic_int blocked; /* D_BLOCK: about to block in read */
	pthread_t self;     /* D_BLOCK: its thread (a task's: its carrier) */
};

static int never_fds[2]; /* a pipe nobody writes to: read blocks */

static int dying_job(void *arg)
{
	struct dying *d = arg;
	atomic_fetch_add(&d->ran, 1);
	switch (d->kind) {
	case D_EXIT:
		end_thread();
	case D_EXIT_NOEH:
		if (TSAN_BUILD && weft_in_task())
			die_noeh_cancel(); /* see end_thread */
		die_noeh_exit();
	case D_SELF_CANCEL:
		pthread_cancel(pthread_self());
		pthread_testcancel();
		break;
	case D_CANCEL_NOEH:
		die_noeh_cancel();
	case D_BLOCK: {
		char c;
		d->self = pthread_self();
		atomic_store(&d->blocked, 1);
		/* a cancellation point: canceled here by the test */
		CHECK(read(never_fds[0], &c, 1) < 0 && 0);
		break;
	}
	}
	return 0;
}

static void dying_err(weft_job_fn fn, void *arg, int rc, void *user)
{
	(void)user;
	CHECK(fn == dying_job);
	CHECK_EQ(rc, -EOWNERDEAD);
	atomic_fetch_add(&((struct dying *)arg)->errs, 1);
}

struct dying_sub {
	weft_pool_t *p;
	struct dying *d;
	int n;
};

static void *dying_submitter(void *arg)
{
	struct dying_sub *s = arg;
	for (int i = 0; i < s->n; i++)
		CHECK_EQ(weft_pool_submit(s->p, dying_job, &s->d[i]), 0);
	return NULL;
}

/* workers_started lags the deaths a little: a replacement starts once
 * on_error has returned, after the job's finish (which wait sees) */
static void wait_started(weft_pool_t *p, uint64_t n)
{
	weft_pool_stats_t st;
	for (;;) {
		CHECK_EQ(weft_pool_stats(p, &st), 0);
		CHECK(st.workers_started <= n);
		if (st.workers_started == n)
			return;
		nap(200);
	}
}

static void test_job_ends_thread(void)
{
	enum { N = 160, W = 3 };
	static struct dying d[N];
	CHECK_EQ(pipe(never_fds), 0);
	for (int tasks = 0; tasks < 2; tasks++) {
		weft_pool_t *p;
		weft_pool_stats_t st;
		int ndie = 0;
		for (int i = 0; i < N; i++) {
			static const int kinds[8] = {D_OK,	    D_EXIT, D_OK,	   D_EXIT_NOEH,
						     D_SELF_CANCEL, D_OK,   D_CANCEL_NOEH, D_OK};
			d[i].kind = i % 16 == 8 ? D_BLOCK : kinds[i % 8];
			atomic_store(&d[i].ran, 0);
			atomic_store(&d[i].errs, 0);
			atomic_store(&d[i].blocked, 0);
			ndie += d[i].kind != D_OK;
		}
		weft_pool_opts_t o = {.workers = W, .queue_capacity = 8, .on_error = dying_err,
				      .tasks = tasks};
		CHECK_EQ(weft_pool_create(&p, &o), 0);
		struct dying_sub s = {p, d, N};
		pthread_t sub;
		CHECK_EQ(pthread_create(&sub, NULL, dying_submitter, &s), 0);
		/* cancel each blocked one from here, as it blocks */
		for (int i = 0; i < N; i++) {
			if (d[i].kind != D_BLOCK)
				continue;
			while (!atomic_load(&d[i].blocked))
				nap(100);
			CHECK_EQ(pthread_cancel(d[i].self), 0);
		}
		CHECK_EQ(pthread_join(sub, NULL), 0);
		CHECK_EQ(weft_pool_wait(p), 0);
		for (int i = 0; i < N; i++) {
			CHECK_EQ(atomic_load(&d[i].ran), 1);
			CHECK_EQ(atomic_load(&d[i].errs), d[i].kind != D_OK);
		}
		CHECK_EQ(weft_pool_stats(p, &st), 0);
		CHECK_EQ(st.submitted, N);
		CHECK_EQ(st.completed, N);
		CHECK_EQ(st.failed, ndie);
		CHECK_EQ(st.workers_died, ndie);
		CHECK_EQ(st.workers, W); /* back to its size */
		wait_started(p, (uint64_t)(W + ndie));
		/* and it goes on working */
		atomic_long n = 0;
		for (int i = 0; i < 100; i++)
			CHECK_EQ(weft_pool_submit(p, count_job, &n), 0);
		CHECK_EQ(weft_pool_wait(p), 0);
		CHECK_EQ(atomic_load(&n), 100);
		CHECK_EQ(weft_pool_shutdown(p, WEFT_POOL_DRAIN), 0);
		CHECK_EQ(weft_pool_stats(p, &st), 0);
		CHECK_EQ(st.completed, N + 100);
		CHECK_EQ(st.workers, 0);
		weft_pool_destroy(p);
	}
	close(never_fds[0]);
	close(never_fds[1]);
}

/* A job that dies in a job it ran inline (its submit found the queue
 * full) takes its outer job with it: both are reported, once each. */
static weft_pool_t *inl_pool;
static struct dying inl_outer, inl_queued, inl_inner;

static int inl_job(void *arg)
{
	struct dying *d = arg;
	atomic_fetch_add(&d->ran, 1);
	if (d == &inl_outer) {
		CHECK_EQ(weft_pool_submit(inl_pool, inl_job, &inl_queued), 0); /* fills it */
		CHECK_EQ(weft_pool_submit(inl_pool, inl_job, &inl_inner), 0); /* inline */
		CHECK(0); /* not reached: the inline job ended the thread */
	}
	if (d == &inl_inner)
		end_thread();
	return 0;
}

static void inl_err(weft_job_fn fn, void *arg, int rc, void *user)
{
	(void)user;
	CHECK(fn == inl_job);
	CHECK_EQ(rc, -EOWNERDEAD);
	atomic_fetch_add(&((struct dying *)arg)->errs, 1);
}

/* on_error that ends the thread: the job is reported once, with its rc */
static atomic_int cb_calls;

static int fails_7(void *arg)
{
	(void)arg;
	return 7;
}

static void exiting_err(weft_job_fn fn, void *arg, int rc, void *user)
{
	(void)fn, (void)arg, (void)user;
	CHECK_EQ(rc, 7);
	atomic_fetch_add(&cb_calls, 1);
	end_thread();
}

static void test_job_ends_thread_nested(void)
{
	for (int tasks = 0; tasks < 2; tasks++) {
		weft_pool_stats_t st;
		struct dying *all[3] = {&inl_outer, &inl_queued, &inl_inner};
		for (int i = 0; i < 3; i++) {
			atomic_store(&all[i]->ran, 0);
			atomic_store(&all[i]->errs, 0);
		}
		weft_pool_opts_t o = {.workers = 1, .queue_capacity = 1, .on_error = inl_err,
				      .tasks = tasks};
		CHECK_EQ(weft_pool_create(&inl_pool, &o), 0);
		CHECK_EQ(weft_pool_submit(inl_pool, inl_job, &inl_outer), 0);
		CHECK_EQ(weft_pool_wait(inl_pool), 0);
		CHECK_EQ(atomic_load(&inl_outer.ran), 1);
		CHECK_EQ(atomic_load(&inl_inner.ran), 1);
		CHECK_EQ(atomic_load(&inl_queued.ran), 1); /* by the replacement */
		CHECK_EQ(atomic_load(&inl_outer.errs), 1);
		CHECK_EQ(atomic_load(&inl_inner.errs), 1);
		CHECK_EQ(atomic_load(&inl_queued.errs), 0);
		CHECK_EQ(weft_pool_stats(inl_pool, &st), 0);
		CHECK_EQ(st.submitted, 3);
		CHECK_EQ(st.completed, 3);
		CHECK_EQ(st.failed, 2);
		CHECK_EQ(st.workers_died, 1);
		CHECK_EQ(st.workers, 1);
		weft_pool_destroy(inl_pool);

		/* on_error ends the thread */
		weft_pool_t *p;
		atomic_store(&cb_calls, 0);
		o = (weft_pool_opts_t){.workers = 2, .on_error = exiting_err, .tasks = tasks};
		CHECK_EQ(weft_pool_create(&p, &o), 0);
		for (int i = 0; i < 10; i++)
			CHECK_EQ(weft_pool_submit(p, fails_7, NULL), 0);
		CHECK_EQ(weft_pool_wait(p), 0);
		CHECK_EQ(atomic_load(&cb_calls), 10);
		CHECK_EQ(weft_pool_stats(p, &st), 0);
		CHECK_EQ(st.completed, 10);
		CHECK_EQ(st.failed, 10);
		CHECK_EQ(st.workers_died, 10);
		CHECK_EQ(st.workers, 2);
		CHECK_EQ(weft_pool_shutdown(p, WEFT_POOL_DRAIN), 0);
		weft_pool_destroy(p);
	}
}

/* weft's waits are not cancellation points: a submitter canceled while it
 * is blocked on a full queue stays in weft until its job is queued, and is
 * canceled at its own next cancellation point */
static void *cancel_sub_main(void *arg)
{
	struct blocked_sub *b = arg;
	b->rc = weft_pool_submit(b->p, count_job, b->n);
	pthread_testcancel();
	CHECK(0); /* not reached */
	return NULL;
}

static void test_cancel_not_in_weft(void)
{
	weft_pool_t *p;
	atomic_long n = 0;
	weft_pool_opts_t o = {.workers = 1, .queue_capacity = 1};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	gate_close();
	CHECK_EQ(weft_pool_submit(p, gated, &n), 0);
	wait_in(1);
	CHECK_EQ(weft_pool_submit(p, count_job, &n), 0); /* full now */
	struct blocked_sub b = {.p = p, .n = &n, .rc = 1};
	CHECK_EQ(pthread_create(&b.t, NULL, cancel_sub_main, &b), 0);
	wait_blocked(p, 1);
	CHECK_EQ(pthread_cancel(b.t), 0);
	nap(5000);
	gate_open();
	void *ret;
	CHECK_EQ(pthread_join(b.t, &ret), 0);
	CHECK(ret == PTHREAD_CANCELED);
	CHECK_EQ(b.rc, 0); /* its submit completed before the cancel acted */
	CHECK_EQ(weft_pool_wait(p), 0);
	CHECK_EQ(atomic_load(&n), 3);
	weft_pool_destroy(p);
}

int main(void)
{
	test_watchdog(120);
	RUN(test_args);
	RUN(test_defaults);
	RUN(test_errors);
	RUN(test_full);
	RUN(test_full_shutdown);
	RUN(test_wait);
	RUN(test_self_submit);
	RUN(test_shutdown_drain_cancel);
	RUN(test_cancel_after_drain);
	RUN(test_shutdown_from_job);
	RUN(test_names);
	RUN(test_sched_batch);
	RUN(test_dynamic);
	RUN(test_idle_many);
	RUN(test_monitor_blocked_outside);
	RUN(test_monitor_weft_dependency);
	RUN(test_tasks);
	RUN(test_job_ends_thread);
	RUN(test_job_ends_thread_nested);
	RUN(test_cancel_not_in_weft);
	return 0;
}
