"""The MLflow writer's batches: what a user finds in MLflow, and what a crash mid-batch leaves.

The writer writes whatever is queued in one transaction (enpire.track.batch); these tests hold it to
what the run-by-run client path leaves, on a real SQLite store, and kill a real process mid-burst.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mlflow.tracking import MlflowClient

from enpire.records import Evaluation, IterationSummary, SafetyEvent, TrialRecord
from enpire.spec import load_spec
from enpire.spec.model import ExperimentSpec
from enpire.track import writer as writer_mod
from enpire.track.create_once import WRITE_TAG
from enpire.track.journal import Journal
from enpire.track.resume import MlflowState, Reconciled, summary_from_doc
from enpire.track.writer import Tracker

REPO = Path(__file__).resolve().parents[2]
DECISIONS = ("discard", "keep", "crash", "rejected", "discard", "unsafe")


@pytest.fixture(autouse=True)
def _quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("mlflow-template")
    MlflowClient(tracking_uri=f"sqlite:///{folder}/mlflow.db").search_experiments()  # migrated once
    return folder / "mlflow.db"


def spec_in(root: Path, template: Path, *overrides: str) -> ExperimentSpec:
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(template, root / "mlflow.db")
    return load_spec(["task=drawer", "executor=inline", "fleet=1", f"tracking.uri=sqlite:///{root}/mlflow.db",
                      f"tracking.artifact_root={root}/artifacts", "tracking.flush_every_s=60", *overrides])


def burst(root: Path, n: int) -> list[tuple[IterationSummary, list[TrialRecord], bool]]:
    """n closed iterations as the loop hands them over: varied decisions, candidates, trials and files."""
    (root / "replays").mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        decision = DECISIONS[i % len(DECISIONS)]
        trials = []
        for k in range(0 if decision == "rejected" else 1 + i % 3):
            ok = (i + k) % 2 == 0
            replay = root / "replays" / f"i{i}-t{k}.npz"
            replay.write_bytes(b"replay")  # shown trials' replays are queued for rendering, the others deleted
            video = None
            if k == 1:
                video = root / "replays" / f"i{i}-t{k}.mp4"
                video.write_bytes(b"mp4 bytes of " + video.name.encode())
            trials.append(TrialRecord(
                trial_id=f"i{i}-t{k}", iteration=i, station=k % 2, seed=100 * i + k,
                outcome="success" if ok else ("unsafe" if decision == "unsafe" else "failure"), attempts=1 + k,
                success_attempt=1 if ok else None, pass_at_1=ok, pass_at_k=ok or k == 2, robot_seconds=1.25 * (k + 1),
                wall_s=0.5, steps=50 + k, clamps=k,
                safety_events=[SafetyEvent("workspace", 7, 0.31, 0.3, "ee left the box")] if decision == "unsafe"
                else [], final_state={"opening": 0.01 * (i + k), "held_s": None if k else 0.5},
                reason=f"opening {0.01 * (i + k):.3f} < 0.15", video=str(video) if video else None,
                replay=str(replay)))
        rate = sum(r.pass_at_1 for r in trials) / len(trials) if trials else 0.0
        candidate: dict[str, Any] = ({"kind": "code", "source": f"def act(obs):\n    return {i}\n"} if i % 4 == 3
                                     else {"kind": "params", "params": {"pull_distance": 0.1 + i / 100, "speed": i}})
        summary = IterationSummary(
            index=i, agent=f"a-{i % 2}", branch=f"a-{i % 2}", parent=None if i < 2 else i - 2,
            hypothesis=f"hypothesis {i}: pull further", candidate=candidate, candidate_id=f"c{i // 2}",
            decision=decision, success_rate=rate, pass_at_1=rate, pass_at_k=rate, trials=len(trials),
            safety_stops=sum(bool(r.safety_events) for r in trials), robot_seconds=sum(r.robot_seconds for r in trials),
            tokens=10 * i, borrowed_from="a-1" if i == 4 else None, reason=f"because {i}",
            candidate_trials=len(trials) * (1 + i % 2), candidate_success_rate=rate)
        out.append((summary, trials, decision == "keep"))
    return out


def log_burst(tracker: Tracker, root: Path, n: int, journal: Journal | None = None) -> None:
    """Queue n iterations the way the loop does (journal first), then close the session run."""
    for summary, trials, raised in burst(root, n):
        if journal is not None:
            ev = Evaluation(index=summary.index, agent=summary.agent, branch=summary.branch, parent=summary.parent,
                            hypothesis=summary.hypothesis, candidate=summary.candidate, key=summary.candidate_id,
                            trials_wanted=len(trials))
            journal.proposal(ev)
            for record in trials:
                journal.trial(ev, record)
            journal.iteration(summary, raised)
        transcript = [{"role": "user", "content": f"state {summary.index}"}] if summary.index % 3 == 0 else None
        tracker.log_iteration(summary, trials, raised, transcript=transcript, done=summary.index == 7,
                              started=1_700_000_000.0 + summary.index, ended=1_700_000_000.5 + summary.index)
        tracker.log_session_metrics({"ledger.trials": float(summary.index), "best_success_rate": summary.success_rate,
                                     "ledger.tokens": float("nan") if summary.index == 5 else 1.0},
                                    summary.index + 1)


def content(client: MlflowClient, session_id: str, root: Path) -> dict[str, Any]:
    """Everything a user reads back of a session: runs, their info, tags, params, metric histories, artifacts."""
    names = {session_id: "<session>", str(root): "<root>"}

    def norm(value: Any) -> Any:
        text = json.dumps(value, sort_keys=True, default=str)
        for old, new in names.items():
            text = text.replace(old, new)
        return json.loads(text)

    def files(run_id: str, path: str = "") -> dict[str, str]:
        out = {}
        for f in client.list_artifacts(run_id, path):
            if f.is_dir:
                out.update(files(run_id, f.path))
            else:
                out[f.path] = Path(client.download_artifacts(run_id, f.path, str(root / "dl" / run_id))).read_text()
        return out

    def run_view(run: Any) -> dict[str, Any]:
        history = {k: sorted((m.value, m.step, m.timestamp) for m in client.get_metric_history(run.info.run_id, k))
                   for k in run.data.metrics}
        return {"status": run.info.status, "name": run.info.run_name, "start": run.info.start_time,
                "end": run.info.end_time, "user": run.info.user_id, "stage": run.info.lifecycle_stage,
                # the write id (enpire.track.create_once) is unique by design: present, its value not compared
                "tags": {k: "<write id>" if k == WRITE_TAG else v for k, v in run.data.tags.items()},
                "params": run.data.params, "metrics": run.data.metrics, "history": history,
                "files": files(run.info.run_id)}

    session = client.get_run(session_id)
    children = client.search_runs([session.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{session_id}'", max_results=1000)
    for child in children:
        names[child.info.run_id] = f"<iter {child.data.tags['enpire.iteration']}>"
    kept = client.search_runs([session.info.experiment_id], "tags.`enpire.decision` = 'keep'",
                              order_by=["metrics.success_rate DESC"])
    return norm({"session": run_view(session),
                 "iterations": {c.data.tags["enpire.iteration"]: run_view(c) for c in children},
                 "kept": [k.info.run_id for k in kept]})


def differ(a: dict[str, Any], b: dict[str, Any], iteration: str | None = None) -> dict[str, Any]:
    """What differs between two content() views of one run, key by key."""
    x, y = (a["session"], b["session"]) if iteration is None else (a["iterations"][iteration],
                                                                   b["iterations"][iteration])
    out: dict[str, Any] = {}
    for part in x:
        if isinstance(x[part], dict):
            out.update({f"{part}.{k}": (x[part].get(k), y[part].get(k)) for k in set(x[part]) | set(y[part])
                        if x[part].get(k) != y[part].get(k)})
        elif x[part] != y[part]:
            out[part] = (x[part], y[part])
    return out


@pytest.fixture
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Wall-clock stamps the writer takes, made the same for two sessions logged one after the other."""
    def install() -> None:
        ticks = itertools.count(1_700_000_100_000, 7)
        monkeypatch.setattr(writer_mod, "_now_ms", lambda: next(ticks))
        monkeypatch.setattr(writer_mod, "wall_ms", lambda m: None if m is None else int(m * 1000))
    return install


