/* tests/unit/test_breaker.c: the circuit breaker (weft/breaker.h).
 *
 * (a) conformance: sony/gobreaker v2's own test sequences (defaults,
 *     custom settings, rolling window, generations, two-step,
 *     is_successful / is_excluded, counting in parallel), written again in
 *     C against a fake clock, run on weft's breaker and on the mutex
 *     baseline (bench/baseline/breaker_mutex.c) through one table;
 * (b) weft only: callbacks that call back into the breaker, the fast
 *     word's overflow, the rates over count and time windows, slow calls,
 *     half-open success rate, backoff with jitter and ceiling, manual
 *     control, stats, bad input.
 * No durations are asserted: time is the fake clock's.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <weft/breaker.h>
#include <weft/sync.h>
#include <weft/task.h>

#include "baseline/breaker_mutex.h"
#include "check.h"

#define MS 1000000LL
#define SEC 1000000000LL

enum { CL = WEFT_BREAKER_CLOSED, HO = WEFT_BREAKER_HALF_OPEN, OP = WEFT_BREAKER_OPEN };

/* ---- the implementation table ---- */

struct impl {
	const char *name;
	int (*create)(void **out, const weft_breaker_settings_t *s);
	void (*destroy)(void *b);
	int (*execute)(void *b, int (*fn)(void *), void *arg, int *rc);
	int (*allow)(void *b, weft_breaker_ticket_t *t);
	int (*done)(void *b, const weft_breaker_ticket_t *t, int rc);
	int (*state)(void *b);
	int (*counts)(void *b, weft_breaker_counts_t *out);
	const char *(*bname)(const void *b);
};

#define WRAP(pfx, T)                                                                     \
	static int pfx##_create_(void **o, const weft_breaker_settings_t *s)             \
	{                                                                                \
		return pfx##_create((T **)o, s);                                         \
	}                                                                                \
	static void pfx##_destroy_(void *b) { pfx##_destroy(b); }                        \
	static int pfx##_execute_(void *b, int (*f)(void *), void *a, int *rc)           \
	{                                                                                \
		return pfx##_execute(b, f, a, rc);                                       \
	}                                                                                \
	static int pfx##_allow_(void *b, weft_breaker_ticket_t *t) { return pfx##_allow(b, t); } \
	static int pfx##_done_(void *b, const weft_breaker_ticket_t *t, int rc)          \
	{                                                                                \
		return pfx##_done(b, t, rc);                                             \
	}                                                                                \
	static int pfx##_state_(void *b) { return pfx##_state(b); }                      \
	static int pfx##_counts_(void *b, weft_breaker_counts_t *c) { return pfx##_counts(b, c); } \
	static const char *pfx##_name_(const void *b) { return pfx##_name(b); }          \
	static const struct impl impl_##pfx = { #pfx,          pfx##_create_, pfx##_destroy_, \
						pfx##_execute_, pfx##_allow_,  pfx##_done_,    \
						pfx##_state_,   pfx##_counts_, pfx##_name_ };

WRAP(weft_breaker, weft_breaker_t)
WRAP(mbreaker, mbreaker_t)

/* ---- fixture: the fake clock and what the callbacks saw ---- */

#define ERR_FAILED (-5)    /* errFailed */
#define ERR_EXCLUDED (-125) /* errExcluded */

struct fx {
	int64_t now;
	int nchanges;
	struct {
		char name[16];
		int from, to;
	} ch[64];
	int64_t fn_takes; /* the fake time a call takes */
	void *b;          /* for callbacks that call back */
	const struct impl *im;
	int trips_called;
};

static int64_t fake_clock(void *user)
{
	return ((struct fx *)user)->now;
}

static void record_change(const char *name, int from, int to, void *user)
{
	struct fx *f = user;
	CHECK(f->nchanges < 64);
	snprintf(f->ch[f->nchanges].name, sizeof f->ch[0].name, "%s", name);
	f->ch[f->nchanges].from = from;
	f->ch[f->nchanges].to = to;
	f->nchanges++;
}

static bool excluded_err(int rc, void *user)
{
	(void)user;
	return rc == ERR_EXCLUDED;
}

/* the last change was name: from -> to */
static void check_change(struct fx *f, const char *name, int from, int to)
{
	CHECK(f->nchanges > 0);
	CHECK(strcmp(f->ch[f->nchanges - 1].name, name) == 0);
	CHECK_EQ(f->ch[f->nchanges - 1].from, from);
	CHECK_EQ(f->ch[f->nchanges - 1].to, to);
}

static int fn_ok(void *a)
{
	struct fx *f = a;
	if (f)
		f->now += f->fn_takes;
	return 0;
}

static int fn_fail(void *a)
{
	struct fx *f = a;
	if (f)
		f->now += f->fn_takes;
	return ERR_FAILED;
}

static int fn_excl(void *a)
{
	(void)a;
	return ERR_EXCLUDED;
}

/* gobreaker's succeed / fail / exclude: 0 when the call ran */
static int succeed(const struct impl *im, void *b)
{
	int rc = 1;
	int e = im->execute(b, fn_ok, NULL, &rc);
	if (e == 0)
		CHECK_EQ(rc, 0);
	return e;
}

static int fail(const struct impl *im, void *b)
{
	int rc = 1;
	int e = im->execute(b, fn_fail, NULL, &rc);
	if (e == 0)
		CHECK_EQ(rc, ERR_FAILED);
	return e;
}

static int exclude(const struct impl *im, void *b)
{
	return im->execute(b, fn_excl, NULL, NULL);
}

static void counts_are(const struct impl *im, void *b, uint32_t req, uint32_t ts, uint32_t tf,
		       uint32_t tx, uint32_t cs, uint32_t cf)
{
	weft_breaker_counts_t c;
	CHECK_EQ(im->counts(b, &c), 0);
	CHECK_EQ(c.requests, req);
	CHECK_EQ(c.total_successes, ts);
	CHECK_EQ(c.total_failures, tf);
	CHECK_EQ(c.total_exclusions, tx);
	CHECK_EQ(c.consecutive_successes, cs);
	CHECK_EQ(c.consecutive_failures, cf);
}

#define ZERO_COUNTS(im, b) counts_are(im, b, 0, 0, 0, 0, 0, 0)

/* gobreaker's newCustom: 60% failures over at least 3 valid requests */
static bool ratio_trip(const weft_breaker_counts_t *c, void *user)
{
	(void)user;
	uint32_t n = c->requests - c->total_exclusions;
	return n >= 3 && (double)c->total_failures / n >= 0.6;
}

static weft_breaker_settings_t custom(struct fx *f, const char *name)
{
	return (weft_breaker_settings_t){
		.name = name,
		.max_requests = 3,
		.interval = 30 * SEC,
		.timeout = 90 * SEC,
		.ready_to_trip = ratio_trip,
		.on_state_change = record_change,
		.is_excluded = excluded_err,
		.user = f,
		.clock = fake_clock,
	};
}

