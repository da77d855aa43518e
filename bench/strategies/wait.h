/* bench/strategies/wait.h: helpers shared by the strategies that wrap a
 * queue without weft's contract (spin ring, ck_ring, moodycamel, TBB):
 * argument checks, deadlines, and the spin-wait of the spinning ones.
 * C and C++ (the peers are C++ wrappers); header-only, static inline.
 */
#ifndef WEFT_BENCH_STRATEGIES_WAIT_H
#define WEFT_BENCH_STRATEGIES_WAIT_H

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SW_FOREVER INT64_MAX

static inline int64_t sw_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void sw_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* One step of a spin-wait: PAUSE for the first 64 steps, then yield the
 * core on every step. A spinning strategy on 2 cores with 16 threads must
 * give the core to the thread it waits for (DESIGN.md: spinners steal the
 * core of the thread they wait for); yielding is what a competent spinning
 * queue does there. */
static inline void sw_spin(unsigned *steps)
{
	if (*steps < 64) {
		(*steps)++;
		sw_pause();
		return;
	}
	sched_yield();
}

/* Nanoseconds to sleep between polls of a call with no timed variant
 * (TBB's bounded queue): short, so a deadline is kept to a few tens of us. */
static inline void sw_nap(void)
{
	struct timespec ts = { 0, 20000 };

	nanosleep(&ts, NULL);
}

/* deadline passed? (a deadline of SW_FOREVER never does, without a clock read) */
static inline int sw_passed(int64_t deadline)
{
	return deadline != SW_FOREVER && sw_now() >= deadline;
}

/* the element pointer check of weft/chan.h: NULL only for elem_size 0 */
static inline int sw_bad_elem(const void *elem, size_t elem_size)
{
	return elem == NULL && elem_size != 0;
}

enum { SW_TRY, SW_UNTIL }; /* mode of an operation: try, or wait until a deadline */

#endif
