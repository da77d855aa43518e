/* tests/common/die_noeh.c: see die_noeh.h. Built with -fno-exceptions
 * -fno-asynchronous-unwind-tables -fno-unwind-tables (tests/meson.build):
 * these functions have no .eh_frame entry. */
#include <pthread.h>
#include <stdlib.h>

#define DIE_NOEH_IMPL
#include "die_noeh.h"

void die_noeh_exit(void)
{
	pthread_exit(NULL);
}

void die_noeh_cancel(void)
{
	pthread_cancel(pthread_self());
	for (;;)
		pthread_testcancel();
}
