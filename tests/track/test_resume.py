"""resume=SESSION_ID in-process: a session that dies mid-iteration continues from MLflow + its journal."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import queue
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from mlflow.tracking import MlflowClient

from enpire import CONFIG_DIR, PROJECT_ROOT
from enpire.spec import ExperimentSpec, fingerprint, load_spec
from enpire.spec.errors import SpecError
from enpire.track.atomic import append_line_durable, read_lines, write_text_atomic
from enpire.track.journal import Journal
from enpire.track.resume_spec import resume_spec
from enpire.track.writer import Tracker
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]


class Killed(BaseException):
    """Stands for SIGKILL in-process: not an Exception, so the session cannot record or summarise it."""


def session_rows(uri: str, session_id: str) -> tuple[list[dict], list[dict], dict]:
    """(trial rows of every live iteration run, iteration documents, session metrics) read back from MLflow."""
    client = MlflowClient(tracking_uri=uri)
    session = client.get_run(session_id)
    children = client.search_runs([session.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{session_id}'")
    rows, docs = [], []
    for child in children:
        assert child.info.status != "RUNNING", child.info.run_id
        if child.data.tags["enpire.kind"] != "iteration":
            continue
        folder = Path(client.download_artifacts(child.info.run_id, "", str(Path(uri[10:]).parent / child.info.run_id)))
        docs.append(json.loads((folder / "iteration.json").read_text()))
        rows += [json.loads(x) for x in (folder / "trials.jsonl").read_text().splitlines() if x.strip()]
    return rows, docs, session.data.metrics


def kill_after_trials(monkeypatch: pytest.MonkeyPatch, n: int) -> list[str]:
    """Make the session die right after the n-th trial is journalled (mid-iteration).

    Like SIGKILL, the MLflow writer thread dies too: writes still queued are lost.
    """
    seen: list[str] = []
    trackers: list[Tracker] = []
    original, init = Journal.trial, Tracker.__init__

    def tracker_init(self: Tracker, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        init(self, *args, **kwargs)
        trackers.append(self)

    def trial(self: Journal, ev, record) -> None:  # type: ignore[no-untyped-def]
        original(self, ev, record)
        seen.append(record.trial_id)
        if len(seen) == n:
            for tracker in trackers:
                tracker._queue = queue.Queue()  # pending writes die with the process
                tracker._stop.set()
                tracker._thread.join()
            raise Killed
    monkeypatch.setattr(Journal, "trial", trial)
    monkeypatch.setattr(Tracker, "__init__", tracker_init)
    return seen


@pytest.mark.parametrize("determinism", ["strict", "fast"])
def test_a_session_killed_mid_iteration_resumes_without_losing_or_repeating_a_trial(
        store: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, determinism: str) -> None:
    # flush_every_s=60: nothing reaches MLflow before the kill, so the closed iteration 0 must come from the journal
    spec = spec_of(*store, "budget=smoke", "budget.iterations=3", "budget.trials=9", "tracking.flush_every_s=60",
                   f"determinism={determinism}")
    agent = ScriptedAgent([params_proposal(spec, trials=3), params_proposal(spec, trials=3, pull_distance=0.2)],
                          tokens=100)
    seen = kill_after_trials(monkeypatch, 4)  # iteration 0 closed (3 trials), iteration 1 has 1 of 3
    with pytest.raises(Killed):
        run(spec, tmp_path / "first", agents=[agent])
    monkeypatch.undo()
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    session_id = client.search_runs([client.get_experiment_by_name(spec.experiment_name).experiment_id])[0].info.run_id
    assert client.get_run(session_id).info.status == "RUNNING"  # what a kill leaves behind
    experiment = client.get_run(session_id).info.experiment_id
    torn = client.create_run(experiment, tags={"mlflow.parentRunId": session_id, "enpire.kind": "iteration"})
    # ^ an iteration run a kill interrupted mid-write (no artifacts, still RUNNING)

    before_kill = max(float(json.loads(line).get("t") or 0.0)  # session seconds of the last line before the kill
                      for line in (tmp_path / "first" / "journal.jsonl").read_text().splitlines() if line.strip())
    resumed = resume_spec(dataclasses.replace(spec_of(*store, f"resume={session_id}"), overrides=()))
    assert resumed.resume == session_id and resumed.budget.trials == 9  # the original spec, not today's default
    agent2 = ScriptedAgent([params_proposal(spec, trials=3, pull_distance=0.21)], tokens=100)
    code, summary, _ = run(resumed, tmp_path / "second", agents=[agent2])
    assert code == 0 and summary["session_id"] == session_id
    # the wall clock of both segments: what the journal had at the kill plus at least this segment's loop
    assert float(summary["wall_s"]) >= before_kill + float(summary["loop_wall_s"])
    rows, docs, metrics = session_rows(spec.tracking.uri, session_id)
    ids = [r["trial_id"] for r in rows]
    assert len(ids) == len(set(ids)), "a trial was recorded twice"
    assert set(seen) <= set(ids), "a trial finished before the kill was lost"
    assert sorted(d["index"] for d in docs) == list(range(len(docs)))  # numbering continued
    assert metrics["ledger.trials"] == len(rows) == int(summary["trials"])
    assert metrics["ledger.robot_seconds"] == pytest.approx(sum(r["robot_seconds"] for r in rows), rel=1e-9)
    assert metrics["ledger.iterations"] == len(docs) == 3  # budget.iterations=3: none refunded, none extra
    assert metrics["ledger.tokens"] == sum(d["tokens"] for d in docs) == 300  # tokens neither refunded nor doubled
    # iteration 0 is replayed to the new agent (its memory), the open iteration 1 closes with its pre-kill trial
    assert [it.index for it in agent2.observed] == [0, 1, 2]
    assert seen[3] in {r["trial_id"] for r in rows if r["iteration"] == 1}
    assert agent2.observed[1].trials == 3
    # fast: the next proposal sees iteration 0; strict: only what lies below its horizon (2 - lag 2 = 0)
    seen_first = [it.index for it in agent2.states[0].iterations]
    assert seen_first[:1] == [0] if determinism == "fast" else seen_first == []
    tags = client.get_run(session_id).data.tags
    assert tags["enpire.resumed"] == "1" and tags["enpire.resume_1.recovered_from_journal"] == "1"
    killed = client.get_run(torn.info.run_id)
    assert killed.info.status == "KILLED" and killed.data.tags["enpire.kind"] == "iteration_killed"


def test_resume_is_refused_with_exit_2_when_the_done_code_changed(
        store: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = tmp_path / "verifier_copy.py"
    shutil.copy(PROJECT_ROOT / "enpire/world/verifier.py", verifier)
    monkeypatch.setattr(fingerprint, "DONE_SOURCES", (str(verifier),))
    spec = spec_of(*store, "budget=smoke", "budget.iterations=1")
    code, summary, _ = run(spec, tmp_path / "first", agents=[ScriptedAgent([params_proposal(spec, trials=1)])])
    assert code == 0
    verifier.write_text(verifier.read_text() + "\n# success is whatever I say\n")
    with pytest.raises(SpecError) as error:
        resume_spec(spec_of(*store, f"resume={summary['session_id']}"))
    assert error.value.problems[0].path == "resume"
    assert "done fingerprint" in str(error.value)


def test_resume_of_an_unknown_run_names_the_id_and_the_store(store: list[str]) -> None:
    with pytest.raises(SpecError, match="0123456789abcdef0123456789abcdef"):
        resume_spec(spec_of(*store, "resume=0123456789abcdef0123456789abcdef"))


def test_the_journal_skips_a_torn_last_line_and_atomic_writes_leave_old_or_new(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    append_line_durable(path, {"kind": "charge", "key": "tokens", "amount": 5.0})
    with path.open("ab") as f:
        f.write(b'{"kind": "charge", "key": "tok')  # the process died inside write()
    assert read_lines(path) == [{"kind": "charge", "key": "tokens", "amount": 5.0}]
    target = tmp_path / "state.json"
    write_text_atomic(target, "old")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), pytest.MonkeyPatch.context() as mp:
        mp.setattr("os.replace", lambda *a: (_ for _ in ()).throw(Boom()))
        write_text_atomic(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    write_text_atomic(target, "new")
    assert target.read_text() == "new"


def _recorded_session(store: list[str], tmp_path: Path) -> tuple[ExperimentSpec, str]:
    """A real, finished one-iteration session in the private SQLite store: (its spec, session run id)."""
    spec = spec_of(*store, "budget=smoke", "budget.iterations=1", "budget.trials=2")
    code, summary, _ = run(spec, tmp_path / "first", agents=[ScriptedAgent([params_proposal(spec, trials=2)])])
    assert code == 0
    return spec, summary["session_id"]


def _stored_spec_file(uri: str, session_id: str) -> Path:
    artifacts = MlflowClient(tracking_uri=uri).get_run(session_id).info.artifact_uri
    return Path(urlsplit(artifacts).path) / "spec" / "resolved_spec.json"


@pytest.mark.slow  # 6-12 s: with the slow tests in CI, keeping `make test` under ten minutes
def test_resume_of_a_tampered_stored_spec_exits_3_naming_the_key_and_runs_nothing(
        store: list[str], tmp_path: Path) -> None:
    spec, session_id = _recorded_session(store, tmp_path)
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    before = client.get_run(session_id)
    children = client.search_runs([before.info.experiment_id], f"tags.mlflow.parentRunId = '{session_id}'")
    path = _stored_spec_file(spec.tracking.uri, session_id)
    doc = json.loads(path.read_text())
    doc["budget"]["trials"] *= 10  # ten times the trials the session was launched with
    path.write_text(json.dumps(doc))

    cwd = tmp_path / "cwd"
    cwd.mkdir()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "HYDRA_FULL_ERROR": "0"}
    result = subprocess.run([sys.executable, "-m", "enpire", f"resume={session_id}", *store], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 3, result.stderr
    assert "integrity breach" in result.stderr and "budget.trials" in result.stderr, result.stderr
    assert "'2'" in result.stderr and "'20'" in result.stderr, result.stderr  # launch value and stored value
    assert "Traceback" not in result.stderr
    after = client.get_run(session_id)
    assert after.info.status == before.info.status == "FINISHED"
    assert "enpire.resumed" not in after.data.tags
    assert len(client.search_runs([before.info.experiment_id], f"tags.mlflow.parentRunId = '{session_id}'")) \
        == len(children), "a resumed iteration ran"
    assert not (cwd / "outputs").exists(), "refused before Hydra made a run directory"


def test_resume_warns_where_the_current_configs_differ_from_the_stored_spec(
        store: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    spec, session_id = _recorded_session(store, tmp_path)
    with caplog.at_level(logging.WARNING, logger="enpire.track.resume_spec"):
        same = resume_spec(spec_of(*store, f"resume={session_id}"))
    assert same.budget == spec.budget
    assert not [r for r in caplog.records if "differs from what the current config files" in r.message]

    conf = tmp_path / "conf"  # the configs move on after the launch: the smoke budget gets more tokens
    shutil.copytree(CONFIG_DIR, conf)
    smoke = conf / "budget" / "smoke.yaml"
    tokens = spec.budget.tokens
    smoke.write_text(smoke.read_text().replace(f"tokens: {tokens}\n", f"tokens: {tokens * 2}\n"))
    monkeypatch.setattr("enpire.track.resume_spec.load_spec", functools.partial(load_spec, config_dir=conf))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="enpire.track.resume_spec"):
        resumed = resume_spec(spec_of(*store, f"resume={session_id}"))
    assert resumed.budget.tokens == spec.budget.tokens, "the stored spec runs, not today's configs"
    drift = [r.message for r in caplog.records if "differs from what the current config files" in r.message]
    assert len(drift) == 1 and "budget.tokens" in drift[0], caplog.text
    assert "budget.trials" not in drift[0]  # only the keys that differ


@pytest.mark.parametrize("changed", ["keep rule", "task quantity", "controller"])
def test_resume_is_refused_after_any_judged_file_changed(
        changed: str, store: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The judge is frozen for a session's whole life: the keep rule, the task's quantities, the envelope's code."""
    from tests.test_integrity import CONSTANT, QUANTITY, copy_in_sources, plugin_drawer

    if changed == "keep rule":
        path, what = copy_in_sources(monkeypatch, tmp_path, "done", "enpire/judge/keep.py"), "done"
        edit = ("KEEP_MIN_TRIALS = 3", "KEEP_MIN_TRIALS = 0")
    elif changed == "task quantity":
        path, what, edit = plugin_drawer(monkeypatch, tmp_path), "done", (QUANTITY, CONSTANT)
    else:
        path, what = copy_in_sources(monkeypatch, tmp_path, "safety", "enpire/world/controller.py"), "safety"
        edit = ("import math\n", "import math\n# softer\n")
    spec, session_id = _recorded_session(store, tmp_path)
    resume_spec(spec_of(*store, f"resume={session_id}"), report=False)  # unchanged: it may continue
    assert edit[0] in path.read_text()
    path.write_text(path.read_text().replace(edit[0], edit[1], 1))
    with pytest.raises(SpecError) as error:
        resume_spec(spec_of(*store, f"resume={session_id}"))
    assert error.value.problems[0].path == "resume"
    assert f"{what} fingerprint" in str(error.value)
    assert "changed:" not in str(error.value)  # the session recorded no file digests to compare with
    # with the digests recorded at launch (spec/judged_files.json) the refusal names the file
    path.write_text(path.read_text().replace(edit[1], edit[0], 1))
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    client.log_dict(session_id, fingerprint.file_digests(spec.as_dict()), "spec/judged_files.json")
    path.write_text(path.read_text().replace(edit[0], edit[1], 1))
    with pytest.raises(SpecError) as error:
        resume_spec(spec_of(*store, f"resume={session_id}"))
    assert f"changed: {path.as_posix()}" in str(error.value), str(error.value)
