/* tests/common/die_noeh.h: ending the calling thread, for the tests of
 * jobs that end their thread: pthread_exit and self-cancel from ordinary
 * frames and from code compiled without exceptions and without unwind
 * tables (die_noeh.c, so glibc's forced unwinding finds a frame it cannot
 * walk past and longjmps straight to the thread's start), and a thread
 * blocked in read(2) until another cancels it. */
#ifndef WEFT_TEST_DIE_NOEH_H
#define WEFT_TEST_DIE_NOEH_H

/* pthread_exit(NULL) from a frame without unwind info. */
void die_noeh_exit(void) __attribute__((noreturn));
/* pthread_cancel(pthread_self()), then a cancellation point, from a frame
 * without unwind info. */
void die_noeh_cancel(void) __attribute__((noreturn));

#ifndef DIE_NOEH_IMPL /* (die_noeh.c is built without weft's headers) */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <weft/task.h>

/* ThreadSanitizer's pthread_exit refuses to run on a fiber (see
 * test_pool.c): under it a weft task ends its carrier by canceling itself */
#if defined(__SANITIZE_THREAD__)
#define TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TSAN_BUILD 1
#endif
#endif
#ifndef TSAN_BUILD
#define TSAN_BUILD 0
#endif

/* how die_as ends the thread */
enum { DIE_EXIT = 1, DIE_EXIT_NOEH, DIE_SELF_CANCEL, DIE_CANCEL_NOEH, DIE_BLOCK };

/* End the calling thread as `how` says (under TSan, inside a task, an
 * exit becomes a self-cancel). DIE_BLOCK: note the thread in *self, set
 * *blocked, and block in read(block_fd) until another thread cancels it.
 * Returns only for a `how` that is none of these. */
static inline void die_as(int how, int block_fd, pthread_t *self, atomic_int *blocked)
{
	bool no_exit = TSAN_BUILD && weft_in_task();
	switch (how) {
	case DIE_EXIT:
		if (!no_exit)
			pthread_exit(NULL);
		/* fall through */
	case DIE_SELF_CANCEL:
		pthread_cancel(pthread_self());
		for (;;)
			pthread_testcancel();
	case DIE_EXIT_NOEH:
		if (!no_exit)
			die_noeh_exit();
		/* fall through */
	case DIE_CANCEL_NOEH:
		die_noeh_cancel();
	case DIE_BLOCK: {
		char c;
		*self = pthread_self();
		atomic_store(blocked, 1);
		ssize_t r = read(block_fd, &c, 1);
		fprintf(stderr, "die_as: read returned %zd: the thread was not canceled in it\n", r);
		abort();
	}
	}
}

#endif /* DIE_NOEH_IMPL */
#endif
