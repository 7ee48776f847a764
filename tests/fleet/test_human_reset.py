"""The human-in-the-loop reset on in-process stations (real MuJoCo resets): a station whose resets keep failing
waits for a person instead of leaving the fleet, reset-done checks the reset again, and a station nobody comes
to leaves the fleet after supervision.human_reset_timeout_s. End to end with ctl and MLflow:
tests/reliability/test_human_reset.py; over the network: tests/station/test_faults.py."""

from __future__ import annotations

import time
from pathlib import Path

from enpire.fleet.executor import InlineExecutor
from enpire.records import Candidate, TrialRecord, TrialRequest
from enpire.spec import load_spec


def _executor(tmp_path: Path, *overrides: str) -> tuple[InlineExecutor, int]:
    spec = load_spec(["task=reach", "executor=inline", "video.enabled=false",
                      f'task.reset.blocked_until="{tmp_path}/fixed-{{station}}"', *overrides])
    executor = InlineExecutor(spec)
    executor.start()
    return executor, spec.task.reset.faulty_after


def _trial(executor: InlineExecutor, k: int, tmp_path: Path) -> TrialRecord:
    spec = executor._spec
    executor.submit(0, TrialRequest(f"t-{k}", k, 100 + k, Candidate("c", params=spec.policy.defaults()),
                                    out_dir=str(tmp_path)))
    [record] = executor.wait(1.0)
    return record


def test_without_a_person_a_station_that_cannot_reset_leaves_the_fleet(tmp_path: Path) -> None:
    executor, n = _executor(tmp_path)
    records = [_trial(executor, k, tmp_path) for k in range(n)]
    assert [r.outcome for r in records] == ["reset_failed"] * n
    assert f"blocked until {tmp_path}/fixed-0 exists" in records[-1].reason
    assert list(executor.faulty()) == [0] and executor.needs_person() == {}


def test_a_person_returns_the_station_only_once_the_scene_is_fixed(tmp_path: Path) -> None:
    executor, n = _executor(tmp_path, "supervision.human_reset=true")
    for k in range(n):
        assert _trial(executor, k, tmp_path).robot_seconds == 0
    assert executor.faulty() == {} and executor.idle() == [] and list(executor.needs_person()) == [0]
    assert executor.reset_done(0, "someone") is None  # not fixed yet: checked, refused, still waiting
    assert list(executor.needs_person()) == [0] and executor.idle() == []
    assert "not waiting" in (executor.reset_done(3, "someone") or "")
    (tmp_path / "fixed-0").touch()
    assert executor.reset_done(0, "someone") is None
    assert executor.needs_person() == {} and executor.idle() == [0]
    assert "not waiting for a person" in (executor.reset_done(0, "someone") or "")
    assert _trial(executor, 9, tmp_path).outcome in ("success", "failure")
    [entry] = executor.interventions()
    assert entry["outcome"] == "returned" and entry["wait_s"] > 0
    assert [(c["by"], c["ok"]) for c in entry["checks"]] == [("someone", False), ("someone", True)]


def test_a_station_nobody_comes_to_leaves_the_fleet_after_the_timeout(tmp_path: Path) -> None:
    executor, n = _executor(tmp_path, "supervision.human_reset=true", "supervision.human_reset_timeout_s=0.2")
    for k in range(n):
        _trial(executor, k, tmp_path)
    assert list(executor.needs_person()) == [0]
    time.sleep(0.3)
    assert executor.needs_person() == {}
    assert "human_reset_timeout_s" in executor.faulty()[0]
    assert executor.interventions()[0]["outcome"] == "timed_out"


def test_a_station_restarted_during_its_check_is_not_left_waiting_forever() -> None:
    """The worker died mid-check (or hung): the intervention ends, and a station that asks again can be checked."""
    from enpire.fleet import human_reset
    from enpire.fleet.human_reset import PersonDesk

    desk = PersonDesk(True, 3600.0, seed=0)
    desk.ask(0, "t-1", ["blocked"])
    assert desk.begin_check(0, "someone")[1] is None
    assert desk.stale_checks(now=time.time() + human_reset.CHECK_TIMEOUT_S + 1) == [0]
    desk.forget(0, "restarted")
    assert desk.waiting() == {} and desk.log[0].outcome == "restarted"
    desk.ask(0, "t-9", ["blocked"])
    assert desk.begin_check(0, "someone")[1] is None  # not "a reset check is already under way"
