"""The kernel-counter diagnosis names the real cause of real drops in sandbox namespaces."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable

import pytest

from rawpacer import diagnose
from rawpacer.headers import build_frame
from rawpacer.sandbox import Sandbox
from rawpacer.sandbox.topology import RAW_PATH_SYSCTLS, write_sysctls
from rawpacer.writers.packet_raw import open_packet_socket

WRONG_MAC = "02:00:00:00:be:ef"


def corrupt(start: int, value: bytes) -> Callable[[bytearray], None]:
    def apply(frame: bytearray) -> None:
        frame[start : start + len(value)] = value

    return apply


def inject(kind: str, mutate: Callable[[bytearray], None], *, listen: bool = True, martian: bool = False) -> str:
    """Send one hand-built frame (after ``mutate``) to a reader socket; return the diagnosis of what happened."""
    got = None
    with Sandbox(kind, mtu=1500 if kind == "veth" else None) as topo:
        if martian:
            with topo.enter("reader"):
                write_sysctls({key: "0" for key in RAW_PATH_SYSCTLS})
        with topo.enter("reader"):
            reader = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with reader:
            with topo.enter("reader"):
                reader.bind((topo.reader_ip, 0))
            port = reader.getsockname()[1]
            if not listen:
                reader.close()
            link = topo.link()
            frame = bytearray(
                build_frame(
                    port,
                    b"probe" * 40,
                    src_ip=topo.writer_ip,
                    dst_ip=topo.reader_ip,
                    src_mac=link.src_mac,
                    dst_mac=link.dst_mac,
                )
            )
            mutate(frame)
            before = diagnose.snapshot_of(topo)
            with topo.enter("writer"), open_packet_socket(link.ifname) as sock:
                sock.send(bytes(frame))
            if listen:
                reader.settimeout(0.3)
                with contextlib.suppress(TimeoutError):
                    got = reader.recv(2048)
            after = diagnose.snapshot_of(topo)
    if got is not None:
        assert got == bytes(frame[42:])
    return diagnose.explain(before, after)


def test_healthy_frame_moves_no_drop_counter() -> None:
    assert inject("lo", lambda f: None).startswith("no drop counter moved")


@pytest.mark.parametrize("kind", ["lo", "veth"])
def test_bad_udp_checksum(kind: str) -> None:
    assert "UDP checksum errors: 1" in inject(kind, corrupt(40, b"\x12\x34"))


def test_bad_ip_checksum() -> None:
    assert "IP header checksum errors: 1" in inject("lo", corrupt(24, b"\x12\x34"))


def test_wrong_destination_mac_across_veth() -> None:
    mac = bytes.fromhex(WRONG_MAC.replace(":", ""))
    assert "wrong destination MAC: 1" in inject("veth", corrupt(0, mac))


def test_no_socket_on_the_port() -> None:
    assert "no socket on the port: 1" in inject("lo", lambda f: None, listen=False)


def test_martian_when_sandbox_sysctls_are_off() -> None:
    text = inject("lo", lambda f: None, martian=True)
    assert "martian drop" in text and "accept_local" in text


def test_snapshot_reads_the_threads_namespace() -> None:
    with Sandbox("veth", mtu=1500) as topo:
        assert "rpr0" in diagnose.snapshot_of(topo, "reader").links
        assert "rpw0" in diagnose.snapshot_of(topo, "writer").links


def test_doctor_probes_pass_and_print_the_sandbox(capsys) -> None:
    from rawpacer.cli import main

    assert main(["doctor", "--writer", "packet-ring", "--writer", "ip-raw"]) == 0
    out = capsys.readouterr().out
    assert "CAP_NET_RAW yes" in out and "mtu 1500" in out and "accept_local=1" in out
    assert out.count(" OK ") == 6 and "6/6 probes passed" in out
    assert "sandbox router" in out and "ip_forward=1" in out and "raw frames go to its ingress mac" in out
    assert "DUT profiles installed (5 commands): tbf:" in out

    assert "host timing: clocksource " in out and " timer slack " in out and "CPU governor " in out
    assert "stall probe (1 s of clock reads): pauses " in out and " over 10 ms; longest " in out


def test_doctor_probes_every_dut_profile() -> None:
    from rawpacer.cli.doctor import PROFILE_PROBES
    from rawpacer.dut import PROFILES

    assert sorted(spec.partition(":")[0] for spec in PROFILE_PROBES) == sorted(PROFILES)