static void *make(const struct impl *im, const weft_breaker_settings_t *s)
{
	void *b = NULL;
	CHECK_EQ(im->create(&b, s), 0);
	CHECK(b != NULL);
	return b;
}

/* ==== (a) conformance ===================================================== */

static void test_state_names(void)
{
	CHECK_EQ(WEFT_BREAKER_CLOSED, 0);
	CHECK_EQ(WEFT_BREAKER_HALF_OPEN, 1);
	CHECK_EQ(WEFT_BREAKER_OPEN, 2);
	CHECK(strcmp(weft_breaker_state_name(CL), "closed") == 0);
	CHECK(strcmp(weft_breaker_state_name(HO), "half-open") == 0);
	CHECK(strcmp(weft_breaker_state_name(OP), "open") == 0);
	CHECK(strcmp(weft_breaker_state_name(100), "unknown") == 0);
	CHECK(strcmp(weft_breaker_state_name(-1), "unknown") == 0);
}

/* TestDefaultCircuitBreaker (and the negative durations of
 * TestNewCircuitBreaker: the same defaults) */
static void conf_defaults(const struct impl *im, int64_t interval, int64_t timeout)
{
	struct fx f = { .now = 1000 };
	weft_breaker_settings_t s = { .clock = fake_clock, .user = &f, .interval = interval,
				      .timeout = timeout };
	void *b = make(im, &s);
	CHECK(strcmp(im->bname(b), "") == 0);
	ZERO_COUNTS(im, b);

	for (int i = 0; i < 5; i++)
		CHECK_EQ(fail(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 5, 0, 5, 0, 0, 5);

	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 6, 1, 5, 0, 1, 0);

	CHECK_EQ(fail(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 7, 1, 6, 0, 0, 1);

	for (int i = 0; i < 5; i++)
		CHECK_EQ(fail(im, b), 0); /* 6 consecutive failures */
	CHECK_EQ(im->state(b), OP);
	ZERO_COUNTS(im, b);

	CHECK_EQ(succeed(im, b), -EBUSY);
	CHECK_EQ(fail(im, b), -EBUSY);
	ZERO_COUNTS(im, b);

	f.now += 60 * SEC - MS;
	CHECK_EQ(im->state(b), OP);
	f.now += MS; /* exactly the timeout: not yet (strictly past) */
	CHECK_EQ(im->state(b), OP);
	f.now += SEC;
	CHECK_EQ(im->state(b), HO);

	CHECK_EQ(fail(im, b), 0);
	CHECK_EQ(im->state(b), OP);
	ZERO_COUNTS(im, b);

	f.now += 60 * SEC + 1;
	CHECK_EQ(im->state(b), HO);
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	ZERO_COUNTS(im, b);
	im->destroy(b);
}

static void conf_default_breaker(const struct impl *im)
{
	conf_defaults(im, 0, 0);
	conf_defaults(im, -30 * SEC, -90 * SEC); /* newNegativeDurationCB */
}

/* TestCustomCircuitBreaker; the call still in flight is a two-step ticket */
static void conf_custom(const struct impl *im)
{
	struct fx f = { .now = 5 * SEC };
	weft_breaker_settings_t s = custom(&f, "cb");
	void *b = make(im, &s);
	CHECK(strcmp(im->bname(b), "cb") == 0);

	for (int i = 0; i < 5; i++) {
		CHECK_EQ(succeed(im, b), 0);
		CHECK_EQ(fail(im, b), 0);
		CHECK_EQ(exclude(im, b), 0);
	}
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 15, 5, 5, 5, 0, 1);

	f.now += 30 * SEC - MS;
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 16, 6, 5, 5, 1, 0);

	f.now += SEC; /* over the interval */
	CHECK_EQ(fail(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 1, 0, 1, 0, 0, 1);

	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(fail(im, b), 0); /* 2/3 >= 0.6 */
	CHECK_EQ(im->state(b), OP);
	ZERO_COUNTS(im, b);
	check_change(&f, "cb", CL, OP);

	f.now += 90 * SEC + 1;
	CHECK_EQ(im->state(b), HO);
	check_change(&f, "cb", OP, HO);

	/* exclusions are neutral in half-open: they free their slot */
	for (int i = 0; i < 4; i++)
		CHECK_EQ(exclude(im, b), 0);
	CHECK_EQ(im->state(b), HO);

	CHECK_EQ(fail(im, b), 0); /* the first real failure reopens */
	CHECK_EQ(im->state(b), OP);
	ZERO_COUNTS(im, b);
	check_change(&f, "cb", HO, OP);

	f.now += 90 * SEC + 1;
	CHECK_EQ(im->state(b), HO);
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(im->state(b), HO);
	counts_are(im, b, 2, 2, 0, 0, 2, 0);

	weft_breaker_ticket_t t;
	CHECK_EQ(im->allow(b, &t), 0); /* the third, in flight */
	counts_are(im, b, 3, 2, 0, 0, 2, 0);
	CHECK_EQ(succeed(im, b), -EAGAIN); /* over max_requests */
	CHECK_EQ(im->done(b, &t, 0), 0);
	CHECK_EQ(im->state(b), CL);
	ZERO_COUNTS(im, b);
	check_change(&f, "cb", HO, CL);
	CHECK_EQ(f.nchanges, 5);
	im->destroy(b);
}

/* TestRollingWindowCircuitBreaker (its Counts; the buckets are internal) */
static void conf_rolling(const struct impl *im)
{
	struct fx f = { .now = 0 };
	weft_breaker_settings_t s = custom(&f, "rw");
	s.bucket_period = 3 * SEC;
	void *b = make(im, &s);

	for (int i = 0; i < 5; i++) {
		CHECK_EQ(succeed(im, b), 0);
		CHECK_EQ(fail(im, b), 0);
		CHECK_EQ(exclude(im, b), 0);
	}
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 15, 5, 5, 5, 0, 1);

	f.now += 3 * SEC;
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 16, 6, 5, 5, 1, 0);

	f.now += 2 * SEC;
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(exclude(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 18, 7, 5, 6, 2, 0);

	f.now += 2 * SEC;
	CHECK_EQ(exclude(im, b), 0);
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 20, 8, 5, 7, 3, 0);

	f.now += 2 * SEC;
	CHECK_EQ(fail(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 21, 8, 6, 7, 0, 1);

	for (uint32_t i = 0; i < 6; i++) { /* fill every bucket */
		f.now += 3 * SEC;
		CHECK_EQ(succeed(im, b), 0);
		CHECK_EQ(fail(im, b), 0);
		counts_are(im, b, 23 + 2 * i, 9 + i, 7 + i, 7, 0, 1);
	}

	f.now += 3 * SEC; /* the first bucket leaves the window */
	CHECK_EQ(fail(im, b), 0);
	counts_are(im, b, 19, 9, 8, 2, 0, 2);
	for (uint32_t i = 0; i < 5; i++) {
		CHECK_EQ(fail(im, b), 0);
		counts_are(im, b, 20 + i, 9, 9 + i, 2, 0, 3 + i);
	}
	CHECK_EQ(im->state(b), CL);
	CHECK_EQ(fail(im, b), 0); /* 14/23 > 0.6 */
	CHECK_EQ(im->state(b), OP);
	check_change(&f, "rw", CL, OP);

	f.now += 90 * SEC + 1;
	CHECK_EQ(im->state(b), HO);
	check_change(&f, "rw", OP, HO);
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(im->state(b), HO);
	counts_are(im, b, 2, 2, 0, 0, 2, 0);

	weft_breaker_ticket_t t;
	CHECK_EQ(im->allow(b, &t), 0);
	counts_are(im, b, 3, 2, 0, 0, 2, 0);
	CHECK_EQ(succeed(im, b), -EAGAIN);
	CHECK_EQ(im->done(b, &t, 0), 0);
	CHECK_EQ(im->state(b), CL);
	ZERO_COUNTS(im, b);
	check_change(&f, "rw", HO, CL);
	im->destroy(b);
}

