"""End of a session: compute the summary figures, print them, and write them to MLflow.

The printed summary and the session run's metrics come from the same dict, so they agree
by construction (tests read both back and compare).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from enpire import summary as summary_mod
from enpire.track.ballast import end_failed
from enpire.track.confidence import confirmed_best, counts, lower_bound
from enpire.track.records import iteration_document
from enpire.track.retry import disk_full_reason, is_disk_full

if TYPE_CHECKING:
    from enpire.loop import Session

log = logging.getLogger(__name__)


def _trainer_busy(s: Session, used: dict[str, float]) -> float:
    """Wall seconds the trainer slot was busy (enpire.fleet.trainer_slot); the ledger's charge otherwise."""
    trainer = getattr(s, "trainer", None)
    return trainer.busy_seconds() if trainer is not None else used["trainer_seconds"]


def confirmed_figures(s: Session) -> dict[str, Any]:
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


def session_summary(s: Session) -> dict[str, Any]:
    spec = s.spec
    used = s.ledger.totals()
    wall = max(time.monotonic() - s.t0, used["wall_clock_s"])  # a resumed session: every segment's wall clock
    loop_wall = max(1e-9, s.loop_t1 - s.loop_t0) if s.loop_t0 else 0.0
    busy = s.executor.busy_seconds()
    mru = sum(busy) / (spec.fleet * loop_wall) if loop_wall else 0.0
    iterations = s.tree.iterations
    run_id = s.tracker.run_id if s.tracker is not None else ""
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
        "run_dir": s.context.run_dir,
    }
    for key, over in s.ledger.overshoot().items():  # hard caps (iterations, trials, robot_seconds) stay at 0
        out[f"cap_exceeded.{key}"] = over
    for m in s.team.members:
        out[f"mtu.{m.name}"] = round(m.tokens / (wall / 60.0), 3) if wall > 0 else 0.0
    trainer = getattr(s, "trainer", None)
    if trainer is not None and trainer.jobs:  # bc sessions: how the trainer slot was used
        out.update(trainer_jobs=trainer.jobs, trainer_overlap_s=round(trainer.overlap_s, 3))
    if s.done_at is not None:
        out.update({k: round(v, 3) for k, v in s.done_at.items()})
    return out


def finish_session(s: Session, code: int) -> int:
    summary = session_summary(s)
    text = summary_mod.render(summary)
    if s.tracker is not None:
        tags = {"enpire.stopped_by": summary["stopped_by"], "enpire.reached_done": str(summary["reached_done"]).lower(),
                "enpire.best_candidate": summary["best_candidate"]}
        if s.tree.done_key is not None:
            tags["enpire.done_candidate"] = s.tree.done_key
        if s.breach is not None:
            tags["enpire.integrity_breach"] = s.breach.what
        metrics = summary_mod.numeric(summary)
        metrics.update({f"ledger.{k}": v for k, v in s.ledger.totals().items()})
        tree = [iteration_document(it, it.index in s.tree.raised_best) for it in s.tree.iterations]
        ballast = getattr(s, "ballast", None)
        try:
            s.tracker.close(metrics, len(s.tree.iterations), tags, tree, text,
                            "FINISHED" if code == 0 else "FAILED")
        except Exception as error:
            code = code or 1
            if is_disk_full(error) or "disk full" in summary["stopped_by"]:
                # one clear line, and the run ended FAILED with the reason: the ballast frees the room to say so
                reason = summary["stopped_by"] if "disk full" in summary["stopped_by"] else \
                    f"error: output disk full ({disk_full_reason(error)})"
                log.error("the output disk is full: %s; session run %s ended FAILED", reason, s.tracker.run_id)
                end_failed(s.spec.tracking.uri, s.tracker.run_id, reason, ballast)
            else:
                log.exception("could not finish the MLflow run %s", s.tracker.run_id)
        if ballast is not None:
            ballast.release()
    print(text, end="", flush=True)
    return code
