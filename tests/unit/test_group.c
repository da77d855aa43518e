/* tests/unit/test_group.c: errgroup, with ports of x/sync/errgroup's tests.
 *
 * Arguments and errors; the zero group (no derived context) and the first
 * error; WithContext: the context is canceled with the first error as its
 * cause, and a sibling's -ECANCELED never becomes the error; TryGo with
 * limit 42, 1 and 0; GoLimit (limit 10, 1025 tasks, never more than 10 in
 * flight); set_limit -EBUSY while tasks run, and a go parked at limit 0
 * released by raising it; tasks waiting on siblings (channel, WaitGroup)
 * do not deadlock; reuse; 1,000,000 tiny tasks under limit 100 (in flight
 * <= 100, at most 100 threads created). Tasks that end their thread
 * (pthread_exit, pthread_cancel of themselves, from code with and without
 * unwind info, or canceled by another thread while blocked in read): each
 * counts as a task that returned -EOWNERDEAD (wait returns it, the derived
 * context is canceled with it; an earlier error stays first), frees its
 * slot under a limit, and every other task runs once.
 *
 * Usage: test_group [tiny_tasks]   (default 1000000; 100000 under TSan)
 * No durations are asserted.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <weft/chan.h>
#include <weft/ctx.h>
#include <weft/group.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "check.h"
#include "die_noeh.h"

/* The whole suite runs twice: on the worker threads, then with every
 * group's tasks as weft tasks (weft_group_set_tasks). */
static int g_use_tasks;

static int group_create_mode(weft_group_t **out, weft_ctx_t *parent, weft_ctx_t **ctx)
{
	int rc = weft_group_create(out, parent, ctx);
	if (rc == 0)
		CHECK_EQ(weft_group_set_tasks(*out, g_use_tasks), 0);
	return rc;
}
#define weft_group_create group_create_mode

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static long g_tiny = SANITIZED ? 100000 : 1000000;
/* ThreadSanitizer makes a fiber per weft task: about 1.7 ms each here */
#if defined(__SANITIZE_THREAD__)
#define TINY_TASKS_DIV 50
#else
#define TINY_TASKS_DIV 1
#endif

static int ret_arg(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	return (int)(intptr_t)arg;
}

