"""One station as a service: the lifecycle, the lease, the trial thread and the dead-man watchdog.

Transport-free (enpire.station.server puts it behind HTTP and a WebSocket), so every rule is here:

- lifecycle (as ros2_control): `unconfigured` -> configure (the spec composed from the station's own
  overrides, the SimStation built with enpire's policy factory) -> `inactive` -> activate (a runner takes the
  lease) -> `active` -> deactivate / release -> `inactive`.
- one lease at a time: an owner id and an expiry, renewed by every message of its owner; anyone else is
  refused with the holder's name until it expires or is released.
- trials run where the robot is: the envelope, the controller's clamps, the estop flag and the frozen verifier
  are the station's own (SimStation); the runner sends a candidate and a seed and gets the record.
- dead-man watchdog: while a trial runs the runner must send a heartbeat every `watchdog_s`; when none came
  in time (or its connection closed) the station sets its estop byte, the rollout applies the envelope's safe
  stop at the next control step and the trial ends `estopped`. The record is kept for the runner to fetch.
- estop: any token holder may estop; the byte stays set (latched) until `clear_estop`, and a latched station
  neither resets nor moves: trials asked of it come back `estopped` without running.
"""

from __future__ import annotations

import base64
import json
import logging
import mmap
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enpire.records import TrialRecord
from enpire.station.protocol import MAX_FILE_BYTES, PROTOCOL, record_to_json, request_from_json
from enpire.world.estop import ESTOP_ENV

log = logging.getLogger(__name__)

Sink = Callable[[dict[str, Any]], None]  # delivers a message to one runner connection (thread-safe)
KEEP_RECORDS = 256  # trial records kept for re-delivery (idempotent run_trial, a runner that reconnects)
PROGRESS_EVERY_S = 0.5  # the running trial's progress event, to subscribers of /v1/events


