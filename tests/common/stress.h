/* tests/common/stress.h: the harness shared by the stress tests
 * (tests/stress/stress_*.c): seeds and the summary line (every suite),
 * then sizing and watchdog, time and randomness, threads, per-line
 * reports, the item encoding and the ledger that checks exactly-once and
 * FIFO delivery, an echo partner, and argument handling.
 * Everything is static inline: each stress program includes it once.
 *
 * A suite with a harness of its own (its own sizing, rnd, ...) defines
 * STRESS_OWN_HARNESS before including this file and gets only the first
 * part: seeds and the summary line. */
#ifndef WEFT_TEST_STRESS_SOAK_H
#define WEFT_TEST_STRESS_SOAK_H

#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- seeds and the summary line (every suite) --------------------------
 *
 * Seeds: without WEFT_STRESS_SEED in the environment every suite seeds its
 * random streams as it always has (fixed values, some mixed with the clock,
 * as seed_for does). With WEFT_STRESS_SEED=<n> (decimal, or hex with 0x)
 * every stream's seed is derived from n and the stream's own key alone
 * (stress_seed, stress_seed_or), nothing from the clock, so a failing run
 * can be replayed with the same n and the same arguments, as far as the
 * thread interleaving allows. scripts/soak.sh gives every run a fresh n.
 * The seed is printed at the start and again if the run aborts.
 *
 * Summary: once a sub-test's checks have passed, it counts what they
 * verified with stress_moved(n): items delivered exactly once, or the
 * suite's own unit (calls, jobs, tasks: see each file's head). The last
 * line, printed by stress_summary(), is machine-readable:
 *   <prog>: items moved <n> lost <m>
 * Every check is fatal (abort), so a run that reaches this line lost
 * nothing; m counts what a check made non-fatal would report through
 * stress_lost(). A run that aborts prints no summary: scripts/soak.sh
 * counts it as failed, its lost items unknown. */

static const char *g_stress_prog = "stress";
static uint64_t g_stress_seed; /* WEFT_STRESS_SEED, if g_stress_seeded */
static bool g_stress_seeded;
static atomic_ullong g_stress_moved, g_stress_lost;
static char g_stress_abort_msg[256];

