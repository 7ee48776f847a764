"""`resume=SESSION_ID`: rebuild a session's state from MLflow and its journal, then keep going.

Decisions (docs/reliability.md):
- The resumed session reopens the SAME session run (status back to RUNNING, tag
  `enpire.resumed=<n>`), continues iteration numbering, and appends to the same journal
  (`enpire.journal` tag; `<enpire.run_dir>/journal.jsonl` for older runs).
- Reconciliation is keyed: trials by `trial_id`, iterations by index. An iteration closed in
  the journal but not FINISHED/FAILED in MLflow is written to MLflow now; an iteration child
  run left RUNNING by a crash is closed as KILLED and retagged `enpire.kind=iteration_killed`
  (so readers that count `enpire.kind=iteration` see every iteration once).
- The ledger is rebuilt by charging every recorded trial once (trials, robot_seconds), every
  iteration index once, tokens / trainer_seconds as the larger of the journal's charges and
  the session run's last ledger metrics, and the wall clock already spent. Nothing is refunded.
- Proposals accepted but not closed become open evaluations again with the trials they
  already have; trials in flight at the kill were never recorded and are run again.

`open_tracking` hands the loop all of it as one value (Restored, on the returned Tracking); the
loop applies it to its own state (enpire.loop.Session._restore) before it starts.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enpire.records import Evaluation, IterationSummary, TrialRecord
from enpire.track.ballast import Ballast
from enpire.track.deferred import DeferredTracking, defer_tracking
from enpire.track.journal import JOURNAL_NAME, Journal, record_from_doc
from enpire.track.observers import Tracking

if TYPE_CHECKING:
    from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)

ITERATION_KILLED = "iteration_killed"


def journal_path(run_dir: str) -> Path:
    return Path(run_dir) / JOURNAL_NAME


def summary_from_doc(doc: dict[str, Any]) -> IterationSummary:
    fields = IterationSummary.__dataclass_fields__
    d = {k: v for k, v in doc.items() if k in fields}
    d["failures"] = tuple(d.get("failures") or ())
    d["failure_histogram"] = tuple(d.get("failure_histogram") or ())
    return IterationSummary(**d)


def _download_json(client: Any, run_id: str, path: str) -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = client.download_artifacts(run_id, path, tmp)
        except Exception:  # absent: the run was killed before its artifacts were logged
            return None
        text = Path(local).read_text()
    if path.endswith(".jsonl"):
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return json.loads(text)


class MlflowState:
    """What MLflow holds of a session: closed iterations, their trial rows, the last ledger metrics."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client, self.run_id = client, run_id
        self.run = client.get_run(run_id)
        self.iterations: dict[int, dict[str, Any]] = {}
        self.trials: dict[int, list[dict[str, Any]]] = {}
        self.killed: list[str] = []
        experiment = self.run.info.experiment_id
        children = client.search_runs([experiment], filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
                                      max_results=50000)
        for child in sorted(children, key=lambda r: r.info.start_time or 0):
            kind = child.data.tags.get("enpire.kind")
            if kind != "iteration":
                continue
            if child.info.status in ("RUNNING", "SCHEDULED"):
                self._kill(child.info.run_id)
                continue
            doc = _download_json(client, child.info.run_id, "iteration.json")
            if not isinstance(doc, dict) or int(doc["index"]) in self.iterations:
                continue
            self.iterations[int(doc["index"])] = doc
            self.trials[int(doc["index"])] = _download_json(client, child.info.run_id, "trials.jsonl") or []

    def _kill(self, run_id: str) -> None:
        """A child run left RUNNING by a crash: closed as KILLED; its iteration is rewritten from the journal."""
        self.client.set_tag(run_id, "enpire.kind", ITERATION_KILLED)
        self.client.set_terminated(run_id, "KILLED")
        self.killed.append(run_id)
        log.warning("iteration run %s was left RUNNING by a crash: closed as KILLED", run_id)

    def metric(self, *names: str) -> float:
        metrics = self.run.data.metrics
        return max((float(metrics[n]) for n in names if n in metrics), default=0.0)


