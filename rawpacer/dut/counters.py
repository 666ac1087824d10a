"""The device under test's counters at one moment, as one flat dict, every name prefixed ``dut.``:

- ``dut.link.IF.*``: both DUT links' rtnl_link_stats64 (``dut.link.rpd0.rx_packets``);
- ``dut.qdisc.IF.KIND.*``: every qdisc on both links, from TCA_STATS2 over netlink (basic: packets,
  bytes; queue: drops, overlimits, requeues), ``KIND@HANDLE`` when a link has two of a kind. Their
  queue lengths (backlog bytes, qlen packets) are gauges, not counts: named ``gauge.dut.qdisc...``,
  so a delta skips them (``counts``);
- ``dut.nft.COMMENT.*``: packets and bytes of every nftables rule with a counter and a comment,
  summed per comment, and ``.drops`` for rules whose verdict is drop; none when nft is not installed;
- ``dut.SECTION.NAME``: the namespace's MIB counters (snmp, netstat, snmp6), where forwarding shows:
  ``dut.Ip.ForwDatagrams``, ``dut.IpExt.InNoRoutes``, ``dut.Ip.FragFails``, ``dut.Icmp6.OutPktTooBigs``...
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

from pyroute2 import IPRoute

from rawpacer.dut.profiles import NFT_FAMILY, NFT_SCAN_CHAIN, NFT_TABLE
from rawpacer.errors import RawpacerError, SandboxError
from rawpacer.kernel.linkstats import link_stats
from rawpacer.kernel.mib import read_mib
from rawpacer.limits import DUT_COMMAND_TIMEOUT_S
from rawpacer.sandbox import netns
from rawpacer.sandbox.topology import off_event_loop

PREFIX = "dut."
GAUGE = "gauge."
"""Names of values that go up and down (queue lengths): a delta of two snapshots leaves them out."""

QDISC_COUNTS = {"TCA_STATS_BASIC": ("packets", "bytes"), "TCA_STATS_QUEUE": ("drops", "overlimits", "requeues")}
QDISC_GAUGES = ("backlog", "qlen")
SKIPPED_CHAINS = {(NFT_FAMILY, NFT_TABLE, NFT_SCAN_CHAIN)}
"""Chains never listed: rules:N's filler, which holds no counter and takes seconds to list at 100,000 rules."""


def _links(in_if: str, out_if: str) -> dict[str, int]:
    stats = link_stats()
    out: dict[str, int] = {}
    for ifname in (in_if, out_if):
        if ifname not in stats:
            raise SandboxError(f"interface {ifname!r} does not exist in the DUT's namespace")
        out.update({f"{PREFIX}link.{ifname}.{key}": value for key, value in stats[ifname].items()})
    return out


def qdisc_names(qdiscs: Iterable[tuple[str, int]]) -> list[str]:
    """Each (kind, handle) as named in counters: the kind, or ``kind@major`` (hex) when the link has
    two of that kind (``pfifo@10``)."""
    qdiscs = list(qdiscs)
    kinds = [kind for kind, _ in qdiscs]
    return [kind if kinds.count(kind) == 1 else f"{kind}@{handle >> 16:x}" for kind, handle in qdiscs]


def _qdiscs(in_if: str, out_if: str) -> dict[str, int]:
    out: dict[str, int] = {}
    with IPRoute() as ipr:
        for ifname in (in_if, out_if):
            msgs = list(ipr.get_qdiscs(index=ipr.link_lookup(ifname=ifname)[0]))
            names = qdisc_names((msg.get_attr("TCA_KIND"), msg["handle"]) for msg in msgs)
            for name, msg in zip(names, msgs):
                stats = msg.get_attr("TCA_STATS2")
                if stats is None:
                    continue
                stem = f"{PREFIX}qdisc.{ifname}.{name}."
                for attr, keys in QDISC_COUNTS.items():
                    values = stats.get_attr(attr) or {}
                    out.update({stem + key: int(values.get(key, 0)) for key in keys})
                queue = stats.get_attr("TCA_STATS_QUEUE") or {}
                out.update({GAUGE + stem + key: int(queue.get(key, 0)) for key in QDISC_GAUGES})
    return out


def _nft_json(*args: str) -> list[dict[str, Any]] | None:
    """``nft -j ARGS``'s objects, or None when nft is not installed."""
    try:
        done = subprocess.run(
            ("nft", "-j", *args), capture_output=True, text=True, timeout=DUT_COMMAND_TIMEOUT_S, check=False
        )
    except FileNotFoundError:
        return None
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()[:1] or ["nothing on stderr"]
        raise RawpacerError(f"cannot read the DUT's nftables counters (nft -j {' '.join(args)}): {said[0]}")
    objects: list[dict[str, Any]] = json.loads(done.stdout)["nftables"]
    return objects


def _counts_its_drops(exprs: list[dict[str, Any]]) -> bool:
    """True when the rule drops and its counter comes after every match: then it counts the drops."""
    keys = [next(iter(expr)) for expr in exprs]
    after = keys[keys.index("counter") + 1 :]
    return after[-1:] == ["drop"] and set(after) <= {"drop", "log"}


def nft_counters(objects: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``nft -j list`` objects -> ``dut.nft.COMMENT.packets``/``.bytes`` per comment (summed over its
    rules), and ``.drops`` for rules that drop; rules without a counter or a comment are left out."""
    out: dict[str, int] = {}
    for item in objects:
        rule = item.get("rule")
        if not rule or "comment" not in rule:
            continue
        counters = [expr["counter"] for expr in rule.get("expr", ()) if isinstance(expr.get("counter"), dict)]
        if not counters:
            continue
        stem = f"{PREFIX}nft.{rule['comment']}."
        names = ["packets", "bytes"] + (["drops"] if _counts_its_drops(rule["expr"]) else [])
        for name in names:
            out[stem + name] = out.get(stem + name, 0) + counters[0]["packets" if name == "drops" else name]
    return out


def _nft() -> dict[str, int]:
    """Every counted, commented rule of every chain but the skipped ones; {} without nft."""
    chains = _nft_json("list", "chains")
    if chains is None:
        return {}
    objects: list[dict[str, Any]] = []
    for item in chains:
        chain = item.get("chain")
        if chain and (chain["family"], chain["table"], chain["name"]) not in SKIPPED_CHAINS:
            objects += _nft_json("list", "chain", chain["family"], chain["table"], chain["name"]) or []
    return nft_counters(objects)


@off_event_loop
def snapshot(ns: str, in_if: str, out_if: str) -> dict[str, int]:
    """The DUT's counters now: its two links (``in_if`` facing the writer, ``out_if`` the readers),
    their qdiscs, its nftables rule counters and its namespace's MIB, as flat ``dut.`` names (from a
    worker thread when this one runs an asyncio loop, as in Jupyter: pyroute2 refuses to run in it)."""
    with netns.entered(ns):
        out = _links(in_if, out_if)
        out.update(_qdiscs(in_if, out_if))
        out.update(_nft())
        out.update({PREFIX + key: value for key, value in read_mib().items()})
    return out


def counts(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    """What moved between two snapshots, gauges left out."""
    moved = {}
    for key, value in after.items():
        change = value - before.get(key, 0)
        if change and not key.startswith(GAUGE):
            moved[key] = change
    return moved
