"""pcap files of what raw writers sent read back identical with dpkt, tcpdump and scapy, and dissect as valid."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import RAW_WRITERS, make_writer
from scapy.layers.inet import IP, UDP, defragment
from scapy.utils import rdpcap

from rawpacer.headers import parse_frame, parse_packet, reassemble
from rawpacer.pcap import LINKTYPE_ETHERNET, LINKTYPE_RAW, read_pcap
from rawpacer.sandbox import Sandbox
from rawpacer.writers.base import Fit

MESSAGES = 6


def record(name: str, path: str, *, mtu: int, size: int, fit: Fit) -> list[int]:
    """Send one fan-out of ``MESSAGES`` to closed-off ports in a veth sandbox, pcap on; return the ports."""
    ports = list(range(5001, 5001 + MESSAGES))
    with (
        Sandbox("veth", mtu=mtu) as topo,
        make_writer(topo, name, ports, message_size=size, fit=fit, pcap=path) as writer,
    ):
        writer.send([os.urandom(size) for _ in ports])
    return ports


def tcpdump_bytes(path: str) -> list[bytes]:
    """Each record's bytes as ``tcpdump -r -xx`` prints them."""
    out = subprocess.run(["tcpdump", "-r", path, "-nn", "-xx"], capture_output=True, text=True, check=True).stdout
    frames: list[bytes] = []
    for line in out.splitlines():
        if not line.startswith("\t0x"):
            frames.append(b"")
            continue
        frames[-1] += bytes.fromhex("".join(line.split(":", 1)[1].split()))
    return frames


@pytest.mark.parametrize("name", RAW_WRITERS)
def test_pcap_round_trips_through_tcpdump_and_scapy(name: str, tmp_path) -> None:
    path = str(tmp_path / f"{name}.pcap")
    record(name, path, mtu=576, size=1200, fit=Fit.FRAGMENT)
    linktype, frames = read_pcap(path)
    assert linktype == (LINKTYPE_RAW if name == "ip-raw" else LINKTYPE_ETHERNET)
    assert len(frames) == MESSAGES * 3
    assert tcpdump_bytes(path) == frames
    assert [bytes(p) for p in rdpcap(path)] == frames


@pytest.mark.parametrize("name", ["packet-ring", "ip-raw"])
def test_scapy_dissects_every_frame_as_valid(name: str, tmp_path) -> None:
    path = str(tmp_path / "f.pcap")
    ports = record(name, path, mtu=576, size=1200, fit=Fit.FRAGMENT)
    packets = rdpcap(path)
    for packet in packets:
        ip = packet[IP]
        rebuilt = IP(bytes(ip))
        del rebuilt.chksum
        assert IP(bytes(rebuilt)).chksum == ip.chksum
    whole = defragment(packets)
    assert sorted(p[UDP].dport for p in whole) == ports
    for packet in whole:
        rebuilt = IP(bytes(packet[IP]))
        sent = rebuilt[UDP].chksum
        del rebuilt[UDP].chksum
        assert IP(bytes(rebuilt))[UDP].chksum == sent
        assert len(rebuilt[UDP].payload) == 1200


def test_unfragmented_frames_parse_with_good_checksums(tmp_path) -> None:
    path = str(tmp_path / "t.pcap")
    record("packet-raw", path, mtu=1500, size=1500, fit=Fit.TRIM)
    frames = read_pcap(path)[1]
    parsed = [parse_frame(f) for f in frames]
    assert all(p.ip_checksum_ok and p.udp_checksum_ok for p in parsed)
    assert {len(p.payload) for p in parsed} == {1472}
    raw = str(tmp_path / "r.pcap")
    record("ip-raw", raw, mtu=576, size=1200, fit=Fit.FRAGMENT)
    packets = read_pcap(raw)[1]
    whole = parse_packet(reassemble(packets[:3], ethernet=False))
    assert whole.udp_checksum_ok and len(whole.payload) == 1200
