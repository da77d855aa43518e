/* tests/common/participant.h: the threads of a conformance or stress test,
 * or tasks. While g_tasks is set (the test runs the "tasks" strategy:
 * weft's channels, rt = &chan_runtime_tasks) every participant the test
 * starts is a task (weft/task.h) instead of a thread: the suites then check
 * the same contracts with tasks handing off to tasks and to the main
 * thread. A task's handle is its struct task_run, kept in the pthread_t.
 *
 * Only weft's runtime is used here, not struct chan_runtime's group: the
 * tests' participants also sleep (weft_sleep) and wait on weft and pthread
 * primitives, which park a task but would hold the carrier thread of any
 * other runtime's user-space thread. The one other runtime, boost_fiber's
 * fibers, is skipped by these suites anyway (CHAN_CAP_BENCH_ONLY). */
#ifndef WEFT_TEST_PARTICIPANT_H
#define WEFT_TEST_PARTICIPANT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <weft/sync.h>
#include <weft/task.h>

#include "check.h"
#include "strategy.h"

static bool g_tasks;

/* Participants of what follows run as tasks (on) or threads. */
static inline void participants_tasks(bool on)
{
	g_tasks = on;
}

/* Participants of what follows run as tasks if s asks for it. */
static inline void participants_for(const struct chan_strategy *s)
{
	g_tasks = s->rt == &chan_runtime_tasks;
}

struct task_run {
	void *(*fn)(void *);
	void *arg;
	weft_wg_t done;
};

static void task_run_main(void *p)
{
	struct task_run *r = p;

	r->fn(r->arg);
	weft_wg_done(&r->done);
}

/* Start fn(arg); stack 0: the default size. */
static inline void participant_start(pthread_t *t, size_t stack, void *(*fn)(void *), void *arg)
{
	if (g_tasks) {
		struct task_run *r = calloc(1, sizeof *r);
		weft_task_opts_t o = { .stack_size = stack, .name = "participant" };

		CHECK(r != NULL);
		r->fn = fn;
		r->arg = arg;
		weft_wg_init(&r->done);
		weft_wg_add(&r->done, 1);
		CHECK_EQ(weft_go_opts(task_run_main, r, &o), 0);
		*t = (pthread_t)(uintptr_t)r;
		return;
	}
	pthread_attr_t a;

	CHECK_EQ(pthread_attr_init(&a), 0);
	if (stack)
		CHECK_EQ(pthread_attr_setstacksize(&a, stack), 0);
	CHECK_EQ(pthread_create(t, &a, fn, arg), 0);
	pthread_attr_destroy(&a);
}

/* Drop-ins for pthread_create (attr must be NULL) and pthread_join (ret
 * must be NULL) in programs whose participants may be tasks. */
static inline int participant_create(pthread_t *t, const pthread_attr_t *attr,
				     void *(*fn)(void *), void *arg)
{
	CHECK(attr == NULL);
	participant_start(t, 0, fn, arg);
	return 0;
}

static inline void participant_join(pthread_t t);

static inline int participant_join_ret(pthread_t t, void **ret)
{
	CHECK(ret == NULL);
	participant_join(t);
	return 0;
}

static inline void participant_join(pthread_t t)
{
	if (g_tasks) {
		struct task_run *r = (struct task_run *)(uintptr_t)t;

		CHECK_EQ(weft_wg_wait(&r->done), 0);
		free(r);
		return;
	}
	CHECK_EQ(pthread_join(t, NULL), 0);
}

#endif
