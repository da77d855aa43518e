/* lib/task.c: weft/task.h over the scheduler (internal/sched.c). */
#include <errno.h>
#include <time.h>

#include "internal/sched.h"
#include <weft/task.h>

int weft_go(void (*fn)(void *arg), void *arg)
{
	return weft_go_opts(fn, arg, NULL);
}

int weft_go_opts(void (*fn)(void *arg), void *arg, const weft_task_opts_t *o)
{
	if (!fn)
		return -EINVAL;
	return weft__task_go(fn, arg, o ? o->stack_size : 0, o ? o->name : NULL);
}

void weft_yield(void)
{
	weft__task_yield();
}

int weft_sleep_until(int64_t deadline)
{
	if (weft_now() >= deadline)
		return 0;
	if (weft__task_self())
		return weft__task_sleep_until(deadline);
	struct timespec ts = {deadline / 1000000000, deadline % 1000000000};
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) != 0)
		;
	return 0;
}

int weft_sleep(int64_t ns)
{
	if (ns <= 0)
		return 0;
	return weft_sleep_until(weft_deadline(ns));
}

int weft_in_task(void)
{
	return weft__task_self() != NULL;
}

uint64_t weft_task_id(void)
{
	return weft__task_id();
}

int weft_runtime_set_procs(unsigned n)
{
	return weft__runtime_set_procs(n);
}

int weft_runtime_set_stack_size(size_t size)
{
	return weft__runtime_set_stack_size(size);
}

void weft_runtime_dump(int fd)
{
	weft__runtime_dump(fd);
}

int weft_runtime_dump_on_sigquit(void)
{
	return weft__runtime_dump_on_sigquit();
}
