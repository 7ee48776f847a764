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


# ---- an exported dataset as bc's data (policy.train.dataset=DIR; docs/data.md) -----------------------------
def _pairs(obs: dict[str, np.ndarray], actions: np.ndarray, cartesian: bool) -> tuple[np.ndarray, np.ndarray]:
    """features() and action_to_target() of every row at once (same keys, order and float32 result)."""
    keys = sorted(obs)
    x = np.concatenate([np.asarray(obs[k], np.float64).reshape(len(actions), -1) for k in keys], axis=1)
    y = np.asarray(actions, np.float64).copy()
    if cartesian and "ee_pos" in obs:
        y[:, :3] -= np.asarray(obs["ee_pos"], np.float64)[:, :3]
    return x.astype(np.float32), y.astype(np.float32)


def _lerobot_episodes(folder: Path) -> list[tuple[dict, dict[str, np.ndarray], np.ndarray, np.ndarray]]:
    """(episode row, obs by key, actions, attempt per row) of a LeRobot export (enpire.data.lerobot)."""
    import json

    import pyarrow.parquet as pq

    info = json.loads((folder / "meta/info.json").read_text())
    data = pq.read_table(sorted((folder / "data").glob("*/*.parquet"))).combine_chunks()
    rows = pq.read_table(sorted((folder / "meta/episodes").glob("*/*.parquet"))).to_pylist()

    def matrix(name: str) -> np.ndarray:
        return data.column(name).combine_chunks().flatten().to_numpy().reshape(len(data), -1)

    columns: dict[str, list[np.ndarray]] = {}
    for feature in ("observation.state", "observation.environment_state"):
        if feature not in info["features"]:
            continue
        m = matrix(feature)
        for j, name in enumerate(info["features"][feature]["names"]):
            head, _, tail = name.rpartition(".")
            columns.setdefault(head if tail.isdigit() else name, []).append(m[:, j])
    obs = {k: np.stack(v, axis=1) for k, v in columns.items()}
    actions, attempt = matrix("action"), data.column("enpire.attempt").to_numpy()
    out = []
    for row in rows:
        sel = slice(row["dataset_from_index"], row["dataset_to_index"])
        tags = {k.removeprefix("enpire."): v for k, v in row.items() if k.startswith("enpire.")}
        out.append((tags, {k: v[sel] for k, v in obs.items()}, actions[sel], attempt[sel]))
    return out


def _parquet_episodes(folder: Path) -> list[tuple[dict, dict[str, np.ndarray], np.ndarray, np.ndarray]]:
    from enpire.data.tables import read_parquet

    rows, arrays = read_parquet(folder)
    return [(row, {k.removeprefix("obs/"): v for k, v in a.items() if k.startswith("obs/")}, a["actions"],
             a["attempt"]) for row, a in zip(rows, arrays, strict=True)]


def load_export(folder: str | Path, cartesian: bool = True) -> tuple[Dataset, dict[str, float]]:
    """bc's data from an exported dataset dir (`--format parquet` or `lerobot`): every episode whose verifier
    passed an attempt, the steps of that attempt only. Returns (dataset, metrics)."""
    folder = Path(folder)
    if (folder / "steps.parquet").is_file():
        episodes = _parquet_episodes(folder)
    elif (folder / "meta/info.json").is_file():
        episodes = _lerobot_episodes(folder)
    else:
        raise FileNotFoundError(f"policy.train.dataset: {str(folder)!r} is not an exported dataset (no steps.parquet "
                                "or meta/info.json); expected the --out of python -m enpire.export --format "
                                "parquet|lerobot")
    xs, ys, eps, keys = [], [], [], ()
    for tags, obs, actions, attempt in episodes:
        if not tags.get("success"):
            continue
        rows = np.asarray(attempt) == int(tags.get("success_attempt") or 1)
        x, y = _pairs({k: v[rows] for k, v in obs.items()}, np.asarray(actions)[rows], cartesian)
        keys = tuple(sorted(obs))
        xs.append(x)
        ys.append(y)
        eps.append(np.full(len(x), len(eps), np.int64))
    if not xs:
        raise ValueError(f"policy.train.dataset: {str(folder)!r} holds no successful episode ({len(episodes)} "
                         "episodes); bc learns from successes")
    data = Dataset(np.concatenate(xs), np.concatenate(ys), np.concatenate(eps), keys, cartesian)
    return data, {"dataset_episodes": float(len(xs)), "dataset_skipped": float(len(episodes) - len(xs))}