@pytest.mark.slow  # 6-12 s: with the slow tests in CI, keeping `make test` under ten minutes
def test_a_burst_written_in_one_transaction_reads_back_exactly_as_one_run_at_a_time(
        template: Path, tmp_path: Path, fixed_clock: Any) -> None:
    n = 14
    seen = {}
    for mode in ("one_by_one", "batched"):
        root = tmp_path / mode
        spec = spec_in(root, template, "video.enabled=true", "video.render=on_demand", "session.name=burst")
        fixed_clock()
        tracker = Tracker(spec, None, None, {"enpire.run_dir": str(root)})
        if mode == "one_by_one":
            tracker.batch = None  # the client, run by run: the reference
        else:
            assert tracker.batch is not None, "a SQLite store is written in batches"
        log_burst(tracker, root, n)
        tracker.close({"iterations": float(n)}, n, {"enpire.stopped_by": "budget"}, [], "summary\n", "FINISHED")
        seen[mode] = content(tracker.client, tracker.run_id, root)
    one, batched = seen["one_by_one"], seen["batched"]
    for view in (one, batched):  # the spec's fingerprint covers its store's path, the one thing meant to differ
        view["session"]["tags"].pop("enpire.spec_sha256")
    assert sorted(batched["iterations"]) == sorted(str(i) for i in range(n))
    assert batched["iterations"]["3"]["files"].keys() == {"candidate.json", "candidate.py", "iteration.json",
                                                          "trials.jsonl", "trials_table.json", "agent/transcript.json"}
    assert "videos/i7-t1.mp4" in batched["iterations"]["7"]["files"]  # a trial's own video is copied in
    assert batched["iterations"]["2"]["status"] == "FAILED" and batched["iterations"]["0"]["status"] == "FINISHED"
    assert batched["iterations"]["1"]["tags"]["enpire.videos"] == "pending"  # a kept iteration shows videos
    assert len(batched["session"]["history"]["trial/success"]) == sum(len(t) for _, t, _ in burst(tmp_path / "x", n))
    for i in one["iterations"]:
        assert batched["iterations"][i] == one["iterations"][i], f"iteration {i}: {differ(batched, one, i)}"
    assert batched["session"] == one["session"], differ(batched, one)
    assert batched == one