class Reconciled:
    """Journal + MLflow, keyed by trial_id and iteration index."""

    def __init__(self, ml: MlflowState, lines: list[dict[str, Any]]) -> None:
        self.closed: dict[int, dict[str, Any]] = dict(ml.iterations)
        self.proposals: dict[int, dict[str, Any]] = {}
        self.records: dict[str, tuple[TrialRecord, str]] = {}  # trial_id -> (record, candidate key), finish order
        self.duplicates = 0
        tokens = trainer = wall = 0.0
        resumes = 0
        for line in lines:
            kind = line.get("kind")
            wall = max(wall, float(line.get("t") or 0.0))
            if kind == "trial":
                self._add_record(record_from_doc(line["record"]), line["key"])
            elif kind == "proposal":
                self.proposals.setdefault(int(line["index"]), line)
            elif kind == "iteration":
                self.closed.setdefault(int(line["index"]), line["doc"])
            elif kind == "charge":
                tokens += line["amount"] if line["key"] == "tokens" else 0.0
                trainer += line["amount"] if line["key"] == "trainer_seconds" else 0.0
            elif kind == "resumed":
                resumes = max(resumes, int(line["n"]))
        self.unlogged = sorted(set(self.closed) - set(ml.iterations))
        for index in sorted(ml.trials):  # rows MLflow has that the journal lost (e.g. no journal at all)
            for row in ml.trials[index]:
                self._add_record(record_from_doc(row), self.closed[index].get("candidate_id", ""), journal=False)
        iteration_tokens = sum(int(d.get("tokens") or 0) for d in self.closed.values()) + sum(
            int(p.get("tokens") or 0) for i, p in self.proposals.items() if i not in self.closed)
        self.tokens = max(tokens, iteration_tokens, ml.metric("tokens", "ledger.tokens"))
        self.trainer_seconds = max(trainer, ml.metric("trainer_seconds", "ledger.trainer_seconds"))
        self.wall = max(wall, ml.metric("ledger.wall_clock_s"))
        self.resumes = max(resumes, int(ml.run.data.tags.get("enpire.resumed", "0") or 0))

    def _add_record(self, record: TrialRecord, key: str, journal: bool = True) -> None:
        if record.trial_id in self.records:
            self.duplicates += journal  # a journal line twice; MLflow rows repeat journal lines by design
            return
        self.records[record.trial_id] = (record, key)

    def trials_of(self, index: int) -> list[TrialRecord]:
        return [r for r, _ in self.records.values() if r.iteration == index]


def _open_evaluation(p: dict[str, Any], records: list[TrialRecord]) -> Evaluation:
    """An accepted proposal not closed at the kill, with the trials it has; trial ids stay unique
    (numbering resumes after the highest k; holes left by trials in flight are re-run under new ids)."""
    ks = [int(r.trial_id.rsplit("-t", 1)[1]) for r in records]
    dispatched = max(ks) + 1 if ks else 0
    return Evaluation(index=int(p["index"]), agent=p["agent"], branch=p["branch"], parent=p.get("parent"),
                      hypothesis=p["hypothesis"], candidate=p["candidate"], key=p["key"],
                      trials_wanted=int(p["trials_wanted"]) + dispatched - len(records),
                      borrowed_from=p.get("borrowed_from"), tokens=int(p.get("tokens") or 0),
                      dispatched=dispatched, records=list(records))


@dataclass(frozen=True)
class Restored:
    """A killed session's state, reconciled: what the loop applies to its fresh state before it starts
    (enpire.loop.Session._restore). Trials are charged once each, in the order they finished."""

    wall_s: float  # session wall clock already spent (it stays spent)
    trials: tuple[tuple[TrialRecord, str], ...]  # (record, candidate key) of every recorded trial
    iterations: int  # iteration indices already charged (closed and open)
    tokens: float
    trainer_seconds: float
    closed: tuple[tuple[IterationSummary, bool], ...]  # closed iterations in index order, with raised_best
    open: tuple[Evaluation, ...]  # accepted proposals not closed, with the trials they already have
    next_index: int


