/* breaker_payment: the seed's payment provider behind a circuit breaker.
 *
 * The provider times out 80% of calls for a while (each hangs for the
 * provider's 10 s timeout, then fails), then it is healthy again. Without
 * a breaker every caller would hang 10 s, four times in five. With one:
 *
 *	cb := gobreaker.NewCircuitBreaker[Receipt](gobreaker.Settings{
 *		Name: "payments", MaxRequests: 3, Timeout: 30 * time.Second,
 *		ReadyToTrip: ... 50% failures or slow calls over the last 20 ...,
 *	})
 *	receipt, err := cb.Execute(func() (Receipt, error) { return provider.Charge(order) })
 *
 * the breaker opens after the failures, answers in microseconds instead of
 * hanging, lets 3 probes through after 30 s, and closes when they succeed.
 * The second run adds exponential backoff (x2 per reopening, ceiling 120 s,
 * 20% jitter): the breaker probes the sick provider less often.
 *
 * Time is scaled so the program runs in about a second: 1 story second is
 * 1 ms (the provider's 10 s timeout is 10 ms, the outage 200 s is 200 ms).
 * Four client threads each charge an order, then wait 1 story second. The
 * timeline (state changes, from on_state_change) and the summary are
 * printed in story seconds; the fast failures' durations are real (two
 * clock reads around the call included).
 */
#include <weft.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <time.h>

#define STORY_S 1000000LL /* one story second: 1 ms */
#define CLIENTS 4
#define OUTAGE_S 200       /* the provider is sick for this long */
#define PROVIDER_TIMEOUT_S 10
#define MIN_RUN_S 300      /* run at least this long, then until closed */
#define MAX_RUN_S 1500     /* and never longer */

struct run {
	weft_breaker_t *b;
	int64_t t0;
	atomic_uint_fast64_t seed;
	/* results */
	atomic_uint_fast64_t calls, ok, timed_out, fast_failed, fast_ns, fast_max_ns;
	atomic_int opens, probes_windows;
	atomic_llong closed_at_s; /* the last close after the outage; -1 none */
	atomic_bool stop;
};

static int64_t story_s(const struct run *r)
{
	return (weft_now() - r->t0) / STORY_S;
}

static void sleep_ns(int64_t ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };
	nanosleep(&ts, NULL);
}

/* the provider: sick (80% hang for its timeout and fail) during the
 * outage, healthy after */
struct charge {
	struct run *r;
	uint64_t rnd;
};

static int provider_charge(void *arg)
{
	struct charge *c = arg;
	if (story_s(c->r) < OUTAGE_S && c->rnd % 5 != 0) {
		sleep_ns(PROVIDER_TIMEOUT_S * STORY_S);
		return -ETIMEDOUT;
	}
	sleep_ns(STORY_S / 10); /* a healthy charge: 0.1 story s */
	return 0;
}

static void on_change(const char *name, int from, int to, void *user)
{
	struct run *r = user;
	int64_t t = story_s(r);
	printf("t=%4lld s  %s: %s -> %s\n", (long long)t, name, weft_breaker_state_name(from),
	       weft_breaker_state_name(to));
	if (to == WEFT_BREAKER_OPEN)
		atomic_fetch_add(&r->opens, 1);
	if (to == WEFT_BREAKER_HALF_OPEN)
		atomic_fetch_add(&r->probes_windows, 1);
	if (to == WEFT_BREAKER_CLOSED && t >= OUTAGE_S)
		atomic_store(&r->closed_at_s, t);
}

