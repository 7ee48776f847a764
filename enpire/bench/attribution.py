"""`attribution`: robot-seconds to /done of the search agent with and without failure attribution.

Same tasks, seeds, budget and protocol; only `agent.attribution` differs: off, the search agent credits a
failed candidate with how close its failed trials' final task state came to the done thresholds; on, with
how far they got through the task's phases and toward the failing condition (the iteration's failure
histogram, enpire.agent.attribution_progress). A seed that misses /done counts as the whole robot-second
budget. Median over seeds. Metric keys: `<task>.{off,on}_robot_s_to_done_median`, `<task>.{off,on}_reached_done`,
`<task>.on_over_off`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from enpire.bench import bench
from enpire.bench.sessions import median, number, run_quiet

TASKS = ("drawer", "lift")
MODES = {"off": "false", "on": "true"}


def compare(task: str, seeds: int, fleet: int, budget: str) -> dict[str, float]:
    from enpire.spec import load_spec

    cap = load_spec([f"task={task}", f"budget={budget}"]).budget.robot_seconds
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="enpire-bench-attribution-") as tmp:
        for mode, flag in MODES.items():
            spent, hits = [], 0
            for seed in range(seeds):
                summary = run_quiet([f"task={task}", "agent=search", f"+agent.attribution={flag}", f"seed={seed}",
                                     f"fleet={fleet}", f"budget={budget}", "video.enabled=false"], Path(tmp))
                if summary.get("reached_done") == "true":
                    hits += 1
                    spent.append(number(summary, "robot_s_to_done"))
                else:
                    spent.append(cap)
            out[f"{task}.{mode}_robot_s_to_done_median"] = median(spent)
            out[f"{task}.{mode}_reached_done"] = float(hits)
    off = out[f"{task}.off_robot_s_to_done_median"]
    out[f"{task}.on_over_off"] = out[f"{task}.on_robot_s_to_done_median"] / off if off else float("nan")
    return out


@bench("attribution", "robot-seconds to /done: search agent with vs without failure attribution (median of seeds)")
def attribution(quick: bool) -> dict[str, float]:
    seeds = 3 if quick else 7
    out: dict[str, float] = {"seeds": float(seeds)}
    for task in TASKS:
        out.update(compare(task, seeds=seeds, fleet=2, budget="small"))
    return out
