/* tests/unit/test_faults.c: failure injection (built with
 * -Dfault_injection=true; suite "faults"). See lib/internal/sys.h for the
 * seam and README.md, "Failure injection", for the figures.
 *
 * The walk. A script uses every module the way a program would (tasks,
 * channels of each overflow policy, select, context trees with deadlines
 * and after-funcs, sem/wg/once, pools of threads and of tasks, errgroups,
 * pipelines with fan-out/fan-in and an ordered stage, the map, the
 * singleflight, the breaker). Each run of the script fails one resource
 * call lib/ makes (memory, thread, task stack, spill file, key) and
 * nothing else: the k-th call made at one call site (file:line). A run
 * without failures lists the sites and how many calls each makes; the
 * driver then runs the script for every site and k = 1, 2, 3, ... up to
 * the most calls any run made there (every run's list is merged, so a
 * site reached only on an error path is walked too). Numbering per site,
 * not across the process, keeps a point the same call whatever order the
 * background threads (carriers, the monitor, pool and pipeline workers)
 * make theirs in: numbered across the process, the tail of the script
 * moved by a dozen calls from run to run and a walk over n missed sites.
 * Each run is a fresh process (fork + exec of this program): the task
 * runtime, the context timer, the group workers and the monitor are
 * process-wide and start lazily, so every run starts them anew (their
 * start-up calls are failure points like any other), and ASan's leak check
 * (detect_leaks=1, forced on for the children) runs at the end of every
 * run. Two runs at a time (--jobs).
 *
 * In every run: the call that met the failure returns a clean negative
 * errno (-ENOMEM, -EAGAIN, -EMFILE, -ENOSPC, -EIO; FAILED() aborts on any
 * other, and on any error without an injected failure); the script then
 * cleans up what it made and goes on with the next module (which must
 * work: the failure is spent); and it checks that nothing accepted was
 * lost or duplicated: every element a send accepted is received once (or
 * evicted once, DROP_OLDEST), every job a pool accepted ran or went to
 * on_discard once, every task and group task started ran once, every
 * after-func registered ran once (or was stopped), every value the map
 * took went to value_free once or back to the caller, every breaker
 * transition reached on_state_change. A watchdog (alarm in the child, a
 * kill from the driver) fails a hung run. A failure inside a background
 * thread (a pool growing, a pipeline scaling, a carrier's signal stack)
 * may be absorbed (the run completes, degraded): the checks hold all the
 * same.
 *
 * Regressions: each bug the walk found has a named case that fails that
 * very call by function (weft__fault_arm_at), independent of where the
 * walk's numbering puts it; they run before the walk.
 *
 * Usage: test_faults [--cap K] [--jobs J]
 *        test_faults --run SITE K      (one run, to reproduce: the K-th call
 *                                       at SITE, as the walk prints it)
 *        test_faults --regress NAME    (one regression case)
 * --cap K: walk only the first K calls of each site (default: all);
 * --jobs J: runs at once (default 2). In the environment (by hand):
 * WEFT_FAULTS_TIMES=1 prints the time of each section, WEFT_FAULTS_ONLY=
 * ctx,map runs only the sections named.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <weft.h>

#include "check.h"
#include "internal/ctx_impl.h"
#include "internal/sys.h"
#include "tmpdir.h"

#define REPORT_FD 3 /* the child's report to the driver */

/* ==== the child: one run of the script ==================================== */

static const char *g_dir;              /* spill directory */
static const char *volatile g_section = "start";
static int g_errors;                   /* clean errors the script saw */
static char g_first[96];               /* the first: what, rc */

static bool clean_errno(long rc)
{
	return rc == -ENOMEM || rc == -EAGAIN || rc == -EMFILE || rc == -ENOSPC || rc == -EIO;
}

/* rc < 0: it must be a clean errno caused by the injected failure (else
 * abort); noted, true. rc >= 0: false. */
static bool failed_at(long rc, const char *what, int line)
{
	if (rc >= 0)
		return false;
	int fired = weft__fault_fired(NULL, NULL, NULL);
	if (!clean_errno(rc) || !fired) {
		fprintf(stderr, "test_faults.c:%d: %s returned %ld (%s), %s\n", line, what, rc,
			weft_strerror((int)rc),
			fired ? "not a clean errno" : "and no failure was injected");
		abort();
	}
	if (g_errors++ == 0)
		snprintf(g_first, sizeof g_first, "%s %ld", what, rc);
	return true;
}
#define FAILED(rc, what) failed_at((long)(rc), (what), __LINE__)

static void poll_until(atomic_int *v, int want, int64_t ns)
{
	int64_t dl = weft_deadline(ns);
	while (atomic_load(v) != want && weft_now() < dl)
		weft_sleep(200000);
}

/* ---- tasks: the runtime starts here ---- */

struct tk {
	atomic_int ran;
	bool sleep;
	weft_chan_t *to, *from; /* hand-offs with the main thread */
	weft_wg_t *wg;
};

static void tk_main(void *arg)
{
	struct tk *t = arg;
	atomic_fetch_add(&t->ran, 1);
	if (t->sleep)
		weft_sleep(1000000);
	if (t->to) {
		for (uint64_t i = 1; i <= 10; i++)
			CHECK_EQ(weft_chan_send(t->to, &i), 0);
		weft_chan_close(t->to);
	}
	if (t->from) {
		uint64_t v, want = 1;
		while (weft_chan_recv(t->from, &v) == 0)
			CHECK_EQ(v, want++);
		CHECK_EQ(want, 6);
	}
	weft_wg_done(t->wg);
}

/* A task that holds its carrier (it spins, never calling weft) until a
 * task it started, queued behind it on that carrier, has run: the other
 * carrier takes it, or the monitor starts one (weft/task.h: a task that
 * never calls weft holds only its own carrier). */
struct hold {
	atomic_int flag;
	int go_rc;
	weft_wg_t *wg;
};

static void setter_main(void *arg)
{
	struct hold *h = arg;
	atomic_store(&h->flag, 1);
	weft_wg_done(h->wg);
}

static void holder_main(void *arg)
{
	struct hold *h = arg;
	weft_wg_add(h->wg, 1);
	h->go_rc = weft_go(setter_main, h);
	if (h->go_rc) {
		weft_wg_done(h->wg);
	} else {
		int64_t dl = weft_deadline(20000000000LL);
		while (!atomic_load(&h->flag))
			CHECK(weft_now() < dl); /* else: held for good */
	}
	weft_wg_done(h->wg);
}

