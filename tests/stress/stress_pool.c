/* tests/stress/stress_pool.c: the worker pool under racing threads.
 *
 * Sub-tests:
 *   once      8 submitter threads (submit / try_submit / submit_until /
 *             submit_ctx mixed) through a small queue into 6 workers: every
 *             job increments its own slot; after wait every slot is 1
 *   shutdown  submitters race shutdown (DRAIN and CANCEL alternating):
 *             each job ran, was discarded, or its submit was refused,
 *             exactly one of the three, and the counts add up
 *   dynamic   a scripted load (min 1, max 8, short idle timeout): blocked
 *             jobs keep the queue above the threshold until the pool has
 *             grown to max; once idle it shrinks back to min; round after
 *             round, exactly once
 *   wait      submitters and waiters race: every job whose submit returned
 *             before a wait began has run when that wait returns
 *   death     one job in 8 ends its worker's thread (pthread_exit, or
 *             pthread_cancel of itself, from code with and without unwind
 *             info; and jobs blocked in read that another thread cancels),
 *             fixed and dynamic pools, round after round: every job runs
 *             exactly once, each dying one reaches on_error once
 *             (-EOWNERDEAD), the pool keeps its size and shuts down; every
 *             other round shutdown races the submitters and the deaths:
 *             each job ran, was discarded or was refused, exactly one
 *             (hundreds of deaths: the sanitizer builds check for leaks)
 *
 * Usage: stress_pool [size] [tests]. size (default 1, may be fractional)
 * multiplies every count; sanitizer builds divide them by 10.
 * WEFT_STRESS_SEED=<n> in the environment seeds every random stream from n
 * (tests/common/stress.h). The last line, "stress_pool: items moved N lost
 * 0", counts accepted jobs checked to have run exactly once (shutdown:
 * run or discarded, exactly one of the two; refused submits not counted).
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
#include <weft/pool.h>
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

static void nap(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Each job owns a slot: ran counts runs, gone counts discards. */
struct slot {
	atomic_uchar ran, gone;
};

static int slot_job(void *arg)
{
	struct slot *s = arg;
	atomic_fetch_add_explicit(&s->ran, 1, memory_order_relaxed);
	return 0;
}

static void slot_discard(weft_job_fn fn, void *arg, void *user)
{
	(void)user;
	CHECK(fn == slot_job);
	struct slot *s = arg;
	atomic_fetch_add_explicit(&s->gone, 1, memory_order_relaxed);
}

/* Submit with a random variant; -EAGAIN / -ETIMEDOUT are retried. */
static int submit_any(weft_pool_t *p, struct slot *s, uint64_t *seed)
{
	for (;;) {
		int rc;
		switch (rnd(seed) % 4) {
		case 0:
			rc = weft_pool_submit(p, slot_job, s);
			break;
		case 1:
			rc = weft_pool_try_submit(p, slot_job, s);
			break;
		case 2:
			rc = weft_pool_submit_until(p, slot_job, s,
						    weft_deadline((int64_t)(rnd(seed) % 50000)));
			break;
		default:
			rc = weft_pool_submit_ctx(p, slot_job, s, weft_ctx_background());
			break;
		}
		if (rc != -EAGAIN && rc != -ETIMEDOUT)
			return rc;
	}
}

/* ---- once ---- */

#define NSUB 8

struct sub {
	weft_pool_t *p;
	struct slot *slots;
	long n;
	unsigned id;
	long round; /* shutdown: its round (the seed's key) */
	long ok, refused;
	atomic_long published; /* jobs whose submit has returned 0 */
	atomic_int *stop;
	pthread_t t;
};

static void *once_submitter(void *arg)
{
	struct sub *s = arg;
	uint64_t seed = stress_seed(0x9E3779B97F4A7C15ULL * (s->id + 1));
	for (long i = 0; i < s->n; i++)
		CHECK_EQ(submit_any(s->p, &s->slots[i], &seed), 0);
	return NULL;
}

