"""Gymnasium wrapper: `gymnasium.make("enpire/Drawer-v0")` for every registered task.

Importing this module registers `enpire/<Task>-v0` (CamelCase of the task name, e.g.
`enpire/PushT-v0`). From a fresh interpreter, without importing enpire first, name the module in
the id: `gymnasium.make("enpire.world.gym_env:enpire/Drawer-v0")` (Gymnasium imports it, then
makes the env). Gymnasium 1.0 removed the `gymnasium.envs` entry-point plugins that once
registered third-party envs on `import gymnasium`, so a bare `enpire/Drawer-v0` needs the
import (or `gymnasium.register_envs(enpire.world.gym_env)`) first.

The env runs the same station internals (verified reset, controller,
envelope, verifier) one control step per `step`; the action is the cartesian action
`[x, y, z, yaw, grip]`. `terminated` is true once the frozen predicate has held or a safety
breach stopped the robot (info["safety_event"]); `truncated` at done.episode.time_limit_s.
The reward is the task's shaping reward; info["success"] is the verifier's verdict.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from enpire import plugins
from enpire.spec import load_spec
from enpire.world.station import SimStation


def env_id(task: str) -> str:
    return "enpire/" + "".join(part.capitalize() for part in task.split("_")) + "-v0"


class EnpireEnv(gym.Env):
    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, task: str = "drawer", overrides: tuple[str, ...] = (), render_mode: str | None = None) -> None:
        self.spec_ = load_spec([f"task={task}", *overrides])
        if self.spec_.policy.action_mode != "cartesian":
            raise ValueError("policy.action_mode: the gym wrapper speaks cartesian actions only")
        self.station = SimStation(self.spec_, 0)
        self.render_mode = render_mode
        ws = self.spec_.safety.workspace
        self.action_space = spaces.Box(np.array([*ws.low, -math.pi, 0.0]), np.array([*ws.high, math.pi, 1.0]),
                                       dtype=np.float64)
        obs = self.station.observe()
        self.observation_space = spaces.Dict({k: spaces.Box(-np.inf, np.inf, v.shape, np.float64)
                                              for k, v in obs.items()})
        self._limit = math.ceil(self.spec_.done.time_limit_s / self.spec_.control_dt - 1e-9)
        self._renderer = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        s = int(self.np_random.integers(2**31)) if seed is None else seed
        if not self.station.reset(s):
            raise RuntimeError(f"reset failed: {self.station._last_reset.problems}")
        self.station._verifier.begin_attempt()
        self._t = 0
        return self.station.observe(), {"init": dict(self.station._last_reset.init)}

    def step(self, action: np.ndarray):
        _, event = self.station.step(np.asarray(action, dtype=float), self._t)
        self._t += 1
        ver = self.station._verifier
        met = event is None and ver.step(self.spec_.control_dt)
        phys = self.station.scene.physics
        reward = float(self.station.scene.task.shaping_reward(phys))
        terminated = bool(met or event is not None)
        truncated = not terminated and self._t >= self._limit
        info: dict[str, Any] = {"state": self.station.state(), "safety_event": event}
        if terminated or truncated:
            info["success"] = ver.verdict(safety_stopped=event is not None).success
        return self.station.observe(), reward, terminated, truncated, info

    def render(self):
        if self._renderer is None:
            import mujoco

            v = self.spec_.video
            self._renderer = mujoco.Renderer(self.station.scene.model, height=v.height, width=v.width)
        self._renderer.update_scene(self.station.scene.data, camera=self.spec_.video.camera or "front")
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


def register_all() -> list[str]:
    ids = []
    for name in plugins.names("tasks"):
        eid = env_id(name)
        if eid not in gym.registry:
            gym.register(id=eid, entry_point="enpire.world.gym_env:EnpireEnv", kwargs={"task": name})
        ids.append(eid)
    return ids


ENV_IDS = register_all()
