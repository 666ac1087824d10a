"""The side-by-side benchmark (calibrated op loops per writer, allocation counts, the Go seed) and
RFC 2544 on kernel paths.

``compare(...)`` is ``rawpacer compare`` from Python and ``rfc2544(...)`` is ``rawpacer rfc2544``:
same options, same checks, a ``Report`` or an RFC 2544 ``Run``. Their keyword parameters are
``make_config``'s and ``make_rfc2544_config``'s with the methodology's (tests/unit/test_api.py keeps
them in step), spelled out so that an editor and mypy see them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rawpacer.bench.calibrate import parse_benchtime, predict_n
from rawpacer.bench.methodology import Run
from rawpacer.bench.methodology.options import (
    DEFAULT_B2B_REPEATS,
    DEFAULT_LOSS_STEP,
    DEFAULT_PDR,
    DEFAULT_RESOLUTION,
    DEFAULT_TRIAL_S,
    DEFAULT_WARMUP_S,
)
from rawpacer.bench.result import Report, Sample, WriterResult

if TYPE_CHECKING:
    from rawpacer.writers.base import Fit


def compare(
    *,
    writers: str | Sequence[str] | None = None,
    readers: int | str | Sequence[int] = 100,
    size: int | str = 1500,
    payload: str = "crypto",
    fit: str | Fit = "trim",
    mode: str = "fanout",
    topology: str = "lo",
    mtu: int | str | None = None,
    benchtime: str | float = "1s",
    count: int | str = 1,
    with_go: bool = False,
    pcap: str | None = None,
    ci: bool = False,
    ip_version: int | str = 4,
    vlan: int | str | None = None,
    vlan_priority: int | str = 0,
    rate: str | float | None = None,
    burst: int | str = 1,
    pattern: str = "constant",
    seed: int | str | None = None,
    spin: str = "adaptive",
    per_op_pacing: bool = False,
    egress_mtu: int | str | None = None,
    dut: str | Sequence[str] | None = None,
    dut_setup: str | Sequence[str] | None = None,
    tx_iface: str | None = None,
    rx_iface: str | None = None,
    next_hop_mac: str | None = None,
    remote: str | None = None,
    remote_addr: str | None = None,
    sizes: str | None = None,
    vary: str | Sequence[str] | None = None,
) -> Report:
    """Run a comparison in a fresh sandbox and return its Report; every option is ``rawpacer
    compare``'s, checked by ``make_config`` (UsageError, one line) before anything is created."""
    from rawpacer.bench.config import make_config
    from rawpacer.bench.session import Session
    from rawpacer.host import describe, environment

    config = make_config(
        writers=writers,
        readers=readers,
        size=size,
        payload=payload,
        fit=fit,
        mode=mode,
        topology=topology,
        mtu=mtu,
        benchtime=benchtime,
        count=count,
        ci=ci,
        with_go=with_go,
        pcap=pcap,
        ip_version=ip_version,
        vlan=vlan,
        vlan_priority=vlan_priority,
        rate=rate,
        burst=burst,
        pattern=pattern,
        seed=seed,
        spin=spin,
        per_op_pacing=per_op_pacing,
        egress_mtu=egress_mtu,
        dut=dut,
        dut_setup=dut_setup,
        tx_iface=tx_iface,
        rx_iface=rx_iface,
        next_hop_mac=next_hop_mac,
        remote=remote,
        remote_addr=remote_addr,
        sizes=sizes,
        vary=vary,
    )
    return Session(config, Report(describe(), config.params(), environment=environment())).run()


def rfc2544(
    *,
    writers: str | Sequence[str] | None = None,
    readers: int | str = 100,
    topology: str = "lo",
    mtu: int | str | None = None,
    payload: str = "crypto",
    ip_version: int | str = 4,
    egress_mtu: int | str | None = None,
    dut: str | Sequence[str] | None = None,
    dut_setup: str | Sequence[str] | None = None,
    tx_iface: str | None = None,
    rx_iface: str | None = None,
    next_hop_mac: str | None = None,
    remote: str | None = None,
    remote_addr: str | None = None,
    vary: str | Sequence[str] | None = None,
    seed: int | str | None = None,
    sizes: str | Sequence[int | str] | None = None,
    tests: str | Sequence[str] | None = None,
    trial: str | float = DEFAULT_TRIAL_S,
    resolution: str | float = DEFAULT_RESOLUTION,
    loss_tolerance: str | float = 0.0,
    loss_step: str | float = DEFAULT_LOSS_STEP,
    b2b_repeats: int | str = DEFAULT_B2B_REPEATS,
    latency_trials: int | str = 1,
    warmup: str | float = DEFAULT_WARMUP_S,
    drain: str | float | None = None,
    search: str = "binary",
    pdr: str | float = DEFAULT_PDR,
    repeat: int | str = 1,
    json: str | os.PathLike[str] | None = None,
) -> Run:
    """Run RFC 2544's tests in a fresh sandbox and return the Run; the options are ``rawpacer
    rfc2544``'s (durations like ``"2s"`` or seconds, fractions like ``"0.5%"`` or 0.005), checked
    before anything is created; ``json`` keeps that file up to date as trials end."""
    from rawpacer.bench.methodology import Recorder
    from rawpacer.bench.rfc2544_live import make_rfc2544_config, new_run_for, run_rfc2544

    config = make_rfc2544_config(
        writers=writers,
        readers=readers,
        topology=topology,
        mtu=mtu,
        payload=payload,
        ip_version=ip_version,
        egress_mtu=egress_mtu,
        dut=dut,
        dut_setup=dut_setup,
        tx_iface=tx_iface,
        rx_iface=rx_iface,
        next_hop_mac=next_hop_mac,
        remote=remote,
        remote_addr=remote_addr,
        vary=vary,
        seed=seed,
        sizes=sizes,
        tests=tests,
        trial=trial,
        resolution=resolution,
        loss_tolerance=loss_tolerance,
        loss_step=loss_step,
        b2b_repeats=b2b_repeats,
        latency_trials=latency_trials,
        warmup=warmup,
        drain=drain,
        search=search,
        pdr=pdr,
        repeat=repeat,
    )
    return run_rfc2544(config, Recorder(new_run_for(config), json))


__all__ = ["Report", "Run", "Sample", "WriterResult", "compare", "parse_benchtime", "predict_n", "rfc2544"]