static void test_group_args(void)
{
	CHECK_EQ(weft_group_set_tasks(NULL, 1), -EINVAL);
	weft_group_t *g;
	weft_group_stats_t st;
	CHECK_EQ(weft_group_create(NULL, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_group_set_limit(NULL, 1), -EINVAL);
	CHECK_EQ(weft_group_go(NULL, ret_arg, NULL), -EINVAL);
	CHECK_EQ(weft_group_try_go(NULL, ret_arg, NULL), -EINVAL);
	CHECK_EQ(weft_group_wait(NULL), -EINVAL);
	CHECK_EQ(weft_group_stats(NULL, NULL), -EINVAL);
	CHECK_EQ(weft_group_stats(NULL, &st), 0);
	weft_group_destroy(NULL);
	CHECK_EQ(weft_group_create(&g, NULL, NULL), 0);
	CHECK_EQ(weft_group_go(g, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_group_try_go(g, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_group_wait(g), 0); /* nothing ran */
	CHECK_EQ(weft_group_stats(g, &st), 0);
	CHECK_EQ(st.started, 0);
	weft_group_destroy(g);
}

/* ---- the zero group: tasks get the parent, or background ---- */

static int check_ctx(weft_ctx_t *ctx, void *arg)
{
	return ctx == arg ? 0 : -EFAULT;
}

static void test_group_zero(void)
{
	static const int cases[][3] = {
		{0, 0, 0}, {-EIO, 0, 0}, {-EIO, 0, -ENOENT}, {0, 0, -EIO}, {3, -EIO, 0},
	};
	for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		weft_group_t *g;
		int first = 0;
		CHECK_EQ(weft_group_create(&g, NULL, NULL), 0);
		for (int i = 0; i < 3; i++) {
			int e = cases[c][i];
			CHECK_EQ(weft_group_go(g, ret_arg, (void *)(intptr_t)e), 0);
			if (!first)
				first = e;
			/* as Go: wait after each go returns the first error */
			CHECK_EQ(weft_group_wait(g), first);
		}
		weft_group_destroy(g);
	}

	weft_group_t *g;
	CHECK_EQ(weft_group_create(&g, NULL, NULL), 0);
	CHECK_EQ(weft_group_go(g, check_ctx, weft_ctx_background()), 0);
	CHECK_EQ(weft_group_wait(g), 0);
	weft_group_destroy(g);

	weft_ctx_t *parent;
	CHECK_EQ(weft_ctx_with_cancel(&parent, weft_ctx_background()), 0);
	CHECK_EQ(weft_group_create(&g, parent, NULL), 0);
	CHECK_EQ(weft_group_go(g, check_ctx, parent), 0);
	CHECK_EQ(weft_group_wait(g), 0);
	CHECK_EQ(weft_ctx_err(parent), 0); /* not ours to cancel */
	weft_group_destroy(g);
	weft_ctx_release(parent);
}

/* ---- WithContext: canceled with the first error as cause ---- */

static void test_group_with_ctx(void)
{
	static const int cases[][3] = {{0, 0, 0}, {-EIO, 0, 0}, {0, -ENOENT, -EIO}};
	for (unsigned c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		weft_group_t *g;
		weft_ctx_t *ctx = NULL;
		CHECK_EQ(weft_group_create(&g, weft_ctx_background(), &ctx), 0);
		CHECK(ctx != NULL);
		CHECK_EQ(weft_ctx_err(ctx), 0);
		for (int i = 0; i < 3; i++)
			CHECK_EQ(weft_group_go(g, ret_arg, (void *)(intptr_t)cases[c][i]), 0);
		int err = weft_group_wait(g);
		CHECK(err == cases[c][0] || err == cases[c][1] || err == cases[c][2]);
		if (cases[c][0] || cases[c][1] || cases[c][2])
			CHECK(err != 0);
		CHECK_EQ(weft_ctx_err(ctx), -ECANCELED); /* canceled by wait */
		if (err)
			CHECK_EQ(weft_ctx_cause(ctx), err);
		else
			CHECK_EQ(weft_ctx_cause(ctx), -ECANCELED);
		weft_group_destroy(g);
	}
}

static int fail_eio(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	return -EIO;
}

/* blocks until the group's context is canceled; returns its error */
static int wait_ctx(weft_ctx_t *ctx, void *arg)
{
	(void)arg;
	return weft_ctx_wait(ctx, WEFT_FOREVER);
}

static void test_group_cancel_cause(void)
{
	for (int round = 0; round < 20; round++) {
		weft_group_t *g;
		weft_ctx_t *ctx;
		weft_ctx_t *parent;
		CHECK_EQ(weft_ctx_with_cancel(&parent, weft_ctx_background()), 0);
		CHECK_EQ(weft_group_create(&g, parent, &ctx), 0);
		for (int i = 0; i < 8; i++)
			CHECK_EQ(weft_group_go(g, wait_ctx, NULL), 0);
		CHECK_EQ(weft_group_go(g, fail_eio, NULL), 0);
		for (int i = 0; i < 8; i++)
			CHECK_EQ(weft_group_go(g, wait_ctx, NULL), 0);
		/* the siblings return -ECANCELED, after -EIO was recorded */
		CHECK_EQ(weft_group_wait(g), -EIO);
		CHECK_EQ(weft_ctx_err(ctx), -ECANCELED);
		CHECK_EQ(weft_ctx_cause(ctx), -EIO);
		CHECK_EQ(weft_ctx_err(parent), 0);
		weft_group_destroy(g);
		weft_ctx_release(parent);
	}
	/* a canceled parent cancels the group's context (tasks see it) */
	weft_group_t *g;
	weft_ctx_t *ctx, *parent;
	CHECK_EQ(weft_ctx_with_cancel(&parent, weft_ctx_background()), 0);
	CHECK_EQ(weft_group_create(&g, parent, &ctx), 0);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_group_go(g, wait_ctx, NULL), 0);
	weft_ctx_cancel_cause(parent, -ENOENT);
	CHECK_EQ(weft_group_wait(g), -ECANCELED);
	CHECK_EQ(weft_ctx_cause(ctx), -ENOENT);
	weft_group_destroy(g);
	weft_ctx_release(parent);
}

/* ---- TryGo (x/sync's TestTryGo) ---- */

static weft_chan_t *Ch; /* unbuffered: a task's send waits for main's recv */

static int send_token(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	char c = 1;
	return weft_chan_send(Ch, &c);
}

static void test_group_try_go(void)
{
	weft_group_t *g;
	char c;
	const int limit = 42;
	CHECK_EQ(weft_chan_create(&Ch, 1, 0), 0);
	CHECK_EQ(weft_group_create(&g, NULL, NULL), 0);
	CHECK_EQ(weft_group_set_limit(g, limit), 0);
	int n = 0;
	while (weft_group_try_go(g, send_token, NULL) == 0)
		n++;
	CHECK_EQ(n, limit);
	CHECK_EQ(weft_group_try_go(g, send_token, NULL), -EAGAIN);
	for (int i = 0; i < n; i++)
		CHECK_EQ(weft_chan_recv(Ch, &c), 0);
	CHECK_EQ(weft_group_wait(g), 0);
	/* accepted again after wait */
	CHECK_EQ(weft_group_try_go(g, send_token, NULL), 0);
	CHECK_EQ(weft_chan_recv(Ch, &c), 0);
	CHECK_EQ(weft_group_wait(g), 0);

	/* limit 1 */
	CHECK_EQ(weft_group_set_limit(g, 1), 0);
	CHECK_EQ(weft_group_try_go(g, send_token, NULL), 0);
	CHECK_EQ(weft_group_try_go(g, send_token, NULL), -EAGAIN);
	CHECK_EQ(weft_chan_recv(Ch, &c), 0);
	CHECK_EQ(weft_group_wait(g), 0);
	CHECK_EQ(weft_group_try_go(g, send_token, NULL), 0);
	CHECK_EQ(weft_chan_recv(Ch, &c), 0);
	CHECK_EQ(weft_group_wait(g), 0);

	/* limit 0: never */
	CHECK_EQ(weft_group_set_limit(g, 0), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_group_try_go(g, send_token, NULL), -EAGAIN);
	/* no limit again */
	CHECK_EQ(weft_group_set_limit(g, -1), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_group_try_go(g, send_token, NULL), 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_chan_recv(Ch, &c), 0);
	CHECK_EQ(weft_group_wait(g), 0);
	weft_group_destroy(g);
	weft_chan_destroy(Ch);
}

/* ---- GoLimit (x/sync's TestGoLimit) ---- */

static atomic_int active, max_active;

static void enter_task(void)
{
	int a = atomic_fetch_add(&active, 1) + 1;
	int m = atomic_load(&max_active);
	while (a > m && !atomic_compare_exchange_weak(&max_active, &m, a))
		;
}

static int limited_task(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	enter_task();
	struct timespec ts = {0, 10000}; /* 10 us: let them overlap */
	nanosleep(&ts, NULL);
	atomic_fetch_sub(&active, 1);
	return 0;
}

static void test_group_go_limit(void)
{
	const int limit = 10;
	weft_group_t *g;
	weft_group_stats_t st;
	atomic_store(&active, 0);
	atomic_store(&max_active, 0);
	CHECK_EQ(weft_group_create(&g, NULL, NULL), 0);
	CHECK_EQ(weft_group_set_limit(g, limit), 0);
	for (int i = 0; i < 1025; i++)
		CHECK_EQ(weft_group_go(g, limited_task, NULL), 0);
	CHECK_EQ(weft_group_wait(g), 0);
	CHECK(atomic_load(&max_active) <= limit);
	CHECK(atomic_load(&max_active) >= 1);
	CHECK_EQ(weft_group_stats(g, &st), 0);
	CHECK_EQ(st.started, 1025);
	CHECK_EQ(st.running, 0);
	CHECK(st.max_running <= (unsigned)limit);
	weft_group_destroy(g);
}

/* ---- set_limit while tasks run ---- */

static weft_wg_t Gate;

static int wait_gate(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	return weft_wg_wait(&Gate);
}

struct setter {
	weft_group_t *g;
	int n;
};

static void *set_limit_later(void *p)
{
	struct setter *s = p;
	struct timespec ts = {0, 2000000};
	nanosleep(&ts, NULL); /* let the go park first (not asserted) */
	CHECK_EQ(weft_group_set_limit(s->g, s->n), 0);
	return NULL;
}

static void test_group_set_limit_busy(void)
{
	weft_group_t *g;
	weft_wg_init(&Gate);
	CHECK_EQ(weft_wg_add(&Gate, 1), 0);
	CHECK_EQ(weft_group_create(&g, NULL, NULL), 0);
	CHECK_EQ(weft_group_go(g, wait_gate, NULL), 0);
	CHECK_EQ(weft_group_set_limit(g, 5), -EBUSY);
	CHECK_EQ(weft_group_set_limit(g, -1), -EBUSY);
	/* still no limit: more tasks go */
	for (int i = 0; i < 20; i++)
		CHECK_EQ(weft_group_try_go(g, wait_gate, NULL), 0);
	CHECK_EQ(weft_wg_done(&Gate), 0);
	CHECK_EQ(weft_group_wait(g), 0);
	CHECK_EQ(weft_group_set_limit(g, 5), 0);

	/* a go parked at limit 0 is let in when another thread raises it */
	CHECK_EQ(weft_group_set_limit(g, 0), 0);
	struct setter s = {g, 1};
	pthread_t t;
	CHECK_EQ(pthread_create(&t, NULL, set_limit_later, &s), 0);
	CHECK_EQ(weft_group_go(g, ret_arg, (void *)(intptr_t)0), 0);
	pthread_join(t, NULL);
	CHECK_EQ(weft_group_wait(g), 0);
	weft_group_destroy(g);
}

/* ---- tasks waiting on siblings ---- */

static weft_wg_t Barrier;

static int barrier_task(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	CHECK_EQ(weft_wg_done(&Barrier), 0);
	return weft_wg_wait(&Barrier); /* needs every sibling running */
}

static int recv_task(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	uint64_t c; /* room for any element size the tests use */
	return weft_chan_recv(arg, &c);
}

static int send_task(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	char c = 2;
	return weft_chan_send(arg, &c);
}

static void test_group_siblings(void)
{
	static const int limits[] = {8, 16, -1};
	for (unsigned l = 0; l < 3; l++) {
		weft_group_t *g;
		CHECK_EQ(weft_group_create(&g, NULL, NULL), 0);
		CHECK_EQ(weft_group_set_limit(g, limits[l]), 0);
		for (int round = 0; round < 5; round++) {
			weft_wg_init(&Barrier);
			CHECK_EQ(weft_wg_add(&Barrier, 8), 0);
			for (int i = 0; i < 8; i++)
				CHECK_EQ(weft_group_go(g, barrier_task, NULL), 0);
			CHECK_EQ(weft_group_wait(g), 0);
		}
		weft_group_destroy(g);
	}
	/* limit 2: a receiver admitted first waits for the sender */
	weft_chan_t *ch;
	weft_group_t *g;
	CHECK_EQ(weft_chan_create(&ch, 1, 0), 0);
	CHECK_EQ(weft_group_create(&g, NULL, NULL), 0);
	CHECK_EQ(weft_group_set_limit(g, 2), 0);
	for (int i = 0; i < 50; i++) {
		CHECK_EQ(weft_group_go(g, recv_task, ch), 0);
		CHECK_EQ(weft_group_go(g, send_task, ch), 0);
	}
	CHECK_EQ(weft_group_wait(g), 0);
	weft_group_destroy(g);
	weft_chan_destroy(ch);
}

/* ---- destroy waits for tasks in flight ---- */

static atomic_int finished;

static int slow_task(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL);
	atomic_fetch_add(&finished, 1);
	return 0;
}

