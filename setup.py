"""Declares rawpacer's optional C extensions; all other metadata lives in pyproject.toml.

``_checksum`` makes FrameTemplate.stamp 70x dpkt (pure-Python fallback otherwise); ``_alloccount``
counts allocations for compare's allocs/op (tracemalloc's bytes-only fallback otherwise);
``_readloop`` is the readers' receive-and-check loop (the pure-Python loop otherwise); ``readers._record``
a replay's recording loop (its Python twin otherwise); ``_pace``
is the pacer's core and waits for its deadlines (the pure-Python twin otherwise); ``engine._engine`` is the one transmit engine (sendmmsg batches, the TPACKET_V2
TX ring, AF_XDP) the batch writers send through, unpaced or paced by ``_pace``'s core (those writers
are unavailable without it); ``traffic._lane`` reads classic pcap in chunks and rewrites a replay's common
frames (the Python path, ``traffic.Rewriter``, otherwise).
"""

from setuptools import Extension, setup

SEQUENCE_H = "rawpacer/_sequence.h"  # the stream datagrams' sequence field, shared by _readloop and _engine
PACECORE_H = "rawpacer/_pacecore.h"  # the pacer's C core, shared by _pace and _engine
RXSTAMP_H = "rawpacer/_rxstamp.h"  # a received datagram's kernel timestamp, shared by _readloop and _record
DGHASH_H = "rawpacer/_dghash.h"  # a replay's datagram hash, shared by _checksum, its planner and recorder
PYMODULE_H = "rawpacer/_pymodule.h"  # type heads, table entries, module definition and PyInit's body, shared by all
STRICT = ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]

C_EXTENSIONS = {
    "rawpacer._readloop": ("rawpacer/_readloop.c", [SEQUENCE_H, RXSTAMP_H, PYMODULE_H]),
    "rawpacer._pace": ("rawpacer/_pace.c", [PACECORE_H, PYMODULE_H]),
    "rawpacer.engine._engine": (
        "rawpacer/engine/_engine.c",
        [SEQUENCE_H, PACECORE_H, PYMODULE_H, "rawpacer/engine/_ring.h"],
    ),
    "rawpacer.readers._record": ("rawpacer/readers/_record.c", [DGHASH_H, RXSTAMP_H, PYMODULE_H]),
    "rawpacer.traffic._lane": ("rawpacer/traffic/_lane.c", [SEQUENCE_H, DGHASH_H, PYMODULE_H]),
}
"""The strictly compiled extensions: module -> (source, the headers it depends on)."""

setup(
    ext_modules=[
        Extension(
            "rawpacer._checksum",
            sources=["rawpacer/_checksum.c"],
            depends=[SEQUENCE_H, DGHASH_H, PYMODULE_H],
            optional=True,
            extra_compile_args=["-O2"],
        ),
        Extension("rawpacer._alloccount", sources=["rawpacer/_alloccount.c"], depends=[PYMODULE_H], optional=True),
        *(
            Extension(name, sources=[source], depends=depends, optional=True, extra_compile_args=STRICT)
            for name, (source, depends) in C_EXTENSIONS.items()
        ),
    ]
)
