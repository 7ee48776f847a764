"""Pure functions that shape what goes to MLflow: flattened spec params, run names, iteration tags,
metrics and description, the trial table. Kept apart from the writer so the layout is testable without
a store.

Every rate logged carries its evidence: `<rate>_lcb` is the 95% Wilson lower bound over the trials
that gave evidence (enpire.track.confidence), and the trial counts sit beside it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from enpire.attribution import histogram_line
from enpire.judge.pools import NO_EVIDENCE  # outcomes that say nothing about the candidate
from enpire.records import IterationSummary, TrialRecord
from enpire.track.confidence import counts, lower_bound

MAX_PARAM_CHARS = 6000
MAX_TAG_CHARS = 5000
MAX_RUN_NAME_CHARS = 200

PROSE_KEYS = ("description", "notes")  # spec leaves that are sentences: in spec/resolved_spec.json, not params
# Overrides that say where or how a session was recorded or shown, not what it was: left out of run names and
# report labels. conf/config.yaml lists the same keys in hydra.job.config.override_dirname.exclude_keys, so
# sweep directories are named by what changed too (tests/track/test_names.py checks they agree).
NOISE_KEYS = (
    "tracking.uri", "tracking.artifact_root", "tracking.experiment", "tracking.flush_every_s",
    "video.enabled", "video.render", "video.iterations", "video.width", "video.height", "video.fps", "video.camera",
    "session.name", "session.notes", "resume", "supervision.control_root", "supervision.poll_s",
    "record.trajectories", "record.frames_hz", "record.max_mb",  # what is kept of trials, never their outcomes
    "hydra/launcher", "hydra.launcher.n_jobs", "hydra.verbose",
)
NOISE_PREFIXES = ("hydra.", "hydra/", "tracking.")
METRIC_DECIMALS = 4


def flatten(doc: Any, prefix: str = "", prose: bool = False) -> dict[str, str]:
    """{"a": {"b": 1}} -> {"a.b": "1"}; lists become JSON text (MLflow params are strings). Sentences
    (keys in PROSE_KEYS: task and parameter descriptions, session notes) are left out unless `prose`: they
    are not settings one compares runs by, and they stay whole in the spec artifact."""
    out: dict[str, str] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            if not prose and str(k) in PROSE_KEYS:
                continue
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k), prose))
    else:
        text = json.dumps(doc) if isinstance(doc, list | tuple | bool) or doc is None else str(doc)
        out[prefix] = text[:MAX_PARAM_CHARS]
    return out


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def changed_overrides(overrides: Iterable[str]) -> list[str]:
    """The overrides that change what a session does (NOISE_KEYS and hydra/tracking keys left out; a key given
    twice counts once, where its last value was given, as Hydra applies it)."""
    kept: dict[str, str] = {}
    for o in overrides:
        key = _key(o)
        if key in NOISE_KEYS or key.startswith(NOISE_PREFIXES):
            continue
        kept.pop(key, None)
        kept[key] = o
    return list(kept.values())


def label(overrides: Iterable[str], name: str | None = None) -> str:
    """A session's short name for people: `session.name`, else its changed overrides, else 'defaults'."""
    if name:
        return name
    changed = changed_overrides(overrides)
    return " ".join(changed) if changed else "defaults"


def session_run_name(spec: Any) -> str:
    """The session run's name: `session.name`, else the changed overrides (`task=reach fleet=2`), else
    `<task> fleet=<n> (defaults)`. Never a path or a file name: the run directory embeds overrides such as
    tracking.uri (a sweep's sessions were all called `mlflow.db`)."""
    if spec.session_name:
        return str(spec.session_name)[:MAX_RUN_NAME_CHARS]
    changed = changed_overrides(spec.overrides)
    if changed:
        text = " ".join(changed)
        return text if len(text) <= MAX_RUN_NAME_CHARS else text[:MAX_RUN_NAME_CHARS - 1] + "…"
    return f"{spec.task.name} fleet={spec.fleet} (defaults)"


def session_description(spec: Any) -> str:
    """The session run's description (`mlflow.note.content`, markdown): notes, then what it ran."""
    notes = str(spec.resolved.get("session", {}).get("notes") or "").strip() if hasattr(spec.resolved, "get") else ""
    changed = changed_overrides(spec.overrides)
    lines = [notes, ""] if notes else []
    lines += [f"**{spec.task.name}** with **{spec.robot.name}**, fleet {spec.fleet}, agent `{spec.agent.kind}`, "
              f"seed {spec.seed}, determinism `{spec.determinism}`.", "",
              f"/done: success rate >= {spec.done.min_success_rate} over {spec.done.window} consecutive trials of "
              "one candidate.", "",
              "Overrides: " + (" ".join(f"`{o}`" for o in changed) if changed else "none (defaults)")]
    return "\n".join(lines)[:MAX_TAG_CHARS]


