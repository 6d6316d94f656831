/*
 * kvmkit test guest: bzImage real-mode part (Linux x86 boot protocol 2.15).
 *
 * Sector 0 is a dummy boot sector; the setup header starts at 0x1f1.  BIOS
 * loaders (SeaBIOS/qboot via QEMU -kernel, GRUB linux16) jump to setup + 0x200
 * in real mode with CS = setup segment + 0x20 and DS = setup segment.  Like
 * Linux's setup we then: copy the setup header into a fresh boot_params at
 * setup + 0x1000, fill its e820 table with INT 15h/E820, switch to protected
 * mode and jump to code32_start with ESI = &boot_params and EDI = SETUP_MAGIC.
 * 32-bit and 64-bit loaders never run this code.
 */
#include "kt_asm.h"

#define BP_NEW		0x1000	/* offset of our boot_params in the setup segment */
#define BP_E820_NR	0x1e8
#define BP_E820_TABLE	0x2d0
#define STACK_TOP	0x3000

	.code16
	.section .setup, "ax"
	.globl	_setup_start
_setup_start:
	/* boot sector: not bootable by itself */
	cli
1:	hlt
	jmp	1b

	.org	0x1f1
hdr:
setup_sects:	.byte	kt_setup_sects
root_flags:	.word	0
syssize:	.long	kt_syssize		/* 16-byte units */
ram_size:	.word	0
vid_mode:	.word	0xffff
root_dev:	.word	0
boot_flag:	.word	0xaa55
	/* 0x200 */
jump:		.byte	0xeb, setup_code - 0x202
header:		.ascii	"HdrS"
version:	.word	0x020f
realmode_swtch:	.long	0
start_sys_seg:	.word	0x1000
kernel_version:	.word	kver - 0x200
type_of_loader:	.byte	0
loadflags:	.byte	0x01			/* LOADED_HIGH */
setup_move_size: .word	0x8000
code32_start:	.long	_image_start
ramdisk_image:	.long	0
ramdisk_size:	.long	0
bootsect_kludge: .long	0
heap_end_ptr:	.word	0
ext_loader_ver:	.byte	0
ext_loader_type: .byte	0
cmd_line_ptr:	.long	0
initrd_addr_max: .long	0x7fffffff
kernel_alignment: .long	0x100000
relocatable_kernel: .byte 0
min_alignment:	.byte	20
xloadflags:	.word	0x0001			/* XLF_KERNEL_64 */
cmdline_size:	.long	2047
hardware_subarch: .long	0
hardware_subarch_data: .quad 0
payload_offset:	.long	0
payload_length:	.long	0
setup_data:	.quad	0
pref_address:	.quad	_image_start
init_size:	.long	kt_init_size
handover_offset: .long	0
kernel_info_offset: .long 0
hdr_end:

setup_code:
	cli
	cld
	mov	%cs, %ax
	sub	$0x20, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$STACK_TOP, %sp

	/* fresh boot_params: zero 4 KiB, copy the setup header */
	mov	$BP_NEW, %di
	mov	$2048, %cx
	xor	%ax, %ax
	rep stosw
	mov	$0x1f1, %si
	mov	$(BP_NEW + 0x1f1), %di
	mov	$(hdr_end - hdr), %cx
	rep movsb

	/* e820 */
	xor	%ebx, %ebx
	xor	%bp, %bp
	mov	$(BP_NEW + BP_E820_TABLE), %di
2:	mov	$0xe820, %eax
	mov	$0x534d4150, %edx
	mov	$20, %ecx
	int	$0x15
	jc	3f
	cmp	$0x534d4150, %eax
	jne	3f
	inc	%bp
	add	$20, %di
	cmp	$128, %bp
	jae	3f
	test	%ebx, %ebx
	jnz	2b
3:	mov	%bp, %ax
	mov	%al, BP_NEW + BP_E820_NR

	/* fast A20 */
	inb	$0x92, %al
	or	$2, %al
	and	$0xfe, %al
	outb	%al, $0x92

	/* linear base of the setup segment */
	cli
	xor	%esi, %esi
	mov	%ds, %si
	shl	$4, %esi
	lea	setup_gdt(%esi), %eax
	mov	%eax, setup_gdt_desc + 2
	lea	pm32(%esi), %eax
	mov	%eax, pm32_ptr
	lgdtl	setup_gdt_desc
	mov	%cr0, %eax
	or	$1, %eax
	mov	%eax, %cr0
	ljmpl	*pm32_ptr

	.code32
pm32:
	mov	$0x18, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %ss
	mov	%eax, %fs
	mov	%eax, %gs
	add	$BP_NEW, %esi
	mov	$SETUP_MAGIC, %edi
	xor	%ebx, %ebx
	xor	%ebp, %ebp
	jmp	*0x214(%esi)		/* hdr.code32_start */

	.balign	8
setup_gdt:
	.quad	0
	.quad	0
	.quad	0x00cf9a000000ffff	/* 0x10: 32-bit code */
	.quad	0x00cf92000000ffff	/* 0x18: data */
setup_gdt_desc:
	.word	4 * 8 - 1
	.long	0
pm32_ptr:
	.long	0
	.word	0x10
kver:	.asciz	"kvmkit-testguest"
	.section .note.GNU-stack, "", @progbits