static void test_group_destroy_waits(void)
{
	weft_group_t *g;
	weft_ctx_t *ctx;
	atomic_store(&finished, 0);
	CHECK_EQ(weft_group_create(&g, NULL, &ctx), 0);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(weft_group_go(g, slow_task, NULL), 0);
	weft_group_destroy(g);
	CHECK_EQ(atomic_load(&finished), 10);
}

/* ---- many tiny tasks under limit 100 ---- */

static atomic_long tiny_count;

static int tiny_task(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	(void)arg;
	enter_task();
	atomic_fetch_add_explicit(&tiny_count, 1, memory_order_relaxed);
	atomic_fetch_sub(&active, 1);
	return 0;
}

static void test_group_tiny_tasks(void)
{
	weft_group_t *g;
	weft_group_stats_t before, after;
	atomic_store(&active, 0);
	atomic_store(&max_active, 0);
	atomic_store(&tiny_count, 0);
	CHECK_EQ(weft_group_stats(NULL, &before), 0);
	CHECK_EQ(weft_group_create(&g, NULL, NULL), 0);
	CHECK_EQ(weft_group_set_limit(g, 100), 0);
	long n = g_use_tasks ? g_tiny / TINY_TASKS_DIV : g_tiny;
	for (long i = 0; i < n; i++)
		CHECK_EQ(weft_group_go(g, tiny_task, NULL), 0);
	CHECK_EQ(weft_group_wait(g), 0);
	CHECK_EQ(weft_group_stats(g, &after), 0);
	CHECK_EQ(atomic_load(&tiny_count), n);
	CHECK(atomic_load(&max_active) <= 100);
	CHECK(after.max_running <= 100);
	CHECK_EQ(after.started, (uint64_t)n);
	/* bounded, not one per task: at most the limit alive at once; idle
	 * workers left by earlier tests may retire (1 s idle) meanwhile and
	 * be replaced, hence the slack, still far below 1 per task */
	CHECK(after.threads_created - before.threads_created <= 100 + before.threads + 100);
	fprintf(stderr, "(%ld tasks, max in flight %u, threads created %llu, alive %u) ",
		n, after.max_running,
		(unsigned long long)(after.threads_created - before.threads_created),
		after.threads);
	weft_group_destroy(g);
}