def test_a_writer_that_cannot_batch_still_writes_every_record(template: Path, tmp_path: Path) -> None:
    """A store that refuses the batch (here: one metric row the session run already has, which MLflow's
    own path skips) gets the same records run by run, nothing lost."""
    spec = spec_in(tmp_path, template, "video.enabled=false")
    tracker = Tracker(spec, None, None, {})
    tracker.client.log_metric(tracker.run_id, "ledger.trials", 0.0, timestamp=1_700_000_000_000, step=1)
    rows = [("ledger.trials", 0.0, 1_700_000_000_000, 1)]
    tracker._queue.put(writer_mod._MetricRows(tracker, tracker.run_id, rows))
    log_burst(tracker, tmp_path, 5)
    tracker.close({}, 5, {}, [], "summary\n", "FINISHED")
    runs = tracker.client.search_runs([tracker.experiment_id], "tags.`enpire.kind` = 'iteration'")
    assert sorted(int(r.data.tags["enpire.iteration"]) for r in runs) == list(range(5))
    assert all(r.info.status in ("FINISHED", "FAILED") for r in runs)
    assert tracker._errors == []


def test_a_run_opened_for_training_is_the_run_its_iteration_fills_within_a_batched_burst(
        template: Path, tmp_path: Path) -> None:
    spec = spec_in(tmp_path, template, "video.enabled=false")
    tracker = Tracker(spec, None, None, {})
    opened = tracker.open_iteration_run(4)  # bc: the trainer logs into it before the iteration closes
    log_burst(tracker, tmp_path, 6)
    tracker.close({}, 6, {}, [], "summary\n", "FINISHED")
    runs = {int(r.data.tags["enpire.iteration"]): r for r in tracker.client.search_runs(
        [tracker.experiment_id], "tags.`enpire.kind` = 'iteration'")}
    assert sorted(runs) == list(range(6)) and runs[4].info.run_id == opened
    assert runs[4].info.status == "FINISHED" and runs[4].data.tags["enpire.hypothesis"] == "hypothesis 4: pull further"
    assert runs[4].data.metrics.keys() == runs[1].data.metrics.keys()
    assert {f.path for f in tracker.client.list_artifacts(opened)} == \
        {f.path for f in tracker.client.list_artifacts(runs[1].info.run_id)}


