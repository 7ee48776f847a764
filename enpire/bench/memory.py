"""`memory`: does a drawer notebook shorten a jaco-drawer session? Robot-seconds to /done with and without it.

One drawer session (the task's default robot, enarm) writes its research notebooks; then `robot=jaco
task=drawer` sessions run on the same seeds twice, without and with `agent.memory_from=<that session>`
(its recipes mapped onto jaco's drawer space by name and evaluated first: enpire.agent.memory). Everything
else is the same: agent, fleet, budget, protocol. A seed that misses /done counts as the whole robot-second
budget. Medians over seeds. (push_t's scripted policy shares no parameter name with the drawer's, so a drawer
notebook maps nothing onto it: only its notes would reach an agent that reads them.)

Without --quick, a control: drawer itself (enarm) on seeds 1-3 without and with the same notebook, i.e.
what a notebook whose recipe transfers whole saves.

Metric keys (`<target>` = `jaco_drawer`, and `drawer` for the control): `source.robot_s_to_done`,
`<target>.{off,on}.robot_s_to_done_median`, `<target>.{off,on}.reached_done`, `<target>.{off,on}.trials_median`
(trials of the whole session), `<target>.on_over_off`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from enpire.bench import bench
from enpire.bench.sessions import median, number, run_quiet

SOURCE = ("task=drawer",)
TARGETS = {"jaco_drawer": ("task=drawer", "robot=jaco"), "drawer": ("task=drawer",)}


def sessions(target: tuple[str, ...], seeds: range, common: list[str], cap: float, memory_id: str,
             store: Path) -> dict[str, float]:
    """Without and with the notebook: median robot-s to /done (a miss = `cap`), /done count, median trials."""
    out: dict[str, float] = {}
    for mode, extra in {"off": [], "on": [f"agent.memory_from={memory_id}"]}.items():
        spent, trials, hits = [], [], 0
        for seed in seeds:
            summary = run_quiet([*target, *common, f"seed={seed}", *extra], store)
            if summary.get("reached_done") == "true":
                hits += 1
                spent.append(number(summary, "robot_s_to_done"))
            else:
                spent.append(cap)
            trials.append(number(summary, "trials"))
        out[f"{mode}.robot_s_to_done_median"] = median(spent)
        out[f"{mode}.reached_done"] = float(hits)
        out[f"{mode}.trials_median"] = median(trials)
    off = out["off.robot_s_to_done_median"]
    out["on_over_off"] = out["on.robot_s_to_done_median"] / off if off else float("nan")
    return out


def compare(seeds: int, control_seeds: int, fleet: int, budget: str) -> dict[str, float]:
    """The drawer (enarm) session at seed 0, then jaco-drawer on seeds 0.. and, with `control_seeds`, drawer
    itself on seeds 1.. (the same task and robot: what a notebook that transfers whole saves)."""
    from enpire.spec import load_spec

    common = ["agent=search", f"fleet={fleet}", f"budget={budget}", "video.enabled=false"]
    out: dict[str, float] = {"seeds": float(seeds)}
    with tempfile.TemporaryDirectory(prefix="enpire-bench-memory-") as tmp:
        source = run_quiet([*SOURCE, *common, "seed=0"], Path(tmp))
        out["source.reached_done"] = float(source.get("reached_done") == "true")
        out["source.robot_s_to_done"] = number(source, "robot_s_to_done")
        runs = {"jaco_drawer": range(seeds), "drawer": range(1, 1 + control_seeds)}
        for name, seed_range in runs.items():
            if not seed_range:
                continue
            cap = load_spec([*TARGETS[name], f"budget={budget}"]).budget.robot_seconds
            figures = sessions(TARGETS[name], seed_range, common, cap, source["session_id"], Path(tmp))
            out.update({f"{name}.{k}": v for k, v in figures.items()})
    return out


@bench("memory", "robot-s to /done on jaco-drawer with vs without a drawer (enarm) notebook (median of seeds)")
def memory(quick: bool) -> dict[str, float]:
    return compare(seeds=2 if quick else 7, control_seeds=0 if quick else 3, fleet=2, budget="default")
