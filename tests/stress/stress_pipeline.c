/* tests/stress/stress_pipeline.c: pipelines under load and cancellation.
 *
 * Sub-tests (every one with workers as threads, then as tasks):
 *   exactly  2 source workers -> a 4-worker stage -> a scaling stage (1..4
 *            workers, 0..2 outputs per input) -> an 8-worker ordered stage
 *            -> fan_out 3 -> fan_in -> a 2-worker sink: every id arrives
 *            exactly as often as the scaling stage emitted it, none
 *            invented, and the sums agree; channel capacities vary by round
 *            (0, 1, 64).
 *   ordered  an 8-worker ordered stage with random per-item delays (spins,
 *            yields, sleeps) and 1..3 outputs per input: the caller reads
 *            them in input order.
 *   cancel   round after round, a random line (2..4 stages, random
 *            workers and capacities) is ended at a random moment by cancel,
 *            by a failing fn (random stage, random item), or by the parent:
 *            wait returns that failure / -ECANCELED; no thread of the
 *            pipeline is left (counted in /proc/self/task); what the last
 *            channel accepted and nobody took is still in it.
 *   death    round after round, a random line as in cancel, in which one
 *            fn call (random stage, source included, random item) ends its
 *            thread (pthread_exit, pthread_cancel of itself, from code with
 *            and without unwind info, or blocked in read and canceled by
 *            the caller): wait returns -EOWNERDEAD, that stage counts one
 *            failure and one dead worker, the item is not taken again, no
 *            thread is left, nothing the last channel accepted is lost
 *            (hundreds of deaths: the sanitizer builds check for leaks).
 *
 * Usage: stress_pipeline [size] [tests]. size (default 1, may be
 * fractional) multiplies every count; sanitizer builds divide them by 10.
 * WEFT_STRESS_SEED=<n> in the environment seeds every random stream from n
 * (tests/common/stress.h). The last line, "stress_pipeline: items moved N
 * lost 0", counts items checked at the end of the line: exactly's sink
 * (each as often as emitted), ordered's outputs (in order), and cancel's
 * items the caller took plus those still in the last channel.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <weft/chan.h>
#include <weft/ctx.h>
#include <weft/pipeline.h>
#include <weft/task.h>

#include "check.h"
#include "die_noeh.h"
#include "tmpdir.h"
#define STRESS_OWN_HARNESS
#include "stress.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static double g_size = 1.0;
static int g_tasks;

static uint64_t scaled(double base, uint64_t lo)
{
	double v = base * g_size / (SANITIZED ? 10 : 1);
	return v < (double)lo ? lo : (uint64_t)v;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static weft_pipeline_t *new_pipeline(weft_ctx_t *parent)
{
	weft_pipeline_t *p;
	CHECK_EQ(weft_pipeline_create(&p, parent), 0);
	CHECK_EQ(weft_pipeline_set_tasks(p, g_tasks), 0);
	return p;
}

/* ---- exactly ---- */

struct item {
	uint64_t id;
	uint64_t val;
};

struct gen {
	uint64_t n;
	_Atomic uint64_t next;
	int fail_at_stage; /* cancel sub-test: which stage fails (0: none) */
	uint64_t fail_at;
};

static int gen_fn(weft_emit_t *out, void *user)
{
	struct gen *g = user;
	for (;;) {
		uint64_t id = atomic_fetch_add(&g->next, 1);
		if (id >= g->n)
			return 0;
		if (g->fail_at_stage == 1 && id == g->fail_at)
			return -EIO;
		struct item it = {id, id * 3};
		int rc = weft_emit(out, &it);
		if (rc)
			return rc;
	}
}

static int triple_fn(weft_emit_t *out, const void *in, void *user)
{
	struct gen *g = user;
	struct item it = *(const struct item *)in;
	if (g && g->fail_at_stage == 2 && it.id == g->fail_at)
		return -EBADMSG;
	it.val = it.val + 1;
	return weft_emit(out, &it);
}

/* 0, 1 or 2 copies by id */
static int copies_fn(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	const struct item *it = in;
	for (uint64_t k = 0; k < it->id % 3; k++) {
		int rc = weft_emit(out, it);
		if (rc)
			return rc;
	}
	if (it->id % 5000 == 0)
		weft_sleep(200000); /* a slow one now and then: backs up the input */
	return 0;
}

static int ord_pass_fn(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	const struct item *it = in;
	if (it->id % 97 == 0)
		weft_yield();
	return weft_emit(out, it);
}

