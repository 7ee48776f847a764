"""Each iteration logs its first failure and its first success as videos rendered from trial replays."""

from __future__ import annotations

import json
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from enpire.spec import load_spec
from enpire.track.videos import IterationVideos, shown_trials
from enpire.world.api import Candidate, TrialRecord, TrialRequest
from enpire.world.station import make_station
from tests.fleet.support import migrated_store, run, spec_of, store

__all__ = ["migrated_store", "store"]

SMALL_VIDEO = ["video.enabled=true", "video.width=96", "video.height=72", "video.fps=5"]


def record(trial_id: str, success: bool, replay: Path | None) -> TrialRecord:
    return TrialRecord(trial_id=trial_id, iteration=int(trial_id[1:5]), station=0, seed=0,
                       outcome="success" if success else "failure", attempts=1, success_attempt=1 if success else None,
                       pass_at_1=success, pass_at_k=success, robot_seconds=1.0, wall_s=0.1, steps=10, clamps=0,
                       replay=str(replay) if replay else None)


def test_the_first_failure_and_the_first_success_in_dispatch_order_are_shown(tmp_path: Path) -> None:
    files = {}
    for name in ("i0003-t000", "i0003-t001", "i0003-t002", "i0003-t010"):
        files[name] = tmp_path / f"{name}.replay.npz"
        files[name].write_bytes(b"x")
    # completion order differs from dispatch order; t001 has no replay left (a crash), so it cannot be shown
    trials = [record("i0003-t010", False, files["i0003-t010"]), record("i0003-t002", True, files["i0003-t002"]),
              record("i0003-t001", False, None), record("i0003-t000", True, files["i0003-t000"])]
    assert [r.trial_id for r in shown_trials(trials)] == ["i0003-t010", "i0003-t000"]
    assert [r.trial_id for r in shown_trials(trials[1:])] == ["i0003-t000"]  # only successes: one video


def test_a_replay_renders_the_trial_the_robot_ran(tmp_path: Path) -> None:
    spec = load_spec(["task=drawer", *SMALL_VIDEO])
    station = make_station(spec, 0)
    try:
        rec = station.run_trial(TrialRequest("i0000-t000", 0, 3, Candidate("c", params={}), record_replay=True,
                                             out_dir=str(tmp_path)))
    finally:
        station.close()
    assert rec.replay and Path(rec.replay).is_file()
    assert "replay" not in rec.to_dict()  # a local file, not part of the logged record (specs/trial.schema.json)
    with np.load(rec.replay) as doc:  # positions at video.fps over the trial's robot time
        assert abs(len(doc["qpos"]) - rec.robot_seconds * spec.video.fps) <= 2
    videos = IterationVideos(spec)
    shown = videos.render([rec], tmp_path / "videos")
    videos.close()
    assert shown == {"i0000-t000": "i0000-t000.mp4"}
    frames = imageio.mimread(str(tmp_path / "videos" / shown["i0000-t000"]), memtest=False)
    assert frames[0].shape == (72, 96, 3)
    # the robot moved and the drawer opened: the last picture differs clearly from the first
    assert np.abs(frames[-1].astype(int) - frames[0].astype(int)).mean() > 2.0


def test_broken_replays_cost_their_video_only_and_rendering_stops_after_three(tmp_path: Path,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    spec = load_spec(["task=drawer", *SMALL_VIDEO])
    videos = IterationVideos(spec)
    for k in range(4):
        bad = tmp_path / f"i000{k}-t000.replay.npz"
        bad.write_bytes(b"not an npz")
        assert videos.render([record(f"i000{k}-t000", False, bad)], tmp_path / "videos") == {}
    videos.close()
    assert videos.failed == 3 and videos.disabled and "3 videos in a row failed" in videos.disabled
    assert "video.enabled=false" in caplog.text


def test_every_iteration_of_a_session_logs_its_videos_and_no_replay_is_left(store: list[str],
                                                                           tmp_path: Path) -> None:
    spec = spec_of(*store, "budget=smoke", "budget.iterations=4", *SMALL_VIDEO)
    code, summary, _ = run(spec, tmp_path / "run")
    assert code == 0
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    runs = client.search_runs([client.get_run(summary["session_id"]).info.experiment_id],
                              filter_string=f"tags.`enpire.session` = '{summary['session_id']}'")
    with_trials = 0
    for it in runs:
        rows = [json.loads(line) for line in
                Path(client.download_artifacts(it.info.run_id, "trials.jsonl", str(tmp_path))).read_text().splitlines()]
        if not rows:
            continue
        with_trials += 1
        logged = {f.path for f in client.list_artifacts(it.info.run_id, "videos")}
        shown = [r for r in rows if r["video_artifact"]]
        assert {r["video_artifact"] for r in shown} == logged
        kinds = {r["pass_at_1"] for r in rows}
        assert sorted(r["pass_at_1"] for r in shown) == sorted(kinds)  # a failure and a success when both exist
    assert with_trials >= 3
    assert not list((tmp_path / "run").rglob("*.replay.npz"))