static void stress_once(void)
{
	long per = scaled(100000);
	weft_pool_t *p;
	weft_pool_opts_t o = {.workers = 6, .queue_capacity = 32, .tasks = g_tasks};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	struct slot *slots = calloc((size_t)(per * NSUB), sizeof *slots);
	CHECK(slots);
	struct sub s[NSUB];
	for (unsigned i = 0; i < NSUB; i++) {
		s[i] = (struct sub){.p = p, .slots = slots + per * i, .n = per, .id = i};
		CHECK_EQ(participant_create(&s[i].t, NULL, once_submitter, &s[i]), 0);
	}
	for (unsigned i = 0; i < NSUB; i++)
		participant_join_ret(s[i].t, NULL);
	CHECK_EQ(weft_pool_wait(p), 0);
	for (long i = 0; i < per * NSUB; i++)
		if (atomic_load(&slots[i].ran) != 1) {
			fprintf(stderr, "job %ld ran %d times\n", i, atomic_load(&slots[i].ran));
			abort();
		}
	weft_pool_stats_t st;
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK_EQ(st.submitted, per * NSUB);
	CHECK_EQ(st.completed, per * NSUB);
	stress_moved((uint64_t)(per * NSUB));
	weft_pool_destroy(p);
	free(slots);
	printf("once: %ld jobs from %d submitters, %llu blocked, %llu futex wakes\n", per * NSUB,
	       NSUB, (unsigned long long)st.submits_blocked, (unsigned long long)st.futex_wakes);
}

/* ---- shutdown racing submits ---- */

static void *sd_submitter(void *arg)
{
	struct sub *s = arg;
	uint64_t key = 0xC2B2AE3D27D4EB4FULL * (s->id + 3);
	uint64_t seed = stress_seed_or(key + (uint64_t)weft_now(),
				       key ^ stress_mix((uint64_t)s->round));
	for (long i = 0; i < s->n; i++) {
		int rc = submit_any(s->p, &s->slots[i], &seed);
		if (rc == 0) {
			s->ok++;
		} else {
			CHECK_EQ(rc, -EPIPE);
			s->refused++;
			/* refused: mark it so the check knows */
			atomic_store(&s->slots[i].gone, 100);
		}
	}
	return NULL;
}

static void stress_shutdown(void)
{
	long rounds = scaled(200), per = 2000;
	long ran = 0, discarded = 0, refused = 0, attempted = 0;
	for (long r = 0; r < rounds; r++) {
		weft_pool_t *p;
		weft_pool_opts_t o = {.tasks = g_tasks, .workers = 1 + (unsigned)(r % 5), .queue_capacity = 1 + (size_t)(r % 64),
				      .on_discard = slot_discard};
		CHECK_EQ(weft_pool_create(&p, &o), 0);
		struct slot *slots = calloc((size_t)(per * 4), sizeof *slots);
		CHECK(slots);
		struct sub s[4];
		for (unsigned i = 0; i < 4; i++) {
			s[i] = (struct sub){.p = p, .slots = slots + per * i, .n = per, .id = i,
					    .round = r};
			CHECK_EQ(participant_create(&s[i].t, NULL, sd_submitter, &s[i]), 0);
		}
		nap(r % 7 * 50);
		int how = r % 2 ? WEFT_POOL_CANCEL : WEFT_POOL_DRAIN;
		CHECK_EQ(weft_pool_shutdown(p, how), 0);
		for (unsigned i = 0; i < 4; i++)
			participant_join_ret(s[i].t, NULL);
		CHECK_EQ(weft_pool_shutdown(p, how), -EPIPE);
		weft_pool_stats_t st;
		CHECK_EQ(weft_pool_stats(p, &st), 0);
		long r_ran = 0, r_gone = 0, r_ref = 0, r_ok = 0;
		for (long i = 0; i < per * 4; i++) {
			int a = atomic_load(&slots[i].ran), g = atomic_load(&slots[i].gone);
			if (g == 100) {
				CHECK_EQ(a, 0); /* refused never runs */
				r_ref++;
			} else {
				if (a + g != 1) {
					fprintf(stderr, "round %ld job %ld: ran %d discarded %d\n", r, i, a, g);
					abort();
				}
				r_ran += a;
				r_gone += g;
			}
		}
		for (unsigned i = 0; i < 4; i++)
			r_ok += s[i].ok;
		CHECK_EQ(r_ran + r_gone, r_ok);
		CHECK_EQ(r_ran + r_gone + r_ref, per * 4);
		CHECK_EQ(st.submitted, r_ok);
		CHECK_EQ(st.completed, r_ran);
		CHECK_EQ(st.discarded, r_gone);
		if (how == WEFT_POOL_DRAIN)
			CHECK_EQ(r_gone, 0);
		ran += r_ran;
		discarded += r_gone;
		refused += r_ref;
		attempted += per * 4;
		weft_pool_destroy(p);
		free(slots);
	}
	CHECK_EQ(ran + discarded + refused, attempted);
	stress_moved((uint64_t)(ran + discarded));
	printf("shutdown: %ld rounds, %ld attempted = %ld ran + %ld discarded + %ld refused\n", rounds,
	       attempted, ran, discarded, refused);
}

