"""The online regime after behaviour cloning: DAgger with the scripted baseline as expert.

Why DAgger (Ross et al. 2011) and not RL fine-tuning: plain BC fails by compounding error,
drifting into states no demonstration visited; DAgger fixes exactly that by running the
*learner*, asking the expert what it would have done in the states the learner reached, and
retraining on the aggregate. Here the expert is free (the scripted policy, run alongside the
learner on the same observations), every label is cheap, and it needs no reward design,
whereas RL on a 6 s contact task would spend far more robot-seconds than the budgets allow.
Learner rollouts use the same in-process station as demonstrations, so the verifier and
envelope judge them too; all of it is trainer time, not fleet robot time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from enpire.policy.bc import BCPolicy, train_bc
from enpire.policy.dataset import Dataset
from enpire.policy.demos import collect, demonstrator_params, scripted_candidate, scripted_spec
from enpire.policy.train_logger import for_stage
from enpire.records import TrialRequest
from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)


@dataclass
class Evaluation:
    trials: int
    successes: int
    mean_opening: float
    outcomes: list[str] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return self.successes / self.trials if self.trials else 0.0


def evaluate(spec: ExperimentSpec, policy: Any, seeds: Iterable[int], quantity: str | None = None) -> Evaluation:
    """Run `policy` on an in-process station for each seed; pass@k successes and the mean of `quantity`."""
    from enpire.fleet.stations import make_station

    sspec = scripted_spec(spec)
    quantity = quantity or sspec.done.conditions[0].quantity
    station = make_station(sspec, 0)
    outcomes, values, wins = [], [], 0
    try:
        for s in seeds:
            rec = station.run_trial(TrialRequest(f"eval-{s}", -1, int(s), scripted_candidate()), policy=policy)
            outcomes.append(rec.outcome)
            wins += bool(rec.pass_at_k)
            values.append(float(rec.final_state.get(quantity) or 0.0))
    finally:
        station.close()
    return Evaluation(len(outcomes), wins, float(np.mean(values)) if values else 0.0, outcomes)


def dagger(spec: ExperimentSpec, data: Dataset, recipe: dict[str, Any], out_dir: str | Path, checkpoint: str,
           *, seed: int = 0, logger: Any = None, gate: bool = True) -> tuple[str, dict[str, float], Dataset]:
    """`recipe["dagger_rounds"]` rounds: learner rollouts labelled by the expert, aggregate, retrain.

    Returns (final checkpoint, metrics, aggregated dataset).
    """
    from enpire.policy.factory import make_policy

    sspec = scripted_spec(spec)
    rounds, episodes = int(recipe["dagger_rounds"]), int(recipe["dagger_episodes"])
    gate_from = checkpoint if gate else None
    metrics: dict[str, float] = {}
    for r in range(rounds):
        learner = BCPolicy.load(checkpoint)
        expert = make_policy(sspec, scripted_candidate(demonstrator_params(sspec)))
        # every learner episode is kept: its failures are exactly the states the expert must correct
        fresh, stats = collect(spec, episodes, seed=seed * 1000 + 17 * (r + 1), actor=learner, labeller=expert,
                               only_success=False)
        data = data.extend(fresh)
        metrics[f"dagger_round{r}_learner_success"] = stats.successes / max(1, stats.trials)
        checkpoint, fit = train_bc(data, recipe, Path(out_dir) / f"dagger{r}", logger=for_stage(logger, f"dagger{r}"),
                                   seed=seed + r + 1, init_from=checkpoint)
        metrics.update({f"dagger_round{r}_{k}": v for k, v in fit.items()})
        log.info("DAgger round %d: learner %d/%d successes, %d pairs now", r, stats.successes, stats.trials, len(data))
    if rounds and gate_from:
        checkpoint = _gate(spec, gate_from, checkpoint, episodes, seed, metrics)
    return checkpoint, metrics, data


def _gate(spec: ExperimentSpec, bc_ckpt: str, dagger_ckpt: str, episodes: int, seed: int,
          metrics: dict[str, float]) -> str:
    """Keep DAgger's network only if it does at least as well as plain BC on fresh validation seeds.

    Measured on drawer, un-gated DAgger with this scripted expert sometimes did worse than the
    BC network it started from (the expert's labels are a plan, not a state feedback law), so
    the regime never hands back something worse than its input on the trainer's own check.
    """
    seeds = [int(s) for s in np.random.default_rng(seed + 99991).integers(0, 2**31 - 1, max(4, episodes))]
    bc = evaluate(spec, BCPolicy.load(bc_ckpt), seeds)
    dg = evaluate(spec, BCPolicy.load(dagger_ckpt), seeds)
    better = (dg.success_rate, dg.mean_opening) >= (bc.success_rate, bc.mean_opening)
    metrics.update(dagger_gate_bc_success=bc.success_rate, dagger_gate_dagger_success=dg.success_rate,
                   dagger_kept=float(better))
    log.info("DAgger gate: BC %.2f vs DAgger %.2f on %d seeds -> %s", bc.success_rate, dg.success_rate,
             len(seeds), "DAgger" if better else "BC")
    return dagger_ckpt if better else bc_ckpt
