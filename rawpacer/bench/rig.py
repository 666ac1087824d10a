"""Where a run lives: the sandbox its config asks for, with the device under test set up inside;
or, with ``--remote``, readers on other hosts (rawpacer.remote) and writers here.

compare, send and rfc2544 all open their topology, readers and writers here, so a DUT profile or
script is installed the same way for each (after the namespaces and links are up, before the first
packet, in the DUT's namespace only; removing the namespaces removes the DUT's qdiscs and rulesets
with them), and a remote run differs from a local one in these three functions only.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

from rawpacer import dut
from rawpacer.bench.config import Config
from rawpacer.messages import MessageSource
from rawpacer.readers import ReaderSet
from rawpacer.remote import route
from rawpacer.remote.fan import FanWriter
from rawpacer.remote.readerset import AnyReaders, RemoteReaderSet
from rawpacer.sandbox import Sandbox, Topology
from rawpacer.sandbox.ports import Ports
from rawpacer.target import Target
from rawpacer.writers.base import Writer, WriterOptions


@contextlib.contextmanager
def sandbox(config: Config) -> Iterator[Topology]:
    """The run's topology; on a router, the DUT's profiles and script applied before it is yielded;
    with ``tx_iface``/``rx_iface``, the user's own two ports (nothing created); with ``remote``,
    this namespace as the writer's (nothing created: the readers' hosts are the remote ones)."""
    if config.remote:
        yield Topology("remote", "", "", config.tx_iface or "", "", "", "", 0, ip_version=config.ip_version)
        return
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
        if topo.dut_ports is not None:
            dut.apply(*topo.dut_ports, dut.parse_profiles(config.dut), config.dut_setup)
        yield topo


def readers(config: Config, topo: Topology, count: int, *, size: int | None = None, timeout: float = 1.0) -> AnyReaders:
    """``count`` readers of ``size``-byte messages (default the config's): in the sandbox's reader
    namespace, or spread over the remote hosts."""
    size = config.size if size is None else size
    if config.remote:
        addrs = list(config.remote_addr) or None
        return RemoteReaderSet(config.remote, count, size, addrs=addrs, timeout=timeout)
    return ReaderSet(topo, count, size, timeout=timeout)


def source(config: Config, readers: AnyReaders, size: int | None = None) -> MessageSource:
    """The run's message source; remote readers are told of it, so a fill crosses the wire as its seed."""
    made = MessageSource.make(config.payload, config.size if size is None else size)
    if isinstance(readers, RemoteReaderSet):
        readers.attach(made)
    return made


def open_writer(
    config: Config,
    topo: Topology,
    readers: AnyReaders,
    cls: type[Writer],
    options: WriterOptions,
    target: Target | None = None,
) -> Writer:
    """A writer of ``cls`` sending to ``readers``: in the writer namespace (toward ``target`` when the
    caller already read it: reading the link from the kernel is best done once per reader set, not in
    every writer pass); to remote hosts, one per host (``FanWriter``) toward each host's address, raw
    ones out of ``--tx-iface``."""
    if isinstance(readers, RemoteReaderSet):
        targets = [
            route.target(s.addr, s.ports, config.tx_iface, config.next_hop_mac, config.ip_version)
            for s in readers.shares
        ]
        options = dataclasses.replace(options, allow_iface=config.tx_iface)
        return cls(targets[0], options) if len(targets) == 1 else FanWriter(cls, targets, options)
    with topo.enter("writer"):
        return cls(target or local_target(config, topo, readers), options)


def local_target(config: Config, topo: Topology, readers: AnyReaders) -> Target:
    """Where a fan-out to local ``readers`` goes, as the kernel reports the sandbox's link now."""
    return topo.target(readers.ports, vlan_priority=config.vlan_priority)