/* ---- dynamic sizing ---- */

static weft_wg_t dyn_gate;
static atomic_int dyn_in;

static int dyn_blocker(void *arg)
{
	atomic_fetch_add(&dyn_in, 1);
	weft_wg_wait(&dyn_gate);
	return slot_job(arg);
}

static void stress_dynamic(void)
{
	long rounds = scaled(30);
	if (rounds < 2)
		rounds = 2;
	weft_pool_t *p;
	weft_pool_stats_t st;
	weft_pool_opts_t o = {.tasks = g_tasks, .min_workers = 1, .max_workers = 8, .queue_capacity = 16,
			      .idle_timeout_ns = 2000000};
	CHECK_EQ(weft_pool_create(&p, &o), 0);
	long per = 400;
	struct slot *slots = calloc((size_t)per, sizeof *slots);
	CHECK(slots);
	unsigned max_seen = 0;
	for (long r = 0; r < rounds; r++) {
		memset(slots, 0, sizeof *slots * (size_t)per);
		weft_wg_init(&dyn_gate);
		weft_wg_add(&dyn_gate, 1);
		atomic_store(&dyn_in, 0);
		/* 8 blockers hold every worker once the pool has grown; the
		 * rest keep the queue above capacity/4 meanwhile */
		long i = 0;
		for (; i < 8; i++)
			CHECK_EQ(weft_pool_submit(p, dyn_blocker, &slots[i]), 0);
		while (atomic_load(&dyn_in) < 8) {
			if (i < per && weft_pool_try_submit(p, slot_job, &slots[i]) == 0)
				i++;
			else
				nap(50);
		}
		CHECK_EQ(weft_pool_stats(p, &st), 0);
		CHECK_EQ(st.workers, 8);
		max_seen = st.workers;
		weft_wg_done(&dyn_gate);
		for (; i < per; i++)
			CHECK_EQ(weft_pool_submit(p, slot_job, &slots[i]), 0);
		CHECK_EQ(weft_pool_wait(p), 0);
		for (long k = 0; k < per; k++)
			CHECK_EQ(atomic_load(&slots[k].ran), 1);
		stress_moved((uint64_t)per);
		/* idle: back to min */
		do {
			nap(1000);
			CHECK_EQ(weft_pool_stats(p, &st), 0);
		} while (st.workers > 1);
		CHECK_EQ(st.workers, 1);
	}
	CHECK_EQ(weft_pool_stats(p, &st), 0);
	CHECK(st.workers_retired >= (uint64_t)(7 * rounds));
	CHECK_EQ(st.workers_started - st.workers_retired, 1);
	weft_pool_destroy(p);
	free(slots);
	printf("dynamic: %ld rounds grew 1 -> %u -> 1, %llu started, %llu retired\n", rounds, max_seen,
	       (unsigned long long)st.workers_started, (unsigned long long)st.workers_retired);
}