static void *client(void *arg)
{
	struct run *r = arg;
	uint64_t x = atomic_fetch_add(&r->seed, 0x9e3779b97f4a7c15ULL);
	while (!atomic_load(&r->stop)) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		struct charge c = { r, x };
		int rc = 0;
		int64_t t0 = weft_now();
		int e = weft_breaker_execute(r->b, provider_charge, &c, &rc);
		int64_t took = weft_now() - t0;
		atomic_fetch_add(&r->calls, 1);
		if (e == -EBUSY || e == -EAGAIN) {
			atomic_fetch_add(&r->fast_failed, 1);
			atomic_fetch_add(&r->fast_ns, (uint64_t)took);
			uint_fast64_t m = atomic_load(&r->fast_max_ns);
			while ((uint64_t)took > m &&
			       !atomic_compare_exchange_weak(&r->fast_max_ns, &m, (uint64_t)took))
				;
		} else if (rc == 0) {
			atomic_fetch_add(&r->ok, 1);
		} else {
			atomic_fetch_add(&r->timed_out, 1);
		}
		sleep_ns(STORY_S);
	}
	return NULL;
}

static int run(const char *label, double backoff)
{
	struct run r = { .seed = 42, .closed_at_s = -1 };
	weft_breaker_settings_t s = {
		.name = "payments",
		.max_requests = 3,                     /* 3 probes, all must succeed */
		.timeout = 30 * STORY_S,               /* open for 30 s */
		.failure_rate = 0.5,                   /* trip at 50% failures ... */
		.slow_call_duration = 5 * STORY_S,     /* ... or 50% calls slower than 5 s */
		.slow_call_rate = 0.5,
		.window_calls = 20,                    /* over the last 20 calls */
		.min_calls = 10,
		.backoff_multiplier = backoff,
		.backoff_max = 120 * STORY_S,
		.backoff_jitter = backoff > 1 ? 0.2 : 0,
		.on_state_change = on_change,
		.user = &r,
	};
	pthread_t t[CLIENTS];
	int rc = weft_breaker_create(&r.b, &s);
	if (rc) {
		fprintf(stderr, "weft_breaker_create: %s\n", weft_strerror(rc));
		return 1;
	}
	printf("== %s: the provider times out 80%% of calls (10 s each) until t=%d s\n", label,
	       OUTAGE_S);
	r.t0 = weft_now();
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&t[i], NULL, client, &r);
	for (;;) {
		sleep_ns(STORY_S);
		int64_t now = story_s(&r);
		if ((now >= MIN_RUN_S && atomic_load(&r.closed_at_s) >= 0) || now >= MAX_RUN_S)
			break;
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(t[i], NULL);

	weft_breaker_stats_t st;
	weft_breaker_stats(r.b, &st);
	uint64_t ff = atomic_load(&r.fast_failed);
	printf("summary (%s): %llu calls: %llu paid, %llu timed out at the provider, %llu failed "
	       "fast in %.0f ns on average (max %.0f ns) instead of hanging 10 s\n",
	       label, (unsigned long long)atomic_load(&r.calls), (unsigned long long)atomic_load(&r.ok),
	       (unsigned long long)atomic_load(&r.timed_out), (unsigned long long)ff,
	       ff ? (double)atomic_load(&r.fast_ns) / ff : 0.0, (double)atomic_load(&r.fast_max_ns));
	if (atomic_load(&r.closed_at_s) < 0)
		printf("summary (%s): opened %d times, probed %d times, NOT closed again by t=%d s\n",
		       label, atomic_load(&r.opens), atomic_load(&r.probes_windows), MAX_RUN_S);
	else
		printf("summary (%s): opened %d times, probed %d times, closed again at t=%lld s "
		       "(provider healthy from t=%d s); breaker says %s, %llu calls rejected\n",
		       label, atomic_load(&r.opens), atomic_load(&r.probes_windows),
		       (long long)atomic_load(&r.closed_at_s), OUTAGE_S,
		       weft_breaker_state_name(st.state), (unsigned long long)st.rejected);
	weft_breaker_destroy(r.b);
	return atomic_load(&r.closed_at_s) < 0 || ff == 0;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int bad = run("without backoff", 0);
	bad |= run("with backoff x2, ceiling 120 s, jitter 20%", 2);
	return bad;
}
