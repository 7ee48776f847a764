"""The session journal: an append-only JSON-lines file in the run directory.

MLflow gets an iteration's trials only when the iteration closes (and then from a background
thread), so a `kill -9` mid-iteration would lose every trial finished so far. The journal closes
that gap: every finished trial, every accepted proposal, every closed iteration and every token
/ trainer charge is appended *as it happens*, one `os.write` of the whole line on an O_APPEND
descriptor: once written it is in the kernel's page cache and survives `kill -9` of the
session. The fsync that makes it survive a power cut is a group commit, at most `sync_every_s`
after a line (1 s by default) and at close: a machine that loses power can lose at most that
last second of lines, which a resume then takes from MLflow alone.
A resume (`enpire.track.resume`) reads it back and reconciles it with MLflow, keyed by
`trial_id` and iteration index, so nothing is lost and nothing is counted twice.

Lines (`kind`): `trial` (trial_id, iteration, key, record), `proposal` (an accepted iteration
whose trials are being run), `iteration` (a closed iteration: its IterationSummary document),
`charge` (tokens / trainer_seconds spent), `resumed` (a resume started). Every line carries
`t`: the ledger's wall clock (seconds of session time) at that moment.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enpire.records import SafetyEvent, TrialRecord
from enpire.track.atomic import AppendFile, read_lines

if TYPE_CHECKING:
    from enpire.records import Evaluation, IterationSummary

log = logging.getLogger(__name__)

JOURNAL_NAME = "journal.jsonl"
SYNC_EVERY_S = 1.0  # group commit: the longest a written line waits for its fsync
CHARGED_KEYS = ("tokens", "trainer_seconds")  # trials/robot_seconds come from trial lines, keyed by trial_id


def record_to_doc(record: TrialRecord) -> dict[str, Any]:
    return asdict(record)


def record_from_doc(doc: dict[str, Any]) -> TrialRecord:
    """A TrialRecord from a journal line's record or from a row of MLflow's trials.jsonl."""
    d = dict(doc)
    if "return" in d and "shaping_return" not in d:
        d["shaping_return"] = d.pop("return")
    fields = TrialRecord.__dataclass_fields__
    d = {k: v for k, v in d.items() if k in fields}
    d["safety_events"] = [SafetyEvent(**e) if isinstance(e, dict) else e for e in d.get("safety_events") or []]
    d.setdefault("reason", "")
    return TrialRecord(**d)


class Journal:
    """Appends durable lines to `<run_dir>/journal.jsonl`; `clock` gives the session time of each line."""

    def __init__(self, path: str | Path, clock: Any = None, sync_every_s: float = SYNC_EVERY_S) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.failed = False
        self.proposed: set[int] = {int(d["index"]) for d in self.read() if d.get("kind") == "proposal"}
        self._file = AppendFile(self.path, sync_every_s)

    def _append(self, doc: dict[str, Any]) -> None:
        doc["t"] = round(float(self.clock()), 3) if self.clock is not None else 0.0
        try:
            self._file.append(doc)
        except OSError as error:  # a full disk must not kill the session; resume then relies on MLflow alone
            if not self.failed:
                log.error("journal %s: append failed (%s); crash safety degraded to MLflow alone", self.path,
                          error.strerror or error)
            self.failed = True

    def close(self) -> None:
        """The last fsync (the session's end); appends after it open the file again."""
        try:
            self._file.close()
        except OSError as error:
            log.error("journal %s: final sync failed (%s)", self.path, error.strerror or error)

    def trial(self, ev: Evaluation, record: TrialRecord) -> None:
        if ev.index not in self.proposed:  # an evaluation that reached the scheduler another way (e.g. approved)
            self.proposal(ev)
        self._append({"kind": "trial", "trial_id": record.trial_id, "iteration": ev.index, "key": ev.key,
                      "record": record_to_doc(record)})

    def proposal(self, ev: Evaluation) -> None:
        self.proposed.add(ev.index)
        self._append({"kind": "proposal", "index": ev.index, "agent": ev.agent, "branch": ev.branch,
                      "parent": ev.parent, "hypothesis": ev.hypothesis, "candidate": ev.candidate, "key": ev.key,
                      "trials_wanted": ev.trials_wanted, "borrowed_from": ev.borrowed_from, "tokens": ev.tokens})

    def iteration(self, summary: IterationSummary, raised_best: bool) -> None:
        from enpire.track.records import iteration_document

        self._append({"kind": "iteration", "index": summary.index,
                      "doc": iteration_document(summary, raised_best)})

    def charge(self, key: str, amount: float) -> None:
        if key in CHARGED_KEYS and amount:
            self._append({"kind": "charge", "key": key, "amount": float(amount)})

    def resumed(self, n: int) -> None:
        self._append({"kind": "resumed", "n": n})

    def read(self) -> list[dict[str, Any]]:
        return read_lines(self.path)
