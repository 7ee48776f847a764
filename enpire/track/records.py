"""Pure functions that shape what goes to MLflow: flattened spec params, iteration tags and metrics,
the trial table rows. Kept apart from the writer so the layout is testable without a store.
"""

from __future__ import annotations

import json
from typing import Any

from enpire.agent.api import IterationSummary
from enpire.world.api import TrialRecord

MAX_PARAM_CHARS = 6000
MAX_TAG_CHARS = 5000


def flatten(doc: Any, prefix: str = "") -> dict[str, str]:
    """{"a": {"b": 1}} -> {"a.b": "1"}; lists become JSON text (MLflow params are strings)."""
    out: dict[str, str] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    else:
        text = json.dumps(doc) if isinstance(doc, list | tuple | bool) or doc is None else str(doc)
        out[prefix] = text[:MAX_PARAM_CHARS]
    return out


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
    }
    if sweep:
        tags["enpire.sweep"] = sweep
    return tags


def iteration_metrics(it: IterationSummary) -> dict[str, float]:
    return {
        "success_rate": it.success_rate, "pass_at_1": it.pass_at_1, "pass_at_k": it.pass_at_k,
        "trials": float(it.trials), "safety_stops": float(it.safety_stops), "robot_seconds": it.robot_seconds,
        "tokens": float(it.tokens), "candidate_trials": float(it.candidate_trials),
        "candidate_success_rate": it.candidate_success_rate,
    }


def trial_row(record: TrialRecord, candidate_id: str, video_artifact: str | None) -> dict[str, Any]:
    """One row of the trial table: the trial record (specs/trial.schema.json) plus where its files went."""
    row = record.to_dict()
    row["candidate_id"] = candidate_id
    row["reason"] = record.reason
    row["video_artifact"] = video_artifact
    return row


def iteration_document(it: IterationSummary, raised_best: bool) -> dict[str, Any]:
    """The iteration as a JSON artifact: enough to rebuild the idea tree from MLflow alone (resume)."""
    doc = {k: getattr(it, k) for k in it.__dataclass_fields__}
    doc["failures"] = list(it.failures)
    doc["raised_best"] = raised_best
    return doc
