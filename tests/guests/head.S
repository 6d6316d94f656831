/*
 * kvmkit test guest: entry points, long-mode setup, interrupt stubs, AP path.
 *
 * The image is linked at 0x100000 (1 MiB) and is not relocatable.
 *   0x100000  32-bit bzImage entry (code32_start): protected mode, paging off,
 *             ESI = struct boot_params.  EDI = SETUP_MAGIC when we come from our
 *             own real-mode setup code (setup.S).
 *   0x100200  64-bit bzImage entry: long mode, identity mapped, RSI = boot_params.
 *   pvh_start 32-bit PVH entry (XEN_ELFNOTE_PHYS32_ENTRY): EBX = hvm_start_info.
 * All of them load our GDT, zero .bss, build identity page tables for the first
 * 4 GiB (2 MiB pages), enter long mode and call kmain(proto, ptr).
 */
#include "kt_asm.h"

#define MSR_EFER 0xc0000080

	.macro ZERO_BSS
	mov	$__bss_start, %edi
	mov	$__bss_end, %ecx
	sub	%edi, %ecx
	shr	$2, %ecx
	xor	%eax, %eax
	rep stosl
	.endm

	/* usable in both .code32 and .code64: only 32-bit registers/addresses */
	.macro BUILD_PT
	movl	$(pdpt + 3), pml4
	movl	$(pd + 0x0003), pdpt
	movl	$(pd + 0x1003), pdpt + 8
	movl	$(pd + 0x2003), pdpt + 16
	movl	$(pd + 0x3003), pdpt + 24
	mov	$pd, %edi
	mov	$0x83, %eax		/* present | writable | 2 MiB page */
	mov	$2048, %ecx
99:	mov	%eax, (%edi)
	add	$0x200000, %eax
	add	$8, %edi
	dec	%ecx
	jnz	99b
	.endm

	.section .text.head, "ax"
	.code32
	.globl	_start32
_start32:				/* load address + 0 */
	cli
	cld
	mov	$PROTO_BZ32, %eax
	cmp	$SETUP_MAGIC, %edi
	jne	1f
	mov	$PROTO_BZ16, %eax
1:	mov	%esi, %edx
	jmp	common32

	.org	0x200
	.code64
	.globl	_start64
_start64:				/* load address + 0x200 */
	cli
	cld
	movl	$PROTO_BZ64, entry_proto
	mov	%rsi, entry_ptr
	lgdt	gdt_desc
	mov	$0x18, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	xor	%eax, %eax
	mov	%eax, %fs
	mov	%eax, %gs
	mov	$stack_top, %esp
	pushq	$0x08
	pushq	$1f
	lretq
1:	ZERO_BSS
	BUILD_PT
	mov	$pml4, %eax
	mov	%rax, %cr3
	jmp	long_entry

	.code32
	.globl	pvh_start
pvh_start:
	cli
	cld
	mov	$PROTO_PVH, %eax
	mov	%ebx, %edx
	/* fall through */

common32:				/* eax = proto, edx = boot pointer */
	lgdtl	gdt_desc
	ljmp	$0x10, $1f
1:	mov	$0x18, %ecx
	mov	%ecx, %ds
	mov	%ecx, %es
	mov	%ecx, %ss
	xor	%ecx, %ecx
	mov	%ecx, %fs
	mov	%ecx, %gs
	mov	%eax, entry_proto
	mov	%edx, entry_ptr
	movl	$0, entry_ptr + 4
	mov	$stack_top, %esp
	ZERO_BSS
	BUILD_PT
	call	enter_long_mode_32
	ljmp	$0x08, $long_entry

	/* paging off -> long mode (also used by the APs); needs a valid stack */
enter_long_mode_32:
	mov	%cr4, %eax
	or	$0x20, %eax		/* PAE */
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$0x100, %eax		/* LME */
	wrmsr
	mov	%cr0, %eax
	and	$0x9fffffff, %eax	/* clear CD, NW */
	or	$0x80010001, %eax	/* PG, WP, PE */
	mov	%eax, %cr0
	ret

	.code64
long_entry:
	mov	$0x18, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	$stack_top, %rsp
	xor	%ebp, %ebp
	mov	entry_proto, %edi
	mov	entry_ptr, %rsi
	call	kmain