/* A late result counts in the bucket of its request while that bucket is
 * in the window, and not after (gobreaker v2's rollingCounts). */
static void conf_rolling_late(const struct impl *im)
{
	struct fx f = { .now = 0 };
	weft_breaker_settings_t s = custom(&f, "late");
	s.bucket_period = 3 * SEC; /* 10 buckets of 3 s */
	void *b = make(im, &s);
	weft_breaker_ticket_t t1, t2;

	CHECK_EQ(im->allow(b, &t1), 0);
	CHECK_EQ(im->allow(b, &t2), 0);
	f.now += 9 * SEC; /* 3 buckets on: t1's bucket still in */
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(im->done(b, &t1, 0), 0);
	counts_are(im, b, 3, 2, 0, 0, 2, 0);
	f.now += 24 * SEC; /* 11 buckets after t2's: gone */
	counts_are(im, b, 3, 2, 0, 0, 2, 0); /* counts applies no roll */
	CHECK_EQ(im->done(b, &t2, 0), 0);
	counts_are(im, b, 1, 1, 0, 0, 1, 0); /* the 9 s success only */
	im->destroy(b);
}

/* TestGeneration: a result from before the interval reset is ignored */
static void conf_generation(const struct impl *im)
{
	struct fx f = { .now = 0 };
	weft_breaker_settings_t s = custom(&f, "gen");
	void *b = make(im, &s);
	weft_breaker_ticket_t t;

	f.now += 29 * SEC;
	CHECK_EQ(succeed(im, b), 0);
	CHECK_EQ(im->allow(b, &t), 0);
	f.now += 500 * MS;
	counts_are(im, b, 2, 1, 0, 0, 1, 0);
	f.now += 600 * MS; /* over the interval */
	CHECK_EQ(im->state(b), CL);
	ZERO_COUNTS(im, b);
	CHECK_EQ(im->done(b, &t, 0), 0);
	ZERO_COUNTS(im, b);

	/* and across a state change: closed -> open */
	struct fx g = { .now = 0 };
	weft_breaker_settings_t d = { .clock = fake_clock, .user = &g };
	void *c = make(im, &d);
	CHECK_EQ(im->allow(c, &t), 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(im, c), 0);
	CHECK_EQ(im->state(c), OP);
	CHECK_EQ(im->done(c, &t, ERR_FAILED), 0); /* stale: ignored */
	ZERO_COUNTS(im, c);
	g.now += 60 * SEC + 1;
	CHECK_EQ(im->state(c), HO);
	CHECK_EQ(im->done(c, &t, ERR_FAILED), 0); /* still stale */
	CHECK_EQ(im->state(c), HO);
	im->destroy(c);
	im->destroy(b);
}

static bool always(int rc, void *user)
{
	(void)rc;
	(void)user;
	return true;
}

/* TestCustomIsSuccessful */
static void conf_is_successful(const struct impl *im)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .is_successful = always, .clock = fake_clock, .user = &f };
	void *b = make(im, &s);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(fail(im, b), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 5, 5, 0, 0, 5, 0);
	im->destroy(b);

	s.is_successful = NULL;
	b = make(im, &s);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(im, b), 0);
	CHECK_EQ(im->state(b), OP);
	im->destroy(b);
}

static bool success_if_zero(int rc, void *user)
{
	(void)user;
	return rc == 0;
}

/* TestIsExcludedAndIsSuccessfulCombination */
static void conf_excluded_and_successful(const struct impl *im)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .is_excluded = excluded_err, .is_successful = success_if_zero,
				      .clock = fake_clock, .user = &f };
	void *b = make(im, &s);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(exclude(im, b), 0);
	counts_are(im, b, 3, 0, 0, 3, 0, 0);
	for (int i = 0; i < 3; i++)
		CHECK_EQ(succeed(im, b), 0);
	counts_are(im, b, 6, 3, 0, 3, 3, 0);
	for (int i = 0; i < 2; i++)
		CHECK_EQ(fail(im, b), 0);
	counts_are(im, b, 8, 3, 2, 3, 0, 2);
	im->destroy(b);
}

/* two-step calls: 0, or the breaker's refusal */
static int step(const struct impl *im, void *b, int rc)
{
	weft_breaker_ticket_t t;
	int e = im->allow(b, &t);
	if (e == 0)
		CHECK_EQ(im->done(b, &t, rc), 0);
	return e;
}

/* TestTwoStepCircuitBreaker */
static void conf_two_step(const struct impl *im)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .name = "tscb", .max_requests = 2,
				      .is_excluded = excluded_err, .clock = fake_clock, .user = &f };
	void *b = make(im, &s);
	CHECK(strcmp(im->bname(b), "tscb") == 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(step(im, b, ERR_FAILED), 0);
	CHECK_EQ(im->state(b), CL);
	counts_are(im, b, 5, 0, 5, 0, 0, 5);
	CHECK_EQ(step(im, b, 0), 0);
	counts_are(im, b, 6, 1, 5, 0, 1, 0);
	CHECK_EQ(step(im, b, ERR_FAILED), 0);
	counts_are(im, b, 7, 1, 6, 0, 0, 1);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(step(im, b, ERR_FAILED), 0);
	CHECK_EQ(im->state(b), OP);
	ZERO_COUNTS(im, b);
	CHECK_EQ(step(im, b, 0), -EBUSY);
	CHECK_EQ(step(im, b, ERR_FAILED), -EBUSY);
	CHECK_EQ(step(im, b, ERR_EXCLUDED), -EBUSY);
	ZERO_COUNTS(im, b);

	f.now += 60 * SEC - MS;
	CHECK_EQ(im->state(b), OP);
	f.now += SEC;
	CHECK_EQ(im->state(b), HO);

	/* two excluded calls in flight fill half-open; once they report,
	 * their slots are free again */
	weft_breaker_ticket_t t1, t2;
	CHECK_EQ(im->allow(b, &t1), 0);
	CHECK_EQ(im->allow(b, &t2), 0);
	CHECK_EQ(step(im, b, 0), -EAGAIN);
	CHECK_EQ(step(im, b, ERR_FAILED), -EAGAIN);
	CHECK_EQ(im->done(b, &t1, ERR_EXCLUDED), 0);
	CHECK_EQ(im->done(b, &t2, ERR_EXCLUDED), 0);
	CHECK_EQ(step(im, b, 0), 0);

	CHECK_EQ(step(im, b, ERR_FAILED), 0);
	CHECK_EQ(im->state(b), OP);
	ZERO_COUNTS(im, b);
	f.now += 60 * SEC + 1;
	CHECK_EQ(im->state(b), HO);
	CHECK_EQ(step(im, b, 0), 0);
	CHECK_EQ(step(im, b, 0), 0);
	CHECK_EQ(im->state(b), CL);
	ZERO_COUNTS(im, b);
	im->destroy(b);
}

