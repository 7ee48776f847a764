"""RemoteExecutor: stations that are network services (`python -m enpire.station serve ...`), one per
address of `executor.stations`, with the scheduler, ledger, MRU and tracking of executor=local.

    python -m enpire executor=remote fleet=2 executor.stations=[robot-a:8765,robot-b:8765]

A fleet larger than the list runs the rest as local worker processes (a mixed fleet: remote stations first,
then `fleet - len(stations)` local ones started with `executor.start_method`).

At launch each station is asked who it is: a station whose /done or safety fingerprints differ from the
session's is refused (IntegrityError: exit 3, nothing run); one that differs later (after a reconnect, or in a
record) leaves the rotation. Trials go out as candidate + seed; the envelope, clamps, estop and verifier run on
the station. While a trial runs the link sends heartbeats (`executor.heartbeat_s`); the station stops its
robot if they stop (its own dead-man time). A station that dies, freezes (nothing for
`executor.station_timeout_s`) or cannot be reached has its trial in flight recorded as `crash`; the link
reconnects up to `executor.max_restarts` times, then the station is faulty and the session goes on.
The session's estop flag (enpire.ctl estop) is watched here and forwarded to every station.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import queue
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from enpire.fleet.executor import STATION_FACTORY, BusyClock, SlotStations
from enpire.fleet.trial_files import place_files
from enpire.records import TrialRecord, TrialRequest
from enpire.spec.errors import IntegrityError
from enpire.spec.model import ExperimentSpec
from enpire.station.client import StationClient, StationError, split_address
from enpire.station.link import LinkSettings, Mismatch, StationLink
from enpire.station.protocol import TOKEN_ENV, load_token, record_from_json
from enpire.world.estop import ESTOP_ENV, estop_flag

log = logging.getLogger(__name__)

STATIONS_FILE = "remote_stations.json"  # beside the session's estop flag: where ctl estop finds the stations
ESTOP_POLL_S = 0.002


@dataclass
class _Slot:
    address: str
    link: StationLink | None = None
    generation: int = 0
    state: str = "down"  # down | starting | ready | busy | needs_reset | checking | faulty
    request: TrialRequest | None = None
    started: float = 0.0
    restarts: int = 0


class RemoteExecutor(SlotStations):
    def __init__(self, spec: ExperimentSpec, factory: str = STATION_FACTORY) -> None:
        opts = spec.executor.options
        stations = [str(a) for a in (opts.get("stations") or ())]
        if not stations or len(stations) > spec.fleet:
            raise ValueError(f"executor.stations: got {len(stations)} address(es) for fleet={spec.fleet}; expected "
                             f"1 to {spec.fleet} host:port addresses (the rest of the fleet runs locally)")
        for address in stations:
            split_address(address)
        self.size = spec.fleet
        self._spec, self._factory = spec, factory
        self._remote = len(stations)
        self._slots = [_Slot(a) for a in stations]
        self._faulty: dict[int, str] = {}
        self._clock = BusyClock(self._remote)
        self._events: queue.Queue[tuple[str, int, int, Any]] = queue.Queue()
        token = load_token(str(opts.get("token_env") or TOKEN_ENV), opts.get("token_file"))
        if token is None:
            raise ValueError(f"executor.token_env: no station token in ${opts.get('token_env') or TOKEN_ENV}"
                             + (f" nor in executor.token_file {opts.get('token_file')}" if opts.get("token_file")
                                else "") + "; expected the shared secret the stations were started with")
        self._clients = [StationClient(a, token, timeout_s=min(5.0, float(opts.get("connect_timeout_s", 10.0))))
                         for a in stations]
        self._settings = LinkSettings(
            owner=f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            session=(spec.session_name or f"enpire pid {os.getpid()}")[:200],
            heartbeat_s=float(opts.get("heartbeat_s", 0.05)),
            station_timeout_s=float(opts.get("station_timeout_s", 2.0)),
            connect_timeout_s=float(opts.get("connect_timeout_s", 10.0)),
            lease_ttl_s=float(opts.get("lease_ttl_s", 30.0)))
        self._local: Any = None
        if spec.fleet > self._remote:
            from enpire.fleet.local import LocalExecutor
            self._local = LocalExecutor(dataclasses.replace(spec, fleet=spec.fleet - self._remote), factory)
        self._estop_stop = threading.Event()
        self._estop_thread: threading.Thread | None = None
        self.estop_latency_s: list[float] = []

    # ---- identity --------------------------------------------------------------------------------------
    def _identify(self, info: dict[str, Any]) -> None:
        """Mismatch unless the station runs the session's task, robot, policy family and frozen judge."""
        s, fp = self._spec, self._spec.fingerprints
        theirs = info["fingerprints"]
        for what, ours in (("done", fp.done_sha256), ("safety", fp.safety_sha256)):
            if theirs[f"{what}_sha256"] != ours:
                raise Mismatch(f"{what} fingerprint {theirs[f'{what}_sha256'][:12]} of station {info['station_id']} "
                               f"differs from the session's {ours[:12]}")
        want = {"task": s.task.name, "robot": s.robot.name, "policy": s.policy.name,
                "action_mode": s.policy.action_mode}
        wrong = {k: (info[k], v) for k, v in want.items() if info[k] != v}
        if abs(float(info["control_dt"]) - s.control_dt) > 1e-12:
            wrong["control_dt"] = (info["control_dt"], s.control_dt)
        if wrong:
            raise Mismatch(f"station {info['station_id']} serves " + ", ".join(
                f"{k}={theirs_!r} (session: {ours!r})" for k, (theirs_, ours) in wrong.items()))
        if info.get("dry_run"):
            log.warning("station %s runs station.dry_run=true: its trials move nothing and are never evidence "
                        "(every one ends estopped)", info["station_id"])
        if self._settings.heartbeat_s * 2 > float(info["watchdog_s"]):
            raise Mismatch(f"executor.heartbeat_s={self._settings.heartbeat_s} is too slow for the station's "
                           f"watchdog of {info['watchdog_s']} s (expected at most half of it)")

    def _check_at_launch(self) -> None:
        """Exit 3 before anything runs when a reachable station's judge or envelope is not the session's."""
        fp = self._spec.fingerprints
        for client in self._clients:
            try:
                info = client.info()
            except StationError:
                continue  # unreachable or refusing: its link says why (faulty), or it comes up later
            for what, ours in (("done", fp.done_sha256), ("safety", fp.safety_sha256)):
                if info["fingerprints"][f"{what}_sha256"] != ours:
                    raise IntegrityError(what, ours, info["fingerprints"][f"{what}_sha256"],
                                         f"station {client.address} ({info['station_id']}) runs other {what} "
                                         "criteria than this session: refused")

    # ---- lifecycle -------------------------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        slot = self._slots[index]
        slot.generation += 1
        slot.link = StationLink(index, slot.generation, self._clients[index], self._settings, self._events,
                                self._identify)
        slot.state, slot.request, slot.started = "starting", None, time.monotonic()
        slot.link.start()

    def launch(self, count: int | None = None) -> None:
        if self._estop_thread is None:
            self._check_at_launch()
            self._watch_estop()
        timeout = self._settings.connect_timeout_s + 5.0
        self._spawn_all(timeout, f"did not answer within {timeout:.0f} s")
        if self._local is not None:
            self._local.launch(count)

    def start(self) -> None:
        self.launch()
        self.await_ready()

    def await_ready(self, first_only: bool = False) -> None:
        if self._local is not None and not first_only:
            self._local.await_ready()
        try:
            SlotStations.await_ready(self, first_only)
        except RuntimeError:
            if self._local is None:
                raise
            self._local.await_ready(first_only)

    def close(self) -> None:
        self.desk.end()  # interventions still open end with the session
        self._estop_stop.set()
        links = [s.link for s in self._slots if s.link is not None]
        for link in links:
            link.stop()
        for link in links:
            link.join(timeout=3.0)
        for slot in self._slots:
            slot.link = None
        if self._local is not None:
            self._local.close()

    # ---- the Executor queries (remote slots first, then the local part) ----------------------------------
    def idle(self) -> list[int]:
        out = SlotStations.idle(self)
        if self._local is not None:
            out += [self._remote + i for i in self._local.idle()]
        return out

    def in_flight(self) -> int:
        return SlotStations.in_flight(self) + (self._local.in_flight() if self._local is not None else 0)

    def faulty(self) -> dict[int, str]:
        out = dict(self._faulty)
        if self._local is not None:
            out.update({self._remote + i: why for i, why in self._local.faulty().items()})
        return out

    def busy_seconds(self) -> list[float]:
        return self._clock.seconds() + (self._local.busy_seconds() if self._local is not None else [])

    def restarts(self) -> list[int]:
        return [s.restarts for s in self._slots] + (self._local.restarts() if self._local is not None else [])

    def needs_person(self) -> dict[int, dict[str, Any]]:
        out = SlotStations.needs_person(self)
        if self._local is not None:
            out.update({self._remote + i: v for i, v in self._local.needs_person().items()})
        return out

    def reset_done(self, station: int, by: str) -> str | None:
        if self._local is not None and station >= self._remote:
            return self._local.reset_done(station - self._remote, by)
        return SlotStations.reset_done(self, station, by)

    def interventions(self) -> list[dict[str, Any]]:
        local = [] if self._local is None else [
            {**e, "station": e["station"] + self._remote} for e in self._local.interventions()]
        return SlotStations.interventions(self) + local

    def _recheck(self, index: int, seed: int) -> None:
        """POST /v1/reset on the station (off the loop's thread); the verdict comes back as an event."""
        slot, client, owner = self._slots[index], self._clients[index], self._settings.owner

        def check() -> None:
            try:
                reply = client.reset(owner, seed)
                verdict: tuple[bool, list[str]] = (bool(reply["ok"]), list(reply["problems"]))
            except StationError as error:
                verdict = (False, [f"the station refused the reset check: {error}"])
            self._events.put(("rechecked", index, slot.generation, verdict))

        threading.Thread(target=check, name=f"enpire-recheck-{index}", daemon=True).start()

    # ---- work --------------------------------------------------------------------------------------------
    def submit(self, station: int, request: TrialRequest) -> None:
        if station >= self._remote:
            self._local.submit(station - self._remote, request)
            return
        slot = self._slots[station]
        if slot.state != "ready" or slot.link is None:
            raise RuntimeError(f"station {station} is not idle (state {slot.state})")
        slot.state, slot.request, slot.started = "busy", request, time.monotonic()
        self._clock.begin(station)
        slot.link.submit(request)

    def wait(self, timeout: float) -> list[TrialRecord]:
        records = self._check_timeouts()
        local_busy = self._local is not None and self._local.in_flight() > 0
        deadline = time.monotonic() + (0.0 if records else timeout)
        while True:
            if self._local is not None:
                records += [dataclasses.replace(r, station=r.station + self._remote) for r in self._local.wait(0.0)]
            slice_s = min(0.005, timeout) if local_busy else timeout
            try:
                event = self._events.get(timeout=max(0.0, min(slice_s, deadline - time.monotonic())))
            except queue.Empty:
                event = None
            while event is not None:
                records += self._handle(*event)
                try:
                    event = self._events.get_nowait()
                except queue.Empty:
                    event = None
            if records or time.monotonic() >= deadline:
                return records
            if not local_busy and not any(s.state in ("busy", "starting") for s in self._slots):
                time.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
                return records

    def _handle(self, kind: str, index: int, generation: int, payload: Any) -> list[TrialRecord]:
        slot = self._slots[index]
        if generation != slot.generation or slot.state == "faulty":
            return []  # an event of a link the executor already replaced
        if kind == "ready":
            slot.state = "ready"
            log.info("station %d ready: %s (%s)", index, slot.address, payload.get("station_id"))
            return []
        if kind == "rechecked":
            self._rechecked(index, *payload)
            return []
        if kind == "died":
            return self._died(index, str(payload))
        if kind == "faulty":
            out = self._in_flight_crashed(index, f"refused: {payload}")
            self._mark_faulty(index, f"refused: {payload}")
            return out
        return self._record(index, payload)

    def _record(self, index: int, message: dict[str, Any]) -> list[TrialRecord]:
        slot = self._slots[index]
        request = slot.request
        record = record_from_json(message["record"])
        record.station = index
        fp = self._spec.fingerprints
        if message["fingerprints"] != {"done_sha256": fp.done_sha256, "safety_sha256": fp.safety_sha256}:
            why = f"station {slot.address} reported other fingerprints mid-session: {message['fingerprints']}"
            out = self._in_flight_crashed(index, why)
            self._mark_faulty(index, why)
            return out
        if request is not None:
            self._write_files(record, message.get("files") or {}, Path(request.out_dir))
        return self._returned(index, record, bool(message["faulty"]))

    @staticmethod
    def _write_files(record: TrialRecord, files: dict[str, str], out_dir: Path) -> None:
        """The station's video / replay / trajectory of the trial (base64 on the wire), written where a local
        station would put them (enpire.fleet.trial_files, shared with executor=ray)."""
        place_files(record, {field: base64.b64decode(data) for field, data in files.items()}, out_dir)

    def _stop_hung(self, index: int) -> None:
        link = self._slots[index].link
        if link is not None:
            link.stop()  # its trial channel closes: the station's watchdog stops the robot

    def _died(self, index: int, why: str) -> list[TrialRecord]:
        slot = self._slots[index]
        out = self._in_flight_crashed(index, why)
        if slot.link is not None:
            slot.link.stop()
        slot.link, slot.request = None, None
        self._restart_or_retire(index, why)
        return out

    def _mark_faulty(self, index: int, why: str) -> None:
        slot = self._slots[index]
        if slot.link is not None:
            slot.link.stop()
        slot.link, slot.state = None, "faulty"
        self._faulty[index] = why
        log.warning("station %d is faulty and leaves the rotation: %s", index, why)

    # ---- estop -------------------------------------------------------------------------------------------
    def _watch_estop(self) -> None:
        """Forward the session's estop flag to every station; tell ctl where the stations are."""
        path = os.environ.get(ESTOP_ENV)
        if path:
            doc = {"stations": [s.address for s in self._slots], "pid": os.getpid(),
                   "token_env": str(self._spec.executor.options.get("token_env") or TOKEN_ENV),
                   "token_file": self._spec.executor.options.get("token_file")}
            try:
                (Path(path).parent / STATIONS_FILE).write_text(json.dumps(doc))
            except OSError as error:
                log.warning("cannot write %s beside the estop flag (%s)", STATIONS_FILE, error)
        flag = estop_flag(path)
        self._estop_thread = threading.Thread(target=self._estop_loop, args=(flag,), name="enpire-remote-estop",
                                              daemon=True)
        self._estop_thread.start()

    def _estop_loop(self, flag: Any) -> None:
        while not self._estop_stop.wait(ESTOP_POLL_S):
            if flag[0]:
                seen = time.time()
                log.warning("estop flag set: forwarding to %d remote station(s)", len(self._clients))
                threads = [threading.Thread(target=self._send_estop, args=(c, seen)) for c in self._clients]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join(timeout=3.0)
                return

    def _send_estop(self, client: StationClient, seen: float) -> None:
        try:
            client.estop(f"session estop (runner pid {os.getpid()})")
            self.estop_latency_s.append(time.time() - seen)
        except StationError as error:
            log.error("estop could not reach station %s: %s (its own watchdog stops it when the runner goes)",
                      client.address, error)