struct tally {
	_Atomic uint8_t *seen;
	_Atomic uint64_t count, sum;
};

static int tally_fn(const void *in, void *user)
{
	struct tally *t = user;
	const struct item *it = in;
	CHECK_EQ(it->val, it->id * 3 + 1);
	uint8_t prev = atomic_fetch_add(&t->seen[it->id], 1);
	CHECK(prev < it->id % 3); /* never more than emitted */
	atomic_fetch_add(&t->count, 1);
	atomic_fetch_add(&t->sum, it->id);
	return 0;
}

static void stress_exactly(void)
{
	size_t caps[] = {0, 1, 64};
	for (int round = 0; round < 3; round++) {
		/* threads: every hop that blocks is a futex sleep and wake
		 * (5-20 us on a 2-core VM with ~26 threads), so fewer items
		 * (tasks hand off in user space) */
		uint64_t n = scaled(round == 0 ? 100000 : 400000, 2000) / (g_tasks ? 1 : 8);
		if (!g_tasks && caps[round] == 1)
			n /= 4;
		struct gen g = {.n = n};
		struct tally t = {0};
		t.seen = calloc(n, 1);
		CHECK(t.seen != NULL);
		size_t cap = caps[round];
		int64_t t0 = weft_now();
		weft_pipeline_t *p = new_pipeline(NULL);
		weft_chan_t *a, *b, *c, *d, *f[3], *m;
		weft_stage_opts_t so = {.name = "gen", .workers = 2,
					.out_elem_size = sizeof(struct item), .out_capacity = cap};
		CHECK_EQ(weft_pipeline_source(p, &a, gen_fn, &g, &so), 0);
		weft_stage_opts_t o1 = {.name = "triple", .workers = 4, .out_capacity = cap ? cap : 64};
		CHECK_EQ(weft_pipeline_stage(p, a, &b, triple_fn, NULL, &o1), 0);
		weft_stage_opts_t o2 = {.name = "copies", .workers = 1, .max_workers = 4,
					.out_capacity = cap, .idle_ns = 2000000};
		CHECK_EQ(weft_pipeline_stage(p, b, &c, copies_fn, NULL, &o2), 0);
		weft_stage_opts_t o3 = {.name = "ordered", .workers = 8, .ordered = 1,
					.out_capacity = cap};
		CHECK_EQ(weft_pipeline_stage(p, c, &d, ord_pass_fn, NULL, &o3), 0);
		weft_stage_opts_t o4 = {.name = "fan", .out_capacity = cap};
		CHECK_EQ(weft_pipeline_fan_out(p, d, f, 3, ord_pass_fn, NULL, &o4), 0);
		weft_stage_opts_t o5 = {.name = "merge", .out_capacity = cap};
		CHECK_EQ(weft_pipeline_fan_in(p, f, 3, &m, &o5), 0);
		weft_stage_opts_t o6 = {.name = "tally", .workers = 2};
		CHECK_EQ(weft_pipeline_sink(p, m, tally_fn, &t, &o6), 0);
		CHECK_EQ(weft_pipeline_wait(p), 0);
		uint64_t want = 0, wsum = 0;
		for (uint64_t i = 0; i < n; i++) {
			CHECK_EQ(t.seen[i], i % 3);
			want += i % 3;
			wsum += i * (i % 3);
		}
		CHECK_EQ(t.count, want);
		CHECK_EQ(t.sum, wsum);
		weft_stage_stats_t st[7];
		CHECK_EQ(weft_pipeline_stats(p, st, 7), 7);
		CHECK_EQ(st[2].in, n);
		CHECK_EQ(st[2].out, want);
		CHECK_EQ(st[6].in, want);
		stress_moved(want);
		printf("stress_pipeline: %-8s exactly cap %-3zu %8" PRIu64
		       " items, copies workers added %" PRIu64 " retired %" PRIu64 ", %6.1f ms\n",
		       g_tasks ? "tasks" : "threads", cap, n, st[2].workers_added,
		       st[2].workers_retired, (double)(weft_now() - t0) / 1e6);
		weft_pipeline_destroy(p);
		free((void *)t.seen);
	}
}

/* ---- ordered ---- */