/* TestCircuitBreakerInParallel: successes and exclusions from several
 * threads, counted exactly */
struct par {
	const struct impl *im;
	void *b;
	int n;
	atomic_uint succ, excl;
};

static void *par_main(void *arg)
{
	struct par *p = arg;
	for (int i = 0; i < p->n; i++) {
		if (i % 2 == 0) {
			CHECK_EQ(succeed(p->im, p->b), 0);
			atomic_fetch_add(&p->succ, 1);
		} else {
			CHECK_EQ(exclude(p->im, p->b), 0);
			atomic_fetch_add(&p->excl, 1);
		}
	}
	return NULL;
}

static void conf_parallel(const struct impl *im)
{
	enum { THREADS = 10, N = 2000 };
	struct fx f = { 0 };
	weft_breaker_settings_t s = custom(&f, "par");
	for (int variant = 0; variant < 2; variant++) {
		if (variant == 1)
			s.interval = 0; /* weft: the lock-free path */
		struct par p = { .im = im, .b = make(im, &s), .n = N };
		pthread_t t[THREADS];
		for (int i = 0; i < THREADS; i++)
			CHECK_EQ(pthread_create(&t[i], NULL, par_main, &p), 0);
		for (int i = 0; i < THREADS; i++)
			pthread_join(t[i], NULL);
		uint32_t total = THREADS * N, sc = atomic_load(&p.succ);
		counts_are(im, p.b, total, sc, 0, atomic_load(&p.excl), sc, 0);
		im->destroy(p.b);
	}
}

static void conf_bad_handles(const struct impl *im)
{
	weft_breaker_ticket_t t = { 0 };
	weft_breaker_counts_t c;
	void *b = NULL;
	CHECK_EQ(im->create(NULL, NULL), -EINVAL);
	CHECK_EQ(im->execute(NULL, fn_ok, NULL, NULL), -EINVAL);
	CHECK_EQ(im->allow(NULL, &t), -EINVAL);
	CHECK_EQ(im->done(NULL, &t, 0), -EINVAL);
	CHECK_EQ(im->state(NULL), -EINVAL);
	CHECK_EQ(im->counts(NULL, &c), -EINVAL);
	CHECK(strcmp(im->bname(NULL), "") == 0);
	im->destroy(NULL);
	CHECK_EQ(im->create(&b, NULL), 0); /* NULL settings: defaults */
	CHECK_EQ(im->execute(b, NULL, NULL, NULL), -EINVAL);
	CHECK_EQ(im->allow(b, NULL), -EINVAL);
	CHECK_EQ(im->done(b, NULL, 0), -EINVAL);
	CHECK_EQ(im->counts(b, NULL), -EINVAL);
	ZERO_COUNTS(im, b); /* nothing changed */
	CHECK_EQ(im->state(b), CL);
	CHECK_EQ(succeed(im, b), 0); /* rc NULL: fine */
	counts_are(im, b, 1, 1, 0, 0, 1, 0);
	im->destroy(b);
}

/* The ticket of a call rejected while half-open counts nothing when it is
 * reported anyway: it is no probe, and never more results than requests. */
static void conf_rejected_ticket(const struct impl *im)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .clock = fake_clock, .user = &f };
	void *b = make(im, &s);
	weft_breaker_ticket_t probe, extra;
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(im, b), 0);
	f.now += 60 * SEC + 1;
	CHECK_EQ(im->allow(b, &probe), 0); /* max_requests 1 */
	CHECK_EQ(im->allow(b, &extra), -EAGAIN);
	CHECK_EQ(im->done(b, &extra, 0), 0);
	CHECK_EQ(im->state(b), WEFT_BREAKER_HALF_OPEN);
	counts_are(im, b, 1, 0, 0, 0, 0, 0);
	CHECK_EQ(im->done(b, &probe, 0), 0);
	CHECK_EQ(im->state(b), WEFT_BREAKER_CLOSED);
	im->destroy(b);
}

static void run_conformance(const struct impl *im)
{
	fprintf(stderr, "conformance on %s:\n", im->name);
#define RUN_ON(fn)                                                                       \
	do {                                                                             \
		fprintf(stderr, "  %-50s", #fn);                                         \
		fn(im);                                                                  \
		fprintf(stderr, " ok\n");                                                \
	} while (0)
	RUN_ON(conf_default_breaker);
	RUN_ON(conf_custom);
	RUN_ON(conf_rolling);
	RUN_ON(conf_rolling_late);
	RUN_ON(conf_generation);
	RUN_ON(conf_rejected_ticket);
	RUN_ON(conf_is_successful);
	RUN_ON(conf_excluded_and_successful);
	RUN_ON(conf_two_step);
	RUN_ON(conf_parallel);
	RUN_ON(conf_bad_handles);
#undef RUN_ON
}

/* ==== (b) weft only ======================================================= */

static const struct impl *W = &impl_weft_breaker;

static weft_breaker_t *wmake(const weft_breaker_settings_t *s)
{
	weft_breaker_t *b = NULL;
	CHECK_EQ(weft_breaker_create(&b, s), 0);
	return b;
}

/* Callbacks that call back: on_state_change reads state, counts and stats,
 * runs a call, and forces the breaker open from inside (a nested
 * transition, delivered after the current callback, in order). */
static void reentrant_change(const char *name, int from, int to, void *user)
{
	struct fx *f = user;
	weft_breaker_t *b = f->b;
	weft_breaker_counts_t c;
	weft_breaker_stats_t st;
	record_change(name, from, to, user);
	CHECK_EQ(weft_breaker_counts(b, &c), 0);
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.state, to); /* the breaker is already in `to` */
	if (to == HO && f->nchanges == 2) {
		CHECK_EQ(weft_breaker_state(b), HO);
		/* a probe from inside the callback: admitted, succeeds, closes */
		CHECK_EQ(weft_breaker_execute(b, fn_ok, NULL, NULL), 0);
		/* its transition (half-open -> closed) is not delivered yet */
		CHECK_EQ(f->nchanges, 2);
		CHECK_EQ(weft_breaker_state(b), CL);
	}
	if (to == CL && f->nchanges == 3)
		CHECK_EQ(weft_breaker_force_open(b), 0);
}

