"""``Starting``: how the op loop starts a reader set, an op (``begin``) or a stream (``begin_stream``),
written once for the local ``ReaderSet`` and ``rawpacer.remote.RemoteReaderSet``, each of which
implements the one hook, ``_start``."""

from __future__ import annotations

from abc import ABC, abstractmethod


class Starting(ABC):
    """``begin`` and ``begin_stream``, the same calls whether the readers are here or on other hosts."""

    def begin(self, expected_size: int | None = None, *, timestamps: bool = False) -> None:
        """Start one op: the readers expect one datagram each, equal to (the first ``expected_size``
        bytes of) their slot in ``messages``. Call before sending; the readers start at once (remote
        ones: every agent holds its share of ``messages`` and is armed on return).
        ``timestamps``: keep every datagram's kernel RX timestamp (``OpResult.arrivals``)."""
        self._start(False, expected_size, timestamps, None, False)

    def begin_stream(
        self,
        expected_size: int | None = None,
        *,
        timestamps: bool = False,
        fanouts: int | None = None,
        shaped: bool = False,
    ) -> None:
        """Start a stream: many fan-outs of the same ``messages`` until ``end_stream``.
        ``timestamps``: keep every datagram's kernel RX timestamp (``OpResult.arrivals``).
        ``fanouts``: the datagrams carry sequences (``rawpacer.headers.sequence.sequence_bytes``, the op
        loop's streams do): fan-out k's datagrams begin with sequence k < ``fanouts``, the rest of
        each is its port's message, and the readers count reordering and duplicates by sequence.
        ``shaped``: a frame pool's stream (``rawpacer.traffic.pool``): a datagram is intact when it is a
        prefix of its port's message, up to ``expected_size`` bytes, and the readers count datagrams
        per length (``OpResult.lengths``); no sequences. Local readers only: remote ones refuse it."""
        self._start(True, expected_size, timestamps, fanouts, shaped)

    @abstractmethod
    def _start(
        self, stream: bool, expected_size: int | None, timestamps: bool, fanouts: int | None, shaped: bool
    ) -> None:
        """Start an op (``stream`` False) or a stream with the arguments of ``begin``/``begin_stream``."""