static int jitter_fn(weft_emit_t *out, const void *in, void *user)
{
	(void)user;
	uint64_t v = *(const uint64_t *)in;
	uint64_t s = stress_seed(v * 7919 + 1);
	uint64_t r = rnd(&s) % 100;
	if (r < 2)
		weft_sleep((int64_t)(rnd(&s) % 200000));
	else if (r < 10)
		weft_yield();
	else if (r < 30)
		for (volatile int i = 0; i < 2000; i++)
			;
	for (uint64_t k = 0; k < 1 + v % 3; k++) {
		uint64_t o = v * 4 + k;
		int rc = weft_emit(out, &o);
		if (rc)
			return rc;
	}
	return 0;
}

static int count_fn(weft_emit_t *out, void *user)
{
	uint64_t n = *(uint64_t *)user;
	for (uint64_t v = 0; v < n; v++) {
		int rc = weft_emit(out, &v);
		if (rc)
			return rc;
	}
	return 0;
}

static void stress_ordered(void)
{
	uint64_t n = scaled(50000, 1000);
	int64_t t0 = weft_now();
	weft_pipeline_t *p = new_pipeline(NULL);
	weft_chan_t *a, *b;
	weft_stage_opts_t so = {.out_elem_size = 8, .out_capacity = 256};
	CHECK_EQ(weft_pipeline_source(p, &a, count_fn, &n, &so), 0);
	weft_stage_opts_t oo = {.workers = 8, .ordered = 1, .out_capacity = 16, .window = 32};
	CHECK_EQ(weft_pipeline_stage(p, a, &b, jitter_fn, NULL, &oo), 0);
	uint64_t v, in = 0, k = 0, got = 0;
	while (weft_chan_recv(b, &v) == 0) {
		CHECK_EQ(v, in * 4 + k);
		got++;
		if (++k == 1 + in % 3) {
			k = 0;
			in++;
		}
	}
	CHECK_EQ(in, n);
	CHECK_EQ(weft_pipeline_wait(p), 0);
	stress_moved(got);
	printf("stress_pipeline: %-8s ordered %" PRIu64 " inputs, %" PRIu64
	       " outputs in order, %6.1f ms\n",
	       g_tasks ? "tasks" : "threads", n, got, (double)(weft_now() - t0) / 1e6);
	weft_pipeline_destroy(p);
}

/* ---- cancel ---- */

static int fwd_fn(weft_emit_t *out, const void *in, void *user)
{
	return triple_fn(out, in, user);
}

