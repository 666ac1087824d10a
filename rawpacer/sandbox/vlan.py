"""The readers' VLAN filter: accept one 802.1Q VLAN id on the readers' veth end, without 8021q.

Without CONFIG_VLAN_8021Q the stack marks a frame whose tag carries a non-zero VLAN id as another
host's and drops it. This filter, a direct-action BPF program on the ``clsact`` ingress hook of the
readers' veth end, pops the tag of frames carrying the run's id (they go on to the kernel UDP
readers), drops frames carrying any other id, passes untagged and priority-tagged frames (ARP, ND),
and counts all three in an array map read back with BPF_MAP_LOOKUP_ELEM.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from dataclasses import dataclass

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from rawpacer.errors import SandboxError
from rawpacer.kernel import bpf
from rawpacer.kernel.bpf import Label, Reg

# Counter slots of the map, in order: what the program did with each frame it saw.
COUNTERS = ("accepted", "other_vlan", "untagged")
ACCEPTED, OTHER_VLAN, UNTAGGED = range(len(COUNTERS))
COUNTER_SIZE = 8  # u64 per slot

# struct __sk_buff field offsets (include/uapi/linux/bpf.h). By tc ingress the receive path has
# already moved the outermost tag out of the packet into skb metadata (skb_vlan_untag in
# __netif_receive_skb_core), which is where these fields read it from.
SKB_VLAN_PRESENT, SKB_VLAN_TCI, SKB_VLAN_PROTO = 20, 24, 28
VID_MASK = 0x0FFF  # the VLAN id: the TCI's low 12 bits (IEEE 802.1Q, 9.6)
ETH_P_8021Q = 0x8100
VLAN_PROTO_8021Q = socket.htons(ETH_P_8021Q)  # __sk_buff.vlan_proto holds the TPID in network order
TC_ACT_OK, TC_ACT_SHOT = 0, 2  # include/uapi/linux/pkt_cls.h
HELPER_MAP_LOOKUP_ELEM, HELPER_SKB_VLAN_POP = 1, 19  # enum bpf_func_id

INGRESS_PARENT = "ffff:fff2"  # TC_H_CLSACT major, TC_H_MIN_INGRESS minor (include/uapi/linux/pkt_sched.h)
QDISC = "clsact"
NAME = "rawpacer_vlan"
BPF_JIT_SYSCTL = "/proc/sys/net/core/bpf_jit_enable"


def program(vlan_id: int, map_fd: int) -> list[bpf.Insn | Label]:
    """The filter for ``vlan_id``, counting into the array map ``map_fd``; see docs/raw-path.md."""
    return [
        bpf.mov(Reg.R6, Reg.R1),  # keep the __sk_buff pointer: calls clobber r1-r5
        bpf.mov(Reg.R7, UNTAGGED),  # r7: the counter slot, which also decides the verdict
        bpf.load(bpf.W, Reg.R2, Reg.R6, SKB_VLAN_PRESENT),
        bpf.jump_if(bpf.JEQ, Reg.R2, 0, "count"),
        bpf.load(bpf.W, Reg.R2, Reg.R6, SKB_VLAN_TCI),
        bpf.and_(Reg.R2, VID_MASK),
        bpf.jump_if(bpf.JEQ, Reg.R2, 0, "count"),  # VID 0: a priority tag, no VLAN (802.1Q, table 9-2)
        bpf.mov(Reg.R7, OTHER_VLAN),
        bpf.load(bpf.W, Reg.R3, Reg.R6, SKB_VLAN_PROTO),
        bpf.jump_if(bpf.JNE, Reg.R3, VLAN_PROTO_8021Q, "count"),  # an 802.1ad (S-)tag is not the run's
        bpf.jump_if(bpf.JNE, Reg.R2, vlan_id, "count"),
        bpf.mov(Reg.R7, ACCEPTED),
        Label("count"),
        bpf.store(bpf.W, Reg.R10, -4, Reg.R7),  # the map key lives on the stack
        bpf.mov(Reg.R2, Reg.R10),
        bpf.add(Reg.R2, -4),
        *bpf.load_map_fd(Reg.R1, map_fd),
        bpf.call(HELPER_MAP_LOOKUP_ELEM),  # r0 = &counters[r7], or NULL
        bpf.jump_if(bpf.JEQ, Reg.R0, 0, "verdict"),
        bpf.mov(Reg.R1, 1),
        bpf.atomic_add(bpf.DW, Reg.R0, 0, Reg.R1),  # both CPUs may count at once
        Label("verdict"),
        bpf.mov(Reg.R0, TC_ACT_SHOT),
        bpf.jump_if(bpf.JEQ, Reg.R7, OTHER_VLAN, "exit"),
        bpf.mov(Reg.R0, TC_ACT_OK),
        bpf.jump_if(bpf.JNE, Reg.R7, ACCEPTED, "exit"),
        bpf.mov(Reg.R1, Reg.R6),
        bpf.call(HELPER_SKB_VLAN_POP),  # clear the tag: the frame goes on as an untagged one
        bpf.mov(Reg.R0, TC_ACT_OK),
        Label("exit"),
        bpf.exit_(),
    ]


@dataclass(frozen=True)
class VlanCounts:
    """What the filter did: frames accepted (tag popped), dropped (another id), passed untagged."""

    accepted: int
    other_vlan: int
    untagged: int

    def describe(self) -> str:
        """One line for a run's report, e.g. ``3 frames tagged with another VLAN id were dropped``."""
        noun = "frame" if self.other_vlan == 1 else "frames"
        verb = "was" if self.other_vlan == 1 else "were"
        return f"{self.other_vlan} {noun} tagged with another VLAN id {verb} dropped"