static void sec_tasks(void)
{
	g_section = "tasks";
	struct tk t[5] = {0};
	bool started[5] = {0};
	weft_wg_t wg;
	weft_chan_t *to = NULL, *from = NULL;
	weft_wg_init(&wg);
	if (FAILED(weft_chan_create(&to, 8, 0), "chan_create"))
		to = NULL;
	if (FAILED(weft_chan_create(&from, 8, 2), "chan_create"))
		from = NULL;
	for (int i = 0; i < 5; i++) {
		t[i].wg = &wg;
		t[i].sleep = i == 1;
		t[i].to = i == 2 ? to : NULL;
		t[i].from = i == 4 ? from : NULL;
		weft_wg_add(&wg, 1);
		weft_task_opts_t o = {.stack_size = 256 << 10, .name = "big"};
		int rc = i == 3 ? weft_go_opts(tk_main, &t[i], &o) : weft_go(tk_main, &t[i]);
		started[i] = !FAILED(rc, "weft_go");
		if (!started[i])
			weft_wg_done(&wg);
	}
	if (to) {
		uint64_t v, want = 1;
		if (started[2]) {
			while (weft_chan_recv(to, &v) == 0)
				CHECK_EQ(v, want++);
			CHECK_EQ(want, 11);
		}
	}
	if (from) {
		if (started[4])
			for (uint64_t i = 1; i <= 5; i++)
				CHECK_EQ(weft_chan_send(from, &i), 0);
		weft_chan_close(from);
	}
	CHECK_EQ(weft_wg_wait_until(&wg, weft_deadline(30000000000LL)), 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(atomic_load(&t[i].ran), started[i]);
	weft_chan_destroy(to);
	weft_chan_destroy(from);

	struct hold h = {.wg = &wg};
	weft_wg_add(&wg, 1);
	if (FAILED(weft_go(holder_main, &h), "weft_go")) {
		weft_wg_done(&wg);
	} else {
		CHECK_EQ(weft_wg_wait_until(&wg, weft_deadline(30000000000LL)), 0);
		if (FAILED(h.go_rc, "weft_go (from a task)"))
			CHECK_EQ(atomic_load(&h.flag), 0);
		else
			CHECK_EQ(atomic_load(&h.flag), 1);
	}
}

/* ---- channels: BLOCK, select ---- */

struct rx {
	weft_chan_t *ch;
	uint64_t n;      /* received */
	uint64_t last;   /* FIFO check: values increase */
	bool retry_eio;  /* a read error is retried (SPILL) */
};

static void *rx_main(void *arg)
{
	struct rx *r = arg;
	uint64_t v;
	for (;;) {
		int rc = weft_chan_recv(r->ch, &v);
		if (rc == -EPIPE)
			break;
		if (rc == -EIO && r->retry_eio && FAILED(rc, "chan_recv (spill read)"))
			continue; /* nothing was taken: the next try gets it */
		CHECK_EQ(rc, 0);
		CHECK(v > r->last);
		r->last = v;
		r->n++;
	}
	return NULL;
}

static void *tx_main(void *arg)
{
	for (uint64_t i = 1; i <= 5; i++)
		CHECK_EQ(weft_chan_send(arg, &i), 0);
	CHECK_EQ(weft_chan_close(arg), 0);
	return NULL;
}

static void sec_chan(void)
{
	g_section = "chan";
	weft_chan_t *b = NULL, *u = NULL;
	if (FAILED(weft_chan_create(&b, 8, 4), "chan_create"))
		return;
	if (FAILED(weft_chan_create(&u, 8, 0), "chan_create")) {
		weft_chan_destroy(b);
		return;
	}
	struct rx r = {.ch = b};
	pthread_t th;
	CHECK_EQ(pthread_create(&th, NULL, rx_main, &r), 0);
	uint64_t sent = 0;
	for (uint64_t i = 1; i <= 20; i++) {
		CHECK_EQ(weft_chan_send(b, &i), 0);
		sent++;
	}
	uint64_t many[5] = {21, 22, 23, 24, 25};
	for (size_t k = 0; k < 5;) {
		long n = weft_chan_send_many(b, many + k, 5 - k);
		CHECK(n > 0);
		k += (size_t)n;
		sent += (uint64_t)n;
	}
	/* a select of more than 32 cases allocates its wait nodes: 40
	 * cases, one enabled (a send that fits) */
	weft_case_t cases[40] = {0};
	uint64_t x = 26;
	cases[17] = (weft_case_t){.chan = b, .op = WEFT_SEND, .elem = &x};
	int idx = weft_select(cases, 40);
	if (!FAILED(idx, "select (40 cases)")) {
		CHECK_EQ(idx, 17);
		CHECK_EQ(cases[17].err, 0);
		sent++;
	}
	CHECK_EQ(weft_chan_close(b), 0);
	CHECK_EQ(pthread_join(th, NULL), 0);
	CHECK_EQ(r.n, sent);
	/* unbuffered: a thread sends, a select receives */
	CHECK_EQ(pthread_create(&th, NULL, tx_main, u), 0);
	uint64_t v, want = 1;
	for (;;) {
		weft_case_t rc[1] = {{.chan = u, .op = WEFT_RECV, .elem = &v}};
		CHECK_EQ(weft_select(rc, 1), 0);
		if (rc[0].err == -EPIPE)
			break;
		CHECK_EQ(rc[0].err, 0);
		CHECK_EQ(v, want++);
	}
	CHECK_EQ(want, 6);
	CHECK_EQ(pthread_join(th, NULL), 0);
	weft_chan_destroy(b);
	weft_chan_destroy(u);
}

/* ---- DROP_NEWEST, DROP_OLDEST ---- */

struct big {
	uint64_t v;
	char pad[312];
};

static int g_dropped[64];

static void on_drop(void *elem, void *user)
{
	(void)user;
	struct big *b = elem;
	CHECK(b->v < 64);
	g_dropped[b->v]++;
}

static void sec_drop(void)
{
	g_section = "drop";
	weft_chan_t *c = NULL;
	weft_chan_opts_t o = {.elem_size = 8, .capacity = 4, .overflow = WEFT_OVERFLOW_DROP_NEWEST};
	if (!FAILED(weft_chan_create_opts(&c, &o), "chan_create_opts (drop newest)")) {
		uint64_t acc = 0;
		for (uint64_t i = 1; i <= 10; i++) {
			int rc = weft_chan_try_send(c, &i);
			CHECK(rc == 0 || rc == -ENOBUFS);
			acc += rc == 0;
		}
		CHECK_EQ(acc, 4);
		uint64_t v, want = 1;
		while (weft_chan_try_recv(c, &v) == 0)
			CHECK_EQ(v, want++);
		CHECK_EQ(want, 5);
		weft_chan_destroy(c);
	}
	/* DROP_OLDEST with elements over 256 bytes: an eviction needs a
	 * buffer from the heap */
	memset(g_dropped, 0, sizeof g_dropped);
	weft_chan_opts_t d = {.elem_size = sizeof(struct big), .capacity = 4,
			      .overflow = WEFT_OVERFLOW_DROP_OLDEST, .on_drop = on_drop};
	if (FAILED(weft_chan_create_opts(&c, &d), "chan_create_opts (drop oldest)"))
		return;
	bool acc[64] = {0};
	for (uint64_t i = 1; i <= 12; i++) {
		struct big b = {.v = i};
		int rc = weft_chan_send(c, &b);
		acc[i] = !FAILED(rc, "chan_send (drop oldest)");
	}
	int got[64] = {0};
	struct big b;
	weft_chan_close(c);
	while (weft_chan_recv(c, &b) == 0) {
		CHECK(b.v < 64);
		got[b.v]++;
	}
	for (int i = 1; i <= 12; i++)
		CHECK_EQ(got[i] + g_dropped[i], acc[i]);
	weft_chan_destroy(c);
}

/* ---- SPILL ---- */

struct spill_tx {
	weft_chan_t *ch;
	bool acc[128];
	weft_wg_t done;
};

static void spill_tx_task(void *arg)
{
	struct spill_tx *s = arg;
	for (uint64_t i = 1; i < 100; i++) {
		int rc = weft_chan_send(s->ch, &i);
		s->acc[i] = !FAILED(rc, "chan_send (spill, task)");
	}
	weft_chan_close(s->ch);
	weft_wg_done(&s->done);
}

static void sec_spill(void)
{
	g_section = "spill";
	/* blocks of 8 elements: sends past the ring write blocks, receives
	 * read them back, and the file grows past 8 blocks (truncated once
	 * read back) */
	weft_chan_opts_t o = {.elem_size = 8, .capacity = 4, .overflow = WEFT_OVERFLOW_SPILL,
			      .spill_dir = g_dir, .spill_block_bytes = 64};
	weft_chan_t *c = NULL;
	if (!FAILED(weft_chan_create_opts(&c, &o), "chan_create_opts (spill)")) {
		/* all sent first (a file of 12 blocks), then a thread reads */
		bool acc[128] = {0};
		uint64_t nacc = 0;
		for (uint64_t i = 1; i <= 100; i++) {
			int rc = weft_chan_send(c, &i);
			acc[i] = !FAILED(rc, "chan_send (spill)");
			nacc += acc[i];
		}
		/* a select's send case: a disk error comes back as its err */
		uint64_t x = 101;
		weft_case_t cs[2] = {{.chan = c, .op = WEFT_SEND, .elem = &x}};
		int idx = weft_select(cs, 2);
		CHECK_EQ(idx, 0);
		acc[101] = !FAILED(cs[0].err, "select send (spill)");
		nacc += acc[101];
		struct rx r = {.ch = c, .retry_eio = true};
		pthread_t th;
		CHECK_EQ(pthread_create(&th, NULL, rx_main, &r), 0);
		for (uint64_t i = 102; i <= 110; i++) {
			int rc = weft_chan_send(c, &i);
			acc[i] = !FAILED(rc, "chan_send (spill)");
			nacc += acc[i];
		}
		CHECK_EQ(weft_chan_close(c), 0);
		CHECK_EQ(pthread_join(th, NULL), 0);
		/* FIFO (rx_main) and the count: every accepted one, once */
		CHECK_EQ(r.n, nacc);
		weft_chan_destroy(c);
	}
	/* a task sends, the main thread receives */
	struct spill_tx *s = calloc(1, sizeof *s);
	if (!FAILED(weft_chan_create_opts(&s->ch, &o), "chan_create_opts (spill)")) {
		weft_wg_init(&s->done);
		weft_wg_add(&s->done, 1);
		if (FAILED(weft_go(spill_tx_task, s), "weft_go")) {
			weft_chan_close(s->ch);
			weft_wg_done(&s->done);
		}
		uint64_t v, last = 0;
		bool got[128] = {0};
		for (;;) {
			int rc = weft_chan_recv_until(s->ch, &v, weft_deadline(30000000000LL));
			if (rc == -EPIPE)
				break;
			if (FAILED(rc, "chan_recv (spill read)"))
				continue;
			CHECK_EQ(rc, 0);
			CHECK(v > last && v < 128); /* FIFO */
			last = v;
			got[v] = true;
		}
		weft_wg_wait(&s->done);
		for (int i = 0; i < 128; i++)
			CHECK_EQ(got[i], s->acc[i]);
		weft_chan_destroy(s->ch);
	}
	free(s);
	CHECK_EQ(dir_entries(g_dir), 0); /* never a name in the directory */
}

/* ---- contexts ---- */

static atomic_int g_af[8];

static void af_fn(void *arg)
{
	atomic_fetch_add(&g_af[(intptr_t)arg], 1);
}

static void sec_ctx(void)
{
	g_section = "ctx";
	uint64_t live0 = weft__ctx_live();
	for (int i = 0; i < 8; i++)
		atomic_store(&g_af[i], 0);
	weft_ctx_t *root = NULL, *c1 = NULL, *c2 = NULL, *gc = NULL;
	if (FAILED(weft_ctx_with_cancel(&root, weft_ctx_background()), "ctx_with_cancel"))
		return;
	if (FAILED(weft_ctx_with_cancel(&c1, root), "ctx_with_cancel"))
		c1 = NULL;
	if (FAILED(weft_ctx_with_timeout(&c2, root, 3000000), "ctx_with_timeout"))
		c2 = NULL;
	int64_t t_gc = weft_now();
	if (c1 && FAILED(weft_ctx_with_deadline(&gc, c1, weft_deadline(10000000000LL)),
			 "ctx_with_deadline"))
		gc = NULL;
	bool reg[8] = {0};
	weft_ctx_stop_t *stop5 = NULL, *stop6 = NULL;
	/* c2 has a deadline: after_func arms the timer (its thread, its
	 * heap); nobody looks at c2 after that, so only the timer ends it */
	if (c2) {
		reg[0] = !FAILED(weft_ctx_after_func(c2, af_fn, (void *)0, NULL), "ctx_after_func");
		reg[1] = !FAILED(weft_ctx_after_func(c2, af_fn, (void *)1, NULL), "ctx_after_func");
		reg[5] = !FAILED(weft_ctx_after_func(c2, af_fn, (void *)5, &stop5), "ctx_after_func");
	}
	if (c1)
		reg[2] = !FAILED(weft_ctx_after_func(c1, af_fn, (void *)2, NULL), "ctx_after_func");
	if (gc) {
		reg[3] = !FAILED(weft_ctx_after_func(gc, af_fn, (void *)3, NULL), "ctx_after_func");
		reg[6] = !FAILED(weft_ctx_after_func(gc, af_fn, (void *)6, &stop6), "ctx_after_func");
		if (reg[6]) {
			CHECK_EQ(weft_ctx_stop(stop6), 1);
			reg[6] = false; /* stopped: never runs */
		}
	}
	/* the deadline's after-funcs run without anyone asking c2 */
	for (int i = 0; i < 8; i++)
		if (i == 0 || i == 1 || i == 5) {
			poll_until(&g_af[i], reg[i], 5000000000LL);
			CHECK_EQ(atomic_load(&g_af[i]), reg[i]);
		}
	weft_ctx_cancel(root); /* c1, gc: canceled through root */
	if (c2)
		CHECK_EQ(weft_ctx_wait(c2, WEFT_FOREVER), -ETIMEDOUT);
	if (gc && weft_ctx_err(gc) != -ECANCELED) {
		fprintf(stderr, "ctx: gc is %d, %.3f s after it was made (its deadline: 10 s)\n",
			weft_ctx_err(gc), (weft_now() - t_gc) / 1e9);
		abort();
	}
	for (int i = 0; i < 8; i++)
		poll_until(&g_af[i], reg[i], 5000000000LL);
	weft_ctx_stop_release(stop5);
	weft_ctx_stop_release(stop6);
	weft_ctx_release(gc);
	weft_ctx_release(c2);
	weft_ctx_release(c1);
	weft_ctx_release(root);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(atomic_load(&g_af[i]), reg[i]);
	/* every context freed (after-func records hold theirs until run) */
	int64_t dl = weft_deadline(5000000000LL);
	while (weft__ctx_live() != live0 && weft_now() < dl)
		weft_sleep(200000);
	CHECK_EQ(weft__ctx_live(), live0);
}

/* ---- sem, wg, once ---- */

static atomic_int g_once_runs;

static void once_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&g_once_runs, 1);
}

