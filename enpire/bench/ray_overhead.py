"""Bench `ray`: what running stations as Ray actors costs against worker processes, on one node and on two.

All executors run the same trials (same candidate, same seeds) on a fleet of 2 drawer stations, in
interleaved rounds (medians reported); throughput is measured from the first dispatch to the last record
of a round, after one warm-up trial per station, so start-up is reported on its own (`*_start_s`).

- phase 1: `local` (forkserver workers) against `ray` (a local single-node Ray instance);
  `overhead_ratio` = local trials/s over ray trials/s: 1.0 means Ray costs nothing per trial, above 1.0
  Ray is slower.
- phase 2: `local` against `ray2` (a two-node cluster on loopback, enpire.bench.ray_cluster: one station per
  node, placed by the `enpire_station` resource with `placement=spread`); `two_node_ratio` = ray2 trials/s
  over local trials/s of the same phase (1.0: the same throughput). Both nodes share this machine's cores,
  so this is the price of the cluster path (per-node object store, cross-node calls), not the gain of a
  second machine.

`same_outcomes` is 1.0 when every backend produced the same outcome for every trial (an outcome is a
function of candidate and seed, not of where a station runs).
"""

from __future__ import annotations

import logging
import statistics
import tempfile
import time

from enpire.bench import bench
from enpire.bench.ray_cluster import loopback_cluster
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


def measure(trials: int, rounds: int, out_dir: str, kinds: dict[str, list[str]]
            ) -> dict[str, dict[str, float | list[TrialRecord]]]:
    """The fleets in `kinds` (name -> spec overrides) up at once, rounds interleaved (a, b, b, a, ...): on a shared
    machine the background load drifts, and interleaving exposes every backend to the same drift."""
    executors, out = {}, {}
    try:
        for kind, overrides in kinds.items():
            spec = load_spec(["task=drawer", f"fleet={FLEET}", "video.enabled=false", *overrides])
            executors[kind] = (spec, make_executor(spec))
            t0 = time.perf_counter()
            executors[kind][1].start()
            out[kind] = {"start_s": time.perf_counter() - t0, "rates": [], "robot_rates": [], "records": []}
            _run(executors[kind][1], _requests(spec, "warm", FLEET, out_dir, seed0=10_000))
        for r in range(rounds):
            for kind in (list(kinds) if r % 2 == 0 else list(kinds)[::-1]):
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


def _outcomes(res: dict[str, float | list[TrialRecord]]) -> dict[tuple[str, int], str]:
    return {(r.trial_id, r.seed): r.outcome for r in res["records"]}  # type: ignore[union-attr]


@bench("ray", "executor=ray vs executor=local at fleet 2: trials/s on one Ray node (overhead ratio) and on a "
              "two-node cluster on loopback (two_node_ratio)")
def ray_overhead(quick: bool) -> dict[str, float]:
    trials, rounds = (8, 2) if quick else (24, 4)
    with tempfile.TemporaryDirectory(prefix="enpire-bench-ray-") as out_dir:
        one = measure(trials, rounds, out_dir, {"local": ["executor=local"], "ray": ["executor=ray"]})
        with loopback_cluster(nodes=2, cpus_per_node=1) as address:
            two = measure(trials, rounds, out_dir, {
                "local": ["executor=local"],
                "ray2": ["executor=ray", f"executor.address={address}", "executor.resources={enpire_station:1}",
                         "executor.placement=spread"]})
    out: dict[str, float] = {"fleet": float(FLEET), "trials": float(trials * rounds)}
    for kind, res in (("local", one["local"]), ("ray", one["ray"]), ("ray2", two["ray2"])):
        for key in ("trials_per_s", "robot_s_per_wall_s", "start_s"):
            out[f"{kind}_{key}"] = float(res[key])  # type: ignore[arg-type]
    out["local_phase2_trials_per_s"] = float(two["local"]["trials_per_s"])  # type: ignore[arg-type]
    out["overhead_ratio"] = out["local_trials_per_s"] / out["ray_trials_per_s"]
    out["two_node_ratio"] = out["ray2_trials_per_s"] / out["local_phase2_trials_per_s"]
    reference = _outcomes(one["local"])
    out["same_outcomes"] = float(all(_outcomes(res) == reference for res in (one["ray"], two["local"], two["ray2"])))
    return out
