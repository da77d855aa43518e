/* tests/common/die_noeh.h: ending the calling thread from code compiled
 * without exceptions and without unwind tables (die_noeh.c), so glibc's
 * forced unwinding finds a frame it cannot walk past (it then longjmps
 * straight to the thread's start). Used by the tests of jobs that end
 * their thread. */
#ifndef WEFT_TEST_DIE_NOEH_H
#define WEFT_TEST_DIE_NOEH_H

/* pthread_exit(NULL) from a frame without unwind info. */
void die_noeh_exit(void) __attribute__((noreturn));
/* pthread_cancel(pthread_self()), then a cancellation point, from a frame
 * without unwind info. */
void die_noeh_cancel(void) __attribute__((noreturn));

#endif
