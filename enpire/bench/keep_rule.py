"""`keep_rule`: how often the keep rule keeps a candidate no better than its parent, and discards a better one.

Real trial outcomes, resampled decisions. Per task (drawer and peg_insert), a few real candidates of the
task's scripted policy (the untuned defaults and one-parameter changes of them, spanning low to high success
rates) each run N trials on a real station (enpire.world.station.SimStation, seeds from one SeedSequence),
plus a *twin* of the defaults: the same parameters moved by 1e-5 (a different candidate key, the same policy
for every purpose). Then, many times over, a parent and a child candidate are played through the idea tree
itself (enpire.agent.tree.IdeaTree, which calls enpire.judge: strict pooling at each close, the reference =
nearest ancestor with a different candidate, enpire.judge.keep.keep_verdict), with trial records drawn from
the real ones:

- the parent (a root iteration) gets n0 trials, n0 in REFERENCE_SIZES (1: the untuned baseline on its
  one-trial screen, the most common parent in a search session; up to the /done window);
- the child is re-evaluated the way every agent screens (enpire.agent.search_screen): 1 -> 4 -> 16 -> 50
  cumulative trials, each chunk one iteration judged by the tree, going on only while `plausible` (the /done
  goal is still as likely as under the prior);
- *null* child: its trials drawn from the parent candidate's own records (equal true rate by construction),
  or (twin) from the twin's real records;
- *gain* child: each trial a success with probability p + delta (a real success record) else a real failure
  record of the parent candidate: a true gain of exactly delta over the parent.

Figures per task: `<task>_false_keep` (with `_lo`/`_hi`): the share of null children kept at any of their
iterations (per candidate: the looks add up), pooled over candidates, child kinds and reference sizes (each cell
the same number of resamples); `_per_decision`: the share of their judged iterations with >= 3 pooled trials
(the ones that could be kept) that were keeps; `_one_decision_of_n0`: a single iteration of n0 trials against
n0 (the rule's stated per-decision error rate);
`_worst_cell`: the worst candidate x kind x n0 cell (`<task>.<candidate>.<kind>.n0=<n0>.false_keep` lists them);
`<task>_false_discard_gain<delta>_n0=<n0>_screened|_one_decision`: the share of gain children never kept.
The rule splits its error rate over the 3 judged looks of a screened child (KEEP_ALPHA / KEEP_LOOKS per
decision, enpire.judge.keep): with one 0.05 test per look drawer's null children were kept 0.094 of the
time (0.090-0.098), which is why. Intervals are
95% Wilson over the resamples (they do not include the sampling error of the N real trials per candidate, which
sets what "true rate" means here: the empirical distribution of its N outcomes). keep_verdict is memoised for
the resampling (a pure function of its counts); nothing else of the rule is replaced.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from enpire.bench import bench
from enpire.track.confidence import wilson

log = logging.getLogger(__name__)

CANDIDATES: dict[str, tuple[tuple[str, dict[str, float]], ...]] = {
    "drawer": (("defaults", {}), ("pull_speed=0.45", {"pull_speed": 0.45}), ("grip_close=0.3", {"grip_close": 0.3})),
    "peg_insert": (("defaults", {}), ("offset_comp=0.5", {"offset_comp": 0.5}), ("servo_gain=5", {"servo_gain": 5.0})),
}
TWIN_DELTA = 1e-5  # survives the 6-decimal canonical rounding: a different candidate key
REFERENCE_SIZES = (1, 4, 16, 50)
GAINS = (0.1, 0.2, 0.3)
SEED = 20261201
GOAL_MET = 0.05  # false keep per null candidate (any of its judged iterations kept) must stay at or below this


@dataclass
class Outcomes:
    name: str
    records: list  # real TrialRecords
    successes: list
    failures: list

    @property
    def rate(self) -> float:
        return len(self.successes) / max(1, len(self.records))


def collect(task: str, trials: int) -> dict[str, Outcomes]:
    """N real trials of every candidate (and the twin of the defaults) on one station of `task`."""
    from enpire.fleet.scheduler import trial_seed
    from enpire.fleet.stations import make_station
    from enpire.records import Candidate, TrialRequest
    from enpire.spec import load_spec

    spec = load_spec([f"task={task}", "video.enabled=false"])
    station = make_station(spec, 0)
    defaults = {p.name: float(p.default) for p in spec.policy.params}
    first = spec.policy.params[0]
    twin = dict(defaults)
    twin[first.name] = defaults[first.name] + (TWIN_DELTA if defaults[first.name] + TWIN_DELTA <= first.high
                                               else -TWIN_DELTA)
    todo = [(name, {**defaults, **change}) for name, change in CANDIDATES[task]]
    todo.append(("defaults twin", twin))
    out: dict[str, Outcomes] = {}
    try:
        for c, (name, params) in enumerate(todo):
            records = []
            for k in range(trials):
                request = TrialRequest(trial_id=f"i{c:04d}-t{k:03d}", iteration=c, seed=trial_seed(SEED, c, k),
                                       candidate=Candidate(candidate_id=f"bench-{c}", params=params))
                records.append(station.run_trial(request))
            out[name] = Outcomes(name, records, [r for r in records if r.pass_at_1],
                                 [r for r in records if not r.pass_at_1])
            log.info("keep_rule %s %s: %d/%d", task, name, len(out[name].successes), trials)
    finally:
        station.close()
    return out


class Play:
    """Parent and child played through a fresh IdeaTree (the loop's own keep and pooling logic)."""

    def __init__(self, spec, rng: np.random.Generator) -> None:  # noqa: ANN001 - ExperimentSpec
        from enpire.agent.search_screen import next_chunk, plausible

        self.spec, self.rng = spec, rng
        self.next_chunk, self.plausible = next_chunk, plausible

    def _iteration(self, tree, index: int, parent: int | None, key: str, records: list) -> str:  # noqa: ANN001
        from enpire.records import Evaluation

        records = [dataclasses.replace(r, trial_id=f"i{index:04d}-t{k:03d}", iteration=index)
                   for k, r in enumerate(records)]
        ev = Evaluation(index=index, agent="bench", branch="bench", parent=parent, hypothesis="", candidate={},
                        key=key, trials_wanted=len(records), dispatched=len(records), records=records)
        for r in records:  # strict: pooled at the close, in trial order
            tree.add_record(key, r)
        ev.pooled = len(records)
        return tree.finish(ev).decision

    def run(self, parent_draw: Callable[[int], list], child_draw: Callable[[int], list], n0: int,
            screen: bool) -> list[str]:
        """The child's decisions at the looks that could keep it (pooled trials >= KEEP_MIN_TRIALS): screened
        1 -> 4 -> 16 -> window while plausible, or one iteration of n0 trials."""
        from enpire.agent.tree import IdeaTree
        from enpire.judge.keep import KEEP_MIN_TRIALS

        tree = IdeaTree(self.spec)
        self._iteration(tree, 0, None, "parent", parent_draw(n0))
        if not screen:
            return [self._iteration(tree, 1, 0, "child", child_draw(n0))]
        window, goal = self.spec.done.window, self.spec.done.min_success_rate
        decisions, parent, n, index = [], 0, 0, 1
        while n < window:
            chunk = min(self.next_chunk(n, window), window - n)
            decision = self._iteration(tree, index, parent, "child", child_draw(chunk))
            s, n = tree.pooled("child")
            if n >= KEEP_MIN_TRIALS:
                decisions.append(decision)
            parent, index = index, index + 1
            if not self.plausible(s, n, goal):
                break
        return decisions


def _drawer(rng: np.random.Generator, pool: list) -> Callable[[int], list]:
    return lambda n: [pool[i] for i in rng.integers(0, len(pool), size=n)]


def _gain_drawer(rng: np.random.Generator, base: Outcomes, p: float, donors: list) -> Callable[[int], list]:
    successes = base.successes or donors
    failures = base.failures

    def draw(n: int) -> list:
        out = []
        for u in rng.random(n):
            pool = successes if u < p or not failures else failures
            out.append(pool[int(rng.integers(0, len(pool)))])
        return out

    return draw


def _rate(hits: int, n: int) -> tuple[float, float, float]:
    lo, hi = wilson(hits, n)
    return (hits / n if n else float("nan")), lo, hi


def _null_cells(task: str, outcomes: dict[str, Outcomes], play: Play, rng: np.random.Generator,
                replications: int, out: dict[str, float], tag: str = "") -> None:
    """False keeps of null children, per candidate, child kind and reference size; pooled figures."""
    kept_all = runs = keeps = judged = fixed_keeps = fixed_runs = 0
    worst = (-1.0, "")
    for name, base in outcomes.items():
        if name == "defaults twin":
            continue
        children = {"null": _drawer(rng, base.records)}
        if name == "defaults" and "defaults twin" in outcomes:
            children["twin"] = _drawer(rng, outcomes["defaults twin"].records)
        for kind, child in children.items():
            for n0 in REFERENCE_SIZES:
                kept = 0
                for _ in range(replications):
                    decisions = play.run(_drawer(rng, base.records), child, n0, screen=True)
                    kept += "keep" in decisions
                    keeps += decisions.count("keep")
                    judged += len(decisions)
                    fixed_keeps += play.run(_drawer(rng, base.records), child, n0, screen=False) == ["keep"]
                fixed_runs += replications
                if not tag:
                    out[f"{task}.{name}.{kind}.n0={n0}.false_keep"] = kept / replications
                kept_all, runs = kept_all + kept, runs + replications
                if kept / replications > worst[0]:
                    worst = (kept / replications, f"{name} {kind} n0={n0}")
    rate, lo, hi = _rate(kept_all, runs)
    out[f"{task}_false_keep{tag}"], out[f"{task}_false_keep{tag}_lo"], out[f"{task}_false_keep{tag}_hi"] = rate, lo, hi
    out[f"{task}_false_keep{tag}_per_decision"] = keeps / judged if judged else float("nan")
    out[f"{task}_false_keep{tag}_one_decision_of_n0"] = fixed_keeps / fixed_runs if fixed_runs else float("nan")
    out[f"{task}_false_keep{tag}_worst_cell"] = worst[0]
    log.info("keep_rule %s%s: false keep %.3f (%.3f-%.3f), worst cell %s (%.3f)", task, tag, rate, lo, hi, worst[1],
             worst[0])


def _gain_cells(task: str, outcomes: dict[str, Outcomes], play: Play, rng: np.random.Generator,
                replications: int, out: dict[str, float], tag: str = "") -> None:
    """False discards of children with a known gain delta, pooled over the candidates it fits (p + delta <= 1)."""
    donors = [r for o in outcomes.values() for r in o.successes]
    for delta in GAINS:
        for n0 in (4, 50):
            missed = missed_fixed = runs = 0
            for name, base in outcomes.items():
                p = base.rate + delta
                if name == "defaults twin" or p > 1.0 + 1e-9 or not base.failures:
                    continue
                for _ in range(replications):
                    parent, child = _drawer(rng, base.records), _gain_drawer(rng, base, p, donors)
                    missed += "keep" not in play.run(parent, child, n0, screen=True)
                    missed_fixed += "keep" not in play.run(parent, child, n0, screen=False)
                runs += replications
            if runs:
                out[f"{task}_false_discard{tag}_gain{delta}_n0={n0}_screened"] = missed / runs
                out[f"{task}_false_discard{tag}_gain{delta}_n0={n0}_one_decision"] = missed_fixed / runs


def simulate(task: str, outcomes: dict[str, Outcomes], replications: int) -> dict[str, float]:
    from enpire.judge import decision as decision_mod
    from enpire.judge import keep as keep_mod
    from enpire.spec import load_spec

    spec = load_spec([f"task={task}", "video.enabled=false"])
    rng = np.random.default_rng(SEED)
    play = Play(spec, rng)
    out: dict[str, float] = {}
    for name, base in outcomes.items():
        out[f"{task}.{name}.rate"] = base.rate
    original_verdict, original_alpha = decision_mod.keep_verdict, keep_mod.KEEP_ALPHA
    try:
        decision_mod.keep_verdict = functools.lru_cache(maxsize=None)(keep_mod.keep_verdict)  # same function, memoised
        _null_cells(task, outcomes, play, rng, replications, out)
        _gain_cells(task, outcomes, play, rng, replications, out)
    finally:
        decision_mod.keep_verdict, keep_mod.KEEP_ALPHA = original_verdict, original_alpha
    out[f"{task}_goal_met"] = float(out[f"{task}_false_keep"] <= GOAL_MET)
    return out


@bench("keep_rule", "false-keep (null candidates) and false-discard (known gains) rates of the keep rule, "
                    "real drawer and peg_insert trials resampled through the idea tree")
def keep_rule(quick: bool) -> dict[str, float]:
    trials, replications = (40, 300) if quick else (100, 1500)
    out: dict[str, float] = {}
    for task in CANDIDATES:
        t0 = time.perf_counter()
        outcomes = collect(task, trials)
        t1 = time.perf_counter()
        out.update(simulate(task, outcomes, replications))
        out[f"{task}_collect_s"] = t1 - t0
        out[f"{task}_resample_s"] = time.perf_counter() - t1
    out["replications"] = float(replications)
    out["trials_per_candidate"] = float(trials)
    return out
