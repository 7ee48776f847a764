"""End of a session: the summary figures and what the session run is closed with (a SessionEnd).

The loop prints `SessionEnd.text` and hands the SessionEnd to its observers (the MLflow writer closes the
run with it, enpire.track.observers). The printed summary and the session run's metrics come from the
same dict, so they agree by construction (tests read both back and compare).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Protocol

from enpire.track import summary as summary_mod
from enpire.track.confidence import confirmed_best, counts, lower_bound
from enpire.track.observers import SessionEnd
from enpire.track.records import iteration_document

if TYPE_CHECKING:
    from enpire.agent.team import Team
    from enpire.agent.tree import IdeaTree
    from enpire.fleet.budget import BudgetLedger
    from enpire.fleet.executor import Executor
    from enpire.fleet.trainer_slot import TrainerSlot
    from enpire.spec.errors import IntegrityError
    from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)


class FinishedSession(Protocol):
    """What the summary reads of a session (enpire.loop.Session), read-only."""

    spec: ExperimentSpec
    context: Any  # enpire.loop.SessionContext: run_dir
    session_id: str  # the MLflow run id of the session run ("" without one)
    ledger: BudgetLedger
    tree: IdeaTree
    executor: Executor
    team: Team
    trainer: TrainerSlot
    t0: float
    loop_t0: float
    loop_t1: float
    stopped_by: str | None
    crashes: int
    executing_s: float
    done_at: dict[str, float] | None
    breach: IntegrityError | None


def _trainer_busy(s: FinishedSession, used: dict[str, float]) -> float:
    """Wall seconds the trainer slot was busy (enpire.fleet.trainer_slot); the ledger's charge otherwise."""
    trainer = getattr(s, "trainer", None)
    return trainer.busy_seconds() if trainer is not None else used["trainer_seconds"]


def confirmed_figures(s: FinishedSession) -> dict[str, Any]:
    """The best candidate by confirmed success: the highest 95% Wilson lower bound among candidates with at
    least confidence.MIN_TRIALS pooled trials (never a 1/1), with its counts, and pass@1 beside pass@k with
    their lower bounds. pass@k pools the candidate's judged iterations (iteration rates over their trials)."""
    best = confirmed_best(s.tree.pools)
    if best is None:
        return {"best_success_rate": 0.0, "best_candidate": "none", "best_success_lcb": 0.0,
                "best_success_trials": 0, "best_success_successes": 0}
    out: dict[str, Any] = {
        "best_success_rate": round(best.rate, 4), "best_candidate": best.key, "best_success_lcb": round(best.lcb, 4),
        "best_success_trials": best.trials, "best_success_successes": best.successes,
    }
    its = [it for it in s.tree.iterations if it.candidate_id == best.key and it.decision != "cancelled" and it.trials]
    n = sum(it.trials for it in its)
    if n:
        k = sum(counts(it.pass_at_k, it.trials) for it in its)
        one = sum(counts(it.pass_at_1, it.trials) for it in its)
        out.update(best_pass_trials=n, best_pass_at_1=round(one / n, 4),
                   best_pass_at_1_lcb=round(lower_bound(one, n), 4), best_pass_at_k=round(k / n, 4),
                   best_pass_at_k_lcb=round(lower_bound(k, n), 4))
    return out


def human_figures(interventions: list[dict[str, Any]]) -> dict[str, Any]:
    """Times a station waited for a person (supervision.human_reset) and the wall seconds it waited: not robot
    time, reported apart (enpire.fleet.human_reset)."""
    return {"human_interventions": len(interventions),
            "human_wait_s": round(sum(float(e["wait_s"]) for e in interventions), 3)}


def session_summary(s: FinishedSession) -> dict[str, Any]:
    spec = s.spec
    used = s.ledger.totals()
    wall = max(time.monotonic() - s.t0, used["wall_clock_s"])  # a resumed session: every segment's wall clock
    loop_wall = max(1e-9, s.loop_t1 - s.loop_t0) if s.loop_t0 else 0.0
    busy = s.executor.busy_seconds()
    mru = sum(busy) / (spec.fleet * loop_wall) if loop_wall else 0.0
    iterations = s.tree.iterations
    run_id = s.session_id
    out: dict[str, Any] = {
        "session_id": run_id, "mlflow_run_id": run_id, "experiment": spec.experiment_name, "task": spec.task.name,
        "robot": spec.robot.name, "agent": spec.agent.kind, "fleet": spec.fleet, "agents": len(s.team.members),
        "reached_done": s.tree.done_key is not None, "stopped_by": s.stopped_by or "unknown",
        **confirmed_figures(s),
        "determinism": spec.determinism,
        "iterations": sum(it.decision != "cancelled" for it in iterations),
        "kept": sum(it.decision == "keep" for it in iterations),
        "rejected": sum(it.decision == "rejected" for it in iterations),
        "cancelled": sum(it.decision == "cancelled" for it in iterations),
        "cancelled_trials": sum(it.trials for it in iterations if it.decision == "cancelled"),
        "trials": int(used["trials"]),
        "crashes": s.crashes,
        "safety_stops": sum(it.safety_stops for it in iterations),
        "robot_seconds": round(used["robot_seconds"], 3), "tokens": int(used["tokens"]),
        "trainer_seconds": round(used["trainer_seconds"], 3), "wall_s": round(wall, 3),
        "loop_wall_s": round(loop_wall, 3), "mru": round(min(1.0, mru), 4),
        "mru_session": round(min(1.0, getattr(s, "executing_s", 0.0) / (spec.fleet * wall)), 4) if wall > 0 else 0.0,
        "mtu": round(used["tokens"] / (wall / 60.0), 3) if wall > 0 else 0.0,
        "trainer_utilization": round(min(1.0, _trainer_busy(s, used) / wall), 4) if wall > 0 else 0.0,
        "faulty_stations": len(s.executor.faulty()), "station_restarts": sum(s.executor.restarts()),
        **human_figures(s.executor.interventions()),
        **s.tree.shadow.figures({it.candidate_id for it in iterations if it.decision == "keep"}, s.tree.done_key),
        "run_dir": s.context.run_dir,
    }
    for key, over in s.ledger.overshoot().items():  # hard caps (iterations, trials, robot_seconds) stay at 0
        out[f"cap_exceeded.{key}"] = over
    for m in s.team.members:
        out[f"mtu.{m.name}"] = round(m.tokens / (wall / 60.0), 3) if wall > 0 else 0.0
    trainer = getattr(s, "trainer", None)
    if trainer is not None and trainer.jobs:  # bc sessions: how the trainer slot was used
        out.update(trainer_jobs=trainer.jobs, trainer_overlap_s=round(trainer.overlap_s, 3))
    out.update(screen_figures(s))
    if s.done_at is not None:
        out.update({k: round(v, 3) for k, v in s.done_at.items()})
    return out


