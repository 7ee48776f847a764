"""`long_session`: does the loop stay linear in its history? Trials/s early vs late, and the writer's tail.

A session of >= 2,000 one-trial iterations (the search agent's sequential screening proposes 1-trial
chunks first) with MLflow tracking and the journal on, as a user runs it. The stations are
`InstantStation`s: they answer each trial at once with a record drawn from the trial's seed
(success with probability 0.1 whatever the candidate), so what is measured is the
loop, the agents, the idea tree, the journal and the MLflow writer, not the physics. Figures:

- `trials_per_s_early` / `trials_per_s_late`: loop throughput over the first and last 20% of the
  iterations (by the iteration runs' close times); `late_over_early` (goal >= 0.9);
- `writer_tail_s`: seconds from the summary being computed to the session's return (the MLflow writer
  draining its queue at close), and
  `writer_tail_share` = that over the session's wall (goal <= 0.05).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from enpire.bench import bench
from enpire.records import TrialRecord, TrialRequest
from enpire.spec.model import ExperimentSpec

FACTORY = "enpire.bench.long_session:InstantStation"
SUCCESS_P = 0.1  # most screens fail on their first trial: mostly one-trial iterations, as in a long search


class InstantStation:
    """A station that answers at once: success with probability SUCCESS_P, drawn from the trial's seed."""

    def __init__(self, spec: ExperimentSpec, index: int) -> None:
        self.index = index
        self.spec = spec

    @property
    def faulty(self) -> bool:
        return False

    def run_trial(self, request: TrialRequest) -> TrialRecord:
        ok = bool(np.random.default_rng(request.seed).random() < SUCCESS_P)
        return TrialRecord(trial_id=request.trial_id, iteration=request.iteration, station=self.index,
                           seed=request.seed, outcome="success" if ok else "failure", attempts=1,
                           success_attempt=1 if ok else None, pass_at_1=ok, pass_at_k=ok, robot_seconds=1.0,
                           wall_s=0.0, steps=50, clamps=0, reason="instant")

    def close(self) -> None:
        return None


def run_long(iterations: int, store: Path) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    from enpire.loop import SessionContext, run_session
    from enpire.spec import load_spec
    from enpire.track.summary import parse

    spec = load_spec(["task=drawer", "executor=inline", "fleet=1", "video.enabled=false",
                      f"tracking.uri=sqlite:///{store}/mlflow.db", f"tracking.artifact_root={store}/artifacts",
                      f"budget.iterations={iterations}", f"budget.trials={iterations}", "budget.robot_seconds=1e9",
                      "budget.wall_clock_s=3600", "done.goal.window=10000", "done.goal.min_success_rate=0.999"])
    buf = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(buf):
        run_session(spec, SessionContext(run_dir=str(store / "run")), station_factory=FACTORY, live=False)
    wall = time.monotonic() - started
    summary = parse(buf.getvalue())
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    runs = client.search_runs([client.get_run(summary["session_id"]).info.experiment_id],
                              filter_string=f"tags.mlflow.parentRunId = '{summary['session_id']}'",
                              max_results=50000)
    ends = sorted(r.info.end_time / 1000.0 for r in runs if r.info.end_time)
    trials = {int(r.data.tags["enpire.iteration"]): r.data.metrics.get("trials", 0.0) for r in runs}
    fifth = max(2, len(ends) // 5)

    def rate(times: list[float], count: float) -> float:
        return count / max(1e-9, times[-1] - times[0])

    order = sorted(trials)
    early = sum(trials[i] for i in order[:fifth]) / max(1, fifth) * (fifth - 1)
    late = sum(trials[i] for i in order[-fifth:]) / max(1, fifth) * (fifth - 1)
    loop_wall = float(summary.get("loop_wall_s", "nan"))
    tail = max(0.0, wall - float(summary.get("wall_s", "nan")))  # the summary is computed before the writer drains
    out = {"iterations": float(len(runs)), "trials": float(summary.get("trials", "nan")),
           "trials_per_s_early": rate(ends[:fifth], early), "trials_per_s_late": rate(ends[-fifth:], late),
           "loop_wall_s": loop_wall, "session_wall_s": wall, "writer_tail_s": tail}
    out["late_over_early"] = out["trials_per_s_late"] / out["trials_per_s_early"]
    out["writer_tail_share"] = tail / wall
    return out


@bench("long_session", ">= 2,000 one-trial iterations: loop trials/s late vs early (goal >= 0.9), writer tail share")
def long_session(quick: bool) -> dict[str, float]:
    logging.getLogger("enpire").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="enpire-bench-long-") as tmp:
        return run_long(600 if quick else 2000, Path(tmp))
