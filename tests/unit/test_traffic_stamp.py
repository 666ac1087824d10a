"""--vary's stamped fields (sport, src-ip, flow-label, vlan): the counter-based values of frame k (inc
wraps, random repeats by seed, IPv6's low bits carry), and the transmit engine's C stamping held to its
numpy twin (``FramePool.leaving``) byte for byte, every checksum valid, on sendmmsg (a socketpair) and
AF_XDP (a test playing the kernel), without root."""

from __future__ import annotations

import ipaddress
import math
import os
import socket

import numpy as np
import pytest

from rawpacer import engine
from rawpacer.headers import FrameTemplate, parse_frame
from rawpacer.traffic import parse_sizes, parse_varies, parse_vary
from rawpacer.traffic.pool import STAMPED_POOL, FramePool, build_pool
from rawpacer.traffic.stamp import FieldStamp
from rawpacer.traffic.vary import splitmix64
from tests.unit.test_engine_ring import CHUNK, FakeKernel

PORTS = [5001, 5002, 5003]
ADDRESSES = {4: ("198.18.0.1", "198.18.0.2"), 6: ("2001:2::1", "2001:2::2")}


def shaped(vary: list[str], version: int = 4, vlan: int | None = None, sizes: str | None = None) -> FramePool:
    src, dst = ADDRESSES[version]
    templates = [FrameTemplate(p, sport=40101, src_ip=src, dst_ip=dst, vlan=vlan) for p in PORTS]
    mix = None if sizes is None else parse_sizes(sizes)
    return build_pool(
        templates, [os.urandom(1472) for _ in PORTS], sizes=mix, varies=parse_varies(vary, seed=9), payload_len=100
    )


def test_splitmix64_is_the_reference_generator():
    """Output 1 of SplitMix64 seeded 0 (Vigna's splitmix64.c): the draws are that generator's outputs."""
    assert int(splitmix64(np.array([0x9E3779B97F4A7C15], np.uint64))[0]) == 0xE220A8397B1DCDAF


def test_inc_wraps_at_any_span_and_goes_on_from_any_frame():
    sport = parse_vary("sport=1000-1002")
    assert sport.values(4, first=2).tolist() == [1002, 1000, 1001, 1002]
    wide = parse_vary("src-ip=198.18.0.0-198.19.255.255")  # 131,072 addresses, past the old 65,536-frame cut
    assert wide.span == 131_072
    assert wide.values(2, first=131_071).tolist() == [int(ipaddress.IPv4Address("198.19.255.255")), wide.low]
    assert len(set(wide.values(131_072).tolist())) == 131_072


def test_random_repeats_by_seed_per_frame_and_differs_by_seed():
    one = parse_vary("sport=1-65535:random", seed=4)
    again, other = parse_vary("sport=1-65535:random", seed=4), parse_vary("sport=1-65535:random", seed=5)
    values = one.values(20_000)
    assert np.array_equal(values, again.values(20_000)) and not np.array_equal(values, other.values(20_000))
    assert np.array_equal(values[12_345:12_400], one.values(55, first=12_345))  # frame k's value from k alone
    assert len(set(values.tolist())) > 4096 * 3  # per packet: no 4,096-draw pool repeating
    assert values.min() >= 1 and values.max() <= 65535


def test_ipv6_source_varies_in_its_low_64_bits_with_the_carry():
    low = "2001:2:0:0:ffff:ffff:ffff:fffe"
    rows = parse_vary(f"src-ip={low}-2001:2:0:1::1").values(5)
    shown = [str(ipaddress.IPv6Address(bytes(r))) for r in rows]
    assert shown == [
        "2001:2::ffff:ffff:ffff:fffe",
        "2001:2::ffff:ffff:ffff:ffff",
        "2001:2:0:1::",
        "2001:2:0:1::1",
        shown[0],
    ]
    drawn = parse_vary("src-ip=2001:2::-2001:2::ffff:ffff:ffff:ffff:random", seed=1)
    assert drawn.span == 2**64 and len({bytes(r) for r in drawn.values(1000)}) == 1000


def test_stamped_fields_leave_the_pool_small_and_whole():
    pool = shaped(["sport=1-65535:random", "src-ip=198.18.0.0-198.19.255.255", "dport=5001-5003"])
    assert len(pool) == 3 * math.ceil(STAMPED_POOL / 3) and pool.whole  # only dport sets the period
    assert [s.width for s in pool.stamps] == [2, 4]
    frames = [parse_frame(f) for f in pool.leaving(131_070, 4)]
    assert [f.src_ip for f in frames] == ["198.19.255.254", "198.19.255.255", "198.18.0.0", "198.18.0.1"]
    assert all(f.checksums_ok for f in frames)


