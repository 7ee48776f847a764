"""Frames of a station's camera at the detector's size: what the detector sees, in training and when it judges.

One renderer per station, drawing without shadows, reflections or skybox (about 4 ms a 64x64 frame in
software rendering instead of 10-20; the frames look the same to the detector in training and in use, since
both come from here). Cameras and lights
only change what is drawn, never the physics, so the optional jitter (training data only) moves them a little.
"""

from __future__ import annotations

import mujoco
import numpy as np

OFF = (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION, mujoco.mjtRndFlag.mjRND_SKYBOX)


class CameraNotFound(ValueError):
    pass


class FrameCamera:
    def __init__(self, model: mujoco.MjModel, camera: str, size: int) -> None:
        self.camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        if self.camera_id < 0:
            names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
            raise CameraNotFound(f"camera {camera!r} is not in the task's model (it has {', '.join(names) or 'none'})")
        self.model, self.camera = model, camera
        self._renderer = mujoco.Renderer(model, height=size, width=size)
        self._cam_pos0 = model.cam_pos[self.camera_id].copy()
        self._light0 = model.light_diffuse.copy()

    def frame(self, data: mujoco.MjData) -> np.ndarray:
        """The camera's view of `data` now: uint8 (size, size, 3), a fresh array."""
        self._renderer.update_scene(data, camera=self.camera_id)
        flags = self._renderer.scene.flags
        for flag in OFF:
            flags[flag] = 0
        return self._renderer.render().copy()

    def jitter(self, rng: np.random.Generator, camera_m: float = 0.01, light: float = 0.15) -> None:
        """Training data only: move the camera by up to `camera_m` and scale the lights by up to +-`light`."""
        m = self.model
        m.cam_pos[self.camera_id] = self._cam_pos0 + rng.uniform(-camera_m, camera_m, 3)
        m.light_diffuse[:] = np.clip(self._light0 * rng.uniform(1 - light, 1 + light, (len(self._light0), 1)), 0, 1)

    def restore(self) -> None:
        self.model.cam_pos[self.camera_id] = self._cam_pos0
        self.model.light_diffuse[:] = self._light0

    def close(self) -> None:
        self._renderer.close()