/* ---- wait racing submit ---- */

#define WSUB 4
#define WWAIT 3

static struct {
	weft_pool_t *p;
	struct slot *slots; /* WSUB x per */
	long per;
	struct sub s[WSUB];
	atomic_int stop;
	atomic_long waits;
} W;

static int slow_job(void *arg)
{
	struct slot *s = arg;
	/* a little work, so waits overlap running jobs */
	volatile unsigned x = 0;
	for (unsigned i = 0; i < 200; i++)
		x += i;
	(void)x; /* clang: set but not used */
	atomic_fetch_add_explicit(&s->ran, 1, memory_order_release);
	return 0;
}

static void *w_submitter(void *arg)
{
	struct sub *s = arg;
	for (long i = 0; i < s->n; i++) {
		CHECK_EQ(weft_pool_submit(s->p, slow_job, &s->slots[i]), 0);
		atomic_store_explicit(&s->published, i + 1, memory_order_release);
	}
	return NULL;
}

static void *w_waiter(void *arg)
{
	(void)arg;
	while (!atomic_load(&W.stop)) {
		long snap[WSUB];
		for (int i = 0; i < WSUB; i++)
			snap[i] = atomic_load_explicit(&W.s[i].published, memory_order_acquire);
		CHECK_EQ(weft_pool_wait(W.p), 0);
		for (int i = 0; i < WSUB; i++)
			for (long k = 0; k < snap[i]; k++)
				if (atomic_load_explicit(&W.s[i].slots[k].ran, memory_order_acquire) != 1) {
					fprintf(stderr, "wait returned before job %d/%ld ran\n", i, k);
					abort();
				}
		atomic_fetch_add(&W.waits, 1);
	}
	return NULL;
}

static void stress_wait(void)
{
	W.per = scaled(20000);
	weft_pool_opts_t o = {.workers = 3, .queue_capacity = 64, .tasks = g_tasks};
	CHECK_EQ(weft_pool_create(&W.p, &o), 0);
	W.slots = calloc((size_t)(W.per * WSUB), sizeof *W.slots);
	CHECK(W.slots);
	atomic_store(&W.stop, 0);
	atomic_store(&W.waits, 0);
	pthread_t wt[WWAIT];
	for (unsigned i = 0; i < WSUB; i++) {
		W.s[i] = (struct sub){.p = W.p, .slots = W.slots + W.per * i, .n = W.per, .id = i};
		atomic_init(&W.s[i].published, 0);
	}
	for (int i = 0; i < WWAIT; i++)
		CHECK_EQ(participant_create(&wt[i], NULL, w_waiter, NULL), 0);
	for (unsigned i = 0; i < WSUB; i++)
		CHECK_EQ(participant_create(&W.s[i].t, NULL, w_submitter, &W.s[i]), 0);
	for (unsigned i = 0; i < WSUB; i++)
		participant_join_ret(W.s[i].t, NULL);
	atomic_store(&W.stop, 1);
	for (int i = 0; i < WWAIT; i++)
		participant_join_ret(wt[i], NULL);
	CHECK_EQ(weft_pool_wait(W.p), 0);
	for (long k = 0; k < W.per * WSUB; k++)
		CHECK_EQ(atomic_load(&W.slots[k].ran), 1);
	stress_moved((uint64_t)(W.per * WSUB));
	weft_pool_destroy(W.p);
	free(W.slots);
	printf("wait: %ld jobs, %ld waits raced the submits\n", W.per * WSUB, atomic_load(&W.waits));
}

/* ---- jobs that end their thread ---- */

