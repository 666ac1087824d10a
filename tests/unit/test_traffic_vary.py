"""--vary: parsing every field and range form, inc sequences that wrap, seeded random ones that repeat and
stay in range, chunked streams equal to one call, IPv6 sums that carry, and every refusal in one line."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawpacer.errors import UsageError
from rawpacer.traffic.vary import FIELDS, Variation, parse_varies, parse_vary


def test_inc_walks_the_range_and_wraps():
    values = parse_vary("sport=1000-1002").values(7)
    assert values.dtype == np.uint16 and values.tolist() == [1000, 1001, 1002, 1000, 1001, 1002, 1000]


def test_fields_and_their_types():
    assert parse_vary("vlan=4094").values(2).tolist() == [4094, 4094]
    label = parse_vary("flow-label=1048574-1048575").values(3)
    assert label.dtype == np.uint32 and label.tolist() == [1048574, 1048575, 1048574]
    v4 = parse_vary("dst-ip=198.19.0.2-198.19.0.200:inc").values(3)
    assert v4.dtype == np.uint32 and [str(ipaddress.IPv4Address(int(a))) for a in v4] == [
        "198.19.0.2",
        "198.19.0.3",
        "198.19.0.4",
    ]
    v6 = parse_vary("src-ip=2001:2:0:2::2-2001:2:0:2::ff").values(2)
    assert v6.shape == (2, 16) and [str(ipaddress.IPv6Address(bytes(r))) for r in v6] == [
        "2001:2:0:2::2",
        "2001:2:0:2::3",
    ]


def test_ipv6_values_carry_across_64_bits():
    rows = parse_vary("dst-ip=2001:2:0:2:ffff:ffff:ffff:fffe-2001:2:0:3::1").values(5)
    assert [str(ipaddress.IPv6Address(bytes(r))) for r in rows] == [
        "2001:2:0:2:ffff:ffff:ffff:fffe",
        "2001:2:0:2:ffff:ffff:ffff:ffff",
        "2001:2:0:3::",
        "2001:2:0:3::1",
        "2001:2:0:2:ffff:ffff:ffff:fffe",
    ]


@settings(max_examples=60, deadline=None)
@given(
    st.sampled_from(["sport", "dport", "vlan", "flow-label", "dst-ip", "src-ip"]),
    st.integers(0, 2**63 - 1),
    st.integers(1, 5000),
    st.lists(st.integers(0, 300), min_size=1, max_size=5),
)
def test_random_is_seeded_in_range_and_chunks_continue_one_stream(name, seed, span, chunks):
    low = {"sport": 1, "dport": 1, "vlan": 1, "flow-label": 0}.get(name)
    if low is None:
        text = f"{name}=198.18.0.0-{ipaddress.IPv4Address(int(ipaddress.IPv4Address('198.18.0.0')) + span - 1)}:random"
    else:
        high = min(low + span - 1, {"vlan": 4094, "flow-label": 2**20 - 1}.get(name, 65535))
        text = f"{name}={low}-{high}:random"
    variation = parse_vary(text, seed=seed)
    whole = variation.values(sum(chunks))
    assert np.array_equal(whole, parse_vary(text, seed=seed).values(sum(chunks)))
    stream = variation.stream()
    assert np.array_equal(np.concatenate([stream.take(n) for n in chunks]), whole)
    assert np.all((whole >= variation.low) & (whole <= variation.high))


def test_inc_chunks_continue_where_the_last_ended():
    stream = parse_vary("dport=5001-5003").stream()
    assert [stream.take(2).tolist(), stream.take(3).tolist()] == [[5001, 5002], [5003, 5001, 5002]]


def test_random_covers_the_range_evenly():
    values = parse_vary("dport=5001-5010:random", seed=1).values(100_000)
    counts = np.bincount(values - 5001, minlength=10)
    assert counts.min() > 9_500 and counts.max() < 10_500


def test_an_unseeded_random_variation_records_its_seed():
    variation = parse_vary("sport=1-100:random")
    assert variation.seed is not None
    assert np.array_equal(variation.values(50), parse_vary("sport=1-100:random", seed=variation.seed).values(50))
    assert parse_vary("sport=1-100:inc", seed=5).seed is None


def test_fields_of_one_run_draw_independently():
    varies = parse_varies(["sport=1-65535:random", "dport=1-65535:random"], seed=3)
    assert not np.array_equal(varies["sport"].values(100), varies["dport"].values(100))
    assert varies["sport"].seed == varies["dport"].seed == 3


def test_the_allowed_range_narrows_addresses_and_ports():
    assert parse_vary("dst-ip=198.19.0.2-198.19.0.9", allowed="198.19.0.0/24").span == 8
    assert parse_vary("dport=5001-5002", allowed=(5001, 5010)).low == 5001
    with pytest.raises(UsageError, match=r"range 198.19.1.2-198.19.1.9 is outside the allowed 198.19.0.0-198.19.0.255"):
        parse_vary("dst-ip=198.19.1.2-198.19.1.9", allowed="198.19.0.0/24")
    with pytest.raises(UsageError, match="outside the allowed 5001-5010"):
        parse_vary("dport=5001-5011", allowed="5001-5010")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ttl=1-2", "field 'ttl' is not one of " + ", ".join(FIELDS)),
        ("sport", "has no '='"),
        ("sport=", "range is empty"),
        ("sport=:random", "range is empty"),
        ("sport=1000-", "range's end is empty"),
        ("sport=2000-1000", "range '2000-1000' is reversed"),
        ("sport=0-10", "outside the allowed 1-65535"),
        ("vlan=0-5", "outside the allowed 1-4094"),
        ("vlan=4095", "outside the allowed 1-4094"),
        ("flow-label=0-1048576", "outside the allowed 0-1048575"),
        ("dst-ip=10.0.0.1-10.0.0.9", "outside the allowed 198.18.0.0-198.19.255.255"),
        ("dst-ip=2001:db8::1-2001:db8::9", "outside the allowed 2001:2::-2001:2:0:ffff:ffff:ffff:ffff:ffff"),
        ("dst-ip=198.18.0.1-2001:2::1", "mixes IPv4 and IPv6"),
        ("dst-ip=198.18.0.300", "'198.18.0.300' is not an IPv4 or IPv6 address"),
        ("sport=1-2:fast", "mode 'fast' is not inc or random"),
        ("dst-ip=198.18.0.1-198.18.0.2:fast", "mode 'fast' is not inc or random"),
        ("sport=a-b", "'a' is not an integer"),
    ],
)
def test_bad_variations_are_one_line(text, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        parse_vary(text)
    assert "\n" not in str(caught.value)


def test_run_level_refusals():
    with pytest.raises(UsageError, match="sport is given twice"):
        parse_varies(["sport=1-2", "sport=3-4"])
    with pytest.raises(UsageError, match="one IP version"):
        parse_varies(["src-ip=198.18.0.1-198.18.0.2", "dst-ip=2001:2::1-2001:2::2"])
    with pytest.raises(UsageError, match="flow-label needs IPv6"):
        parse_varies(["dst-ip=198.18.0.1-198.18.0.2", "flow-label=1-2"])
    with pytest.raises(UsageError, match="flow-label needs IPv6"):
        parse_vary("flow-label=1-2", ip_version=4)
    with pytest.raises(UsageError, match="is IPv6 but this run is IPv4"):
        parse_vary("dst-ip=2001:2::1-2001:2::2", ip_version=4)
    with pytest.raises(UsageError, match="seed -3 is out of range"):
        parse_vary("sport=1-2:random", seed=-3)


def test_a_variation_is_plain_data():
    assert parse_vary("sport=7-9:random", seed=4) == Variation("sport", 7, 9, "random", 4, None)
