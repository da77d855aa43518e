/* lib/internal/switch.c: the initial frame of a new context (switch.S
 * holds the switch itself). */
#include "internal/switch.h"

#include <stdint.h>
#include <string.h>

#if WEFT__HAVE_SWITCH
void weft__switch_trampoline(void);

void *weft__switch_init(void *stack_top, void (*entry)(void *))
{
	/* weft__switch pops six registers (r15, r14, r13, r12, rbx, rbp)
	 * and returns: the trampoline then runs with rsp = sp + 56, which
	 * must be 16-aligned (a call site's alignment), and calls entry from
	 * r12. Two zero words above it end the frame chain. */
	uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
	uint64_t *sp = (uint64_t *)(top - 72);
	memset(sp, 0, 72);
	sp[3] = (uint64_t)(uintptr_t)entry;
	sp[6] = (uint64_t)(uintptr_t)weft__switch_trampoline;
	return sp;
}
#else
void *weft__switch_init(void *stack_top, void (*entry)(void *))
{
	(void)stack_top;
	(void)entry;
	return NULL;
}
#endif
