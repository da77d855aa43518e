/* bench/baseline/breaker_mutex.c: see breaker_mutex.h. */
#include "breaker_mutex.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef weft_breaker_counts_t counts_t;

struct mbreaker {
	pthread_mutex_t mu;
	char *name;
	uint32_t max_requests, nbuckets;
	int64_t interval, period, timeout;
	weft_breaker_settings_t s; /* the callbacks, user and clock */

	int state;
	uint64_t generation, age;
	int64_t start, expiry;
	int has_expiry;
	counts_t total;
	counts_t *buckets;
};

static int64_t clock_of(mbreaker_t *b)
{
	return b->s.clock ? b->s.clock(b->s.user) : weft_now();
}

/* what a result does to one Counts */
enum outcome { REQUEST, SUCCESS, FAILURE, EXCLUSION };

static void apply(counts_t *c, enum outcome o)
{
	switch (o) {
	case REQUEST:
		c->requests++;
		break;
	case SUCCESS:
		c->total_successes++;
		c->consecutive_successes++;
		c->consecutive_failures = 0;
		break;
	case FAILURE:
		c->total_failures++;
		c->consecutive_failures++;
		c->consecutive_successes = 0;
		break;
	case EXCLUSION:
		c->total_exclusions++;
		break;
	}
}

static void clear_all(mbreaker_t *b)
{
	b->total = (counts_t){ 0 };
	b->age = 0;
	for (uint32_t i = 0; i < b->nbuckets; i++)
		b->buckets[i] = (counts_t){ 0 };
}

static uint32_t minus(uint32_t have, uint32_t drop)
{
	return have > drop ? have - drop : 0;
}

/* the window moves on one bucket: the oldest leaves the totals (its share
 * of a consecutive run only when the run reaches back into it) */
static void roll_one(mbreaker_t *b)
{
	b->age++;
	counts_t *old = &b->buckets[b->age % b->nbuckets];
	uint32_t run_s = old->consecutive_successes, run_f = old->consecutive_failures;
	for (uint64_t j = b->age + 1; j < b->age + b->nbuckets; j++) {
		run_s += b->buckets[j % b->nbuckets].total_successes;
		run_f += b->buckets[j % b->nbuckets].total_failures;
	}
	counts_t *t = &b->total;
	if (t->consecutive_successes == run_s)
		t->consecutive_successes = minus(t->consecutive_successes, old->consecutive_successes);
	if (t->consecutive_failures == run_f)
		t->consecutive_failures = minus(t->consecutive_failures, old->consecutive_failures);
	t->requests = minus(t->requests, old->requests);
	t->total_successes = minus(t->total_successes, old->total_successes);
	t->total_failures = minus(t->total_failures, old->total_failures);
	t->total_exclusions = minus(t->total_exclusions, old->total_exclusions);
	*old = (counts_t){ 0 };
}

static void new_generation(mbreaker_t *b, int64_t now)
{
	b->generation++;
	b->start = now;
	clear_all(b);
	b->has_expiry = 0;
	if (b->state == WEFT_BREAKER_OPEN) {
		b->expiry = now > INT64_MAX - b->timeout ? INT64_MAX : now + b->timeout;
		b->has_expiry = 1;
	} else if (b->state == WEFT_BREAKER_CLOSED && b->interval > 0 && b->nbuckets < 2) {
		b->expiry = now > INT64_MAX - b->interval ? INT64_MAX : now + b->interval;
		b->has_expiry = 1;
	}
}

static void change_state(mbreaker_t *b, int to, int64_t now)
{
	int from = b->state;
	if (from == to)
		return;
	b->state = to;
	new_generation(b, now);
	if (b->s.on_state_change)
		b->s.on_state_change(b->name, from, to, b->s.user); /* under the mutex, as gobreaker */
}

static void bring_up_to_date(mbreaker_t *b, int64_t now)
{
	if (b->state == WEFT_BREAKER_OPEN && b->expiry < now) {
		change_state(b, WEFT_BREAKER_HALF_OPEN, now);
	} else if (b->state == WEFT_BREAKER_CLOSED) {
		if (b->has_expiry && b->expiry < now) {
			new_generation(b, now);
		} else if (b->nbuckets >= 2 && now > b->start) {
			uint64_t age = ((uint64_t)now - (uint64_t)b->start) / (uint64_t)b->period;
			if (age > b->age && age - b->age >= b->nbuckets) {
				clear_all(b);
				b->age = age;
			}
			while (b->age < age)
				roll_one(b);
		}
	}
}

