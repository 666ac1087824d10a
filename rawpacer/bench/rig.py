"""Where a run lives: the sandbox its config asks for, with the device under test set up inside.

compare, send and rfc2544 all open their topology here, so a DUT profile or script is installed the
same way for each: after the namespaces and links are up, before the first packet, in the DUT's
namespace only. Removing the namespaces removes the DUT's qdiscs and rulesets with them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rawpacer import dut
from rawpacer.bench.config import Config
from rawpacer.sandbox import Sandbox, Topology
from rawpacer.sandbox.ports import Ports


@contextlib.contextmanager
def sandbox(config: Config) -> Iterator[Topology]:
    """The run's topology; on a router, the DUT's profiles and script applied before it is yielded;
    with ``tx_iface``/``rx_iface``, the user's own two ports (nothing created)."""
    if config.tx_iface is not None and config.rx_iface is not None:
        with Ports(
            config.tx_iface, config.rx_iface, ip_version=config.ip_version, next_hop=config.next_hop_mac
        ) as topo:
            yield topo
        return
    built = Sandbox(
        config.topology, mtu=config.mtu, ip_version=config.ip_version, vlan=config.vlan, egress_mtu=config.egress_mtu
    )
    with built as topo:
        if topo.dut_ns is not None and topo.dut_in is not None and topo.dut_out is not None:
            dut.apply(topo.dut_ns, topo.dut_in, topo.dut_out, dut.parse_profiles(config.dut), config.dut_setup)
        yield topo
