"""The frame pool a shaped stream cycles: IMIX proportions over its period, --vary's inc sequences and
seeded random draws, every frame's checksums valid (scapy recomputes them), and its per-reader counts."""

from __future__ import annotations

import math
import os
import random

import numpy as np
import pytest
from scapy.all import IP, UDP, Dot1Q, Ether, IPv6, raw

from rawpacer.errors import UsageError
from rawpacer.headers import FrameTemplate, parse_frame
from rawpacer.readers.core import PREFIX, Counter
from rawpacer.traffic import parse_sizes, parse_varies
from rawpacer.traffic.pool import MAX_FRAMES, RANDOM_DRAWS, STAMPED_POOL, FramePool, build_pool, period_of

PORTS = list(range(5001, 5011))
ADDRESSES = {4: ("198.18.0.1", "198.18.0.2"), 6: ("2001:2::1", "2001:2::2")}


def templates(version: int = 4, vlan: int | None = None, ports: list[int] = PORTS) -> list[FrameTemplate]:
    src, dst = ADDRESSES[version]
    return [FrameTemplate(p, sport=40101, src_ip=src, dst_ip=dst, vlan=vlan) for p in ports]


def messages(count: int = len(PORTS), size: int = 1500) -> list[bytes]:
    return [os.urandom(size) for _ in range(count)]


def parsed(pool: FramePool) -> list[Ether]:
    return [Ether(bytes(f)) for f in pool.frames()]


def test_imix_proportions_hold_over_every_period():
    pool = build_pool(templates(), messages(), sizes=parse_sizes("imix"))
    assert len(pool) == 60 and pool.whole  # lcm(10 readers, IMIX's 12)
    assert pool.per_size(60) == {64: 35, 594: 20, 1518: 5}
    assert pool.per_size(60_000) == {64: 35_000, 594: 20_000, 1518: 5_000}
    lengths = {64: 18, 594: 548, 1518: 1472}  # UDP payloads over IPv4: size - FCS, Ethernet, IP, UDP
    assert all(len(f[UDP].payload) == lengths[int(s)] for f, s in zip(parsed(pool), pool.sizes))


def test_every_frame_carries_a_prefix_of_its_readers_message():
    sent = messages()
    pool = build_pool(templates(), sent, sizes=parse_sizes("64:1,300:2,1518:1"))
    for frame, slot in zip(parsed(pool), pool.slots):
        payload = bytes(frame[UDP].payload)
        assert frame[UDP].dport == PORTS[slot] and payload == sent[slot][: len(payload)]
    assert pool.slots.tolist() == [i % 10 for i in range(len(pool))]


def test_inc_walks_the_range_in_order_and_wraps():
    pool = build_pool(templates(), messages(), varies=parse_varies(["dst-ip=198.18.0.2-198.18.0.4"]))
    assert len(pool) == 30 and pool.whole  # lcm(10 readers, 3 addresses)
    assert [f[IP].dst for f in parsed(pool)] == [f"198.18.0.{2 + i % 3}" for i in range(30)]


