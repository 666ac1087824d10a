"""Types of the rawpacer._pace C extension (rawpacer/_pace.c documents what each does)."""

from rawpacer.pacing.schedule import Schedule

def wait_until(deadline_ns: int, spin_ns: int, /) -> tuple[int, int]: ...
def sleep_until(deadline_ns: int, /) -> int: ...
def spin_until(deadline_ns: int, /) -> int: ...

class Core:
    anchor_ns: int
    origin_ns: int
    last_ns: int
    next_departure: int
    departures: int
    stalls: int
    stalled_ns: int
    busy_ns: int
    margin_ns: int
    sleeps: int
    sent: int
    late_stride: int
    late_overflow_max: int
    schedule_overflow_max: int
    started: bool
    def __init__(
        self,
        spin_mode: int,
        spin_ns: int,
        spin_min_ns: int,
        window: int,
        stall_ns: int,
        gap_ppm: int,
        lead_ns: int,
        burst: int,
        late_cap: int,
        q: int,
        r: int,
        den: int,
        schedule: Schedule,
        /,
    ) -> None: ...
    def step(self, departure: int, now_ns: int, /) -> tuple[int, int]: ...
    def wait(self, departure: int, /) -> None: ...
    def start(self, t0_ns: int | None = None, /) -> None: ...
    def lateness(self) -> bytes: ...
    def schedule_lateness(self) -> bytes: ...
