"""`twin`: robot-seconds to /done with and without a digital twin, the fleet running perturbed dynamics.

The fleet runs `task=drawer dynamics=perturbed` (slipperier contacts, heavier objects, two control steps of
actuation delay, 3 mm of sensor noise: conf/dynamics/perturbed.yaml); the twin (`screen.twin=sim`) runs the
nominal task. Paired sessions on the same seeds, `agent=search fleet=4 budget=default`, without and with the
twin; a seed that misses /done counts as the whole robot-second budget. Medians over seeds.

How often the twin was wrong: every candidate the twin judged in those sessions (up to `per_seed` a seed, in
the order they were proposed) is run again offline, `trials` trials on a fresh perturbed station (the fleet's
truth) and as many on a nominal one (seeds of their own), and the twin's verdict (its `screen.trials` trials
against `screen.min_success`) is compared with the fleet's (the rate over those trials against the same
threshold): `wrong_share` of judged candidates, split into `false_rejections` (screened out, would have passed
on the fleet) and `false_passes`; `gap_share`: candidates whose nominal and perturbed verdicts differ (the
sim-to-sim gap itself, beside the twin's sampling noise).

Metric keys: `{off,on}.robot_s_to_done_median`, `{off,on}.reached_done`, `{off,on}.wall_s_median`,
`on_over_off`, `saving` (1 - on_over_off; goal >= 0.3), `on.twin_sim_seconds_median`, `on.twin_rejected_median`,
`judged`, `wrong_share`, `false_rejections`, `false_passes`, `gap_share`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from enpire.bench import bench
from enpire.bench.sessions import median, number, run_quiet
from enpire.records import IterationSummary

TASK = ("task=drawer", "dynamics=perturbed")
EVAL_STREAM = 0xE7A1  # seeds of the offline check: neither the fleet's nor the twin's


def twin_verdicts(iterations: list[IterationSummary]) -> list[dict[str, Any]]:
    """The candidates the twin judged, first verdict each, in the order they were proposed."""
    seen: dict[str, dict[str, Any]] = {}
    for it in sorted(iterations, key=lambda i: i.index):
        if it.twin and it.candidate_id and it.candidate_id not in seen and it.candidate.get("kind") == "params":
            seen[it.candidate_id] = {"params": dict(it.candidate["params"]), "passed": bool(it.twin.get("passed"))}
    return list(seen.values())


def offline_rate(overrides: list[str], params_list: list[dict[str, float]], trials: int) -> list[float]:
    """Each candidate's success rate over `trials` trials on one fresh station of the overrides' spec."""
    from enpire.fleet.scheduler import trial_seed
    from enpire.fleet.stations import make_station
    from enpire.records import Candidate, TrialRequest
    from enpire.spec import load_spec

    spec = load_spec([*overrides, "video.enabled=false"])
    station = make_station(spec, 0)
    rates = []
    try:
        with tempfile.TemporaryDirectory(prefix="enpire-bench-twin-") as out:
            for j, params in enumerate(params_list):
                wins = 0
                for k in range(trials):
                    rec = station.run_trial(TrialRequest(f"e{j:03d}-{k:02d}", j, trial_seed(EVAL_STREAM, j, k),
                                                         Candidate(f"eval-{j}", "params", params), False, out))
                    wins += rec.pass_at_1
                rates.append(wins / trials)
    finally:
        station.close()
    return rates


def compare(seeds: int, fleet: int, budget: str, per_seed: int, trials: int) -> dict[str, float]:
    from enpire.spec import load_spec

    common = [*TASK, "agent=search", f"fleet={fleet}", f"budget={budget}", "video.enabled=false"]
    cap = load_spec([*common]).budget.robot_seconds
    need = load_spec([*common]).screen.min_success
    out: dict[str, float] = {"seeds": float(seeds)}
    judged: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="enpire-bench-twin-") as tmp:
        for mode, extra in {"off": ["screen.twin=none"], "on": ["screen.twin=sim"]}.items():
            spent, walls, sims, rejected, hits = [], [], [], [], 0
            for seed in range(seeds):
                seen: list[IterationSummary] = []
                summary = run_quiet([*common, f"seed={seed}", *extra], Path(tmp), on_iteration=seen.append)
                reached = summary.get("reached_done") == "true"
                hits += reached
                spent.append(number(summary, "robot_s_to_done") if reached else cap)
                walls.append(number(summary, "wall_s"))
                if mode == "on":
                    sims.append(number(summary, "twin_sim_seconds", 0.0))
                    rejected.append(number(summary, "twin_rejected", 0.0))
                    judged += twin_verdicts(seen)[:per_seed]
            out[f"{mode}.robot_s_to_done_median"] = median(spent)
            out[f"{mode}.reached_done"] = float(hits)
            out[f"{mode}.wall_s_median"] = median(walls)
            if mode == "on":
                out["on.twin_sim_seconds_median"] = median(sims)
                out["on.twin_rejected_median"] = median(rejected)
    off = out["off.robot_s_to_done_median"]
    out["on_over_off"] = out["on.robot_s_to_done_median"] / off if off else float("nan")
    out["saving"] = 1.0 - out["on_over_off"]
    params = [c["params"] for c in judged]
    fleet_rates = offline_rate(list(TASK), params, trials)
    nominal_rates = offline_rate(["task=drawer", "dynamics=nominal"], params, trials)
    wrong = [c["passed"] != (r >= need) for c, r in zip(judged, fleet_rates)]
    n = max(1, len(judged))
    out["judged"] = float(len(judged))
    out["wrong_share"] = sum(wrong) / n
    out["false_rejections"] = sum(not c["passed"] and r >= need for c, r in zip(judged, fleet_rates)) / n
    out["false_passes"] = sum(c["passed"] and r < need for c, r in zip(judged, fleet_rates)) / n
    out["gap_share"] = sum((a >= need) != (b >= need) for a, b in zip(nominal_rates, fleet_rates)) / n
    return out


@bench("twin", "robot-s to /done on perturbed drawer with vs without a nominal digital twin; how often it was wrong")
def twin(quick: bool) -> dict[str, float]:
    if quick:
        return compare(seeds=2, fleet=4, budget="default", per_seed=8, trials=4)
    return compare(seeds=5, fleet=4, budget="default", per_seed=12, trials=8)
