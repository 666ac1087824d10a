"""``FanWriter``: one writer per remote host, presented as one writer over all their reader ports.

The op loop sends ``messages[i]`` to reader ``i``; across hosts reader ``i`` lives on the host
whose consecutive slots hold it, so a span is cut at host boundaries and each piece handed to that
host's writer (its own socket, target address and, for raw writers, link).
"""

from __future__ import annotations

from collections.abc import Sequence

from rawpacer.target import Target
from rawpacer.writers.base import Message, Writer, WriterOptions


class FanWriter(Writer):
    """Writers of one class, one per target, in slot order; their ports concatenated."""

    name = "fan"
    summary = "one writer per remote host"

    def __init__(self, cls: type[Writer], targets: Sequence[Target], options: WriterOptions) -> None:
        whole = Target(
            targets[0].src_ip, targets[0].dst_ip, tuple(p for t in targets for p in t.ports), targets[0].link
        )
        super().__init__(whole, options)
        self.parts: list[Writer] = []
        self.bounds: list[tuple[int, int]] = []
        with self.opening():
            start = 0
            for target in targets:
                part = cls(target, options)
                self.own(part.close)
                self.parts.append(part)
                self.bounds.append((start, start + len(target.ports)))
                start += len(target.ports)

    def _send(self, messages: Sequence[Message], start: int, stop: int, replay: bool) -> int:
        sent = 0
        for part, (low, high) in zip(self.parts, self.bounds):
            first, last = max(start, low), min(stop, high)
            if first < last:
                mine = messages[low:high]
                call = part.resend if replay else part.send
                sent += call(mine, first - low, last - first)
        return sent

    @property
    def delivered_size(self) -> int:
        """The smallest of the parts' (each host's link may trim differently)."""
        return min(part.delivered_size for part in self.parts)

    def facts(self) -> dict[str, object]:
        """The first part's facts, with how many hosts it sends to."""
        return {**self.parts[0].facts(), "hosts": len(self.parts)}

    def problems(self) -> list[str]:
        """Every part's problems."""
        return [p for part in self.parts for p in part.problems()]
