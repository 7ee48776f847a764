"""`search_vs_baselines`: robot-seconds to /done of the search agent, random search and Optuna TPE.

Fair protocol: for each task, the same parameter space, the same evaluation protocol
(enpire.agent.protocol with sequential screening, enpire.agent.search_screen: one trial per fresh
candidate, then 1 -> 4 -> 16 -> /done window while the Beta posterior keeps the goal plausible;
`conf/agent/{search,random,tpe}.yaml` set the same `trials_per_candidate` and `screening`), the
same trial seeds and the same frozen /done for all three kinds; only where fresh candidates come
from differs. A seed that does not reach /done counts as the whole robot-second budget spent
(so the median is conservative for a strategy that fails). Median over seeds.

Two tasks: drawer (the default task; about a third of its space always works, so /done's
50-trial confirmation dominates everyone's cost) and peg_insert (a narrower space where finding
a working candidate is most of the cost). Metric keys are `<task>.<kind>_robot_s_to_done_median`,
`<task>.<kind>_reached_done` and `<task>.search_over_tpe`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from enpire.bench import bench
from enpire.bench.sessions import median, number, run_quiet

KINDS = ("search", "random", "tpe")
TASKS = ("drawer", "peg_insert")


def compare(task: str, seeds: int, fleet: int, budget: str, extra: tuple[str, ...] = ()) -> dict[str, float]:
    """Median robot-seconds to /done per agent kind on `task`, same seeds and protocol for every kind."""
    from enpire.spec import load_spec

    out: dict[str, float] = {}
    cap = load_spec([f"task={task}", f"budget={budget}", *extra]).budget.robot_seconds  # what a miss costs
    with tempfile.TemporaryDirectory(prefix="enpire-bench-search-") as tmp:
        for kind in KINDS:
            spent, hits = [], []
            for seed in range(seeds):
                summary = run_quiet([f"task={task}", f"agent={kind}", f"seed={seed}", f"fleet={fleet}",
                                     f"budget={budget}", "video.enabled=false", *extra], Path(tmp))
                if summary.get("reached_done") == "true":
                    hits.append(number(summary, "robot_s_to_done"))
                    spent.append(hits[-1])
                else:  # a miss is scored at the whole budget, never at what it happened to use before a cap
                    spent.append(cap)
            out[f"{task}.{kind}_robot_s_to_done_median"] = median(spent)
            out[f"{task}.{kind}_robot_s_to_done_median_of_reached"] = median(hits)
            out[f"{task}.{kind}_reached_done"] = float(len(hits))
    tpe = out[f"{task}.tpe_robot_s_to_done_median"]
    out[f"{task}.search_over_tpe"] = out[f"{task}.search_robot_s_to_done_median"] / tpe if tpe else float("nan")
    return out


@bench("search_vs_baselines", "robot-seconds to /done: search agent vs random search vs Optuna TPE (median of seeds)")
def search_vs_baselines(quick: bool) -> dict[str, float]:
    out: dict[str, float] = {"seeds": 5.0}
    for task in TASKS:  # quick: the same 5 seeds at fleet 2, capped by the small budget
        out.update(compare(task, seeds=5, fleet=2, budget="small" if quick else "default"))
    return out