def iteration_tags(it: IterationSummary, raised_best: bool, sweep: str | None) -> dict[str, str]:
    tags = {
        "enpire.kind": "iteration",
        "enpire.iteration": str(it.index),
        "enpire.agent": it.agent,
        "enpire.branch": it.branch,
        "enpire.parent_iteration": "none" if it.parent is None else str(it.parent),
        "enpire.decision": it.decision,
        "enpire.hypothesis": it.hypothesis[:MAX_TAG_CHARS],
        "enpire.reason": it.reason[:MAX_TAG_CHARS],
        "enpire.candidate_id": it.candidate_id,
        "enpire.candidate_kind": str(it.candidate.get("kind", "")),
        "enpire.borrowed_from": it.borrowed_from or "none",
        "enpire.raised_best": str(raised_best).lower(),
        "mlflow.note.content": iteration_description(it),
    }
    if it.failure_histogram:  # why its trials failed, grouped (enpire.attribution)
        tags["enpire.failures"] = histogram_line(it.failure_histogram)[:MAX_TAG_CHARS]
    if it.twin:  # screen.twin=sim: the twin's verdict before robot time (enpire.fleet.screen)
        tags["enpire.twin"] = "passed" if it.twin.get("passed") else "screened_out"
    if sweep:
        tags["enpire.sweep"] = sweep
    return tags


def iteration_description(it: IterationSummary) -> str:
    """The iteration run's description in the MLflow UI: the hypothesis whole, then the verdict with its figures."""
    verdict = f"**{it.decision}**" + (f": {it.reason}" if it.reason else "")
    pooled = ""
    if it.candidate_trials:
        pooled = (f"\n\nCandidate `{it.candidate_id}` pooled: {counts(it.candidate_success_rate, it.candidate_trials)}"
                  f"/{it.candidate_trials} successes (95% lower bound "
                  f"{lower_bound(counts(it.candidate_success_rate, it.candidate_trials), it.candidate_trials):.2f}).")
    failures = f"\n\nFailures: {histogram_line(it.failure_histogram)}." if it.failure_histogram else ""
    text = f"{it.hypothesis.strip() or '(no hypothesis)'}\n\n{verdict}{pooled}{failures}"
    return text if len(text) <= MAX_TAG_CHARS else text[:MAX_TAG_CHARS - 1] + "…"


def evidence(trials: Sequence[TrialRecord] | None, it: IterationSummary) -> int:
    """Trials of the iteration that say something about its candidate (crashes and failed resets do not)."""
    if trials is None:
        return it.trials
    return sum(r.outcome not in NO_EVIDENCE for r in trials)


def iteration_metrics(it: IterationSummary, trials: Sequence[TrialRecord] | None = None) -> dict[str, float]:
    """The iteration's metrics: rates with their 95% lower bounds and the trial counts behind them."""
    n = evidence(trials, it)
    ns = it.candidate_trials
    return {**shadow_metrics(trials),
        "success_rate": it.success_rate, "pass_at_1": it.pass_at_1, "pass_at_k": it.pass_at_k,
        "success_rate_lcb": lower_bound(counts(it.success_rate, n), n),
        "pass_at_1_lcb": lower_bound(counts(it.pass_at_1, n), n),
        "pass_at_k_lcb": lower_bound(counts(it.pass_at_k, n), n),
        "evidence_trials": float(n),
        "trials": float(it.trials), "safety_stops": float(it.safety_stops), "robot_seconds": it.robot_seconds,
        "tokens": float(it.tokens), "candidate_trials": float(ns),
        "candidate_success_rate": it.candidate_success_rate,
        "candidate_success_lcb": lower_bound(counts(it.candidate_success_rate, ns), ns),
        **twin_metrics(it),
    }


def twin_metrics(it: IterationSummary) -> dict[str, float]:
    """screen.twin=sim: the digital twin's figures for the iteration's candidate (none without a twin)."""
    twin = it.twin or {}
    return {f"twin_{k}": float(twin[k]) for k in ("success_rate", "trials", "sim_seconds") if k in twin}


def shadow_metrics(trials: Sequence[TrialRecord] | None) -> dict[str, float]:
    """done.verifier=classifier in simulation: the iteration's true (state verifier) pass@1 beside its verified
    one, and their agreement, over the trials with a shadow verdict (none without)."""
    pairs = [(r.pass_at_1, r.shadow["pass_at_1"]) for r in trials or () if r.shadow and r.outcome not in NO_EVIDENCE]
    if not pairs:
        return {}
    n = len(pairs)
    return {"true_success_rate": sum(t for _, t in pairs) / n, "verifier_agreement": sum(v == t for v, t in pairs) / n,
            "false_successes": float(sum(v and not t for v, t in pairs)), "shadow_trials": float(n)}


