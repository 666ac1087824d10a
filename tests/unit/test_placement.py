"""--cpu: the one-line refusals, and a pinned thread's mask set and given back."""

from __future__ import annotations

import os
import threading

import pytest

from rawpacer.errors import UsageError
from rawpacer.host.placement import Placement, parse_cpu


def test_no_cpu_leaves_placement_to_the_scheduler():
    assert parse_cpu(None) is None


def test_a_cpu_the_process_may_use_leaves_the_rest_to_everything_else():
    assert parse_cpu("2", {0, 1, 2, 3}) == Placement(2, frozenset({0, 1, 3}))
    assert parse_cpu(0, {0, 1}).as_dict() == {"sender": 0, "others": [1]}


@pytest.mark.parametrize(
    ("value", "allowed", "named"),
    [
        ("one", {0, 1}, "--cpu 'one' is not a CPU number; this process may use CPUs 0,1"),
        ("4", {0, 1}, "--cpu 4 is not a CPU this process may use; use one of 0,1"),
        ("-1", {0, 1}, "--cpu -1 is not a CPU this process may use; use one of 0,1"),
        ("0", {0}, "--cpu 0 leaves no CPU for the readers and the planning; this process may use only CPU 0"),
    ],
)
def test_a_cpu_that_cannot_be_used_is_refused_in_one_line(value, allowed, named):
    with pytest.raises(UsageError, match=f"^{named}$"):
        parse_cpu(value, allowed)


def test_the_sending_thread_runs_on_its_cpu_and_gets_its_mask_back():
    allowed = os.sched_getaffinity(0)
    cpu = min(allowed)
    placement = Placement(cpu, frozenset(allowed - {cpu}) or frozenset(allowed))
    with placement.sending():
        assert os.sched_getaffinity(0) == {cpu}
    assert os.sched_getaffinity(0) == allowed


def test_another_thread_moves_itself_off_the_senders_cpu_alone():
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        allowed_others = frozenset(allowed)  # a 1-CPU host: "elsewhere" is the one CPU, still set
    else:
        allowed_others = frozenset(allowed - {min(allowed)})
    placement = Placement(min(allowed), allowed_others)
    seen: list[set[int]] = []

    def work() -> None:
        placement.elsewhere()
        seen.append(os.sched_getaffinity(0))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [set(allowed_others)]
    assert os.sched_getaffinity(0) == allowed  # the caller's thread is untouched
