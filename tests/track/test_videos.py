"""Videos: kept iterations show a typical failure and their first success, rendered from trial replays after
the summary (a detached renderer), inline, or on demand; every other replay is deleted at once."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from enpire.fleet.stations import make_station
from enpire.records import Candidate, IterationSummary, TrialRecord, TrialRequest
from enpire.spec import load_spec
from enpire.track import videos as vids
from enpire.track import writer as writer_mod
from enpire.track.render_pending import render_pending
from enpire.track.videos import IterationVideos, PendingVideos, shown_trials
from enpire.track.writer import Tracker
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]

SMALL_VIDEO = ["video.enabled=true", "video.width=96", "video.height=72", "video.fps=5"]
TUNED = {"approach_height": 0.057441, "grasp_depth": 0.011348, "grasp_height": 0.011018, "grip_close": 0.799545,
         "pull_distance": 0.22195, "pull_speed": 0.232544}  # a drawer recipe a search session kept (12/12 here)


def record(trial_id: str, success: bool, replay: Path | None, reason: str = "") -> TrialRecord:
    return TrialRecord(trial_id=trial_id, iteration=int(trial_id[1:5]), station=0, seed=0,
                       outcome="success" if success else "failure", attempts=1, success_attempt=1 if success else None,
                       pass_at_1=success, pass_at_k=success, robot_seconds=1.0, wall_s=0.1, steps=10, clamps=0,
                       replay=str(replay) if replay else None, reason=reason)


def test_a_typical_failure_and_the_first_success_in_dispatch_order_are_shown(tmp_path: Path) -> None:
    files = {}
    for name in ("i0003-t000", "i0003-t001", "i0003-t002", "i0003-t003", "i0003-t004", "i0003-t010"):
        files[name] = tmp_path / f"{name}.replay.npz"
        files[name].write_bytes(b"x")
    missed = "drawer_opening 0.0213 < 0.15"  # failure kinds leave the numbers out: they differ per trial
    trials = [record("i0003-t010", False, files["i0003-t010"], "drawer_opening 0.0871 < 0.15"),
              record("i0003-t004", True, files["i0003-t004"]), record("i0003-t001", False, None, missed),
              record("i0003-t003", False, files["i0003-t003"], "handle slipped at 2.31 s"),
              record("i0003-t002", True, files["i0003-t002"]),
              record("i0003-t000", False, files["i0003-t000"], "handle slipped at 0.52 s")]
    # with a replay: one missed opening (t001 has none: a crash), two slips; the slip is typical
    assert [r.trial_id for r in shown_trials(trials)] == ["i0003-t000", "i0003-t002"]
    trials.append(record("i0003-t011", False, files["i0003-t010"], "drawer_opening 0.1 < 0.15"))
    assert [r.trial_id for r in shown_trials(trials)] == ["i0003-t000", "i0003-t002"]  # a tie: seen first wins
    trials.append(record("i0003-t012", False, files["i0003-t010"], "drawer_opening 0.09 < 0.15"))
    assert [r.trial_id for r in shown_trials(trials)] == ["i0003-t010", "i0003-t002"]  # now the most common
    assert [r.trial_id for r in shown_trials([trials[1], trials[4]])] == ["i0003-t002"]  # only successes: one


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
        assert doc["body_quat"].shape == (station.scene.model.nbody, 4)  # the cabinet's yaw is in the replay
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


# ---- sessions ------------------------------------------------------------------------------------

def _session(store: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str,
             spawn: bool = False) -> tuple[MlflowClient, dict[str, str], list[str]]:
    """A scripted session: a failing recipe (discarded), a tuned one (kept), the failing one again (discarded)."""
    monkeypatch.setattr(vids, "render_mode", lambda spec: mode)
    started: list[str] = []
    if not spawn:
        monkeypatch.setattr(writer_mod, "start_renderer", lambda path: started.append(str(path)) or 4242)
    spec = spec_of(*store, "budget=smoke", "budget.trials=20", "budget.robot_seconds=300", *SMALL_VIDEO)
    bad = params_proposal(spec, trials=3, grip_close=0.0, pull_distance=0.05)
    agent = ScriptedAgent([bad, params_proposal(spec, trials=5, **TUNED), bad])
    code, summary, _ = run(spec, tmp_path / "run", agents=[agent])
    assert code == 0
    return MlflowClient(tracking_uri=spec.tracking.uri), summary, started


def _iterations(client: MlflowClient, session_id: str) -> list:
    runs = client.search_runs([client.get_run(session_id).info.experiment_id],
                              filter_string=f"tags.`enpire.session` = '{session_id}'")
    return sorted(runs, key=lambda r: int(r.data.tags["enpire.iteration"]))


def _check_videos(client: MlflowClient, session_id: str, tmp_path: Path) -> None:
    """Kept iterations log their videos and point at them from trials.jsonl; the others log none."""
    its = _iterations(client, session_id)
    assert [r.data.tags["enpire.decision"] for r in its] == ["discard", "keep", "discard"]
    for it in its:
        rows = [json.loads(line) for line in Path(client.download_artifacts(
            it.info.run_id, "trials.jsonl", str(tmp_path / it.info.run_id))).read_text().splitlines()]
        logged = {f.path for f in client.list_artifacts(it.info.run_id, "videos")}
        shown = [r for r in rows if r["video_artifact"]]
        assert {r["video_artifact"] for r in shown} == logged
        if it.data.tags["enpire.decision"] == "keep":
            assert sorted(r["pass_at_1"] for r in shown) == sorted({r["pass_at_1"] for r in rows})
            assert it.data.tags[vids.TAG] == "done"
        else:
            assert not logged and vids.TAG not in it.data.tags
    session = client.get_run(session_id).data.tags
    assert session[vids.TAG] == "done" and session[vids.TAG_PENDING] == "0"
    assert not list((tmp_path / "run").rglob("*.replay.npz"))  # every replay deleted


def test_videos_of_kept_iterations_are_rendered_after_the_summary(store: list[str], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    client, summary, started = _session(store, tmp_path, monkeypatch, "background")
    sid = summary["session_id"]
    assert len(started) == 1  # close() started the renderer on the session's pending file
    pending = PendingVideos(started[0])
    state = pending.read()
    tags = client.get_run(sid).data.tags
    assert tags[vids.TAG] == "pending" and tags[vids.TAG_FILE] == started[0]
    assert tags[vids.TAG_PENDING] == str(len(state.todo)) and state.closed
    assert state.iterations() == [1] and 1 <= len(state.todo) <= 2  # the kept iteration only
    # only the shown trials' replays are left: the others went when their iteration closed
    assert sorted(p.name for p in (tmp_path / "run").rglob("*.replay.npz")) == \
        sorted(Path(v.replay).name for v in state.todo)
    counts = render_pending(started[0])
    assert counts == {"rendered": len(state.todo), "failed": 0, "left": 0, "state": "done"}
    _check_videos(client, sid, tmp_path)
    assert render_pending(started[0])["rendered"] == 0  # a second renderer finds nothing left


@pytest.mark.slow  # 6-12 s: with the slow tests in CI, keeping `make test` under ten minutes
def test_the_detached_renderer_logs_the_videos_and_says_done(store: list[str], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    client, summary, _ = _session(store, tmp_path, monkeypatch, "background", spawn=True)
    sid = summary["session_id"]
    deadline = time.monotonic() + 180
    while client.get_run(sid).data.tags.get(vids.TAG) != "done":
        assert time.monotonic() < deadline, (tmp_path / "run" / "trials" / "videos_render.log").read_text()
        time.sleep(0.5)
    _check_videos(client, sid, tmp_path)


def test_inline_videos_are_in_mlflow_when_the_session_returns(store: list[str], tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    client, summary, started = _session(store, tmp_path, monkeypatch, "inline")
    assert not started and not list((tmp_path / "run").rglob(vids.PENDING_NAME))
    its = _iterations(client, summary["session_id"])
    assert [len(client.list_artifacts(r.info.run_id, "videos")) > 0 for r in its] == [False, True, False]
    assert client.get_run(summary["session_id"]).data.tags[vids.TAG] == "done"
    assert not list((tmp_path / "run").rglob("*.replay.npz"))


@pytest.mark.slow  # 6-12 s: with the slow tests in CI, keeping `make test` under ten minutes
def test_the_report_says_which_videos_are_pending_and_renders_them_with_videos(
        store: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from enpire.report.__main__ import main as report_main

    client, summary, started = _session(store, tmp_path, monkeypatch, "on_demand")
    sid = summary["session_id"]
    assert not started  # on_demand: nobody renders until asked
    uri = store[0].split("=", 1)[1]
    assert report_main(["--tracking-uri", uri, "--out", str(tmp_path / "rep"), "--no-log"]) == 0
    printed = capsys.readouterr().out
    assert f"{sid[:8]}: Videos pending:" in printed and "of iterations 1 not in MLflow yet" in printed
    assert "Videos pending" in (tmp_path / "rep" / "report.md").read_text()
    assert report_main(["--tracking-uri", uri, "--out", str(tmp_path / "rep2"), "--no-log", "--videos"]) == 0
    printed = capsys.readouterr().out
    assert "videos rendered, 0 failed, 0 left (done)" in printed and "Videos pending" not in printed
    assert any(p.name.startswith("still_") for p in (tmp_path / "rep2").iterdir())
    _check_videos(client, sid, tmp_path)


# ---- the writer ------------------------------------------------------------------------------------

def _summary(index: int) -> IterationSummary:
    return IterationSummary(index=index, agent="a-0", branch="a-0", parent=None, hypothesis="test hypothesis",
                            candidate={"kind": "params", "params": {"x": 1.0}}, candidate_id=f"c{index}",
                            decision="discard", success_rate=0.0, pass_at_1=0.0, pass_at_k=0.0, trials=0,
                            safety_stops=0, robot_seconds=0.0, tokens=12)


def test_the_transcript_of_the_agent_call_is_an_artifact_of_its_iteration(store: list[str], tmp_path: Path) -> None:
    spec = spec_of(*store)
    tracker = Tracker(spec, "t", None, {})
    transcript = [{"role": "user", "content": "state"}, {"role": "assistant", "content": "proposal"}]
    tracker.log_iteration(_summary(0), [], False, transcript=transcript)
    tracker.log_iteration(_summary(1), [], False)  # the positional form still works, without a transcript
    tracker.close({}, 2, {}, [], "summary\n", "FINISHED")
    its = _iterations(tracker.client, tracker.run_id)
    got = json.loads(Path(tracker.client.download_artifacts(its[0].info.run_id, "agent/transcript.json",
                                                            str(tmp_path))).read_text())
    assert got == transcript
    assert not [f for f in tracker.client.list_artifacts(its[1].info.run_id) if f.path == "agent"]


def test_one_writer_thread_takes_every_record_even_when_close_comes_in_the_middle(store: list[str]) -> None:
    spec = spec_of(*store)
    tracker = Tracker(spec, "t", None, {})
    ran: list[tuple[int, str]] = []
    for k in range(5):
        def op(k: int = k) -> None:
            time.sleep(0.3 if k == 0 else 0.0)  # a slow write: close() arrives while it runs
            ran.append((k, threading.current_thread().name))
        tracker._queue.put(op)
    time.sleep(spec.tracking.flush_every_s + 0.1)  # the writer is inside the slow write now
    tracker.close({"x": 1.0}, 0, {"enpire.stopped_by": "test"}, [], "summary\n", "FINISHED")
    assert ran == [(k, "enpire-mlflow") for k in range(5)]
    run = tracker.client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED" and run.data.tags["enpire.stopped_by"] == "test"
    assert tracker._queue.empty()


def test_a_writer_busy_past_the_close_timeout_keeps_the_queue_to_itself(store: list[str],
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The old race: close() timed out on the join and drained the queue itself while the writer still wrote."""
    spec = spec_of(*store)
    tracker = Tracker(spec, "t", None, {})
    release = threading.Event()
    ran: list[tuple[str, str]] = []
    tracker._queue.put(lambda: (release.wait(30), ran.append(("slow", threading.current_thread().name))))
    tracker._queue.put(lambda: ran.append(("next", threading.current_thread().name)))
    time.sleep(spec.tracking.flush_every_s + 0.1)  # the writer is blocked in the slow write
    monkeypatch.setattr(writer_mod, "CLOSE_WAIT_S", 0.5)
    with pytest.raises(TimeoutError):
        tracker.close({}, 0, {}, [], "summary\n", "FINISHED")
    assert ran == []  # nothing was written by this thread behind the writer's back
    release.set()
    tracker._thread.join(10)
    assert ran == [("slow", "enpire-mlflow"), ("next", "enpire-mlflow")]
    assert tracker.client.get_run(tracker.run_id).info.status == "FINISHED"  # the final writes came after