static int once_try_fn(void *arg)
{
	(void)arg;
	return 7;
}

struct wgt {
	weft_wg_t *wg;
	atomic_int *ran;
	weft_sem_t *sem;
};

static void wg_task(void *arg)
{
	struct wgt *w = arg;
	CHECK_EQ(weft_sem_acquire(w->sem, 1), 0);
	atomic_fetch_add(w->ran, 1);
	CHECK_EQ(weft_sem_release(w->sem, 1), 0);
	weft_wg_done(w->wg);
}

static void sec_sync(void)
{
	g_section = "sync";
	weft_sem_t s;
	CHECK_EQ(weft_sem_init(&s, 2), 0);
	CHECK_EQ(weft_sem_acquire(&s, 1), 0);
	CHECK_EQ(weft_sem_try_acquire(&s, 2), -EAGAIN);
	weft_ctx_t *ctx = NULL;
	if (!FAILED(weft_ctx_with_timeout(&ctx, weft_ctx_background(), 1000000000LL), "ctx")) {
		CHECK_EQ(weft_sem_acquire_ctx(&s, 1, ctx), 0);
		CHECK_EQ(weft_sem_release(&s, 1), 0);
		weft_ctx_release(ctx);
	}
	CHECK_EQ(weft_sem_release(&s, 1), 0);
	weft_wg_t wg;
	weft_wg_init(&wg);
	atomic_int ran = 0;
	int started = 0;
	struct wgt w = {&wg, &ran, &s};
	for (int i = 0; i < 3; i++) {
		weft_wg_add(&wg, 1);
		if (FAILED(weft_go(wg_task, &w), "weft_go"))
			weft_wg_done(&wg);
		else
			started++;
	}
	CHECK_EQ(weft_wg_wait(&wg), 0);
	CHECK_EQ(atomic_load(&ran), started);
	weft_sem_destroy(&s);
	weft_once_t o = WEFT_ONCE_INIT, o2 = WEFT_ONCE_INIT;
	atomic_store(&g_once_runs, 0);
	CHECK_EQ(weft_once(&o, once_fn, NULL), 0);
	CHECK_EQ(weft_once(&o, once_fn, NULL), 0);
	CHECK_EQ(atomic_load(&g_once_runs), 1);
	CHECK_EQ(weft_once_try(&o2, once_try_fn, NULL), 7);
	CHECK_EQ(weft_once_try(&o2, once_try_fn, NULL), 7);
}

