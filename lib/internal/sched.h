/* lib/internal/sched.h: the task runtime's scheduler, as the rest of weft
 * sees it: the parking layer's second back end (park.c calls these when
 * the caller is a task), and the calls behind weft/task.h (lib/task.c).
 *
 * A task is a user-space thread with its own stack (stack top: the task
 * struct; below it, the frames), run by carrier threads, one per CPU by
 * default. A task that blocks in weft saves its context and its carrier
 * runs the next runnable task; whoever ends the wait readies the task
 * (weft__task_ready), which puts it on the readier's carrier (as Go's
 * runnext when the readier is a task: a hand-off runs next, on the same
 * core). See sched.c for the queues, stealing, timers and idling.
 */
#ifndef WEFT_INTERNAL_SCHED_H
#define WEFT_INTERNAL_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal/park.h"

typedef struct weft__task weft__task_t;

/* The running task, or NULL on a plain thread (a carrier's own loop
 * included). Never inlined: a task may resume on another carrier after any
 * park, so nothing thread-local may be cached across one. */
weft__task_t *weft__task_self(void);

/* Make a parked task runnable. Called exactly once per park, by whoever
 * cleared the task's PARKED bit with a CAS (weft__waiter_wake). */
void weft__task_ready(weft__task_t *t);

/* weft__waiter_wait for a task: park until w's state is final or the
 * deadline passes (then WEFT__W_TIMEOUT, w still live: the caller aborts).
 * No spinning: the carrier has other tasks to run. */
uint32_t weft__task_wait(weft__waiter_t *w, int64_t deadline);

/* Park the running task on a waiter that nobody can see yet, for a wait
 * without deadline that only one party can end (see
 * weft__waiter_finish_alone): w->state becomes PARKED, and once the task's
 * context is saved, publish(arg) runs (on this carrier, before its next
 * context goes on) to make w visible, typically with one CAS. A waker
 * that finds w ends the wait with a final state and readies the task.
 * Returns true once that happened (read w->state), or false, at once, if
 * publish returned false (nothing was published; w is WAITING again). */
bool weft__task_park_publish(weft__waiter_t *w, bool (*publish)(void *), void *arg);

/* weft__park_word / weft__unpark_word for tasks: parked tasks are kept
 * per word in a hashed table (Go's semaphore table); unpark readies up to
 * n of the word's tasks. */
int weft__task_park_word(uint32_t *word, uint32_t expected, int64_t deadline);
void weft__task_unpark_word(uint32_t *word, int n);

/* ---- behind weft/task.h ---- */

int weft__task_go(void (*fn)(void *), void *arg, size_t stack_size, const char *name);
void weft__task_yield(void);
int weft__task_sleep_until(int64_t deadline);
int weft__runtime_set_procs(unsigned n);
int weft__runtime_set_stack_size(size_t size);
void weft__runtime_dump(int fd);
int weft__runtime_dump_on_sigquit(void);
uint64_t weft__task_id(void);
/* The running task's one word of module-local storage (what a
 * _Thread_local would be for a thread: the pool keeps "which pool's
 * worker is this" there), NULL in a plain thread. NULL in a new task. */
void **weft__task_slot(void);
/* The running task's death notes (internal/death.h), NULL in a plain
 * thread. */
struct weft__death_note;
struct weft__death_note **weft__task_notes(void);

#endif
