"""`learning`: the capability curve of the learned regimes on one task, one session per regime.

For the tuned scripted baseline (the search agent on the task's scripted parameters), bc, rl from demos and
rl without demos (`policy.train.demos=0`), each a whole session (`agent=search`, fleet 2, seed 0), it
reports what each spent and reached: best pooled success rate, robot-seconds, trainer-seconds, wall-clock,
trainer utilisation and whether /done was met. The task is `ENPIRE_LEARNING_TASK` (default peg_insert);
`--quick` runs the smoke budget (seconds; the figures then only show the bench works), otherwise `small`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from enpire.bench import bench
from enpire.bench.sessions import number, run_quiet

REGIMES: dict[str, list[str]] = {
    "scripted": [],
    "bc": ["policy=bc"],
    "rl": ["policy=rl"],
    "rl_no_demos": ["policy=rl", "policy.train.demos=0", "policy.train.pretrain_steps=0"],
}
FIGURES = ("best_success_rate", "robot_seconds", "trainer_seconds", "wall_s", "trainer_utilization", "mru")


@bench("learning", "success vs robot-, trainer- and wall-seconds: tuned scripted, bc, rl from demos, rl without")
def learning(quick: bool) -> dict[str, float]:
    task = os.environ.get("ENPIRE_LEARNING_TASK", "peg_insert")
    budget = "smoke" if quick else "small"
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="enpire-learning-") as tmp:
        for regime, overrides in REGIMES.items():
            summary = run_quiet([f"task={task}", *overrides, f"budget={budget}", "fleet=2", "seed=0",
                                 "video.enabled=false"], Path(tmp))
            for key in FIGURES:
                out[f"{regime}_{key}"] = number(summary, key)
            out[f"{regime}_reached_done"] = float(summary.get("reached_done") == "true")
            out[f"{regime}_exit_code"] = number(summary, "exit_code")
    return out
