"""Recording at the station (record.*): what a trajectory holds, that recording changes nothing a trial decides,
the outcome filter, frames at the declared rate within the size budget, and the session budget in the scheduler."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from enpire.data.episodes import STEP_KEYS, Episode
from enpire.fleet.scheduler import Scheduler
from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRequest
from enpire.spec import SpecError, load_spec
from enpire.spec.model import RecordSpec


def _req(seed: int, out: Path, record: bool = True, **params: float) -> TrialRequest:
    return TrialRequest(f"t{seed}", 0, seed, Candidate("c", params=params), record_trajectory=record,
                        out_dir=str(out))


def _spec(task: str = "reach", **record: object):
    spec = load_spec([f"task={task}", "video.width=64", "video.height=48"])
    return dataclasses.replace(spec, record=dataclasses.replace(RecordSpec("all"), **record))


def test_trajectory_holds_every_step_and_recording_changes_nothing(tmp_path: Path) -> None:
    spec = _spec("drawer")
    st = make_station(spec, 0)
    plain = [st.run_trial(_req(s, tmp_path, record=False)) for s in (0, 1)]
    recorded = [st.run_trial(_req(s, tmp_path)) for s in (0, 1)]
    for a, b in zip(plain, recorded, strict=True):
        assert (a.outcome, a.steps, a.attempts, a.clamps, a.final_state, a.shaping_return) == \
               (b.outcome, b.steps, b.attempts, b.clamps, b.final_state, b.shaping_return)
        assert a.trajectory is None and b.trajectory
        ep = Episode.load(b.trajectory)
        assert ep.length == b.steps and set(STEP_KEYS) <= set(ep.steps)
        assert ep.obs_keys == sorted(st.observe()) and ep.obs("ee_pos").shape == (b.steps, 3)
        assert ep.steps["actions"].shape == (b.steps, 5) and ep.steps["ctrl"].shape[1] == st.scene.model.nu
        assert ep.steps["quantities"].shape == (b.steps, len(spec.task.state_space))
        assert ep.steps["reward"].sum() == pytest.approx(b.shaping_return)
        assert int(ep.steps["clamps"].sum()) == b.clamps
        assert set(np.unique(ep.steps["attempt"])) == set(range(1, b.attempts + 1))  # attempt boundaries
        assert ep.meta["outcome"] == b.outcome and ep.meta["candidate"]["candidate_id"] == "c"
        # the command applied never exceeds the envelope's torque cap (compliance) nor the actuators' range
        arm = ep.steps["ctrl"][:, : spec.robot.dof]
        assert np.abs(arm).max() <= spec.safety.torque_limit_nm + 1e-9
        lo, hi = np.array(ep.meta["ctrl_range"]).T
        assert (ep.steps["ctrl"] >= lo - 1e-9).all() and (ep.steps["ctrl"] <= hi + 1e-9).all()


@pytest.mark.parametrize(("mode", "kept"), [("all", {True, False}), ("successes", {True}), ("failures", {False})])
def test_outcome_filter(tmp_path: Path, mode: str, kept: set[bool]) -> None:
    st = make_station(_spec("reach", trajectories=mode), 0)
    slow = {"speed": 0.02}  # too slow to reach the target within the time limit: a failure
    recs = [st.run_trial(_req(s, tmp_path / mode, **(slow if s % 2 else {}))) for s in range(4)]
    assert {r.pass_at_k for r in recs} == {True, False}  # both kinds happen on these seeds
    assert {r.pass_at_k for r in recs if r.trajectory} == kept
    assert all(bool(r.trajectory) == (r.pass_at_k in kept) for r in recs)


def test_frames_at_the_declared_rate_within_the_size_budget(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    st = make_station(_spec("reach", frames_hz=10.0), 0)
    rec = st.run_trial(_req(0, tmp_path))
    ep = Episode.load(rec.trajectory)
    every = round(1 / (10.0 * st.spec.control_dt))
    assert ep.frames is not None and ep.frames.shape[1:] == (48, 64, 3) and ep.frames.dtype == np.uint8
    assert list(ep.frame_step) == list(range(0, rec.steps, every)) and ep.frames.std() > 0
    tiny = make_station(_spec("reach", frames_hz=10.0, max_mb=0.13), 0)  # room for the arrays and ~5 frames
    with caplog.at_level(logging.WARNING):
        small = Episode.load(tiny.run_trial(_req(0, tmp_path / "tiny")).trajectory)
    assert small.frames is not None and 0 < len(small.frames) < len(ep.frames)
    assert "later ones are dropped" in caplog.text


class _Idle:
    """An executor with no stations (the scheduler's budget is all that is tested)."""

    def idle(self) -> list[int]:
        return []


def test_session_budget_stops_recording_once_with_one_warning(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    spec = dataclasses.replace(load_spec(["task=reach"]), record=RecordSpec("all", 0.0, 0.001))
    sched = Scheduler(spec, _Idle(), None, tmp_path)  # type: ignore[arg-type]
    assert sched.recording
    files = []
    for k in range(3):
        f = tmp_path / f"t{k}.npz"
        f.write_bytes(b"x" * 600)
        files.append(f)
    with caplog.at_level(logging.WARNING):
        sched._recorded(str(files[0]))
        assert sched.recording  # 600 B of 1048 B
        for f in files[1:]:
            sched._recorded(str(f))
    assert not sched.recording and sched.recorded_bytes == 1800
    assert caplog.text.count("record.max_mb spent") == 1
    off = Scheduler(load_spec(["task=reach"]), _Idle(), None, tmp_path)  # type: ignore[arg-type]
    assert not off.recording  # record.trajectories=none (the default): no trial asks for a trajectory


def test_record_block_is_checked_against_the_schema() -> None:
    with pytest.raises(SpecError) as error:
        load_spec(["record.trajectories=some"])
    assert "record.trajectories" in str(error.value)
    with pytest.raises(SpecError) as error:
        load_spec(["record.max_mb=0"])
    assert "record.max_mb" in str(error.value)
    assert load_spec(["record.trajectories=failures", "record.frames_hz=5"]).record == RecordSpec("failures", 5.0,
                                                                                                  1024.0)
