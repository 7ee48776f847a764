"""`search_vs_baselines`: robot-seconds to /done of the search agent, random search and Optuna TPE.

Same task (drawer), parameter space, evaluation protocol (enpire.agent.protocol), trial seeds
and /done for all three; a seed that does not reach /done counts as the whole robot-second
budget spent (so the median is conservative for a strategy that fails). Median over seeds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from enpire.bench import bench
from enpire.bench.sessions import median, number, run_quiet

KINDS = ("search", "random", "tpe")


def compare(seeds: int, fleet: int, budget: str, extra: tuple[str, ...] = ()) -> dict[str, float]:
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="enpire-bench-search-") as tmp:
        for kind in KINDS:
            spent, reached = [], 0
            for seed in range(seeds):
                summary = run_quiet([f"agent={kind}", f"seed={seed}", f"fleet={fleet}", f"budget={budget}",
                                     "video.enabled=false", *extra], Path(tmp))
                done = summary.get("reached_done") == "true"
                reached += done
                cap = number(summary, "robot_seconds")
                spent.append(number(summary, "robot_s_to_done") if done else cap)
            out[f"{kind}_robot_s_to_done_median"] = median(spent)
            out[f"{kind}_reached_done"] = float(reached)
    out["seeds"] = float(seeds)
    tpe = out["tpe_robot_s_to_done_median"]
    out["search_over_tpe"] = out["search_robot_s_to_done_median"] / tpe if tpe else float("nan")
    return out


@bench("search_vs_baselines", "robot-seconds to /done: search agent vs random search vs Optuna TPE (median of seeds)")
def search_vs_baselines(quick: bool) -> dict[str, float]:
    if quick:
        return compare(seeds=2, fleet=2, budget="small")
    return compare(seeds=5, fleet=2, budget="default")
