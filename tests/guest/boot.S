/* boot.S - multiboot v1 header and the 32-bit to 64-bit long mode trampoline.
 * Identity maps the first 1 GiB (2 MiB pages); kmain extends the map to all RAM. */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000003 /* page-aligned modules, memory map wanted */

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)

	.section .text.boot, "ax"
	.code32
	.globl _start
_start:
	cli
	mov %eax, %ebp			/* magic; %ebx (info pointer) survives */
	cld				/* bss holds the page tables: must start zeroed */
	mov $__bss_start, %edi
	mov $__bss_end, %ecx
	sub %edi, %ecx
	shr $2, %ecx
	xor %eax, %eax
	rep stosl

	movl $pdpt + 3, pml4
	movl $pds + 3, pdpt
	mov $pds, %edi
	mov $0x83, %eax			/* present, writable, 2 MiB page */
	mov $512, %ecx
1:	mov %eax, (%edi)
	add $0x200000, %eax
	add $8, %edi
	loop 1b

	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx		/* EFER.LME */
	rdmsr
	or $0x100, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax		/* PG + PE */
	mov %eax, %cr0
	lgdt gdt_ptr
	ljmp $8, $long_entry

	.code64
long_entry:
	mov $0x10, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %ax, %fs
	mov %ax, %gs
	mov $stack_top, %rsp
	mov %ebp, %edi
	mov %ebx, %esi
	call kmain
2:	cli
	hlt
	jmp 2b

	.section .rodata
	.align 8
gdt:	.quad 0, 0x00209a0000000000, 0x0000920000000000
gdt_ptr:
	.word gdt_ptr - gdt - 1
	.long gdt

	.section .bss
	.align 16
	.space 65536
stack_top:

	.section .note.GNU-stack, "", @progbits
