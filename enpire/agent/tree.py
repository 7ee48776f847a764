"""The idea tree: every iteration, its parent and branch, pooled candidate results, keep/discard, /done.

Rules the loop applies (fixed; agents cannot change them):

- Pooling: trials of the same candidate (same canonical params) pool across iterations. Under
  `determinism: strict` they pool when their iteration closes (iterations close in index order,
  trials in trial order), so every run pools the same evidence in the same order; under `fast`
  in the order they finished. Trials that ended `crash` or `reset_failed` say nothing about the
  candidate and are left out of its pool and of success rates (they still count as trials).
- Keep: enpire.judge.keep (own successes, minimum evidence, a one-sided posterior test against
  the reference at a stated error rate). The reference is the nearest ancestor with a
  *different* candidate (a re-evaluation is judged like the iteration it re-evaluates).
- Otherwise the decision is `crash` when no trial produced evidence, `unsafe` when more than
  half of its trials were safety stops, `cancelled` when the session stopped before its trials
  ran (it is not counted as an iteration of the budget), else `discard`.
- /done: the last `done.window` pooled trials of one candidate have a success rate of at least
  `done.min_success_rate`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from enpire.agent.api import Budgets, IterationSummary, ResearchState
from enpire.judge.keep import keep_verdict
from enpire.spec.model import ExperimentSpec
from enpire.world.api import TrialRecord

NO_EVIDENCE = ("crash", "reset_failed", "estopped")
MAX_FAILURES_SHOWN = 3
MAX_HYPOTHESIS_CHARS = 2000


@dataclass
class Evaluation:
    """An accepted proposal being evaluated (an open iteration)."""

    index: int
    agent: str
    branch: str
    parent: int | None
    hypothesis: str
    candidate: dict[str, Any]
    key: str
    trials_wanted: int
    borrowed_from: str | None = None
    tokens: int = 0
    dispatched: int = 0
    records: list[TrialRecord] = field(default_factory=list)
    pooled: int = 0  # of `records`, how many are in the tree's pool (strict pools at close, fast on arrival)
    started: float = 0.0
    closed_as: tuple[str, str] | None = None  # (decision, reason) fixed before any trial, e.g. training failed
    transcript: list[dict[str, Any]] = field(default_factory=list)  # the agent call that proposed it

    @property
    def complete(self) -> bool:
        return len(self.records) >= self.dispatched

    @property
    def ready(self) -> bool:
        """May its trials be dispatched? A bc candidate first needs a checkpoint (enpire.fleet.trainer_slot)."""
        return self.closed_as is None and (self.candidate.get("kind") != "bc" or bool(self.candidate.get("checkpoint")))


class IdeaTree:
    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        self.iterations: list[IterationSummary] = []
        self.by_index: dict[int, IterationSummary] = {}
        self.keys: dict[int, str] = {}
        self.pools: dict[str, list[bool]] = {}
        self.done_key: str | None = None
        self.raised_best: set[int] = set()
        self.best_rate = 0.0

    # ---- trials ------------------------------------------------------------------------------
    def add_record(self, key: str, record: TrialRecord) -> bool:
        """Pool one trial; True when this trial met /done."""
        if record.outcome in NO_EVIDENCE:
            return False
        pool = self.pools.setdefault(key, [])
        pool.append(bool(record.pass_at_1))
        window = self.spec.done.window
        if self.done_key is None and len(pool) >= window \
                and sum(pool[-window:]) / window >= self.spec.done.min_success_rate - 1e-12:
            self.done_key = key
            return True
        return False

    def pooled(self, key: str) -> tuple[int, int]:
        pool = self.pools.get(key, [])
        return sum(pool), len(pool)

    def window_rate(self, key: str) -> float:
        pool = self.pools.get(key, [])[-self.spec.done.window:]
        return sum(pool) / len(pool) if pool else 0.0

    # ---- iterations --------------------------------------------------------------------------
    def reference(self, parent: int | None, key: str) -> str | None:
        """Candidate key of the nearest ancestor whose candidate differs from `key`."""
        seen = set()
        while parent is not None and parent in self.by_index and parent not in seen:
            seen.add(parent)
            if self.keys[parent] != key:
                return self.keys[parent]
            parent = self.by_index[parent].parent
        return None

    def decide(self, ev: Evaluation, cancelled: bool = False) -> tuple[str, str]:
        s, n = self.pooled(ev.key)
        ref = self.reference(ev.parent, ev.key)
        outcomes = [r.outcome for r in ev.records]
        if ev.closed_as is not None and not outcomes:
            return ev.closed_as
        if cancelled:
            return "cancelled", (f"the session stopped after {len(outcomes)} of its {ev.trials_wanted} trials; "
                                 "not judged and not counted as an iteration")
        if not outcomes:  # no evidence of its own: earlier iterations' pooled trials cannot make it a keep
            return "discard", "no trial of it could run (a budget cap)"
        own = sum(bool(r.pass_at_1) for r in ev.records if r.outcome not in NO_EVIDENCE)
        keep, why = keep_verdict(own, s, n, self.pooled(ref) if ref else None)
        if keep:
            return "keep", why
        if all(o in NO_EVIDENCE for o in outcomes):
            return "crash", f"all {len(outcomes)} trials crashed: {ev.records[0].reason}"
        unsafe = outcomes.count("unsafe")
        if unsafe * 2 > len(outcomes):
            return "unsafe", f"{unsafe}/{len(outcomes)} trials ended in a safety stop"
        return "discard", why

    def finish(self, ev: Evaluation, cancelled: bool = False) -> IterationSummary:
        decision, reason = self.decide(ev, cancelled)
        recs = sorted(ev.records, key=lambda r: r.trial_id)  # trial order: the same sums and failures in every run
        valid = [r for r in recs if r.outcome not in NO_EVIDENCE]
        s, n = self.pooled(ev.key)
        failures = tuple(
            {"outcome": r.outcome, "reason": r.reason, "final_state": dict(r.final_state),
             "safety_events": [e.__dict__ for e in r.safety_events],
             **({"error": r.error[-2000:]} if r.error else {})}
            for r in recs if not r.pass_at_1)[:MAX_FAILURES_SHOWN]
        rate = sum(r.pass_at_1 for r in valid) / len(valid) if valid else 0.0
        summary = IterationSummary(
            index=ev.index, agent=ev.agent, branch=ev.branch, parent=ev.parent, hypothesis=ev.hypothesis,
            candidate=ev.candidate, candidate_id=ev.key, decision=decision, success_rate=rate,
            pass_at_1=rate, pass_at_k=sum(r.pass_at_k for r in valid) / len(valid) if valid else 0.0,
            trials=len(recs), safety_stops=sum(r.outcome == "unsafe" for r in recs),
            robot_seconds=sum(r.robot_seconds for r in recs), tokens=ev.tokens, borrowed_from=ev.borrowed_from,
            reason=reason, failures=failures, candidate_trials=n, candidate_success_rate=s / n if n else 0.0,
        )
        if decision == "keep" and summary.candidate_success_rate > self.best_rate:
            self.best_rate = summary.candidate_success_rate
            self.raised_best.add(ev.index)
        self._add(summary, ev.key)
        return summary

    def reject(self, index: int, agent: str, branch: str, proposal: Any, reason: str, tokens: int) -> IterationSummary:
        doc = proposal if isinstance(proposal, dict) else {}
        candidate = doc.get("candidate") if isinstance(doc.get("candidate"), dict) else {}
        parent = doc.get("parent") if isinstance(doc.get("parent"), int) else None
        hypothesis = doc.get("hypothesis") if isinstance(doc.get("hypothesis"), str) else ""
        if len(hypothesis) > MAX_HYPOTHESIS_CHARS:  # a rejected 10 MB hypothesis is not carried into every record
            hypothesis = hypothesis[:MAX_HYPOTHESIS_CHARS] + f"... [{len(hypothesis)} characters, cut]"
        summary = IterationSummary(
            index=index, agent=agent, branch=branch, parent=parent, hypothesis=hypothesis, candidate=candidate,
            candidate_id="", decision="rejected", success_rate=0.0, pass_at_1=0.0, pass_at_k=0.0, trials=0,
            safety_stops=0, robot_seconds=0.0, tokens=tokens, reason=reason,
        )
        self._add(summary, "")
        return summary

    def _add(self, summary: IterationSummary, key: str) -> None:
        self.iterations.append(summary)
        self.by_index[summary.index] = summary
        self.keys[summary.index] = key

    def branch_best(self, iterations: list[IterationSummary] | None = None) -> dict[str, IterationSummary]:
        best: dict[str, IterationSummary] = {}
        for it in self.iterations if iterations is None else iterations:
            if it.decision != "keep":
                continue
            cur = best.get(it.branch)
            if cur is None or (it.candidate_success_rate, it.candidate_trials) > \
                    (cur.candidate_success_rate, cur.candidate_trials):
                best[it.branch] = it
        return best

    def best(self) -> tuple[float, str | None, int]:
        """(best pooled success rate of a candidate with a full first evaluation, its key, its trials)."""
        min_n = min(self.spec.agent.trials_per_candidate, self.spec.done.window)
        out: tuple[float, str | None, int] = (0.0, None, 0)
        for key, pool in self.pools.items():
            if len(pool) >= min_n:
                rate = sum(pool) / len(pool)
                if (rate, len(pool)) > (out[0], out[2]):
                    out = (rate, key, len(pool))
        return out

    def state(self, branch: str, budgets: Budgets, schema: dict[str, Any], horizon: int | None = None) -> ResearchState:
        """What an agent may read; with `horizon` (determinism: strict) only the iterations below it."""
        spec = self.spec
        goal = (f"/done: success rate >= {spec.done.min_success_rate} over {spec.done.window} consecutive trials "
                f"of one candidate (each trial: up to {spec.done.attempts} attempts of {spec.done.time_limit_s} s)")
        iterations = self.iterations if horizon is None else \
            sorted((it for it in self.iterations if it.index < horizon), key=lambda it: it.index)
        return ResearchState(
            task_name=spec.task.name, task_description=spec.task.description, policy_kind=spec.policy.kind,
            action_mode=spec.policy.action_mode,
            search_space={p.name: {"default": p.default, "low": p.low, "high": p.high, "unit": p.unit,
                                   "description": p.description, "scale": p.scale} for p in spec.policy.params},
            goal=goal, branch=branch, iterations=tuple(iterations), branch_best=self.branch_best(iterations),
            budgets=budgets, proposal_schema=schema,
        )
