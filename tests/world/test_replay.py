"""A replayed frame shows the scene the robot was in: every body's world pose equals the live one, step by step."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import mujoco
import numpy as np
import pytest

from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRequest
from enpire.world import station as station_mod
from enpire.world.replay import Replay, ReplayRecorder
from enpire.world.scene import build_scene
from tests.world.conftest import spec_for

SMALL_VIDEO = ("video.width=64", "video.height=48", "video.fps=5")
TOLERANCE = 1e-9


class LivePoses(ReplayRecorder):
    """A replay recorder that also keeps the world pose of every body at each captured frame.

    The pose is the kinematics of the live state (a copy of the station's model and data): after
    `mj_step`, `data.xpos` still holds the poses of the state before the last physics step's
    integration, so the state's own poses are computed here, on the copy, without touching the trial.
    """

    live: ClassVar[list[tuple[int, np.ndarray, np.ndarray]]] = []

    def __init__(self, spec, model: mujoco.MjModel, camera: str) -> None:  # type: ignore[no-untyped-def]
        super().__init__(spec, model, camera)
        self.model = model

    def maybe_capture(self, data: mujoco.MjData, step: int) -> None:
        if step % self.every == 0:
            copy = mujoco.MjData(self.model)
            copy.qpos[:], copy.mocap_pos[:], copy.mocap_quat[:] = data.qpos, data.mocap_pos, data.mocap_quat
            mujoco.mj_kinematics(self.model, copy)
            LivePoses.live.append((step, copy.xpos.copy(), copy.xquat.copy()))
        super().maybe_capture(data, step)


def _live_trial(task: str, seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list]:
    monkeypatch.setattr(station_mod, "ReplayRecorder", LivePoses)
    LivePoses.live = []
    st = make_station(spec_for(task, "enarm", *SMALL_VIDEO), 0)
    rec = st.run_trial(TrialRequest(f"i0000-t{seed:03d}", 0, seed, Candidate("c", params={}), record_replay=True,
                                    out_dir=str(tmp_path)))
    assert rec.replay and Path(rec.replay).is_file()
    return rec.replay, LivePoses.live


def _quat_close(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per body: the same rotation (q and -q are one rotation)."""
    return np.minimum(np.abs(a - b).max(axis=1), np.abs(a + b).max(axis=1)) <= TOLERANCE


@pytest.mark.parametrize(("task", "seed"), [("drawer", 3), ("drawer", 11), ("reach", 4), ("peg_insert", 2)])
def test_every_body_of_a_replayed_frame_is_where_it_was_live(task: str, seed: int, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path, live = _live_trial(task, seed, tmp_path, monkeypatch)
    rep = Replay(path)
    assert rep.steps is not None and [s for s, _, _ in live] == list(rep.steps)  # one frame per captured step
    scene = build_scene(spec_for(task, "enarm", *SMALL_VIDEO))  # a fresh scene, as the renderer builds it
    model, data = scene.model, scene.data
    rep.check(model)
    rep.place_bodies(model)
    for i, (step, xpos, xquat) in enumerate(live):
        rep.restore(model, data, i)
        far = np.abs(data.xpos - xpos).max(axis=1) > TOLERANCE
        turned = ~_quat_close(data.xquat, xquat)
        names = [model.body(b).name for b in np.flatnonzero(far | turned)]
        assert not names, f"{task} seed {seed}, step {step}: bodies {names} not where they were live"


def test_the_drawer_check_would_see_a_cabinet_without_its_yaw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Positions alone (the replays before body_quat was kept) put the cabinet at the XML's yaw: caught."""
    path, live = _live_trial("drawer", 3, tmp_path, monkeypatch)
    rep = Replay(path)
    rep.body_quat = None  # what an old replay restores: body_pos only
    scene = build_scene(spec_for("drawer", "enarm", *SMALL_VIDEO))
    rep.place_bodies(scene.model)
    rep.restore(scene.model, scene.data, 0)
    cabinet = scene.model.body("cabinet").id
    assert not _quat_close(scene.data.xquat[cabinet:cabinet + 1], live[0][2][cabinet:cabinet + 1])[0]
