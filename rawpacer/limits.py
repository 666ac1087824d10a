"""Every limit and default rawpacer enforces, in one place: the builders, writers, readers, sandbox
and CLI all check against these names, so a range reads the same in every error message.
"""

from __future__ import annotations

MAX_PORT = 65535
"""UDP ports are 16 bits (RFC 768)."""

MAX_UDP_PAYLOAD = 65507
"""Largest UDP payload one IPv4 datagram carries: 65535 (total length) - 20 (IPv4) - 8 (UDP)."""

MAX_UDP_PAYLOAD_V6 = 65527
"""Largest UDP payload one IPv6 packet carries without a jumbogram: 65535 (payload length) - 8 (UDP)."""

MIN_MTU = 68
"""Smallest MTU an IPv4 link may have (RFC 791)."""

MIN_MTU_V6 = 1280
"""Smallest MTU an IPv6 link may have (RFC 8200, section 5)."""

MAX_MTU = 65536
"""Largest MTU Linux gives a link: lo's default."""

DEFAULT_LINK_MTU = 1500
"""The MTU of the sandbox's veth links unless ``--mtu`` says otherwise: Ethernet's (RFC 894)."""

DEFAULT_SPORT = 40101
"""The writer's source port: the seed's ``testPort``."""

FIRST_PORT = 5001
"""The first reader port, as the seed's ``testInit`` counter starts just above 5000."""

MAX_READERS = 10_000
"""Most reader sockets one run opens (the sweep's top; each is a file descriptor)."""

MIN_MESSAGE_SIZE = 1
"""Smallest message: a reader must receive something to check."""

MAX_MESSAGE_SIZE = MAX_UDP_PAYLOAD
"""Largest message: what one IPv4 UDP datagram carries (the standard writers' kernel limit)."""

MIN_RATE_PPS = 1.0
"""Slowest paced stream (--rate): one datagram a second; anything slower is not a stream to measure."""

MAX_RATE_PPS = 100_000_000.0
"""Fastest paced stream (--rate): a 10 ns gap, below which reading the clock costs more than the gap."""

MAX_BURST = 1024
"""Most datagrams per departure (--burst): UIO_MAXIOV, the most messages one sendmmsg(2) call takes."""

MAX_SEED = 2**63 - 1
"""Largest --seed: seeds are recorded in the JSON and fit a signed 64-bit integer."""
