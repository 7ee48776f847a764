"""Read sessions and their iterations back from an MLflow store.

Only MLflow is read: tags, params and metrics of the session runs (`enpire.kind=session`) and
of their child iteration runs (`enpire.kind=iteration`), plus artifacts on demand.

Rates are read with the trials behind them: `capability` gives, after each iteration, the best
*confirmed* success so far (the highest 95% Wilson lower bound among candidates' current pooled
results with at least confidence.MIN_TRIALS trials), so a curve never jumps to 1.0 on a 1/1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from enpire.track.confidence import Confirmed, best_of, counts, describe
from enpire.track.records import label as label_of

NOT_JUDGED = ("rejected", "cancelled")


@dataclass
class Iteration:
    run_id: str
    index: int
    agent: str
    branch: str
    parent: int | None
    decision: str
    hypothesis: str
    borrowed_from: str | None
    raised_best: bool
    time_ms: int
    metrics: dict[str, float]
    candidate_id: str = ""
    reason: str = ""
    start_ms: int = 0
    end_ms: int | None = None
    failures: str = ""  # the failure histogram, one line (tag enpire.failures; enpire.attribution)
    twin: str = ""  # screen.twin=sim: passed | screened_out (tag enpire.twin; docs/twin.md)

    def metric(self, name: str, default: float = 0.0) -> float:
        return self.metrics.get(name, default)

    @property
    def evidence(self) -> int:
        """Trials that said something about the candidate (crashes left out); older runs: all trials."""
        return int(self.metrics.get("evidence_trials", self.metrics.get("trials", 0.0)))

    @property
    def own(self) -> tuple[int, int]:
        """(successes, trials) of this iteration's own trials."""
        n = self.evidence
        return counts(self.metric("success_rate"), n), n

    @property
    def pooled(self) -> Confirmed:
        """Its candidate's pooled result when it closed."""
        n = int(self.metric("candidate_trials"))
        key = self.candidate_id or f"iteration {self.index}"
        return Confirmed(key, counts(self.metric("candidate_success_rate"), n), n)


@dataclass
class Session:
    run_id: str
    name: str
    experiment: str
    status: str
    start_ms: int
    end_ms: int | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    iterations: list[Iteration] = field(default_factory=list)

    @property
    def sweep(self) -> str | None:
        return self.tags.get("enpire.sweep")

    @property
    def fleet(self) -> int:
        return int(self.params.get("fleet", self.tags.get("enpire.fleet", "1")))

    @property
    def task(self) -> str:
        return self.tags.get("enpire.task", self.params.get("task.name", "?"))

    @property
    def label(self) -> str:
        """A short name: session.name, else the overrides that change what it did (not where it was
        recorded: tracking.uri and the like are left out), else 'defaults'."""
        if self.tags.get("enpire.label"):
            return self.tags["enpire.label"]
        overrides = self.tags.get("enpire.overrides", "defaults")
        name = self.params.get("session.name")
        return label_of([] if overrides == "defaults" else overrides.split(),
                        None if name in (None, "", "null", "None") else name)

    @property
    def best_candidate(self) -> str | None:
        key = self.tags.get("enpire.done_candidate") or self.tags.get("enpire.best_candidate")
        return None if key in (None, "", "none") else key

    @property
    def best(self) -> str:
        """`0.96 (48/50, 95% CI 0.87-0.99)` of the summary's best candidate; older runs: the bare rate."""
        m = self.metrics
        if "best_success_trials" in m:
            return describe(m.get("best_success_successes", counts(m["best_success_rate"], m["best_success_trials"])),
                            m["best_success_trials"])
        return f"{m['best_success_rate']:.2f} (trials not recorded)" if "best_success_rate" in m else "–"

    @property
    def done_iteration(self) -> Iteration | None:
        """The iteration whose close met /done: the first of the /done candidate's with a full window."""
        if self.metrics.get("reached_done", 0.0) < 1.0:
            return None
        key = self.best_candidate
        window = float(self.params.get("done.goal.window", "0") or 0)
        its = [it for it in self.iterations if it.candidate_id == key and it.metric("candidate_trials") >= window]
        return its[0] if its else None

    def budget(self, key: str) -> float | None:
        value = self.params.get(f"budget.{key}")
        return float(value) if value is not None else None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text not in (None, "", "none") else None
    except ValueError:
        return None


def _iteration(run: Run) -> Iteration:
    t = run.data.tags
    borrowed = t.get("enpire.borrowed_from")
    return Iteration(
        run_id=run.info.run_id,
        index=_int(t.get("enpire.iteration")) or 0,
        agent=t.get("enpire.agent", "?"),
        branch=t.get("enpire.branch", t.get("enpire.agent", "?")),
        parent=_int(t.get("enpire.parent_iteration")),
        decision=t.get("enpire.decision", "?"),
        hypothesis=t.get("enpire.hypothesis", ""),
        borrowed_from=None if borrowed in (None, "", "none") else borrowed,
        raised_best=t.get("enpire.raised_best", "false") == "true",
        time_ms=run.info.end_time or run.info.start_time,
        metrics=dict(run.data.metrics),
        candidate_id=t.get("enpire.candidate_id", ""),
        reason=t.get("enpire.reason", ""),
        failures=t.get("enpire.failures", ""),
        twin=t.get("enpire.twin", ""),
        start_ms=run.info.start_time,
        end_ms=run.info.end_time,
    )