/* SIGABRT (a failed check): say which seed, then die of the signal. */
static void stress_on_abort_(int sig)
{
	if (write(2, g_stress_abort_msg, strlen(g_stress_abort_msg)) < 0) {
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

/* Read WEFT_STRESS_SEED and print it; prog starts the line. Returns false
 * (after printing why) on a malformed value. */
static inline bool stress_seed_init(const char *prog)
{
	const char *env = getenv("WEFT_STRESS_SEED");

	g_stress_prog = prog;
	if (env && *env) {
		char *end;

		g_stress_seed = strtoull(env, &end, 0);
		if (*end) {
			fprintf(stderr, "%s: WEFT_STRESS_SEED=%s is not a number\n", prog, env);
			return false;
		}
		g_stress_seeded = true;
		printf("%s: seed %" PRIu64 " (WEFT_STRESS_SEED)\n", prog, g_stress_seed);
		fflush(stdout);
		snprintf(g_stress_abort_msg, sizeof g_stress_abort_msg,
			 "%s: aborted; replay: WEFT_STRESS_SEED=%" PRIu64 " %s [same arguments]\n",
			 prog, g_stress_seed, prog);
	} else {
		snprintf(g_stress_abort_msg, sizeof g_stress_abort_msg,
			 "%s: aborted; seeds: the suite's own (WEFT_STRESS_SEED not set, some "
			 "from the clock)\n",
			 prog);
	}
	signal(SIGABRT, stress_on_abort_);
	return true;
}

/* splitmix64's finalizer: every bit of x moves every bit of the result. */
static inline uint64_t stress_mix(uint64_t x)
{
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

/* The seed of one random stream: dflt (the suite's own, as before) without
 * WEFT_STRESS_SEED; with it, one derived from the base seed and key alone.
 * Never 0 when derived (xorshift generators stay at 0). */
static inline uint64_t stress_seed_or(uint64_t dflt, uint64_t key)
{
	uint64_t s;

	if (!g_stress_seeded)
		return dflt;
	s = stress_mix(g_stress_seed ^ stress_mix(key + 0x9E3779B97F4A7C15ULL));
	return s ? s : 0x9E3779B97F4A7C15ULL;
}

/* A stream whose default seed is fixed: key itself. */
static inline uint64_t stress_seed(uint64_t key)
{
	return stress_seed_or(key, key);
}

/* n more items verified (delivered exactly once, or the suite's unit). */
static inline void stress_moved(uint64_t n)
{
	atomic_fetch_add_explicit(&g_stress_moved, n, memory_order_relaxed);
}

/* n items found missing or duplicated by a check that did not abort. */
static inline void stress_lost(uint64_t n)
{
	atomic_fetch_add_explicit(&g_stress_lost, n, memory_order_relaxed);
}

/* The last line; returns the exit status (1 if anything was lost). */
static inline int stress_summary(void)
{
	unsigned long long moved = atomic_load(&g_stress_moved);
	unsigned long long lost = atomic_load(&g_stress_lost);

	printf("%s: items moved %llu lost %llu\n", g_stress_prog, moved, lost);
	fflush(stdout);
	return lost ? 1 : 0;
}

#endif /* WEFT_TEST_STRESS_SOAK_H */

#ifndef STRESS_OWN_HARNESS
#ifndef WEFT_TEST_STRESS_H
#define WEFT_TEST_STRESS_H

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <weft/task.h>

#include "check.h"
#include "participant.h"
#include "strategy.h"

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

/* ---- harness ------------------------------------------------------------ */

static double g_size = 1.0;
static char g_ctx[160]; /* what is running, printed on failure */
static const char *g_prog; /* "stress_chan", ...: starts every output line */
static int g_what_width;   /* width of the sub-test column in reports */
static const char *g_strategy_name; /* argv[2], if given: only this strategy */
static const char *g_only_tests;    /* argv[3], if given: only sub-tests it names */
static int64_t g_t0;

static inline void fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "FAIL [%s]: ", g_ctx);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	abort();
}

/* Scale an item count by the size and the sanitizer factor; at least lo. */
static inline uint64_t scaled(double base, uint64_t lo)
{
	double v = base * g_size;

	if (STRESS_SANITIZED)
		v /= 10;
	return v < (double)lo ? lo : (uint64_t)v;
}

/* Arm the watchdog for one sub-test: generous, grows with the size. */
static inline void arm(unsigned base_seconds)
{
	double s = base_seconds * (g_size < 1 ? 1 : g_size);

	if (STRESS_SANITIZED)
		s *= 3;
	test_watchdog(s > 3000 ? 3000 : (unsigned)s + 1);
}

static inline int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* In a task: parks the task (weft_sleep), not its carrier. */
static inline void sleep_ns(int64_t ns)
{
	weft_sleep(ns);
}

static inline uint64_t rnd(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* The seed of participant a's stream b: mixed with the clock, as it always
 * was; with WEFT_STRESS_SEED, derived from the base seed, a, b and the cell
 * now running (g_ctx, set before the participants start), so that cells
 * draw different streams and a replay draws the same ones. */
static inline uint64_t seed_for(unsigned a, unsigned b)
{
	uint64_t key = 0x9E3779B97F4A7C15ULL * (a + 1) ^ (0xC2B2AE3D27D4EB4FULL * (b + 7));
	uint64_t cell = 0xCBF29CE484222325ULL; /* FNV-1a of g_ctx */

	if (g_stress_seeded)
		for (const char *c = g_ctx; *c; c++)
			cell = (cell ^ (unsigned char)*c) * 0x100000001B3ULL;
	return stress_seed_or(key ^ (uint64_t)now_ns(), key ^ stress_mix(cell));
}

/* A short deadline: already passed, or up to ~100 us away. */
static inline int64_t short_deadline(uint64_t *r)
{
	static const int64_t d[] = { -1, 0, 1000, 5000, 20000, 100000 };

	return now_ns() + d[rnd(r) % (sizeof d / sizeof d[0])];
}

/* Put order[0 .. n-1] = 0 .. n-1 in a random order. */
static inline void shuffle(unsigned *order, unsigned n, uint64_t *r)
{
	for (unsigned j = 0; j < n; j++)
		order[j] = j;
	for (unsigned j = n; j > 1; j--) {
		unsigned x = (unsigned)(rnd(r) % j), t = order[j - 1];

		order[j - 1] = order[x];
		order[x] = t;
	}
}

/* Start a participant (a thread, or a task: participant.h); stack 0 is the
 * default stack size. */
static inline void spawn_stack(pthread_t *t, size_t stack, void *(*fn)(void *),
			       void *arg)
{
	participant_start(t, stack, fn, arg);
}

static inline void spawn(pthread_t *t, void *(*fn)(void *), void *arg)
{
	spawn_stack(t, 0, fn, arg);
}

static inline void join(pthread_t t)
{
	participant_join(t);
}

static inline void *xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);

	CHECK(p != NULL);
	return p;
}

