/* tests/unit/test_monitor.c: the one monitor (lib/internal/monitor.h), white
 * box: the pool's and the runtime's watches rest on it.
 *
 * The probe: a thread asleep in nanosleep (blocked outside weft) is judged
 * OFF_CPU; one that spins is ON_CPU; one whose sleep is noted as a sleep
 * inside weft is not OFF_CPU; the first look is FIRST; a gone thread is
 * UNKNOWN. Watches: the first look comes at once; a watch that returns a
 * tick is looked at again; one that says IDLE is not looked at until
 * kicked, and a kick is never lost (kick right after IDLE, many rounds);
 * after remove no look runs. No durations are asserted (the probe's
 * windows are long enough that the verdicts do not depend on load: the
 * sleeper sleeps the whole window, the spinner never sleeps).
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

#include <weft/common.h>

#include "check.h"
#include "internal/monitor.h"

static atomic_int stop;
static atomic_uint tid_of[2];

static void *sleeper(void *arg)
{
	(void)arg;
	atomic_store(&tid_of[0], (unsigned)gettid());
	while (!atomic_load(&stop)) {
		/* long sleeps: its few wake-ups wait little for a CPU (that
		 * wait counts as busy), however loaded the machine */
		struct timespec ts = {0, 50000000};
		nanosleep(&ts, NULL);
	}
	return NULL;
}

static void *spinner(void *arg)
{
	(void)arg;
	atomic_store(&tid_of[1], (unsigned)gettid());
	while (!atomic_load(&stop))
		;
	return NULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void test_probe(void)
{
	pthread_t a, b;
	atomic_store(&stop, 0);
	CHECK_EQ(pthread_create(&a, NULL, sleeper, NULL), 0);
	CHECK_EQ(pthread_create(&b, NULL, spinner, NULL), 0);
	while (!atomic_load(&tid_of[0]) || !atomic_load(&tid_of[1]))
		sched_yield();
	weft__probe_t ps, pb, pn;
	weft__probe_init(&ps);
	weft__probe_init(&pb);
	weft__probe_init(&pn);
	uint32_t ts = atomic_load(&tid_of[0]), tb = atomic_load(&tid_of[1]);
	CHECK_EQ(weft__probe_look(&ps, ts, 0, weft_now()), WEFT__PROBE_FIRST);
	CHECK_EQ(weft__probe_look(&pb, tb, 0, weft_now()), WEFT__PROBE_FIRST);
	CHECK_EQ(weft__probe_look(&pn, ts, 0, weft_now()), WEFT__PROBE_FIRST);
	sleep_ms(200);
	CHECK_EQ(weft__probe_look(&ps, ts, 0, weft_now()), WEFT__PROBE_OFF_CPU);
	CHECK_EQ(weft__probe_look(&pb, tb, 0, weft_now()), WEFT__PROBE_ON_CPU);
	/* the same sleeper, its sleeps noted as inside weft (all 200 ms) */
	CHECK(weft__probe_look(&pn, ts, 400000000ull, weft_now()) != WEFT__PROBE_OFF_CPU);
	/* reset: judged again from the next reading */
	weft__probe_reset(&ps);
	CHECK_EQ(weft__probe_look(&ps, ts, 0, weft_now()), WEFT__PROBE_FIRST);
	atomic_store(&stop, 1);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	/* gone: its schedstat cannot be read */
	weft__probe_close(&ps);
	CHECK_EQ(weft__probe_look(&ps, ts, 0, weft_now()), WEFT__PROBE_UNKNOWN);
	weft__probe_close(&ps);
	weft__probe_close(&pb);
	weft__probe_close(&pn);
}

struct counted {
	weft__watch_t w;
	atomic_int looks;
	atomic_int idle; /* 1: answer IDLE */
};

static int64_t count_look(weft__watch_t *w, int64_t now)
{
	(void)now;
	struct counted *c = (struct counted *)w;
	atomic_fetch_add(&c->looks, 1);
	return atomic_load(&c->idle) ? WEFT__WATCH_IDLE : 1000000; /* 1 ms */
}

static void wait_looks(struct counted *c, int at_least)
{
	while (atomic_load(&c->looks) < at_least)
		sleep_ms(1);
}

static void test_watch(void)
{
	static struct counted a, b;
	a.w.look = b.w.look = count_look;
	atomic_store(&b.idle, 1);
	CHECK_EQ(weft__monitor_add(&a.w), 0);
	CHECK_EQ(weft__monitor_add(&b.w), 0);
	wait_looks(&a, 5); /* ticking: looked at again and again */
	wait_looks(&b, 1); /* the first look at once, then idle */
	int seen = atomic_load(&b.looks);
	/* idle: not looked at until kicked (a kick each round, at once after
	 * its look said IDLE: none may be lost, or the test hangs) */
	for (int i = 1; i <= 200; i++) {
		weft__monitor_kick(&b.w);
		wait_looks(&b, seen + i);
	}
	sleep_ms(20);
	CHECK_EQ(atomic_load(&b.looks), seen + 200);
	weft__monitor_remove(&a.w);
	int after = atomic_load(&a.looks);
	sleep_ms(20);
	CHECK_EQ(atomic_load(&a.looks), after);
	/* removed: a kick is harmless and looks at nothing */
	weft__monitor_remove(&b.w);
	weft__monitor_kick(&b.w);
	sleep_ms(10);
	CHECK_EQ(atomic_load(&b.looks), seen + 200);
}

int main(void)
{
	test_watchdog(120);
	RUN(test_probe);
	RUN(test_watch);
	return 0;
}
