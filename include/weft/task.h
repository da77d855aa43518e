/* weft/task.h: tasks, an M:N runtime. A task is a user-space thread with
 * its own stack; tasks run on a few carrier threads (one per online CPU by
 * default), and every blocking weft call made from a task parks the task,
 * not the thread: its carrier switches to the next runnable task in user
 * space (a few ns) instead of sleeping in the kernel (microseconds). A
 * hand-off between two tasks (a send to a parked receiver) runs the
 * receiver next on the sender's carrier, as Go's runnext does.
 *
 * Every weft call works the same from a task and from a plain thread, and
 * tasks and threads hand off to each other through the same waiters (a
 * thread receiving what a task sent, a task waiting on a WaitGroup a thread
 * completes, ...).
 *
 * What holds a carrier. Tasks are cooperative: a task keeps its carrier
 * until it blocks in weft, yields (weft_yield), sleeps (weft_sleep) or
 * returns. A task that computes for long, spins, or blocks outside weft (a
 * system call, a pthread mutex, sleep(3), blocking I/O) holds its carrier.
 * The tasks queued behind it do not starve: a monitor thread looks at the
 * carriers once a millisecond while any is busy, and one that has not
 * switched since its last look while tasks wait behind it is held; then an
 * idle carrier takes those tasks, or, with none idle, the monitor starts
 * another carrier (beyond WEFT_PROCS: Go starts another thread for a P
 * whose thread is in a system call; 64 in all). A carrier held by a task
 * blocked outside weft (off the CPU by the kernel's schedstat: the same
 * judge the pool's monitor uses) is replaced at the next look; one held by
 * a task that computes gets one more carrier every 2 ms at most (more
 * threads than cores only crowd them),
 * which retires after about 100 ms without a held carrier. So a held carrier delays the tasks behind it by
 * about 1-2 ms, once; the running task itself is never preempted. Prefer
 * plain threads (or weft_pool) for long blocking work all the same: each
 * held carrier is a kernel thread, and CPU-bound tasks beyond the cores
 * share them through the kernel's scheduler.
 *
 * Placement. A task readied by a task (a hand-off: a send to a parked
 * receiver) runs next on the readier's carrier. An idle carrier takes only
 * work that has waited (the tasks queued ~20 us earlier still queued, or a
 * carrier that has not switched): tasks that hand off to each other all the
 * time run on one core, where a hand-off is a switch, instead of paying a
 * cache-line transfer between cores (about 250 ns on the 2-core VM this was
 * measured on) for every hand-off.
 *
 * Runtime. It starts at the first weft_go and runs until the process
 * exits; with no runnable task its carriers spin briefly, then sleep on a
 * futex (about zero CPU while idle). weft_in_task never starts it.
 *
 * Stacks. Each task has an mmap'd stack, committed lazily by the kernel (a
 * parked task costs the pages its stack touched, 4-8 KiB for most), with a
 * guard page below it: a stack overflow into the guard page ends the
 * process with a message naming the task ("weft: task N ("name")
 * overflowed its stack of S bytes"), not silent corruption. Past 16384
 * live stacks (each guard page costs a kernel mapping, and a process has
 * vm.max_map_count, 65530 by default), new stacks carry a canary word at
 * their low end instead, checked whenever the task switches out: an
 * overflow is then found at the task's next park (same message, "found at
 * a switch"), if it did not crash first. Freed stacks of the default size
 * are kept for reuse.
 *   default stack: 64 KiB (WEFT_STACK_SIZE in the environment, or
 *   weft_runtime_set_stack_size); at least 16 KiB (smaller sizes are
 *   raised), at most 1 GiB (-ENOMEM); rounded up to pages.
 *
 * Thread-local storage, errno included, belongs to the carrier: a task
 * may resume on another carrier after any call that can block, so it must
 * not keep a pointer to a thread-local across one. A process with running
 * tasks must not fork (except to exec). The same goes for the thread's
 * pthread state: pthread_self() in a task is its carrier, and a task's
 * pthread_cleanup_push must be popped before any weft call that can block
 * (glibc keeps the handlers' chain per thread).
 *
 * A task that ends its carrier thread. pthread_exit in a task ends the
 * carrier thread it runs on, and so does a cancel of that carrier
 * (pthread_cancel(pthread_self()) in the task, or another thread's cancel
 * of it) acted on at a cancellation point the task reaches. glibc unwinds
 * the task's stack up to the task's first frame (running the task's own
 * cleanup handlers and, in code built with -fexceptions, its cleanups on
 * the way), then jumps to the carrier thread's start. The runtime survives
 * it: the carrier's end is noticed there (a thread-specific-data
 * destructor), a replacement thread takes over the carrier (its queue,
 * its timers: no other task is lost, parked or queued, and the runtime
 * keeps its carriers), the task is gone (its fn never returns, its stack
 * is freed), and weft_pool, weft_group and weft_pipeline count it as their
 * job's failure (-EOWNERDEAD; see their headers). What the task itself was
 * to do at its end (a WaitGroup done, a send) never happens: for a plain
 * weft_go task that is the caller's to handle, as for a thread. Any other
 * task on that carrier is untouched. A cancel is acted on only at a
 * cancellation point in the task's own code: weft's waits (a task parks,
 * a carrier sleeps on a futex) are not cancellation points, and a cancel
 * of a carrier whose task parks is acted on in whichever task reaches a
 * cancellation point on it next. (Under ThreadSanitizer, pthread_exit in a
 * task stops the process: its interceptor insists on running on the
 * thread's own stack; a cancel works.)
 *
 * A task that crashes (SIGSEGV, SIGBUS, abort, ...) ends the whole
 * process, like an unrecovered panic in Go: weft does not catch signals to
 * recover from them (its SIGSEGV handler below only names a task that
 * overflowed its stack before the process ends).
 *
 * Supported on x86-64 (weft's own context switch: six registers and the
 * stack pointer, no system call); elsewhere weft_go returns -ENOSYS.
 */
