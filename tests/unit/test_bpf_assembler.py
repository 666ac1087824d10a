"""The BPF assembler (rawpacer.kernel.bpf): encoding and label resolution, without the kernel.

The kernel's verifier checks the real program in tests/system/test_vlan_filter.py."""

from __future__ import annotations

import struct

import pytest

from rawpacer.kernel import bpf
from rawpacer.kernel.bpf import Label, Reg
from rawpacer.sandbox import vlan


def decode(code: bytes) -> list[tuple[int, int, int, int, int]]:
    """(code, dst, src, off, imm) per 8-byte slot."""
    return [(c, regs & 0xF, regs >> 4, off, imm) for c, regs, off, imm in struct.iter_unpack("<BBhi", code)]


def test_a_jump_lands_on_its_label_counting_a_wide_load_as_two_slots():
    program = [
        bpf.jump_if(bpf.JEQ, Reg.R1, 7, "end"),
        *bpf.load_map_fd(Reg.R1, 42),
        bpf.mov(Reg.R0, 1),
        Label("end"),
        bpf.exit_(),
        bpf.jump_if(bpf.JNE, Reg.R2, 0, "end"),  # backwards
    ]
    slots = decode(bpf.assemble(program))
    assert len(slots) == 6
    assert slots[0][3] == 4 - 0 - 1 and slots[5][3] == 4 - 5 - 1
    assert slots[1][:3] == (bpf.LD | bpf.IMM | bpf.DW, Reg.R1, bpf.BPF_PSEUDO_MAP_FD) and slots[1][4] == 42
    assert slots[2] == (0, 0, 0, 0, 0)


def test_registers_and_immediates_pick_the_right_source_bit():
    (by_reg, by_imm) = decode(bpf.assemble([bpf.mov(Reg.R6, Reg.R1), bpf.mov(Reg.R6, -4)]))
    assert by_reg[0] & bpf.X and (by_reg[1], by_reg[2]) == (Reg.R6, Reg.R1)
    assert not by_imm[0] & bpf.X and by_imm[4] == -4


@pytest.mark.parametrize(
    "program, words",
    [
        ([bpf.jump_if(bpf.JEQ, Reg.R0, 0, "nowhere"), bpf.exit_()], "undefined label 'nowhere'"),
        ([Label("a"), Label("a"), bpf.exit_()], "label 'a' is defined twice"),
        ([bpf.exit_()] * (bpf.MAX_INSNS + 1), "at most 4096"),
    ],
)
def test_bad_programs_are_refused(program, words):
    with pytest.raises(ValueError, match=words):
        bpf.assemble(program)


@pytest.mark.parametrize("vlan_id", [1, 4094])
def test_the_vlan_program_compares_the_run_id_and_calls_vlan_pop_once(vlan_id):
    slots = decode(bpf.assemble(vlan.program(vlan_id, map_fd=9)))
    calls = [imm for code, _, _, _, imm in slots if code == bpf.JMP | bpf.CALL]
    assert calls == [vlan.HELPER_MAP_LOOKUP_ELEM, vlan.HELPER_SKB_VLAN_POP]
    assert sum(code == bpf.JMP | bpf.JNE | bpf.K and imm == vlan_id for code, _, _, _, imm in slots) == 1
    assert slots[-1][0] == bpf.JMP | bpf.EXIT
