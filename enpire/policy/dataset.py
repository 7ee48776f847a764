"""(observation, action) pairs for behaviour cloning, and the feature map shared by training and acting.

One function turns an observation dict into the network's input and one turns a cartesian
action into its target, so a trained network and the policy that runs it can never disagree.
Position targets are learned relative to the end effector (`[x,y,z] - ee_pos`): the
scripted demonstrators command a set-point a few millimetres ahead of the hand, which is a
small, well-scaled quantity, whereas absolute targets vary with the randomised scene.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enpire.policy.api import flatten_observation
from enpire.world.api import Observation


def features(obs: Observation) -> np.ndarray:
    """The network input: every observation key, in sorted order."""
    return flatten_observation(obs).astype(np.float32)


def action_to_target(obs: Observation, action: np.ndarray, cartesian: bool) -> np.ndarray:
    target = np.asarray(action, dtype=np.float64).copy()
    if cartesian and "ee_pos" in obs:
        target[:3] -= np.asarray(obs["ee_pos"], dtype=np.float64)[:3]
    return target.astype(np.float32)


def target_to_action(obs: Observation, target: np.ndarray, cartesian: bool) -> np.ndarray:
    action = np.asarray(target, dtype=np.float64).copy()
    if cartesian and "ee_pos" in obs:
        action[:3] += np.asarray(obs["ee_pos"], dtype=np.float64)[:3]
    return action


@dataclass
class Dataset:
    """Inputs `x` [N, obs_dim], targets `y` [N, act_dim], episode id per row, and the observation layout."""

    x: np.ndarray
    y: np.ndarray
    episode: np.ndarray
    keys: tuple[str, ...]
    cartesian: bool = True

    def __len__(self) -> int:
        return len(self.x)

    @property
    def episodes(self) -> int:
        return len(np.unique(self.episode)) if len(self.episode) else 0

    @classmethod
    def empty(cls, keys: tuple[str, ...] = (), obs_dim: int = 0, act_dim: int = 5, cartesian: bool = True) -> Dataset:
        return cls(np.zeros((0, obs_dim), np.float32), np.zeros((0, act_dim), np.float32), np.zeros(0, np.int64),
                   keys, cartesian)

    def extend(self, other: Dataset) -> Dataset:
        """Both datasets in one; episode ids of `other` are shifted so they stay distinct."""
        if not len(self):
            return other
        if not len(other):
            return self
        if other.keys != self.keys or other.x.shape[1] != self.x.shape[1]:
            raise ValueError(f"dataset keys: got {other.keys}; expected {self.keys}")
        shift = int(self.episode.max()) + 1
        return Dataset(np.concatenate([self.x, other.x]), np.concatenate([self.y, other.y]),
                       np.concatenate([self.episode, other.episode + shift]), self.keys, self.cartesian)

    def save(self, path: str | Path) -> str:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, x=self.x, y=self.y, episode=self.episode, keys=np.array(self.keys),
                            cartesian=np.array(self.cartesian))
        return str(path)

    @classmethod
    def load(cls, path: str | Path) -> Dataset:
        with np.load(path) as z:
            return cls(z["x"], z["y"], z["episode"], tuple(str(k) for k in z["keys"]), bool(z["cartesian"]))


class EpisodeBuffer:
    """Collects the pairs of one episode; `commit` keeps them, `drop` forgets them (e.g. a failed trial)."""

    def __init__(self, cartesian: bool = True) -> None:
        self.cartesian = cartesian
        self.keys: tuple[str, ...] = ()
        self._x: list[np.ndarray] = []
        self._y: list[np.ndarray] = []
        self._ep: list[int] = []
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._episodes = 0

    def add(self, obs: Observation, label: np.ndarray) -> None:
        self.keys = self.keys or tuple(sorted(obs))
        self._pending.append((features(obs), action_to_target(obs, label, self.cartesian)))

    def commit(self) -> None:
        for x, y in self._pending:
            self._x.append(x)
            self._y.append(y)
            self._ep.append(self._episodes)
        self._episodes += bool(self._pending)
        self._pending = []

    def drop(self) -> None:
        self._pending = []

    def dataset(self) -> Dataset:
        if not self._x:
            return Dataset.empty(self.keys, cartesian=self.cartesian)
        return Dataset(np.stack(self._x), np.stack(self._y), np.asarray(self._ep, np.int64), self.keys, self.cartesian)