static inline void report(const struct chan_strategy *s, const char *what, int64_t t0,
			  const char *fmt, ...)
{
	va_list ap;

	printf("%s [%s] %-*s ", g_prog, s->name, g_what_width, what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("  %.0f ms\n", (now_ns() - t0) / 1e6);
	fflush(stdout);
}

static inline bool has(const struct chan_strategy *s, unsigned caps)
{
	return (s->caps & caps) == caps;
}

/* ---- items and the ledger ----------------------------------------------- */

/* Elements are 8 bytes: a magic tag, the producer id and a sequence number. */
#define ITEM_MAGIC 0xA5C3ULL

static inline uint64_t item_make(unsigned pid, uint64_t seq)
{
	return ITEM_MAGIC << 48 | (uint64_t)pid << 32 | seq;
}

static inline unsigned item_pid(uint64_t item)
{
	return (unsigned)(item >> 32 & 0xffff);
}

/* Which (producer, seq) pairs were received, and how often. */
struct ledger {
	unsigned nprod;
	uint64_t per; /* sequence numbers per producer: [0, per) */
	_Atomic unsigned char *seen;
	atomic_ullong received;
};

static inline void ledger_init(struct ledger *l, unsigned nprod, uint64_t per)
{
	l->nprod = nprod;
	l->per = per;
	l->seen = xcalloc((size_t)nprod * per, 1);
	atomic_init(&l->received, 0);
}

/* Once the checks on l have passed: count what it received as moved
 * (each item exactly once, or a check would have aborted), and free it. */
static inline void ledger_done(struct ledger *l)
{
	stress_moved(atomic_load(&l->received));
	free((void *)l->seen);
}

/* A consumer's view: the last sequence seen per producer (and lane). */
static inline int64_t *last_new(size_t n)
{
	int64_t *last = xcalloc(n, sizeof *last);

	for (size_t i = 0; i < n; i++)
		last[i] = -1;
	return last;
}

/* Record one received item; check it is well formed, not a duplicate, and
 * (when last is given) later than the previous one from its producer on
 * the same lane (channel): last[pid * stride + lane]. */
static inline void ledger_take_lane(struct ledger *l, uint64_t item, int64_t *last,
				    unsigned stride, unsigned lane)
{
	unsigned pid = item_pid(item);
	uint64_t seq = item & 0xffffffffULL;

	if (item >> 48 != ITEM_MAGIC || pid >= l->nprod || seq >= l->per)
		fail("invented item %#" PRIx64 " (pid %u seq %" PRIu64 ")", item, pid, seq);
	if (last) {
		int64_t *lp = &last[(size_t)pid * stride + lane];

		if ((int64_t)seq <= *lp)
			fail("FIFO broken: producer %u channel %u seq %" PRIu64 " after %" PRId64,
			     pid, lane, seq, *lp);
		*lp = (int64_t)seq;
	}
	if (atomic_exchange_explicit(&l->seen[(size_t)pid * l->per + seq], 1,
				     memory_order_relaxed) != 0)
		fail("duplicate: producer %u seq %" PRIu64 " received twice", pid, seq);
	atomic_fetch_add_explicit(&l->received, 1, memory_order_relaxed);
}

/* The same with one lane: last (if given) is indexed by producer. */
static inline void ledger_take(struct ledger *l, uint64_t item, int64_t *last)
{
	ledger_take_lane(l, item, last, 1, 0);
}

static inline bool ledger_has(const struct ledger *l, unsigned pid, uint64_t seq)
{
	return atomic_load_explicit(&l->seen[(size_t)pid * l->per + seq],
				    memory_order_relaxed) != 0;
}

/* Producer pid's accepted sends were exactly seq 0 .. n-1. */
static inline void ledger_expect_prefix(const struct ledger *l, unsigned pid, uint64_t n)
{
	for (uint64_t q = 0; q < l->per; q++) {
		bool want = q < n;

		if (ledger_has(l, pid, q) != want)
			fail("producer %u seq %" PRIu64 ": %s (accepted sends: %" PRIu64 ")",
			     pid, q, want ? "accepted but never received" : "refused but received",
			     n);
	}
}

/* ---- deadline races ------------------------------------------------------ */

/* Senders call with short deadlines and note which items went through;
 * receivers take items until told to stop. struct dl is each test's own. */
struct dl;

struct dl_worker {
	struct dl *d;
	unsigned id;
	unsigned char *ok; /* senders: ok[seq] = the send went through */
	uint64_t n_ok, n_timeout;
	pthread_t t;
};

struct dl_counts {
	uint64_t ok, tmo, rtmo; /* sends accepted, sends and receives timed out */
};

/* Run nr receivers and ns senders (per items each) on d; once the senders
 * are done, set *stop and join the receivers. Returns the senders, for
 * dl_check and dl_free. */
static inline struct dl_worker *dl_run(struct dl *d, unsigned ns, unsigned nr, uint64_t per,
				       atomic_int *stop, void *(*sender)(void *),
				       void *(*receiver)(void *), struct dl_counts *n)
{
	struct dl_worker *sw = xcalloc(ns, sizeof *sw), *rw = xcalloc(nr, sizeof *rw);

	*n = (struct dl_counts){ 0 };
	for (unsigned i = 0; i < nr; i++) {
		rw[i] = (struct dl_worker){ .d = d, .id = i };
		spawn(&rw[i].t, receiver, &rw[i]);
	}
	for (unsigned i = 0; i < ns; i++) {
		sw[i] = (struct dl_worker){ .d = d, .id = i, .ok = xcalloc(per, 1) };
		spawn(&sw[i].t, sender, &sw[i]);
	}
	for (unsigned i = 0; i < ns; i++) {
		join(sw[i].t);
		n->ok += sw[i].n_ok;
		n->tmo += sw[i].n_timeout;
	}
	atomic_store(stop, 1);
	for (unsigned i = 0; i < nr; i++) {
		join(rw[i].t);
		n->rtmo += rw[i].n_timeout;
	}
	free(rw);
	return sw;
}

/* Once everything is received: the ledger holds exactly the items whose
 * send went through; went_through / timed_out describe the two outcomes. */
static inline void dl_check(const struct ledger *led, const struct dl_worker *sw,
			    unsigned ns, uint64_t ok, const char *went_through,
			    const char *timed_out)
{
	CHECK_EQ(atomic_load(&led->received), ok);
	for (unsigned i = 0; i < ns; i++)
		for (uint64_t q = 0; q < led->per; q++)
			if (ledger_has(led, i, q) != (sw[i].ok[q] != 0))
				fail("sender %u seq %" PRIu64 ": %s but %s", i, q,
				     sw[i].ok[q] ? went_through : timed_out,
				     sw[i].ok[q] ? "never received" : "received");
}

static inline void dl_free(struct dl_worker *sw, unsigned ns)
{
	for (unsigned i = 0; i < ns; i++)
		free(sw[i].ok);
	free(sw);
}

/* ---- echo: a partner for checking that blocking calls still meet -------- */

struct echo {
	const struct chan_strategy *s;
	void *ch, *to_main, *to_echo;
	unsigned n;
	pthread_t t;
};

/* n times: recv a on ch, send a + 1 to main; recv b from main, send b + 1
 * on ch; wait for main's ack. Strictly alternating with the main thread,
 * so nobody can take back its own value even on a buffered channel. */
static inline void *echo_thread(void *arg)
{
	struct echo *e = arg;

	for (unsigned i = 0; i < e->n; i++) {
		uint64_t v;

		CHECK_EQ(e->s->recv(e->ch, &v), 0);
		v++;
		CHECK_EQ(e->s->send(e->to_main, &v), 0);
		CHECK_EQ(e->s->recv(e->to_echo, &v), 0);
		v++;
		CHECK_EQ(e->s->send(e->ch, &v), 0);
		CHECK_EQ(e->s->recv(e->to_echo, &v), 0);
	}
	return NULL;
}

static inline void echo_start(struct echo *e)
{
	size_t cap = has(e->s, CHAN_CAP_UNBUFFERED) ? 0 : 1;

	CHECK_EQ(e->s->create(&e->to_main, sizeof(uint64_t), cap), 0);
	CHECK_EQ(e->s->create(&e->to_echo, sizeof(uint64_t), cap), 0);
	spawn(&e->t, echo_thread, e);
}

static inline void echo_stop(struct echo *e)
{
	join(e->t);
	e->s->destroy(e->to_main);
	e->s->destroy(e->to_echo);
}

/* ---- main --------------------------------------------------------------- */

/* Parse [size] [strategy] [tests], read WEFT_STRESS_SEED and print the
 * banner; prog starts every output line, what_width is the width of the
 * sub-test column. Returns false (after printing the usage) on a bad size
 * or seed. */
static inline bool stress_args(int argc, char **argv, const char *prog, int what_width)
{
	g_t0 = now_ns();
	g_prog = prog;
	g_what_width = what_width;
	if (argc > 1) {
		g_size = strtod(argv[1], NULL);
		if (!(g_size > 0)) {
			fprintf(stderr, "usage: %s [size > 0] [strategy]\n", argv[0]);
			return false;
		}
	}
	if (argc > 2 && argv[2][0] && strcmp(argv[2], "all") != 0)
		g_strategy_name = argv[2];
	if (argc > 3)
		g_only_tests = argv[3];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!stress_seed_init(prog))
		return false;
	printf("%s: size %g%s\n", prog, g_size,
	       STRESS_SANITIZED ? " (sanitizer build: counts / 10)" : "");
	return true;
}

/* Is strategy s selected by argv[2]? */
static inline bool want_strategy(const struct chan_strategy *s)
{
	if (s->caps & CHAN_CAP_BENCH_ONLY) /* rounded capacity, no len (strategy.h) */
		return false;
	participants_for(s);
	return !g_strategy_name || strcmp(g_strategy_name, s->name) == 0;
}

/* Is sub-test test selected by argv[3]? */
static inline bool want(const char *test)
{
	return !g_only_tests || strstr(g_only_tests, test) != NULL;
}

/* The last lines: n strategies ran (none: print none_msg and fail), then
 * the summary (stress_summary). Returns the exit status. */
static inline int stress_done(unsigned n, const char *none_msg)
{
	if (n == 0) {
		fprintf(stderr, "%s\n", none_msg);
		return 1;
	}
	printf("%s: all passed on %u strategies in %.1f s\n", g_prog, n, (now_ns() - g_t0) / 1e9);
	return stress_summary();
}

#endif /* WEFT_TEST_STRESS_H */
#endif /* STRESS_OWN_HARNESS */