2:	cli
	hlt
	jmp	2b

/* ---------------------------------------------------------------- APs ---- */
/*
 * Real-mode trampoline, copied to a page below 1 MiB; the SIPI vector is that
 * page number, so CS = page << 8, IP = 0.  Position independent: it loads our
 * GDT (linear address < 4 GiB) and jumps straight to ap_entry32 in the image.
 */
	.code16
	.globl	ap_tramp_start, ap_tramp_end
ap_tramp_start:
	cli
	cld
	mov	%cs, %ax
	mov	%ax, %ds
	lgdtl	ap_gdt_desc - ap_tramp_start
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	$0x10, $ap_entry32
	.balign 4
ap_gdt_desc:
	.word	gdt_end - gdt - 1
	.long	gdt
ap_tramp_end:

	.code32
ap_entry32:
	mov	$0x18, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	/* no stack: inline what enter_long_mode_32 does */
	mov	%cr4, %eax
	or	$0x20, %eax
	mov	%eax, %cr4
	mov	$pml4, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$0x100, %eax
	wrmsr
	mov	%cr0, %eax
	and	$0x9fffffff, %eax
	or	$0x80010001, %eax
	mov	%eax, %cr0
	ljmp	$0x08, $ap_entry64

	.code64
ap_entry64:
	mov	$0x18, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	/* APIC ID: CPUID.0BH:EDX if leaf 0xb exists, else CPUID.01H:EBX[31:24] */
	xor	%eax, %eax
	cpuid
	cmp	$0xb, %eax
	jb	1f
	mov	$0xb, %eax
	xor	%ecx, %ecx
	cpuid
	test	%ebx, %ebx		/* leaf 0xb valid only if EBX != 0 */
	jz	1f
	mov	%edx, %ebx
	jmp	2f
1:	mov	$1, %eax
	cpuid
	shr	$24, %ebx
2:	cmp	$255, %ebx
	ja	3f
	movb	$1, ap_seen(%ebx)
3:	lock incl ap_count
4:	cli
	hlt
	jmp	4b

/* ---------------------------------------------------------- interrupts ---- */
	.text
	.balign	16
	.globl	isr_stubs
isr_stubs:				/* 256 stubs, 16 bytes apart */
	.set	vec, 0
	.rept	256
	.balign	16
	.if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq	$0
	.endif
	pushq	$vec
	jmp	isr_common
	.set	vec, vec + 1
	.endr

isr_common:
	push	%rax
	push	%rbx
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%rbp
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	cld
	mov	%rsp, %rdi
	call	isr_dispatch
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rbp
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rbx
	pop	%rax
	add	$16, %rsp
	iretq

/* --------------------------------------------------------------- data ---- */
	.data
	.balign	16
	.globl	gdt, gdt_desc
gdt:
	.quad	0
	.quad	0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad	0x00cf9a000000ffff	/* 0x10: 32-bit code (Linux __BOOT_CS) */
	.quad	0x00cf92000000ffff	/* 0x18: data (Linux __BOOT_DS) */
gdt_end:
	.balign	8
	.word	0, 0, 0
gdt_desc:
	.word	gdt_end - gdt - 1
	.quad	gdt

	.globl	entry_proto, entry_ptr
	.balign	8
entry_proto:	.long 0
	.long	0
entry_ptr:	.quad 0

	.section .note.xen, "a", @note
	.balign	4
	.long	4			/* namesz */
	.long	8			/* descsz */
	.long	18			/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz	"Xen"
	.quad	pvh_start		/* 8 bytes: QEMU reads a 64-bit value from ELF64 */
	.balign	4

	.bss
	.balign	4096
	.globl	pml4, pdpt, pd, pd_pool, pd_pool_count
pml4:	.skip	4096
pdpt:	.skip	4096
pd:	.skip	4096 * 4
pd_pool:
	.skip	4096 * PD_POOL
	.globl	ap_count, ap_seen
ap_count:	.long 0
ap_seen:	.skip 256

	.section .rodata
	.balign	4
pd_pool_count:	.long PD_POOL

	.section .kstack, "aw", @nobits
	.balign	16
	.skip	16384
stack_top:

	.section .note.GNU-stack, "", @progbits
