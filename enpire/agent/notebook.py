"""A branch's research notebook: the recipes it kept, with their evidence, and its agent's own notes.

Written at a session's end as artifacts of the session run (`notebook/<branch>.json`, one per branch, and
`notebook/index.json`, through enpire.track.finish's documents: a session without an MLflow run writes none).
`agent.memory_from=SESSION_ID` starts another session from them (enpire.agent.memory).

A notebook is JSON, versioned by `format`, and bounded: at most MAX_RECIPES recipes (best first: the /done
candidate, then kept candidates by their 95% lower bound) and MAX_NOTES notes of at most NOTE_CHARS each,
the whole document under MAX_BYTES (oldest notes go first). A recipe carries its candidate (parameters, a
training recipe, or a code candidate by id and size: the source stays in its iteration's artifacts) and its
evidence: pooled trials and successes, success rate, Wilson 95% interval, the hypothesis that proposed it,
the task and robot it was measured on, and the failure groups of its latest iteration. The notes are the
agent's own when it keeps some (an optional `notebook_notes() -> list[str]` method), else one line per
judged idea of its branch: iteration, decision, pooled counts and the hypothesis (a Claude branch's
hypotheses are its reasoning).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from enpire.records import IterationSummary
from enpire.track.confidence import wilson

if TYPE_CHECKING:
    from enpire.agent.tree import IdeaTree
    from enpire.spec.model import ExperimentSpec

FORMAT = "enpire.notebook/1"
FOLDER = "notebook"
INDEX = f"{FOLDER}/index.json"
MAX_RECIPES = 8
MAX_NOTES = 40
NOTE_CHARS = 240
HYPOTHESIS_CHARS = 600
MAX_BYTES = 64_000
JUDGED = ("keep", "discard", "crash", "unsafe")


def clip(text: str, limit: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def branch_file(branch: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in branch) or "branch"
    return f"{FOLDER}/{safe}.json"


def candidate_entry(candidate: dict[str, Any]) -> dict[str, Any]:
    """The candidate as a notebook keeps it: params and recipes whole, code by id and size."""
    kind = candidate.get("kind")
    if kind == "code":
        source = str(candidate.get("source") or "")
        return {"kind": "code", "source_sha256": hashlib.sha256(source.encode()).hexdigest()[:16],
                "source_chars": len(source)}
    if kind == "bc" or kind == "rl":
        recipe = {k: v for k, v in dict(candidate.get("recipe") or {}).items() if k != "checkpoint"}
        return {"kind": kind, "recipe": recipe}
    return {"kind": kind or "params", "params": dict(candidate.get("params") or {})}


def _recipe(first: IterationSummary, it: IterationSummary, status: str, pool: list[bool],
            spec: ExperimentSpec) -> dict[str, Any]:
    """`first`: the iteration that proposed the candidate (its hypothesis); `it`: its latest (its failures)."""
    s, n = sum(pool), len(pool)
    lo, hi = wilson(s, n)
    return {
        "candidate_id": it.candidate_id, "candidate": candidate_entry(it.candidate), "status": status,
        "iteration": first.index, "latest_iteration": it.index, "hypothesis": clip(first.hypothesis, HYPOTHESIS_CHARS),
        **({"borrowed_from": first.borrowed_from} if first.borrowed_from else {}),
        "evidence": {"trials": n, "successes": int(s), "success_rate": round(s / n, 4) if n else 0.0,
                     "ci95": [round(lo, 4), round(hi, 4)], "confirmed": n >= spec.done.window,
                     "task": spec.task.name, "robot": spec.robot.name,
                     "failures": [clip(f"{e.get('label', '')} x {e.get('count', '')}", 120)
                                  for e in it.failure_histogram[:3] if isinstance(e, dict)]},
    }


def recipes(its: list[IterationSummary], tree: IdeaTree, spec: ExperimentSpec) -> list[dict[str, Any]]:
    """The branch's kept candidates (and the /done one), best first; its best judged one when none was kept."""
    first: dict[str, IterationSummary] = {}
    latest: dict[str, IterationSummary] = {}
    status: dict[str, str] = {}
    for it in its:
        if not it.candidate_id or it.decision not in JUDGED:
            continue
        first.setdefault(it.candidate_id, it)
        latest[it.candidate_id] = it
        if it.candidate_id == tree.done_key:
            status[it.candidate_id] = "done"
        elif it.decision == "keep":
            status.setdefault(it.candidate_id, "kept")
    if not status and latest:  # nothing kept: the best-evidenced candidate it tried, marked as such
        pools = {k: tree.pools.get(k, []) for k in latest}
        key = max(pools, key=lambda k: (wilson(sum(pools[k]), len(pools[k]))[0], len(pools[k]), k))
        if pools[key]:
            status[key] = "best_unkept"
    out = [_recipe(first[k], latest[k], st, list(tree.pools.get(k, [])), spec) for k, st in status.items()]
    out.sort(key=lambda r: (r["status"] != "done", -r["evidence"]["ci95"][0], -r["evidence"]["trials"],
                            r["candidate_id"]))
    return out[:MAX_RECIPES]


