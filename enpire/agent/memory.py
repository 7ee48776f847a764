"""Memory across sessions: `agent.memory_from=SESSION_ID` starts a session from another's notebooks.

The notebooks (enpire.agent.notebook) are read from the same MLflow store, read-only, once per process.
A run that does not exist, is not a session run, or has no notebook is a spec problem naming
`agent.memory_from` (exit 2 before anything runs: enpire.spec.preflight; the same error from
enpire.agent.registry for sessions started in-process). The other session may have run another task or
robot: its parameters are mapped onto this session's search space by name (clipped into bounds; unknown
names dropped; missing ones at this policy's defaults), and the mapping is reported (logged, in the borrowed
iteration's hypothesis and in this session's own notebook index). Iterations that evaluate a borrowed recipe
carry `borrowed_from = memory:<session id>/<branch>`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from enpire.agent.notebook import FORMAT, INDEX, clip
from enpire.agent.space import candidate_key, canonical_params
from enpire.spec.errors import Problem, SpecError
from enpire.spec.model import AgentSpec, ExperimentSpec, PolicySpec

log = logging.getLogger(__name__)

KEY = "agent.memory_from"
PREFIX = "memory:"
MAX_SEEDS = 3  # borrowed recipes evaluated first, over the whole team
TRUST_SAME, TRUST_OTHER = 0.5, 0.1  # weight of a recipe's successes in its first chunk: same task and robot / not
VIEW_RECIPES, VIEW_NOTES = 5, 20  # of each branch, in what an agent reads (the Claude agent's context)


@dataclass(frozen=True)
class Borrowed:
    """One recipe of the other session, mapped onto this session's search space."""

    source: str  # memory:<session id>/<branch>
    params: dict[str, float]
    evidence: dict[str, Any]
    mapping: dict[str, Any]  # kept, clipped {name: [from, to]}, dropped, defaulted

    @property
    def key(self) -> str:
        return candidate_key({"kind": "params", "params": self.params})

    def hypothesis(self, task: str, robot: str) -> str:
        ev, session_id = self.evidence, self.source.removeprefix(PREFIX).split("/")[0]
        where = f"{ev.get('task', '?')}/{ev.get('robot', '?')}"
        lo = (ev.get("ci95") or [0.0])[0]
        return clip(f"Evaluate the recipe borrowed from session {session_id[:12]}'s notebook ({self.source}: "
                    f"{ev.get('successes', 0)}/{ev.get('trials', 0)} successes on {where}, 95% lower bound "
                    f"{lo:.2f}) mapped onto {task}/{robot} by parameter name ({describe(self.mapping)}); expect "
                    "it to transfer, so exploring starts from it.", 1500)


@dataclass(frozen=True)
class Memory:
    session_id: str
    index: dict[str, Any]
    notebooks: dict[str, dict[str, Any]]  # branch -> notebook

    def recipes(self) -> list[tuple[str, dict[str, Any]]]:
        """(branch, recipe) over every branch, best first (/done, then lower bound, then trials), each candidate
        once."""
        rows = [(b, r) for b, nb in sorted(self.notebooks.items()) for r in nb.get("recipes") or ()
                if isinstance(r, dict)]
        rows.sort(key=lambda t: (t[1].get("status") != "done", -float((t[1]["evidence"].get("ci95") or [0])[0]),
                                 -int(t[1]["evidence"].get("trials") or 0), t[0]))
        seen: set[str] = set()
        out = []
        for branch, r in rows:
            if r.get("candidate_id") not in seen:
                seen.add(str(r.get("candidate_id")))
                out.append((branch, r))
        return out

    def borrowed(self, policy: PolicySpec) -> list[Borrowed]:
        """The params recipes mapped onto `policy` (those sharing at least one parameter name), best first."""
        out, keys = [], set()
        for branch, r in self.recipes():
            cand = r.get("candidate") or {}
            if cand.get("kind") != "params" or not isinstance(cand.get("params"), dict):
                continue
            params, mapping = map_params(cand["params"], policy)
            if not mapping["kept"] and not mapping["clipped"]:
                continue
            b = Borrowed(f"{PREFIX}{self.session_id}/{branch}", params, dict(r.get("evidence") or {}), mapping)
            if b.key not in keys:
                keys.add(b.key)
                out.append(b)
        return out

    def view(self, policy: PolicySpec) -> dict[str, Any]:
        """What an agent reads of it (the Claude agent, as quoted data): the notebooks, with each params recipe's
        mapping onto this session's space."""
        mapped = {b.source + "#" + b.key: b for b in self.borrowed(policy)}
        branches = {}
        for branch, nb in sorted(self.notebooks.items()):
            rows = []
            for r in list(nb.get("recipes") or ())[:VIEW_RECIPES]:
                row = dict(r)
                cand = r.get("candidate") or {}
                if cand.get("kind") == "params" and isinstance(cand.get("params"), dict):
                    params, mapping = map_params(cand["params"], policy)
                    row["mapped_params"], row["mapping"] = params, mapping
                rows.append(row)
            branches[branch] = {"borrowed_from": f"{PREFIX}{self.session_id}/{branch}", "task": nb.get("task"),
                                "robot": nb.get("robot"), "recipes": rows,
                                "notes": list(nb.get("notes") or [])[-VIEW_NOTES:]}
        return {"session_id": self.session_id, "task": self.index.get("task"), "robot": self.index.get("robot"),
                "reached_done": self.index.get("reached_done"), "branches": branches,
                "mapped_recipes": len(mapped)}