def mmsg_leaving(pool: FramePool, first: int, count: int, batch: int) -> list[bytes]:
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with left, right:
        right.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
        frames = engine.Pool(pool.data, pool.offsets.tolist(), pool.lengths.tolist())
        got: list[bytes] = []
        sender = engine.mmsg(left.fileno())
        for done in range(0, count, 200):  # the socketpair holds a few hundred datagrams
            n = min(200, count - done)
            assert sender.send(frames, first + done, n, batch, None, None, pool.stamps) == n
            got += [right.recv(4096) for _ in range(n)]
        return got


def xdp_leaving(pool: FramePool, first: int, count: int) -> list[bytes]:
    kernel = FakeKernel(8)
    umem = bytearray(8 * CHUNK)
    xsk = engine.xdp(-1, umem, CHUNK, kernel.tx, kernel.cq, False, 1)
    frames = engine.Pool(bytes(pool.data), pool.offsets.tolist(), pool.lengths.tolist())  # read-only: stamped in UMEM
    got: list[bytes] = []
    for done in range(0, count, 8):
        n = min(8, count - done)
        assert xsk.send(frames, first + done, n, n, None, None, pool.stamps) == n
        got += [bytes(umem[d[0] : d[0] + d[1]]) for d in kernel.take()]
        kernel.complete(n)
    return got


CASES = {
    "v4": (["sport=1-65535:random", "src-ip=198.18.0.0-198.19.255.255:random"], 4, None),
    "v4-inc": (["sport=65530-65535", "src-ip=198.18.255.250-198.19.0.5", "dport=5001-5002:random"], 4, None),
    "v6": (["flow-label=0-1048575:random", "src-ip=2001:2::ffff:ffff:ffff:fff0-2001:2:0:1::f", "sport=7-9"], 6, None),
    "v6-random": (["src-ip=2001:2::-2001:2::ffff:ffff:ffff:ffff:random", "sport=1-65535:random"], 6, None),
    "vlan": (["vlan=1-4094:random", "sport=1-3", "src-ip=198.18.0.1-198.18.0.20:random"], 4, 7),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("back_end", ["mmsg", "xdp"])
def test_the_engine_stamps_what_the_twin_predicts(case, back_end):
    vary, version, vlan = CASES[case]
    pool = shaped(vary, version, vlan, sizes="64:2,300:1")
    first, count = 1_000_003, 600  # a stream continued far in: frame k's value comes from k alone
    want = pool.leaving(first, count)
    got = mmsg_leaving(pool, first, count, 64) if back_end == "mmsg" else xdp_leaving(pool, first, count)
    assert got == want
    parsed = [parse_frame(f) for f in got]
    assert all(f.checksums_ok for f in parsed)
    assert len({f.sport for f in parsed}) > 2
    if vlan is not None:
        assert len({f.vlan for f in parsed}) > 100


def test_mmsg_stamps_into_the_pool_again_the_round_after():
    """sendmmsg sends from the pool, so a frame's next round is stamped only after its last one left:
    a batch longer than the pool is split there, and every frame carries its own value."""
    pool = shaped(["sport=1000-1999"])
    got = [parse_frame(f).sport for f in mmsg_leaving(pool, 0, 10, 10)]
    assert got == list(range(1000, 1010))


def test_a_stamp_that_does_not_fit_is_refused_in_one_line():
    pool = shaped(["sport=1000-1999"])
    frames = engine.Pool(pool.data, pool.offsets.tolist(), pool.lengths.tolist())
    left, right = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    with left, right:
        sender = engine.mmsg(left.fileno())
        (stamp,) = pool.stamps
        with pytest.raises(ValueError, match="stamp 0 .* must be 2, 4 or 16 bytes"):
            sender.send(frames, 0, 1, 1, None, None, [stamp._replace(at=200)])
        with pytest.raises(ValueError, match="values within its mask"):
            sender.send(frames, 0, 1, 1, None, None, [stamp._replace(last=70_000)])
        with pytest.raises(ValueError, match="writable pool"):
            sender.send(engine.Pool(bytes(pool.data), [0], [142]), 0, 1, 1, None, None, pool.stamps)
        with pytest.raises(TypeError, match="a stamp is"):
            sender.send(frames, 0, 1, 1, None, None, [(1, 2)])
    assert isinstance(stamp, FieldStamp) and stamp.udp_sum == stamp.at + 6
