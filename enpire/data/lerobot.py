"""A LeRobot dataset (v3.0 layout) of recorded episodes, written with pyarrow alone, and read back for bc.

The `lerobot` package does not install beside this project's pins (it needs packaging<26, pandas<3 and its own
torch), so the layout follows LeRobot's documented v3.0 schema (lerobot.datasets.utils: DEFAULT_DATA_PATH,
DEFAULT_VIDEO_PATH, DEFAULT_EPISODES_PATH, DEFAULT_FEATURES, create_empty_dataset_info) and
tests/data/test_export.py checks it against that schema:

    meta/info.json                                   codebase_version v3.0, robot_type, fps, features, totals
    meta/stats.json                                  mean/std/min/max/count per numeric feature
    meta/tasks.parquet                               the task's description -> task_index
    meta/episodes/chunk-000/file-000.parquet         one row per episode: length, index range, video range,
                                                     and enpire's tags (trial_id, candidate, outcome, ...)
    data/chunk-000/file-000.parquet                  one row per control step, every episode
    videos/observation.images.<camera>/chunk-000/file-000.mp4   where frames were recorded

Features: `observation.state` (the robot's observations: ee_pos, ee_yaw, grip, joint_pos, joint_vel),
`observation.environment_state` (the task's), `action` (the policy's), `next.reward` (shaping), `next.done`,
`next.success`, and enpire's own `enpire.ctrl` (the command applied after clamping), `enpire.qpos`,
`enpire.qvel`, `enpire.quantities`, `enpire.attempt`, `enpire.clamps`, `enpire.safety_stop`; each vector
feature's `names` say which observation entry each column is. Videos run at the dataset's fps (one frame per
row: the latest recorded frame at or before the step).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from enpire.data.episodes import Episode

CODEBASE_VERSION = "v3.0"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
ROBOT_OBS = ("ee_pos", "ee_yaw", "grip", "joint_pos", "joint_vel")  # what SimStation.observe reads off the robot
DEFAULT_FEATURES = {k: {"dtype": d, "shape": [1], "names": None} for k, d in (
    ("timestamp", "float32"), ("frame_index", "int64"), ("episode_index", "int64"), ("index", "int64"),
    ("task_index", "int64"))}
ACTION_NAMES = {"cartesian": ["x", "y", "z", "yaw", "grip"]}


def _names(ep: Episode, keys: list[str]) -> list[str]:
    out = []
    for k in keys:
        size = ep.obs(k).shape[1]
        out += [k] if size == 1 else [f"{k}.{i}" for i in range(size)]
    return out


def _vec(name_list: list[str], dtype: str = "float32") -> dict[str, Any]:
    return {"dtype": dtype, "shape": [len(name_list)], "names": name_list}


def _stats(a: np.ndarray) -> dict[str, Any]:
    a = a.reshape(len(a), -1).astype(np.float64)
    return {"mean": a.mean(0).tolist(), "std": a.std(0).tolist(), "min": a.min(0).tolist(), "max": a.max(0).tolist(),
            "count": [len(a)]}


def write_lerobot(episodes: list[Episode], out: Path, info: dict[str, Any]) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not episodes:
        raise ValueError("export: no episodes to write")
    first = episodes[0]
    fps = round(first.fps)
    robot = [k for k in first.obs_keys if k in ROBOT_OBS]
    env = [k for k in first.obs_keys if k not in ROBOT_OBS]
    adim, mode = first.steps["actions"].shape[1], first.meta.get("action_mode", "")
    features: dict[str, Any] = {
        "observation.state": _vec(_names(first, robot)),
        **({"observation.environment_state": _vec(_names(first, env))} if env else {}),
        "action": _vec(ACTION_NAMES.get(mode, [])[:adim] if len(ACTION_NAMES.get(mode, [])) == adim
                       else [f"a{i}" for i in range(adim)]),
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
        "next.success": {"dtype": "bool", "shape": [1], "names": None},
        "enpire.ctrl": _vec([f"u{i}" for i in range(first.steps["ctrl"].shape[1])]),
        "enpire.qpos": _vec([f"q{i}" for i in range(first.steps["qpos"].shape[1])]),
        "enpire.qvel": _vec([f"v{i}" for i in range(first.steps["qvel"].shape[1])]),
        "enpire.quantities": _vec(list(first.meta["quantities"])),
        "enpire.attempt": {"dtype": "int64", "shape": [1], "names": None},
        "enpire.clamps": {"dtype": "int64", "shape": [1], "names": None},
        "enpire.safety_stop": {"dtype": "bool", "shape": [1], "names": None},
    }
    has_video = any(ep.frames is not None for ep in episodes)
    camera = str(first.meta.get("camera") or "front")
    video_key = f"observation.images.{camera}"
    tables, ep_rows, index, vt = [], [], 0, 0.0
    writer = None
    if has_video:
        import imageio.v2 as imageio

        h, w = next(ep.frames for ep in episodes if ep.frames is not None).shape[1:3]
        features[video_key] = {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                               "info": {"video.height": h, "video.width": w, "video.codec": "h264",
                                        "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                                        "video.channels": 3, "has_audio": False}}
        vpath = out / VIDEO_PATH.format(video_key=video_key, chunk_index=0, file_index=0)
        vpath.parent.mkdir(parents=True, exist_ok=True)
        writer = imageio.get_writer(str(vpath), fps=fps, codec="libx264", quality=6, macro_block_size=8,
                                    pixelformat="yuv420p")
    try:
        for i, ep in enumerate(episodes):
            n, s = ep.length, ep.steps
            done = np.zeros(n, bool)
            done[-1] = True
            success = done & ep.success
            cols = {
                "observation.state": np.concatenate([ep.obs(k) for k in robot], axis=1).astype(np.float32),
                **({"observation.environment_state": np.concatenate([ep.obs(k) for k in env], axis=1)
                    .astype(np.float32)} if env else {}),
                "action": s["actions"].astype(np.float32), "next.reward": s["reward"].astype(np.float32),
                "next.done": done, "next.success": success, "enpire.ctrl": s["ctrl"].astype(np.float32),
                "enpire.qpos": s["qpos"].astype(np.float32), "enpire.qvel": s["qvel"].astype(np.float32),
                "enpire.quantities": s["quantities"].astype(np.float32),
                "enpire.attempt": s["attempt"].astype(np.int64), "enpire.clamps": s["clamps"].astype(np.int64),
                "enpire.safety_stop": s["safety_stop"].astype(bool),
                "timestamp": (np.arange(n) / fps).astype(np.float32), "frame_index": np.arange(n, dtype=np.int64),
                "episode_index": np.full(n, i, np.int64), "index": np.arange(index, index + n, dtype=np.int64),
                "task_index": np.zeros(n, np.int64),
            }
            tables.append(pa.table({k: pa.FixedSizeListArray.from_arrays(pa.array(v.ravel()), v.shape[1])
                                    if v.ndim == 2 else pa.array(v) for k, v in cols.items()}))
            row = {"episode_index": i, "tasks": [info.get("task_description") or info.get("task", "")],
                   "length": n, "data/chunk_index": 0, "data/file_index": 0, "dataset_from_index": index,
                   "dataset_to_index": index + n, "meta/episodes/chunk_index": 0, "meta/episodes/file_index": 0,
                   **{f"enpire.{k}": v for k, v in ep.tags().items()}}
            if writer is not None:
                row.update({f"videos/{video_key}/chunk_index": 0, f"videos/{video_key}/file_index": 0,
                            f"videos/{video_key}/from_timestamp": vt, f"videos/{video_key}/to_timestamp": vt + n / fps})
                blank = np.zeros(features[video_key]["shape"], np.uint8)
                k = np.searchsorted(ep.frame_step, np.arange(n), side="right") - 1 if ep.frames is not None else None
                for j in range(n):
                    writer.append_data(ep.frames[k[j]] if k is not None and k[j] >= 0 else blank)
                vt += n / fps
            ep_rows.append(row)
            index += n
    finally:
        if writer is not None:
            writer.close()
    data_path = out / DATA_PATH.format(chunk_index=0, file_index=0)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.concat_tables(tables)
    pq.write_table(table, data_path)
    ep_path = out / EPISODES_PATH.format(chunk_index=0, file_index=0)
    ep_path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(ep_rows), ep_path)
    task = info.get("task_description") or info.get("task", "")
    import pandas as pd  # LeRobot keeps tasks as a DataFrame indexed by the task's text

    pd.DataFrame({"task_index": [0]}, index=pd.Index([task], name="task")).to_parquet(out / "meta/tasks.parquet")
    stats = {k: _stats(table.column(k).combine_chunks().flatten().to_numpy().reshape(len(table), -1))
             for k, f in features.items() if f["dtype"] == "float32" and len(f["shape"]) == 1 and f["shape"][0] > 1}
    (out / "meta/stats.json").write_text(json.dumps(stats))
    doc = {"codebase_version": CODEBASE_VERSION, "robot_type": info.get("robot"), "total_episodes": len(episodes),
           "total_frames": len(table), "total_tasks": 1, "chunks_size": 1000, "data_files_size_in_mb": 100,
           "video_files_size_in_mb": 500, "fps": fps, "splits": {"train": f"0:{len(episodes)}"},
           "data_path": DATA_PATH, "video_path": VIDEO_PATH if has_video else None,
           "features": {**features, **DEFAULT_FEATURES}, "enpire": {**info, "obs_keys": first.obs_keys}}
    (out / "meta/info.json").write_text(json.dumps(doc, indent=4))
    return doc