def test_stamped_fields_stay_out_of_the_pool_and_leave_per_frame():
    pool = build_pool(templates(), messages(), varies=parse_varies(["sport=1000-1002"]))
    # the readers alone set the period (the engine stamps sport per frame), repeated to STAMPED_POOL frames
    assert len(pool) == 10 * math.ceil(STAMPED_POOL / 10) and pool.whole
    assert pool.slots.tolist() == list(range(10)) * (len(pool) // 10)
    assert {f[UDP].sport for f in parsed(pool)} == {40101}
    assert [Ether(f)[UDP].sport for f in pool.leaving(0, 30)] == [1000 + i % 3 for i in range(30)]


def test_dport_spreads_frames_over_the_readers_it_names():
    pool = build_pool(templates(), messages(), varies=parse_varies(["dport=5003-5005"]))
    assert [f[UDP].dport for f in parsed(pool)] == [5003, 5004, 5005]
    assert pool.per_slot(9, 10).tolist() == [0, 0, 3, 3, 3, 0, 0, 0, 0, 0]
    with pytest.raises(UsageError, match="--vary dport: port 6000 has no reader"):
        build_pool(templates(), messages(), varies=parse_varies(["dport=6000"]))


def test_random_draws_repeat_with_their_seed_and_fill_the_pool():
    def pool(seed: int) -> FramePool:
        varies = parse_varies(["dst-ip=198.18.0.0-198.19.255.255:random"], seed=seed)
        return build_pool(templates(), messages(size=100), varies=varies)

    first, again, other = pool(7), pool(7), pool(8)
    assert len(first) >= RANDOM_DRAWS and not first.whole
    addresses = [f[IP].dst for f in parsed(first)]
    assert addresses == [f[IP].dst for f in parsed(again)]
    assert addresses != [f[IP].dst for f in parsed(other)]
    assert len(set(addresses)) > RANDOM_DRAWS // 2  # draws, not one value


def test_a_period_past_the_cap_is_cut_and_said_so():
    period, whole = period_of(10, None, parse_varies(["dst-ip=198.18.0.0-198.18.38.244"]))  # a prime span: lcm 99730
    assert period <= MAX_FRAMES and period % 10 == 0 and not whole
    stamped = period_of(10, None, parse_varies(["src-ip=198.18.0.0-198.19.255.255"]))  # stamped per frame: no cut
    assert stamped == (10 * math.ceil(STAMPED_POOL / 10), True)


def test_per_slot_counts_add_up_to_what_was_sent():
    pool = build_pool(templates(), messages(), varies=parse_varies(["dport=5001-5010:random"], seed=1))
    for total in (1, 999, len(pool) * 3 + 17):
        counts = pool.per_slot(total, 10)
        assert counts.sum() == total and (counts >= 0).all()


SPECS = {
    4: ["sport=1000-1999", "sport=1-65535:random", "src-ip=198.18.0.1-198.18.0.250:random", "dst-ip=198.18.0.2"],
    6: ["sport=7-9", "src-ip=2001:2::1-2001:2::ffff:random", "flow-label=0-1048575:random", "dst-ip=2001:2::2"],
}


@pytest.mark.parametrize("version", [4, 6])
@pytest.mark.parametrize("trial", range(3))
def test_checksums_stay_valid_over_random_specs(version, trial):
    rng = random.Random(trial * 10 + version)
    chosen = {spec.partition("=")[0]: spec for spec in rng.sample(SPECS[version], rng.randint(1, 3))}
    vlan = rng.choice([None, 7])
    if vlan is not None:
        chosen["vlan"] = "vlan=7"
    mix = rng.choice([None, "imix", "128:3,1000:1"])
    sent = messages()
    pool = build_pool(
        templates(version, vlan),
        sent,
        sizes=None if mix is None else parse_sizes(mix),
        varies=parse_varies(list(chosen.values()), seed=trial),
        payload_len=200,
    )
    first = rng.randrange(2**40)  # the frames that leave, stamped fields and all (the engine's twin)
    leaving = pool.leaving(first, 2000)
    for data in leaving:
        assert parse_frame(data).checksums_ok
    for index in rng.sample(range(len(leaving)), 300):  # scapy, the independent check, on a sample
        frame, slot = Ether(leaving[index]), pool.slots[(first + index) % len(pool)]
        assert (Dot1Q in frame) == (vlan is not None)
        layer = frame[IPv6] if version == 6 else frame[IP]
        udp = frame[UDP]
        given = (udp.chksum, None if version == 6 else layer.chksum)
        del udp.chksum
        if version == 4:
            del layer.chksum
        again = Ether(raw(frame))
        assert (again[UDP].chksum, None if version == 6 else again[IP].chksum) == given
        payload = bytes(udp.payload)
        assert payload == sent[slot][: len(payload)]


def test_readers_match_prefixes_and_count_per_length_in_both_twins():
    from rawpacer._readloop import Counter as CCounter

    sent = b"".join(messages(3, 100))
    for kind in (Counter, CCounter):
        counter = kind(sent, 100, 3)
        counter.begin(100, True, False, PREFIX)
        for slot, data in (
            (0, sent[:10]),
            (1, sent[100:150]),
            (2, sent[200:300]),
            (2, b"x" * 10),
            (1, sent[100:200] + b"!"),
        ):
            counter.datagram(slot, data)
        counter.set_per_port(1)
        assert counter.tallies()[:4] == (1, 5, 2, 0)
        assert counter.lengths() == [(10, 2, 1), (50, 1, 1), (100, 1, 1), (101, 1, 0)]


def test_the_pool_bytes_are_one_buffer_with_offsets():
    pool = build_pool(templates(), messages(), sizes=parse_sizes("imix"))
    assert len(pool.data) == int(pool.lengths.sum())
    assert np.array_equal(pool.offsets[1:], np.cumsum(pool.lengths)[:-1])


def test_a_udp_checksum_that_comes_to_zero_is_sent_as_ffff():
    from rawpacer.traffic.pool import _adjust

    rows = np.array([[0xFF, 0xFF, 0xFF, 0xFF]], dtype=np.uint8)  # two checksum fields, 0xFFFF each
    zero = np.zeros((1, 1), dtype=np.uint64)
    _adjust(rows, 0, zero, zero, udp=True)
    _adjust(rows, 2, zero, zero, udp=False)
    assert rows.tolist() == [[0xFF, 0xFF, 0, 0]]  # RFC 768's "no checksum" never made by accident


def test_a_pool_past_its_bytes_is_cut_after_a_whole_fan_out():
    from rawpacer.traffic.pool import MAX_BYTES

    varies = parse_varies(["dst-ip=198.18.0.0-198.18.38.244"])
    pool = build_pool(templates(), messages(), varies=varies, payload_len=1472)
    assert len(pool) % len(PORTS) == 0 and not pool.whole
    assert MAX_BYTES - 10 * 1514 < len(pool.data) <= MAX_BYTES
    assert pool.per_slot(len(pool), 10).tolist() == [len(pool) // 10] * 10
