"""The reader process: the reader sockets, a receive loop around the counting core, the control channel.

It is started by ``ReaderSet`` as a fresh interpreter (``rawpacer.readers.spawn``, safe when the
parent runs threads), enters the readers' namespace, binds the sockets and then runs its loop
(``FastLoop`` in C, or ``PyLoop``) until a command arrives on the control socket or an op ends,
checking each command against the state table (``rawpacer.readers.states``); it answers each op with the core's verdict plus what it measured (``protocol.Outcome``).
It runs on the other core while the writer sends. It never returns into the caller's code: it
ends with ``os._exit``.
"""

from __future__ import annotations

import dataclasses
import gc
import marshal
import mmap
import os
import signal
import socket
import time
import traceback
from typing import Any, NoReturn

from rawpacer.errors import RawpacerError
from rawpacer.pacing import rxstamp
from rawpacer.readers import arrivals, core, protocol, sockets, states
from rawpacer.readers.fastloop import FastLoop
from rawpacer.readers.pyloop import COMMAND, DEADLINE, SILENCE, PyLoop
from rawpacer.readers.tuning import ReaderTuning
from rawpacer.sandbox import enter_namespace

STREAM_CAP_S = 60.0  # a stream never waits longer than this after end_stream, whatever arrives
NONE = -1  # no deadline / no silence rule, for the loops' run()
STAMP_KEEPER_IP = "127.0.0.1"
"""Where the timestamp keeper binds: the namespace's own loopback (the kernel's switch is global)."""


def keep_only(*fds: int) -> None:
    """Close every descriptor above stderr but ``fds`` (any other the parent left inheritable)."""
    low = 3
    for fd in sorted(fds):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


