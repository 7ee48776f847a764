"""Read sessions and their iterations back from an MLflow store.

Only MLflow is read: tags, params and metrics of the session runs (`enpire.kind=session`) and
of their child iteration runs (`enpire.kind=iteration`), plus artifacts on demand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import Run
from mlflow.tracking import MlflowClient


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

    def metric(self, name: str, default: float = 0.0) -> float:
        return self.metrics.get(name, default)


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
    def label(self) -> str:
        """A short name: the overrides that distinguish it, else the run name."""
        overrides = self.tags.get("enpire.overrides")
        return overrides or self.name

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


def cumulative(session: Session, metric: str) -> list[tuple[float, float]]:
    """(cumulative `metric` spent, best success rate so far) after each iteration, in order."""
    spent, best, out = 0.0, 0.0, []
    for it in session.iterations:
        spent += it.metric(metric)
        if it.decision not in ("rejected", "crash"):
            best = max(best, it.metric("candidate_success_rate", it.metric("success_rate")))
        out.append((spent, best))
    return out


def session_row(s: Session) -> dict[str, Any]:
    m = s.metrics
    return {
        "session": s.run_id[:8], "label": s.label, "fleet": s.fleet, "agent": s.tags.get("enpire.agent_kind", "?"),
        "reached_done": m.get("reached_done", 0.0) >= 1.0, "best_success": m.get("best_success_rate"),
        "iterations": m.get("iterations", len(s.iterations)), "trials": m.get("trials"),
        "robot_s": m.get("robot_seconds"), "tokens": m.get("tokens"), "wall_s": m.get("wall_s"),
        "time_to_done_s": m.get("time_to_done_s"), "robot_s_to_done": m.get("robot_s_to_done"),
        "mru": m.get("mru"), "mtu": m.get("mtu"), "status": s.status,
    }
