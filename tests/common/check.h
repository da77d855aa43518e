/* tests/common/check.h: the few helpers every weft test uses.
 * CHECK* abort the process with file:line and the values on failure;
 * test_watchdog(seconds) makes a hung test fail instead of hanging. */
#ifndef WEFT_TEST_CHECK_H
#define WEFT_TEST_CHECK_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__,  \
				__LINE__, #cond);                                \
			abort();                                                 \
		}                                                                \
	} while (0)

#define CHECK_EQ(a, b)                                                           \
	do {                                                                     \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);  \
		if (check_a_ != check_b_) {                                      \
			fprintf(stderr, "%s:%d: CHECK_EQ failed: %s == %s (%lld vs %lld)\n", \
				__FILE__, __LINE__, #a, #b, check_a_, check_b_); \
			abort();                                                 \
		}                                                                \
	} while (0)

static void test_watchdog_fire_(int sig)
{
	(void)sig;
	static const char msg[] = "watchdog: test hung, failing\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
	}
	_exit(124);
}

/* A hung test is a failed test: exit 124 after `seconds`. */
static inline void test_watchdog(unsigned seconds)
{
	signal(SIGALRM, test_watchdog_fire_);
	alarm(seconds);
}

/* Run one named test function, printing its name (for the log). */
#define RUN(fn)                                                                  \
	do {                                                                     \
		fprintf(stderr, "  %-50s", #fn);                                 \
		fn();                                                            \
		fprintf(stderr, " ok\n");                                        \
	} while (0)

#endif
