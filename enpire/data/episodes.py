"""One recorded trial as an episode: the arrays of its trajectory .npz and the metadata the station wrote with it.

The .npz is enpire.world.recording.TrajectoryRecorder's: per control step `obs/<key>`, `actions` (the policy's),
`ctrl` (the command applied after the envelope's clamping), `clamps`, `qpos`, `qvel`, `mocap_pos`,
`mocap_quat`, `quantities` (the task's, named in meta), `reward` (shaping), `attempt`, `safety_stop`, `step`;
optionally `frames` with `frame_step`; once: `qpos0`, `qvel0`, `body_pos`, `body_quat`, `fps`, `camera`, and
`meta` (JSON: the trial record, the candidate, task, robot, envelope limits, fingerprints).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

STEP_KEYS = ("actions", "ctrl", "clamps", "qpos", "qvel", "mocap_pos", "mocap_quat", "quantities", "reward",
             "attempt", "safety_stop", "step")  # per-step arrays besides obs/<key>, in every trajectory


@dataclass
class Episode:
    """A trajectory file, loaded."""

    path: Path
    meta: dict[str, Any]
    steps: dict[str, np.ndarray]  # STEP_KEYS and "obs/<key>", each [T, ...]
    frames: np.ndarray | None  # [F, H, W, 3] uint8
    frame_step: np.ndarray | None  # control step of each frame
    once: dict[str, np.ndarray]  # qpos0, qvel0, body_pos, body_quat

    @classmethod
    def load(cls, path: str | Path) -> Episode:
        with np.load(path) as z:
            meta = json.loads(str(z["meta"]))
            steps = {k: z[k] for k in z.files if k in STEP_KEYS or k.startswith("obs/")}
            frames = z["frames"] if "frames" in z.files else None
            frame_step = z["frame_step"] if "frame_step" in z.files else None
            once = {k: z[k] for k in ("qpos0", "qvel0", "body_pos", "body_quat")}
        return cls(Path(path), meta, steps, frames, frame_step, once)

    @property
    def trial_id(self) -> str:
        return str(self.meta["trial_id"])

    @property
    def length(self) -> int:
        return len(self.steps["step"])

    @property
    def obs_keys(self) -> list[str]:
        return list(self.meta["obs_keys"])

    @property
    def success(self) -> bool:
        """Did the verifier pass an attempt (pass@k)?"""
        return bool(self.meta.get("pass_at_k"))

    @property
    def fps(self) -> float:
        return 1.0 / float(self.meta["control_dt"])

    def obs(self, key: str) -> np.ndarray:
        return self.steps[f"obs/{key}"]

    def tags(self) -> dict[str, Any]:
        """What identifies the episode in an exported dataset."""
        m = self.meta
        return {"trial_id": m["trial_id"], "iteration": int(m["iteration"]), "seed": int(m["seed"]),
                "station": int(m["station"]), "candidate_id": m["candidate"]["candidate_id"],
                "candidate": json.dumps(m["candidate"], sort_keys=True), "outcome": m["outcome"],
                "success": bool(m.get("pass_at_k")), "success_attempt": m.get("success_attempt") or 0,
                "attempts": int(m["attempts"]), "steps": int(m["steps"]), "reason": m.get("reason", "")}


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def digest(files: list[Path] | list[str], root: str | Path | None = None) -> str:
    """One digest of a set of files (names, relative to `root` when given, and contents), independent of their
    order: the dataset's identity."""
    h = hashlib.sha256()
    named = ((Path(f).relative_to(root).as_posix() if root else Path(f).name, file_digest(f)) for f in files)
    for name, d in sorted(named):
        h.update(f"{name}\0{d}\n".encode())
    return h.hexdigest()


def load_dir(folder: str | Path) -> list[Episode]:
    """Every trajectory .npz of a folder, in trial-id order."""
    return [Episode.load(p) for p in sorted(Path(folder).glob("*.npz")) if not p.name.endswith(".replay.npz")]
