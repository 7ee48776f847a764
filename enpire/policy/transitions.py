"""Transitions from stations to the learner: a trial's recorded trajectory turned into (obs, action, reward,
next_obs, done), and the inbox that carries finished trials to the learner exactly once.

Stations record per-step data with the station's own TrajectoryRecorder (enpire.world.recording: the
observation the policy acted on, its command, the task's shaping reward, the envelope's stop flag and the
attempt) whenever an rl candidate's trial is dispatched; the trial record says what the frozen verifier
decided (`success_attempt`) and which safety events stopped it. The learner's reward is built from those
alone, weighted by the recipe's declared terms (enpire.policy.rl_recipe.REWARD_TERMS):

    r_t = w_shaping * shaping_t - w_action * |a_t|^2
          + w_success  on the last step of the attempt the verifier passed (the episode ends there)
          - w_safety_stop on the step the envelope stopped the robot (the episode ends there)

A step whose attempt ended otherwise (time limit, early stop, a failed attempt followed by a retry) is not
terminal: the last step of such an attempt bootstraps from its own observation.

Why records, not a socket: a trial's transitions travel with its trial record (the trajectory file the record
names), through the executor that already survives station crashes. A worker killed mid-trial loses only
that trial (recorded `crash`, no trajectory: nothing to learn from, and nothing half-written reaches the
learner); every finished trial's transitions arrive once, whichever station or restart ran it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from enpire.policy.rl import ActionMap, features
from enpire.records import TrialRecord
from enpire.world.api import Policy

log = logging.getLogger(__name__)


@dataclass
class Transitions:
    obs: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_obs: np.ndarray
    done: np.ndarray

    def __len__(self) -> int:
        return len(self.reward)

    @classmethod
    def empty(cls, obs_dim: int = 0) -> Transitions:
        z = np.zeros((0, obs_dim), np.float32)
        return cls(z, np.zeros((0, 5), np.float32), np.zeros(0, np.float32), z.copy(), np.zeros(0, np.float32))

    @classmethod
    def concat(cls, parts: list[Transitions]) -> Transitions:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("obs", "action", "reward",
                                                                              "next_obs", "done")))


def load_steps(path: str | Path) -> tuple[list[dict[str, np.ndarray]], dict[str, np.ndarray], dict[str, Any]]:
    """(observation per step, the per-step arrays, the trial's meta) of a recorded trajectory."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(str(z["meta"]))
        keys = list(meta["obs_keys"])
        columns = {k: z[f"obs/{k}"] for k in keys}
        arrays = {k: z[k] for k in ("actions", "reward", "safety_stop", "attempt")}
    n = len(arrays["reward"])
    obs = [{k: columns[k][t] for k in keys} for t in range(n)]
    return obs, arrays, meta


def from_trajectory(path: str | Path, record: TrialRecord, recipe: dict[str, Any],
                    make_base: Callable[[], Policy] | None) -> Transitions:
    """The transitions of one recorded trial (see the module docstring); `make_base` builds the scripted base
    that a residual learner acted on (replayed on the recorded observations, reset at each attempt)."""
    obs, arr, _ = load_steps(path)
    n = len(obs)
    if n == 0:
        return Transitions.empty()
    amap = ActionMap(recipe["residual"], recipe["action_scale"])
    w = recipe["reward"]
    attempt, stop = arr["attempt"].astype(int), arr["safety_stop"].astype(bool)
    base_policy = make_base() if amap.residual and make_base is not None else None
    x, a = [], []
    for t in range(n):
        base = None
        if base_policy is not None:
            if t == 0 or attempt[t] != attempt[t - 1]:
                base_policy.reset(obs[t], None)
            base = np.asarray(base_policy.act(obs[t]), dtype=np.float64)
        x.append(features(obs[t], base))
        a.append(amap.to_learner(obs[t], arr["actions"][t], base))
    xs, acts = np.asarray(x, np.float32), np.asarray(a, np.float32)
    reward = float(w["shaping"]) * arr["reward"].astype(np.float64) - float(w["action"]) * (acts ** 2).sum(1)
    done = np.zeros(n, np.float32)
    last = np.r_[attempt[1:] != attempt[:-1], True]  # last step of each attempt
    if record.success_attempt is not None:
        hit = np.flatnonzero(last & (attempt == int(record.success_attempt)))
        if len(hit):
            reward[hit[0]] += float(w["success"])
            done[hit[0]] = 1.0
    reward[stop] -= float(w["safety_stop"])
    done[stop] = 1.0
    next_x = np.concatenate([xs[1:], xs[-1:]])
    next_x[last] = xs[last]  # no next observation recorded across an attempt boundary: bootstrap from itself
    return Transitions(xs, acts, reward.astype(np.float32), next_x, done)


class TransitionStream:
    """The learner's inbox: trial records go in on the loop's thread, the learner drains them on its own.

    Each trial is taken once (by trial id): an executor that reports a trial again, or a resumed stream, never
    feeds the learner a duplicate. Records without a trajectory (crash, reset failed) are counted and skipped.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[TrialRecord] = []
        self.seen: set[str] = set()
        self.received = 0
        self.without_data = 0

    def put(self, record: TrialRecord) -> None:
        with self._lock:
            if record.trial_id in self.seen:
                return
            self.seen.add(record.trial_id)
            self.received += 1
            if record.trajectory and Path(record.trajectory).is_file():
                self._pending.append(record)
            else:
                self.without_data += 1

    def drain(self) -> list[TrialRecord]:
        with self._lock:
            out, self._pending = self._pending, []
        return out

    def __len__(self) -> int:
        with self._lock:
            return len(self._pending)