def rounded(value: float) -> float:
    """Metric values as people read them: METRIC_DECIMALS decimals (0.962, not 0.9615384615384616)."""
    v = float(value)
    return round(v, METRIC_DECIMALS) if v == v and abs(v) != float("inf") else v


def trial_row(record: TrialRecord, candidate_id: str, video_artifact: str | None) -> dict[str, Any]:
    """One row of the trial table: the trial record (specs/trial.schema.json) plus where its files went."""
    row = record.to_dict()
    row["candidate_id"] = candidate_id
    row["reason"] = record.reason
    row["video_artifact"] = video_artifact
    return row


TABLE_FILE = "trials_table.json"
TABLE_COLUMNS = ("trial_id", "station", "seed", "outcome", "success", "pass_at_k", "attempts", "success_attempt",
                 "robot_seconds", "wall_s", "steps", "clamps", "safety_events", "failing", "phase", "reason")


def trial_table(trials: Sequence[TrialRecord], candidate_id: str) -> dict[str, Any]:
    """The trials as an MLflow table (the `split` JSON of `MlflowClient.log_table`: columns, rows), one row a
    trial with its final task state as `state.<quantity>` columns; the UI's Evaluation/Artifacts views show it."""
    quantities = sorted({q for r in trials for q in r.final_state})
    shadow = any(r.shadow for r in trials)  # classifier verifier: the state verifier's verdict beside it
    columns = [*TABLE_COLUMNS, "candidate_id", *(["true_success"] if shadow else []),
               *(f"state.{q}" for q in quantities)]
    data = []
    for r in trials:
        truth = [bool(r.shadow["pass_at_1"]) if r.shadow else None] if shadow else []
        data.append([r.trial_id, r.station, r.seed, r.outcome, bool(r.pass_at_1), bool(r.pass_at_k), r.attempts,
                     r.success_attempt, round(r.robot_seconds, 3), round(r.wall_s, 3), r.steps, r.clamps,
                     "; ".join(e.kind for e in r.safety_events),
                     r.attribution[0].get("failing") if r.attribution else None,
                     r.attribution[0].get("phase") if r.attribution else None, r.reason, candidate_id, *truth,
                     *(None if r.final_state.get(q) is None else round(float(r.final_state[q]), 5)
                       for q in quantities)])
    return {"columns": columns, "data": data}


def logged_tables_tag(path: str = TABLE_FILE) -> str:
    """Value of `mlflow.loggedArtifacts` that makes the UI list `path` as a table (what log_table sets)."""
    return json.dumps([{"path": path, "type": "table"}])


ITERATIONS_TABLE = "iterations_table.json"
ITERATION_COLUMNS = ("iteration", "agent", "parent", "decision", "success_rate", "pass_at_1", "pass_at_k", "trials",
                     "candidate_id", "candidate_successes", "candidate_trials", "candidate_success_lcb",
                     "robot_seconds", "tokens", "borrowed_from", "hypothesis", "reason", "failures")


def iteration_table(docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The session's iterations (iteration documents) as an MLflow table: one row an iteration, the pooled
    result of its candidate with its 95% lower bound."""
    data = []
    for d in docs:
        n = int(d.get("candidate_trials") or 0)
        s = counts(float(d.get("candidate_success_rate") or 0.0), n)
        data.append([d.get("index"), d.get("agent"), d.get("parent"), d.get("decision"),
                     round(float(d.get("success_rate") or 0.0), 4), round(float(d.get("pass_at_1") or 0.0), 4),
                     round(float(d.get("pass_at_k") or 0.0), 4), d.get("trials"), d.get("candidate_id"), s, n,
                     round(lower_bound(s, n), 4), round(float(d.get("robot_seconds") or 0.0), 3), d.get("tokens"),
                     d.get("borrowed_from"), d.get("hypothesis"), d.get("reason"),
                     histogram_line(d.get("failure_histogram") or ())])
    return {"columns": list(ITERATION_COLUMNS), "data": data}


def iteration_document(it: IterationSummary, raised_best: bool) -> dict[str, Any]:
    """The iteration as a JSON artifact: enough to rebuild the idea tree from MLflow alone (resume)."""
    doc = {k: getattr(it, k) for k in it.__dataclass_fields__}
    doc["failures"] = list(it.failures)
    doc["failure_histogram"] = list(it.failure_histogram)
    doc["raised_best"] = raised_best
    return doc
