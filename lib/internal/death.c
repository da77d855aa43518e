/* lib/internal/death.c: death notes (see death.h).
 *
 * Ordering: none across threads. A thread's notes are its own (thread-local
 * head); a task's notes are read by the carrier thread it dies on, which
 * is the thread that ran it last (its switch into the task ordered every
 * earlier write of the task's, wherever it ran).
 */
#include "internal/death.h"

#include <stddef.h>

#include "internal/sched.h"

#if defined(__SANITIZE_ADDRESS__)
#define DEATH_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DEATH_ASAN 1
#endif
#endif
#ifdef DEATH_ASAN
#include <sanitizer/asan_interface.h>
#endif

static pthread_key_t key;
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static int key_ok;
static _Thread_local weft__death_note_t *tl_notes;

__attribute__((noinline)) void weft__death_unpoison_below(void *stack_lo)
{
#ifdef DEATH_ASAN
	/* the unwinding skipped the epilogues of the frames it removed (a
	 * cancel acted on inside libc calls no noreturn hook first), so their
	 * redzones are still poisoned where our callees' frames now go, and
	 * the sanitizer's own code (its interceptors check its locals) trips
	 * on them. Everything below this frame is dead: clear it. (Not
	 * __asan_handle_no_return: it calls such an interceptor itself.) */
	char *here = __builtin_frame_address(0);
	if (!stack_lo) {
		pthread_attr_t a;
		size_t size;
		if (pthread_getattr_np(pthread_self(), &a) != 0)
			return;
		pthread_attr_getstack(&a, &stack_lo, &size);
		pthread_attr_destroy(&a);
	}
	if (here > (char *)stack_lo)
		__asan_unpoison_memory_region(stack_lo, (size_t)(here - (char *)stack_lo));
#else
	(void)stack_lo;
#endif
}

/* The thread ends with notes pushed: it died inside what they cover. Runs
 * on the dying thread, on its own stack, after glibc's unwinding. */
static void thread_died(void *v)
{
	(void)v;
	weft__death_unpoison_below(NULL);
	weft__death_run(&tl_notes);
}

static void key_init(void)
{
	/* without a key (none left) deaths go unnoticed, as before weft knew */
	key_ok = pthread_key_create(&key, thread_died) == 0;
}

void weft__death_push(weft__death_note_t *n)
{
	weft__death_note_t **h = weft__task_notes();
	if (h) {
		n->prev = *h;
		*h = n;
		return;
	}
	pthread_once(&key_once, key_init);
	n->prev = tl_notes;
	tl_notes = n;
	/* the datum only says "has notes": its value is never read */
	if (!n->prev && key_ok)
		pthread_setspecific(key, &tl_notes);
}

void weft__death_pop(weft__death_note_t *n)
{
	weft__death_note_t **h = weft__task_notes();
	if (h) {
		*h = n->prev;
		return;
	}
	tl_notes = n->prev;
	if (!tl_notes && key_ok)
		pthread_setspecific(key, NULL);
}

void weft__death_run(weft__death_note_t **head)
{
	weft__death_note_t *n;
	while ((n = *head) != NULL) {
		*head = n->prev;
		n->died(n); /* may free n */
	}
}
