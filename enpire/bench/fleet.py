"""`fleet`: rollout throughput at 1, 2, 4 stations; `drawer_to_done`: wall, robot-seconds and MRU to /done.

`fleet` drives the LocalExecutor directly (no agent, no tracking) with the drawer's default
candidate, so it measures the fleet alone: trials per wall second and robot-seconds per wall
second, and the speed-up over one station. On a 2-core machine the speed-up flattens past 2.

`drawer_to_done` runs whole sessions (`python -m enpire task=drawer fleet=N`, default budget,
offline search agent, local executor) and reports what each spent until /done.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from enpire.bench import bench
from enpire.bench.sessions import number, run_quiet
from enpire.fleet.executors import make_executor
from enpire.fleet.scheduler import trial_seed
from enpire.records import Candidate, TrialRequest
from enpire.spec import load_spec


def throughput(stations: int, trials: int) -> tuple[float, float]:
    """(trials per wall second, robot-seconds per wall second) of `stations` local workers."""
    spec = load_spec(["task=drawer", f"fleet={stations}", "executor=local", "video.enabled=false"])
    executor = make_executor(spec)
    executor.start()
    candidate = Candidate("default", params=spec.policy.defaults())
    try:
        sent = done = 0
        robot = 0.0
        start = time.monotonic()
        with tempfile.TemporaryDirectory() as tmp:
            while done < trials:
                for station in executor.idle():
                    if sent < trials:
                        executor.submit(station, TrialRequest(f"b{sent}", 0, trial_seed(0, 0, sent), candidate,
                                                              out_dir=tmp))
                        sent += 1
                for record in executor.wait(0.5):
                    done += 1
                    robot += record.robot_seconds
        wall = time.monotonic() - start
    finally:
        executor.close()
    return trials / wall, robot / wall


@bench("fleet", "rollout throughput (trials/s, robot-s per wall-s) of the local fleet at 1, 2, 4 stations")
def fleet(quick: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    trials = 16 if quick else 48  # the same trials (same seeds) at every fleet size: a fair comparison
    for n in (1, 2, 4):
        rate, robot = throughput(n, trials=trials)
        out[f"trials_per_s_fleet{n}"] = rate
        out[f"robot_s_per_wall_s_fleet{n}"] = robot
    out["speedup_fleet2"] = out["trials_per_s_fleet2"] / out["trials_per_s_fleet1"]
    out["speedup_fleet4"] = out["trials_per_s_fleet4"] / out["trials_per_s_fleet1"]
    return out


@bench("drawer_to_done", "wall time, robot-seconds and MRU to /done on the drawer at fleet 1, 2, 4 (default budget)")
def drawer_to_done(quick: bool) -> dict[str, float]:
    out: dict[str, float] = {}
    fleets = (1, 4) if quick else (1, 2, 4)
    with tempfile.TemporaryDirectory(prefix="enpire-bench-done-") as tmp:
        for n in fleets:
            summary = run_quiet(["task=drawer", f"fleet={n}", "video.enabled=false"], Path(tmp))  # quick: fewer fleets
            out[f"reached_done_fleet{n}"] = float(summary.get("reached_done") == "true")
            out[f"wall_s_fleet{n}"] = number(summary, "time_to_done_s", number(summary, "wall_s"))
            out[f"robot_s_fleet{n}"] = number(summary, "robot_s_to_done", number(summary, "robot_seconds"))
            out[f"mru_fleet{n}"] = number(summary, "mru")
            out[f"trials_fleet{n}"] = number(summary, "trials")
    return out
