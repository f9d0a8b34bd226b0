"""A tiny real guest: one boot sector that runs in 64-bit long mode.

SeaBIOS loads it from the first disk. It enters long mode (identity-mapped
2 MiB pages over the first GiB), prints ``gridvm-probe:begin``, writes one
word in every 64-byte line of 62 MiB four times, prints
``gridvm-probe:done`` and powers the machine off through the ACPI PM1a
control register at 0x604 (where SeaBIOS puts it on the q35 machine).

Uses:

- :mod:`gridvm.hypervisor.accel` boots it to find out whether KVM really
  works. On some hosts /dev/kvm opens and QEMU starts with ``-accel kvm``
  but guest memory writes are so slow that a Linux guest never gets past
  its decompressor; the timed write loop catches that.
- tests boot it as a real guest that prints to the serial port and powers
  off by itself, without needing a kernel.

The bytes are :data:`PROBE_ASM` assembled with GNU as and ld; the tests
re-assemble it when binutils are installed and compare.
"""

from __future__ import annotations

BEGIN_MARKER = b"gridvm-probe:begin"
DONE_MARKER = b"gridvm-probe:done"

SECTOR_SIZE = 512
DISK_SIZE = 1024 * 1024  # SeaBIOS failed to boot a 512-byte qcow2; 1 MiB boots

PROBE_ASM = r"""        .code16
        .globl _start
_start:
        cli
        xor %ax, %ax
        mov %ax, %ds
        mov %ax, %es
        mov %ax, %ss
        mov $0x7c00, %sp
        in $0x92, %al
        or $2, %al
        out %al, $0x92
        mov $0x1000, %di
        mov $0x1800, %cx
        xor %ax, %ax
        rep stosw
        movw $0x2003, (0x1000)
        movw $0x3003, (0x2000)
        mov $0x3000, %di
        mov $0x83, %eax
        mov $512, %cx
map:
        mov %eax, (%di)
        add $0x200000, %eax
        add $8, %di
        loop map
        lgdtl gdt_desc
        mov %cr4, %eax
        or $0x20, %eax
        mov %eax, %cr4
        mov $0x1000, %eax
        mov %eax, %cr3
        mov $0xc0000080, %ecx
        rdmsr
        or $0x100, %eax
        wrmsr
        mov %cr0, %eax
        or $0x80000001, %eax
        mov %eax, %cr0
        ljmpl $0x08, $long_mode
        .code64
long_mode:
        lea begin_msg(%rip), %rsi
        call print
        mov $4, %r8
pass:
        mov $0x200000, %rdi
write:
        mov %rdi, (%rdi)
        add $64, %rdi
        cmp $0x4000000, %rdi
        jb write
        dec %r8
        jnz pass
        lea done_msg(%rip), %rsi
        call print
        mov $0x604, %dx
        mov $0x2000, %ax
        out %ax, %dx
halt:
        hlt
        jmp halt
print:
        mov $0x3f8, %dx
1:
        lodsb
        test %al, %al
        jz 2f
        out %al, %dx
        jmp 1b
2:
        ret
        .p2align 3
gdt:
        .quad 0
        .quad 0x00209a0000000000
gdt_desc:
        .word gdt_desc - gdt - 1
        .long gdt
begin_msg:
        .asciz "gridvm-probe:begin\n"
done_msg:
        .asciz "gridvm-probe:done\n"
        .org 510
        .byte 0x55, 0xaa
"""
"""Assemble with ``as --64 -o p.o p.S && ld -m elf_x86_64 -Ttext=0x7c00 --oformat=binary``."""

_CODE = bytes.fromhex(
    "fa31c08ed88ec08ed0bc007ce4920c02e692bf0010b9001831c0f3abc7060010"
    "0320c70600200330bf003066b883000000b9000266890566050000200083c708"
    "e2f2660f0116e87c0f20e06683c8200f22e066b8001000000f22d866b9800000"
    "c00f32660d000100000f300f20c0660d010000800f22c066ea7f7c0000080048"
    "8d3568000000e83c00000049c7c00400000048c7c70000200048893f4883c740"
    "4881ff0000000472f049ffc875e4488d354d000000e80d00000066ba040666b8"
    "002066eff4ebfd66baf803ac84c07403eeebf8c30f1f40000000000000000000"
    "00000000009a20000f00d87c000067726964766d2d70726f62653a626567696e"
    "0a0067726964766d2d70726f62653a646f6e650a"
)

BOOT_SECTOR = _CODE + bytes(SECTOR_SIZE - 2 - len(_CODE)) + b"\x55\xaa"


def disk_image() -> bytes:
    """A raw disk image (1 MiB) whose boot sector is the probe guest."""
    return BOOT_SECTOR + bytes(DISK_SIZE - SECTOR_SIZE)
