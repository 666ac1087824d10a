"""RFC 2544/5180 frame sizes mapped to UDP payloads on lo and veth (no FCS there), and the option parsers."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawpacer.bench.rfc2544_suite import options
from rawpacer.bench.rfc2544_suite.result import Entry, Run
from rawpacer.bench.rfc2544_suite.sizes import (
    RFC2544_SIZES,
    RFC5180_SIZES,
    FrameSize,
    mapping_table,
    payload_for,
    size_for,
    size_range,
)
from rawpacer.errors import UsageError


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(UsageError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 2
    return message


def test_rfc2544_sizes_map_to_the_payload_left_after_fcs_and_headers():
    assert [payload_for(s) for s in RFC2544_SIZES] == [18, 82, 210, 466, 978, 1234, 1472]
    assert [payload_for(s, ipv6=True) for s in RFC5180_SIZES] == [12, 62, 190, 446, 958, 1214, 1452]


def test_a_1518_byte_frame_is_1514_bytes_on_lo_and_a_1500_byte_ip_packet():
    frame = FrameSize.of(1518, mtu=1500)
    assert (frame.wire_bytes, frame.ip_bytes, frame.payload_bytes) == (1514, 1500, 1472)
    assert mapping_table([64])[0] == (64, 60, 46, 18)


@given(st.integers(min_value=0, max_value=65_000), st.booleans())
def test_size_and_payload_are_inverse(payload, ipv6):
    low, high = size_range(ipv6)
    size = size_for(payload, ipv6=ipv6)
    if low <= size <= high:
        assert payload_for(size, ipv6=ipv6) == payload
    else:
        one_line_error(payload_for, size, ipv6=ipv6)


def test_64_bytes_cannot_hold_ipv6_and_udp_headers():
    assert "cannot hold FCS+Ethernet+IPv6+UDP (66 bytes)" in one_line_error(payload_for, 64, ipv6=True)
    assert payload_for(47) == 1 and "allowed: 47-" in one_line_error(payload_for, 46)


def test_a_size_over_the_mtu_is_refused_naming_the_mtu():
    assert payload_for(1518, mtu=1500) == 1472
    assert "at MTU 1500" in one_line_error(payload_for, 1519, mtu=1500)
    assert "65553" in one_line_error(payload_for, 70_000)


@pytest.mark.parametrize("bad", ["64", 64.0, True, None])
def test_a_size_must_be_an_integer(bad):
    assert "not an integer" in one_line_error(payload_for, bad)


def test_parse_sizes_defaults_to_the_rfc_lists_and_refuses_repeats_and_junk():
    assert [f.size for f in options.parse_sizes(None)] == list(RFC2544_SIZES)
    assert [f.size for f in options.parse_sizes(None, ipv6=True)] == list(RFC5180_SIZES)
    assert [f.payload_bytes for f in options.parse_sizes("1518, 64")] == [1472, 18]
    assert "named twice" in one_line_error(options.parse_sizes, "64,64")
    assert "frame size 'big' is not allowed" in one_line_error(options.parse_sizes, "64,big")
    assert "empty" in one_line_error(options.parse_sizes, "64,,128")
    assert "MTU 576" in one_line_error(options.parse_sizes, "1518", mtu=576)


def test_parse_tests_keeps_the_rfc_order():
    assert options.parse_tests("loss,throughput") == ("throughput", "loss")
    assert options.parse_tests(None) == ("throughput", "latency", "loss", "back-to-back")
    assert "use any of" in one_line_error(options.parse_tests, "throughput,jitter")
    assert "twice" in one_line_error(options.parse_tests, ["loss", "loss"])


@pytest.mark.parametrize(("text", "value"), [("0.5%", 0.005), ("0.005", 0.005), (0.01, 0.01), (" 10% ", 0.1)])
def test_fractions_are_written_with_or_without_a_percent_sign(text, value):
    assert options.parse_fraction("resolution", text, *options.RESOLUTION_RANGE) == pytest.approx(value)


@pytest.mark.parametrize("bad", ["0.5", "0", "abc", "nan", True, "-1%"])
def test_a_resolution_out_of_range_or_not_a_number_is_one_line(bad):
    message = one_line_error(options.make_settings, resolution=bad)
    assert message.startswith(f"resolution {bad!r}") and "0.01%-10%" in message


def test_trial_lengths_are_durations_not_op_counts():
    assert options.parse_duration("60s") == 60.0 and options.parse_duration("500ms") == 0.5
    assert options.parse_duration(3) == 3.0
    for bad in ("50x", "0", "-2s", "2 hours", "7200s"):
        assert one_line_error(options.make_settings, trial=bad).startswith(f"trial {bad!r}")
    assert options.make_settings(warmup="0").warmup_s == 0.0


def test_counts_and_tolerances_are_checked():
    assert options.make_settings(loss_tolerance="0.1%").loss_tolerance == pytest.approx(0.001)
    assert "loss tolerance" in one_line_error(options.make_settings, loss_tolerance="50%")
    assert "whole number 1-1000" in one_line_error(options.make_settings, b2b_repeats="2.5")
    assert "whole number" in one_line_error(options.make_settings, b2b_repeats=0)
    assert "loss step" in one_line_error(options.make_settings, loss_step="20%")


def test_drain_scales_rfc_2544s_two_seconds_to_the_trial_length():
    assert options.drain_for(60) == 2.0 and options.drain_for(600) == 2.0
    assert options.drain_for(30) == 1.0 and options.drain_for(2) == options.MIN_DRAIN_S
    settings = options.make_settings(trial="30s")
    assert settings.drain == 1.0 and settings.params()["drain_s"] == 1.0
    assert options.make_settings(drain="100ms").drain == 0.1


def test_a_size_mix_is_one_row_named_by_its_label():
    rows = options.parse_sizes("64,512,imix")
    assert [f.label for f in rows] == ["64", "512", "imix"]
    imix = rows[2]
    # the row's readers and writer hold its largest frame; its Mbit/s count the mean (RFC 6985)
    assert (imix.size, imix.payload_bytes, imix.mix is not None) == (1518, 1472, True)
    assert imix.mean_frame == Fraction(7 * 64 + 4 * 594 + 1518, 12)
    assert rows[0].mean_frame == 64 and rows[0].mix is None


def test_a_custom_mix_regroups_from_the_comma_list_or_is_one_sequence_item():
    assert [f.label for f in options.parse_sizes("128,64:7,594:4,1518:1")] == ["128", "imix"]
    assert [f.label for f in options.parse_sizes("64:1,1518:1,256")] == ["64:1,1518:1", "256"]
    assert [f.label for f in options.parse_sizes(["64", "64:3,1518:1"])] == ["64", "64:3,1518:1"]
    assert options.Settings(options.parse_sizes("64,imix")).params()["sizes"] == [64, "imix"]


@pytest.mark.parametrize(
    ("sizes", "why"),
    [
        ("64,imx", "frame size 'imx' is not allowed"),
        ("64:0,1518:1", "size 64: weight 0 is out of range"),
        ("64:-1", "size 64: weight -1 is out of range"),
        ("imix,IMIX", "frame size imix is named twice"),
        ("64:7,70000:1", "frame size 70000 is out of range"),
    ],
)
def test_bad_mixes_are_refused_in_one_line(sizes, why):
    assert why in one_line_error(options.parse_sizes, sizes)


def test_a_mix_entry_reports_mean_frame_mbit_and_sums_per_size_counts():
    entry = Entry("xdp", 1518, 1472, mix="imix", mean_frame=float(Fraction(4342, 12)))
    assert entry.name == "imix (mean 361.8 B)"
    assert entry.throughput_mbit is None
    entry.throughput_pps = 12_000.0
    assert entry.throughput_mbit == pytest.approx(12_000 * 4342 / 12 * 8 / 1e6)
    run = Run({}, {}, [Entry("xdp", 1518, 1472), entry, Entry("xdp", 64, 18)])
    assert run.sizes == ["64", "1518", "imix"]
    assert run.find("xdp", "imix") is entry and run.find("xdp", 1518) is not entry
    assert Entry.from_dict(json.loads(json.dumps(entry.to_dict()))).mean_size == entry.mean_size