def idea_notes(its: Iterable[IterationSummary]) -> list[str]:
    """One line per judged idea: `#12 keep 7/8: <hypothesis>`."""
    lines = []
    for it in its:
        if it.decision not in JUDGED and it.decision != "rejected":
            continue
        s = round(it.candidate_success_rate * it.candidate_trials)
        lines.append(clip(f"#{it.index} {it.decision} {s}/{it.candidate_trials}: {it.hypothesis}", NOTE_CHARS))
    return lines


def notebook(spec: ExperimentSpec, tree: IdeaTree, session_id: str, branch: str, agent: str,
             own_notes: list[str] | None = None) -> dict[str, Any]:
    its = [it for it in tree.iterations if it.branch == branch]
    notes = [clip(n, NOTE_CHARS) for n in own_notes] if own_notes else idea_notes(its)
    doc: dict[str, Any] = {
        "format": FORMAT, "session_id": session_id, "branch": branch, "agent": agent, "task": spec.task.name,
        "robot": spec.robot.name, "policy": spec.policy.name, "policy_kind": spec.policy.kind,
        "search_space": {p.name: {"low": p.low, "high": p.high, "default": p.default, "unit": p.unit}
                         for p in spec.policy.params},
        "iterations": len(its), "recipes": recipes(its, tree, spec), "notes": notes[-MAX_NOTES:],
    }
    while len(json.dumps(doc)) > MAX_BYTES and doc["notes"]:  # bounded: the oldest notes go first
        doc["notes"] = doc["notes"][len(doc["notes"]) // 4 + 1:]
    while len(json.dumps(doc)) > MAX_BYTES and doc["recipes"]:
        doc["recipes"] = doc["recipes"][:-1]
    return doc


def documents(spec: ExperimentSpec, tree: IdeaTree, session_id: str, agents: dict[str, Any],
              borrowed: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Artifact name -> document: one notebook per branch of the idea tree and the index.
    `agents`: branch -> the agent object (its optional `notebook_notes()` gives its own notes)."""
    branches = sorted({it.branch for it in tree.iterations} | set(agents))
    out: dict[str, dict[str, Any]] = {}
    index: dict[str, Any] = {"format": FORMAT, "session_id": session_id, "task": spec.task.name,
                             "robot": spec.robot.name, "policy": spec.policy.name, "policy_kind": spec.policy.kind,
                             "reached_done": tree.done_key is not None, "done_candidate": tree.done_key,
                             "branches": {}}
    for branch in branches:
        agent = agents.get(branch)
        own = getattr(agent, "notebook_notes", None)
        notes = list(own()) if callable(own) else None
        name = getattr(agent, "name", None) or next((it.agent for it in tree.iterations if it.branch == branch), "")
        doc = notebook(spec, tree, session_id, branch, str(name), notes)
        out[branch_file(branch)] = doc
        best = doc["recipes"][0] if doc["recipes"] else None
        index["branches"][branch] = {
            "file": branch_file(branch), "recipes": len(doc["recipes"]), "iterations": doc["iterations"],
            "best": None if best is None else {"candidate_id": best["candidate_id"], "status": best["status"],
                                               **{k: best["evidence"][k] for k in ("trials", "successes",
                                                                                   "success_rate", "ci95")}}}
    if borrowed:
        index["memory_from"] = borrowed
    out[INDEX] = index
    return out
