"""read_capture: classic pcap and pcapng written by scapy and dpkt (both byte orders, us/ns and other
timestamp units, every packet block), the supported link types, and every refusal, one line each:
not a capture, empty, no frames, unsupported link type, truncated at every byte, corrupt lengths.
Reading is a stream: a 200k-frame file goes through with a small tracemalloc peak."""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import dpkt
import pytest
from dpkt import pcapng
from scapy.all import IP, UDP, Ether, IPv6, PcapNgWriter, Raw, wrpcap

from rawpacer.errors import CaptureError, UsageError
from rawpacer.traffic.capture import MAX_FRAME, LinkType, Record, read_capture

EPOCH_S = 1_700_000_000
MACS = {"src": "02:00:00:00:00:0a", "dst": "02:00:00:00:00:0b"}
"""Explicit MACs: scapy would otherwise resolve a destination MAC (ARP, neighbour discovery) on the host."""
FRAMES = [
    bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(dst="198.18.0.2") / UDP(dport=5001) / Raw(b"a")),
    bytes(Ether(**MACS) / IPv6(dst="2001:2::2") / UDP(dport=5002) / Raw(b"bb" * 40)),
    bytes(Ether(**MACS) / IP(dst="198.18.0.3") / UDP(dport=5003) / Raw(bytes(range(200)))),
]
PACKETS = [bytes(IP(dst="198.18.0.2") / UDP(dport=5001) / Raw(b"x" * n)) for n in (1, 30, 300)]


def read(path: Path) -> list[Record]:
    return list(read_capture(str(path)))


def pcap_bytes(frames: list[bytes], order: str = "<", nano: bool = False, linktype: int = 1) -> bytes:
    """A classic pcap built from dpkt's header classes (big-endian ones, or dpkt's own writer for "<")."""
    if order == "<":
        out = io.BytesIO()
        writer = dpkt.pcap.Writer(out, snaplen=MAX_FRAME, linktype=linktype, nano=nano)
        for i, frame in enumerate(frames):
            writer.writepkt_time(frame, EPOCH_S + i + 0.25)
        return out.getvalue()
    magic = dpkt.pcap.TCPDUMP_MAGIC_NANO if nano else dpkt.pcap.TCPDUMP_MAGIC
    head = bytes(dpkt.pcap.FileHdr(magic=magic, snaplen=MAX_FRAME, linktype=linktype))
    fraction = 250_000_000 if nano else 250_000
    return head + b"".join(
        bytes(dpkt.pcap.PktHdr(tv_sec=EPOCH_S + i, tv_usec=fraction, caplen=len(f), len=len(f))) + f
        for i, f in enumerate(frames)
    )


def pcapng_bytes(frames: list[bytes], order: str = "<", tsresol: int | None = None, linktype: int = 1) -> bytes:
    """A pcapng section built from dpkt's block classes (LE or BE), EPBs stamped in the IDB's units."""
    le = order == "<"
    shb = pcapng.SectionHeaderBlockLE() if le else pcapng.SectionHeaderBlock()
    option = pcapng.PcapngOptionLE if le else pcapng.PcapngOption
    opts = [] if tsresol is None else [option(code=pcapng.PCAPNG_OPT_IF_TSRESOL, data=bytes([tsresol])), option(code=0)]
    idb = (pcapng.InterfaceDescriptionBlockLE if le else pcapng.InterfaceDescriptionBlock)(
        snaplen=MAX_FRAME, linktype=linktype, opts=opts
    )
    epb = pcapng.EnhancedPacketBlockLE if le else pcapng.EnhancedPacketBlock
    out = bytes(shb) + bytes(idb)
    for i, frame in enumerate(frames):
        units = stamp_units(EPOCH_S + i, 250_000_000, tsresol)
        out += bytes(
            epb(ts_high=units >> 32, ts_low=units & 0xFFFFFFFF, caplen=len(frame), pkt_len=len(frame), pkt_data=frame)
        )
    return out


def stamp_units(seconds: int, ns: int, tsresol: int | None) -> int:
    """A timestamp in an interface's units (default microseconds); 0.25 s is exact in every unit used here."""
    value = 6 if tsresol is None else tsresol
    if value & 0x80:
        return (seconds * 10**9 + ns) * 2 ** (value & 0x7F) // 10**9
    return (seconds * 10**9 + ns) * 10**value // 10**9


def expected_ns(i: int) -> int:
    return (EPOCH_S + i) * 10**9 + 250_000_000


def write(tmp_path: Path, data: bytes, name: str = "c.pcap") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_classic_pcap_in_both_byte_orders_and_units(tmp_path, order, nano):
    records = read(write(tmp_path, pcap_bytes(FRAMES, order, nano)))
    assert [r.data for r in records] == FRAMES
    assert [r.index for r in records] == [0, 1, 2]
    assert [r.time_ns for r in records] == [expected_ns(i) for i in range(3)]
    assert all(r.link is LinkType.ETHERNET and r.orig_len == len(r.data) for r in records)


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("tsresol", [None, 9, 3, 0x80 | 20, 0x80 | 30])
def test_pcapng_in_both_byte_orders_and_timestamp_units(tmp_path, order, tsresol):
    records = read(write(tmp_path, pcapng_bytes(FRAMES, order, tsresol), "c.pcapng"))
    assert [r.data for r in records] == FRAMES
    assert [r.time_ns for r in records] == [expected_ns(i) for i in range(3)]