#ifndef WEFT_TASK_H
#define WEFT_TASK_H

#include <stddef.h>
#include <stdint.h>

#include <weft/common.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct weft_task_opts {
	size_t stack_size; /* 0: the runtime's default (see above) */
	const char *name;  /* copied (up to 31 bytes); for dumps and debuggers */
} weft_task_opts_t;

/* Start a task running fn(arg). Thread-safe; callable from tasks and
 * threads; never blocks. 0, -ENOMEM (no memory for its stack, or
 * stack_size over 1 GiB), -EAGAIN (a carrier thread could not start),
 * -EINVAL (fn NULL), -ENOSYS (no context switch for this CPU). */
WEFT_API int weft_go(void (*fn)(void *arg), void *arg);
WEFT_API int weft_go_opts(void (*fn)(void *arg), void *arg, const weft_task_opts_t *o);

/* Let other tasks run (the caller goes to the back of its carrier's
 * queue; it carries on at once if nothing else is runnable). In a plain
 * thread: sched_yield(). */
WEFT_API void weft_yield(void);

/* Park a task until the time has passed (never early): 0. A plain thread
 * sleeps (nanosleep). ns <= 0 (a deadline already passed) returns at once. */
WEFT_API int weft_sleep(int64_t ns);
WEFT_API int weft_sleep_until(int64_t deadline);

/* 1 inside a task, else 0. Never starts the runtime. */
WEFT_API int weft_in_task(void);

/* The calling task's id (1, 2, ... in start order), or 0 in a thread. */
WEFT_API uint64_t weft_task_id(void);

/* Carrier threads (Go's GOMAXPROCS); 0: the online CPUs. The default is
 * WEFT_PROCS from the environment, else the online CPUs. May be called
 * before or after the runtime starts: more carriers start at once; fewer
 * make the extra carriers hand back their queues as their running tasks
 * switch out. 0, or -EINVAL (over 256), -ENOMEM/-EAGAIN (a carrier could
 * not start). */
WEFT_API int weft_runtime_set_procs(unsigned n);

/* The default stack size of later tasks (0: back to 64 KiB). 0, or
 * -ENOMEM over 1 GiB. */
WEFT_API int weft_runtime_set_stack_size(size_t size);

/* Write every live task to fd, one line each, as Go's goroutine dump:
 * its id, name, state (running, runnable, waiting) and, when waiting, in
 * what (a weft call, a weft word, weft_sleep) with the address it waits on
 * and how long until its deadline; then its stack size. Carriers come
 * first (what each runs, its queue). A snapshot taken without stopping
 * anything (states may change while it prints); it blocks spawns and
 * exits for the moment each line takes. Thread-safe; from a task too. */
WEFT_API void weft_runtime_dump(int fd);

/* Opt in: SIGQUIT (Ctrl-\) prints weft_runtime_dump to stderr (from the
 * runtime's monitor thread, within a millisecond) and the process goes
 * on, instead of dying. 0, or -errno from sigaction. */
WEFT_API int weft_runtime_dump_on_sigquit(void);

#ifdef __cplusplus
}
#endif

#endif /* WEFT_TASK_H */
