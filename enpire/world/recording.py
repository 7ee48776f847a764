"""Trial recordings: offscreen video (mp4) and trajectory (.npz) of one trial."""

from __future__ import annotations

import logging
from pathlib import Path

import mujoco
import numpy as np

from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)


def write_mp4(path: Path, frames: list[np.ndarray], fps: float) -> str:
    """Encode RGB frames as an H.264 mp4 (imageio-ffmpeg); returns the path."""
    import imageio.v2 as imageio

    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(str(path), frames, fps=fps, codec="libx264", quality=6, macro_block_size=8)
    return str(path)


class FrameSampler:
    """Captures the scene every `every` control steps: one capture per frame at spec.video.fps."""

    def __init__(self, spec: ExperimentSpec, camera: str) -> None:
        self.spec = spec
        self.camera = spec.video.camera or camera
        self.every = max(1, round(1.0 / (spec.video.fps * spec.control_dt)))

    def maybe_capture(self, data: mujoco.MjData, step: int) -> None:
        if step % self.every == 0:
            self.capture(data)

    def capture(self, data: mujoco.MjData) -> None:
        raise NotImplementedError


class VideoRecorder(FrameSampler):
    """Renders the scene at each frame during the trial and writes an mp4 at spec.video.fps."""

    def __init__(self, spec: ExperimentSpec, model: mujoco.MjModel, camera: str) -> None:
        super().__init__(spec, camera)
        self.frames: list[np.ndarray] = []
        self._renderer = mujoco.Renderer(model, height=spec.video.height, width=spec.video.width)

    def capture(self, data: mujoco.MjData) -> None:
        self._renderer.update_scene(data, camera=self.camera)
        self.frames.append(self._renderer.render().copy())

    def save(self, path: Path) -> str | None:
        return write_mp4(path, self.frames, self.spec.video.fps) if self.frames else None

    def close(self) -> None:
        self._renderer.close()


class TrajectoryRecorder:
    """States and actions of every control step."""

    def __init__(self) -> None:
        self.qpos: list[np.ndarray] = []
        self.qvel: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.attempt: list[int] = []

    def add(self, data: mujoco.MjData, action: np.ndarray, attempt: int) -> None:
        self.qpos.append(data.qpos.copy())
        self.qvel.append(data.qvel.copy())
        self.actions.append(np.asarray(action, dtype=float).copy())
        self.attempt.append(attempt)

    def save(self, path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        acts = np.array(self.actions) if self.actions else np.zeros((0, 0))
        np.savez_compressed(path, qpos=np.array(self.qpos), qvel=np.array(self.qvel), actions=acts,
                            attempt=np.array(self.attempt))
        return str(path)