def screen_figures(s: FinishedSession) -> dict[str, Any]:
    """What the screen did before robot time (enpire.fleet.screen); nothing when it was off. The twin's figures are
    those of the iterations the session judged (cancelled ones left out), each candidate's first verdict once, so a
    strict session repeats them: `twin_candidates` / `twin_rejected` (screened out), `twin_trials` and
    `twin_sim_seconds` (never robot time); how far the twin can be trusted: the candidates it passed, pooled, on the
    twin (`twin_passed_twin_rate`) and on the fleet (`twin_passed_fleet_rate`, over `twin_passed_fleet_trials`).
    The dry check's counts (`dry_checks`, `dry_rejected`) are the screen's own."""
    screen = getattr(s, "screen", None)
    out: dict[str, Any] = {}
    if screen is not None and screen.totals.get("dry_checks"):
        out.update(dry_checks=int(screen.totals["dry_checks"]), dry_rejected=int(screen.totals["dry_rejected"]))
    if not s.spec.screen.enabled:
        return out
    first: dict[str, dict[str, Any]] = {}  # candidate -> the twin's figures of its first judged iteration
    fleet: dict[str, tuple[float, int]] = {}  # passed candidate -> (pooled fleet rate, trials) of its latest iteration
    for it in sorted(s.tree.iterations, key=lambda i: i.index):
        if it.decision == "cancelled":
            continue
        if it.twin and it.candidate_id not in first:
            first[it.candidate_id] = it.twin
        passed = bool(first.get(it.candidate_id, {}).get("passed"))
        if passed and it.candidate_trials >= fleet.get(it.candidate_id, (0.0, 0))[1]:
            fleet[it.candidate_id] = (it.candidate_success_rate, it.candidate_trials)
    out.update(twin_candidates=len(first), twin_rejected=sum(not t.get("passed") for t in first.values()),
               twin_trials=int(sum(t.get("trials", 0) for t in first.values())),
               twin_sim_seconds=round(sum(float(t.get("sim_seconds", 0.0)) for t in first.values()), 3))
    twin_n = sum(int(t.get("trials", 0)) for t in first.values() if t.get("passed"))
    if twin_n:
        out["twin_passed_twin_rate"] = round(
            sum(int(t.get("successes", 0)) for t in first.values() if t.get("passed")) / twin_n, 4)
    fleet_n = sum(n for _, n in fleet.values())
    if fleet_n:
        out["twin_passed_fleet_rate"] = round(sum(r * n for r, n in fleet.values()) / fleet_n, 4)
        out["twin_passed_fleet_trials"] = fleet_n
    return out


def notebooks(s: FinishedSession) -> dict[str, Any]:
    """Each branch's research notebook and their index (enpire.agent.notebook): artifacts of the session run;
    one that cannot be built is logged and left out, never the end of the session."""
    from enpire.agent import memory, notebook

    try:
        agents = {m.agent.branch: m.agent for m in s.team.members}
        return notebook.documents(s.spec, s.tree, s.session_id, agents, memory.report(s.spec))
    except Exception:
        log.exception("research notebooks not written")
        return {}


def session_end(s: FinishedSession, code: int) -> SessionEnd:
    """The summary, its text and what the session run is closed with; the same dict gives the printed
    summary and the run's metrics."""
    summary = session_summary(s)
    tags = {"enpire.stopped_by": summary["stopped_by"], "enpire.reached_done": str(summary["reached_done"]).lower(),
            "enpire.best_candidate": summary["best_candidate"]}
    if s.tree.done_key is not None:
        tags["enpire.done_candidate"] = s.tree.done_key
    if s.breach is not None:
        tags["enpire.integrity_breach"] = s.breach.what
    metrics = summary_mod.numeric(summary)
    metrics.update({f"ledger.{k}": v for k, v in s.ledger.totals().items()})
    tree = [iteration_document(it, it.index in s.tree.raised_best) for it in s.tree.iterations]
    interventions = s.executor.interventions()
    documents = {"human_interventions.json": {"interventions": interventions}} if interventions else {}
    documents.update(notebooks(s))
    return SessionEnd(summary=summary, text=summary_mod.render(summary), metrics=metrics, tags=tags, idea_tree=tree,
                      step=len(s.tree.iterations), status="FINISHED" if code == 0 else "FAILED", documents=documents)