/* ---- pools ---- */

#define NJOBS 40
static atomic_int g_ran[NJOBS], g_discarded[NJOBS];

static int job(void *arg)
{
	atomic_fetch_add(&g_ran[(intptr_t)arg], 1);
	return 0;
}

static int slow_job(void *arg)
{
	weft_sleep(200000);
	return job(arg);
}

static void on_discard(weft_job_fn fn, void *arg, void *user)
{
	(void)fn;
	(void)user;
	atomic_fetch_add(&g_discarded[(intptr_t)arg], 1);
}

static void pool_run(const weft_pool_opts_t *o, bool cancel)
{
	for (int i = 0; i < NJOBS; i++) {
		atomic_store(&g_ran[i], 0);
		atomic_store(&g_discarded[i], 0);
	}
	weft_pool_t *p;
	if (FAILED(weft_pool_create(&p, o), "pool_create"))
		return;
	bool acc[NJOBS] = {0};
	for (intptr_t i = 0; i < NJOBS / 2; i++)
		acc[i] = !FAILED(weft_pool_submit(p, slow_job, (void *)i), "pool_submit");
	CHECK_EQ(weft_pool_wait(p), 0);
	for (int i = 0; i < NJOBS / 2; i++)
		CHECK_EQ(atomic_load(&g_ran[i]), acc[i]);
	for (intptr_t i = NJOBS / 2; i < NJOBS; i++) {
		int rc = weft_pool_try_submit(p, slow_job, (void *)i);
		CHECK(rc == 0 || rc == -EAGAIN); /* a full queue refuses */
		acc[i] = rc == 0;
	}
	CHECK_EQ(weft_pool_shutdown(p, cancel ? WEFT_POOL_CANCEL : WEFT_POOL_DRAIN), 0);
	weft_pool_destroy(p);
	for (int i = 0; i < NJOBS; i++)
		CHECK_EQ(atomic_load(&g_ran[i]) + atomic_load(&g_discarded[i]), acc[i]);
}

static void sec_pool(void)
{
	g_section = "pool";
	weft_pool_opts_t fixed = {.workers = 2, .queue_capacity = 4, .on_discard = on_discard,
				  .name = "f-fixed"};
	pool_run(&fixed, true);
	/* dynamic, more workers than cores: grows from submits (a worker
	 * that cannot start: the job runs in the submitter), watched by the
	 * monitor */
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	weft_pool_opts_t dyn = {.min_workers = 0,
				.max_workers = (unsigned)(ncpu > 0 ? ncpu : 1) + 1,
				.queue_capacity = 2,
				.idle_timeout_ns = 2000000, .on_discard = on_discard,
				.name = "f-dyn"};
	pool_run(&dyn, false);
	weft_pool_opts_t tasks = {.workers = 2, .queue_capacity = 4, .tasks = 1,
				  .on_discard = on_discard};
	pool_run(&tasks, true);
}

/* ---- errgroup ---- */

static atomic_int g_gran[8];

static int gfn(weft_ctx_t *ctx, void *arg)
{
	(void)ctx;
	intptr_t i = (intptr_t)arg;
	atomic_fetch_add(&g_gran[i], 1);
	weft_sleep(100000);
	return i == 3 ? -42 : 0;
}

static void group_run(bool tasks)
{
	for (int i = 0; i < 8; i++)
		atomic_store(&g_gran[i], 0);
	weft_group_t *g;
	weft_ctx_t *ctx;
	if (FAILED(weft_group_create(&g, NULL, &ctx), "group_create"))
		return;
	CHECK_EQ(weft_group_set_tasks(g, tasks), 0);
	CHECK_EQ(weft_group_set_limit(g, 3), 0);
	bool acc[8] = {0};
	for (intptr_t i = 0; i < 8; i++)
		acc[i] = !FAILED(weft_group_go(g, gfn, (void *)i), "group_go");
	int rc = weft_group_wait(g);
	CHECK_EQ(rc, acc[3] ? -42 : 0);
	CHECK_EQ(weft_ctx_err(ctx), -ECANCELED);
	for (int i = 0; i < 8; i++)
		CHECK_EQ(atomic_load(&g_gran[i]), acc[i]);
	weft_group_destroy(g);
}

static void sec_group(void)
{
	g_section = "group";
	group_run(false);
	group_run(true);
}

/* ---- pipelines ---- */

#define NITEMS 60
struct pl {
	atomic_int seen[NITEMS + 1];
	size_t esize;
};

static int src_fn(weft_emit_t *out, void *user)
{
	struct pl *s = user;
	struct big b = {0};
	for (uint64_t i = 1; i <= NITEMS; i++) {
		b.v = i;
		int rc = weft_emit(out, s->esize == 8 ? (void *)&i : (void *)&b);
		if (rc)
			return rc;
	}
	return 0;
}

static int id_fn(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	return weft_emit(out, in);
}

static int sink_fn(const void *in, void *user)
{
	struct pl *s = user;
	uint64_t v = *(const uint64_t *)in;
	CHECK(v >= 1 && v <= NITEMS);
	atomic_fetch_add(&s->seen[v], 1);
	return 0;
}

/* Builds the pipeline step by step; a setup call that fails ends the
 * building (the pipeline is then canceled). */
static void pipeline_run(bool tasks, bool wide)
{
	struct pl *s = calloc(1, sizeof *s);
	s->esize = wide ? sizeof(struct big) : 8;
	weft_pipeline_t *p;
	if (FAILED(weft_pipeline_create(&p, NULL), "pipeline_create")) {
		free(s);
		return;
	}
	CHECK_EQ(weft_pipeline_set_tasks(p, tasks), 0);
	int rc;
	weft_chan_t *a, *b, *c, *fo[2], *d;
	weft_stage_opts_t so = {.out_elem_size = s->esize, .out_capacity = 4};
	/* wide: the stage's output spills (one file, a block that holds
	 * them all: no disk I/O) */
	weft_stage_opts_t o1 = {.workers = 1, .max_workers = 2, .out_capacity = 2,
				.overflow = wide ? WEFT_OVERFLOW_SPILL : WEFT_OVERFLOW_BLOCK,
				.spill_dir = g_dir};
	weft_stage_opts_t o2 = {.workers = 2, .ordered = !wide, .window = 8, .out_capacity = 4};
	weft_stage_opts_t o3 = {.out_capacity = 2};
	bool setup_failed =
		FAILED(rc = weft_pipeline_source(p, &a, src_fn, s, &so), "pipeline_source") ||
		FAILED(rc = weft_pipeline_stage(p, a, &b, id_fn, NULL, &o1), "pipeline_stage") ||
		FAILED(rc = weft_pipeline_stage(p, b, &c, id_fn, NULL, &o2), "pipeline_stage 2") ||
		FAILED(rc = weft_pipeline_fan_out(p, c, fo, 2, id_fn, NULL, &o3), "pipeline_fan_out") ||
		FAILED(rc = weft_pipeline_fan_in(p, fo, 2, &d, &o3), "pipeline_fan_in") ||
		FAILED(rc = weft_pipeline_sink(p, d, sink_fn, s, NULL), "pipeline_sink");
	if (setup_failed)
		weft_pipeline_cancel(p);
	int w = weft_pipeline_wait(p);
	if (!setup_failed && w == 0) {
		for (int i = 1; i <= NITEMS; i++)
			CHECK_EQ(atomic_load(&s->seen[i]), 1);
	} else {
		/* a failed setup: our cancel, or the error a worker that
		 * could not start recorded */
		if (!setup_failed || (w != -ECANCELED && w != rc))
			FAILED(w, "pipeline_wait");
		for (int i = 1; i <= NITEMS; i++)
			CHECK(atomic_load(&s->seen[i]) <= 1);
	}
	weft_pipeline_destroy(p);
	free(s);
}

static void sec_pipeline(void)
{
	g_section = "pipeline";
	pipeline_run(false, false);
	pipeline_run(true, true);
}

