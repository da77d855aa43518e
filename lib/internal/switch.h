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
 * resumed it. A new context (weft__switch_init) starts in entry(arg) with
 * the arg of the first switch into it, on an ABI-aligned stack; entry
 * must never return.
 *
 * Why our own and not Boost.Context's fcontext (callable from C,
 * libboost-context-dev): the same work, measured side by side by
 * `sync/task_switch` (a switch there and back between two contexts on one
 * thread, no scheduler): see README "Tasks against Go". fcontext also
 * saves and restores MXCSR and the x87 control word, which tasks need not
 * (weft never changes them), and would make a C library depend on a C++
 * one.
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
/* An initial context at the top of a stack, starting in entry: the sp
 * to switch to. */
void *weft__switch_init(void *stack_top, void (*entry)(void *));
/* Where a task's context starts (defined by the scheduler). */
void weft__task_entry(void *arg) __attribute__((noreturn));

#endif
