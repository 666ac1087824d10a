"""Traffic beyond the fan-out, pure code for the replay and send paths above it ([docs/traffic.md]):

- ``capture``: ``read_capture(path)`` streams the frames of a pcap or pcapng file as ``Record``s;
- ``rewrite``: ``Rewriter`` maps every UDP flow of a capture onto a ``Endpoints`` (checksums updated
  incrementally, RFC 1624);
- ``lane``: a capture read in chunks (``read_chunks``, classic pcap parsed in C) and ``lane_for``, the
  Rewriter's C fast lane for the common UDP frame (``_lane.c``, optional);
- ``sizes``: ``parse_sizes("imix")`` and the order a ``SizeMix`` sends its sizes in;
- ``vary``: ``parse_vary("sport=1000-1999:random")`` and the per-packet values, as numpy arrays,
  packet k's from k alone;
- ``stamp``: the fields the transmit engine stamps into every frame as it leaves (sport, src-ip,
  flow label, VLAN id) and their spec;
- ``pool``: a shaped stream's frames, built in bulk, and the numpy twin of what leaves.
"""

from rawpacer.traffic.capture import LinkType, Record, read_capture
from rawpacer.traffic.rewrite import Endpoints, Rewriter, Rewritten, make_endpoints, update_checksum
from rawpacer.traffic.sizes import SizeMix, parse_sizes
from rawpacer.traffic.vary import Variation, VaryStream, parse_varies, parse_vary

__all__ = [
    "Endpoints",
    "LinkType",
    "Record",
    "Rewriter",
    "Rewritten",
    "SizeMix",
    "Variation",
    "VaryStream",
    "make_endpoints",
    "parse_sizes",
    "parse_varies",
    "parse_vary",
    "read_capture",
    "update_checksum",
]