def restored(ml: MlflowState, rec: Reconciled) -> Restored:
    """The reconciled journal + MLflow state as a value for the loop."""
    indices = set(rec.closed) | set(rec.proposals)
    closed = tuple((summary_from_doc(rec.closed[i]), bool(rec.closed[i].get("raised_best")))
                   for i in sorted(rec.closed))
    still_open = tuple(_open_evaluation(rec.proposals[i], rec.trials_of(i))
                       for i in sorted(set(rec.proposals) - set(rec.closed)))
    log.info("resumed: %d iterations closed, %d open, %d trials, %d duplicates skipped, %d runs killed",
             len(closed), len(still_open), len(rec.records), rec.duplicates, len(ml.killed))
    return Restored(wall_s=rec.wall, trials=tuple(rec.records.values()), iterations=len(indices), tokens=rec.tokens,
                    trainer_seconds=rec.trainer_seconds, closed=closed, open=still_open,
                    next_index=max(indices, default=-1) + 1)


def begin_tracking(spec: ExperimentSpec, ctx: Any, clock: Callable[[], float],
                   launched_ms: int | None = None) -> Tracking | DeferredTracking:
    """The session's tracking as the loop starts: a new session's journal at once and its MLflow run opening
    on a thread (enpire.track.deferred), or, for a resume or a session whose proposals wait for approval,
    `open_tracking` before anything runs. `launched_ms`: epoch ms of the launch (the session run's start)."""
    if not defer_tracking(spec):
        return open_tracking(spec, ctx, clock)
    journal = Journal(journal_path(ctx.run_dir), clock)
    return DeferredTracking(spec, journal, lambda j: new_session_run(spec, ctx, j, launched_ms))


def new_session_run(spec: ExperimentSpec, ctx: Any, journal: Journal, launched_ms: int | None = None) -> Tracking:
    """A new session run beside `journal` (its path is tagged, for resume)."""
    from enpire.track.writer import Tracker

    name = spec.session_name or Path(ctx.run_dir).name
    tags = {"enpire.run_dir": ctx.run_dir, "enpire.journal": str(journal.path)}
    tracker = Tracker(spec, name, ctx.sweep_id, tags, started_ms=launched_ms)
    return Tracking(tracker, journal, Ballast(spec.tracking.uri, tracker.run_id))


def open_tracking(spec: ExperimentSpec, ctx: Any, clock: Callable[[], float]) -> Tracking:
    """The session's Tracker and journal: a new session run, or (spec.resume) the reopened one with the state
    to restore. `ctx`: the SessionContext (run_dir, sweep_id); `clock`: the session clock journal lines carry."""
    from enpire.track.writer import Tracker

    if spec.resume is None:
        return new_session_run(spec, ctx, Journal(journal_path(ctx.run_dir), clock))
    name = spec.session_name or Path(ctx.run_dir).name
    tracker = Tracker(spec, name, ctx.sweep_id, {}, resume_run_id=spec.resume)
    ml = MlflowState(tracker.client, spec.resume)
    tags = ml.run.data.tags
    path = Path(tags.get("enpire.journal") or journal_path(tags.get("enpire.run_dir", ctx.run_dir)))
    journal = Journal(path, clock)
    rec = Reconciled(ml, journal.read())
    state = restored(ml, rec)
    for index in rec.unlogged:  # closed before the kill, never reached MLflow
        tracker.log_iteration(summary_from_doc(rec.closed[index]), rec.trials_of(index),
                              bool(rec.closed[index].get("raised_best")))
    n = rec.resumes + 1
    tracker.client.set_tag(tracker.run_id, "enpire.resumed", str(n))
    tracker.client.set_tag(tracker.run_id, f"enpire.resume_{n}.run_dir", ctx.run_dir)
    tracker.client.set_tag(tracker.run_id, f"enpire.resume_{n}.recovered_from_journal", str(len(rec.unlogged)))
    tracker.client.set_tag(tracker.run_id, f"enpire.resume_{n}.killed_runs", str(len(ml.killed)))
    # the ballast: room to end the run FAILED if the disk fills
    return Tracking(tracker, journal, Ballast(spec.tracking.uri, tracker.run_id), restored=state, resumes=n)