/* ---- map and singleflight ---- */

#define NVALS 512
static int g_vstate[NVALS]; /* 1 live (ours or the map's), 2 value_free, 3 freed by us */
static int g_nvals;

struct val {
	int id;
	uint64_t key;
};

static struct val *mkval(uint64_t key)
{
	CHECK(g_nvals < NVALS);
	struct val *v = malloc(sizeof *v);
	v->id = g_nvals++;
	v->key = key;
	g_vstate[v->id] = 1;
	return v;
}

static void value_free(void *p, void *user)
{
	(void)user;
	struct val *v = p;
	CHECK_EQ(g_vstate[v->id], 1);
	g_vstate[v->id] = 2;
	free(v);
}

static void ours_free(struct val *v)
{
	CHECK_EQ(g_vstate[v->id], 1);
	g_vstate[v->id] = 3;
	free(v);
}

#define NKEYS 40
static struct val *g_model[NKEYS];

static int compute(const void *key, size_t klen, void **value, void *user)
{
	(void)user;
	CHECK_EQ(klen, 8);
	uint64_t k;
	memcpy(&k, key, 8);
	if (k == 33)
		return -5; /* a compute that fails: nothing stored */
	*value = mkval(k);
	return 0;
}

static int range_fn(const void *key, size_t klen, void *value, void *user)
{
	int *n = user;
	uint64_t k;
	CHECK_EQ(klen, 8);
	memcpy(&k, key, 8);
	CHECK(k < NKEYS && g_model[k] == value);
	(*n)++;
	return 0;
}

static void map_check(weft_map_t *m)
{
	int n = 0;
	for (uint64_t k = 0; k < NKEYS; k++) {
		void *v;
		int rc = weft_map_load(m, &k, 8, &v);
		CHECK_EQ(rc, g_model[k] != NULL);
		CHECK(v == g_model[k]);
		n += g_model[k] != NULL;
	}
	CHECK_EQ(weft_map_len(m), n);
	int seen = 0;
	CHECK_EQ(weft_map_range(m, range_fn, &seen), 0);
	CHECK_EQ(seen, n);
}

struct sect {
	weft_map_t *m;
	weft_wg_t wg;
};

static void sect_task(void *arg)
{
	struct sect *s = arg;
	weft_map_read_begin(s->m);
	for (uint64_t k = 0; k < NKEYS; k++) {
		void *v;
		CHECK(weft_map_load(s->m, &k, 8, &v) >= 0);
	}
	weft_yield();
	weft_map_read_end(s->m);
	weft_wg_done(&s->wg);
}

static int flight_fn(const void *key, size_t klen, void **value, void *user)
{
	(void)key;
	(void)klen;
	*value = user;
	return 0;
}

static void sec_map(void)
{
	g_section = "map";
	memset(g_model, 0, sizeof g_model);
	weft_map_t *m;
	weft_map_opts_t mo = {.value_free = value_free};
	if (FAILED(weft_map_create(&m, &mo), "map_create"))
		return;
	/* store: new keys, then replacements (the old value to value_free) */
	for (int round = 0; round < 2; round++) {
		for (uint64_t k = 0; k < 30; k++) {
			if (round == 1 && k % 3)
				continue;
			struct val *v = mkval(k);
			if (FAILED(weft_map_store(m, &k, 8, v), "map_store"))
				ours_free(v); /* nothing changed: still ours */
			else
				g_model[k] = v;
		}
	}
	map_check(m);
	/* load_or_store on present and absent keys */
	for (uint64_t k = 0; k < NKEYS; k += 4) {
		struct val *v = mkval(k);
		void *actual;
		int rc = weft_map_load_or_store(m, &k, 8, v, &actual);
		if (FAILED(rc, "map_load_or_store")) {
			ours_free(v);
		} else if (rc == 1) {
			CHECK(actual == g_model[k]);
			ours_free(v);
		} else {
			CHECK(g_model[k] == NULL);
			g_model[k] = v;
		}
	}
	/* swap: the previous value comes back to us */
	for (uint64_t k = 1; k < 8; k += 2) {
		struct val *v = mkval(k);
		void *prev;
		int rc = weft_map_swap(m, &k, 8, v, &prev);
		if (FAILED(rc, "map_swap")) {
			ours_free(v);
			continue;
		}
		CHECK(prev == g_model[k]);
		if (prev)
			ours_free(prev);
		g_model[k] = v;
	}
	/* compare_and_swap, compare_and_delete, delete, load_and_delete */
	for (uint64_t k = 8; k < 16; k++) {
		int rc;
		if (k % 4 == 0) {
			struct val *v = mkval(k);
			rc = weft_map_compare_and_swap(m, &k, 8, g_model[k], v);
			if (FAILED(rc, "map_compare_and_swap") || rc == 0) {
				CHECK(rc != 0 || g_model[k] == NULL);
				ours_free(v);
			} else {
				g_model[k] = v;
			}
		} else if (k % 4 == 1) {
			rc = weft_map_compare_and_delete(m, &k, 8, g_model[k]);
			if (!FAILED(rc, "map_compare_and_delete") && rc == 1)
				g_model[k] = NULL;
		} else if (k % 4 == 2) {
			rc = weft_map_delete(m, &k, 8);
			if (!FAILED(rc, "map_delete")) {
				CHECK_EQ(rc, g_model[k] != NULL);
				g_model[k] = NULL;
			}
		} else {
			void *v;
			rc = weft_map_load_and_delete(m, &k, 8, &v);
			CHECK(rc >= 0); /* hands back: allocates nothing */
			CHECK(v == g_model[k]);
			if (v)
				ours_free(v);
			g_model[k] = NULL;
		}
	}
	map_check(m);
	/* get_or_compute: absent keys compute (33 fails), present ones load */
	for (uint64_t k = 30; k < 36; k++) {
		void *v;
		int rc = weft_map_get_or_compute(m, &k, 8, compute, NULL, &v);
		if (k == 33) {
			CHECK(rc == -5 || FAILED(rc, "map_get_or_compute"));
			CHECK(v == NULL);
		} else if (!FAILED(rc, "map_get_or_compute")) {
			CHECK_EQ(rc, g_model[k] != NULL);
			if (!g_model[k])
				g_model[k] = v;
			CHECK(v == g_model[k]);
		} else {
			CHECK(v == NULL); /* a computed value went to value_free */
		}
	}
	map_check(m);
	/* sections, in a thread and in a task */
	weft_map_read_begin(m);
	map_check(m);
	weft_map_read_end(m);
	struct sect st = {.m = m};
	weft_wg_init(&st.wg);
	weft_wg_add(&st.wg, 1);
	if (FAILED(weft_go(sect_task, &st), "weft_go"))
		weft_wg_done(&st.wg);
	weft_wg_wait(&st.wg);
	/* singleflight */
	weft_flight_t *f;
	if (!FAILED(weft_flight_create(&f), "flight_create")) {
		void *v;
		int shared;
		uint64_t k = 7;
		int rc = weft_flight_do(f, &k, 8, flight_fn, &k, &v, &shared);
		if (!FAILED(rc, "flight_do"))
			CHECK(v == &k);
		weft_flight_destroy(f);
	}
	/* clear (every value to value_free), a few more, destroy */
	CHECK_EQ(weft_map_clear(m), 0);
	memset(g_model, 0, sizeof g_model);
	map_check(m);
	for (uint64_t k = 0; k < 4; k++) {
		struct val *v = mkval(k);
		if (FAILED(weft_map_store(m, &k, 8, v), "map_store"))
			ours_free(v);
		else
			g_model[k] = v;
	}
	map_check(m);
	weft_map_destroy(m);
	for (int i = 0; i < g_nvals; i++)
		if (g_vstate[i] != 2 && g_vstate[i] != 3) {
			fprintf(stderr, "map value %d: state %d (lost)\n", i, g_vstate[i]);
			abort();
		}
}

/* ---- breaker ---- */

static int g_changes, g_burst;
static bool g_burst_armed;
static weft_breaker_t *g_b;

