"""The learner: stable-baselines3 SAC with RLPD-style symmetric sampling of demonstrations and online data.

Why stable-baselines3 (not TorchRL): its SAC is a small, long-kept reference implementation that runs on
torch 2.13's CPU wheel with nothing else, its `ReplayBuffer` is a plain class whose `sample` one subclass
replaces (the demo/online mix below), and `SAC.train(gradient_steps, batch_size)` can be driven step by
step from transitions that arrive from the stations, without SB3's own environment loop. TorchRL would
add tensordict and its collector/env machinery, which the stations' trial protocol replaces anyway.

The learner never steps an environment: stations are the actors. `SpacesEnv` only declares the spaces
SB3 builds its networks from.

Determinism: SB3 is seeded (`seed`, which seeds torch, numpy and the buffers' sampling), torch runs one
thread with deterministic algorithms where it has them; given the same transitions in the same order the
learner's snapshots are the same. Which snapshot a station's trial runs depends on when the trial started
relative to the learner's publications (stations and learner run concurrently), so an rl session is not
bit-repeatable across runs with fleet >= 1 the way a scripted session is (docs/policies.md).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.logger import configure
from stable_baselines3.common.type_aliases import ReplayBufferSamples

from enpire.policy.rl import ACTION_SIZE, publish_snapshot, write_meta
from enpire.policy.transitions import Transitions

log = logging.getLogger(__name__)
INITIAL_LOG_STD = -2.5  # pre-tanh std 0.08: about the entropy SAC targets for 5 action dims
# SAC's temperature starts at 0.01, not SB3's 1.0: rewards here are shaping terms of a few hundredths a step,
# against which a temperature of 1 makes entropy the whole objective (the policy's std tripled within a few
# hundred steps and the residual forgot the task); it is still tuned towards the target entropy from there
INITIAL_ENT_COEF = "auto_0.01"


class SpacesEnv(gym.Env):
    """Declares the learner's spaces for SB3; never stepped (stations are the actors)."""

    def __init__(self, obs_dim: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (ACTION_SIZE,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        raise RuntimeError("SpacesEnv is never stepped: stations run the trials")

    def step(self, action: np.ndarray) -> tuple:
        raise RuntimeError("SpacesEnv is never stepped: stations run the trials")


def _fill(buffer: ReplayBuffer, data: Transitions) -> None:
    for t in range(len(data)):
        buffer.add(data.obs[t:t + 1], data.next_obs[t:t + 1], data.action[t:t + 1], data.reward[t:t + 1],
                   data.done[t:t + 1], [{}])


class DemoMixBuffer(ReplayBuffer):
    """Online replay that samples `demo_ratio` of every batch from a separate demonstration buffer (RLPD).

    With no online data yet the whole batch comes from the demonstrations, and the other way round."""

    def __init__(self, *args: Any, demo_ratio: float = 0.5, demo_size: int = 100000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.demo_ratio = float(demo_ratio)
        self.demos = ReplayBuffer(demo_size, self.observation_space, self.action_space, device=self.device,
                                  n_envs=1, optimize_memory_usage=False)

    def sample(self, batch_size: int, env: Any = None) -> ReplayBufferSamples:
        online, demos = self.size(), self.demos.size()
        n_demo = round(self.demo_ratio * batch_size) if online else batch_size
        n_demo = n_demo if demos else 0
        n_online = batch_size - n_demo
        parts = []
        if n_demo:
            parts.append(self.demos.sample(n_demo, env))
        if n_online:
            parts.append(super().sample(n_online, env))
        return ReplayBufferSamples(*(None if getattr(parts[0], f) is None else torch.cat([getattr(p, f) for p in parts])
                                     for f in ReplayBufferSamples._fields))


def resolve_device(device: str) -> str:
    """trainer device `auto`: cuda when torch sees one, else CPU."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


class Learner:
    """One SAC learner for one rl candidate: add transitions, take gradient steps, publish snapshots."""

    def __init__(self, obs_dim: int, recipe: dict[str, Any], seed: int = 0, device: str = "auto",
                 init_from: str | None = None, base_params: dict[str, float] | None = None) -> None:
        torch.set_num_threads(1)
        torch.use_deterministic_algorithms(True, warn_only=True)
        self.recipe, self.device = recipe, resolve_device(device)
        self.base_params = dict(base_params or {})  # the residual's scripted base, for the stations (meta.json)
        env = SpacesEnv(obs_dim)
        kwargs: dict[str, Any] = dict(
            learning_rate=float(recipe["learning_rate"]), batch_size=int(recipe["batch_size"]),
            gamma=float(recipe["gamma"]), buffer_size=int(recipe["buffer_size"]), learning_starts=0,
            replay_buffer_class=DemoMixBuffer, replay_buffer_kwargs={"demo_ratio": float(recipe["demo_ratio"])},
            policy_kwargs={"net_arch": [int(h) for h in recipe["hidden_sizes"]]}, ent_coef=INITIAL_ENT_COEF,
            seed=int(seed), device=self.device)
        if init_from:  # warm start: the kept checkpoint's networks, this recipe's buffer and learning rate
            replaced = {k: kwargs[k] for k in ("learning_rate", "batch_size", "gamma")}
            kept = {k: kwargs[k] for k in ("buffer_size", "replay_buffer_class", "replay_buffer_kwargs", "seed")}
            self.model = SAC.load(init_from, env=env, device=self.device, custom_objects=replaced, **kept)
            if self.model.observation_space.shape != env.observation_space.shape:
                raise ValueError(f"candidate.recipe.warm_start: the checkpoint {init_from!r} takes observations "
                                 f"of shape {self.model.observation_space.shape}; this task gives {obs_dim}")
        else:
            self.model = SAC("MlpPolicy", env, **kwargs)
            with torch.no_grad():  # exploration on a robot starts small (SAC would start at std 1.0)
                self.model.actor.log_std.bias.fill_(INITIAL_LOG_STD)
        if bool(recipe["residual"]) and not init_from:
            self._zero_residual()
        self.model.set_logger(configure(None, []))
        self.updates = 0
        self.busy_s = 0.0
        self.published = 0
        self.last_losses: dict[str, float] = {}

    def _zero_residual(self) -> None:
        """A fresh residual learner starts as the scripted baseline: the actor's mean layer outputs zero."""
        with torch.no_grad():
            self.model.actor.mu.weight.mul_(0.0)
            self.model.actor.mu.bias.mul_(0.0)

    @property
    def buffer(self) -> DemoMixBuffer:
        return self.model.replay_buffer  # type: ignore[return-value]

    def add(self, data: Transitions, demo: bool = False) -> None:
        _fill(self.buffer.demos if demo else self.buffer, data)

    def has_data(self) -> bool:
        return self.buffer.size() + self.buffer.demos.size() > 0

    def update(self, steps: int) -> float:
        """`steps` gradient steps; returns their seconds (charged to the trainer)."""
        if steps <= 0 or not self.has_data():
            return 0.0
        t0 = time.perf_counter()
        self.model.train(gradient_steps=int(steps), batch_size=int(self.recipe["batch_size"]))
        self.updates += int(steps)
        values = self.model.logger.name_to_value
        self.last_losses = {k.split("/")[-1]: float(v) for k, v in values.items() if "loss" in k or "ent_coef" in k}
        seconds = time.perf_counter() - t0
        self.busy_s += seconds
        return seconds

    def publish(self, directory: str | Path) -> Path:
        """The current networks as the next snapshot of `directory` (what stations pick up between trials)."""
        if self.published == 0:
            write_meta(directory, {"residual": bool(self.recipe["residual"]),
                                   "action_scale": float(self.recipe["action_scale"]),
                                   "explore": bool(self.recipe["explore"]), "base_params": self.base_params})
        path = publish_snapshot(self.model, directory, self.published)
        self.published += 1
        return path

    def save(self, path: str | Path) -> str:
        """The learner's checkpoint: the whole SB3 model (networks, optimizers, temperature), no replay data."""
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.model.save(str(path))
        return str(path)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The deterministic action (tanh of the mean) for features `x` (batch first)."""
        action, _ = self.model.predict(np.asarray(x, np.float32), deterministic=True)
        return action
