"""Trial recordings: offscreen video (mp4) and trajectory (.npz) of one trial."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

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


TRAJECTORY_FORMAT = 1  # version of the trajectory .npz layout (docs/data.md)


class TrajectoryRecorder:
    """Per-step data of one trial, kept in arrays allocated once for the episode's step limit (memory bounded per
    trial: `max_steps` rows, frames capped to `max_bytes`), written as one .npz (docs/data.md).

    Per control step: the observation the policy acted on, its action, the command actually applied (`ctrl`
    after the envelope's clamping), clamped entries, the state after the step (`qpos`, `qvel`, mocap poses),
    every task quantity, the shaping reward, the attempt and whether the envelope stopped the robot; once: the
    initial state and the body poses the reset placed (so the file renders like an enpire.world.replay file).
    Built after the trial's reset; the station keeps it only for trials `record.trajectories` selects.
    """

    def __init__(self, spec: ExperimentSpec, model: mujoco.MjModel, data: mujoco.MjData, quantity: Any,
                 max_steps: int, camera: str | None = None, max_bytes: float = float("inf")) -> None:
        self.spec, self.capacity, self.n = spec, int(max_steps), 0
        self._quantity, self.qnames = quantity, tuple(spec.task.state_space)
        cap, nm = self.capacity, model.nmocap
        self.body_pos, self.body_quat = model.body_pos.copy(), model.body_quat.copy()
        self.qpos0, self.qvel0 = data.qpos.copy(), data.qvel.copy()
        self.arrays: dict[str, np.ndarray] = {
            "qpos": np.zeros((cap, model.nq)), "qvel": np.zeros((cap, model.nv)), "ctrl": np.zeros((cap, model.nu)),
            "mocap_pos": np.zeros((cap, nm, 3)), "mocap_quat": np.zeros((cap, nm, 4)),
            "quantities": np.zeros((cap, len(self.qnames))), "reward": np.zeros(cap),
            "clamps": np.zeros(cap, np.int32), "attempt": np.zeros(cap, np.int16), "safety_stop": np.zeros(cap, bool),
        }
        self.obs: dict[str, np.ndarray] = {}
        self.action: np.ndarray | None = None
        self.ctrl_range = model.actuator_ctrlrange.copy()
        self.camera = spec.video.camera or camera or ""
        self._renderer: mujoco.Renderer | None = None
        self.frames: np.ndarray | None = None
        self.frame_step: list[int] = []
        hz = float(spec.record.frames_hz)
        if hz > 0:
            v = spec.video
            self.every = max(1, round(1.0 / (hz * spec.control_dt)))
            frame_bytes = v.width * v.height * 3
            room = int(max(0.0, max_bytes - self.row_bytes() * cap) // frame_bytes)
            wanted = -(-cap // self.every) + 1
            count = min(wanted, room)
            if count < wanted:
                log.warning("record.frames_hz: %d frames of a trial fit record.max_mb; later ones are dropped", count)
            if count > 0:
                self.frames = np.zeros((count, v.height, v.width, 3), np.uint8)
                self._renderer = mujoco.Renderer(model, height=v.height, width=v.width)

    def row_bytes(self) -> int:
        return sum(a.itemsize * int(np.prod(a.shape[1:])) for a in self.arrays.values())

    def observation(self, obs: dict[str, np.ndarray]) -> None:
        """The observation the policy is about to act on (copied: a policy may modify its own)."""
        i = self.n
        if not self.obs:
            self.obs = {k: np.zeros((self.capacity, np.asarray(v).size)) for k, v in sorted(obs.items())}
        for k, arr in self.obs.items():
            arr[i] = np.ravel(obs[k])

    def step(self, data: mujoco.MjData, action: np.ndarray, clamps: int, stopped: bool, attempt: int) -> None:
        """After the control step: the action, the applied command and the state it led to."""
        i, a = self.n, self.arrays
        if self.action is None:
            self.action = np.zeros((self.capacity, action.size))
        self.action[i] = action
        a["qpos"][i], a["qvel"][i], a["ctrl"][i] = data.qpos, data.qvel, data.ctrl
        a["mocap_pos"][i], a["mocap_quat"][i] = data.mocap_pos, data.mocap_quat
        q, read = a["quantities"][i], self._quantity
        for j, name in enumerate(self.qnames):
            q[j] = read(name)
        a["clamps"][i], a["attempt"][i], a["safety_stop"][i] = clamps, attempt, stopped
        self.n = i + 1
        if self._renderer is not None and i % self.every == 0 and len(self.frame_step) < len(self.frames):
            self._renderer.update_scene(data, camera=self.camera)
            self.frames[len(self.frame_step)] = self._renderer.render()
            self.frame_step.append(i)

    def reward(self, value: float) -> None:
        """The shaping reward of the step just recorded (steps a safety stop ended keep 0)."""
        self.arrays["reward"][self.n - 1] = value

    def save(self, path: Path, meta: dict[str, Any]) -> str:
        """Write the .npz; `meta` (the trial's record, candidate, task and envelope) goes in as JSON."""
        import json

        n = self.n
        path.parent.mkdir(parents=True, exist_ok=True)
        out = {k: v[:n] for k, v in self.arrays.items()}
        out.update({f"obs/{k}": v[:n] for k, v in self.obs.items()})
        out["actions"] = self.action[:n] if self.action is not None else np.zeros((0, 0))
        out["step"] = np.arange(n, dtype=np.int64)
        if self.frames is not None and self.frame_step:
            out["frames"], out["frame_step"] = self.frames[:len(self.frame_step)], np.array(self.frame_step, np.int64)
        meta = {**meta, "format": TRAJECTORY_FORMAT, "obs_keys": list(self.obs), "quantities": list(self.qnames),
                "ctrl_range": self.ctrl_range.tolist(), "frames_hz": float(self.spec.record.frames_hz),
                "camera": self.camera}
        write = np.savez_compressed if "frames" in out else np.savez  # frames compress well; floats barely
        write(path, **out, qpos0=self.qpos0, qvel0=self.qvel0, body_pos=self.body_pos, body_quat=self.body_quat,
              fps=1.0 / self.spec.control_dt, camera=np.array(self.camera),
              meta=np.array(json.dumps(meta, default=float)))
        return str(path)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