/* Counts every call; once armed, the callback itself changes the
 * breaker's mode 10 times (each a transition, queued while it runs: more
 * than the 8 events a breaker holds without allocating). */
static void on_change(const char *name, int from, int to, void *user)
{
	(void)name;
	(void)user;
	CHECK(from != to);
	g_changes++;
	if (g_burst_armed) {
		g_burst_armed = false;
		for (int i = 0; i < 5; i++) {
			CHECK_EQ(weft_breaker_force_closed(g_b), 0);
			CHECK_EQ(weft_breaker_force_open(g_b), 0);
		}
		g_burst += 10;
	}
}

static int fails(void *arg)
{
	(void)arg;
	return -1;
}

static int works(void *arg)
{
	(void)arg;
	return 0;
}

/* time_window: the rates' window in time buckets, else the last calls */
static void breaker_run(bool time_window)
{
	g_changes = g_burst = 0;
	g_burst_armed = false;
	weft_breaker_settings_t s = {.name = "faults", .interval = 100000000,
				     .bucket_period = 10000000, .on_state_change = on_change,
				     .failure_rate = 0.5, .min_calls = 4};
	if (time_window)
		s.window_time = 1000000000;
	else
		s.window_calls = 10;
	weft_breaker_t *b;
	if (FAILED(weft_breaker_create(&b, &s), "breaker_create"))
		return;
	g_b = b;
	int transitions = 0, last = weft_breaker_state(b);
	uint64_t lost = 0;
	weft_breaker_stats_t st;
	/* each call's transitions: its own (the state moved) and the burst's;
	 * a callback may be lost (counted) only from the burst's backlog,
	 * never a plain transition's (8 events are there from create) */
#define STEP(call)                                                                 \
	do {                                                                       \
		call;                                                              \
		int st_ = weft_breaker_state(b), burst_ = g_burst;                 \
		transitions += (st_ != last) + burst_;                             \
		g_burst = 0;                                                       \
		last = st_;                                                        \
		CHECK_EQ(weft_breaker_stats(b, &st), 0);                           \
		CHECK(st.callbacks_lost == lost || burst_);                        \
		lost = st.callbacks_lost;                                          \
		CHECK_EQ(g_changes + (int)lost, transitions);                      \
	} while (0)
	for (int i = 0; i < 12; i++) {
		int rc;
		STEP(weft_breaker_execute(b, i % 3 ? fails : works, NULL, &rc));
	}
	CHECK_EQ(last, WEFT_BREAKER_OPEN);
	STEP(weft_breaker_force_closed(b));
	STEP(weft_breaker_disable(b));
	STEP(weft_breaker_force_open(b));
	STEP(weft_breaker_reset(b));
	for (int i = 0; i < 6; i++) {
		weft_breaker_ticket_t t;
		int rc = 0;
		STEP(rc = weft_breaker_allow(b, &t));
		if (rc == 0)
			STEP(weft_breaker_done(b, &t, i % 2 ? -1 : 0));
	}
	STEP(weft_breaker_reset(b));
	if (!time_window) {
		g_burst_armed = true;
		STEP(weft_breaker_force_open(b)); /* closed -> open, then 10 more */
		CHECK_EQ(last, WEFT_BREAKER_OPEN);
	}
	STEP(weft_breaker_reset(b));
#undef STEP
	CHECK(transitions >= 5);
	/* a lost callback only where memory was refused (and counted) */
	if (st.callbacks_lost)
		CHECK(weft__fault_fired(NULL, NULL, NULL));
	weft_breaker_destroy(b);
}

static void sec_breaker(void)
{
	g_section = "breaker";
	breaker_run(false);
	breaker_run(true);
}

/* ---- the run ---- */

static const char *volatile g_fired_section = "";

/* At the failed call (on the thread that made it): note the section and
 * tell the driver at once, so a run that crashes after it is still
 * reported with its site. */
static void on_fire(const char *site, unsigned kind, const char *thread)
{
	g_fired_section = g_section;
	char buf[320];
	int n = snprintf(buf, sizeof buf, "fired 1\nsite %s\nkind %s\nthread %s\nsection %s\n", site,
			 weft__fault_kind_name(kind), thread, g_fired_section);
	if (n > 0 && write(REPORT_FD, buf, (size_t)n) < 0) {
	}
}

static void script(void)
{
	static void (*const secs[])(void) = {sec_tasks, sec_chan, sec_drop, sec_spill,
					     sec_ctx, sec_sync, sec_pool, sec_group,
					     sec_pipeline, sec_map, sec_breaker};
	static const char *const names[] = {"tasks", "chan", "drop", "spill", "ctx", "sync",
					    "pool", "group", "pipeline", "map", "breaker"};
	bool timed = getenv("WEFT_FAULTS_TIMES") != NULL;
	const char *only = getenv("WEFT_FAULTS_ONLY"); /* by hand: "ctx,map" */
	for (size_t i = 0; i < sizeof secs / sizeof *secs; i++) {
		if (only && !strstr(only, names[i]))
			continue;
		int64_t t = weft_now();
		secs[i]();
		if (timed)
			fprintf(stderr, "  %-10s %6.1f ms\n", g_section, (weft_now() - t) / 1e6);
	}
	g_section = "end";
}

static void site_line(const char *s, unsigned k, uint64_t n, void *u)
{
	fprintf(u, "callsite %s %s %" PRIu64 "\n", s, weft__fault_kind_name(k), n);
}

/* after the run: what happened, for the driver */
static void report(bool sites)
{
	FILE *r = fdopen(REPORT_FD, "w");
	if (!r)
		return;
	const char *site = "", *thread = "";
	unsigned kind = 0;
	int fired = weft__fault_fired(&site, &kind, &thread);
	fprintf(r, "calls %" PRIu64 "\n", weft__fault_calls());
	fprintf(r, "fired %d\n", fired);
	if (fired) {
		fprintf(r, "site %s\n", site);
		fprintf(r, "kind %s\n", weft__fault_kind_name(kind));
		fprintf(r, "thread %s\n", thread);
		fprintf(r, "section %s\n", g_fired_section);
		fprintf(r, "errors %d %s\n", g_errors, g_errors ? g_first : "-");
	}
	if (sites)
		weft__fault_sites(site_line, r);
	fclose(r);
}

/* ---- regression cases: each fails one named call, then the script ---- */

struct regress {
	const char *name;
	const char *func; /* the function whose call fails */
	unsigned kind;
	uint64_t nth;     /* its nth call of that kind */
	bool must_fire;   /* the call is still made (else the fix removed it) */
	const char *what;
};

static const struct regress regressions[] = {
	{"ordered-window", "make_ord", WEFT__FAULT_ALLOC, 2, true,
	 "pipeline: no memory for an ordered stage's window (slots calloc)"},
	{"stage-outs", "add_stage", WEFT__FAULT_ALLOC, 3, true,
	 "pipeline: no memory for a stage's output array"},
	{"map-key", "rec_key_init", WEFT__FAULT_KEY, 1, true,
	 "map: pthread_key_create fails at the first map call"},
	{"after-func-timer", "timer_add", WEFT__FAULT_ALLOC, 1, true,
	 "ctx: no memory for the timer heap at an after_func"},
	{"breaker-event", "ev_push", WEFT__FAULT_ALLOC, 1, false,
	 "breaker: no memory to queue an on_state_change event (lost only past 8, counted)"},
	{"second-carrier", "carrier_thread", WEFT__FAULT_THREAD, 2, true,
	 "tasks: the runtime's second carrier cannot start"},
};

/* ==== the child's main ===================================================== */

/* One run: site NULL: count only; else fail the k-th call of site; or
 * the regression rg. */
static int child(const char *site, uint64_t k, const struct regress *rg)
{
	test_watchdog(120);
	weft__fault_set_hook(on_fire);
	if (rg)
		weft__fault_arm_at(rg->func, rg->kind, rg->nth);
	else if (site)
		weft__fault_arm_site(site, k);
	else
		weft__fault_arm(0, WEFT__FAULT_ALL, 0);
	script();
	weft__fault_disarm();
	if (rg && rg->must_fire && !weft__fault_fired(NULL, NULL, NULL)) {
		fprintf(stderr, "regression %s: %s made no call %" PRIu64 " of that kind\n",
			rg->name, rg->func, rg->nth);
		return 1;
	}
	report(!rg);
	return 0;
}

