"""Trial replays: the few numbers a station keeps so a video can be rendered later, off the robot's time.

A station records, at the video frame rate, the scene's positions (`qpos`, mocap poses) and the
control step of each frame and, once per trial, the pose of every body in its parent's frame
(`model.body_pos` and `model.body_quat`: a task's reset may move and turn fixed bodies, e.g. drawer's
cabinet yaw, reach's target). Those determine every body's world pose (`xpos`, `xquat`) through
`mj_forward`; velocities do not, so they are not kept. That is a few KB per trial and costs nothing
measurable per control step. The trials a session shows (enpire.track.videos) are then rendered with
`ReplayRenderer`, which sets each frame's state (`restore`), runs `mj_forward` and renders it offscreen:
the same pictures as rendering during the trial, without a station waiting on software rendering.
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
        self.body_pos = model.body_pos.copy()  # after the reset: tasks move and turn bodies there
        self.body_quat = model.body_quat.copy()
        self.steps: list[int] = []
        self.qpos: list[np.ndarray] = []
        self.mocap_pos: list[np.ndarray] = []
        self.mocap_quat: list[np.ndarray] = []

    def maybe_capture(self, data: mujoco.MjData, step: int) -> None:
        if step % self.every == 0:
            self.steps.append(step)
            self.capture(data)

    def capture(self, data: mujoco.MjData) -> None:
        self.qpos.append(data.qpos.copy())
        self.mocap_pos.append(data.mocap_pos.copy())
        self.mocap_quat.append(data.mocap_quat.copy())

    def save(self, path: Path) -> str | None:
        if not self.qpos:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, qpos=np.array(self.qpos), mocap_pos=np.array(self.mocap_pos),
                 mocap_quat=np.array(self.mocap_quat), body_pos=self.body_pos, body_quat=self.body_quat,
                 step=np.array(self.steps, dtype=np.int64), fps=self.spec.video.fps, camera=np.array(self.camera))
        return str(path)


class Replay:
    """A replay file, loaded: `restore(model, data, i)` puts the scene in frame i's state."""

    def __init__(self, path: str | Path) -> None:
        with np.load(path) as doc:
            self.qpos, self.mocap_pos, self.mocap_quat = doc["qpos"], doc["mocap_pos"], doc["mocap_quat"]
            self.body_pos = doc["body_pos"]
            self.body_quat = doc["body_quat"] if "body_quat" in doc else None  # replays before body_quat was kept
            self.steps = doc["step"] if "step" in doc else None
            self.fps, self.camera = float(doc["fps"]), str(doc["camera"])
        self.path = str(path)

    def __len__(self) -> int:
        return len(self.qpos)

    def check(self, model: mujoco.MjModel) -> None:
        """ValueError when the replay does not fit this scene."""
        if self.qpos.ndim != 2 or self.qpos.shape[1] != model.nq or self.body_pos.shape != model.body_pos.shape \
                or (self.body_quat is not None and self.body_quat.shape != model.body_quat.shape):
            raise ValueError(f"replay {self.path}: qpos {self.qpos.shape}, body_pos {self.body_pos.shape}; "
                             f"this scene has nq={model.nq}, {model.nbody} bodies")

    def place_bodies(self, model: mujoco.MjModel) -> None:
        """Set the trial's body poses (relative to their parents) in `model`."""
        model.body_pos[:] = self.body_pos
        if self.body_quat is not None:
            model.body_quat[:] = self.body_quat

    def restore(self, model: mujoco.MjModel, data: mujoco.MjData, i: int) -> None:
        """Frame i's state in `data` with every body's world pose computed (`place_bodies` first)."""
        data.qpos[:] = self.qpos[i]
        if model.nmocap:
            data.mocap_pos[:] = self.mocap_pos[i]
            data.mocap_quat[:] = self.mocap_quat[i]
        mujoco.mj_forward(model, data)


# Off in replay videos: software EGL renders a frame ~2.5x faster without them (29 -> 11 ms at 320x240);
# the robot and the objects, which is what a reader checks, look the same.
EXPENSIVE_EFFECTS = (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX)


class ReplayRenderer:
    """Renders replays of one session's scene (built once, lazily) to mp4 files."""

    def __init__(self, spec: ExperimentSpec, size: tuple[int, int] | None = None) -> None:
        self.spec = spec
        self.width, self.height = size or (spec.video.width, spec.video.height)
        self._model: mujoco.MjModel | None = None
        self._data: mujoco.MjData | None = None
        self._renderer: mujoco.Renderer | None = None

    def _scene(self) -> tuple[mujoco.MjModel, mujoco.MjData, mujoco.Renderer]:
        if self._model is None or self._data is None or self._renderer is None:
            from enpire.world.scene import build_scene

            scene = build_scene(self.spec)
            self._model, self._data = scene.model, scene.data
            vis = self._model.vis.global_  # the offscreen buffer must hold this renderer's size
            vis.offwidth, vis.offheight = max(int(vis.offwidth), self.width), max(int(vis.offheight), self.height)
            self._renderer = mujoco.Renderer(self._model, height=self.height, width=self.width)
        return self._model, self._data, self._renderer

    def frames_ready(self) -> None:
        """Build the scene and its GL context now (they are otherwise built by the first frame)."""
        self._scene()

    def render(self, replay: str | Path, out: Path) -> str:
        """Write `out` (mp4) from the replay file; raises ValueError when the replay does not fit this scene."""
        rep = Replay(replay)
        return write_mp4(out, self.frames(rep), rep.fps)

    def frames(self, replay: str | Path | Replay, indices: list[int] | None = None) -> list[np.ndarray]:
        """RGB frames (height x width x 3) of the replay, all of them or those at `indices`;
        ValueError when the replay does not fit this scene or an index is out of range."""
        model, data, renderer = self._scene()
        rep = replay if isinstance(replay, Replay) else Replay(replay)
        rep.check(model)
        chosen = list(range(len(rep))) if indices is None else [int(i) for i in indices]
        if any(not 0 <= i < len(rep) for i in chosen):
            raise ValueError(f"replay {rep.path}: frames {chosen} asked, it has {len(rep)}")
        saved = model.body_pos.copy(), model.body_quat.copy()
        rep.place_bodies(model)
        frames = []
        try:
            for i in chosen:
                rep.restore(model, data, i)
                renderer.update_scene(data, camera=rep.camera)
                for flag in EXPENSIVE_EFFECTS:
                    renderer.scene.flags[flag] = 0
                frames.append(renderer.render().copy())
        finally:
            model.body_pos[:], model.body_quat[:] = saved
        return frames

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
