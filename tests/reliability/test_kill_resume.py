"""kill -9 of a real `python -m enpire` session, then `resume=SESSION_ID`: no trial lost, none twice, no refund.

Each test runs real subprocess sessions (executor=local: one process per station), SIGKILLs the
runner at a point observed through its journal (or at random times), resumes it to the end, and
reads MLflow back: trial ids unique, every trial journalled before a kill present, the ledger
metrics equal to the sums of the trial rows, no child run left RUNNING.
"""

from __future__ import annotations

import random
import subprocess
from pathlib import Path

import pytest

from tests.reliability.support import ReadBack, SessionProcess, Store, add_figure, journal_trial_ids, read_back

BASE = ["task=drawer", "executor=local", "fleet=2", "budget=small", "budget.iterations=5", "budget.trials=24",
        "agent.trials_per_candidate=4", "video.enabled=false"]


def check_consistent(back: ReadBack, recorded: list[str], resumes: int, iterations: int = 5,
                     trials: int = 24) -> None:
    """What a user checks after a crash and a resume; adds the figures of the run."""
    lost, dups = back.lost(recorded), back.duplicates
    add_figure("trials lost", lost)
    add_figure("duplicates", dups)
    print(f"trials recorded before kills {len(set(recorded))}, in MLflow {len(back.trial_ids)}, "
          f"lost {lost}, duplicates {dups}, resumes {resumes}")
    assert lost == 0, f"trials finished before a kill are missing from MLflow: {set(recorded) - set(back.trial_ids)}"
    assert dups == 0, "a trial is recorded twice"
    assert back.status == "FINISHED" and back.tags["enpire.resumed"] == str(resumes)
    assert "RUNNING" not in back.child_statuses.values()
    assert back.metrics["ledger.trials"] == len(back.rows) == back.metrics["trials"]
    assert back.metrics["ledger.robot_seconds"] == pytest.approx(sum(r["robot_seconds"] for r in back.rows), rel=1e-6)
    indices = sorted(d["index"] for d in back.docs)
    assert indices == list(range(len(indices))), "iteration numbering has a hole or a repeat"
    assert back.metrics["ledger.iterations"] == len(indices) <= iterations  # caps hold across resumes
    assert len(back.rows) <= trials


@pytest.mark.slow
def test_sigkill_mid_iteration_twice_then_resume_to_the_end(tmp_path: Path) -> None:
    store = Store(tmp_path)
    first = SessionProcess(tmp_path / "run1", [*BASE, *store.overrides()])
    journal = tmp_path / "run1" / "journal.jsonl"
    first.wait_for_trials(5)  # iteration 0 (4 trials) closed, iteration 1 running
    first.sigkill()
    add_figure("kills survived")
    (session_id,) = store.session_ids()
    recorded = journal_trial_ids(journal)
    second = SessionProcess(tmp_path / "run2", [f"resume={session_id}", *store.overrides()])
    second.wait_for_trials(len(recorded) + 3, journal=journal)
    second.sigkill()
    add_figure("kills survived")
    recorded = journal_trial_ids(journal)
    third = SessionProcess(tmp_path / "run3", [f"resume={session_id}", *store.overrides()])
    code, summary = third.finish()
    assert code == 0, third.stderr()
    assert summary["session_id"] == session_id
    check_consistent(read_back(store, session_id), recorded, resumes=2)


@pytest.mark.slow
def test_sigkill_at_random_moments_then_resume_to_the_end(tmp_path: Path) -> None:
    """Kills land wherever the runner happens to be (mid trial, mid agent call, mid MLflow write): each
    process is killed a random 0-1.5 s after it recorded its first trial."""
    rng = random.Random(20261124)
    store = Store(tmp_path)
    journal = tmp_path / "run0" / "journal.jsonl"
    longer = [*BASE, "budget.iterations=12", "budget.trials=60", *store.overrides()]
    proc = SessionProcess(tmp_path / "run0", longer)
    session_id, kills = "", 0
    for n in range(1, 4):
        try:
            proc.wait_for_trials(len(journal_trial_ids(journal)) + 1, journal=journal)
        except AssertionError:
            if proc.proc.poll() != 0:
                raise
            break  # a resumed session with nothing left but its close (the kill came after its last trial)
        session_id = session_id or store.session_ids()[0]
        delay = rng.uniform(0.0, 1.5)
        try:
            proc.proc.wait(timeout=delay)
            break  # it finished first
        except subprocess.TimeoutExpired:
            proc.sigkill()
            kills += 1
            add_figure("kills survived")
        proc = SessionProcess(tmp_path / f"run{n}", [f"resume={session_id}", *store.overrides()])
    recorded = journal_trial_ids(journal)
    code, _ = proc.finish()
    assert code == 0, proc.stderr()
    assert kills >= 1
    check_consistent(read_back(store, session_id), recorded, resumes=kills, iterations=12, trials=60)


@pytest.mark.slow
def test_cli_refuses_to_resume_with_exit_2_when_the_run_was_started_under_other_done_criteria(
        tmp_path: Path) -> None:
    """The run's done fingerprint no longer matches the code: `resume=` exits 2 and names why; nothing runs."""
    from tests.fleet.support import ScriptedAgent, params_proposal, run, spec_of

    store = Store(tmp_path)
    spec = spec_of(*store.overrides(), "budget=smoke", "budget.iterations=1")
    code, summary, _ = run(spec, tmp_path / "first", agents=[ScriptedAgent([params_proposal(spec, trials=1)])])
    assert code == 0
    session_id = summary["session_id"]
    store.client().set_tag(session_id, "enpire.done_sha256", "0" * 64)  # as if /done code changed since launch
    bad = [(f"resume={session_id}", "done fingerprint"),
           ("resume=0123456789abcdef0123456789abcdef", "the run id of a session run")]
    for n, (arg, why) in enumerate(bad):
        proc = SessionProcess(tmp_path / f"resume{n}", [arg, *store.overrides()])
        code, _ = proc.finish(timeout=120)
        add_figure("bad inputs tried")
        assert code == 2 and why in proc.stderr(), proc.stderr()
    back = read_back(store, session_id)
    assert back.status == "FINISHED" and "enpire.resumed" not in back.tags  # the refused resumes changed nothing