static void test_callback_reentry(void)
{
	struct fx f = { .now = 0 };
	weft_breaker_settings_t s = { .name = "re", .on_state_change = reentrant_change,
				      .clock = fake_clock, .user = &f };
	weft_breaker_t *b = wmake(&s);
	f.b = b;
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(f.nchanges, 1); /* delivered before the call returned */
	check_change(&f, "re", CL, OP);
	f.now += 60 * SEC + 1;
	/* state() answers as of its own moment (half-open); the callbacks
	 * it delivered then closed the breaker and forced it open */
	CHECK_EQ(weft_breaker_state(b), HO);
	CHECK_EQ(f.nchanges, 4);
	CHECK_EQ(weft_breaker_state(b), OP);
	check_change(&f, "re", CL, OP);
	CHECK_EQ(f.ch[1].from, OP);
	CHECK_EQ(f.ch[1].to, HO);
	CHECK_EQ(f.ch[2].from, HO);
	CHECK_EQ(f.ch[2].to, CL);
	CHECK_EQ(succeed(W, b), -EBUSY);
	weft_breaker_destroy(b);
}

/* Two breakers whose callbacks call each other: a opens -> its callback
 * forces b open -> b's callback resets a (a transition of a, whose
 * delivery is a's outer loop's, on this thread: no self-deadlock). */
static weft_breaker_t *pair[2];
static int pair_seen[2][4];

static void pair_change(const char *name, int from, int to, void *user)
{
	int me = (int)(intptr_t)user;
	(void)name;
	(void)from;
	pair_seen[me][pair_seen[me][3]++] = to;
	CHECK(pair_seen[me][3] < 3);
	if (me == 0 && to == OP)
		CHECK_EQ(weft_breaker_force_open(pair[1]), 0);
	if (me == 1 && to == OP)
		CHECK_EQ(weft_breaker_reset(pair[0]), 0);
}

static void test_callbacks_across_breakers(void)
{
	for (int i = 0; i < 2; i++) {
		weft_breaker_settings_t s = { .on_state_change = pair_change,
					      .user = (void *)(intptr_t)i };
		pair[i] = wmake(&s);
	}
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, pair[0]), 0);
	CHECK_EQ(pair_seen[0][3], 2); /* opened, then closed by b's callback */
	CHECK_EQ(pair_seen[0][0], OP);
	CHECK_EQ(pair_seen[0][1], CL);
	CHECK_EQ(pair_seen[1][3], 1);
	CHECK_EQ(pair_seen[1][0], OP);
	CHECK_EQ(weft_breaker_state(pair[0]), CL);
	CHECK_EQ(weft_breaker_state(pair[1]), OP);
	weft_breaker_destroy(pair[0]);
	weft_breaker_destroy(pair[1]);
}

/* The same from a weft task whose callback parks (and may resume on
 * another carrier) before it calls the breaker: the delivery belongs to
 * the task, not to the carrier thread it started on. */
static void parking_change(const char *name, int from, int to, void *user)
{
	struct fx *f = user;
	record_change(name, from, to, user);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(weft_sleep(100000), 0); /* 0.1 ms: parks the task */
	if (to == OP)
		CHECK_EQ(weft_breaker_reset(f->b), 0); /* delivered after this one */
}

struct task_case {
	struct fx f;
	weft_wg_t done;
};

static void callback_task(void *arg)
{
	struct task_case *tc = arg;
	weft_breaker_settings_t s = { .name = "task", .on_state_change = parking_change,
				      .clock = fake_clock, .user = &tc->f };
	weft_breaker_t *b = wmake(&s);
	tc->f.b = b;
	for (int round = 0; round < 20; round++)
		for (int i = 0; i < 6; i++)
			CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(tc->f.nchanges, 40); /* opened and reset, 20 times, in order */
	for (int i = 0; i < 40; i++)
		CHECK_EQ(tc->f.ch[i].to, i % 2 ? CL : OP);
	weft_breaker_destroy(b);
	weft_wg_done(&tc->done);
}

static void test_callback_in_task(void)
{
	static struct task_case tc;
	weft_wg_init(&tc.done);
	weft_wg_add(&tc.done, 1);
	CHECK_EQ(weft_go(callback_task, &tc), 0);
	CHECK_EQ(weft_wg_wait(&tc.done), 0);
}

/* ready_to_trip sees the counts right after the failure, once per
 * failure while closed; is_successful / is_excluded may call the breaker */
static bool counting_trip(const weft_breaker_counts_t *c, void *user)
{
	struct fx *f = user;
	f->trips_called++;
	CHECK_EQ(c->consecutive_failures, (uint32_t)f->trips_called);
	return c->consecutive_failures >= 3;
}

static bool reentrant_excluded(int rc, void *user)
{
	struct fx *f = user;
	weft_breaker_counts_t c;
	CHECK_EQ(weft_breaker_counts(f->b, &c), 0);
	CHECK(weft_breaker_state(f->b) >= 0);
	return rc == ERR_EXCLUDED;
}

static void test_callbacks_see(void)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .ready_to_trip = counting_trip,
				      .is_excluded = reentrant_excluded,
				      .clock = fake_clock, .user = &f };
	weft_breaker_t *b = wmake(&s);
	f.b = b;
	CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(exclude(W, b), 0);
	CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(weft_breaker_state(b), CL);
	CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(f.trips_called, 3);
	CHECK_EQ(weft_breaker_state(b), OP);
	weft_breaker_destroy(b);
}

/* The lock-free closed path keeps 16-bit deltas: past 65535 of each the
 * counts stay exact. */
static void test_fast_overflow(void)
{
	enum { N = 70000 };
	weft_breaker_settings_t s = { .is_excluded = excluded_err };
	weft_breaker_t *b = wmake(&s);
	for (int i = 0; i < N; i++)
		CHECK_EQ(succeed(W, b), 0);
	counts_are(W, b, N, N, 0, 0, N, 0);
	CHECK_EQ(fail(W, b), 0);
	counts_are(W, b, N + 1, N, 1, 0, 0, 1);
	for (int i = 0; i < N; i++)
		CHECK_EQ(exclude(W, b), 0);
	CHECK_EQ(succeed(W, b), 0);
	counts_are(W, b, 2 * N + 2, N + 1, 1, N, 1, 0);
	weft_breaker_ticket_t t[3];
	for (int i = 0; i < 3; i++)
		CHECK_EQ(weft_breaker_allow(b, &t[i]), 0);
	counts_are(W, b, 2 * N + 5, N + 1, 1, N, 1, 0);
	weft_breaker_destroy(b);
}

/* A success or exclusion reported on the lock-free path for a call of an
 * ended generation is ignored, also when the new generation is lock-free
 * too (reset, force_closed) and when the breaker went round through open. */
