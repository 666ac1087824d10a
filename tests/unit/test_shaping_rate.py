"""A bit ``--rate`` with ``--sizes`` paces on the mix's mean link bytes (Ethernet + IP + UDP + payload,
as ``rawpacer.pacing.link_bytes`` counts each datagram), not on one message size."""

from __future__ import annotations

from fractions import Fraction

from rawpacer.bench.shaping import mean_link_bytes
from rawpacer.pacing import link_bytes, make_schedule
from rawpacer.pacing.rate import PaceSpec, parse_rate
from rawpacer.traffic.sizes import parse_sizes


def test_imix_mean_link_bytes_is_the_weighted_mean_without_fcs():
    # lo/veth frames carry no FCS: 60, 590 and 1514 link bytes, weighted 7:4:1
    assert mean_link_bytes(parse_sizes("imix")) == Fraction(7 * 60 + 4 * 590 + 1514, 12)
    # IPv6 frames of the same counted sizes hold 20 payload bytes fewer, so the same link bytes
    assert mean_link_bytes(parse_sizes("78:7,594:4,1518:1"), ip_version=6) == Fraction(4294 + 7 * 14, 12)
    assert mean_link_bytes(parse_sizes("imix"), vlan=True) == Fraction(4294 + 12 * 4, 12)


def test_one_size_mix_matches_link_bytes():
    assert mean_link_bytes(parse_sizes("1518")) == link_bytes(1518 - 46) == 1514


def test_fragmented_sizes_count_every_fragment():
    # 1518-byte frames at MTU 1000 leave as two frames, each with its own Ethernet and IPv4 header
    mixed = mean_link_bytes(parse_sizes("64:1,1518:1"), mtu=1000)
    assert mixed == Fraction(60 + link_bytes(1518 - 46, mtu=1000), 2)
    assert link_bytes(1518 - 46, mtu=1000) == 1514 + 14 + 20


def test_100mbit_imix_paces_frames_per_second_on_the_mean():
    mean = mean_link_bytes(parse_sizes("imix"))
    rate = parse_rate("100Mbit")
    assert rate.exact_pps(mean) == Fraction(100_000_000 * 12, 8 * 4294)
    assert round(rate.pps(mean)) == 34932  # not 100e6 / (8 x 1472-byte messages' 1514) = 8256
    schedule = make_schedule(PaceSpec.parse("100Mbit"), mean)
    assert abs(schedule.offsets(0, 2).tolist()[1] - 8 * 4294 / 12 / 100e6 * 1e9) <= 1  # ns between frames