# What a kernel missing a piece answers (ENOSYS: no bpf(2); ENOENT/EOPNOTSUPP: unknown qdisc or
# classifier kind), and the kernel option that provides the piece each step needs.
MISSING = (errno.ENOSYS, errno.ENOENT, errno.EOPNOTSUPP)
STEP_CONFIG = {
    "BPF_MAP_CREATE": "CONFIG_BPF_SYSCALL",
    "BPF_PROG_LOAD": "CONFIG_BPF_SYSCALL",
    "qdisc": "CONFIG_NET_SCH_INGRESS",
    "filter": "CONFIG_NET_CLS_BPF",
}


def _failure(step: str, what: str, exc: OSError) -> SandboxError:
    """The one-line error for a failed ``step``: what failed, the kernel's answer, and why when known."""
    hint = ""
    if exc.errno == errno.EPERM:
        hint = ": needs root (CAP_BPF and CAP_NET_ADMIN)"
    elif exc.errno in MISSING:
        hint = f": this kernel lacks it ({STEP_CONFIG[step]})"
    return SandboxError(f"cannot set up the VLAN filter: {what} failed: {exc}{hint}")


def _tc(ipr: IPRoute, step: str, what: str, *args: object, **options: object) -> None:
    """One tc request; a kernel refusal becomes the one-line error naming ``what`` failed."""
    try:
        ipr.tc(*args, **options)
    except NetlinkError as exc:
        raise _failure(step, what, OSError(exc.code, os.strerror(exc.code))) from None


class VlanFilter:
    """The filter for one VLAN id: its counter map and program, loaded at once, attached by ``attach``.

    The filter holds the program once attached; removing the interface (with its namespace) removes
    both. The counter map lives until ``close``, which keeps the last counts readable.
    """

    def __init__(self, vlan_id: int) -> None:
        self.vlan_id = vlan_id
        self.ifname = ""
        self._final: VlanCounts | None = None
        self._prog_fd = self._map_fd = -1
        try:
            self._map_fd = bpf.array_map(NAME, COUNTER_SIZE, len(COUNTERS))
        except OSError as exc:
            raise _failure("BPF_MAP_CREATE", "bpf(BPF_MAP_CREATE)", exc) from None
        code = bpf.assemble(program(vlan_id, self._map_fd))
        self.instructions = len(code) // 8
        try:
            self._prog_fd = bpf.load_program(bpf.BPF_PROG_TYPE_SCHED_CLS, NAME, code)
        except OSError as exc:
            self.close()
            raise _failure("BPF_PROG_LOAD", "bpf(BPF_PROG_LOAD)", exc) from None

    def attach(self, ifname: str) -> None:
        """Add a clsact qdisc and the filter on ``ifname``'s ingress, in this thread's namespace."""
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if not found:
                raise SandboxError(f"cannot attach the VLAN filter: interface {ifname!r} does not exist here")
            index = found[0]
            _tc(ipr, "qdisc", f"adding a {QDISC} qdisc to {ifname}", "add", QDISC, index)
            _tc(
                ipr,
                "filter",
                f"adding the bpf filter to {ifname}'s ingress",
                "add-filter",
                "bpf",
                index,
                ":1",
                fd=self._prog_fd,
                name=NAME,
                parent=INGRESS_PARENT,
                classid=1,
                direct_action=True,  # the program's return value is the verdict (TC_ACT_*)
            )
        os.close(self._prog_fd)  # the tc filter holds the program now
        self._prog_fd = -1
        self.ifname = ifname

    def counts(self) -> VlanCounts:
        """The counters now (after ``close``: as they were when it closed)."""
        if self._final is not None:
            return self._final
        if self._map_fd < 0:
            raise SandboxError("the VLAN filter's counters could not be read before it closed")
        values = [struct.unpack("=Q", bpf.lookup(self._map_fd, slot, COUNTER_SIZE))[0] for slot in range(len(COUNTERS))]
        return VlanCounts(*values)

    def close(self) -> None:
        """Keep the last counts and release the map (and the program, if it was never attached)."""
        if self._prog_fd >= 0:
            os.close(self._prog_fd)
            self._prog_fd = -1
        if self._map_fd < 0:
            return
        try:
            self._final = self.counts()
        finally:
            os.close(self._map_fd)
            self._map_fd = -1


def jit_state() -> str:
    """Whether the kernel compiles BPF to machine code (``net.core.bpf_jit_enable``, host namespace only)."""
    try:
        with open(BPF_JIT_SYSCTL) as handle:
            return "JIT off: interpreted" if handle.read().strip() == "0" else "JIT on"
    except OSError:
        return "JIT state unknown"