static void test_stale_fast(void)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .is_excluded = excluded_err, .clock = fake_clock, .user = &f };
	weft_breaker_t *b = wmake(&s);
	weft_breaker_ticket_t t, u;
	CHECK_EQ(weft_breaker_allow(b, &t), 0);
	CHECK_EQ(weft_breaker_allow(b, &u), 0);
	CHECK_EQ(weft_breaker_reset(b), 0);
	CHECK_EQ(weft_breaker_done(b, &t, 0), 0);
	CHECK_EQ(weft_breaker_done(b, &u, ERR_EXCLUDED), 0);
	ZERO_COUNTS(W, b);
	CHECK_EQ(weft_breaker_allow(b, &t), 0);
	CHECK_EQ(weft_breaker_force_closed(b), 0);
	CHECK_EQ(weft_breaker_done(b, &t, 0), 0);
	ZERO_COUNTS(W, b);
	CHECK_EQ(weft_breaker_reset(b), 0);
	CHECK_EQ(weft_breaker_allow(b, &t), 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, b), 0);
	f.now += 60 * SEC + 1;
	CHECK_EQ(succeed(W, b), 0); /* the probe closes it */
	CHECK_EQ(weft_breaker_state(b), CL);
	CHECK_EQ(weft_breaker_done(b, &t, 0), 0); /* three generations late */
	ZERO_COUNTS(W, b);
	CHECK_EQ(succeed(W, b), 0);
	counts_are(W, b, 1, 1, 0, 0, 1, 0);
	weft_breaker_destroy(b);
}

/* A ticket made while disabled counts nothing when reported after the
 * breaker is enabled again (never more results than requests). */
static void test_uncounted_tickets(void)
{
	weft_breaker_t *b = wmake(NULL);
	weft_breaker_ticket_t off;
	CHECK_EQ(weft_breaker_disable(b), 0);
	CHECK_EQ(weft_breaker_allow(b, &off), 0);
	CHECK_EQ(weft_breaker_reset(b), 0);
	CHECK_EQ(weft_breaker_done(b, &off, 0), 0);
	ZERO_COUNTS(W, b);
	weft_breaker_destroy(b);
}

/* failure_rate over a count window of 10, at least 5 results */
static void test_failure_rate_count(void)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .name = "fr", .failure_rate = 0.5, .window_calls = 10,
				      .min_calls = 8, .is_excluded = excluded_err,
				      .on_state_change = record_change,
				      .clock = fake_clock, .user = &f };
	weft_breaker_t *b = wmake(&s);
	weft_breaker_stats_t st;
	for (int i = 0; i < 7; i++)
		CHECK_EQ(fail(W, b), 0); /* 7 of 7, below min_calls */
	/* ready_to_trip NULL with a rate: no consecutive-failures default */
	CHECK_EQ(weft_breaker_state(b), CL);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(exclude(W, b), 0); /* not calls */
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.window_results, 7);
	CHECK_EQ(st.window_failures, 7);
	CHECK_EQ(weft_breaker_state(b), CL);
	CHECK_EQ(succeed(W, b), 0); /* 7 of 8 >= 0.5: trips on a success */
	CHECK_EQ(weft_breaker_state(b), OP);
	check_change(&f, "fr", CL, OP);
	weft_breaker_destroy(b);

	/* the window slides: old failures leave it */
	f = (struct fx){ 0 };
	s.min_calls = 10;
	b = wmake(&s);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(fail(W, b), 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(succeed(W, b), 0); /* 4 of 10: below */
	CHECK_EQ(weft_breaker_state(b), CL);
	for (int i = 0; i < 4; i++) {
		CHECK_EQ(succeed(W, b), 0); /* each pushes a failure out */
		CHECK_EQ(weft_breaker_stats(b, &st), 0);
		CHECK_EQ(st.window_results, 10);
		CHECK_EQ(st.window_failures, 3 - i);
	}
	for (int i = 0; i < 4; i++)
		CHECK_EQ(fail(W, b), 0); /* 4 of 10 */
	CHECK_EQ(weft_breaker_state(b), CL);
	CHECK_EQ(fail(W, b), 0); /* 5 of 10 */
	CHECK_EQ(weft_breaker_state(b), OP);
	weft_breaker_destroy(b);
}

/* a time window of 10 s in 10 buckets; min_calls 0 -> 100 */
static void test_failure_rate_time(void)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .failure_rate = 0.5, .window_time = 10 * SEC,
				      .min_calls = 4, .clock = fake_clock, .user = &f };
	weft_breaker_t *b = wmake(&s);
	weft_breaker_stats_t st;
	for (int i = 0; i < 3; i++)
		CHECK_EQ(fail(W, b), 0);
	f.now += 10 * SEC; /* they leave the window */
	CHECK_EQ(succeed(W, b), 0);
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.window_results, 1);
	CHECK_EQ(st.window_failures, 0);
	CHECK_EQ(weft_breaker_state(b), CL);
	f.now += 5 * SEC;
	CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(succeed(W, b), 0); /* 1 of 3 */
	CHECK_EQ(weft_breaker_state(b), CL);
	CHECK_EQ(fail(W, b), 0); /* 2 of 4: trips */
	CHECK_EQ(weft_breaker_state(b), OP);
	weft_breaker_destroy(b);

	/* the default min_calls: 100 */
	s.min_calls = 0;
	b = wmake(&s);
	for (int i = 0; i < 99; i++)
		CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(weft_breaker_state(b), CL);
	CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(weft_breaker_state(b), OP);
	weft_breaker_destroy(b);
}

/* slow calls: the fake clock moves while fn runs */
static void test_slow_calls(void)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .slow_call_duration = 100 * MS, .slow_call_rate = 0.6,
				      .window_calls = 5, .min_calls = 5, .clock = fake_clock,
				      .user = &f };
	weft_breaker_t *b = wmake(&s);
	weft_breaker_stats_t st;
	f.fn_takes = 100 * MS; /* not slower than the threshold */
	for (int i = 0; i < 5; i++)
		CHECK_EQ(W->execute(b, fn_ok, &f, NULL), 0);
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.slow_calls, 0);
	f.fn_takes = 100 * MS + 1;
	CHECK_EQ(W->execute(b, fn_ok, &f, NULL), 0);
	CHECK_EQ(W->execute(b, fn_fail, &f, NULL), 0); /* slow failures count too */
	CHECK_EQ(weft_breaker_state(b), CL); /* 2 of 5 */
	/* two-step: the ticket carries the admission time */
	weft_breaker_ticket_t t;
	CHECK_EQ(weft_breaker_allow(b, &t), 0);
	f.now += SEC;
	CHECK_EQ(weft_breaker_done(b, &t, 0), 0);
	CHECK_EQ(weft_breaker_state(b), OP); /* 3 of 5 >= 0.6 */
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.slow_calls, 3);
	CHECK_EQ(st.counts.requests, 0);
	weft_breaker_destroy(b);
}

