/* lib/internal/switch.h: the user-space context switch under tasks.
 *
 * A context is a stack pointer: weft__switch pushes the callee-saved
 * registers of the System V ABI (rbx, rbp, r12-r15) on the current stack,
 * stores the stack pointer in *save, loads to, pops that context's
 * registers and returns into it: about a dozen instructions, no system
 * call (ucontext's swapcontext makes one per switch to save the signal
 * mask). The FP control words (MXCSR, x87 CW) are not switched: tasks share
 * the carrier's, which weft never changes.
 *
 * The value returned in the resumed context is the arg of the switch that
 * resumed it. A new context (weft__switch_init) starts in
 * weft__task_entry(arg) with the arg of the first switch into it, on an
 * ABI-aligned stack; that function must never return.
 *
 * Measured (bench/task.c, switch floor): see task.h. Boost.Context's
 * fcontext does the same work (and saves MXCSR/x87 CW: two more loads and
 * stores); an own switch avoids a C++ library dependency for a C library.
 */
#ifndef WEFT_INTERNAL_SWITCH_H
#define WEFT_INTERNAL_SWITCH_H

#include <stddef.h>

#if defined(__x86_64__)
#define WEFT__HAVE_SWITCH 1
#else
#define WEFT__HAVE_SWITCH 0
#endif

void *weft__switch(void **save, void *to, void *arg);
/* An initial context at the top of a stack: the sp to switch to. */
void *weft__switch_init(void *stack_top);
/* Where a new context starts (defined by the scheduler). */
void weft__task_entry(void *arg) __attribute__((noreturn));

#endif
