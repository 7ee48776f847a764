"""Executors: where stations run. The scheduler talks to this small interface only, so another
backend (Ray actors, real robots behind RPC) can be added without touching the scheduler.

An executor owns `size` stations addressed by index. `submit` hands one trial to an idle
station; `wait` returns the records that finished (a station that died mid-trial yields a
`crash` record: a trial is never lost). Stations the executor gave up on are `faulty`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib import import_module
from typing import Any, Protocol

from enpire.fleet.human_reset import PersonDesk
from enpire.records import TrialRecord, TrialRequest
from enpire.spec.model import ExperimentSpec
from enpire.world.api import Station

log = logging.getLogger(__name__)

STATION_FACTORY = "enpire.fleet.stations:make_station"


def load_factory(path: str) -> Callable[[ExperimentSpec, int], Station]:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def crash_record(request: TrialRequest, station: int, wall_s: float, error: str) -> TrialRecord:
    """The record of a trial whose station died, hung or raised: outcome `crash`, no robot time known."""
    return TrialRecord(
        trial_id=request.trial_id, iteration=request.iteration, station=station, seed=request.seed,
        outcome="crash", attempts=0, success_attempt=None, pass_at_1=False, pass_at_k=False,
        robot_seconds=0.0, wall_s=max(0.0, wall_s), steps=0, clamps=0, error=error, reason=error,
    )


class Executor(Protocol):
    size: int

    def start(self) -> None:
        """Bring every station up (blocking); raises if none can start."""

    def launch(self, count: int | None = None) -> None:
        """Start bringing the stations up without waiting (they boot while the runner opens MLflow); `count`:
        only that many of those not started yet (a staged start on a machine with few cores)."""

    def await_ready(self, first_only: bool = False) -> None:
        """Wait for the stations `launch` started: all, or (first_only) the first one; the others join the
        rotation as they come up, or turn faulty past their start timeout. Raises if none can start."""

    def idle(self) -> list[int]:
        """Stations ready for a trial (not busy, not faulty)."""

    def in_flight(self) -> int: ...

    def submit(self, station: int, request: TrialRequest) -> None: ...

    def wait(self, timeout: float) -> list[TrialRecord]:
        """Finished records; blocks up to `timeout` s when nothing has finished yet."""

    def faulty(self) -> dict[int, str]:
        """Stations out of the rotation, with the reason."""

    def busy_seconds(self) -> list[float]:
        """Per station: wall seconds spent executing trials so far (in-flight time included)."""

    def restarts(self) -> list[int]: ...

    def needs_person(self) -> dict[int, dict[str, Any]]:
        """Stations waiting for a person to fix their scene (supervision.human_reset), with since / problems."""

    def reset_done(self, station: int, by: str) -> str | None:
        """A person fixed `station`'s scene: check a reset again (asynchronously; `wait` brings the station back
        when it passes). None when the check started, else why not."""

    def interventions(self) -> list[dict[str, Any]]:
        """Every time a station asked for a person this session, with its wait and checks."""

    def close(self) -> None: ...


class BusyClock:
    """Per-station busy time: from a trial's dispatch to its record's arrival."""

    def __init__(self, size: int) -> None:
        self.total = [0.0] * size
        self.since: list[float | None] = [None] * size

    def begin(self, station: int) -> None:
        self.since[station] = time.monotonic()

    def end(self, station: int) -> float:
        start = self.since[station]
        self.since[station] = None
        span = time.monotonic() - start if start is not None else 0.0
        self.total[station] += span
        return span

    def seconds(self) -> list[float]:
        now = time.monotonic()
        return [t + (now - s if s is not None else 0.0) for t, s in zip(self.total, self.since)]


class SlotStations:
    """What backends that keep one slot per station share: the Executor queries and the bookkeeping of a
    trial that came back or a station that died.

    A slot has `state` ("starting", "ready", "busy", "needs_reset", "checking", "faulty"), `restarts` and
    `request` (the trial in flight); the backend keeps `_spec`, `_slots`, `_faulty` (index -> reason) and a
    BusyClock `_clock`, and implements `_spawn(index)` (start a station in the slot), `_died(index, why)` (record
    the trial in flight and restart or retire the station), `_mark_faulty(index, why)` and, for the human reset,
    `_recheck(index, seed)` (ask the station to verify a reset; its verdict comes back through `_rechecked`).
    """

    _spec: ExperimentSpec
    _slots: list[Any]
    _faulty: dict[int, str]
    _clock: BusyClock

    def _spawn(self, index: int) -> None:
        raise NotImplementedError

    def _mark_faulty(self, index: int, why: str) -> None:
        raise NotImplementedError

    def wait(self, timeout: float) -> list[TrialRecord]:
        raise NotImplementedError

    def _died(self, index: int, why: str) -> list[TrialRecord]:
        raise NotImplementedError

    def _stop_hung(self, index: int) -> None:
        """Stop a station whose trial ran past the timeout, before `_died` records it (default: `_died` does)."""

    def _check_timeouts(self) -> list[TrialRecord]:
        """Trials running past `executor.trial_timeout_s`: their station is stopped, the trial recorded `crash`;
        stations nobody reset within `supervision.human_reset_timeout_s` leave the rotation."""
        out: list[TrialRecord] = []
        for i in self.desk.expired():
            self._mark_faulty(i, f"no person reset it within {self.desk.timeout_s:g} s "
                                 "(supervision.human_reset_timeout_s)")
        for i in self.desk.stale_checks():
            self._rechecked(i, False, ["the reset check gave no verdict in time (the station hung or died)"])
        limit = self._spec.executor.trial_timeout_s
        now = time.monotonic()
        for i, slot in enumerate(self._slots):
            if slot.state == "busy" and now - slot.started > limit:
                log.warning("station %d: trial exceeded %.0f s; stopping the station", i, limit)
                self._stop_hung(i)
                out.extend(self._died(i, f"trial exceeded executor.trial_timeout_s={limit}"))
            elif slot.state == "starting" and now - slot.started > self._start_timeout_s:
                self._mark_faulty(i, self._not_started)  # a (re)start that never came up leaves the rotation
        return out

    _start_timeout_s: float = 180.0
    _not_started: str = "did not start in time"

    def _start_all(self, timeout_s: float, not_started: str) -> None:
        """Spawn every station and wait until each is ready or `timeout_s` passed (see `await_ready`)."""
        self._spawn_all(timeout_s, not_started)
        self.await_ready()

    def _spawn_all(self, timeout_s: float, not_started: str, count: int | None = None) -> None:
        """Spawn the stations not started yet (at most `count` of them)."""
        self._start_timeout_s, self._not_started = timeout_s, not_started
        down = [i for i, s in enumerate(self._slots) if s.state == "down"]
        for i in down[:count]:
            self._spawn(i)

    def await_ready(self, first_only: bool = False) -> None:
        """Wait until every station (or, first_only, one) is ready or its start timed out; a station still
        starting past `_start_timeout_s` is faulty (`_not_started` says why). Raises if none could start."""
        if any(s.state == "down" for s in self._slots):
            self.launch()  # the rest of a staged start
        deadline = max(s.started for s in self._slots) + self._start_timeout_s if self._slots else 0.0

        def waiting() -> bool:
            if first_only and any(s.state in ("ready", "busy") for s in self._slots):
                return False
            return any(s.state == "starting" for s in self._slots)

        while waiting() and time.monotonic() < deadline:
            self.wait(0.5)
        if not first_only:
            for i, slot in enumerate(self._slots):
                if slot.state == "starting":
                    self._mark_faulty(i, self._not_started)
        if not any(s.state in ("ready", "busy") for s in self._slots):
            for i, slot in enumerate(self._slots):
                if slot.state == "starting":
                    self._mark_faulty(i, self._not_started)
            raise RuntimeError(f"no station could start: {self._faulty}")

    def _returned(self, index: int, record: TrialRecord, faulty: bool) -> list[TrialRecord]:
        """A station sent its trial's record: the slot is ready again unless the station reported itself faulty."""
        slot = self._slots[index]
        self._clock.end(index)
        slot.state, slot.request = "ready", None
        if faulty and record.outcome == "reset_failed" and self.desk.enabled:
            slot.state = "needs_reset"  # out of the rotation until a person says the scene is fixed
            self.desk.ask(index, record.trial_id, [record.reason or "reset failed"])
        elif faulty:
            self._mark_faulty(index, record.reason or "station reported faulty")
        return [record]

    # ---- the human in the loop (enpire.fleet.human_reset) -----------------------------------------------
    @property
    def desk(self) -> PersonDesk:
        desk = self.__dict__.get("_desk")
        if desk is None:
            desk = self.__dict__["_desk"] = PersonDesk.from_spec(self._spec)
        return desk

    def _recheck(self, index: int, seed: int) -> None:
        raise NotImplementedError

    def needs_person(self) -> dict[int, dict[str, Any]]:
        for i in list(self.desk.waiting()):
            if self._slots[i].state not in ("needs_reset", "checking"):  # it left the fleet meanwhile
                self.desk.forget(i, "left the fleet")
        return self.desk.waiting()

    def reset_done(self, station: int, by: str) -> str | None:
        if not 0 <= station < len(self._slots):
            return f"station {station}: expected 0 to {len(self._slots) - 1}"
        seed, why = self.desk.begin_check(station, by)
        if why is not None:
            return why
        self._slots[station].state = "checking"
        self._recheck(station, seed)
        return None

    def _rechecked(self, index: int, ok: bool, problems: list[str]) -> None:
        slot = self._slots[index]
        if slot.state != "checking":
            return
        slot.state = "ready" if self.desk.checked(index, ok, problems) else "needs_reset"

    def interventions(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.desk.log]

    def _in_flight_crashed(self, index: int, why: str) -> list[TrialRecord]:
        """The trial in flight on a station that died, recorded as `crash` (never lost)."""
        slot = self._slots[index]
        if slot.request is None:
            return []
        wall = self._clock.end(index)
        return [crash_record(slot.request, index, wall, why + "; station restarted")]

    def _restart_or_retire(self, index: int, why: str) -> None:
        """Start the station again, or take it out of the rotation once `executor.max_restarts` are used."""
        slot = self._slots[index]
        self.desk.forget(index, "restarted")  # a fresh station tries its resets again (and asks again)
        limit = self._spec.executor.max_restarts
        if slot.restarts >= limit:
            self._mark_faulty(index, f"{why}; {slot.restarts} restarts used (executor.max_restarts)")
            return
        slot.restarts += 1
        log.warning("station %d: %s; restart %d of %d", index, why, slot.restarts, limit)
        self._spawn(index)

    def idle(self) -> list[int]:
        return [i for i, s in enumerate(self._slots) if s.state == "ready"]

    def in_flight(self) -> int:
        return sum(1 for s in self._slots if s.state == "busy")

    def faulty(self) -> dict[int, str]:
        return dict(self._faulty)

    def busy_seconds(self) -> list[float]:
        return self._clock.seconds()

    def restarts(self) -> list[int]:
        return [s.restarts for s in self._slots]


