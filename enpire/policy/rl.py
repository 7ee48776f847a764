"""policy=rl on the station: run the learner's newest snapshot, picked up when a trial starts, never mid-trial.

A candidate of kind rl carries `checkpoint`: the directory the learner publishes into (enpire.policy.rl_learner).
It holds `meta.json` (written once, before the first snapshot: the action mapping) and `snap-NNNNNN.zip` files,
each a whole stable-baselines3 SAC model written to a temporary name and renamed into place, so a listing never
sees half a file. `build_rl_policy` runs when the station starts a trial: it loads the highest-numbered snapshot
then, and the policy keeps that network in memory for the whole trial; a snapshot published while the trial runs
is first used by the station's next trial.

The learner's action `a` lives in [-1, 1]^5 (SAC's squashed Gaussian). `ActionMap` turns it into the station's
cartesian command `[x, y, z, yaw, grip]`:
- residual (default): the tuned scripted baseline's command plus `action_scale * a` in position, `YAW_SCALE * a`
  rad in yaw and `GRIP_SCALE * a` in grip (the learner starts as the baseline: a zero action is its command);
- direct: the end-effector position plus `action_scale * a`, yaw `YAW_RANGE * a`, grip `(a + 1) / 2`.
Yaw moves are kept small: a per-step random heading is what the wrist's velocity limit stops first.
The map is inverted on recorded trajectories (enpire.policy.transitions) to recover the learner's action from
the command the station recorded. The scripted base is always reset without feedback, on the station as in
the replay, so the replayed base equals the executed one.

Exploration (`explore: true`) is smooth: the policy's Gaussian is sampled with temporally correlated noise, an
Ornstein-Uhlenbeck process of unit variance and correlation time NOISE_CORRELATION_S (1 s), started afresh at
each attempt, instead of an independent draw every control step. Per-step noise at 50 Hz shakes the arm (on a
real robot, the gearboxes) and breaks every "held still" condition (reach's 0.05 m/s, a peg's hold) even where
the mean action is right; correlated noise explores offsets the arm can act out and the verifier can judge,
as state-dependent exploration does for real-robot RL. The noise comes from a numpy generator seeded from the
trial's first observation and the snapshot number: a trial's actions are a function of its reset state and its
snapshot.
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from enpire.policy.api import flatten_observation
from enpire.records import Candidate
from enpire.spec.model import ExperimentSpec
from enpire.world.api import AttemptFeedback, Observation, Policy

ACTION_SIZE = 5
YAW_SCALE, GRIP_SCALE = 0.1, 0.25  # residual: rad of heading and grip command per unit of action
YAW_RANGE = 0.5  # direct: rad of heading at |a| = 1
NOISE_CORRELATION_S = 1.0  # s: correlation time of the exploration noise (see the module docstring)
SNAPSHOT_GLOB = "snap-*.zip"


# ---- snapshots: a directory of numbered SB3 models --------------------------------------------
def snapshot_path(directory: str | Path, version: int) -> Path:
    return Path(directory) / f"snap-{version:06d}.zip"


def latest_snapshot(directory: str | Path) -> tuple[int, Path] | None:
    """(number, path) of the newest complete snapshot in `directory`, None when none is published yet."""
    found = sorted(Path(directory).glob(SNAPSHOT_GLOB))
    if not found:
        return None
    return int(found[-1].stem.split("-")[1]), found[-1]


def publish_snapshot(model: Any, directory: str | Path, version: int) -> Path:
    """Write `model` as snapshot `version`: to a temporary name first, then renamed (atomic on one file system)."""
    final = snapshot_path(directory, version)
    tmp = final.with_name(f".tmp-{final.name}")
    model.save(str(tmp))  # SB3 appends nothing when the name already ends in .zip
    os.replace(tmp, final)
    return final


def write_meta(directory: str | Path, meta: dict[str, Any]) -> None:
    Path(directory).mkdir(parents=True, exist_ok=True)
    tmp = Path(directory) / ".tmp-meta.json"
    tmp.write_text(json.dumps(meta, sort_keys=True))
    os.replace(tmp, Path(directory) / "meta.json")


def read_meta(directory: str | Path) -> dict[str, Any]:
    return json.loads((Path(directory) / "meta.json").read_text())


# ---- the action map and the learner's features ---------------------------------------------------
class ActionMap:
    """Learner action in [-1, 1]^5 <-> station command; see the module docstring."""

    def __init__(self, residual: bool, action_scale: float) -> None:
        self.residual, self.scale = bool(residual), float(action_scale)

    def to_command(self, obs: Observation, a: np.ndarray, base: np.ndarray | None) -> np.ndarray:
        a = np.clip(np.asarray(a, dtype=np.float64), -1.0, 1.0)
        if self.residual:
            assert base is not None
            out = np.asarray(base, dtype=np.float64).copy()
            out[:3] += self.scale * a[:3]
            out[3] += YAW_SCALE * a[3]
            out[4] = np.clip(out[4] + GRIP_SCALE * a[4], 0.0, 1.0)
            return out
        ee = np.asarray(obs["ee_pos"], dtype=np.float64).ravel()
        return np.concatenate([ee + self.scale * a[:3], [YAW_RANGE * a[3], 0.5 * (a[4] + 1.0)]])

    def to_learner(self, obs: Observation, command: np.ndarray, base: np.ndarray | None) -> np.ndarray:
        """The learner action that produced `command` (clipped into [-1, 1] where the station clipped first)."""
        c = np.asarray(command, dtype=np.float64)
        if self.residual:
            assert base is not None
            d = c - np.asarray(base, dtype=np.float64)
            a = np.concatenate([d[:3] / self.scale, [d[3] / YAW_SCALE, d[4] / GRIP_SCALE]])
        else:
            ee = np.asarray(obs["ee_pos"], dtype=np.float64).ravel()
            a = np.concatenate([(c[:3] - ee) / self.scale, [c[3] / YAW_RANGE, 2.0 * c[4] - 1.0]])
        return np.clip(a, -1.0, 1.0)


def features(obs: Observation, base: np.ndarray | None) -> np.ndarray:
    """What the learner sees: the flattened observation, plus (residual) the base command relative to the tool."""
    x = flatten_observation(obs)
    if base is None:
        return x.astype(np.float32)
    ee = np.asarray(obs["ee_pos"], dtype=np.float64).ravel()
    rel = np.concatenate([np.asarray(base[:3]) - ee, np.asarray(base[3:], dtype=np.float64)])
    return np.concatenate([x, rel]).astype(np.float32)


@lru_cache(maxsize=4)
def base_params(spec: ExperimentSpec) -> dict[str, float]:
    """The tuned scripted demonstrator's full parameters for `spec`'s task (composes the scripted policy group
    once; the learner writes them into meta.json so stations never compose configs)."""
    from enpire.policy.demos import demonstrator_params, scripted_spec

    sspec = scripted_spec(spec)
    return {**sspec.policy.defaults(), **demonstrator_params(sspec)}


def base_policy(spec: ExperimentSpec, params: dict[str, float] | None = None) -> Policy:
    """A fresh tuned scripted baseline of the task (the residual's base and the demonstrator)."""
    from enpire import plugins

    build = plugins.resolve("scripted", spec.task.name)
    return build(spec, dict(base_params(spec) if params is None else params))


# ---- the policy a station runs -----------------------------------------------------------------
@lru_cache(maxsize=2)
def _load(path: str) -> Any:
    """A snapshot, loaded once per worker process (snapshots are immutable once published)."""
    import torch
    from stable_baselines3 import SAC

    torch.set_num_threads(1)
    return SAC.load(path, device="cpu")


class RLPolicy:
    """Runs one snapshot for a whole trial (see the module docstring)."""

    def __init__(self, spec: ExperimentSpec, directory: str | Path) -> None:
        found = latest_snapshot(directory)
        if found is None:
            raise FileNotFoundError(f"candidate.checkpoint: no snapshot published in {str(directory)!r} yet")
        self.version, path = found
        self.model = _load(str(path))
        meta = read_meta(directory)
        self.map = ActionMap(meta["residual"], meta["action_scale"])
        self.explore = bool(meta.get("explore", True))
        self.base = base_policy(spec, meta.get("base_params")) if self.map.residual else None
        self.rng = np.random.default_rng(0)
        self.keep = float(np.exp(-spec.control_dt / NOISE_CORRELATION_S))  # noise kept from one step to the next
        self.noise = np.zeros(ACTION_SIZE)

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        if self.base is not None:
            self.base.reset(obs, None)  # never feedback: the learner's replay of the base has none either
        digest = hashlib.sha256(flatten_observation(obs).tobytes() + self.version.to_bytes(8, "little")).digest()
        self.rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        self.noise = self.rng.standard_normal(ACTION_SIZE)  # the process's stationary distribution

    def act(self, obs: Observation) -> np.ndarray:
        import torch

        base = np.asarray(self.base.act(obs), dtype=np.float64) if self.base is not None else None
        x = torch.from_numpy(features(obs, base))[None]
        with torch.no_grad():
            mean, log_std, _ = self.model.actor.get_action_dist_params(x)
        u = mean[0].numpy().astype(np.float64)
        if self.explore:
            self.noise = self.keep * self.noise + np.sqrt(1.0 - self.keep ** 2) * self.rng.standard_normal(u.shape)
            u = u + np.exp(log_std[0].numpy().astype(np.float64)) * self.noise
        return self.map.to_command(obs, np.tanh(u), base)


def build_rl_policy(spec: ExperimentSpec, candidate: Candidate) -> RLPolicy:
    """factory.make_policy for kind=rl: the newest snapshot of the candidate's snapshot directory, now."""
    if not candidate.checkpoint:
        raise ValueError(f"candidate {candidate.candidate_id}: kind=rl needs its snapshot directory as checkpoint; "
                         "got none (the trainer slot publishes one before the candidate's first trial)")
    return RLPolicy(spec, candidate.checkpoint)
