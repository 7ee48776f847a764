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

No shared disk is assumed: a station writes its trial's files (video, replay, trajectory) into a private
folder of its own node, and returns their bytes with the record through Ray's object store; the runner
writes them under the request's `out_dir` (enpire.fleet.trial_files). A bc candidate's checkpoint travels the
other way, put into the object store once per file and written to each station's private folder once.
Placement (custom resources, spread or pack, start timeout) is read by enpire.fleet.ray_config.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayActorError, RayError

from enpire.fleet.executor import STATION_FACTORY, BusyClock, SlotStations, crash_record, load_factory
from enpire.fleet.ray_config import RayPlacement
from enpire.fleet.trial_files import place_files, take_files
from enpire.records import TrialRecord, TrialRequest
from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)

READY_MESSAGE = "station %d ready on %s (node %s, pid %s, files in %s)"
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2  # records are small; don't claim a third of the RAM as Ray does


# a bc checkpoint in transit: [key (the runner's path, mtime, size), ObjectRef of its bytes]; a list, so Ray
# hands the actor the ref (fetched once per station) rather than the bytes with every trial
Shipped = list[Any]


class StationActor:
    """One station inside a Ray worker process (wrapped with `ray.remote` by the executor).

    Exceptions of `run_trial` become `crash` records here, so only a dead process (or a lost
    node) surfaces as an actor error on the executor's side. The station writes into a private
    folder on its own node (the node's temp dir), never into the runner's `out_dir`: the files
    come back as bytes in the return value.
    """

    def __init__(self, spec: ExperimentSpec, index: int, factory: str) -> None:
        os.environ.setdefault("MUJOCO_GL", "egl")  # before anything imports an OpenGL backend
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
        self.index = index
        self.private = Path(tempfile.mkdtemp(prefix=f"enpire-station{index}-"))
        self._checkpoints: dict[str, str] = {}  # the runner's file (path, mtime, size) -> this node's copy
        self.station = load_factory(factory)(spec, index)

    def ready(self) -> dict[str, Any]:
        """Where the station runs (logged; tests kill the pid)."""
        return {"pid": os.getpid(), "host": socket.gethostname(), "node": ray.get_runtime_context().get_node_id(),
                "private_dir": str(self.private)}

    def run_trial(self, request: TrialRequest, checkpoint: Shipped | None = None
                  ) -> tuple[TrialRecord, bool, dict[str, bytes]]:
        started = time.monotonic()
        files: dict[str, bytes] = {}
        try:
            here = dataclasses.replace(self._with_checkpoint(request, checkpoint), out_dir=str(self.private))
            record = self.station.run_trial(here)
            files = take_files(record)
        except Exception as error:  # a station bug must not lose the trial
            log.exception("station %d raised during %s", self.index, request.trial_id)
            record = crash_record(request, self.index, time.monotonic() - started, f"station raised: {error!r}")
        return record, bool(self.station.faulty), files

    def _with_checkpoint(self, request: TrialRequest, checkpoint: Shipped | None) -> TrialRequest:
        """The request with its candidate's checkpoint path pointing at this node's copy of the runner's file."""
        if checkpoint is None:
            return request
        key, ref = checkpoint
        local = self._checkpoints.get(key)
        if local is None:
            name = Path(request.candidate.checkpoint or "checkpoint").name
            folder = self.private / "checkpoints" / hashlib.sha256(key.encode()).hexdigest()[:16]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(ray.get(ref))
            local = self._checkpoints[key] = str(folder / name)
        return dataclasses.replace(request, candidate=dataclasses.replace(request.candidate, checkpoint=local))

    def recheck_reset(self, seed: int) -> tuple[str, bool, list[str]]:
        """A person fixed the scene: verify a reset again (enpire.fleet.human_reset)."""
        try:
            return "rechecked", self.station.recheck_reset(seed), self.station.reset_problems
        except Exception as error:  # the check failed; the station keeps waiting for the person
            log.exception("station %d raised during the reset check", self.index)
            return "rechecked", False, [f"the reset check raised {error!r}"]

    def close(self) -> None:
        try:
            self.station.close()
        finally:
            shutil.rmtree(self.private, ignore_errors=True)


