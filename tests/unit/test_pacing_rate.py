"""--rate/--burst/--pattern/--seed parsing, and the link bytes a bit rate is computed on."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest

from rawpacer.bench.config import check_pace
from rawpacer.errors import UsageError
from rawpacer.headers import build_fragments, build_frame
from rawpacer.limits import MAX_BURST, MAX_RATE_PPS, MAX_SEED, MIN_RATE_PPS
from rawpacer.pacing import (
    DEFAULT_CATCH_UP,
    PaceSpec,
    catch_up_label,
    link_bytes,
    parse_burst,
    parse_catch_up,
    parse_pattern,
    parse_rate,
    parse_seed,
    parse_spin,
)
from rawpacer.pacing.rate import PHYSICAL_ETHERNET_OVERHEAD


@pytest.mark.parametrize(
    ("text", "pps"),
    [
        ("250000", 250_000),
        ("10k", 10_000),
        ("10kpps", 10_000),
        (" 10 K ", 10_000),
        ("1.5Mpps", 1_500_000),
        ("1.5mpps", 1_500_000),
        ("1e4", 10_000),
        (".5k", 500),
        (5000, 5000),
        (2.5, 2.5),
    ],
)
def test_packet_rates(text, pps):
    rate = parse_rate(text)
    assert rate.unit == "pps"
    assert rate.pps() == pps
    assert rate.pps(1542) == pps, "a packet rate does not depend on the frame size"


@pytest.mark.parametrize(("text", "bits"), [("500kbit", 5e5), ("200Mbit", 2e8), ("1Gbit", 1e9), ("64000bit/s", 64e3)])
def test_bit_rates_count_link_bytes(text, bits):
    rate = parse_rate(text)
    assert rate.unit == "bit/s" and rate.value == bits
    frame = link_bytes(1500)
    assert rate.exact_pps(frame) == Fraction(int(bits), 8 * frame)
    assert rate.pps(frame) == pytest.approx(bits / (8 * frame))


@pytest.mark.parametrize(
    "text",
    [
        "0",
        "0k",
        "-5",
        "-5k",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "1e400",
        "",
        "   ",
        "k",
        "10x",
        "10 apples",
        "10kbps",
        "10MBps",
        "10kB",
        "1..2",
        "10k pps pps",
        "0.5",
        f"{MAX_RATE_PPS * 2:.0f}",
        "1Gpps",
        0,
        -1,
        0.0,
        float("nan"),
        float("inf"),
        MAX_RATE_PPS + 1,
        True,
        None,
        b"10k",
    ],
)
def test_bad_rates_name_the_value_in_one_line(text):
    with pytest.raises(UsageError) as caught:
        parse_rate(text)
    message = str(caught.value)
    assert message.startswith(f"rate {text!r} ")
    assert "\n" not in message
    assert "packets/s" in message


def test_bit_rate_out_of_range_once_converted():
    with pytest.raises(UsageError, match=r"rate '1kbit' is 0\.081\d* packets/s with 1542-byte frames"):
        parse_rate("1kbit").pps(1542)
    with pytest.raises(UsageError, match="needs each datagram's link bytes"):
        parse_rate("200Mbit").pps()
    assert parse_rate(f"{8 * 1542 * MIN_RATE_PPS:g}bit").pps(1542) == MIN_RATE_PPS


def test_link_bytes_is_every_frame_the_writer_hands_the_link():
    assert link_bytes(1500) == len(build_frame(5001, bytes(1500)))
    for size, mtu in [(1500, 576), (4000, 1500), (100, 1500), (65507, 9000)]:
        frames = build_fragments(5001, bytes(size), mtu)
        assert link_bytes(size, mtu=mtu) == sum(len(f) for f in frames)


def test_physical_ethernet_pads_short_frames_and_adds_24_bytes_each():
    assert link_bytes(1, physical=True) == 60 + PHYSICAL_ETHERNET_OVERHEAD
    assert link_bytes(1500, physical=True) == 1542 + PHYSICAL_ETHERNET_OVERHEAD
    frames = build_fragments(5001, bytes(1500), 576)
    assert link_bytes(1500, mtu=576, physical=True) == sum(len(f) + 24 for f in frames)


@pytest.mark.parametrize("bad", [-1, "x", 1.5, True, None])
def test_link_bytes_refuses_bad_sizes(bad):
    with pytest.raises(UsageError, match="payload_len"):
        link_bytes(bad)


@pytest.mark.parametrize(("value", "burst"), [(1, 1), ("8", 8), (" 16 ", 16), (MAX_BURST, MAX_BURST)])
def test_bursts(value, burst):
    assert parse_burst(value) == burst


@pytest.mark.parametrize("bad", [0, -1, MAX_BURST + 1, "0", "2.5", "x", "", 1.5, True, None])
def test_bad_bursts(bad):
    with pytest.raises(
        UsageError, match=rf"^burst {bad!r} is (not allowed|out of range); use an integer 1-{MAX_BURST}$"
    ):
        parse_burst(bad)


def test_patterns():
    assert parse_pattern("constant") == "constant"
    assert parse_pattern("poisson") == "poisson"
    with pytest.raises(UsageError, match="^pattern 'uniform' is not allowed; use one of: constant, poisson$"):
        parse_pattern("uniform")


def test_seeds():
    assert parse_seed("42") == 42
    assert parse_seed(MAX_SEED) == MAX_SEED
    drawn = {parse_seed(None) for _ in range(4)}
    assert len(drawn) == 4 and all(0 <= s <= MAX_SEED for s in drawn)


@pytest.mark.parametrize("bad", [-1, "x", "1.0", MAX_SEED + 1, True, 1.5])
def test_bad_seeds(bad):
    with pytest.raises(UsageError, match=rf"^seed {bad!r} is"):
        parse_seed(bad)


def test_pace_spec_parses_every_option():
    spec = PaceSpec.parse("10k", burst="4", pattern="poisson", seed="7")
    assert (spec.pps(), spec.burst, spec.pattern, spec.seed) == (10_000, 4, "poisson", 7)
    assert PaceSpec.parse("10k").seed is None
    assert PaceSpec.parse("10k", pattern="poisson").seed is not None, "a poisson stream records a drawn seed"
    with pytest.raises(UsageError, match="applies to --pattern poisson only"):
        PaceSpec.parse("10k", seed=3)
    with pytest.raises(UsageError, match="^burst"):
        PaceSpec.parse("10k", burst=0)


def test_spin_is_adaptive_unless_full_is_asked_for():
    assert PaceSpec.parse("10k").spin == "adaptive"
    assert PaceSpec.parse("10k", spin=" Full ").spin == "full" == parse_spin("full")
    with pytest.raises(UsageError, match="^spin 'busy' is not allowed; use adaptive or full$"):
        PaceSpec.parse("10k", spin="busy")


def test_spin_needs_a_rate():
    assert check_pace("10k", 1, "constant", None, "stream", False, "full") == PaceSpec.parse("10k", spin="full")
    with pytest.raises(UsageError, match="^--spin full says how a paced stream waits; give --rate too$"):
        check_pace(None, 1, "constant", None, "stream", False, "full")


@pytest.mark.parametrize(
    ("value", "factor"), [("1", 1.0), ("1.25", 1.25), (2, 2.0), (" 4 ", 4.0), ("burst", math.inf), ("INF", math.inf)]
)
def test_catch_up_is_a_factor_of_1_or_more_or_burst(value, factor):
    assert parse_catch_up(value) == factor
    assert PaceSpec.parse("10k", catch_up=value).catch_up == factor


@pytest.mark.parametrize(("bad", "why"), [("0.99", "out of range"), ("nan", "out of range"), ("fast", "not allowed")])
def test_bad_catch_ups_name_the_value_in_one_line(bad, why):
    with pytest.raises(
        UsageError, match=rf"^catch-up {bad!r} is {why}; use a factor of 1 or more \(default 1.25\) or burst$"
    ):
        parse_catch_up(bad)


def test_catch_up_defaults_to_no_bursts_shows_burst_for_inf_and_needs_a_rate():
    assert PaceSpec.parse("10k").catch_up == DEFAULT_CATCH_UP == 1.25
    assert (catch_up_label(math.inf), catch_up_label(2.0)) == ("burst", 2.0), "JSON has no infinity"
    assert check_pace("10k", 1, "constant", None, "stream", False, "adaptive", "burst").catch_up == math.inf
    with pytest.raises(UsageError, match="^--catch-up 2 says how a late paced stream catches up; give --rate too$"):
        check_pace(None, 1, "constant", None, "stream", False, "adaptive", "2")