static void stress_cancel(void)
{
	unsigned rounds = (unsigned)scaled(g_tasks ? 150 : 60, 20);
	uint64_t seed = stress_seed(12345);
	unsigned how_n[3] = {0};
	int threads_before = count_threads();
	int64_t t0 = weft_now();
	for (unsigned r = 0; r < rounds; r++) {
		int how = (int)(rnd(&seed) % 3); /* 0 cancel, 1 fail, 2 parent */
		how_n[how]++;
		weft_ctx_t *parent;
		CHECK_EQ(weft_ctx_with_cancel(&parent, weft_ctx_background()), 0);
		struct gen g = {.n = UINT64_MAX};
		if (how == 1) {
			g.fail_at_stage = 1 + (int)(rnd(&seed) % 2);
			g.fail_at = rnd(&seed) % 5000;
		}
		weft_pipeline_t *p = new_pipeline(parent);
		size_t caps[] = {0, 1, 8, 64};
		weft_chan_t *ch;
		weft_stage_opts_t so = {.workers = 1 + (unsigned)(rnd(&seed) % 3),
					.out_elem_size = sizeof(struct item),
					.out_capacity = caps[rnd(&seed) % 4]};
		CHECK_EQ(weft_pipeline_source(p, &ch, gen_fn, &g, &so), 0);
		int nst = 1 + (int)(rnd(&seed) % 3);
		for (int s = 0; s < nst; s++) {
			weft_stage_opts_t o = {.workers = 1 + (unsigned)(rnd(&seed) % 4),
					       .out_capacity = caps[rnd(&seed) % 4],
					       .ordered = rnd(&seed) % 4 == 0};
			if (rnd(&seed) % 4 == 0)
				o.max_workers = o.workers + 2;
			weft_chan_t *next;
			CHECK_EQ(weft_pipeline_stage(p, ch, &next, fwd_fn, s == 0 ? &g : NULL, &o),
				 0);
			ch = next;
		}
		/* the caller reads the last channel for a while */
		uint64_t taken = 0, k = rnd(&seed) % 2000;
		struct item it;
		for (uint64_t i = 0; i < k; i++) {
			if (weft_chan_recv_ctx(ch, &it, weft_pipeline_ctx(p)))
				break;
			taken++;
		}
		if (how == 0)
			weft_pipeline_cancel(p);
		else if (how == 2)
			weft_ctx_cancel(parent);
		else if (taken == k)
			/* let the failure come: keep reading until it does */
			while (weft_chan_recv_ctx(ch, &it, weft_pipeline_ctx(p)) == 0)
				taken++;
		int rc = weft_pipeline_wait(p);
		if (how == 1)
			CHECK(rc == (g.fail_at_stage == 1 ? -EIO : -EBADMSG));
		else
			CHECK(rc == -ECANCELED || rc == -EIO || rc == -EBADMSG);
		if (how != 1)
			CHECK_EQ(rc, -ECANCELED);
		CHECK_EQ(weft_ctx_cause(weft_pipeline_ctx(p)), how == 2 ? -ECANCELED : rc);
		/* every thread joined (a joined thread may linger in
		 * /proc/self/task for a moment: the kernel wakes the joiner
		 * before it reaps the thread; a leak stays, and the watchdog
		 * fails the test) */
		while (!g_tasks && count_threads() > threads_before)
			weft_sleep(100000);
		long ns = weft_pipeline_stats(p, NULL, 0);
		weft_stage_stats_t st[8];
		CHECK_EQ(weft_pipeline_stats(p, st, 8), ns);
		for (long i = 0; i < ns; i++)
			CHECK_EQ(st[i].workers, 0);
		/* accepted by the last channel and not taken: still there */
		CHECK_EQ(st[ns - 1].out - taken, weft_chan_len(ch));
		uint64_t left = 0;
		while (weft_chan_try_recv(ch, &it) == 0) {
			CHECK_EQ(it.val, it.id * 3 + (uint64_t)nst);
			left++;
		}
		CHECK_EQ(left, st[ns - 1].out - taken);
		stress_moved(taken + left);
		weft_pipeline_destroy(p);
		weft_ctx_release(parent);
	}
	printf("stress_pipeline: %-8s cancel %u rounds (%u cancel, %u failure, %u parent), "
	       "%6.1f ms\n",
	       g_tasks ? "tasks" : "threads", rounds, how_n[0], how_n[1], how_n[2],
	       (double)(weft_now() - t0) / 1e6);
}

/* ---- death ---- */

enum { K_EXIT = DIE_EXIT, K_EXIT_NOEH = DIE_EXIT_NOEH, K_SELF_CANCEL = DIE_SELF_CANCEL,
       K_CANCEL_NOEH = DIE_CANCEL_NOEH, K_BLOCK = DIE_BLOCK };
#define K_KINDS 5 /* K_EXIT .. K_BLOCK */

static struct {
	int stage; /* 0: the source, 1..: that stage */
	uint64_t at;
	int how;
	atomic_int hits, blocked;
	pthread_t self;
	int never[2];
} DD;

static void dd_die(void)
{
	atomic_fetch_add(&DD.hits, 1);
	die_as(DD.how, DD.never[0], &DD.self, &DD.blocked);
}

static int dd_gen_fn(weft_emit_t *out, void *user)
{
	_Atomic uint64_t *next = user;
	for (;;) {
		uint64_t id = atomic_fetch_add(next, 1);
		if (DD.stage == 0 && id == DD.at)
			dd_die();
		struct item it = {id, id * 3};
		int rc = weft_emit(out, &it);
		if (rc)
			return rc;
	}
}

static int dd_fwd_fn(weft_emit_t *out, const void *in, void *user)
{
	const struct item *it = in;
	if ((int)(intptr_t)user == DD.stage && it->id == DD.at)
		dd_die();
	return weft_emit(out, it);
}

static void *noop_main(void *arg)
{
	return arg;
}