enum { K_OK, K_EXIT = DIE_EXIT, K_EXIT_NOEH = DIE_EXIT_NOEH, K_SELF_CANCEL = DIE_SELF_CANCEL,
       K_CANCEL_NOEH = DIE_CANCEL_NOEH, K_BLOCK = DIE_BLOCK };

struct dslot {
	int kind;
	atomic_uchar ran, errs, gone, refused;
	atomic_int blocked, canceled;
	pthread_t self;
};

static int never_fds[2]; /* nobody writes: read blocks until canceled */

static int death_job(void *arg)
{
	struct dslot *d = arg;
	atomic_fetch_add(&d->ran, 1);
	die_as(d->kind, never_fds[0], &d->self, &d->blocked);
	return 0;
}

static void death_err(weft_job_fn fn, void *arg, int rc, void *user)
{
	(void)user;
	CHECK(fn == death_job);
	CHECK_EQ(rc, -EOWNERDEAD);
	atomic_fetch_add(&((struct dslot *)arg)->errs, 1);
}

static void death_discard(weft_job_fn fn, void *arg, void *user)
{
	(void)user;
	CHECK(fn == death_job);
	atomic_fetch_add(&((struct dslot *)arg)->gone, 1);
}

static struct {
	struct dslot *d;
	long n;
	atomic_int stop;
} DC;

/* cancels each blocked job once, until told to stop */
static void *death_canceller(void *arg)
{
	(void)arg;
	while (!atomic_load(&DC.stop)) {
		for (long i = 0; i < DC.n; i++) {
			struct dslot *d = &DC.d[i];
			if (d->kind == K_BLOCK && atomic_load(&d->blocked) &&
			    !atomic_exchange(&d->canceled, 1))
				CHECK_EQ(pthread_cancel(d->self), 0);
		}
		nap(50);
	}
	return NULL;
}

struct dsub {
	weft_pool_t *p;
	struct dslot *d;
	long n;
	pthread_t t;
};

static void *death_submitter(void *arg)
{
	struct dsub *s = arg;
	for (long i = 0; i < s->n; i++) {
		int rc = weft_pool_submit(s->p, death_job, &s->d[i]);
		if (rc) {
			CHECK_EQ(rc, -EPIPE);
			atomic_store(&s->d[i].refused, 1);
		}
	}
	return NULL;
}