/* ---- tasks that end their thread ---- */


static void nap(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0)
		;
}

enum { D_OK, D_EXIT = DIE_EXIT, D_EXIT_NOEH = DIE_EXIT_NOEH, D_SELF_CANCEL = DIE_SELF_CANCEL,
       D_CANCEL_NOEH = DIE_CANCEL_NOEH, D_BLOCK = DIE_BLOCK };

struct dying {
	int kind;
	atomic_int ran;
	atomic_int blocked;
	pthread_t self;
};

static int never_fds[2];

static int dying_task(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	struct dying *d = arg;
	atomic_fetch_add(&d->ran, 1);
	die_as(d->kind, never_fds[0], &d->self, &d->blocked);
	return 0;
}

static void test_group_task_ends_thread(void)
{
	enum { N = 48 };
	static struct dying d[N];
	CHECK_EQ(pipe(never_fds), 0);
	/* a group with a context and a limit: every task runs once, wait
	 * returns -EOWNERDEAD, the context is canceled with it as cause */
	weft_group_t *g;
	weft_ctx_t *ctx;
	weft_group_stats_t st;
	CHECK_EQ(weft_group_create(&g, NULL, &ctx), 0);
	CHECK_EQ(weft_group_set_limit(g, 3), 0);
	for (int i = 0; i < N; i++) {
		static const int kinds[6] = {D_OK, D_EXIT, D_EXIT_NOEH, D_OK, D_SELF_CANCEL,
					     D_CANCEL_NOEH};
		d[i].kind = i % 12 == 11 ? D_BLOCK : kinds[i % 6];
		atomic_store(&d[i].ran, 0);
		atomic_store(&d[i].blocked, 0);
	}
	for (int i = 0; i < N; i++) {
		/* at the limit go blocks: the slots of the dead come back */
		CHECK_EQ(weft_group_go(g, dying_task, &d[i]), 0);
		if (d[i].kind == D_BLOCK) {
			while (!atomic_load(&d[i].blocked))
				nap(100);
			CHECK_EQ(pthread_cancel(d[i].self), 0);
		}
	}
	CHECK_EQ(weft_group_wait(g), -EOWNERDEAD);
	CHECK_EQ(weft_ctx_err(ctx), -ECANCELED);
	CHECK_EQ(weft_ctx_cause(ctx), -EOWNERDEAD);
	for (int i = 0; i < N; i++)
		CHECK_EQ(atomic_load(&d[i].ran), 1);
	CHECK_EQ(weft_group_stats(g, &st), 0);
	CHECK_EQ(st.started, N);
	CHECK_EQ(st.running, 0);
	CHECK(st.max_running <= 3);
	weft_group_destroy(g);

	/* the first error stays first: a death after it does not replace it,
	 * and one before it is the error */
	for (int order = 0; order < 2; order++) {
		struct dying one = {.kind = D_EXIT};
		CHECK_EQ(weft_group_create(&g, NULL, NULL), 0);
		if (order == 0) {
			CHECK_EQ(weft_group_go(g, ret_arg, (void *)(intptr_t)-EIO), 0);
			CHECK_EQ(weft_group_wait(g), -EIO);
			CHECK_EQ(weft_group_go(g, dying_task, &one), 0);
			CHECK_EQ(weft_group_wait(g), -EIO);
		} else {
			CHECK_EQ(weft_group_go(g, dying_task, &one), 0);
			CHECK_EQ(weft_group_wait(g), -EOWNERDEAD);
			CHECK_EQ(weft_group_go(g, ret_arg, (void *)(intptr_t)-EIO), 0);
			CHECK_EQ(weft_group_wait(g), -EOWNERDEAD);
		}
		CHECK_EQ(atomic_load(&one.ran), 1);
		weft_group_destroy(g);
	}
	close(never_fds[0]);
	close(never_fds[1]);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		g_tiny = atol(argv[1]);
	test_watchdog(240);
	for (g_use_tasks = 0; g_use_tasks < 2; g_use_tasks++) {
		test_watchdog(240); /* each pass its own budget */
		fprintf(stderr, "tasks run on %s:\n", g_use_tasks ? "weft tasks" : "worker threads");
		RUN(test_group_args);
		RUN(test_group_zero);
		RUN(test_group_with_ctx);
		RUN(test_group_cancel_cause);
		RUN(test_group_try_go);
		RUN(test_group_go_limit);
		RUN(test_group_set_limit_busy);
		RUN(test_group_siblings);
		RUN(test_group_destroy_waits);
		RUN(test_group_tiny_tasks);
		RUN(test_group_task_ends_thread);
	}
	return 0;
}
