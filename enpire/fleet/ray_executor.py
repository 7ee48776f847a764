"""RayExecutor: one Ray actor per station, so a fleet spans the machines of a Ray cluster.

Same contract as `enpire.fleet.local.LocalExecutor` (the scheduler, ledger and tracker cannot
tell them apart): each station is a `StationActor` holding a station built from the spec in
its own Ray worker process, wherever the cluster places it. `executor.address` picks the
cluster: null starts a local Ray instance sized to the fleet (and shuts it down on close);
"auto" or "ray://host:10001" joins an existing one (left running on close).

Crash handling mirrors local: an actor that dies (process killed, node lost, OOM) or exceeds
`executor.trial_timeout_s` on one trial has its trial in flight recorded as `crash` and is
replaced by a fresh actor; after `executor.max_restarts` replacements the station is marked
faulty and leaves the rotation. Ray's own actor restarts are off: replacing the actor here is
what lets the executor know which trial was lost.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from enpire.fleet.executor import STATION_FACTORY, BusyClock, SlotStations, crash_record, load_factory
from enpire.records import TrialRecord, TrialRequest
from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)

START_TIMEOUT_S = 180.0  # an actor still pending after this (no node has the CPUs) counts as failed to start
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2  # records are small; don't claim a third of the RAM as Ray does


class StationActor:
    """One station inside a Ray worker process (wrapped with `ray.remote` by the executor).

    Exceptions of `run_trial` become `crash` records here, so only a dead process (or a lost
    node) surfaces as an actor error on the executor's side.
    """

    def __init__(self, spec: ExperimentSpec, index: int, factory: str) -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports an OpenGL backend
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        self.index = index
        self.station = load_factory(factory)(spec, index)

    def ready(self) -> dict[str, Any]:
        """Where the station runs (logged; tests kill the pid)."""
        return {"pid": os.getpid(), "host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id()}

    def run_trial(self, request: TrialRequest) -> tuple[TrialRecord, bool]:
        started = time.monotonic()
        try:
            record = self.station.run_trial(request)
        except Exception as error:  # a station bug must not lose the trial
            log.exception("station %d raised during %s", self.index, request.trial_id)
            record = crash_record(request, self.index, time.monotonic() - started, f"station raised: {error!r}")
        return record, bool(self.station.faulty)

    def close(self) -> None:
        self.station.close()


@dataclass
class _Slot:
    actor: Any = None
    ref: Any = None  # ObjectRef of the call in flight: ready() while starting, run_trial() while busy
    state: str = "down"  # down | starting | ready | busy | faulty
    request: TrialRequest | None = None
    started: float = 0.0  # when the trial in flight (or the start) began
    restarts: int = 0
    where: dict[str, Any] | None = None  # pid, host, node of the live actor


def connect(spec: ExperimentSpec) -> bool:
    """Join or start Ray for this fleet; True when this call started the instance (so close shuts it down).

    A Ray instance that is already up in this process (a test fixture, a notebook) is reused.
    """
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network from the stations' machines
    quiet: dict[str, Any] = {"logging_level": logging.WARNING, "log_to_driver": False}
    address = spec.executor.address
    if address is None:
        cpus = max(1, math.ceil(spec.fleet * spec.executor.num_cpus_per_station))
        log.info("starting a local Ray instance with %d CPUs for %d stations", cpus, spec.fleet)
        # Ray renices its workers to 15 so the raylet stays responsive; on a machine shared with other
        # work that starves the stations (trials ran 10x slower than executor=local), so keep them at 0.
        ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=LOCAL_OBJECT_STORE_BYTES,
                 _system_config={"worker_niceness": 0}, **quiet)
    else:
        log.info("connecting to the Ray cluster at %s", address)
        try:
            ray.init(address=address, **quiet)
        except (ConnectionError, RuntimeError, ValueError) as error:
            raise RuntimeError(f"executor.address: could not connect to Ray at {address!r}: {error}; expected a "
                               "running cluster ('ray start --head' on the head node) or null for a local "
                               "instance") from error
    return True


class RayExecutor(SlotStations):
    def __init__(self, spec: ExperimentSpec, factory: str = STATION_FACTORY) -> None:
        self.size = spec.fleet
        self._spec = spec
        self._factory = factory
        self._slots = [_Slot() for _ in range(self.size)]
        self._faulty: dict[int, str] = {}
        self._clock = BusyClock(self.size)
        self._owns_ray = False
        self._remote: Any = None  # the ray.remote-wrapped StationActor

    # ---- lifecycle ---------------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        slot = self._slots[index]
        slot.actor = self._remote.options(num_cpus=self._spec.executor.num_cpus_per_station,
                                          name=None).remote(self._spec, index, self._factory)
        slot.ref, slot.state, slot.request, slot.started, slot.where = slot.actor.ready.remote(), "starting", None, \
            time.monotonic(), None

    def start(self) -> None:
        self.launch()
        self.await_ready()

    def launch(self, count: int | None = None) -> None:
        if getattr(self, "_remote", None) is None:
            self._owns_ray = connect(self._spec)
            self._remote = ray.remote(max_restarts=0, max_task_retries=0)(StationActor)
        self._spawn_all(START_TIMEOUT_S, f"did not start within {START_TIMEOUT_S:.0f} s (no Ray node with "
                                         f"{self._spec.executor.num_cpus_per_station} free CPUs?)", count)

    def close(self) -> None:
        closing = [s.actor.close.remote() for s in self._slots if s.actor is not None and s.state == "ready"]
        if closing:
            try:
                ray.wait(closing, num_returns=len(closing), timeout=5.0)
            except RayError:
                pass
        for slot in self._slots:
            self._kill(slot)
        if self._owns_ray and ray.is_initialized():
            ray.shutdown()
            self._owns_ray = False

    # ---- queries -----------------------------------------------------------------------------
    def actor(self, index: int) -> Any:
        """The live actor handle of a station (tests `ray.kill` it to check crash recovery)."""
        return self._slots[index].actor

    def where(self, index: int) -> dict[str, Any] | None:
        """pid, host and Ray node id of a station's actor once it is ready."""
        return self._slots[index].where

    # ---- work --------------------------------------------------------------------------------
    def submit(self, station: int, request: TrialRequest) -> None:
        slot = self._slots[station]
        if slot.state != "ready" or slot.actor is None:
            raise RuntimeError(f"station {station} is not idle (state {slot.state})")
        slot.state, slot.request, slot.started = "busy", request, time.monotonic()
        self._clock.begin(station)
        slot.ref = slot.actor.run_trial.remote(request)  # a dead actor fails the ref; wait() records the crash

    def wait(self, timeout: float) -> list[TrialRecord]:
        records: list[TrialRecord] = []
        records.extend(self._check_timeouts())
        watched = {s.ref: i for i, s in enumerate(self._slots) if s.ref is not None and s.state in ("busy", "starting")}
        if not watched:
            time.sleep(min(timeout, 0.01))
            return records
        refs = list(watched)
        done, rest = ray.wait(refs, num_returns=1, timeout=0.0 if records else timeout)
        if done and rest:  # everything else that is already finished, without waiting again
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0.0)
            done += more
        for ref in done:
            records.extend(self._finished(watched[ref], ref))
        return records

    def _finished(self, index: int, ref: Any) -> list[TrialRecord]:
        slot = self._slots[index]
        slot.ref = None
        try:
            result = ray.get(ref, timeout=30.0)
        except RayActorError as error:
            what = "station failed to start" if slot.state == "starting" else "station actor died"
            return self._died(index, f"{what}: {_first_line(error)}")
        except (RayError, GetTimeoutError) as error:  # a result that cannot be fetched or deserialised
            return self._died(index, f"station call failed: {_first_line(error)}")
        if slot.state == "starting":
            slot.state, slot.where = "ready", result
            log.info("station %d ready on %s (pid %s)", index, result.get("host"), result.get("pid"))
            return []
        record, faulty = result
        return self._returned(index, record, faulty)

    def _died(self, index: int, why: str) -> list[TrialRecord]:
        """Record the trial in flight as crash, then replace the actor (or give up on the station)."""
        out = self._in_flight_crashed(index, why)
        self._kill(self._slots[index])
        self._restart_or_retire(index, why)
        return out

    def _kill(self, slot: _Slot) -> None:
        if slot.actor is not None:
            try:
                ray.kill(slot.actor, no_restart=True)
            except (RayError, ValueError):
                pass  # already gone
        slot.actor, slot.ref, slot.request, slot.where = None, None, None, None

    def _mark_faulty(self, index: int, why: str) -> None:
        slot = self._slots[index]
        self._kill(slot)  # callers recorded any trial in flight first
        slot.state = "faulty"
        self._faulty[index] = why
        log.warning("station %d is faulty and leaves the rotation: %s", index, why)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return (text.splitlines()[0] if text else type(error).__name__)[:300]
