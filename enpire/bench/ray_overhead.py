"""Bench `ray`: what running stations as Ray actors costs against worker processes on one machine.

Both executors run the same trials (same candidate, same seeds) on a fleet of 2 drawer
stations, in interleaved rounds (medians reported); throughput is measured from the first
dispatch to the last record of a round, after one warm-up trial per station, so start-up is
reported on its own (`*_start_s`: a local Ray instance plus actors vs forkserver workers).
`overhead_ratio` = local trials/s over ray trials/s: 1.0 means Ray costs nothing per trial,
above 1.0 Ray is slower. `same_outcomes` is 1.0 when both backends produced the same outcome
for every trial (they should: an outcome is a function of candidate and seed, not of where a
station runs).
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time

from enpire.bench import bench
from enpire.fleet.executor import Executor
from enpire.fleet.executors import make_executor
from enpire.records import Candidate, TrialRecord, TrialRequest
from enpire.spec import ExperimentSpec, load_spec

log = logging.getLogger(__name__)

FLEET = 2


def _run(executor: Executor, requests: list[TrialRequest], limit_s: float = 600.0) -> tuple[float, list[TrialRecord]]:
    """Keep every idle station busy until all requests came back; (wall seconds, records)."""
    queue, records = list(requests), []
    started = time.perf_counter()
    deadline = time.monotonic() + limit_s
    while len(records) < len(requests):
        if time.monotonic() > deadline:
            raise RuntimeError(f"bench ray: {len(records)} of {len(requests)} trials back after {limit_s:.0f} s")
        for station in executor.idle():
            if not queue:
                break
            executor.submit(station, queue.pop(0))
        records.extend(executor.wait(0.05))
    return time.perf_counter() - started, records


def _requests(spec: ExperimentSpec, prefix: str, n: int, out_dir: str, seed0: int) -> list[TrialRequest]:
    candidate = Candidate("bench-defaults", params=spec.policy.defaults())
    return [TrialRequest(trial_id=f"{prefix}{k:03d}", iteration=0, seed=seed0 + k, candidate=candidate,
                         out_dir=out_dir) for k in range(n)]


def measure(trials: int, rounds: int, out_dir: str) -> dict[str, dict[str, float | list[TrialRecord]]]:
    """Both fleets up at once, rounds interleaved (local, ray, ray, local, ...): on a shared machine the
    background load drifts, and interleaving exposes both backends to the same drift."""
    executors, out = {}, {}
    try:
        for kind in ("local", "ray"):
            spec = load_spec(["task=drawer", f"fleet={FLEET}", f"executor={kind}", "video.enabled=false"])
            executors[kind] = (spec, make_executor(spec))
            t0 = time.perf_counter()
            executors[kind][1].start()
            out[kind] = {"start_s": time.perf_counter() - t0, "rates": [], "robot_rates": [], "records": []}
            _run(executors[kind][1], _requests(spec, "warm", FLEET, out_dir, seed0=10_000))
        for r in range(rounds):
            for kind in (("local", "ray") if r % 2 == 0 else ("ray", "local")):
                spec, executor = executors[kind]
                wall, got = _run(executor, _requests(spec, f"r{r}-", trials, out_dir, seed0=0))
                out[kind]["rates"].append(len(got) / wall)
                out[kind]["robot_rates"].append(sum(x.robot_seconds for x in got) / wall)
                out[kind]["records"].extend(got)
    finally:
        for _, executor in executors.values():
            executor.close()
    for kind, res in out.items():
        log.info("%s: trials/s per round %s, start %.1f s", kind, res["rates"], res["start_s"])
        res["trials_per_s"] = statistics.median(res.pop("rates"))
        res["robot_s_per_wall_s"] = statistics.median(res.pop("robot_rates"))
    return out


@bench("ray", "executor=ray vs executor=local: trials/s and robot-seconds per wall-second at fleet 2, overhead ratio")
def ray_overhead(quick: bool) -> dict[str, float]:
    trials, rounds = (8, 2) if quick else (24, 4)
    with tempfile.TemporaryDirectory(prefix="enpire-bench-ray-") as out_dir:
        both = measure(trials, rounds, out_dir)
    local, remote = both["local"], both["ray"]
    outcome = {kind: {(r.trial_id, r.seed): r.outcome for r in res["records"]}  # type: ignore[union-attr]
               for kind, res in (("local", local), ("ray", remote))}
    out: dict[str, float] = {"fleet": float(FLEET), "trials": float(trials * rounds)}
    for kind, res in (("local", local), ("ray", remote)):
        for key in ("trials_per_s", "robot_s_per_wall_s", "start_s"):
            out[f"{kind}_{key}"] = float(res[key])  # type: ignore[arg-type]
    out["overhead_ratio"] = out["local_trials_per_s"] / out["ray_trials_per_s"]
    out["same_outcomes"] = float(outcome["local"] == outcome["ray"])
    return out
