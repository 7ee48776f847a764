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
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enpire.agent.api import IterationSummary
from enpire.agent.tree import Evaluation
from enpire.track.ballast import Ballast
from enpire.track.journal import JOURNAL_NAME, Journal, record_from_doc
from enpire.world.api import TrialRecord

if TYPE_CHECKING:
    from enpire.loop import Session
    from enpire.track.writer import Tracker

log = logging.getLogger(__name__)

ITERATION_KILLED = "iteration_killed"


def journal_path(run_dir: str) -> Path:
    return Path(run_dir) / JOURNAL_NAME


def summary_from_doc(doc: dict[str, Any]) -> IterationSummary:
    fields = IterationSummary.__dataclass_fields__
    d = {k: v for k, v in doc.items() if k in fields}
    d["failures"] = tuple(d.get("failures") or ())
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


def restore(s: Session, ml: MlflowState, rec: Reconciled) -> None:
    """Load the reconciled state into a fresh Session (before its loop starts)."""
    ledger, tree = s.ledger, s.tree
    ledger.clock = time.monotonic() - rec.wall  # wall clock already spent stays spent
    for record, key in rec.records.values():
        ledger.charge("trials", 1)
        ledger.charge("robot_seconds", record.robot_seconds)
        s.crashes += record.outcome == "crash"
        if key and tree.add_record(key, record) and s.done_at is None:
            s.done_at = {"time_to_done_s": rec.wall, "robot_s_to_done": ledger.used["robot_seconds"],
                         "tokens_to_done": rec.tokens}
    indices = set(rec.closed) | set(rec.proposals)
    ledger.charge("iterations", len(indices))
    ledger.charge("tokens", rec.tokens)
    ledger.charge("trainer_seconds", rec.trainer_seconds)
    members = {m.name: m for m in s.team.members}
    for index in sorted(rec.closed):
        doc = rec.closed[index]
        summary = summary_from_doc(doc)
        tree._add(summary, summary.candidate_id)
        if summary.candidate_id:
            s.scheduler.seen[summary.candidate_id] = s.scheduler.seen.get(summary.candidate_id, -1) + 1
        if doc.get("raised_best"):
            tree.raised_best.add(index)
            tree.best_rate = max(tree.best_rate, summary.candidate_success_rate)
        member = members.get(summary.agent)
        if member is not None:
            member.agent.observe(summary)  # agents rebuild their memory the way they built it the first time
    for index in sorted(set(rec.proposals) - set(rec.closed)):
        ev = _open_evaluation(rec.proposals[index], rec.trials_of(index))
        s.scheduler.add(ev)
        member = members.get(ev.agent) or s.team.members[0]
        ev.agent = member.name
        member.outstanding += 1
    s.next_index = max(indices, default=-1) + 1
    log.info("resumed: %d iterations closed, %d open, %d trials, %d duplicates skipped, %d runs killed",
             len(rec.closed), len(set(rec.proposals) - set(rec.closed)), len(rec.records), rec.duplicates,
             len(ml.killed))


def open_tracking(s: Session) -> Tracker:
    """The session's Tracker and journal: a new session run, or (spec.resume) the reopened one with
    its state restored into `s`."""
    from enpire.track.writer import Tracker

    spec, ctx = s.spec, s.context
    name = spec.session_name or Path(ctx.run_dir).name
    if spec.resume is None:
        path = journal_path(ctx.run_dir)
        tracker = Tracker(spec, name, ctx.sweep_id, {"enpire.run_dir": ctx.run_dir, "enpire.journal": str(path)})
        s.journal = Journal(path, s.ledger.elapsed)
    else:
        tracker = Tracker(spec, name, ctx.sweep_id, {}, resume_run_id=spec.resume)
        ml = MlflowState(tracker.client, spec.resume)
        tags = ml.run.data.tags
        path = Path(tags.get("enpire.journal") or journal_path(tags.get("enpire.run_dir", ctx.run_dir)))
        journal = Journal(path, s.ledger.elapsed)
        rec = Reconciled(ml, journal.read())
        restore(s, ml, rec)
        for index in rec.unlogged:  # closed before the kill, never reached MLflow
            tracker.log_iteration(summary_from_doc(rec.closed[index]), rec.trials_of(index),
                                  bool(rec.closed[index].get("raised_best")))
        n = rec.resumes + 1
        tracker.client.set_tag(tracker.run_id, "enpire.resumed", str(n))
        tracker.client.set_tag(tracker.run_id, f"enpire.resume_{n}.run_dir", ctx.run_dir)
        tracker.client.set_tag(tracker.run_id, f"enpire.resume_{n}.recovered_from_journal", str(len(rec.unlogged)))
        tracker.client.set_tag(tracker.run_id, f"enpire.resume_{n}.killed_runs", str(len(ml.killed)))
        s.journal = journal
        journal.resumed(n)
    s.ledger.on_charge = s.journal.charge  # after the restore: restored charges are not journalled twice
    s.ballast = Ballast(spec.tracking.uri, tracker.run_id)  # room to end the run FAILED if the disk fills
    return tracker
