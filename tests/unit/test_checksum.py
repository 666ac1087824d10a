"""The C and pure-Python ones'-complement sums agree with each other, with dpkt, and with RFC 1071."""

from __future__ import annotations

import importlib
import subprocess
import sys

import dpkt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rawpacer import _checksum as c_ext  # built by sudo-run.sh: test_every_c_extension_is_built says if not
from rawpacer.headers import checksum as ck

datas = st.one_of(
    st.binary(max_size=300),
    st.integers(0, 70000).map(lambda n: bytes([0xFF]) * n),
    st.binary(min_size=1400, max_size=1600),
)
initials = st.one_of(st.just(0), st.integers(0, 0xFFFF), st.integers(0, 1 << 40))


def rfc1071(data: bytes, initial: int = 0) -> int:
    """Textbook RFC 1071 sum: add big-endian words, fold the carries back in."""
    if len(data) % 2:
        data += b"\0"
    s = initial + sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def test_extension_is_in_use() -> None:
    assert ck.IMPLEMENTATION == "c"
    assert ck.ones_sum is c_ext.ones_sum


@settings(max_examples=300, deadline=None)
@given(datas, initials)
def test_c_and_python_and_textbook_agree(data: bytes, initial: int) -> None:
    want = rfc1071(data, initial)
    assert c_ext.ones_sum(data, initial) == want
    assert ck.python_ones_sum(data, initial) == want


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2000))
def test_checksum_matches_dpkt(data: bytes) -> None:
    assert ck.checksum(data) == dpkt.in_cksum(data)


@pytest.mark.parametrize("data", [b"", b"\0", b"\0\0\0", b"\xff\xff", b"\xff\xff" * 3, b"\xff", b"\x01\x02\x03"])
def test_zero_and_all_ones_edges(data: bytes) -> None:
    for initial in (0, 0xFFFF, 0x10000):
        assert c_ext.ones_sum(data, initial) == ck.python_ones_sum(data, initial) == rfc1071(data, initial)


def test_buffer_types_and_no_copy_views() -> None:
    raw = bytes(range(256)) * 7
    want = rfc1071(raw)
    for buf in (raw, bytearray(raw), memoryview(raw), memoryview(raw)[1:][:-1]):
        assert c_ext.ones_sum(buf) == rfc1071(bytes(buf))
    assert c_ext.ones_sum(memoryview(raw)) == want


def test_bad_arguments_raise() -> None:
    with pytest.raises(TypeError):
        c_ext.ones_sum("text")
    with pytest.raises(TypeError):
        c_ext.ones_sum()
    with pytest.raises(OverflowError):
        c_ext.ones_sum(b"", -1)


def test_known_vector() -> None:
    # RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to ddf2.
    assert ck.ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2
    assert ck.checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


def test_python_fallback_picked_without_extension() -> None:
    """With the extension unimportable, the module says "python" and still computes right."""
    code = (
        "import sys; sys.modules['rawpacer._checksum'] = None\n"
        "from rawpacer.headers import checksum as ck, FrameTemplate, build_frame\n"
        "assert ck.IMPLEMENTATION == 'python', ck.IMPLEMENTATION\n"
        "assert FrameTemplate(40000).stamp(b'abc') == build_frame(40000, b'abc')\n"
        "print(ck.IMPLEMENTATION)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "python"


@pytest.mark.parametrize(
    "name", ["_checksum", "_alloccount", "_readloop", "_pace", "engine._engine", "readers._record"]
)
def test_every_c_extension_is_built(name):
    """sudo-run.sh installs gcc and the Python headers, so a silent optional-build failure is a bug."""
    importlib.import_module(f"rawpacer.{name}")


def test_the_c_paths_are_the_ones_in_use():
    from rawpacer import _alloccount
    from rawpacer.headers.checksum import IMPLEMENTATION
    from rawpacer.pacing import IMPLEMENTATION as PACER
    from rawpacer.readers import ReaderTuning

    assert (IMPLEMENTATION, PACER, ReaderTuning().resolved_loop) == ("c", "c", "c")
    _alloccount.install()
    try:
        before = _alloccount.read()
        junk = [bytearray(100) for _ in range(10)]
        after = _alloccount.read()
    finally:
        _alloccount.uninstall()
    assert len(junk) == 10 and after[0] - before[0] >= 10 and after[1] - before[1] >= 1000