class ReaderProcess:
    """The state of the reader process: sockets, the loop and its counter, what the open op asked for."""

    def __init__(
        self,
        ctl: socket.socket,
        shared: mmap.mmap,
        slot_size: int,
        ip: str,
        count: int,
        first_port: int,
        rcvbuf: int,
        tuning: ReaderTuning,
    ) -> None:
        self.ctl = ctl
        socks, self.ports = sockets.bind(ip, count, first_port, rcvbuf)
        self.socks: list[socket.socket | None] = list(socks)
        self.slot_of_port = {port: slot for slot, port in enumerate(self.ports)}
        self.loop_name = tuning.resolved_loop
        self.loop: PyLoop | FastLoop = (FastLoop if self.loop_name == "c" else PyLoop)(shared, slot_size, count)
        self.loop.attach(
            socks, ctl.fileno(), tuning.batch, tuning.spin_mode, tuning.linger_us * 1000, tuning.idle_spin_us * 1000
        )
        self.drops_seen = [0] * count
        self.timestamps = False
        self.stamp_keeper: socket.socket | None = None
        """Holds the kernel's timestamping switched on for the process's life, once asked for."""
        self.stream = False
        self.inbox = bytearray(protocol.COMMAND_BUFFER)
        self.machine = states.Machine()
        self.running = True
        self.finishing = False
        self.deadline_ns = self.silence_ns = self.since_ns = NONE
        self.cpu0 = 0.0

    def serve(self) -> None:
        """Run the loop; handle each command it stops for, report each op it ends."""
        while self.running:
            reason = self.loop.run(self.finishing, self.deadline_ns, self.silence_ns, self.since_ns)
            if reason == COMMAND:
                self.command()
            else:  # a stream that falls silent has ended; an op that does has given up on what is missing
                self.report(timed_out=reason == DEADLINE or (reason == SILENCE and not self.stream))

    def command(self) -> None:
        """Handle one command from the parent (``protocol.COMMANDS``), checked against ``states.TRANSITIONS``."""
        size = self.ctl.recv_into(self.inbox)
        if not size:
            self.running = False
            return
        command = protocol.decode_command(self.inbox[:size])
        self.machine.apply(command)
        match command:
            case protocol.BeginOp(size, timestamps):
                self.begin(size, False, timestamps, 0)
            case protocol.BeginStream(size, timestamps, sequences):
                self.begin(size, True, timestamps, sequences)
            case protocol.Wait(timeout_s, silence_s):
                self.finish_after(timeout_s, silence_s)
            case protocol.EndStream(sent_per_port, settle_s):
                self.loop.set_per_port(sent_per_port)
                self.finish_after(STREAM_CAP_S, settle_s)
            case protocol.ClosePort(slot):
                self.close_slot(slot)
                self.done()
            case protocol.Stamp():
                self.keep_stamping()
                self.done()
            case protocol.Abort():
                self.abort()
                self.done()
            case protocol.Stop():
                self.running = False

    def done(self) -> None:
        """Answer a command that has no result."""
        self.ctl.send(marshal.dumps((protocol.DONE,)))

    def abort(self) -> None:
        """Drop the open op or stream, if any, unreported; what its sockets still hold is drained as
        between ops (``late`` for the next op), so the next op starts clean. Back to waiting for a begin."""
        if self.loop.active:
            self.loop.tallies()
        self.loop.run(True, time.monotonic_ns(), NONE, NONE)  # finishing, deadline passed: drain and return
        self.finishing = False
        self.deadline_ns = self.silence_ns = self.since_ns = NONE

    def begin(self, expected_size: int, stream: bool, timestamps: bool, sequences: int) -> None:
        """Open an op or stream (sequenced when ``sequences`` > 0); kernel timestamps are switched
        on or off on every socket first."""
        if timestamps:
            self.keep_stamping()
        if timestamps != self.timestamps:
            sockets.set_timestamps(self.socks, timestamps)
            self.timestamps = timestamps
        self.stream = stream
        self.cpu0 = time.process_time()
        self.loop.begin(expected_size, stream, timestamps, sequences)

    def keep_stamping(self) -> None:
        """Turn the kernel's receive timestamping on for good: a socket of our own asks for it and
        waits until it takes effect (the kernel switches it through a workqueue, and datagrams that
        arrive before that are stamped when read, not when they arrive: rxstamp.open_reader), then
        stays open so that it never goes off between streams."""
        if self.stamp_keeper is None:
            self.stamp_keeper = rxstamp.open_reader(STAMP_KEEPER_IP, 0)

    def finish_after(self, timeout_s: float, silence_s: float) -> None:
        """End the open op at the latest ``timeout_s`` from now, earlier after ``silence_s`` without datagrams."""
        now = time.monotonic_ns()
        self.finishing = True
        self.deadline_ns = now + int(timeout_s * 1e9)
        self.silence_ns = int(silence_s * 1e9) if silence_s >= 0 else NONE
        self.since_ns = now

    def close_slot(self, slot: int) -> None:
        """Close one reader socket for good (a test hook: its port then loses every datagram)."""
        sock = self.socks[slot]
        if sock is not None:
            self.loop.detach(slot)
            sock.close()
            self.socks[slot] = None

    def socket_drops(self, verdict: core.Verdict) -> core.Verdict:
        """The verdict with the kernel's drops at the sockets of ports that lost datagrams, since the
        last time they were read, in those ports' counts and the total."""
        total = 0
        deviations = []
        for tally in verdict.deviations:
            sock = self.socks[self.slot_of_port[tally.port]] if tally.counts.lost else None
            if sock is not None:
                slot = self.slot_of_port[tally.port]
                seen = sockets.drops(sock)
                dropped, self.drops_seen[slot] = seen - self.drops_seen[slot], seen
                if dropped:
                    tally = dataclasses.replace(tally, counts=tally.counts._replace(socket_drops=dropped))
                    total += dropped
            deviations.append(tally)
        counts = verdict.counts._replace(socket_drops=total)
        return verdict._replace(counts=counts, deviations=tuple(deviations))

    def report(self, timed_out: bool) -> None:
        """Send the op's outcome (with its arrivals in a memfd when timestamps were on) and close it."""
        cpu = time.process_time() - self.cpu0
        verdict = core.verdict(self.loop.tallies(), self.ports)
        verdict = self.socket_drops(verdict._replace(lengths=tuple(self.loop.lengths())))
        buffers = self.loop.arrival_buffers()
        count = buffers[2].nbytes if self.timestamps else 0
        outcome = protocol.Outcome(
            verdict=verdict,
            timed_out=timed_out,
            reader_cpu_s=cpu,
            reader_busy_s=self.loop.busy_ns / 1e9,
            reader_checked=self.loop.checked,
            reader_first_ns=self.loop.first_take_ns,
            reader_last_ns=self.loop.last_take_ns,
            arrivals=count,
        )
        message = protocol.encode(outcome)
        if count:
            fd = arrivals.write(buffers)
            try:
                socket.send_fds(self.ctl, [message], [fd])
            finally:
                os.close(fd)
        else:
            self.ctl.send(message)
        self.finishing = False
        self.deadline_ns = self.silence_ns = self.since_ns = NONE
        self.machine.apply(states.Reported())


def child_main(
    ctl_fd: int,
    shared_fd: int,
    slot_size: int,
    namespace: str,
    ip: str,
    count: int,
    first_port: int,
    rcvbuf: int,
    tuning: tuple[Any, ...],
) -> NoReturn:
    """Entry of the reader process (``rawpacer.readers.spawn``): the control socket and the expected
    messages' memfd by number, ``tuning`` as ``ReaderTuning``'s fields. Reports READY (with the
    ports) or ERROR, then serves."""
    code = 1
    ctl = socket.socket(fileno=ctl_fd)
    try:
        gc.disable()  # no collector pauses while receiving: the loop keeps its few objects for its life
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        keep_only(ctl_fd, shared_fd)
        shared = mmap.mmap(shared_fd, count * slot_size)
        if namespace:  # empty: the user's own interfaces (--rx-iface), in the namespace the run started in
            enter_namespace(namespace)
        reader = ReaderProcess(ctl, shared, slot_size, ip, count, first_port, rcvbuf, ReaderTuning(*tuning))
        ctl.send(marshal.dumps((protocol.READY, reader.ports, reader.loop_name)))
        reader.serve()
        code = 0
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent
        ours = isinstance(exc, RawpacerError)  # already a one-line message for the user
        detail = str(exc) if ours else "".join(traceback.format_exception_only(type(exc), exc)).strip()
        try:
            ctl.send(marshal.dumps((protocol.ERROR, detail, ours)))
        except OSError:
            pass
    finally:
        os._exit(code)