def map_params(params: dict[str, Any], policy: PolicySpec) -> tuple[dict[str, float], dict[str, Any]]:
    """`params` by name onto `policy`: values clipped into [low, high], names it lacks dropped, its names the
    recipe lacks at their defaults. Returns (canonical params, the mapping)."""
    names = {p.name for p in policy.params}
    kept, clipped, defaulted, out = [], {}, [], {}
    for p in policy.params:
        value = params.get(p.name)
        if not isinstance(value, int | float) or isinstance(value, bool) or value != value:
            defaulted.append(p.name)
            continue
        x = min(max(float(value), p.low), p.high)
        out[p.name] = x
        if x != float(value):
            clipped[p.name] = [float(value), x]
        else:
            kept.append(p.name)
    dropped = sorted(k for k in params if k not in names)
    return canonical_params(out, policy), {"kept": kept, "clipped": clipped, "dropped": dropped,
                                           "defaulted": defaulted}


def first_chunk(b: Borrowed, spec: ExperimentSpec, default: int) -> int:
    """Trials of a borrowed recipe's first evaluation: its successes in the notebook, weighted by TRUST_SAME when
    it was measured on this task and robot (TRUST_OTHER otherwise), within [default, done.window]. A recipe
    confirmed over a whole window on the same cell so reaches /done in two proposals instead of four (each
    round of the 1 -> 4 -> 16 screen otherwise lets every other plausible candidate onto the stations); one
    from another robot gets a few trials, and the posterior drops it after a failure like any other."""
    ev = b.evidence
    same = ev.get("task") == spec.task.name and ev.get("robot") == spec.robot.name
    weighted = round((TRUST_SAME if same else TRUST_OTHER) * float(ev.get("successes") or 0))
    return max(default, min(spec.done.window, weighted))


def describe(mapping: dict[str, Any]) -> str:
    parts = [f"{len(mapping['kept'])} kept"]
    if mapping["clipped"]:
        parts.append("clipped " + ", ".join(f"{k} {a:.3g}->{b:.3g}" for k, (a, b) in mapping["clipped"].items()))
    if mapping["dropped"]:
        parts.append("dropped " + ", ".join(mapping["dropped"]))
    if mapping["defaulted"]:
        parts.append("defaults for " + ", ".join(mapping["defaulted"]))
    return "; ".join(parts)


def memory_from(spec: ExperimentSpec, config: AgentSpec | None = None) -> str | None:
    """The session id `config` (default: the composed agent group) borrows from, or None."""
    value = (config or spec.agent).get("memory_from")
    return str(value) if value else None


def _problem(run_id: str, why: str) -> SpecError:
    return SpecError([Problem(KEY, run_id, why)], "spec or overrides")


@contextmanager
def _quiet_downloads() -> Iterator[None]:
    """No MLflow download progress bar in a session's output while the notebooks are read."""
    name = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    before = os.environ.get(name)
    os.environ[name] = "false"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