static void stress_death(void)
{
	unsigned rounds = (unsigned)scaled(300, 20);
	uint64_t seed = 4242;
	unsigned kinds[K_KINDS] = {0};
	/* a first thread, so ThreadSanitizer's background thread (started
	 * with the first pthread_create) is counted before, not after */
	pthread_t first;
	CHECK_EQ(pthread_create(&first, NULL, noop_main, NULL), 0);
	CHECK_EQ(pthread_join(first, NULL), 0);
	int threads_before = count_threads();
	int64_t t0 = weft_now();
	CHECK_EQ(pipe(DD.never), 0);
	for (unsigned r = 0; r < rounds; r++) {
		int nst = 1 + (int)(rnd(&seed) % 3);
		DD.stage = (int)(rnd(&seed) % (uint64_t)(nst + 1));
		DD.at = rnd(&seed) % 3000;
		DD.how = K_EXIT + (int)(rnd(&seed) % K_KINDS);
		kinds[DD.how - K_EXIT]++;
		atomic_store(&DD.hits, 0);
		atomic_store(&DD.blocked, 0);
		_Atomic uint64_t next = 0;
		weft_pipeline_t *p = new_pipeline(NULL);
		size_t caps[] = {0, 1, 8, 64};
		weft_chan_t *ch;
		weft_stage_opts_t so = {.workers = 1 + (unsigned)(rnd(&seed) % 3),
					.out_elem_size = sizeof(struct item),
					.out_capacity = caps[rnd(&seed) % 4]};
		CHECK_EQ(weft_pipeline_source(p, &ch, dd_gen_fn, &next, &so), 0);
		for (int s = 1; s <= nst; s++) {
			weft_stage_opts_t o = {.workers = 1 + (unsigned)(rnd(&seed) % 4),
					       .out_capacity = caps[rnd(&seed) % 4],
					       .ordered = rnd(&seed) % 4 == 0};
			if (rnd(&seed) % 4 == 0)
				o.max_workers = o.workers + 2;
			weft_chan_t *nx;
			CHECK_EQ(weft_pipeline_stage(p, ch, &nx, dd_fwd_fn, (void *)(intptr_t)s, &o), 0);
			ch = nx;
		}
		/* the caller reads the last channel until the pipeline is done */
		uint64_t taken = 0;
		struct item it;
		for (;;) {
			if (DD.how == K_BLOCK && atomic_load(&DD.blocked) == 1) {
				atomic_store(&DD.blocked, 2);
				CHECK_EQ(pthread_cancel(DD.self), 0);
			}
			int rc = weft_chan_recv_until(ch, &it, weft_deadline(1000000));
			if (rc == -ETIMEDOUT)
				continue;
			if (rc)
				break; /* closed and drained: every stage has ended */
			CHECK_EQ(it.val, it.id * 3);
			taken++;
		}
		CHECK_EQ(weft_pipeline_wait(p), -EOWNERDEAD);
		CHECK_EQ(weft_ctx_cause(weft_pipeline_ctx(p)), -EOWNERDEAD);
		CHECK_EQ(atomic_load(&DD.hits), 1);
		/* every thread joined; a joined thread may linger in
		 * /proc/self/task for a moment (the kernel wakes the joiner
		 * before it reaps the thread): a leak stays, and the watchdog
		 * fails the test */
		while (!g_tasks && count_threads() > threads_before)
			weft_sleep(100000);
		long ns = weft_pipeline_stats(p, NULL, 0);
		weft_stage_stats_t st[8];
		CHECK_EQ(weft_pipeline_stats(p, st, 8), ns);
		for (long i = 0; i < ns; i++) {
			CHECK_EQ(st[i].workers, 0);
			CHECK_EQ(st[i].failures, i == DD.stage);
			CHECK_EQ(st[i].workers_died, i == DD.stage);
		}
		/* the last channel is drained: all it accepted was taken */
		CHECK_EQ(st[ns - 1].out, taken);
		weft_pipeline_destroy(p);
	}
	close(DD.never[0]);
	close(DD.never[1]);
	printf("stress_pipeline: %-8s death %u rounds (%u exit, %u exit without unwind info, "
	       "%u self-cancel, %u self-cancel without unwind info, %u canceled in read), "
	       "%6.1f ms\n",
	       g_tasks ? "tasks" : "threads", rounds, kinds[0], kinds[1], kinds[2], kinds[3],
	       kinds[4], (double)(weft_now() - t0) / 1e6);
}

int main(int argc, char **argv)
{
	if (argc > 1 && atof(argv[1]) > 0)
		g_size = atof(argv[1]);
	const char *only = argc > 2 ? argv[2] : NULL;
	test_watchdog((unsigned)(400 * (g_size < 1 ? 1 : g_size)));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!stress_seed_init("stress_pipeline"))
		return 2;
	for (g_tasks = 0; g_tasks < 2; g_tasks++) {
		if (!only || strstr(only, "exactly"))
			stress_exactly();
		if (!only || strstr(only, "ordered"))
			stress_ordered();
		if (!only || strstr(only, "cancel"))
			stress_cancel();
		if (!only || strstr(only, "death"))
			stress_death();
	}
	return stress_summary();
}
