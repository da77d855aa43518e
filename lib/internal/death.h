/* lib/internal/death.h: a thread or task that ends inside user code, and
 * cancellation points inside weft.
 *
 * A job (pool), a group task or a stage fn may end its thread without
 * returning: pthread_exit, or pthread_cancel acted on at a cancellation
 * point. glibc then unwinds the thread's stack (forced unwinding: frames
 * with unwind info run their cleanups, a frame without any ends the walk),
 * longjmps back to the thread's start and runs its thread-specific-data
 * destructors before the thread ends. weft notices the death there, after
 * the unwinding, whatever the frames between were compiled with (-fexceptions
 * or not, unwind tables or not): it never relies on a cleanup of its own
 * running during the unwinding.
 *
 * Death notes. Before weft runs user code that could end its thread it
 * pushes a note (what to do if the code never returns), and pops it after.
 * A note lives in memory that outlives the unwinding (a worker's struct,
 * the heap), never in a stack frame: after the unwinding a thread's frames
 * are gone (its destructors run on the same stack) and a task's may have
 * been overwritten by the cleanups the unwinding ran.
 *  - Threads: a thread's notes hang from a thread-local head; while there
 *    is one, a thread-specific datum is set whose destructor calls each
 *    note's died(), innermost first, on the dying thread.
 *  - Tasks: a task's notes hang from the task (a task moves between
 *    carriers). A task that ends its carrier thread (the unwinding runs up
 *    the task's stack to its first frame, which has no caller, and glibc
 *    longjmps to the carrier thread's start) is found by the carrier's own
 *    note (sched.c), which starts a replacement carrier, then calls the
 *    task's notes on the dying carrier thread as a plain thread (no task
 *    runs there any more), and frees the task's stack.
 * died() may block, call weft (as a plain thread), call the user's
 * callbacks, and free its note. Push and pop cost a few stores (and, for a
 * thread's first and last note, pthread_setspecific).
 *
 * Cancellation points. weft's waits (futexes through syscall(2), spinning,
 * sched_yield) are not cancellation points, so a deferred cancel is never
 * acted on inside weft while it holds a lock or has a waiter registered.
 * The few places where weft itself calls one (pthread_join, file I/O of a
 * spill file, reads of /proc, the runtime dump's writes) turn cancellation
 * off around that call only (weft__nocancel_*), and never across a park: a
 * task may resume on another carrier, whose cancel state is another
 * thread's.
 */
#ifndef WEFT_INTERNAL_DEATH_H
#define WEFT_INTERNAL_DEATH_H

#include <pthread.h>

typedef struct weft__death_note weft__death_note_t;
struct weft__death_note {
	/* called once if the code the note covers ends its thread; may free
	 * the note */
	void (*died)(weft__death_note_t *n);
	weft__death_note_t *prev; /* the next outer note */
};

/* Push n (died set) for the running task, else for the calling thread. */
void weft__death_push(weft__death_note_t *n);
/* Pop n, the innermost note of the same task or thread. */
void weft__death_pop(weft__death_note_t *n);
/* Take every note off the list at *head and call each, innermost first
 * (the carrier's note runs its dead task's with it). */
void weft__death_run(weft__death_note_t **head);
/* Under AddressSanitizer: clear the stale shadow of the stack below the
 * caller's frame, down to stack_lo (NULL: the calling thread's stack's
 * low end), on a thread whose frames were unwound by glibc. Elsewhere a
 * no-op. */
void weft__death_unpoison_below(void *stack_lo);

/* Cancellation off around one cancellation point weft calls itself (no
 * park between begin and end). */
static inline int weft__nocancel_begin(void)
{
	int old = PTHREAD_CANCEL_ENABLE;
	pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old);
	return old;
}

static inline void weft__nocancel_end(int old)
{
	pthread_setcancelstate(old, NULL);
}

/* pthread_join that is not a cancellation point (weft joins its workers
 * while it holds a lock). */
static inline int weft__join_nocancel(pthread_t t)
{
	int old = weft__nocancel_begin();
	int rc = pthread_join(t, NULL);
	weft__nocancel_end(old);
	return rc;
}

#endif