def _session(client: MlflowClient, run: Run, experiment: str) -> Session:
    children = client.search_runs(
        [run.info.experiment_id],
        filter_string=f"tags.`mlflow.parentRunId` = '{run.info.run_id}' and tags.`enpire.kind` = 'iteration'",
        max_results=50000,
    )
    iterations = sorted((_iteration(c) for c in children), key=lambda i: i.index)
    return Session(
        run_id=run.info.run_id, name=run.info.run_name or run.info.run_id[:8], experiment=experiment,
        status=run.info.status, start_ms=run.info.start_time, end_ms=run.info.end_time,
        tags=dict(run.data.tags), params=dict(run.data.params), metrics=dict(run.data.metrics),
        iterations=iterations,
    )


def load_sessions(client: MlflowClient, experiments: list[str] | None = None,
                  session_ids: list[str] | None = None, sweep: str | None = None) -> list[Session]:
    """Sessions by id, or every session of the named experiments (all enpire/* ones by default)."""
    if session_ids:
        out = []
        for run_id in session_ids:
            run = client.get_run(run_id)
            if run.data.tags.get("enpire.kind") != "session":
                raise ValueError(f"--session {run_id}: run is not an enpire session (tag enpire.kind != session)")
            out.append(_session(client, run, client.get_experiment(run.info.experiment_id).name))
        return out
    found = client.search_experiments()
    wanted = [e for e in found if (e.name in experiments if experiments else e.name.startswith("enpire/"))]
    if experiments:
        missing = sorted(set(experiments) - {e.name for e in wanted})
        if missing:
            raise ValueError(f"--experiment: no such experiment {missing}; known: {sorted(e.name for e in found)}")
    sessions = []
    for exp in wanted:
        query = "tags.`enpire.kind` = 'session'" + (f" and tags.`enpire.sweep` = '{sweep}'" if sweep else "")
        for run in client.search_runs([exp.experiment_id], filter_string=query, max_results=10000):
            sessions.append(_session(client, run, exp.name))
    return sorted(sessions, key=lambda s: s.start_ms)


@dataclass(frozen=True)
class Point:
    """The capability curve after one iteration: spent so far, and the best confirmed candidate then."""

    spent: float
    lcb: float  # its 95% Wilson lower bound: what the curve plots
    rate: float  # its pooled rate
    trials: int
    key: str | None
    wall_s: float


def capability(session: Session, metric: str) -> list[Point]:
    """After each iteration (in index order): cumulative `metric` spent, and the candidate with the highest
    95% lower bound among the current pooled results of candidates with >= MIN_TRIALS trials."""
    spent, current, out = 0.0, {}, []
    for it in session.iterations:
        spent += it.metric(metric)
        if it.decision not in NOT_JUDGED and it.metric("candidate_trials") > 0:
            current[it.pooled.key] = it.pooled
        best = best_of(current.values())
        wall = ((it.end_ms or it.time_ms) - session.start_ms) / 1000.0
        out.append(Point(spent, best.lcb if best else 0.0, best.rate if best else 0.0, best.trials if best else 0,
                         best.key if best else None, wall))
    return out


def cumulative(session: Session, metric: str) -> list[tuple[float, float]]:
    """(cumulative `metric` spent, best confirmed lower bound so far) after each iteration, in order."""
    return [(p.spent, p.lcb) for p in capability(session, metric)]


def session_row(s: Session) -> dict[str, Any]:
    m = s.metrics
    n = m.get("best_pass_trials", 0.0)
    pass1 = describe(round(m["best_pass_at_1"] * n), n) if n and "best_pass_at_1" in m else None
    passk = describe(round(m["best_pass_at_k"] * n), n) if n and "best_pass_at_k" in m else None
    return {
        "session": s.run_id[:8], "label": s.label, "task": s.task, "fleet": s.fleet,
        "agent": s.tags.get("enpire.agent_kind", "?"),
        "reached_done": m.get("reached_done", 0.0) >= 1.0, "best_success": s.best, "pass@1": pass1, "pass@k": passk,
        "iterations": m.get("iterations", len(s.iterations)), "trials": m.get("trials"),
        "robot_s": m.get("robot_seconds"), "tokens": m.get("tokens"), "wall_s": m.get("wall_s"),
        "time_to_done_s": m.get("time_to_done_s"), "robot_s_to_done": m.get("robot_s_to_done"),
        "mru": m.get("mru"), "mtu": m.get("mtu"), "status": s.status,
    }
