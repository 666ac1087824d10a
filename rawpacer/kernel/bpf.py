"""bpf(2) through ctypes: an array map, its elements, and programs from hand-assembled instructions.

Mirrors include/uapi/linux/bpf.h and the instruction set of Documentation/bpf/standardization/
instruction-set.rst. No libbpf, no compiler: a program is a list of ``Insn`` and ``Label`` that
``assemble`` encodes, resolving jump labels to instruction offsets.
"""

from __future__ import annotations

import ctypes
import enum
import errno
import os
import platform
import struct
from collections.abc import Sequence
from dataclasses import dataclass

# bpf(2)'s system call number per architecture (arch/*/include/uapi/asm/unistd*.h).
SYS_BPF = {"x86_64": 321, "aarch64": 280, "i686": 357, "armv7l": 386, "ppc64le": 361, "s390x": 351, "riscv64": 280}

# enum bpf_cmd, enum bpf_map_type, enum bpf_prog_type: the members rawpacer uses.
BPF_MAP_CREATE, BPF_MAP_LOOKUP_ELEM, BPF_PROG_LOAD = 0, 1, 5
COMMAND_NAMES = {
    BPF_MAP_CREATE: "BPF_MAP_CREATE",
    BPF_MAP_LOOKUP_ELEM: "BPF_MAP_LOOKUP_ELEM",
    BPF_PROG_LOAD: "BPF_PROG_LOAD",
}
BPF_MAP_TYPE_ARRAY = 2
BPF_PROG_TYPE_SCHED_CLS = 3
BPF_OBJ_NAME_LEN = 16
BPF_PSEUDO_MAP_FD = 1  # src_reg of a 64-bit immediate load whose imm is a map's fd
MAX_INSNS = 4096  # BPF_MAXINSNS: the most instructions an unprivileged-sized program may have
LOG_SIZE = 1 << 16  # verifier log buffer, asked for only when a load fails

# Instruction classes, sizes, modes and operations (instruction-set.rst, "Instruction encoding").
LD, LDX, STX, ALU64, JMP = 0x00, 0x01, 0x03, 0x07, 0x05
W, H, B, DW = 0x00, 0x08, 0x10, 0x18
IMM, MEM, ATOMIC = 0x00, 0x60, 0xC0
K, X = 0x00, 0x08
ADD, AND, MOV = 0x00, 0x50, 0xB0
JEQ, JNE, CALL, EXIT = 0x10, 0x50, 0x80, 0x90


class Reg(enum.IntEnum):
    """The eleven registers: r0 return value, r1-r5 arguments (clobbered by calls), r6-r9 kept, r10 frame."""

    R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 = range(11)


@dataclass(frozen=True)
class Insn:
    """One 8-byte instruction; ``off`` may name a ``Label`` (jumps), resolved by ``assemble``."""

    code: int
    dst: int = 0
    src: int = 0
    off: int | str = 0
    imm: int = 0


@dataclass(frozen=True)
class Label:
    """A jump target: the position of the next instruction."""

    name: str


def mov(dst: Reg, src: Reg | int) -> Insn:
    """dst = src (a register or a 32-bit immediate, sign-extended)."""
    if isinstance(src, Reg):
        return Insn(ALU64 | MOV | X, dst, src)
    return Insn(ALU64 | MOV | K, dst, imm=src)


def add(dst: Reg, imm: int) -> Insn:
    """dst += imm."""
    return Insn(ALU64 | ADD | K, dst, imm=imm)


def and_(dst: Reg, imm: int) -> Insn:
    """dst &= imm."""
    return Insn(ALU64 | AND | K, dst, imm=imm)


def load(size: int, dst: Reg, src: Reg, off: int) -> Insn:
    """dst = *(size *)(src + off)."""
    return Insn(LDX | MEM | size, dst, src, off)


def store(size: int, dst: Reg, off: int, src: Reg) -> Insn:
    """*(size *)(dst + off) = src."""
    return Insn(STX | MEM | size, dst, src, off)


def atomic_add(size: int, dst: Reg, off: int, src: Reg) -> Insn:
    """*(size *)(dst + off) += src, atomically (BPF_ATOMIC with imm BPF_ADD)."""
    return Insn(STX | ATOMIC | size, dst, src, off, ADD)


def load_map_fd(dst: Reg, map_fd: int) -> list[Insn]:
    """dst = the map behind ``map_fd`` (a 64-bit immediate load: two instruction slots)."""
    return [Insn(LD | IMM | DW, dst, BPF_PSEUDO_MAP_FD, imm=map_fd), Insn(0)]


def jump_if(op: int, dst: Reg, imm: int, label: str) -> Insn:
    """Go to ``label`` when ``dst op imm`` (op JEQ or JNE) holds."""
    return Insn(JMP | op | K, dst, off=label, imm=imm)


def call(helper: int) -> Insn:
    """r0 = helper(r1, ..., r5); r1-r5 are clobbered."""
    return Insn(JMP | CALL, imm=helper)


def exit_() -> Insn:
    """Return r0."""
    return Insn(JMP | EXIT)