/* ==== the driver ============================================================ */

struct result {
	int status;      /* wait status; -1: hung (killed) */
	bool fired;
	uint64_t calls;
	char site[160], kind[16], thread[32], section[32], errors[128];
};

struct callsite {
	char site[160], kind[16];
	uint64_t calls;
	uint64_t tried; /* calls 1..tried have been aimed at */
	uint64_t hit;   /* runs of the walk that failed it */
};

static struct callsite g_sites[1024];
static size_t g_nsites;
static const char *g_self;
static int64_t g_child_timeout_ns = 180000000000LL;
static size_t g_jobs = 2; /* children at once (--jobs) */

static struct callsite *site_find(const char *site, bool add)
{
	for (size_t i = 0; i < g_nsites; i++)
		if (strcmp(g_sites[i].site, site) == 0)
			return &g_sites[i];
	if (!add || g_nsites == sizeof g_sites / sizeof *g_sites)
		return NULL;
	struct callsite *c = &g_sites[g_nsites++];
	snprintf(c->site, sizeof c->site, "%s", site);
	return c;
}

static const char *short_site(const char *s)
{
	while (strncmp(s, "../", 3) == 0)
		s += 3;
	return s;
}

/* A child in flight: this program run with args; its report comes on a
 * pipe (its fd 3). */
struct job {
	pid_t pid;
	int fd;           /* -1 once at EOF */
	uint64_t n;       /* the walk's n (0: not a walk run) */
	int64_t deadline; /* then it is killed: hung */
	bool hung;
	size_t len;
	char buf[1 << 16];
};

static void job_start(struct job *j, char *const args[], uint64_t n)
{
	int p[2];
	CHECK_EQ(pipe(p), 0);
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		if (p[0] != REPORT_FD)
			close(p[0]);
		if (p[1] != REPORT_FD) {
			dup2(p[1], REPORT_FD);
			close(p[1]);
		}
		execv(g_self, args);
		_exit(127);
	}
	close(p[1]);
	fcntl(p[0], F_SETFD, FD_CLOEXEC); /* not inherited by later children */
	j->pid = pid;
	j->fd = p[0];
	j->n = n;
	j->deadline = weft_deadline(g_child_timeout_ns);
	j->hung = false;
	j->len = 0;
}

static void parse_report(char *buf, struct result *res)
{
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char a[160], b[16];
		uint64_t v;
		int fired;
		if (sscanf(line, "calls %" SCNu64, &v) == 1)
			res->calls = v;
		else if (sscanf(line, "fired %d", &fired) == 1)
			res->fired = fired;
		else if (sscanf(line, "site %159s", res->site) == 1)
			;
		else if (sscanf(line, "kind %15s", res->kind) == 1)
			;
		else if (sscanf(line, "thread %31[^\n]", res->thread) == 1)
			;
		else if (sscanf(line, "section %31s", res->section) == 1)
			;
		else if (strncmp(line, "errors ", 7) == 0)
			snprintf(res->errors, sizeof res->errors, "%s", line + 7);
		else if (sscanf(line, "callsite %159s %15s %" SCNu64, a, b, &v) == 3) {
			struct callsite *c = site_find(a, true);
			if (c) {
				snprintf(c->kind, sizeof c->kind, "%s", b);
				if (v > c->calls)
					c->calls = v; /* the most any run made */
			}
		}
	}
}

/* Wait (up to ms) for progress of the jobs; true with *done set to the
 * index of one that has ended (its result in *res). */
static bool jobs_step(struct job *jobs, size_t njobs, int ms, size_t *done, struct result *res)
{
	struct pollfd pf[8];
	size_t idx[8], k = 0;
	for (size_t i = 0; i < njobs && k < 8; i++)
		if (jobs[i].pid > 0 && jobs[i].fd >= 0) {
			pf[k] = (struct pollfd){.fd = jobs[i].fd, .events = POLLIN};
			idx[k++] = i;
		}
	if (k && poll(pf, k, ms) > 0) {
		for (size_t q = 0; q < k; q++) {
			if (!pf[q].revents)
				continue;
			struct job *j = &jobs[idx[q]];
			ssize_t r = read(j->fd, j->buf + j->len, sizeof j->buf - 1 - j->len);
			if (r > 0)
				j->len += (size_t)r;
			if (r <= 0 || j->len == sizeof j->buf - 1) {
				close(j->fd);
				j->fd = -1;
			}
		}
	} else if (!k) {
		usleep((useconds_t)ms * 1000);
	}
	for (size_t i = 0; i < njobs; i++) {
		struct job *j = &jobs[i];
		if (j->pid <= 0)
			continue;
		int st;
		pid_t w = waitpid(j->pid, &st, WNOHANG);
		if (w == 0 && weft_now() > j->deadline && !j->hung) {
			j->hung = true;
			kill(j->pid, SIGKILL);
			continue;
		}
		if (w != j->pid)
			continue;
		/* exited: the rest of its report, if any */
		if (j->fd >= 0) {
			ssize_t r;
			while ((r = read(j->fd, j->buf + j->len, sizeof j->buf - 1 - j->len)) > 0)
				j->len += (size_t)r;
			close(j->fd);
			j->fd = -1;
		}
		memset(res, 0, sizeof *res);
		res->status = j->hung ? -1 : st;
		j->buf[j->len] = 0;
		parse_report(j->buf, res);
		j->pid = 0;
		*done = i;
		return true;
	}
	return false;
}

/* Run this program with args, alone; its report parsed into *res. */
static void run_child(char *const args[], struct result *res)
{
	static struct job j;
	size_t done;
	job_start(&j, args, 0);
	while (!jobs_step(&j, 1, 1000, &done, res))
		;
}

static bool child_ok(const struct result *r)
{
	return r->status == 0;
}

static void describe_status(const struct result *r, char *buf, size_t n)
{
	if (r->status == -1)
		snprintf(buf, n, "hung (killed after %" PRId64 " s)", g_child_timeout_ns / 1000000000);
	else if (WIFSIGNALED(r->status))
		snprintf(buf, n, "killed by signal %d", WTERMSIG(r->status));
	else
		snprintf(buf, n, "exit %d%s", WEXITSTATUS(r->status),
			 WEXITSTATUS(r->status) == 23 ? " (leak)" : "");
}

struct tally {
	char name[48];
	uint64_t n;
};

static void tally_add(struct tally *t, size_t cap, size_t *len, const char *name)
{
	for (size_t i = 0; i < *len; i++)
		if (strcmp(t[i].name, name) == 0) {
			t[i].n++;
			return;
		}
	if (*len < cap) {
		snprintf(t[*len].name, sizeof t[*len].name, "%s", name);
		t[(*len)++].n = 1;
	}
}

static void tally_print(const char *title, const struct tally *t, size_t len)
{
	printf("  %s:", title);
	for (size_t i = 0; i < len; i++)
		printf("%s %s %" PRIu64, i ? "," : "", t[i].name, t[i].n);
	printf("\n");
}

static int run_regressions(void)
{
	int bad = 0;
	for (size_t i = 0; i < sizeof regressions / sizeof *regressions; i++) {
		const struct regress *rg = &regressions[i];
		char *args[] = {(char *)g_self, "--regress", (char *)rg->name, (char *)g_dir, NULL};
		struct result r;
		run_child(args, &r);
		char st[64];
		describe_status(&r, st, sizeof st);
		printf("regression %-16s %s: %s%s%s\n", rg->name, rg->what,
		       child_ok(&r) ? "ok" : "FAILED, ", child_ok(&r) ? "" : st,
		       child_ok(&r) && !r.fired ? " (the call is no longer made)" : "");
		bad += !child_ok(&r);
	}
	return bad;
}

