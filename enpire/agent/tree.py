"""The idea tree: every iteration, its parent and branch, and what the judge said of it.

Bookkeeping only: the rules that judge are in enpire.judge (agents propose; the judge decides).
The tree hands each trial to the candidate pools (enpire.judge.pools: pooling, the /done window)
and each closed iteration to the decision rule (enpire.judge.decision: keep, discard, crash,
unsafe, cancelled, against the nearest ancestor with a different candidate), records the
iteration it gets back, and builds the read-only ResearchState an agent proposes from.
"""

from __future__ import annotations

from typing import Any

from enpire.agent.api import Budgets, ResearchState
from enpire.attribution import failure_histogram
from enpire.judge.decision import decide, reference
from enpire.judge.pools import NO_EVIDENCE, Pools
from enpire.judge.shadow import ShadowTally
from enpire.records import Evaluation, IterationSummary, TrialRecord
from enpire.spec.model import ExperimentSpec

MAX_FAILURES_SHOWN = 3
MAX_HYPOTHESIS_CHARS = 2000


class IdeaTree:
    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        self.iterations: list[IterationSummary] = []
        self.by_index: dict[int, IterationSummary] = {}
        self.keys: dict[int, str] = {}
        self.judge = Pools(spec.done.window, spec.done.min_success_rate)
        self.shadow = ShadowTally()  # classifier verifier: verified vs true (state) verdicts; agents never see it
        self.raised_best: set[int] = set()
        self.best_rate = 0.0
        self._units = {n: q.unit for n, q in spec.task.state_space.items()}  # for failure histogram labels

    # ---- trials ------------------------------------------------------------------------------
    @property
    def pools(self) -> dict[str, list[bool]]:
        """Candidate key -> pooled pass@1 verdicts (read-only use: the judge's pools)."""
        return self.judge.results

    @property
    def done_key(self) -> str | None:
        return self.judge.done_key

    def add_record(self, key: str, record: TrialRecord) -> bool:
        """Pool one trial; True when this trial met /done."""
        self.shadow.add(key, record)
        return self.judge.add(key, record)

    def pooled(self, key: str) -> tuple[int, int]:
        return self.judge.pooled(key)

    def window_rate(self, key: str) -> float:
        return self.judge.window_rate(key)

    # ---- iterations --------------------------------------------------------------------------
    def reference(self, parent: int | None, key: str) -> str | None:
        """Candidate key of the nearest ancestor whose candidate differs from `key` (enpire.judge.decision)."""
        return reference(parent, key, self.keys, {i: it.parent for i, it in self.by_index.items()})

    def decide(self, ev: Evaluation, cancelled: bool = False) -> tuple[str, str]:
        return decide(ev, self.judge, self.reference(ev.parent, ev.key), cancelled)

    def finish(self, ev: Evaluation, cancelled: bool = False) -> IterationSummary:
        if not cancelled and not ev.records and ev.closed_as is not None and ev.closed_as[0] == "rejected":
            return self.screened_out(ev, ev.closed_as[1], ev.twin_records, ev.twin)  # by the screen: no trial
        decision, reason = self.decide(ev, cancelled)
        recs = sorted(ev.records, key=lambda r: r.trial_id)  # trial order: the same sums and failures in every run
        valid = [r for r in recs if r.outcome not in NO_EVIDENCE]
        s, n = self.pooled(ev.key)
        # judged from a camera (done.verifier=classifier): agents get what a real station would know, never the
        # simulator's state (it would tell them the shadow verdict of every failed trial)
        failures = self._failures(recs)
        rate = sum(r.pass_at_1 for r in valid) / len(valid) if valid else 0.0
        summary = IterationSummary(
            index=ev.index, agent=ev.agent, branch=ev.branch, parent=ev.parent, hypothesis=ev.hypothesis,
            candidate=ev.candidate, candidate_id=ev.key, decision=decision, success_rate=rate,
            pass_at_1=rate, pass_at_k=sum(r.pass_at_k for r in valid) / len(valid) if valid else 0.0,
            trials=len(recs), safety_stops=sum(r.outcome == "unsafe" for r in recs),
            robot_seconds=sum(r.robot_seconds for r in recs), tokens=ev.tokens, borrowed_from=ev.borrowed_from,
            reason=reason, failures=failures, candidate_trials=n, candidate_success_rate=s / n if n else 0.0,
            failure_histogram=failure_histogram(recs, self.spec.done, self._units), twin=ev.twin,
        )
        if decision == "keep" and summary.candidate_success_rate > self.best_rate:
            self.best_rate = summary.candidate_success_rate
            self.raised_best.add(ev.index)
        self.add(summary, ev.key)
        return summary

    def _failures(self, recs: list[TrialRecord]) -> tuple[dict[str, Any], ...]:
        """A few failed trials as agents see them. Judged from a camera (done.verifier=classifier): agents get what
        a real station would know, never the simulator's state (it would tell them the shadow verdict of every
        failed trial)."""
        state = self.spec.done.verifier != "classifier"
        return tuple(
            {"outcome": r.outcome, "reason": r.reason, "final_state": dict(r.final_state) if state else {},
             "safety_events": [e.__dict__ for e in r.safety_events],
             **({"error": r.error[-2000:]} if r.error else {}),
             **({"failing": r.attribution[0].get("failing"), "phase": r.attribution[0].get("phase")}
                if r.attribution else {})}
            for r in recs if not r.pass_at_1)[:MAX_FAILURES_SHOWN]

    def screened_out(self, ev: Evaluation, reason: str, twin_records: list[TrialRecord],
                     twin: dict[str, Any] | None) -> IterationSummary:
        """An iteration the screen (enpire.fleet.screen: a dry check, the digital twin) kept off the fleet: rejected,
        no trial and no robot time; it names its candidate and carries what the screen saw (the twin's failed trials
        and their histogram), so agents learn from it as from a failed screen."""
        recs = sorted(twin_records, key=lambda r: r.trial_id)
        summary = IterationSummary(
            index=ev.index, agent=ev.agent, branch=ev.branch, parent=ev.parent, hypothesis=ev.hypothesis,
            candidate=ev.candidate, candidate_id=ev.key, decision="rejected", success_rate=0.0, pass_at_1=0.0,
            pass_at_k=0.0, trials=0, safety_stops=0, robot_seconds=0.0, tokens=ev.tokens,
            borrowed_from=ev.borrowed_from, reason=reason, failures=self._failures(recs),
            failure_histogram=failure_histogram(recs, self.spec.done, self._units), twin=twin,
        )
        self.add(summary, "")  # never a parent (rejected), so never the reference of a decision
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
        self.add(summary, "")
        return summary

    def add(self, summary: IterationSummary, key: str, raised_best: bool = False) -> None:
        """Record a closed iteration (a resume restores the ones MLflow and the journal hold this way)."""
        if raised_best:
            self.raised_best.add(summary.index)
            self.best_rate = max(self.best_rate, summary.candidate_success_rate)
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

    def state(self, branch: str, budgets: Budgets, schema: dict[str, Any], horizon: int | None = None,
              slots: int = 1) -> ResearchState:
        """What an agent may read; with `horizon` (determinism: strict) only the iterations below it; `slots`:
        how many proposals the call may return."""
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
            budgets=budgets, proposal_schema=schema, slots=slots,
        )