static void stress_death(void)
{
	long rounds = scaled(40), per = 400;
	if (rounds < 4)
		rounds = 4;
	long deaths = 0, refused_all = 0, discarded_all = 0;
	CHECK_EQ(pipe(never_fds), 0);
	struct dslot *d = calloc((size_t)(2 * per), sizeof *d);
	CHECK(d);
	for (long r = 0; r < rounds; r++) {
		static const int kinds[8] = {K_OK, K_EXIT, K_OK, K_EXIT_NOEH,
					     K_OK, K_SELF_CANCEL, K_OK, K_CANCEL_NOEH};
		long n = 2 * per, ndie = 0;
		for (long i = 0; i < n; i++) {
			d[i] = (struct dslot){.kind = i % 64 == 9 ? K_BLOCK : kinds[(i + r) % 8]};
			ndie += d[i].kind != K_OK;
		}
		bool race = r % 2 == 1, dynamic = r % 3 == 2;
		unsigned w = 1 + (unsigned)(r % 4);
		weft_pool_opts_t o = {.tasks = g_tasks, .queue_capacity = 1 + (size_t)(r % 16),
				      .on_error = death_err, .on_discard = death_discard};
		if (dynamic) {
			o.min_workers = 1;
			o.max_workers = 4;
			o.idle_timeout_ns = 2000000;
		} else {
			o.workers = w;
		}
		weft_pool_t *p;
		CHECK_EQ(weft_pool_create(&p, &o), 0);
		DC.d = d;
		DC.n = n;
		atomic_store(&DC.stop, 0);
		pthread_t canceller;
		CHECK_EQ(pthread_create(&canceller, NULL, death_canceller, NULL), 0);
		struct dsub s[2];
		for (int i = 0; i < 2; i++) {
			s[i] = (struct dsub){.p = p, .d = d + per * i, .n = per};
			CHECK_EQ(participant_create(&s[i].t, NULL, death_submitter, &s[i]), 0);
		}
		int how = r % 4 == 1 ? WEFT_POOL_CANCEL : WEFT_POOL_DRAIN;
		if (race) {
			nap(r % 5 * 300);
			CHECK_EQ(weft_pool_shutdown(p, how), 0);
		}
		for (int i = 0; i < 2; i++)
			participant_join_ret(s[i].t, NULL);
		if (!race)
			CHECK_EQ(weft_pool_wait(p), 0);
		weft_pool_stats_t st;
		CHECK_EQ(weft_pool_stats(p, &st), 0);
		long ran = 0, gone = 0, refused = 0, died = 0;
		for (long i = 0; i < n; i++) {
			int a = atomic_load(&d[i].ran), e = atomic_load(&d[i].errs);
			int g = atomic_load(&d[i].gone), x = atomic_load(&d[i].refused);
			if (a + g + x != 1 || e != (a && d[i].kind != K_OK)) {
				fprintf(stderr, "round %ld job %ld (kind %d): ran %d, errors %d, discarded %d, refused %d\n",
					r, i, d[i].kind, a, e, g, x);
				abort();
			}
			ran += a;
			gone += g;
			refused += x;
			died += e;
		}
		CHECK_EQ(st.submitted, ran + gone);
		CHECK_EQ(st.completed, ran);
		CHECK_EQ(st.discarded, gone);
		CHECK_EQ(st.failed, died);
		CHECK_EQ(st.workers_died, died);
		if (!race) {
			CHECK_EQ(died, ndie);
			CHECK_EQ(gone + refused, 0);
			if (dynamic)
				CHECK(st.workers >= 1 && st.workers <= 4);
			else
				CHECK_EQ(st.workers, w); /* kept its size */
			CHECK_EQ(weft_pool_shutdown(p, how), 0);
			CHECK_EQ(weft_pool_stats(p, &st), 0);
			CHECK_EQ(st.completed, n);
		}
		if (how == WEFT_POOL_DRAIN)
			CHECK_EQ(gone, 0);
		CHECK_EQ(st.workers, 0); /* shut down: every worker joined */
		atomic_store(&DC.stop, 1);
		CHECK_EQ(pthread_join(canceller, NULL), 0);
		weft_pool_destroy(p);
		deaths += died;
		refused_all += refused;
		discarded_all += gone;
	}
	free(d);
	close(never_fds[0]);
	close(never_fds[1]);
	CHECK(deaths > 0);
	printf("death: %ld rounds, %ld jobs ended their worker's thread, %ld discarded, %ld refused\n",
	       rounds, deaths, discarded_all, refused_all);
}

int main(int argc, char **argv)
{
	if (argc > 1 && atof(argv[1]) > 0)
		g_size = atof(argv[1]);
	const char *only = argc > 2 ? argv[2] : NULL;
	test_watchdog((unsigned)(300 * (g_size < 1 ? 1 : g_size) * (STRESS_SANITIZED ? 3 : 1)));
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!stress_seed_init("stress_pool"))
		return 2;
	printf("stress_pool: size %g%s\n", g_size, STRESS_SANITIZED ? " (sanitizer build: counts / 10)" : "");
	/* every participant a thread, then every one a task */
	for (int tasks = 0; tasks < 2; tasks++) {
		participants_tasks(tasks);
		printf("stress_pool: participants and workers are %s\n", tasks ? "tasks" : "threads");
		if (!only || strstr(only, "once"))
			stress_once();
		if (!only || strstr(only, "shutdown"))
			stress_shutdown();
		if (!only || strstr(only, "dynamic"))
			stress_dynamic();
		if (!only || strstr(only, "wait"))
			stress_wait();
		if (!only || strstr(only, "death"))
			stress_death();
	}
	return stress_summary();
}
