"""LocalExecutor: one worker process per station on this machine.

Crash handling: a worker that dies (segfault, SIGKILL, OOM) or exceeds
`executor.trial_timeout_s` on one trial has its trial in flight recorded as `crash` and is
restarted in the background; after `executor.max_restarts` restarts the station is marked
faulty and leaves the rotation. A station that reports itself faulty (failed resets) leaves
the rotation too.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from enpire.fleet.executor import STATION_FACTORY, BusyClock, SlotStations
from enpire.fleet.worker import worker_main
from enpire.records import TrialRecord, TrialRequest
from enpire.spec.model import ExperimentSpec
from enpire.world.estop import ESTOP_ENV

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0


@dataclass
class _Slot:
    process: Any = None
    conn: Connection | None = None
    state: str = "down"  # down | starting | ready | busy | needs_reset | checking | faulty
    request: TrialRequest | None = None
    started: float = 0.0  # when the trial in flight (or the start) began
    restarts: int = 0


class LocalExecutor(SlotStations):
    def __init__(self, spec: ExperimentSpec, factory: str = STATION_FACTORY) -> None:
        self.size = spec.fleet
        self._spec = spec
        self._factory = factory
        method = spec.executor.start_method
        self._ctx = mp.get_context(None if method == "none" else method)
        self._slots = [_Slot() for _ in range(self.size)]
        self._faulty: dict[int, str] = {}
        self._clock = BusyClock(self.size)

    # ---- lifecycle ---------------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        slot = self._slots[index]
        parent, child = self._ctx.Pipe(duplex=True)
        # the estop flag by argument: a forkserver keeps the environment of the session that started it
        process = self._ctx.Process(target=worker_main, args=(child, self._spec, index, self._factory,
                                                              os.environ.get(ESTOP_ENV)),
                                    name=f"enpire-station-{index}", daemon=True)
        process.start()
        child.close()  # our copy: the pipe reports EOF as soon as the worker dies
        slot.process, slot.conn, slot.state, slot.request, slot.started = process, parent, "starting", None, \
            time.monotonic()

    def start(self) -> None:
        self._start_all(START_TIMEOUT_S, f"did not start within {START_TIMEOUT_S:.0f} s")

    def launch(self, count: int | None = None) -> None:
        self._spawn_all(START_TIMEOUT_S, f"did not start within {START_TIMEOUT_S:.0f} s", count)

    def close(self) -> None:
        self.desk.end()  # interventions still open end with the session
        for slot in self._slots:
            if slot.conn is not None and slot.state in ("ready", "busy", "starting", "needs_reset", "checking"):
                try:
                    slot.conn.send(None)
                except (OSError, BrokenPipeError):
                    pass
        for slot in self._slots:
            if slot.process is not None:
                slot.process.join(timeout=5.0)
                if slot.process.is_alive():
                    slot.process.kill()
                    slot.process.join(timeout=2.0)
            if slot.conn is not None:
                slot.conn.close()
            slot.process, slot.conn = None, None

    # ---- queries -----------------------------------------------------------------------------
    def pid(self, index: int) -> int | None:
        """The worker's process id (tests kill it to check crash recovery)."""
        process = self._slots[index].process
        return process.pid if process is not None else None

    # ---- work --------------------------------------------------------------------------------
    def submit(self, station: int, request: TrialRequest) -> None:
        slot = self._slots[station]
        if slot.state != "ready" or slot.conn is None:
            raise RuntimeError(f"station {station} is not idle (state {slot.state})")
        slot.state, slot.request, slot.started = "busy", request, time.monotonic()
        self._clock.begin(station)
        try:
            slot.conn.send(request)
        except (OSError, BrokenPipeError):
            pass  # the next wait() sees the dead worker and records the crash

    def wait(self, timeout: float) -> list[TrialRecord]:
        records: list[TrialRecord] = []
        records.extend(self._check_timeouts())
        watched = {s.conn: i for i, s in enumerate(self._slots)
                   if s.conn is not None and s.state in ("busy", "starting", "checking")}
        if not watched:
            time.sleep(min(timeout, 0.01))
            return records
        for conn in wait(list(watched), timeout=0.0 if records else timeout):
            index = watched[conn]  # type: ignore[index]
            try:
                message = conn.recv()  # type: ignore[union-attr]
            except (EOFError, OSError):
                records.extend(self._died(index, "station process died"))
                continue
            records.extend(self._handle(index, message))
        return records

    def _handle(self, index: int, message: tuple[Any, ...]) -> list[TrialRecord]:
        slot = self._slots[index]
        kind = message[0]
        if kind == "ready":
            slot.state = "ready"
            log.info("station %d ready (pid %s)", index, message[1])
            return []
        if kind == "error":
            log.error("%s", message[1])
            cause = str(message[1]).strip().splitlines()[-1][:300]
            return self._died(index, f"station failed to start: {cause}")
        if kind == "rechecked":
            self._rechecked(index, bool(message[1]), list(message[2]))
            return []
        _, record, faulty = message
        return self._returned(index, record, faulty)

    def _recheck(self, index: int, seed: int) -> None:
        conn = self._slots[index].conn
        try:
            if conn is not None:
                conn.send(("recheck", seed))
        except (OSError, BrokenPipeError):
            pass  # the next wait() sees the dead worker

    def _stop_hung(self, index: int) -> None:
        slot = self._slots[index]
        if slot.process is not None:
            slot.process.kill()
            slot.process.join(timeout=2.0)

    def _died(self, index: int, why: str) -> list[TrialRecord]:
        """Record the trial in flight as crash, then restart the worker (or give up on it)."""
        slot = self._slots[index]
        if slot.process is not None:
            slot.process.join(timeout=2.0)
            why = f"{why} (exit code {slot.process.exitcode})"
        out = self._in_flight_crashed(index, why)
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn, slot.request = None, None, None
        self._restart_or_retire(index, why)
        return out

    def _mark_faulty(self, index: int, why: str) -> None:
        slot = self._slots[index]
        slot.state = "faulty"
        self._faulty[index] = why
        log.warning("station %d is faulty and leaves the rotation: %s", index, why)
        if slot.process is not None and slot.process.is_alive():
            try:
                if slot.conn is not None:
                    slot.conn.send(None)
            except (OSError, BrokenPipeError):
                slot.process.kill()
