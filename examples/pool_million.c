/* pool_million: "process 1 million items with at most 100 concurrent
 * workers: what can go wrong?", answered with a weft pool.
 *
 * - Memory: the producer does not build a million jobs up front; a separate
 *   producer thread streams them into a pool whose queue holds 200, and a
 *   full queue blocks it (backpressure). Peak RSS stays the same for 1
 *   million items or 10 million.
 * - Results: each job sends its result into a weft channel of 200 slots
 *   that main drains while the producer is still submitting; main must not
 *   submit itself (if it blocked on a full queue while the workers blocked
 *   on the full results channel, nobody would move).
 * - Failures: every 10,000th item fails once with a transient error and is
 *   retried once inside its job (100 items); every 100,000th (ending in
 *   99999) fails for good: its job returns the error, the pool counts it
 *   and passes it to on_error, which records it (10 items). A failure never
 *   stops a worker, and nothing is silently dropped: every item comes back
 *   to main as a result, ok or failed.
 * - Exactly once: main checks that every item came back once, with the
 *   right value, and that the pool's counts agree.
 *
 * The job's arg is its item number + 1 (no allocation per job); the
 * channel and counters it needs are in the file-scope `app`.
 */
#include <weft.h>
#include <weft/pool.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#define NITEMS 1000000
#define NWORKERS 100
#define QUEUE 200
#define MAX_REPORTED 64

struct result {
	uint64_t id, value;
	int err; /* 0, or the permanent error */
};

static struct {
	weft_pool_t *pool;
	weft_chan_t *results;
	atomic_uint_fast64_t retried;  /* transient failures retried */
	atomic_uint_fast64_t reported; /* on_error calls */
	uint64_t failed_ids[MAX_REPORTED];
	int submit_err; /* the producer's, if any */
} app;

static uint64_t mix(uint64_t x) /* the "processing" of one item */
{
	x += 0x9e3779b97f4a7c15ULL;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	return x ^ (x >> 31);
}

/* One attempt at item id: 0, -EAGAIN (transient: every 10,000th item, on
 * its first attempt) or -EIO (permanent: ids ending in 99999). */
static int attempt(uint64_t id, int n, uint64_t *value)
{
	if (id % 100000 == 99999)
		return -EIO;
	if (id % 10000 == 0 && n == 1)
		return -EAGAIN;
	*value = mix(id);
	return 0;
}

static int process(void *arg)
{
	uint64_t id = (uint64_t)(uintptr_t)arg - 1;
	struct result r = { id, 0, 0 };

	r.err = attempt(id, 1, &r.value);
	if (r.err == -EAGAIN) { /* retry a transient failure once */
		atomic_fetch_add(&app.retried, 1);
		r.err = attempt(id, 2, &r.value);
	}
	int rc = weft_chan_send(app.results, &r);

	return r.err ? r.err : rc; /* nonzero: counted, and on_error is called */
}

static void on_error(weft_job_fn fn, void *arg, int rc, void *user)
{
	uint_fast64_t k = atomic_fetch_add(&app.reported, 1);

	(void)fn;
	(void)rc;
	(void)user;
	if (k < MAX_REPORTED)
		app.failed_ids[k] = (uint64_t)(uintptr_t)arg - 1;
}

static void *producer(void *unused)
{
	(void)unused;
	for (uint64_t i = 0; i < NITEMS; i++) {
		int rc = weft_pool_submit(app.pool, process, (void *)(uintptr_t)(i + 1));

		if (rc) {
			app.submit_err = rc;
			break;
		}
	}
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	weft_pool_opts_t opts = { .workers = NWORKERS, .queue_capacity = QUEUE,
				  .on_error = on_error, .name = "million" };
	unsigned char *seen = calloc(NITEMS, 1);
	uint64_t ok = 0, failed = 0, bad = 0, i;
	weft_pool_stats_t st;
	struct rusage ru;
	pthread_t prod;
	int64_t t0, dt;
	int rc;

	if (!seen)
		return 1;
	if ((rc = weft_chan_create(&app.results, sizeof(struct result), QUEUE)) != 0 ||
	    (rc = weft_pool_create(&app.pool, &opts)) != 0) {
		printf("create: %s (%d)\n", weft_strerror(rc), rc);
		return 1;
	}
	t0 = weft_now();
	if (pthread_create(&prod, NULL, producer, NULL) != 0)
		return 1;
	for (i = 0; i < NITEMS; i++) {
		struct result r;

		if ((rc = weft_chan_recv(app.results, &r)) != 0) {
			printf("recv: %s (%d)\n", weft_strerror(rc), rc);
			return 1;
		}
		if (r.id >= NITEMS || seen[r.id]++ ||
		    (r.err == 0 && r.value != mix(r.id)) || (r.err && r.err != -EIO))
			bad++;
		else if (r.err)
			failed++;
		else
			ok++;
	}
	pthread_join(prod, NULL);
	dt = weft_now() - t0;
	/* every job has sent its result; wait for on_error to have run too */
	weft_pool_wait(app.pool);
	weft_pool_stats(app.pool, &st);
	rc = weft_pool_shutdown(app.pool, WEFT_POOL_DRAIN);
	weft_pool_destroy(app.pool);
	weft_chan_destroy(app.results);
	free(seen);
	getrusage(RUSAGE_SELF, &ru);

	uint64_t reported = atomic_load(&app.reported);

	printf("processed %llu items in %lld ms: %.2fM items/s, %.0f ns per item\n",
	       (unsigned long long)(ok + failed), (long long)(dt / 1000000),
	       NITEMS / (dt / 1e9) / 1e6, (double)dt / NITEMS);
	printf("failures: %llu transient (retried once, then succeeded), "
	       "%llu permanent (reported via on_error):",
	       (unsigned long long)atomic_load(&app.retried), (unsigned long long)reported);
	qsort(app.failed_ids, reported < MAX_REPORTED ? reported : MAX_REPORTED,
	      sizeof(uint64_t), cmp_u64);
	for (i = 0; i < reported && i < MAX_REPORTED; i++)
		printf(" %llu", (unsigned long long)app.failed_ids[i]);
	printf("\n");
	printf("pool: %d workers, queue %d; submits that blocked %llu, futex wakes %llu "
	       "(%.4f per item)\n",
	       NWORKERS, QUEUE, (unsigned long long)st.submits_blocked,
	       (unsigned long long)st.futex_wakes, (double)st.futex_wakes / NITEMS);
	printf("peak RSS: %.1f MB\n", ru.ru_maxrss / 1024.0);

	if (app.submit_err || rc || bad || ok + failed != NITEMS || failed != reported ||
	    reported != NITEMS / 100000 || atomic_load(&app.retried) != NITEMS / 10000 ||
	    st.submitted != NITEMS || st.completed != NITEMS || st.failed != reported) {
		printf("FAIL: submit %d, shutdown %d, %llu bad results, ok %llu + failed %llu, "
		       "pool submitted %llu completed %llu failed %llu\n",
		       app.submit_err, rc, (unsigned long long)bad, (unsigned long long)ok,
		       (unsigned long long)failed, (unsigned long long)st.submitted,
		       (unsigned long long)st.completed, (unsigned long long)st.failed);
		return 1;
	}
	return 0;
}