def assemble(program: Sequence[Insn | Label]) -> bytes:
    """Encode ``program`` as struct bpf_insn[]: jumps to labels become relative slot offsets."""
    targets: dict[str, int] = {}
    slots: list[Insn] = []
    for item in program:
        if isinstance(item, Label):
            if item.name in targets:
                raise ValueError(f"label {item.name!r} is defined twice")
            targets[item.name] = len(slots)
        else:
            slots.append(item)
    encoded = bytearray()
    for index, insn in enumerate(slots):
        off = insn.off
        if isinstance(off, str):
            if off not in targets:
                raise ValueError(f"jump to undefined label {off!r}")
            off = targets[off] - index - 1
        # struct bpf_insn: u8 code; u8 dst_reg:4, src_reg:4 (little-endian bitfields); s16 off; s32 imm
        encoded += struct.pack("<BBhi", insn.code, insn.dst | insn.src << 4, off, insn.imm)
    if len(slots) > MAX_INSNS:
        raise ValueError(f"program has {len(slots)} instructions; at most {MAX_INSNS} are allowed")
    return bytes(encoded)


class MapCreateAttr(ctypes.Structure):
    """``union bpf_attr`` as BPF_MAP_CREATE reads it."""

    _fields_ = [
        ("map_type", ctypes.c_uint32),
        ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32),
        ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32),
        ("inner_map_fd", ctypes.c_uint32),
        ("numa_node", ctypes.c_uint32),
        ("map_name", ctypes.c_char * BPF_OBJ_NAME_LEN),
    ]


class MapElemAttr(ctypes.Structure):
    """``union bpf_attr`` as BPF_MAP_*_ELEM read it."""

    _fields_ = [
        ("map_fd", ctypes.c_uint32),
        ("key", ctypes.c_uint64),
        ("value", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
    ]


class ProgLoadAttr(ctypes.Structure):
    """``union bpf_attr`` as BPF_PROG_LOAD reads it (up to the program's name)."""

    _fields_ = [
        ("prog_type", ctypes.c_uint32),
        ("insn_cnt", ctypes.c_uint32),
        ("insns", ctypes.c_uint64),
        ("license", ctypes.c_uint64),
        ("log_level", ctypes.c_uint32),
        ("log_size", ctypes.c_uint32),
        ("log_buf", ctypes.c_uint64),
        ("kern_version", ctypes.c_uint32),
        ("prog_flags", ctypes.c_uint32),
        ("prog_name", ctypes.c_char * BPF_OBJ_NAME_LEN),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long


def bpf(cmd: int, attr: ctypes.Structure) -> int:
    """bpf(cmd, &attr, sizeof attr); its result, or OSError naming the command."""
    number = SYS_BPF.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"bpf(2): system call number unknown for {platform.machine()}")
    result = _syscall(ctypes.c_long(number), ctypes.c_long(cmd), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)))
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"bpf({COMMAND_NAMES.get(cmd, cmd)}): {os.strerror(code)}")
    return int(result)


def array_map(name: str, value_size: int, entries: int) -> int:
    """A new BPF_MAP_TYPE_ARRAY of ``entries`` zeroed values keyed by u32 index; its fd."""
    attr = MapCreateAttr(BPF_MAP_TYPE_ARRAY, 4, value_size, entries, map_name=name.encode()[: BPF_OBJ_NAME_LEN - 1])
    return bpf(BPF_MAP_CREATE, attr)


def lookup(map_fd: int, index: int, value_size: int) -> bytes:
    """The value at ``index`` of an array map."""
    key = ctypes.c_uint32(index)
    value = ctypes.create_string_buffer(value_size)
    bpf(BPF_MAP_LOOKUP_ELEM, MapElemAttr(map_fd, ctypes.addressof(key), ctypes.addressof(value)))
    return value.raw


def load_program(prog_type: int, name: str, code: bytes, license: str = "GPL") -> int:
    """Load assembled ``code`` as a program of ``prog_type``; its fd.

    On failure the load is retried with the verifier's log on, and the OSError's message ends with
    the log's last line (the verifier's reason).
    """
    insns = ctypes.create_string_buffer(code, len(code))
    licence = ctypes.create_string_buffer(license.encode())
    attr = ProgLoadAttr(
        prog_type,
        len(code) // 8,
        ctypes.addressof(insns),
        ctypes.addressof(licence),
        prog_name=name.encode()[: BPF_OBJ_NAME_LEN - 1],
    )
    try:
        return bpf(BPF_PROG_LOAD, attr)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EACCES):
            raise
        log = ctypes.create_string_buffer(LOG_SIZE)
        attr.log_level, attr.log_size, attr.log_buf = 1, LOG_SIZE, ctypes.addressof(log)
        try:
            return bpf(BPF_PROG_LOAD, attr)
        except OSError as again:
            lines = log.value.decode(errors="replace").strip().splitlines()
            reason = f" (verifier: {lines[-1]})" if lines else ""
            raise OSError(again.errno, f"{again.strerror}{reason}") from None