CRASH = """
import json, os, signal, sys, threading
from pathlib import Path
from sqlalchemy import event
from enpire.spec import load_spec
from enpire.track import writer as writer_mod
from enpire.track.journal import Journal
from tests.track.test_writer_batch import log_burst

root, overrides, kill_at = Path(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
writer_mod.BATCH_MAX = 4  # several transactions for one burst: the kill lands after some are in
spec = load_spec(overrides)
journal = Journal(root / "journal.jsonl")
tracker = writer_mod.Tracker(spec, None, None, {"enpire.journal": str(journal.path)})
(root / "session_id").write_text(tracker.run_id)
commits = []

def on_commit(connection):  # the writer thread's k-th commit, before SQLite commits it
    if threading.current_thread().name == "enpire-mlflow":
        commits.append(1)
        if len(commits) == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

event.listen(tracker.client._tracking_client.store.engine, "commit", on_commit)
log_burst(tracker, root, int(sys.argv[4]), journal)
tracker.close({}, 0, {}, [], "summary\\n", "FINISHED")
"""


@pytest.mark.slow  # 6-12 s: with the slow tests in CI, keeping `make test` under ten minutes
@pytest.mark.parametrize("kill_at", [1, 3])
def test_a_process_killed_mid_burst_loses_no_iteration_its_journal_has(template: Path, tmp_path: Path,
                                                                        kill_at: int) -> None:
    n = 14
    spec = spec_in(tmp_path, template, "video.enabled=false")
    overrides = list(spec.overrides)
    done = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path), json.dumps(overrides), str(kill_at), str(n)],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    with sqlite3.connect(tmp_path / "mlflow.db") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    session_id = (tmp_path / "session_id").read_text()
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    journal = Journal(tmp_path / "journal.jsonl")
    lines = journal.read()
    assert sorted(d["index"] for d in lines if d["kind"] == "iteration") == list(range(n))  # all committed there

    ml = MlflowState(client, session_id)  # what a resume finds
    assert ml.killed == []  # a batch is all in or all out: no half-written run to kill
    committed = 4 * (kill_at - 1)  # whole transactions of BATCH_MAX iterations before the kill
    assert sorted(ml.iterations) == list(range(committed))
    for index in ml.iterations:  # what is in MLflow is whole
        assert [r["trial_id"] for r in ml.trials[index]] == [f"i{index}-t{k}" for k in range(len(ml.trials[index]))]
    rec = Reconciled(ml, lines)
    assert rec.unlogged == list(range(committed, n))

    tracker = Tracker(spec, None, None, {}, resume_run_id=session_id)  # resume writes what MLflow lacks
    for index in rec.unlogged:
        tracker.log_iteration(summary_from_doc(rec.closed[index]), rec.trials_of(index),
                              bool(rec.closed[index].get("raised_best")))
    tracker.close({}, n, {}, [], "summary\n", "FINISHED")
    runs = client.search_runs([client.get_run(session_id).info.experiment_id],
                              f"tags.mlflow.parentRunId = '{session_id}'", max_results=1000)
    assert sorted(int(r.data.tags["enpire.iteration"]) for r in runs) == list(range(n))  # each exactly once
    final = MlflowState(client, session_id)
    journal_trials = sorted(d["trial_id"] for d in lines if d["kind"] == "trial")
    assert sorted(r["trial_id"] for rows in final.trials.values() for r in rows) == journal_trials