/* half-open judged on a success rate over its max_requests probes */
static void test_half_open_rate(void)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .max_requests = 4, .half_open_success_rate = 0.75,
				      .timeout = SEC, .clock = fake_clock, .user = &f };
	weft_breaker_t *b = wmake(&s);
	CHECK_EQ(weft_breaker_force_open(b), 0);
	CHECK_EQ(weft_breaker_reset(b), 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(weft_breaker_state(b), OP);
	f.now += SEC + 1;
	CHECK_EQ(weft_breaker_state(b), HO);
	CHECK_EQ(fail(W, b), 0); /* 1 bad of 4: 3 good still reach 0.75 */
	CHECK_EQ(weft_breaker_state(b), HO);
	CHECK_EQ(succeed(W, b), 0);
	CHECK_EQ(succeed(W, b), 0);
	CHECK_EQ(weft_breaker_state(b), HO);
	CHECK_EQ(succeed(W, b), 0); /* 3 of 4 */
	CHECK_EQ(weft_breaker_state(b), CL);

	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, b), 0);
	f.now += SEC + 1;
	CHECK_EQ(weft_breaker_state(b), HO);
	CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(weft_breaker_state(b), HO);
	CHECK_EQ(fail(W, b), 0); /* 0.75 out of reach: opens at once */
	CHECK_EQ(weft_breaker_state(b), OP);
	weft_breaker_destroy(b);
}

/* trip once and wait the open timeout out: the timeout it had */
static int64_t open_for(weft_breaker_t *b, struct fx *f)
{
	weft_breaker_stats_t st;
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.state, OP);
	int64_t d = st.open_until - st.since;
	CHECK_EQ(d, st.open_timeout);
	f->now = st.open_until; /* not yet */
	CHECK_EQ(weft_breaker_state(b), OP);
	f->now++;
	CHECK_EQ(weft_breaker_state(b), HO);
	return d;
}

static void test_backoff(void)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .timeout = SEC, .backoff_multiplier = 2,
				      .backoff_max = 5 * SEC, .clock = fake_clock, .user = &f };
	weft_breaker_t *b = wmake(&s);
	weft_breaker_stats_t st;
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(open_for(b, &f), SEC);
	CHECK_EQ(fail(W, b), 0); /* the probe fails: reopen, doubled */
	CHECK_EQ(open_for(b, &f), 2 * SEC);
	CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(open_for(b, &f), 4 * SEC);
	CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(open_for(b, &f), 5 * SEC); /* the ceiling */
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.backoff_level, 4);
	CHECK_EQ(st.opened, 4);
	CHECK_EQ(succeed(W, b), 0); /* closes: backoff reset */
	CHECK_EQ(weft_breaker_state(b), CL);
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.backoff_level, 0);
	CHECK_EQ(st.open_timeout, SEC);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(open_for(b, &f), SEC);
	weft_breaker_destroy(b);

	/* jitter: within [d * (1 - j), d]; the same seed, the same draws */
	s.backoff_jitter = 0.5;
	s.backoff_max = 0;
	s.seed = 42;
	int64_t seen[2][5];
	for (int run = 0; run < 2; run++) {
		f = (struct fx){ 0 };
		b = wmake(&s);
		for (int i = 0; i < 6; i++)
			CHECK_EQ(fail(W, b), 0);
		int64_t d = SEC;
		for (int k = 0; k < 5; k++) {
			int64_t got = open_for(b, &f);
			CHECK(got <= d && got >= d / 2);
			seen[run][k] = got;
			d *= 2;
			CHECK_EQ(fail(W, b), 0);
		}
		weft_breaker_destroy(b);
	}
	CHECK(memcmp(seen[0], seen[1], sizeof seen[0]) == 0);
	bool varied = false;
	for (int k = 1; k < 5; k++)
		varied |= seen[0][k] != SEC << k;
	CHECK(varied);
}

static void test_manual(void)
{
	struct fx f = { 0 };
	weft_breaker_settings_t s = { .name = "man", .on_state_change = record_change,
				      .clock = fake_clock, .user = &f };
	weft_breaker_t *b = wmake(&s);
	weft_breaker_stats_t st;

	CHECK_EQ(weft_breaker_force_open(b), 0);
	check_change(&f, "man", CL, OP);
	f.now += 365 * 24 * 3600 * SEC; /* no timeout applies */
	CHECK_EQ(weft_breaker_state(b), OP);
	CHECK_EQ(succeed(W, b), -EBUSY);
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.mode, WEFT_BREAKER_FORCED_OPEN);
	CHECK_EQ(st.open_until, INT64_MAX);
	CHECK_EQ(st.rejected_open, 1);

	CHECK_EQ(weft_breaker_force_closed(b), 0);
	check_change(&f, "man", OP, CL);
	for (int i = 0; i < 100; i++)
		CHECK_EQ(fail(W, b), 0); /* never trips */
	CHECK_EQ(weft_breaker_state(b), CL);
	counts_are(W, b, 100, 0, 100, 0, 0, 100);

	CHECK_EQ(weft_breaker_disable(b), 0);
	CHECK_EQ(f.nchanges, 2); /* closed already: no transition */
	ZERO_COUNTS(W, b);
	for (int i = 0; i < 10; i++)
		CHECK_EQ(fail(W, b), 0);
	ZERO_COUNTS(W, b); /* nothing counted */
	CHECK_EQ(weft_breaker_state(b), CL);
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.mode, WEFT_BREAKER_DISABLED);

	CHECK_EQ(weft_breaker_reset(b), 0);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, b), 0); /* normal again */
	CHECK_EQ(weft_breaker_state(b), OP);
	check_change(&f, "man", CL, OP);
	weft_breaker_ticket_t t;
	CHECK_EQ(weft_breaker_allow(b, &t), -EBUSY);
	CHECK_EQ(weft_breaker_reset(b), 0); /* open -> closed */
	check_change(&f, "man", OP, CL);
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.mode, WEFT_BREAKER_NORMAL);
	CHECK_EQ(st.state, CL);
	CHECK_EQ(st.backoff_level, 0);
	CHECK_EQ(st.rejected_open, 2);
	CHECK_EQ(st.opened, 2);
	CHECK_EQ(f.nchanges, 4);
	ZERO_COUNTS(W, b);
	for (int i = 0; i < 70000; i++) /* the fast path is back */
		CHECK_EQ(succeed(W, b), 0);
	counts_are(W, b, 70000, 70000, 0, 0, 70000, 0);
	weft_breaker_destroy(b);
}