def test_what_scapy_writes_reads_back(tmp_path):
    packets = [Ether(f) for f in FRAMES]
    for i, packet in enumerate(packets):
        packet.time = EPOCH_S + i + 0.5
    wrpcap(str(tmp_path / "us.pcap"), packets)
    wrpcap(str(tmp_path / "ns.pcap"), packets, nano=True)
    writer = PcapNgWriter(str(tmp_path / "s.pcapng"))
    for packet in packets:
        writer.write(packet)
    writer.close()
    for name in ("us.pcap", "ns.pcap", "s.pcapng"):
        records = read(tmp_path / name)
        assert [r.data for r in records] == FRAMES, name
        assert [r.time_ns // 1000 for r in records] == [(EPOCH_S + i) * 10**6 + 500_000 for i in range(3)], name


@pytest.mark.parametrize(("linktype", "packets"), [(101, PACKETS), (228, PACKETS), (229, [bytes(IPv6() / UDP())])])
def test_raw_ip_link_types(tmp_path, linktype, packets):
    for data in (pcap_bytes(packets, linktype=linktype), pcapng_bytes(packets, linktype=linktype)):
        records = read(write(tmp_path, data))
        assert [r.data for r in records] == packets
        assert all(r.link == linktype for r in records)


def block(order: str, kind: int, body: bytes) -> bytes:
    """A raw pcapng block: type, total length, body padded to 32 bits, total length (draft section 3.1)."""
    body += bytes(-len(body) % 4)
    length = struct.pack(order + "I", len(body) + 12)
    return struct.pack(order + "I", kind) + length + body + length


def test_simple_packet_blocks_unknown_blocks_and_a_second_section(tmp_path):
    spb = block("<", 3, struct.pack("<I", len(FRAMES[0])) + FRAMES[0])
    cut = block("<", 3, struct.pack("<I", len(FRAMES[2])) + FRAMES[2])  # snaplen 64 below cuts it
    idb = block("<", 1, struct.pack("<HHI", 1, 0, 64))
    unknown = block("<", 0x0BAD, b"ignore me")
    first = bytes(pcapng.SectionHeaderBlockLE()) + idb + unknown + spb + cut
    second = pcapng_bytes(FRAMES[1:2], ">", 9)  # another section, big-endian: its interfaces are its own
    records = read(write(tmp_path, first + second, "c.pcapng"))
    assert [r.data for r in records] == [FRAMES[0], FRAMES[2][:64], FRAMES[1]]
    assert [r.orig_len for r in records] == [len(FRAMES[0]), len(FRAMES[2]), len(FRAMES[1])]
    assert [r.time_ns for r in records] == [0, 0, expected_ns(0)]  # an SPB has no timestamp


def test_the_obsolete_packet_block(tmp_path):
    units = stamp_units(EPOCH_S, 250_000_000, None)
    pb = pcapng.PacketBlockLE(
        ts_high=units >> 32,
        ts_low=units & 0xFFFFFFFF,
        caplen=len(FRAMES[1]),
        pkt_len=len(FRAMES[1]),
        pkt_data=FRAMES[1],
    )
    data = pcapng_bytes([]) + bytes(pb)
    [record] = read(write(tmp_path, data, "pb.pcapng"))
    assert (record.data, record.time_ns) == (FRAMES[1], expected_ns(0))


def test_if_tsoffset_moves_every_timestamp(tmp_path):
    opts = [
        pcapng.PcapngOptionLE(code=pcapng.PCAPNG_OPT_IF_TSOFFSET, data=struct.pack("<q", 100)),
        pcapng.PcapngOptionLE(),
    ]
    idb = pcapng.InterfaceDescriptionBlockLE(snaplen=MAX_FRAME, opts=opts)
    epb = pcapng.EnhancedPacketBlockLE(ts_low=7, caplen=len(FRAMES[0]), pkt_len=len(FRAMES[0]), pkt_data=FRAMES[0])
    data = bytes(pcapng.SectionHeaderBlockLE()) + bytes(idb) + bytes(epb)
    assert [r.time_ns for r in read(write(tmp_path, data))] == [100 * 10**9 + 7000]


def message(path: Path) -> str:
    with pytest.raises(CaptureError) as caught:
        read(path)
    text = str(caught.value)
    assert "\n" not in text and isinstance(caught.value, UsageError)
    return text


def test_refusals_are_one_line(tmp_path):
    assert "is empty" in message(write(tmp_path, b"", "empty"))
    assert "not a pcap or pcapng file" in message(write(tmp_path, b"GET / HTTP/1.1\r\n", "http"))
    assert "not a pcap or pcapng file" in message(write(tmp_path, b"\xd4\xc3", "short"))
    assert "holds no frames" in message(write(tmp_path, pcap_bytes([]), "none.pcap"))
    assert "holds no frames" in message(write(tmp_path, pcapng_bytes([]), "none.pcapng"))
    assert "cannot be read" in message(tmp_path / "missing")


def test_what_the_start_of_a_file_shows_is_refused_before_any_frame_is_asked_for(tmp_path):
    for data in (b"", b"not a capture", pcap_bytes(FRAMES, linktype=113), pcap_bytes(FRAMES)[:10]):
        with pytest.raises(CaptureError):
            read_capture(str(write(tmp_path, data)))


@pytest.mark.parametrize("writer", [pcap_bytes, pcapng_bytes])
def test_an_unsupported_link_type_is_named(tmp_path, writer):
    text = message(write(tmp_path, writer(FRAMES, linktype=113)))
    assert "link type 113 (LINUX_SLL" in text and "ETHERNET (1)" in text


def test_an_unsupported_interface_without_frames_is_no_error(tmp_path):
    unused = bytes(pcapng.InterfaceDescriptionBlockLE(linktype=113))
    data = pcapng_bytes(FRAMES)
    at = len(bytes(pcapng.SectionHeaderBlockLE())) + len(bytes(pcapng.InterfaceDescriptionBlockLE()))
    assert [r.data for r in read(write(tmp_path, data[:at] + unused + data[at:]))] == FRAMES


@pytest.mark.parametrize("writer", [pcap_bytes, pcapng_bytes])
@pytest.mark.parametrize("order", ["<", ">"])
def test_truncated_at_every_byte(tmp_path, writer, order):
    """Cut the file at every length: the whole frames before the cut are yielded, then one line says where."""
    data = writer(FRAMES, order)
    if writer is pcap_bytes:  # a 16-byte record header; an EPB's 28 bytes, padded data and trailing length
        sizes = [16 + len(f) for f in FRAMES]
    else:
        sizes = [32 + -(-len(f) // 4) * 4 for f in FRAMES]
    starts = [len(data) - sum(sizes[i:]) for i in range(len(FRAMES) + 1)]
    path = tmp_path / "cut"
    for size in range(1, len(data)):
        path.write_bytes(data[:size])
        whole = sum(1 for s in starts[1:] if s <= size)
        if size in starts[1:]:  # a cut between frames is a clean end
            assert [r.data for r in read(path)] == FRAMES[:whole], size
            continue
        got: list[Record] = []
        with pytest.raises(CaptureError) as caught:
            got.extend(read_capture(str(path)))
        assert [r.data for r in got] == FRAMES[:whole], size
        text = str(caught.value)
        if size <= starts[0]:
            assert "truncated" in text or "holds no frames" in text or "not a pcap" in text, text
        else:
            assert f"truncated at frame {whole}, byte offset {starts[whole]} " in text, (size, text)


def test_corrupt_lengths_are_refused_before_allocating(tmp_path):
    huge = pcap_bytes(FRAMES[:1])[:24] + struct.pack("<IIII", 0, 0, 2**31, 2**31)
    assert f"a frame of {2**31} bytes (at most {MAX_FRAME})" in message(write(tmp_path, huge))
    bad_block = bytes(pcapng.SectionHeaderBlockLE()) + struct.pack("<II", 6, 2**30)
    assert "block length" in message(write(tmp_path, bad_block, "b.pcapng"))
    shb = bytearray(bytes(pcapng.SectionHeaderBlockLE()))
    shb[-4:] = struct.pack("<I", len(shb) + 4)
    assert "trailing length" in message(write(tmp_path, bytes(shb), "t.pcapng"))


@pytest.mark.parametrize("kind", ["pcap", "pcapng"])
def test_reading_is_a_stream_of_bounded_memory(tmp_path, kind):
    """200k frames (over 15 MB) read one at a time: tracemalloc's peak stays far below the file's size."""
    frame = FRAMES[0] + bytes(60 - len(FRAMES[0]))
    if kind == "pcap":
        head = pcap_bytes([])
        record = struct.pack("<IIII", EPOCH_S, 0, len(frame), len(frame)) + frame
    else:
        head = pcapng_bytes([])
        record = block("<", 6, struct.pack("<IIIII", 0, 0, 0, len(frame), len(frame)) + frame)
    path = tmp_path / f"big.{kind}"
    count = 200_000
    with path.open("wb") as handle:
        handle.write(head)
        for _ in range(count // 1000):
            handle.write(record * 1000)
    tracemalloc.start()
    try:
        seen = sum(1 for r in read_capture(str(path)) if r.data == frame)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    assert path.stat().st_size > 15_000_000
    assert peak < 256 * 1024, f"peak {peak} bytes while streaming a {path.stat().st_size}-byte capture"