class InlineExecutor:
    """Stations in the runner's process; `wait` runs one submitted trial to completion.

    Agent calls (threads) still overlap with the physics. For debugging and tests.
    """

    def __init__(self, spec: ExperimentSpec, factory: str = STATION_FACTORY) -> None:
        self.size = spec.fleet
        self._spec = spec
        self._factory = factory
        self._stations: list[Station | None] = [None] * self.size
        self._pending: dict[int, TrialRequest] = {}
        self._faulty: dict[int, str] = {}
        self._clock = BusyClock(self.size)
        self._desk = PersonDesk.from_spec(spec)

    def start(self) -> None:
        make = load_factory(self._factory)
        for i in range(self.size):
            self._stations[i] = make(self._spec, i)

    def launch(self, count: int | None = None) -> None:
        if self._stations[0] is None:
            self.start()

    def await_ready(self, first_only: bool = False) -> None:
        """Inline stations are built by `launch`."""

    def idle(self) -> list[int]:
        waiting = self._desk.waiting()
        return [i for i in range(self.size) if i not in self._pending and i not in self._faulty and i not in waiting]

    def in_flight(self) -> int:
        return len(self._pending)

    def submit(self, station: int, request: TrialRequest) -> None:
        if station in self._pending or station in self._faulty:
            raise RuntimeError(f"station {station} is not idle")
        self._pending[station] = request
        self._clock.begin(station)

    def wait(self, timeout: float) -> list[TrialRecord]:
        self._expire()
        if not self._pending:
            time.sleep(min(timeout, 0.01))
            return []
        index = min(self._pending)
        request = self._pending[index]
        station = self._stations[index]
        assert station is not None
        started = time.monotonic()
        try:
            record = station.run_trial(request)
        except Exception as error:  # a station bug must not lose the trial
            log.exception("station %d raised during trial %s", index, request.trial_id)
            record = crash_record(request, index, time.monotonic() - started, f"station raised: {error!r}")
        del self._pending[index]
        self._clock.end(index)
        if station.faulty and record.outcome == "reset_failed" and self._desk.enabled:
            self._desk.ask(index, record.trial_id, [record.reason or "reset failed"])
        elif station.faulty:
            self._faulty[index] = record.reason or "station reported faulty"
            log.warning("station %d is faulty and leaves the rotation: %s", index, self._faulty[index])
        return [record]

    def needs_person(self) -> dict[int, dict[str, Any]]:
        self._expire()
        return self._desk.waiting()

    def _expire(self) -> None:
        for i in self._desk.expired():
            self._faulty[i] = "no person reset it in time (supervision.human_reset_timeout_s)"

    def reset_done(self, station: int, by: str) -> str | None:
        """Inline stations check the reset at once, in the caller's thread."""
        seed, why = self._desk.begin_check(station, by)
        if why is not None:
            return why
        st = self._stations[station]
        assert st is not None
        try:
            ok, problems = st.recheck_reset(seed), st.reset_problems
        except Exception as error:  # a station bug: the check failed, the station keeps waiting
            log.exception("station %d raised during the reset check", station)
            ok, problems = False, [f"the reset check raised {error!r}"]
        self._desk.checked(station, ok, problems)
        return None

    def interventions(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self._desk.log]

    def faulty(self) -> dict[int, str]:
        return dict(self._faulty)

    def busy_seconds(self) -> list[float]:
        return self._clock.seconds()

    def restarts(self) -> list[int]:
        return [0] * self.size

    def close(self) -> None:
        self._desk.end()  # interventions still open end with the session
        for station in self._stations:
            if station is not None:
                station.close()
        self._stations = [None] * self.size
