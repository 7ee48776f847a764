"""Trial replays: the few numbers a station keeps so a video can be rendered later, off the robot's time.

A station records, at the video frame rate, the scene's positions (`qpos`, mocap poses) and, once per
trial, the body positions a task's reset may move (reach moves its target body). That is a few KB per
trial and costs nothing measurable per control step. The session's MLflow writer then renders only the
trials an iteration shows (its first failure and first success) with `ReplayRenderer`, which sets each
frame's state, runs `mj_forward` and renders it offscreen: the same pictures as rendering during the
trial, without a station waiting on software rendering.
"""

from __future__ import annotations

import logging
from pathlib import Path

import mujoco
import numpy as np

from enpire.spec.model import ExperimentSpec
from enpire.world.recording import FrameSampler, write_mp4

log = logging.getLogger(__name__)


class ReplayRecorder(FrameSampler):
    """Keeps the scene's positions at each frame; `save` writes them as an .npz."""

    def __init__(self, spec: ExperimentSpec, model: mujoco.MjModel, camera: str) -> None:
        super().__init__(spec, camera)
        self.body_pos = model.body_pos.copy()  # after the reset: tasks may move bodies there
        self.qpos: list[np.ndarray] = []
        self.mocap_pos: list[np.ndarray] = []
        self.mocap_quat: list[np.ndarray] = []

    def capture(self, data: mujoco.MjData) -> None:
        self.qpos.append(data.qpos.copy())
        self.mocap_pos.append(data.mocap_pos.copy())
        self.mocap_quat.append(data.mocap_quat.copy())

    def save(self, path: Path) -> str | None:
        if not self.qpos:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, qpos=np.array(self.qpos), mocap_pos=np.array(self.mocap_pos),
                 mocap_quat=np.array(self.mocap_quat), body_pos=self.body_pos, fps=self.spec.video.fps,
                 camera=np.array(self.camera))
        return str(path)


# Off in replay videos: software EGL renders a frame ~2.5x faster without them (29 -> 11 ms at 320x240);
# the robot and the objects, which is what a reader checks, look the same.
EXPENSIVE_EFFECTS = (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX)


class ReplayRenderer:
    """Renders replays of one session's scene (built once, lazily) to mp4 files."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        self._model: mujoco.MjModel | None = None
        self._data: mujoco.MjData | None = None
        self._renderer: mujoco.Renderer | None = None

    def _scene(self) -> tuple[mujoco.MjModel, mujoco.MjData, mujoco.Renderer]:
        if self._model is None or self._data is None or self._renderer is None:
            from enpire.world.scene import build_scene

            scene = build_scene(self.spec)
            self._model, self._data = scene.model, scene.data
            self._renderer = mujoco.Renderer(self._model, height=self.spec.video.height, width=self.spec.video.width)
        return self._model, self._data, self._renderer

    def render(self, replay: str | Path, out: Path) -> str:
        """Write `out` (mp4) from the replay file; raises ValueError when the replay does not fit this scene."""
        model, data, renderer = self._scene()
        with np.load(replay) as doc:
            qpos, mocap_pos, mocap_quat = doc["qpos"], doc["mocap_pos"], doc["mocap_quat"]
            body_pos, fps, camera = doc["body_pos"], float(doc["fps"]), str(doc["camera"])
        if qpos.ndim != 2 or qpos.shape[1] != model.nq or body_pos.shape != model.body_pos.shape:
            raise ValueError(f"replay {replay}: qpos {qpos.shape}, body_pos {body_pos.shape}; this scene has "
                             f"nq={model.nq}, {model.nbody} bodies")
        saved_body_pos = model.body_pos.copy()
        model.body_pos[:] = body_pos
        frames = []
        try:
            for i in range(len(qpos)):
                data.qpos[:] = qpos[i]
                if model.nmocap:
                    data.mocap_pos[:] = mocap_pos[i]
                    data.mocap_quat[:] = mocap_quat[i]
                mujoco.mj_forward(model, data)
                renderer.update_scene(data, camera=camera)
                for flag in EXPENSIVE_EFFECTS:
                    renderer.scene.flags[flag] = 0
                frames.append(renderer.render().copy())
        finally:
            model.body_pos[:] = saved_body_pos
        return write_mp4(out, frames, fps)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