int mbreaker_create(mbreaker_t **out, const weft_breaker_settings_t *s)
{
	static const weft_breaker_settings_t defaults;
	if (!out)
		return -EINVAL;
	*out = NULL;
	s = s ? s : &defaults;
	mbreaker_t *b = calloc(1, sizeof *b);
	if (!b)
		return -ENOMEM;
	b->s = *s;
	b->max_requests = s->max_requests ? s->max_requests : 1;
	b->timeout = s->timeout > 0 ? s->timeout : 60LL * 1000000000LL;
	b->nbuckets = 1;
	if (s->interval > 0) {
		b->interval = b->period = s->interval;
		if (s->bucket_period > 0) {
			uint64_t n = (uint64_t)(s->interval / s->bucket_period) +
				     (s->interval % s->bucket_period != 0);
			if (n > WEFT_BREAKER_MAX_WINDOW) {
				free(b);
				return -EINVAL;
			}
			b->nbuckets = (uint32_t)n;
			b->period = s->bucket_period;
			b->interval = (uint64_t)b->period > INT64_MAX / n ? INT64_MAX
									 : (int64_t)n * b->period;
		}
	}
	b->name = strdup(s->name ? s->name : "");
	b->buckets = calloc(b->nbuckets, sizeof *b->buckets);
	if (!b->name || !b->buckets || pthread_mutex_init(&b->mu, NULL) != 0) {
		free(b->name);
		free(b->buckets);
		free(b);
		return -ENOMEM;
	}
	new_generation(b, clock_of(b));
	*out = b;
	return 0;
}

void mbreaker_destroy(mbreaker_t *b)
{
	if (!b)
		return;
	pthread_mutex_destroy(&b->mu);
	free(b->name);
	free(b->buckets);
	free(b);
}

int mbreaker_allow(mbreaker_t *b, weft_breaker_ticket_t *t)
{
	int rc = 0;
	if (!b || !t)
		return -EINVAL;
	pthread_mutex_lock(&b->mu);
	bring_up_to_date(b, clock_of(b));
	uint32_t valid = minus(b->total.requests, b->total.total_exclusions);
	if (b->state == WEFT_BREAKER_OPEN) {
		rc = -EBUSY;
	} else if (b->state == WEFT_BREAKER_HALF_OPEN && valid >= b->max_requests) {
		rc = -EAGAIN;
	} else {
		apply(&b->total, REQUEST);
		apply(&b->buckets[b->age % b->nbuckets], REQUEST);
	}
	/* a rejected call's ticket names no generation (they start at 1):
	 * reporting it counts nothing */
	*t = (weft_breaker_ticket_t){ rc ? 0 : b->generation, b->age, 0 };
	pthread_mutex_unlock(&b->mu);
	return rc;
}

int mbreaker_done(mbreaker_t *b, const weft_breaker_ticket_t *t, int rc)
{
	if (!b || !t)
		return -EINVAL;
	pthread_mutex_lock(&b->mu);
	int64_t now = clock_of(b);
	bring_up_to_date(b, now);
	if (t->generation == b->generation) {
		enum outcome o = FAILURE;
		if (b->s.is_excluded && b->s.is_excluded(rc, b->s.user))
			o = EXCLUSION;
		else if (b->s.is_successful ? b->s.is_successful(rc, b->s.user) : rc == 0)
			o = SUCCESS;
		/* a result counts in the bucket of its request, while that
		 * bucket is still in the window */
		if (t->age <= b->age && b->age - t->age < b->nbuckets) {
			apply(&b->total, o);
			apply(&b->buckets[t->age % b->nbuckets], o);
		}
		/* the state judges the result even when its bucket is gone */
		if (o == FAILURE && b->state == WEFT_BREAKER_CLOSED) {
			int trip = b->s.ready_to_trip ? b->s.ready_to_trip(&b->total, b->s.user)
						      : b->total.consecutive_failures > 5;
			if (trip)
				change_state(b, WEFT_BREAKER_OPEN, now);
		} else if (o == FAILURE && b->state == WEFT_BREAKER_HALF_OPEN) {
			change_state(b, WEFT_BREAKER_OPEN, now);
		} else if (o == SUCCESS && b->state == WEFT_BREAKER_HALF_OPEN &&
			   b->total.consecutive_successes >= b->max_requests) {
			change_state(b, WEFT_BREAKER_CLOSED, now);
		}
	}
	pthread_mutex_unlock(&b->mu);
	return 0;
}

int mbreaker_execute(mbreaker_t *b, int (*fn)(void *arg), void *arg, int *rc)
{
	weft_breaker_ticket_t t;
	if (!b || !fn)
		return -EINVAL;
	int e = mbreaker_allow(b, &t);
	if (e)
		return e;
	int r = fn(arg);
	if (rc)
		*rc = r;
	return mbreaker_done(b, &t, r);
}

int mbreaker_state(mbreaker_t *b)
{
	if (!b)
		return -EINVAL;
	pthread_mutex_lock(&b->mu);
	bring_up_to_date(b, clock_of(b));
	int s = b->state;
	pthread_mutex_unlock(&b->mu);
	return s;
}

int mbreaker_counts(mbreaker_t *b, weft_breaker_counts_t *out)
{
	if (!b || !out)
		return -EINVAL;
	pthread_mutex_lock(&b->mu);
	*out = b->total;
	pthread_mutex_unlock(&b->mu);
	return 0;
}

const char *mbreaker_name(const mbreaker_t *b)
{
	return b ? b->name : "";
}
