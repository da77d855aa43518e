/* lib/internal/switch.S: weft__switch for x86-64 (see switch.h). */
#if defined(__x86_64__)
	.text

/* void *weft__switch(void **save (rdi), void *to (rsi), void *arg (rdx)) */
	.globl	weft__switch
	.hidden	weft__switch
	.type	weft__switch, @function
	.p2align 4
weft__switch:
	.cfi_startproc
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, (%rdi)
	movq	%rsi, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	movq	%rdx, %rax
	ret
	.cfi_endproc
	.size	weft__switch, .-weft__switch

/* The first switch into a new context "returns" here with its arg in rax
 * and its entry in r12 (weft__switch_init); rsp is 16-byte aligned, as at
 * a call site. */
	.globl	weft__switch_trampoline
	.hidden	weft__switch_trampoline
	.type	weft__switch_trampoline, @function
	.p2align 4
weft__switch_trampoline:
	.cfi_startproc
	.cfi_undefined rip
	movq	%rax, %rdi
	call	*%r12
	ud2
	.cfi_endproc
	.size	weft__switch_trampoline, .-weft__switch_trampoline
#endif

	.section .note.GNU-stack,"",@progbits
