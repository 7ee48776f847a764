"""Plain parquet and robomimic-style HDF5 exports of recorded episodes, and the parquet read back.

parquet (`--format parquet`): `steps.parquet`, one row per control step of every episode (`episode_index`,
`trial_id`, `timestamp` and every per-step array of the trajectory under its own name: `obs/<key>`, `actions`,
`ctrl`, `clamps`, `qpos`, `qvel`, `mocap_pos`, `mocap_quat`, `quantities`, `reward`, `attempt`,
`safety_stop`, `step`; arrays as fixed-size lists, their shapes and dtypes in the schema metadata so they
come back exactly); `episodes.parquet`, one row per episode (trial id, candidate, outcome, seed, ...);
`frames/<trial_id>.mp4` where frames were recorded; `info.json`.

hdf5 (`--format hdf5`, robomimic's layout): `data/demo_<i>/{obs/<key>, actions, rewards, dones, states}`
with `num_samples`, the episode's tags as attributes and enpire's extra arrays under `demo_<i>/enpire/`;
`data` carries `total` and `env_args` (JSON); `mask/success` and `mask/failure` list the demos.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from enpire.data.episodes import STEP_KEYS, Episode


def step_arrays(ep: Episode) -> dict[str, np.ndarray]:
    """Every per-step array of an episode, obs first, in a fixed order."""
    keys = [f"obs/{k}" for k in ep.obs_keys] + [k for k in STEP_KEYS if k in ep.steps]
    return {k: ep.steps[k] for k in keys}


def write_frames_mp4(ep: Episode, path: Path) -> str | None:
    if ep.frames is None or not len(ep.frames):
        return None
    from enpire.world.recording import write_mp4

    return write_mp4(path, list(ep.frames), float(ep.meta.get("frames_hz") or 10.0))


def write_parquet(episodes: list[Episode], out: Path, info: dict[str, Any]) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out.mkdir(parents=True, exist_ok=True)
    columns: dict[str, list[Any]] = {}
    shapes: dict[str, dict[str, Any]] = {}
    for i, ep in enumerate(episodes):
        n = ep.length
        parts = {"episode_index": pa.array(np.full(n, i, np.int64)), "trial_id": pa.array([ep.trial_id] * n),
                 "timestamp": pa.array(ep.steps["step"] / ep.fps)}
        for k, a in step_arrays(ep).items():
            shapes[k] = {"shape": list(a.shape[1:]), "dtype": str(a.dtype)}
            if a.ndim > 1 and not int(np.prod(a.shape[1:])):  # e.g. mocap poses of a scene without mocap
                continue
            flat = a.reshape(n, -1)
            parts[k] = pa.array(a) if a.ndim == 1 else pa.FixedSizeListArray.from_arrays(
                pa.array(flat.ravel()), flat.shape[1])
        for k, v in parts.items():
            columns.setdefault(k, []).append(v)
    table = pa.table({k: pa.chunked_array(v) for k, v in columns.items()})
    table = table.replace_schema_metadata({"enpire.shapes": json.dumps(shapes), "enpire.info": json.dumps(info)})
    pq.write_table(table, out / "steps.parquet")
    rows = [ep.tags() | {"episode_index": i, "length": ep.length,
                         "frames": write_frames_mp4(ep, out / "frames" / f"{ep.trial_id}.mp4") is not None}
            for i, ep in enumerate(episodes)]
    pq.write_table(pa.Table.from_pylist(rows), out / "episodes.parquet")
    doc = {**info, "format": "enpire-parquet", "episodes": len(episodes), "steps": int(table.num_rows),
           "shapes": shapes}
    (out / "info.json").write_text(json.dumps(doc, indent=2))
    return doc


def read_parquet(folder: str | Path) -> tuple[list[dict[str, Any]], list[dict[str, np.ndarray]]]:
    """(episode rows, per-episode arrays) of a parquet export, the arrays with their recorded shapes and dtypes."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    table = pq.read_table(folder / "steps.parquet")
    shapes = json.loads(table.schema.metadata[b"enpire.shapes"])
    rows = pq.read_table(folder / "episodes.parquet").to_pylist()
    index = table.column("episode_index").to_numpy()
    out = []
    for row in rows:
        sel = np.flatnonzero(index == row["episode_index"])
        arrays = {}
        for k, s in shapes.items():
            if k not in table.column_names:  # a zero-size array: nothing stored
                arrays[k] = np.zeros([len(sel), *s["shape"]], dtype=s["dtype"])
                continue
            col = table.column(k).take(sel).combine_chunks()
            flat = col.flatten().to_numpy() if s["shape"] else col.to_numpy(zero_copy_only=False)
            arrays[k] = np.asarray(flat, dtype=s["dtype"]).reshape([len(sel), *s["shape"]])
        out.append(arrays)
    return rows, out


def write_hdf5(episodes: list[Episode], out: Path, info: dict[str, Any]) -> dict[str, Any]:
    import h5py

    out.mkdir(parents=True, exist_ok=True)
    path = out / "data.hdf5"
    total = 0
    with h5py.File(path, "w") as f:
        data = f.create_group("data")
        names: dict[bool, list[str]] = {True: [], False: []}
        for i, ep in enumerate(episodes):
            g = data.create_group(f"demo_{i}")
            n = ep.length
            for k in ep.obs_keys:
                g.create_dataset(f"obs/{k}", data=ep.obs(k))
            g.create_dataset("actions", data=ep.steps["actions"])
            g.create_dataset("rewards", data=ep.steps["reward"])
            dones = np.zeros(n, np.int64)
            dones[-1:] = 1
            g.create_dataset("dones", data=dones)
            g.create_dataset("states", data=np.concatenate([ep.steps["qpos"], ep.steps["qvel"]], axis=1))
            for k in ("ctrl", "clamps", "quantities", "attempt", "safety_stop", "qpos", "qvel", "step"):
                g.create_dataset(f"enpire/{k}", data=ep.steps[k])
            if ep.frames is not None:
                g.create_dataset("enpire/frames", data=ep.frames, compression="gzip")
                g.create_dataset("enpire/frame_step", data=ep.frame_step)
            g.attrs["num_samples"] = n
            g.attrs["model_file"] = ""
            for key, value in ep.tags().items():
                g.attrs[key] = value
            names[ep.success].append(f"demo_{i}")
            total += n
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps({"env_name": info.get("task"), "type": "enpire",
                                             "env_kwargs": {k: v for k, v in info.items() if k != "task"}})
        for label, ok in (("success", True), ("failure", False)):
            f.create_dataset(f"mask/{label}", data=np.array(names[ok], dtype="S"))
    doc = {**info, "format": "robomimic-hdf5", "episodes": len(episodes), "steps": total, "file": path.name}
    (out / "info.json").write_text(json.dumps(doc, indent=2))
    return doc