class Refused(Exception):
    """A request the station will not serve; `code` is the protocol's error code."""

    def __init__(self, code: str, message: str, holder: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.holder = code, message, holder

    def message_doc(self) -> dict[str, Any]:
        return {"type": "error", "code": self.code, "message": self.message, "holder": self.holder}


@dataclass
class Lease:
    owner: str
    session: str
    ttl_s: float
    expires: float

    def view(self, now: float) -> dict[str, Any]:
        return {"owner": self.owner, "session": self.session, "expires_in_s": round(self.expires - now, 3)}


@dataclass
class Running:
    trial_id: str
    sink: Sink | None  # the connection waiting for the record (None: its runner went away)
    owner: str
    last_heartbeat: float
    started: float


class StationService:
    def __init__(self, overrides: list[str], *, watchdog_s: float = 0.2, max_lease_s: float = 60.0,
                 realtime_factor: float | None = None, work_dir: str | Path | None = None,
                 station_id: str | None = None) -> None:
        self.overrides = list(overrides)
        self.watchdog_s, self.max_lease_s, self.realtime_factor = watchdog_s, max_lease_s, realtime_factor
        self.work_dir = Path(work_dir or f"outputs/station/{os.getpid()}").resolve()
        self.station_id = station_id or f"{os.uname().nodename}:{os.getpid()}"
        self.state = "unconfigured"
        self.spec: Any = None
        self.station: Any = None
        self.lease: Lease | None = None
        self.running: Running | None = None
        self.estopped: str | None = None  # latched operator estop: why
        self.last_stop: dict[str, Any] | None = None
        self.trials = 0
        self.refused_auth = 0
        self.t0 = time.monotonic()
        self._lock = threading.RLock()
        self._records: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enpire-station-trial")
        self._wake = threading.Event()
        self._closed = False
        self._trip: tuple[str, str, float] | None = None  # (cause, detail, tripped_at wall) of the trial running
        self._steps, self._sim_time = 0, 0.0
        self._anchor: tuple[float, float] | None = None  # (wall, sim time) the pacing counts from
        self._subscribers: set[Sink] = set()  # WS /v1/events connections
        self._events = 0

    # ---- lifecycle ---------------------------------------------------------------------------------
    def configure(self) -> None:
        """Compose the spec, map a private estop byte, build the station (unconfigured -> inactive)."""
        from enpire.fleet.stations import make_station
        from enpire.spec import load_spec

        with self._lock:
            if self.state != "unconfigured":
                return
            self.spec = load_spec(self.overrides)
            self.work_dir.mkdir(parents=True, exist_ok=True)
            flag = self.work_dir / "estop.flag"
            flag.write_bytes(b"\x00")
            self._flag_file = open(flag, "r+b")  # noqa: SIM115 (held open for the mapping's life)
            self._flag = mmap.mmap(self._flag_file.fileno(), 1)
            os.environ[ESTOP_ENV] = str(flag)  # the station maps it read-only and reads it every control step
            # the per-step hook (pace, progress) only where a pace is asked: at ~25 us a control step it costs ~5 %
            self.station = make_station(self.spec, 0, step_hook=self._step_hook if self.realtime_factor else None)
            self.state = "inactive"
            threading.Thread(target=self._watchdog, name="enpire-station-watchdog", daemon=True).start()
            threading.Thread(target=self._progress, name="enpire-station-progress", daemon=True).start()
            log.info("station %s configured: %s on %s", self.station_id, self.spec.task.name, self.spec.robot.name)

    def close(self) -> None:
        """Stop the robot (estop byte) and end the trial thread."""
        with self._lock:
            self._closed = True
            if self.running is not None:
                self._set_flag("shutdown", "the station server is shutting down")
        self._wake.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
        if self.station is not None:
            self.station.close()

    def fingerprints(self) -> dict[str, str]:
        f = self.spec.fingerprints
        return {"done_sha256": f.done_sha256, "safety_sha256": f.safety_sha256}

    def info(self) -> dict[str, Any]:
        s = self.spec
        return {"type": "info", "protocol": PROTOCOL, "station_id": self.station_id, "task": s.task.name,
                "robot": s.robot.name, "policy": s.policy.name, "action_mode": s.policy.action_mode,
                "control_dt": s.control_dt, "fingerprints": self.fingerprints(), "state": self.state,
                "watchdog_s": self.watchdog_s, "max_lease_s": self.max_lease_s,
                "realtime_factor": self.realtime_factor, "adapter": str(s.robot.adapter),
                "physical": bool(getattr(self.station, "_physical", False)), "dry_run": bool(s.station.dry_run)}

    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            lease = self.lease.view(now) if self.lease is not None and self.lease.expires > now else None
            return {"type": "health", "state": self.state, "busy": self.running.trial_id if self.running else None,
                    "estopped": self.estopped, "faulty": bool(self.station is not None and self.station.faulty),
                    "lease": lease, "trials": self.trials, "uptime_s": round(now - self.t0, 3),
                    "last_stop": self.last_stop,
                    "reset_problems": self.station.reset_problems if self.station is not None else []}

    # ---- the lease ---------------------------------------------------------------------------------
    def _holder(self, now: float) -> Lease | None:
        if self.lease is not None and self.lease.expires <= now:
            log.warning("lease of %s expired", self.lease.owner)
            self.lease = None
            if self.state == "active" and self.running is None:
                self.state = "inactive"
        return self.lease

    def _owned(self, owner: str) -> Lease:
        """The lease, if `owner` holds it (renewed); Refused otherwise."""
        now = time.monotonic()
        lease = self._holder(now)
        if lease is None:
            raise Refused("not_leased", f"{owner} holds no lease on station {self.station_id}: activate first")
        if lease.owner != owner:
            raise Refused("leased", f"station {self.station_id} is leased by {lease.owner} (session "
                                    f"{lease.session or '-'}) for {lease.expires - now:.1f} s more", lease.owner)
        lease.expires = now + lease.ttl_s
        return lease

    def activate(self, owner: str, session: str, ttl_s: float) -> dict[str, Any]:
        with self._lock:
            if self.state == "unconfigured":
                raise Refused("unconfigured", "station not configured yet")
            now = time.monotonic()
            lease = self._holder(now)
            if lease is not None and lease.owner != owner:
                raise Refused("leased", f"station {self.station_id} is leased by {lease.owner} (session "
                                        f"{lease.session or '-'}) for {lease.expires - now:.1f} s more", lease.owner)
            ttl = min(float(ttl_s), self.max_lease_s)
            self.lease = Lease(owner, session, ttl, now + ttl)
            self.state = "active"
            log.info("station %s leased to %s (session %s, %.0f s)", self.station_id, owner, session or "-", ttl)
            if lease is None:
                self._emit("lease", None, f"leased to {owner} (session {session or '-'})")
            return {"type": "lease", "owner": owner, "expires_in_s": ttl, "watchdog_s": self.watchdog_s}

    def deactivate(self, owner: str, release: bool) -> dict[str, Any]:
        with self._lock:
            self._owned(owner)
            if self.running is not None:
                raise Refused("busy", f"trial {self.running.trial_id} is running; deactivate after it")
            self.state = "inactive"
            if release:
                self.lease = None
                log.info("station %s released by %s", self.station_id, owner)
                self._emit("lease", None, f"released by {owner}")
            return {"type": "ok", "detail": "released" if release else "inactive"}

    def renew(self, owner: str, seq: int) -> dict[str, Any]:
        """A heartbeat: renews the lease and feeds the watchdog of the trial running for `owner`."""
        with self._lock:
            self._owned(owner)
            if self.running is not None and self.running.owner == owner:
                self.running.last_heartbeat = time.monotonic()
            return {"type": "heartbeat_ack", "seq": seq, "busy": self.running.trial_id if self.running else None,
                    "steps": self._steps, "sim_time": round(self._sim_time, 6)}

    # ---- telemetry (WS /v1/events) ---------------------------------------------------------------------
    def subscribe(self, sink: Sink) -> None:
        with self._lock:
            self._subscribers.add(sink)

    def unsubscribe(self, sink: Sink) -> None:
        with self._lock:
            self._subscribers.discard(sink)

    def _emit(self, kind: str, trial_id: str | None = None, detail: str = "") -> None:
        """One event to every subscriber (each sink only queues it: never blocks the station)."""
        with self._lock:
            event = {"type": "event", "kind": kind, "at": time.time(), "seq": self._events, "trial_id": trial_id,
                     "detail": detail}
            self._events += 1
            sinks = list(self._subscribers)
        for sink in sinks:
            try:
                sink(event)
            except Exception:  # a subscriber that went away
                self.unsubscribe(sink)

    def _progress(self) -> None:
        """While a trial runs and someone listens: its progress every PROGRESS_EVERY_S."""
        while not self._closed:
            time.sleep(PROGRESS_EVERY_S)
            run = self.running
            if run is not None and self._subscribers:
                self._emit("progress", run.trial_id, json.dumps({
                    "steps": self._steps, "sim_time": round(self._sim_time, 3),
                    "wall_s": round(time.time() - run.started, 3)}))

    # ---- estop -------------------------------------------------------------------------------------
    def _set_flag(self, cause: str, detail: str) -> None:
        if self._trip is None:
            self._trip = (cause, detail, time.time())
            if cause == "watchdog":
                running = self.running
                self._emit("watchdog", running.trial_id if running is not None else None, detail)
        self._flag[0] = 1  # the rollout reads it before the next control step

    def estop(self, reason: str, sent_at: float | None = None) -> dict[str, Any]:
        received = time.time()
        with self._lock:
            self._set_flag("estop", reason)
            self.estopped = reason or "estop"
            log.warning("station %s ESTOP: %s", self.station_id, reason)
            running = self.running
        self._emit("estop", running.trial_id if running is not None else None, reason)
        return {"type": "ok", "detail": json.dumps({"received_at": received, "sent_at": sent_at})}

    def clear_estop(self, by: str) -> dict[str, Any]:
        with self._lock:
            if self.running is not None:
                raise Refused("busy", "a trial is still ending; clear the estop once it has")
            self.estopped, self._trip = None, None
            self._flag[0] = 0
            log.warning("station %s: estop cleared by %s", self.station_id, by)
        self._emit("estop_cleared", None, f"by {by}")
        return {"type": "ok", "detail": f"estop cleared by {by}"}

    def _watchdog(self) -> None:
        """The dead-man: stops the robot when the trial's runner sent no heartbeat for `watchdog_s`."""
        while not self._closed:
            with self._lock:
                run, deadline = self.running, None
                if run is not None and self._trip is None:
                    if run.sink is None:
                        self._set_flag("watchdog", f"the connection of runner {run.owner} closed")
                    else:
                        deadline = run.last_heartbeat + self.watchdog_s
                        if time.monotonic() >= deadline:
                            self._set_flag("watchdog", f"no heartbeat from runner {run.owner} for "
                                                       f"{(time.monotonic() - run.last_heartbeat) * 1e3:.0f} ms "
                                                       f"(watchdog_s={self.watchdog_s})")
                            deadline = None
            self._wake.wait(timeout=max(0.0, deadline - time.monotonic()) if deadline else 0.5)
            self._wake.clear()

    # ---- trials ------------------------------------------------------------------------------------
    def disconnected(self, sink: Sink) -> None:
        """A runner's connection closed: the trial it waited for is stopped by the watchdog at once."""
        with self._lock:
            if self.running is not None and self.running.sink is sink:
                self.running.sink = None
                self._wake.set()

    def run_trial(self, owner: str, doc: dict[str, Any], sink: Sink) -> dict[str, Any] | None:
        """Start a trial (its record goes to `sink` when it ends), or answer at once: a stored record, a refusal."""
        trial_id = doc["trial_id"]
        with self._lock:
            self._owned(owner)
            if trial_id in self._records:  # asked again (a runner that lost its connection): never run twice
                return self._records[trial_id]
            if self.running is not None:
                if self.running.trial_id == trial_id:  # the same trial: this connection waits for it now
                    self.running.sink, self.running.last_heartbeat = sink, time.monotonic()
                    return None
                raise Refused("busy", f"trial {self.running.trial_id} is running")
            if self.state != "active":
                raise Refused("not_leased", f"station is {self.state}: activate first")
            request = request_from_json(doc, str(self.work_dir / "trials"))
            if self.estopped is not None:  # latched: no reset, no motion
                rec = TrialRecord(trial_id=trial_id, iteration=request.iteration, station=0, seed=request.seed,
                                  outcome="estopped", attempts=0, success_attempt=None, pass_at_1=False,
                                  pass_at_k=False, robot_seconds=0.0, wall_s=0.0, steps=0, clamps=0,
                                  reason=f"station estopped ({self.estopped}); not run until clear_estop")
                return self._store(rec, faulty=True, files={})
            self.running = Running(trial_id, sink, owner, time.monotonic(), time.time())
            self._trip = None
            self._wake.set()
        self._emit("busy", trial_id, f"seed {request.seed}, iteration {request.iteration}")
        self._pool.submit(self._execute, request)
        return None

    def _execute(self, request: Any) -> None:
        Path(request.out_dir).mkdir(parents=True, exist_ok=True)
        self._steps, self._sim_time, self._anchor = 0, 0.0, None
        try:
            record = self.station.run_trial(request)
        except Exception as error:  # a station bug must not lose the trial
            log.exception("station raised during %s", request.trial_id)
            from enpire.fleet.executor import crash_record
            record = crash_record(request, 0, time.time() - self.running.started if self.running else 0.0,
                                  f"station raised: {error!r}")
        with self._lock:
            run, trip = self.running, self._trip
            if trip is not None:
                self._stopped(record, *trip)
            files = self._files(record)
            message = self._store(record, faulty=bool(self.station.faulty), files=files)
            self.running, self._trip = None, None
            self.trials += 1
            if self.estopped is None:
                self._flag[0] = 0  # a dead-man stop ends with its trial; an operator estop stays latched
            self._wake.set()
            sink = run.sink if run is not None else None
        if sink is not None:
            sink(message)
        for event in record.safety_events:
            self._emit("safety", record.trial_id, f"{event.kind} at step {event.step}: value {event.value}, "
                                                  f"limit {event.limit}")
        self._emit("idle", record.trial_id, f"{record.outcome} after {record.robot_seconds:.2f} robot-s"
                                            + (f" ({record.reason})" if record.reason else ""))

    def _stopped(self, record: TrialRecord, cause: str, detail: str, tripped_at: float) -> None:
        """A trial the station stopped itself: say why in the record, keep the timing for health()."""
        seen = next((e for e in record.safety_events if e.kind == "estop"), None)
        seen_at = float(seen.value) if seen is not None and seen.value is not None else None
        if cause != "estop":
            record.reason = f"dead-man watchdog: {detail}; robot stopped at control step " \
                            f"{seen.step if seen else record.steps}"
        if seen is not None:
            idx = record.safety_events.index(seen)
            extra = {**json.loads(seen.detail or "{}"), "cause": cause, "tripped_at": tripped_at, "why": detail}
            record.safety_events[idx] = type(seen)(kind=seen.kind, step=seen.step, value=seen.value,
                                                   limit=seen.limit, detail=json.dumps(extra))
        self.last_stop = {"cause": cause, "trial_id": record.trial_id, "detail": detail, "tripped_at": tripped_at,
                          "seen_at": seen_at, "outcome": record.outcome}
        log.warning("station %s stopped trial %s (%s): %s", self.station_id, record.trial_id, cause, detail)

    def _files(self, record: TrialRecord) -> dict[str, str]:
        """The trial's files, base64, for the runner (and removed here: a station's disk must not fill up)."""
        out: dict[str, str] = {}
        for field in ("video", "replay", "trajectory"):
            path = getattr(record, field)
            if not path:
                continue
            p = Path(path)
            try:
                if p.stat().st_size <= MAX_FILE_BYTES:
                    out[field] = base64.b64encode(p.read_bytes()).decode("ascii")
                    p.unlink()
            except OSError as error:
                log.warning("trial %s: %s file %s unreadable (%s)", record.trial_id, field, path, error)
        return out

    def _store(self, record: TrialRecord, faulty: bool, files: dict[str, str]) -> dict[str, Any]:
        message = {"type": "trial_record", "record": record_to_json(record), "faulty": faulty,
                   "fingerprints": self.fingerprints(), "files": files}
        self._records[record.trial_id] = message
        while len(self._records) > KEEP_RECORDS:
            self._records.popitem(last=False)
        return message

    def stored(self, trial_id: str) -> dict[str, Any]:
        with self._lock:
            if trial_id not in self._records:
                raise Refused("unknown_trial", f"no record of trial {trial_id!r} on this station")
            return self._records[trial_id]

    def reset(self, owner: str, seed: int) -> dict[str, Any]:
        with self._lock:
            self._owned(owner)
            if self.running is not None:
                raise Refused("busy", f"trial {self.running.trial_id} is running")
            if self.estopped is not None:
                raise Refused("estopped", f"station estopped ({self.estopped}): no reset until clear_estop")
        ok = self._pool.submit(self.station.recheck_reset, seed).result()  # a good one returns a reset-faulty station
        problems = self.station.reset_problems
        self._emit("reset", None, "ok" if ok else "failed: " + "; ".join(problems))
        return {"type": "reset_result", "ok": bool(ok), "problems": problems}

    # ---- per control step ----------------------------------------------------------------------------
    def _step_hook(self, model: Any, data: Any) -> None:
        """After every control step: progress counters and, with a realtime factor, the pace of a real robot."""
        self._steps += 1
        t = float(data.time)
        self._sim_time = t
        rate = self.realtime_factor
        if rate:
            now = time.monotonic()
            if self._anchor is None or t < self._anchor[1]:
                self._anchor = (now, t)
            ahead = self._anchor[0] + (t - self._anchor[1]) / rate - now
            if ahead > 0:
                time.sleep(ahead)
