/* tests/unit/test_once.c: Once and OnceValue (weft_once_try).
 *
 * NULL arguments use nothing up; fn runs exactly once; the result of
 * once_try (errors, zero and positive values) is kept for every caller;
 * recursion from fn returns -EDEADLK; 64 racing threads: fn runs once and
 * every caller sees its result and its side effects. No durations are
 * asserted.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <weft/sync.h>

#include "check.h"

static atomic_int runs;

static void count_run(void *arg)
{
	(void)arg;
	atomic_fetch_add(&runs, 1);
}

static int ret_arg(void *arg)
{
	atomic_fetch_add(&runs, 1);
	return (int)(intptr_t)arg;
}

static void test_once_args(void)
{
	weft_once_t o = WEFT_ONCE_INIT;
	CHECK_EQ(weft_once(NULL, count_run, NULL), -EINVAL);
	CHECK_EQ(weft_once(&o, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_once_try(NULL, ret_arg, NULL), -EINVAL);
	CHECK_EQ(weft_once_try(&o, NULL, NULL), -EINVAL);
	/* nothing used up */
	atomic_store(&runs, 0);
	CHECK_EQ(weft_once(&o, count_run, NULL), 0);
	CHECK_EQ(atomic_load(&runs), 1);
	/* NULL is still -EINVAL on a done once */
	CHECK_EQ(weft_once(&o, NULL, NULL), -EINVAL);
	CHECK_EQ(weft_once_try(&o, NULL, NULL), -EINVAL);
}

static void test_once_basic(void)
{
	static weft_once_t so = WEFT_ONCE_INIT;
	atomic_store(&runs, 0);
	for (int i = 0; i < 5; i++)
		CHECK_EQ(weft_once(&so, count_run, NULL), 0);
	CHECK_EQ(atomic_load(&runs), 1);
	/* a once done by weft_once: once_try gets 0, fn not run */
	CHECK_EQ(weft_once_try(&so, ret_arg, (void *)(intptr_t)7), 0);
	CHECK_EQ(atomic_load(&runs), 1);
}

static void test_once_try_kept(void)
{
	static const int vals[] = {0, -EIO, -EINVAL, 42, 1, -1, INT32_MAX, INT32_MIN};
	for (unsigned i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		weft_once_t o = WEFT_ONCE_INIT;
		atomic_store(&runs, 0);
		void *arg = (void *)(intptr_t)vals[i];
		CHECK_EQ(weft_once_try(&o, ret_arg, arg), vals[i]);
		/* later callers, with other functions too, get the result */
		CHECK_EQ(weft_once_try(&o, ret_arg, (void *)(intptr_t)99), vals[i]);
		CHECK_EQ(weft_once_try(&o, ret_arg, arg), vals[i]);
		CHECK_EQ(atomic_load(&runs), 1);
		/* weft_once on it: 0, nothing run */
		CHECK_EQ(weft_once(&o, count_run, NULL), 0);
		CHECK_EQ(atomic_load(&runs), 1);
	}
}

/* ---- recursion ---- */

static weft_once_t rec_once = WEFT_ONCE_INIT;
static int rec_inner;

static void rec_fn(void *arg)
{
	(void)arg;
	rec_inner = weft_once(&rec_once, rec_fn, NULL);
}

static int rec_try_fn(void *arg)
{
	weft_once_t *o = arg;
	rec_inner = weft_once_try(o, rec_try_fn, o);
	return 5;
}

static void test_once_recursion(void)
{
	CHECK_EQ(weft_once(&rec_once, rec_fn, NULL), 0);
	CHECK_EQ(rec_inner, -EDEADLK);
	CHECK_EQ(weft_once(&rec_once, rec_fn, NULL), 0);

	weft_once_t o = WEFT_ONCE_INIT;
	rec_inner = 0;
	CHECK_EQ(weft_once_try(&o, rec_try_fn, &o), 5);
	CHECK_EQ(rec_inner, -EDEADLK);
	CHECK_EQ(weft_once_try(&o, rec_try_fn, &o), 5);
}

/* ---- 64 racing threads ---- */

#define NRACE 64

static struct {
	weft_once_t o;
	atomic_int go;       /* start gate */
	int payload;         /* plain: written by fn, read by every caller */
	int results[NRACE];
} Race;

static int race_fn(void *arg)
{
	(void)arg;
	atomic_fetch_add(&runs, 1);
	struct timespec ts = {0, 1000000};
	nanosleep(&ts, NULL); /* let the others arrive and sleep */
	Race.payload = 1234;
	return 77;
}

static void *race_thread(void *p)
{
	int i = (int)(intptr_t)p;
	while (!atomic_load_explicit(&Race.go, memory_order_acquire))
		sched_yield();
	int r = weft_once_try(&Race.o, race_fn, NULL);
	CHECK_EQ(Race.payload, 1234);
	Race.results[i] = r;
	return NULL;
}

static void test_once_race(void)
{
	for (int round = 0; round < 10; round++) {
		pthread_t t[NRACE];
		weft_once_t fresh = WEFT_ONCE_INIT;
		Race.o = fresh;
		Race.payload = 0;
		atomic_store(&Race.go, 0);
		atomic_store(&runs, 0);
		for (int i = 0; i < NRACE; i++)
			CHECK_EQ(pthread_create(&t[i], NULL, race_thread, (void *)(intptr_t)i), 0);
		atomic_store_explicit(&Race.go, 1, memory_order_release);
		for (int i = 0; i < NRACE; i++)
			pthread_join(t[i], NULL);
		CHECK_EQ(atomic_load(&runs), 1);
		for (int i = 0; i < NRACE; i++)
			CHECK_EQ(Race.results[i], 77);
	}
}

int main(void)
{
	test_watchdog(120);
	RUN(test_once_args);
	RUN(test_once_basic);
	RUN(test_once_try_kept);
	RUN(test_once_recursion);
	RUN(test_once_race);
	return 0;
}