/* The walk: every site the script reaches, every call of it (k = 1 ..
 * the most calls a run saw there; cap > 0: up to cap), each failed in a
 * run of its own. Sites and counts come from every run's report, so a
 * site only reached after a failure (an error path) is walked too. */
static int driver(uint32_t cap)
{
	int64_t t0 = weft_now();
	int bad = run_regressions();

	char *args0[] = {(char *)g_self, "--child", "-", "0", (char *)g_dir, NULL};
	struct result r0;
	run_child(args0, &r0);
	if (!child_ok(&r0)) {
		char st[64];
		describe_status(&r0, st, sizeof st);
		printf("test_faults: the script fails with no failure injected: %s\n", st);
		return 1;
	}
	printf("test_faults: a run without failures makes %" PRIu64 " calls from %zu call sites\n",
	       r0.calls, g_nsites);

	struct tally sec[32], file[32], kind[8], thr[32];
	size_t nsec = 0, nfile = 0, nkind = 0, nthr = 0;
	uint64_t walked = 0, errors = 0, absorbed = 0, missed = 0, started = 0;
	static struct job jobs[8];
	static char karg[8][24];
	static size_t jsite[8];
	size_t active = 0;
	for (;;) {
		/* the next point: the first site with a call not yet tried */
		while (active < g_jobs) {
			size_t i;
			for (i = 0; i < g_nsites; i++) {
				uint64_t upto = cap && g_sites[i].calls > cap ? cap : g_sites[i].calls;
				if (g_sites[i].tried < upto)
					break;
			}
			if (i == g_nsites)
				break;
			size_t j = 0;
			while (jobs[j].pid > 0)
				j++;
			uint64_t k = ++g_sites[i].tried;
			snprintf(karg[j], sizeof karg[j], "%" PRIu64, k);
			char *args[] = {(char *)g_self, "--child", g_sites[i].site, karg[j],
					(char *)g_dir, NULL};
			job_start(&jobs[j], args, k);
			jsite[j] = i;
			active++;
			started++;
		}
		if (!active)
			break;
		size_t j;
		struct result r;
		if (!jobs_step(jobs, sizeof jobs / sizeof *jobs, 200, &j, &r))
			continue;
		active--;
		struct callsite *cs = &g_sites[jsite[j]];
		uint64_t k = jobs[j].n;
		if (!child_ok(&r)) {
			char st[64];
			describe_status(&r, st, sizeof st);
			printf("FAILED %s call %" PRIu64 ": %s; %s in thread %s, section %s; reproduce: "
			       "%s --run %s %" PRIu64 "\n",
			       short_site(cs->site), k, st, r.fired ? "failed there" : "not reached",
			       r.thread, r.section, g_self, cs->site, k);
			bad++;
		}
		if (!r.fired) {
			missed++; /* that run made fewer calls there */
			continue;
		}
		walked++;
		cs->hit++;
		if (r.errors[0] && strcmp(r.errors, "0 -") != 0)
			errors++;
		else
			absorbed++;
		tally_add(sec, 32, &nsec, r.section[0] ? r.section : "?");
		char fname[48];
		snprintf(fname, sizeof fname, "%s", short_site(r.site));
		char *colon = strrchr(fname, ':');
		if (colon)
			*colon = 0;
		tally_add(file, 32, &nfile, fname);
		tally_add(kind, 8, &nkind, r.kind);
		char tname[32];
		snprintf(tname, sizeof tname, "%s", r.thread);
		/* carriers, pool workers, ...: the name without its number */
		for (char *c = tname; *c; c++)
			if ((*c >= '0' && *c <= '9') || *c == '/')
				*c = 0;
		tally_add(thr, 32, &nthr, tname);
		if (walked % 100 == 0)
			printf("  ... %" PRIu64 " points (%.0f s)\n", walked, (weft_now() - t0) / 1e9);
		fflush(stdout);
	}
	size_t hit = 0;
	for (size_t i = 0; i < g_nsites; i++)
		hit += g_sites[i].hit != 0;
	printf("test_faults: %" PRIu64 " failure points walked (runs that failed the call they "
	       "aimed at), %" PRIu64 " runs in all; %" PRIu64 " runs made fewer calls at their "
	       "site than the most seen%s\n",
	       walked, started, missed, cap ? " (calls after the cap-th of a site not walked)" : "");
	tally_print("by section", sec, nsec);
	tally_print("by file", file, nfile);
	tally_print("by kind", kind, nkind);
	tally_print("by thread", thr, nthr);
	printf("  a clean error reached the script: %" PRIu64 "; absorbed inside weft (the "
	       "script completed, degraded): %" PRIu64 "\n",
	       errors, absorbed);
	printf("  call sites failed at least once: %zu of %zu\n", hit, g_nsites);
	for (size_t i = 0; i < g_nsites; i++)
		if (!g_sites[i].hit)
			printf("    never failed: %s (%s, %" PRIu64 " calls)\n",
			       short_site(g_sites[i].site), g_sites[i].kind, g_sites[i].calls);
	printf("  runs that crashed, hung, leaked or lost an item: %d\n", bad);
	printf("test_faults: %.1f s\n", (weft_now() - t0) / 1e9);
	return bad != 0;
}

int main(int argc, char **argv)
{
	/* the child: --child SITE|- K DIR | --regress NAME DIR */
	if (argc == 5 && strcmp(argv[1], "--child") == 0) {
		g_dir = argv[4];
		bool count = strcmp(argv[2], "-") == 0;
		return child(count ? NULL : argv[2], strtoull(argv[3], NULL, 10), NULL);
	}
	if (argc == 4 && strcmp(argv[1], "--regress") == 0) {
		g_dir = argv[3];
		for (size_t i = 0; i < sizeof regressions / sizeof *regressions; i++)
			if (strcmp(regressions[i].name, argv[2]) == 0)
				return child(NULL, 0, &regressions[i]);
		fprintf(stderr, "no regression %s\n", argv[2]);
		return 2;
	}

	uint32_t cap = 0;
	const char *run_site = NULL, *run_k = NULL, *one_regress = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cap") == 0 && i + 1 < argc)
			cap = (uint32_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--jobs") == 0 && i + 1 < argc)
			g_jobs = (size_t)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--run") == 0 && i + 2 < argc) {
			run_site = argv[++i];
			run_k = argv[++i];
		} else if (strcmp(argv[i], "--regress") == 0 && i + 1 < argc) {
			one_regress = argv[++i];
		} else {
			fprintf(stderr, "usage: %s [--cap K] [--jobs J] | --run SITE K | --regress NAME\n",
				argv[0]);
			return 2;
		}
	}
	if (g_jobs < 1 || g_jobs > 8)
		g_jobs = g_jobs < 1 ? 1 : 8;
	static char self[4096];
	ssize_t k = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK(k > 0);
	self[k] = 0;
	g_self = self;
	/* the children's leak check, whatever the caller's ASAN_OPTIONS */
	static char asan[1024];
	const char *a = getenv("ASAN_OPTIONS");
	snprintf(asan, sizeof asan, "%s%sdetect_leaks=1", a ? a : "", a && *a ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	static char dir[256];
	make_temp_dir(dir, sizeof dir, "weft-faults");
	g_dir = dir;

	int rc;
	if (run_site || one_regress) {
		/* one run, its stderr passed through: to reproduce a failure */
		char *args[] = {self, "--child", (char *)run_site, (char *)run_k, dir, NULL};
		char *rargs[] = {self, "--regress", (char *)one_regress, dir, NULL};
		struct result r;
		run_child(one_regress ? rargs : args, &r);
		char st[64];
		describe_status(&r, st, sizeof st);
		printf("run: %s; fired %d at %s (%s) in thread %s, section %s; errors: %s\n", st,
		       r.fired, short_site(r.site), r.kind, r.thread, r.section, r.errors);
		rc = !child_ok(&r);
	} else {
		rc = driver(cap);
	}
	CHECK_EQ(dir_entries(dir), 0);
	CHECK_EQ(rmdir(dir), 0);
	printf("test_faults: %s\n", rc ? "FAILED" : "passed");
	return rc;
}
