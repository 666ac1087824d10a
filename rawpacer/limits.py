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

# --- the device under test (--dut profiles, rawpacer/dut/) ---------------------------------------

MIN_DUT_BIT_RATE = 1_000
"""Slowest shaper or policer bit rate a --dut profile takes: 1 kbit/s."""

MAX_DUT_BIT_RATE = 100_000_000_000
"""Fastest: 100 Gbit/s (nft's byte limit overflows its token bucket near 17 GB/s: net/netfilter/nft_limit.c)."""

MIN_DUT_PPS = 1
"""Slowest packet-rate policer: one packet a second (nft's packet limits count whole packets per second)."""

MAX_DUT_PPS = 100_000_000
"""Fastest packet-rate policer, as --rate's top (MAX_RATE_PPS)."""

POLICE_BURSTS_PER_S = 100
"""A packet policer's default bucket is its rate over this: 10 ms of the rate (police:RATE)."""
MIN_POLICE_BURST = 5
"""...and never less than nft's own default burst, 5 packets (nft(8), limit statement)."""
MAX_POLICE_BURST = 100_000_000
"""The largest burst=N a police profile takes, in packets."""

DEFAULT_TBF_BURST = 32 * 1024
"""tbf's bucket when none is given: 32 KiB ("32kb" to tc), as in the measurement of issue #20."""

DEFAULT_TBF_LATENCY_US = 20_000
"""tbf's queue when neither limit nor latency is given: as long as 20 ms of the rate (issue #20)."""

MIN_TBF_BURST = 1_600
"""Smallest tbf bucket: a full 1500-byte-MTU frame with its Ethernet and VLAN headers (1518) must fit,
or tbf drops every such frame (sch_tbf.c: a packet longer than the bucket is never sent)."""

MAX_TBF_SIZE = 1 << 30
"""Largest tbf bucket or queue limit: 1 GiB."""

MIN_TBF_LIMIT = 1_600
"""Smallest tbf queue limit: one full 1500-byte-MTU frame."""

MIN_TBF_LATENCY_US = 100
"""Shortest tbf queue (latency): 100 µs."""

MAX_TBF_LATENCY_US = 60_000_000
"""Longest tbf queue (latency): 60 s."""

MAX_DROP_DECIMALS = 9
"""Most decimals a --dut drop:FRACTION takes: nft's numgen modulus is 32 bits, and 10**9 fits."""

MAX_DUT_RULES = 100_000
"""Most filler rules rules:N adds ahead of the accept."""

DUT_COMMAND_TIMEOUT_S = 120.0
"""Longest one DUT setup line may run (a 100,000-rule ruleset loads in well under it)."""
