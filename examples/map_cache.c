/* map_cache: the seed's cache, written with weft's map. In Go:
 *
 *	var cache sync.Map
 *
 *	func getOrCompute(key string) Result {
 *		if v, ok := cache.Load(key); ok {
 *			return v.(Result)
 *		}
 *		v := expensiveLookup(key)
 *		actual, _ := cache.LoadOrStore(key, v)
 *		return actual.(Result)
 *	}
 *
 * Under a burst of misses for one key, every goroutine that misses runs
 * expensiveLookup and all but one result is thrown away (the thundering
 * herd x/sync/singleflight exists for). weft_map_get_or_compute runs the
 * lookup at most once at a time per key; the callers that arrive meanwhile
 * wait (parked, not spinning) and share its value, or its error, which is
 * not cached: the next call tries again.
 *
 * 64 threads each ask for the same 32 keys ("user:0" .. "user:31") in
 * their own order; a lookup takes 2 ms and allocates its result, which
 * the map owns (value_free frees what leaves it). The lookup of one key
 * fails the first time (a transient error): the callers waiting on that
 * lookup all get the error, and a later call computes it again. Printed:
 * how many lookups ran (32 keys + 1 retry = 33), what the seed's pattern
 * does with the same threads and keys (one lookup per miss), and that
 * every caller got the value stored for its key.
 */
#include <weft.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NTHREADS 64
#define NKEYS 32
#define LOOKUP_NS 2000000

struct result {
	char key[16];
	long answer;
};

static atomic_int lookups, flaky_failed, results_freed;

static void sleep_ns(long ns)
{
	struct timespec ts = { ns / 1000000000, ns % 1000000000 };
	nanosleep(&ts, NULL);
}

/* The expensive lookup: 2 ms, then a fresh result (the map's from now on). */
static int expensive_lookup(const void *key, size_t klen, void **value, void *user)
{
	(void)user;
	atomic_fetch_add(&lookups, 1);
	sleep_ns(LOOKUP_NS);
	if (klen == 6 && memcmp(key, "user:7", 6) == 0 && !atomic_exchange(&flaky_failed, 1))
		return -EAGAIN; /* transient: not cached */
	struct result *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	memcpy(r->key, key, klen < sizeof r->key - 1 ? klen : sizeof r->key - 1);
	r->answer = (long)klen * 1000 + ((const char *)key)[klen - 1];
	*value = r;
	return 0;
}

static void result_free(void *value, void *user)
{
	(void)user;
	atomic_fetch_add(&results_freed, 1);
	free(value);
}

static weft_map_t *cache;
static atomic_int wrong, errors_seen;

/* The seed's getOrCompute over weft's map: one lookup per key at a time. */
static struct result *get_or_compute(const char *key)
{
	void *v;
	for (;;) {
		int rc = weft_map_get_or_compute(cache, key, strlen(key), expensive_lookup, NULL, &v);
		if (rc >= 0)
			return v;
		atomic_fetch_add(&errors_seen, 1); /* shared by the lookup's waiters */
	}
}

static void *caller(void *arg)
{
	unsigned seed = (unsigned)(uintptr_t)arg * 2654435761u + 1;
	int order[NKEYS];
	for (int i = 0; i < NKEYS; i++)
		order[i] = i;
	for (int i = NKEYS - 1; i > 0; i--) { /* each thread its own order */
		int j = (int)(rand_r(&seed) % (unsigned)(i + 1)), t = order[i];
		order[i] = order[j];
		order[j] = t;
	}
	/* sections: the results we read stay valid while we read them */
	weft_map_read_begin(cache);
	for (int i = 0; i < NKEYS; i++) {
		char key[16];
		snprintf(key, sizeof key, "user:%d", order[i]);
		struct result *r = get_or_compute(key);
		if (strcmp(r->key, key) != 0)
			atomic_fetch_add(&wrong, 1);
	}
	weft_map_read_end(cache);
	return NULL;
}

/* The seed's pattern as written (Load, compute, LoadOrStore), for the count. */
static atomic_int seed_lookups;
static weft_map_t *seed_cache;

static void *seed_caller(void *arg)
{
	(void)arg;
	for (int i = 0; i < NKEYS; i++) {
		char key[16];
		void *v;
		snprintf(key, sizeof key, "user:%d", i);
		if (weft_map_load(seed_cache, key, strlen(key), &v) == 1)
			continue;
		atomic_fetch_add(&seed_lookups, 1);
		sleep_ns(LOOKUP_NS);
		weft_map_load_or_store(seed_cache, key, strlen(key), (void *)(uintptr_t)(i + 1), &v);
	}
	return NULL;
}

static int run(void *(*fn)(void *))
{
	pthread_t t[NTHREADS];
	for (int i = 0; i < NTHREADS; i++)
		if (pthread_create(&t[i], NULL, fn, (void *)(uintptr_t)i) != 0)
			return -1;
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(t[i], NULL);
	return 0;
}

int main(void)
{
	weft_map_opts_t o = { .value_free = result_free };
	if (weft_map_create(&cache, &o) != 0 || weft_map_create(&seed_cache, NULL) != 0)
		return 1;
	int64_t t0 = weft_now();
	if (run(caller) != 0)
		return 1;
	int64_t ms = (weft_now() - t0) / 1000000;
	printf("get_or_compute: %d threads x %d keys: %d lookups (%d keys + 1 retry after a "
	       "transient error, seen by %d caller(s)) in %lld ms\n",
	       NTHREADS, NKEYS, atomic_load(&lookups), NKEYS, atomic_load(&errors_seen),
	       (long long)ms);
	if (run(seed_caller) != 0)
		return 1;
	printf("the seed's Load + compute + LoadOrStore: %d lookups for the same %d keys\n",
	       atomic_load(&seed_lookups), NKEYS);
	printf("every caller got its key's value: %s; cache holds %zu keys\n",
	       atomic_load(&wrong) ? "NO" : "yes", weft_map_len(cache));
	weft_map_destroy(cache);
	weft_map_destroy(seed_cache);
	printf("results freed at destroy: %d\n", atomic_load(&results_freed));
	return atomic_load(&wrong) || atomic_load(&lookups) != NKEYS + 1 ||
	       atomic_load(&results_freed) != NKEYS;
}
