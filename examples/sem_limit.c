/* sem_limit: bound the work in flight with a weighted semaphore, as in Go's
 *
 *	func processWithLimit(ctx context.Context, items []Item, limit int64) error {
 *		sem := semaphore.NewWeighted(limit)
 *		g, ctx := errgroup.WithContext(ctx)
 *		for _, item := range items {
 *			if err := sem.Acquire(ctx, 1); err != nil {
 *				break // a task failed and canceled ctx
 *			}
 *			g.Go(func() error {
 *				defer sem.Release(1)
 *				return process(item)
 *			})
 *		}
 *		return g.Wait()
 *	}
 *
 * The token is taken before the task is started and given back by the task
 * when it is done, so at most `limit` items are processed at once and only
 * a handful of worker threads are ever needed, however many items there
 * are (the group reuses its threads from task to task). Each task tracks how many items are in flight with
 * an atomic counter and records the maximum it ever saw; the program prints
 * it and fails if it ever exceeded the limit.
 */
#include <weft.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NITEMS 10000
#define LIMIT 5

struct limiter {
	weft_sem_t sem;
	atomic_int in_flight; /* items being processed right now */
	atomic_int max_seen;  /* the most ever in flight at once */
	uint64_t *out;        /* out[i]: the result of item i */
};

struct item {
	struct limiter *lim;
	int idx;
};

/* The "work" of one item: a few thousand cycles of arithmetic. */
static uint64_t compute(int idx)
{
	uint64_t x = (uint64_t)idx + 1;
	int i;

	for (i = 0; i < 2000; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
	}
	return x | 1; /* never 0: 0 marks an item nobody processed */
}

/* Processing an item: a 50 us wait (a stand-in for I/O: a request to a
 * backend that allows only LIMIT at a time), then the computation. */
static uint64_t process(int idx)
{
	struct timespec io = { 0, 50 * 1000 };

	nanosleep(&io, NULL);
	return compute(idx);
}

/* Raise *max to at least v (a CAS loop; relaxed is enough, it is a
 * statistic read after weft_group_wait, which orders it). */
static void atomic_max(atomic_int *max, int v)
{
	int cur = atomic_load_explicit(max, memory_order_relaxed);

	while (cur < v && !atomic_compare_exchange_weak_explicit(
				  max, &cur, v, memory_order_relaxed, memory_order_relaxed))
		;
}

/* The task: runs with a token held; gives it back when done (Go's
 * "defer sem.Release(1)"). */
static int process_item(weft_ctx_t *ctx, void *arg)
{
	struct item *it = arg;
	struct limiter *lim = it->lim;
	int now = atomic_fetch_add(&lim->in_flight, 1) + 1;

	(void)ctx;
	atomic_max(&lim->max_seen, now);
	lim->out[it->idx] = process(it->idx);
	atomic_fetch_sub(&lim->in_flight, 1);
	/* Leave the count before the token: in_flight never exceeds LIMIT. */
	weft_sem_release(&lim->sem, 1);
	return 0;
}

/* processWithLimit: every item processed, at most limit at a time.
 * Returns 0 or the first error; *max gets the largest concurrency seen. */
static int process_with_limit(uint64_t *out, int n, int64_t limit, int *max)
{
	struct limiter lim = { .out = out };
	struct item *items;
	weft_group_t *g;
	weft_ctx_t *ctx;
	int i, rc, err = 0;

	items = calloc((size_t)n, sizeof(*items));
	if (!items)
		return -ENOMEM;
	weft_sem_init(&lim.sem, limit);
	atomic_init(&lim.in_flight, 0);
	atomic_init(&lim.max_seen, 0);
	rc = weft_group_create(&g, NULL, &ctx);
	if (rc) {
		free(items);
		return rc;
	}

	for (i = 0; i < n; i++) {
		items[i] = (struct item){ .lim = &lim, .idx = i };
		/* Acquire before starting: blocks while LIMIT items run; fails
		 * at once if a task failed and canceled the group's context. */
		err = weft_sem_acquire_ctx(&lim.sem, 1, ctx);
		if (err)
			break;
		err = weft_group_go(g, process_item, &items[i]);
		if (err) {
			weft_sem_release(&lim.sem, 1);
			break;
		}
	}

	/* Wait for the tasks started; the first task error wins over ours. */
	rc = weft_group_wait(g);
	if (rc)
		err = rc;
	weft_group_destroy(g);
	weft_sem_destroy(&lim.sem);
	free(items);
	*max = atomic_load(&lim.max_seen);
	return err;
}

int main(void)
{
	uint64_t *out = calloc(NITEMS, sizeof(*out));
	int i, done = 0, max = 0, rc;

	if (!out)
		return 1;
	rc = process_with_limit(out, NITEMS, LIMIT, &max);
	if (rc) {
		printf("process_with_limit: %s (%d)\n", weft_strerror(rc), rc);
		free(out);
		return 1;
	}
	/* Every item processed exactly once, with the right result. */
	for (i = 0; i < NITEMS; i++)
		done += out[i] == compute(i);
	free(out);

	printf("processed %d items, max concurrency %d (limit %d)\n", done, max, LIMIT);
	if (done != NITEMS || max < 1 || max > LIMIT) {
		printf("FAIL: expected %d items and 1 <= max <= %d\n", NITEMS, LIMIT);
		return 1;
	}
	return 0;
}