@lru_cache(maxsize=8)
def load(uri: str, run_id: str) -> Memory:
    """The notebooks of session run `run_id` in the store `uri`; SpecError naming agent.memory_from if none."""
    from enpire.spec.environment import sqlite_file

    db = sqlite_file(uri)
    if db is not None and not db.is_file():  # MLflow would create an empty store: nothing is created here
        raise _problem(run_id, f"a session run in the store {uri} (no database at {db})")
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise _problem(run_id, f"the id of a session run in the store {uri} (no such run)") from None
    if run.data.tags.get("enpire.kind") != "session":
        raise _problem(run_id, f"the id of a session run (run {run_id} is {run.data.tags.get('enpire.kind')!r})")
    with tempfile.TemporaryDirectory(prefix="enpire-memory-") as tmp, _quiet_downloads():
        try:
            folder = Path(client.download_artifacts(run_id, "notebook", tmp))
            index = json.loads((folder / "index.json").read_text())
        except (MlflowException, OSError, ValueError):
            raise _problem(run_id, f"a session run with a notebook ({INDEX} is missing: the session ended "
                                   "before notebooks were written, or without tracking)") from None
        if not str(index.get("format", "")).startswith(FORMAT.split("/")[0]):
            raise _problem(run_id, f"a notebook of format {FORMAT} (got {index.get('format')!r})")
        notebooks = {}
        for branch, entry in dict(index.get("branches") or {}).items():
            path = folder.parent / str(entry.get("file", ""))
            try:
                notebooks[branch] = json.loads(path.read_text())
            except (OSError, ValueError):
                log.warning("%s: notebook of branch %s unreadable; skipped", KEY, branch)
    return Memory(run_id, index, notebooks)


def check(spec: ExperimentSpec, config: AgentSpec | None = None) -> Memory | None:
    """The memory this agent config borrows from (loaded once), or None; SpecError when it cannot be read."""
    run_id = memory_from(spec, config)
    return None if run_id is None else load(spec.tracking.uri, run_id)


def problems(spec: ExperimentSpec) -> list[Problem]:
    """Preflight: the notebooks every agent of the team borrows from exist."""
    out: list[Problem] = []
    for run_id in sorted({r for r in (memory_from(spec, c) for c in (spec.agent, *spec.team)) if r}):
        try:
            load(spec.tracking.uri, run_id)
        except SpecError as error:
            out += error.problems
    return out


def seeds(spec: ExperimentSpec, config: AgentSpec) -> list[Borrowed]:
    """The recipes this agent config borrows (the best MAX_SEEDS params recipes mapped onto this policy), best
    first; [] without memory_from or for a policy that takes no parameters."""
    memory = check(spec, config)
    if memory is None or spec.policy.kind != "scripted":
        return []
    found = memory.borrowed(spec.policy)[:MAX_SEEDS]
    if not found:
        log.warning("%s=%s: no parameter recipe maps onto %s (parameters %s)", KEY, memory.session_id,
                    spec.policy.name, [p.name for p in spec.policy.params])
    return found


def deal(found: list[Borrowed], spec: ExperimentSpec, config: AgentSpec, index: int) -> list[Borrowed]:
    """Agent `index`'s share of `found`, dealt in turn over the team's members of its kind (the best to the first)."""
    peers = [i for i, c in enumerate(spec.team or (config,)) if c.kind == config.kind] or [index]
    rank = peers.index(index) if index in peers else 0
    mine = [b for i, b in enumerate(found) if i % len(peers) == rank]
    for b in mine:
        log.info("%s: %s-%d evaluates %s first, mapped onto %s: %s", KEY, config.kind, index, b.source,
                 spec.policy.name, describe(b.mapping))
    return mine


def report(spec: ExperimentSpec) -> dict[str, Any] | None:
    """What this session borrowed, for its own notebook index: the source and each recipe's mapping."""
    try:
        memory = check(spec)
    except SpecError:
        return None
    if memory is None:
        return None
    return {"session_id": memory.session_id, "task": memory.index.get("task"), "robot": memory.index.get("robot"),
            "recipes": [{"borrowed_from": b.source, "candidate_id": b.key, "params": b.params, "mapping": b.mapping}
                        for b in memory.borrowed(spec.policy)[:MAX_SEEDS]]}