static void test_stats(void)
{
	struct fx f = { .now = 100 };
	weft_breaker_settings_t s = { .max_requests = 1, .timeout = SEC, .clock = fake_clock,
				      .user = &f };
	weft_breaker_t *b = wmake(&s);
	weft_breaker_stats_t st;
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.state, CL);
	CHECK_EQ(st.generation, 1);
	CHECK_EQ(st.since, 100);
	f.now += 7;
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, b), 0);
	f.now += 5;
	for (int i = 0; i < 4; i++)
		CHECK_EQ(succeed(W, b), -EBUSY);
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.state, OP);
	CHECK_EQ(st.generation, 2);
	CHECK_EQ(st.since, 107);
	CHECK_EQ(st.time_in_state, 5);
	CHECK_EQ(st.open_until, 107 + SEC);
	CHECK_EQ(st.rejected_open, 4);
	f.now += SEC;
	weft_breaker_ticket_t t;
	CHECK_EQ(weft_breaker_allow(b, &t), 0);
	CHECK_EQ(succeed(W, b), -EAGAIN);
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.state, HO);
	CHECK_EQ(st.rejected_half_open, 1);
	CHECK_EQ(st.rejected, 5);
	CHECK_EQ(st.counts.requests, 1);
	CHECK_EQ(weft_breaker_stats(NULL, &st), -EINVAL);
	CHECK_EQ(weft_breaker_stats(b, NULL), -EINVAL);
	weft_breaker_destroy(b);
}

static void test_bad_settings(void)
{
	weft_breaker_t *b = (weft_breaker_t *)&b;
	const weft_breaker_settings_t bad[] = {
		{ .failure_rate = -0.1 },
		{ .failure_rate = 1.5 },
		{ .failure_rate = NAN },
		{ .slow_call_rate = 0.5 }, /* no slow_call_duration */
		{ .slow_call_rate = 2, .slow_call_duration = 1 },
		{ .slow_call_duration = -1 },
		{ .half_open_success_rate = -1 },
		{ .half_open_success_rate = NAN },
		{ .backoff_jitter = 1.01 },
		{ .backoff_multiplier = -2 },
		{ .backoff_multiplier = NAN },
		{ .backoff_max = -1 },
		{ .window_time = -5 },
		{ .window_calls = WEFT_BREAKER_MAX_WINDOW + 1 },
		{ .window_buckets = WEFT_BREAKER_MAX_WINDOW + 1 },
		{ .interval = INT64_MAX, .bucket_period = 1 }, /* 2^63 buckets */
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		CHECK_EQ(weft_breaker_create(&b, &bad[i]), -EINVAL);
		CHECK(b == NULL);
	}
	/* absurd but valid: huge timeout and interval saturate */
	struct fx f = { .now = INT64_MAX - SEC };
	weft_breaker_settings_t s = { .timeout = INT64_MAX, .interval = INT64_MAX,
				      .max_requests = UINT32_MAX, .backoff_multiplier = 1e300,
				      .clock = fake_clock, .user = &f };
	b = wmake(&s);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(weft_breaker_state(b), OP);
	f.now = INT64_MAX;
	CHECK_EQ(weft_breaker_state(b), OP); /* never past INT64_MAX */
	weft_breaker_destroy(b);

	/* extreme clocks, periods and tickets: no overflow (UBSan checks) */
	f.now = INT64_MIN + 5;
	s = (weft_breaker_settings_t){ .interval = INT64_MAX, .bucket_period = INT64_MAX - 1,
				       .slow_call_duration = 1, .failure_rate = 1,
				       .window_time = INT64_MAX, .clock = fake_clock, .user = &f };
	b = wmake(&s); /* two buckets; the interval saturates */
	CHECK_EQ(succeed(W, b), 0);
	f.now = INT64_MAX;
	CHECK_EQ(succeed(W, b), 0);
	weft_breaker_ticket_t odd = { .generation = 1, .start = INT64_MIN };
	CHECK_EQ(weft_breaker_done(b, &odd, 0), 0);
	weft_breaker_stats_t st;
	CHECK_EQ(weft_breaker_stats(b, &st), 0);
	CHECK_EQ(st.time_in_state, INT64_MAX);
	weft_breaker_destroy(b);

	/* a time window of 1 ns buckets and a clock crossing the int64 range
	 * (found by fuzz_opts): the bucket index saturates. It was INT64_MAX
	 * for a span of exactly that (the aging loop's i++ overflowed and
	 * wrapped to a negative bucket index), and negative past it (the
	 * window never aged) */
	for (int k = 0; k < 2; k++) {
		f.now = k ? INT64_MIN + 5 : 0;
		s = (weft_breaker_settings_t){ .failure_rate = 1, .window_time = 10,
					       .window_buckets = 10, .min_calls = 1000,
					       .clock = fake_clock, .user = &f };
		b = wmake(&s);
		CHECK_EQ(fail(W, b), 0);
		f.now = INT64_MAX;
		CHECK_EQ(fail(W, b), 0);
		CHECK_EQ(succeed(W, b), 0);
		CHECK_EQ(weft_breaker_stats(b, &st), 0);
		CHECK_EQ(st.window_results, 2); /* the first left the window */
		CHECK_EQ(st.window_failures, 1);
		weft_breaker_destroy(b);
	}

	/* a ticket never seen: ignored */
	b = wmake(NULL);
	weft_breaker_ticket_t t = { .generation = 12345, .age = 99 };
	CHECK_EQ(weft_breaker_done(b, &t, ERR_FAILED), 0);
	ZERO_COUNTS(W, b);
	CHECK_EQ(weft_breaker_force_open(NULL), -EINVAL);
	CHECK_EQ(weft_breaker_force_closed(NULL), -EINVAL);
	CHECK_EQ(weft_breaker_disable(NULL), -EINVAL);
	CHECK_EQ(weft_breaker_reset(NULL), -EINVAL);
	weft_breaker_destroy(b);
}

/* the default clock: a real breaker, a short timeout */
static void test_real_clock(void)
{
	weft_breaker_settings_t s = { .timeout = 2 * MS };
	weft_breaker_t *b = wmake(&s);
	for (int i = 0; i < 6; i++)
		CHECK_EQ(fail(W, b), 0);
	CHECK_EQ(succeed(W, b), -EBUSY);
	int64_t until = weft_now() + 2 * MS;
	while (weft_now() <= until)
		;
	/* past the timeout: the next call is a probe */
	CHECK_EQ(succeed(W, b), 0);
	CHECK_EQ(weft_breaker_state(b), CL);
	weft_breaker_destroy(b);
}

int main(void)
{
	test_watchdog(120);
	fprintf(stderr, "test_breaker:\n");
	RUN(test_state_names);
	run_conformance(&impl_weft_breaker);
	run_conformance(&impl_mbreaker);
	fprintf(stderr, "weft only:\n");
	RUN(test_callback_reentry);
	RUN(test_callbacks_across_breakers);
	RUN(test_callback_in_task);
	RUN(test_callbacks_see);
	RUN(test_fast_overflow);
	RUN(test_stale_fast);
	RUN(test_uncounted_tickets);
	RUN(test_failure_rate_count);
	RUN(test_failure_rate_time);
	RUN(test_slow_calls);
	RUN(test_half_open_rate);
	RUN(test_backoff);
	RUN(test_manual);
	RUN(test_stats);
	RUN(test_bad_settings);
	RUN(test_real_clock);
	fprintf(stderr, "all ok\n");
	return 0;
}