@dataclass
class _Slot:
    actor: Any = None
    ref: Any = None  # ObjectRef of the call in flight: ready() while starting, run_trial() while busy
    state: str = "down"  # down | starting | ready | busy | needs_reset | checking | faulty
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
        resources = RayPlacement.from_spec(spec).local_instance_resources(spec.fleet)
        log.info("starting a local Ray instance with %d CPUs for %d stations", cpus, spec.fleet)
        # Ray renices its workers to 15 so the raylet stays responsive; on a machine shared with other
        # work that starves the stations (trials ran 10x slower than executor=local), so keep them at 0.
        ray.init(num_cpus=cpus, resources=resources or None, include_dashboard=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES, _system_config={"worker_niceness": 0}, **quiet)
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
        self._placement = RayPlacement.from_spec(spec)  # bad placement keys fail here, before Ray starts
        self._shipped: dict[str, Any] = {}  # checkpoint key -> ObjectRef of its bytes (put once per session)

    # ---- lifecycle ---------------------------------------------------------------------------
    def _spawn(self, index: int) -> None:
        slot = self._slots[index]
        slot.actor = self._remote.options(**self._placement.actor_options(index)).remote(
            self._spec, index, self._factory)
        slot.ref, slot.state, slot.request, slot.started, slot.where = slot.actor.ready.remote(), "starting", None, \
            time.monotonic(), None

    def start(self) -> None:
        self.launch()
        self.await_ready()

    def launch(self, count: int | None = None) -> None:
        if getattr(self, "_remote", None) is None:
            self._owns_ray = connect(self._spec)
            self._remote = ray.remote(max_restarts=0, max_task_retries=0)(StationActor)
        self._spawn_all(self._placement.start_timeout_s, self._placement.unplaced_reason(), count)

    def close(self) -> None:
        self.desk.end()  # interventions still open end with the session
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
        # a dead actor fails the ref; wait() records the crash
        slot.ref = slot.actor.run_trial.remote(request, self._ship_checkpoint(request))

    def _ship_checkpoint(self, request: TrialRequest) -> Shipped | None:
        """A bc candidate's checkpoint file, into the object store once (stations need no shared disk)."""
        path = request.candidate.checkpoint
        if request.candidate.kind != "bc" or not path or not Path(path).is_file():
            return None  # no checkpoint, or one the station is expected to read itself (e.g. a URI)
        stat = Path(path).stat()
        key = f"{path}:{stat.st_mtime_ns}:{stat.st_size}"  # a file rewritten in place is shipped again
        if key not in self._shipped:
            self._shipped[key] = ray.put(Path(path).read_bytes())
        return [key, self._shipped[key]]

    def wait(self, timeout: float) -> list[TrialRecord]:
        records: list[TrialRecord] = []
        records.extend(self._check_timeouts())
        watched = {s.ref: i for i, s in enumerate(self._slots)
                   if s.ref is not None and s.state in ("busy", "starting", "checking")}
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
            log.info(READY_MESSAGE, index, result.get("host"), result.get("node"), result.get("pid"),
                     result.get("private_dir"))
            return []
        if slot.state == "checking":
            _, ok, problems = result
            self._rechecked(index, bool(ok), list(problems))
            return []
        record, faulty, files = result
        if slot.request is not None:
            place_files(record, files, Path(slot.request.out_dir))  # the bytes came back; no path is shared
        return self._returned(index, record, faulty)

    def _recheck(self, index: int, seed: int) -> None:
        slot = self._slots[index]
        slot.ref = slot.actor.recheck_reset.remote(seed)  # wait() takes its verdict

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
