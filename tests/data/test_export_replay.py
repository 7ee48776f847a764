"""Trials as data end to end: a real session (subprocess, MLflow on SQLite) with record.trajectories=all and
frames, then `python -m enpire.export` in each format from MLflow alone, `python -m enpire.replay` bit for bit
and rendering, bc trained from an exported dir, and the dataset inputs in MLflow. LeRobot's own package does not
install beside the project's pins (packaging<26, pandas<3, torch<2.8), so the LeRobot export is checked against
the v3.0 schema LeRobot documents (lerobot.datasets.utils)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mlflow import MlflowClient

from enpire.data.episodes import digest, load_dir
from enpire.data.tables import read_parquet
from enpire.track.datasets import dataset_inputs

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "MUJOCO_GL": "egl", "PYOPENGL_PLATFORM": "egl", "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}


def _py(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, env=ENV, capture_output=True, text=True, timeout=600)


def _frames(path: Path) -> list[np.ndarray]:
    import imageio.v2 as imageio

    with imageio.get_reader(str(path)) as reader:
        return [f for f in reader]


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("recorded")
    uri = f"sqlite:///{tmp}/mlflow.db"
    done = _py("-m", "enpire", "task=reach", "budget=smoke", "record.trajectories=all", "record.frames_hz=5",
               "video.enabled=false", "video.width=64", "video.height=48", f"tracking.uri={uri}",
               f"tracking.artifact_root={tmp}/artifacts", f"hydra.run.dir={tmp}/run", cwd=tmp)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    client = MlflowClient(tracking_uri=uri)
    sid = summary["session_id"]
    rows = []
    for run in client.search_runs([client.get_run(sid).info.experiment_id], f"tags.`enpire.session` = '{sid}'"):
        text = Path(client.download_artifacts(run.info.run_id, "trials.jsonl", str(tmp / run.info.run_id)))
        rows += [json.loads(line) for line in text.read_text().splitlines()]
    return {"tmp": tmp, "uri": uri, "sid": sid, "client": client, "trials": {r["trial_id"]: r for r in rows}}


def _export(session: dict, fmt: str, *extra: str) -> Path:
    out = session["tmp"] / f"export-{fmt}{'-'.join(extra)}"
    done = _py("-m", "enpire.export", session["sid"], "--format", fmt, "--out", str(out), "--tracking-uri",
               session["uri"], *extra, cwd=session["tmp"])
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"as {fmt} to {out}" in done.stdout
    return out


def test_recorded_session_uploads_trajectories_and_logs_a_dataset_input(session: dict) -> None:
    client, sid = session["client"], session["sid"]
    recorded = {r["trial_id"] for r in session["trials"].values() if r["steps"] > 0}
    assert len(recorded) >= 2 and {r["trial_id"] for r in session["trials"].values() if r["trajectory"]} == recorded
    names = {Path(a.path).name for a in client.list_artifacts(sid, "trajectories")}
    assert names == {f"{t}.npz" for t in recorded}
    local = client.download_artifacts(sid, "trajectories", str(session["tmp"] / "dl"))
    [recorded_input] = [d for d in dataset_inputs(session["uri"], sid) if d["context"] == "recorded"]
    assert recorded_input["profile"]["sha256"] == digest(sorted(Path(local).glob("*.npz")))
    assert recorded_input["profile"]["episodes"] == len(recorded)


def test_parquet_export_gives_back_the_recorded_arrays(session: dict) -> None:
    out = _export(session, "parquet")
    rows, arrays = read_parquet(out)
    episodes = {ep.trial_id: ep for ep in load_dir(session["client"].download_artifacts(
        session["sid"], "trajectories", str(session["tmp"] / "dl-parquet")))}
    assert len(rows) == len(episodes) == sum(r["steps"] > 0 for r in session["trials"].values())
    for row, a in zip(rows, arrays, strict=True):
        ep, trial = episodes[row["trial_id"]], session["trials"][row["trial_id"]]
        assert row["steps"] == trial["steps"] == len(a["actions"]) and row["outcome"] == trial["outcome"]
        for k, v in a.items():
            assert v.dtype == ep.steps[k].dtype and np.array_equal(v, ep.steps[k]), k
        info = json.loads((out / "info.json").read_text())
        limit = info["envelope"]["torque_limit_nm"]
        assert np.abs(a["ctrl"][:, :6]).max() <= limit + 1e-9  # the applied commands respect the envelope
        assert len(_frames(out / "frames" / f"{row['trial_id']}.mp4")) == len(ep.frame_step)
    success_only = read_parquet(_export(session, "parquet", "--outcome", "success"))[0]
    assert {r["trial_id"] for r in success_only} == {t for t, r in session["trials"].items()
                                                     if r["outcome"] == "success"}


def test_lerobot_export_follows_the_v3_layout(session: dict) -> None:
    import pandas as pd
    import pyarrow.parquet as pq

    out = _export(session, "lerobot")
    info = json.loads((out / "meta/info.json").read_text())
    trials = [r for r in session["trials"].values() if r["steps"] > 0]
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == "enarm" and info["fps"] == 50
    assert info["total_episodes"] == len(trials) and info["total_frames"] == sum(r["steps"] for r in trials)
    assert info["splits"] == {"train": f"0:{len(trials)}"}
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index"):  # LeRobot's DEFAULT_FEATURES
        assert info["features"][key]["shape"] == [1]
    assert all("/" not in k for k in info["features"])  # LeRobot refuses feature names with '/'
    data = pq.read_table(out / info["data_path"].format(chunk_index=0, file_index=0))
    non_video = {k for k, f in info["features"].items() if f["dtype"] != "video"}
    assert set(data.column_names) == non_video
    for k in non_video:
        f = info["features"][k]
        if f["shape"] != [1]:
            assert data.schema.field(k).type.list_size == f["shape"][0] == len(f["names"]), k
    episodes = pq.read_table(out / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in episodes] == list(range(len(trials)))
    start = 0
    for e in episodes:
        trial = session["trials"][e["enpire.trial_id"]]
        assert e["length"] == trial["steps"] == e["dataset_to_index"] - e["dataset_from_index"]
        assert e["dataset_from_index"] == start and e["enpire.outcome"] == trial["outcome"]
        assert e["enpire.candidate_id"] and e["tasks"] == [info["enpire"]["task_description"]]
        start = e["dataset_to_index"]
    idx = data.column("index").to_numpy()
    assert (idx == np.arange(len(idx))).all()
    ts, fi = data.column("timestamp").to_numpy(), data.column("frame_index").to_numpy()
    assert np.allclose(ts, fi / info["fps"], atol=1e-5)
    tasks = pd.read_parquet(out / "meta/tasks.parquet")
    assert list(tasks.index) == [info["enpire"]["task_description"]] and list(tasks["task_index"]) == [0]
    [video_key] = [k for k, f in info["features"].items() if f["dtype"] == "video"]
    frames = _frames(out / info["video_path"].format(video_key=video_key, chunk_index=0, file_index=0))
    assert len(frames) == info["total_frames"] and frames[0].shape == (48, 64, 3)
    last = episodes[-1][f"videos/{video_key}/to_timestamp"]
    assert last == pytest.approx(info["total_frames"] / info["fps"])
    stats = json.loads((out / "meta/stats.json").read_text())
    assert len(stats["observation.state"]["mean"]) == info["features"]["observation.state"]["shape"][0]


def test_hdf5_export_is_robomimic_shaped(session: dict) -> None:
    import h5py

    out = _export(session, "hdf5")
    trials = {t: r for t, r in session["trials"].items() if r["steps"] > 0}
    with h5py.File(out / "data.hdf5") as f:
        demos = f["data"]
        assert len(demos) == len(trials) and demos.attrs["total"] == sum(r["steps"] for r in trials.values())
        for name in demos:
            g = demos[name]
            trial = trials[g.attrs["trial_id"]]
            assert g.attrs["num_samples"] == trial["steps"] == len(g["actions"]) == len(g["obs/ee_pos"])
            assert g["dones"][-1] == 1 and g["states"].shape[0] == trial["steps"]
        ok = {n.decode() for n in f["mask/success"][()]}
        assert ok == {n for n in demos if demos[n].attrs["success"]}
        assert json.loads(demos.attrs["env_args"])["env_name"] == "reach"


def test_replay_reproduces_every_recorded_trial_bit_for_bit_and_renders(session: dict) -> None:
    for trial_id in sorted(t for t, r in session["trials"].items() if r["steps"] > 0):
        done = _py("-m", "enpire.replay", trial_id, "--tracking-uri", session["uri"], cwd=session["tmp"])
        assert done.returncode == 0, done.stdout + done.stderr[-2000:]
        assert "identical to the recording, bit for bit" in done.stdout
    out = session["tmp"] / "replay.mp4"
    longest = max(session["trials"], key=lambda t: session["trials"][t]["steps"])
    done = _py("-m", "enpire.replay", longest, "--tracking-uri", session["uri"], "--out", str(out),
               "--render-only", cwd=session["tmp"])
    assert done.returncode == 0, done.stderr[-2000:]
    every = round(50 / 10)  # control rate / video.fps
    assert len(_frames(out)) == -(-session["trials"][longest]["steps"] // every)
    missing = _py("-m", "enpire.replay", "i9999-t000", "--tracking-uri", session["uri"], cwd=session["tmp"])
    assert missing.returncode == 2 and "no recorded trajectory" in missing.stderr


def test_replay_detects_a_trajectory_that_differs(session: dict) -> None:
    from enpire.data.episodes import Episode
    from enpire.replay import differences, rerun, session_spec

    trial_id = next(t for t, r in session["trials"].items() if r["steps"] > 2)
    ep = Episode.load(Path(session["client"].download_artifacts(
        session["sid"], f"trajectories/{trial_id}.npz", str(session["tmp"] / "dl-diff"))))
    again = rerun(session_spec(session["uri"], session["sid"]), ep, session["tmp"] / "again")
    assert differences(ep, again) == []
    again.steps["ctrl"] = again.steps["ctrl"].copy()
    again.steps["ctrl"][2, 0] = np.nextafter(again.steps["ctrl"][2, 0], np.inf)  # one ulp
    assert differences(ep, again) == ["ctrl: differs from step 2 (1 steps)"]


@pytest.mark.parametrize("fmt", ["parquet", "lerobot"])
def test_bc_trains_from_an_exported_dataset(session: dict, fmt: str) -> None:
    from enpire.policy.bc import BCPolicy
    from enpire.policy.trainer import TrackingTarget, train_candidate
    from enpire.spec import load_spec

    out = session["tmp"] / f"export-{fmt}"
    if not out.exists():
        out = _export(session, fmt)
    spec = load_spec(["task=reach", "policy=bc", f"policy.train.dataset={out}", "policy.train.epochs=2",
                      "policy.train.online=none", f"tracking.uri={session['uri']}"])
    client = session["client"]
    run = client.create_run(client.get_run(session["sid"]).info.experiment_id)
    result = train_candidate(spec, None, session["tmp"] / f"bc-{fmt}", TrackingTarget(session["uri"], run.info.run_id))
    successes = [r for r in session["trials"].values() if r["pass_at_k"]]
    assert result.metrics["dataset_episodes"] == len(successes) and "demo_trials" not in result.metrics
    policy = BCPolicy.load(result.checkpoint)
    from enpire.fleet.stations import make_station

    obs = make_station(spec, 0).observe()
    policy.reset(obs)
    assert policy.act(obs).shape == (5,)
    [trained_on] = dataset_inputs(session["uri"], run.info.run_id)
    assert trained_on["context"] == "training" and trained_on["name"] == out.name
