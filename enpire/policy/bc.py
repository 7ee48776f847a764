"""policy=bc: train an MLP on demonstrations with Lightning, and run a checkpoint as a Policy.

`train_bc(dataset, recipe, out_dir)` -> checkpoint path (a Lightning .ckpt that carries
its own normalisation), `build_bc_policy(spec, candidate)` loads `candidate.checkpoint`.
Validation holds out whole episodes (not random rows: neighbouring steps of one episode are
near-duplicates and would flatter the loss).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from enpire.policy.bc_model import BCNet
from enpire.policy.dataset import Dataset, features, target_to_action
from enpire.policy.recipe import DEFAULT_RECIPE, resolve_recipe  # noqa: F401 - re-exported for callers
from enpire.records import Candidate
from enpire.spec.model import ExperimentSpec
from enpire.world.api import AttemptFeedback, Observation

log = logging.getLogger(__name__)

def _loaders(data: Dataset, batch_size: int, seed: int) -> tuple[Any, Any]:
    from torch.utils.data import DataLoader, TensorDataset

    rng = np.random.default_rng(seed)
    eps = np.unique(data.episode)
    val_eps = rng.choice(eps, size=max(1, len(eps) // 5), replace=False) if len(eps) >= 5 else np.array([])
    val = np.isin(data.episode, val_eps)

    def loader(mask: np.ndarray, shuffle: bool) -> Any:
        ds = TensorDataset(torch.from_numpy(data.x[mask]), torch.from_numpy(data.y[mask]))
        return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, num_workers=0,
                          generator=torch.Generator().manual_seed(seed))

    return loader(~val, True), (loader(val, False) if val.any() else None)


def train_bc(data: Dataset, recipe: dict[str, Any], out_dir: str | Path, *, logger: Any = None, seed: int = 0,
             init_from: str | None = None) -> tuple[str, dict[str, float]]:
    """Fit the MLP; returns (checkpoint path, final metrics). `init_from` warm-starts from a checkpoint."""
    import lightning as L

    if not len(data):
        raise ValueError("train_bc: the dataset is empty (no successful demonstrations to learn from)")
    torch.set_num_threads(1)
    L.seed_everything(seed, workers=True, verbose=False)
    obs_mean, obs_std = BCNet.stats(data.x)
    act_mean, act_std = BCNet.stats(data.y)
    model = BCNet(data.x.shape[1], data.y.shape[1], list(recipe["hidden_sizes"]), float(recipe["learning_rate"]),
                  float(recipe["weight_decay"]), obs_mean, obs_std, act_mean, act_std, list(data.keys), data.cartesian)
    if init_from:
        old = BCNet.load_from_checkpoint(init_from, map_location="cpu")
        if [p.shape for p in old.net.parameters()] == [p.shape for p in model.net.parameters()]:
            model.net.load_state_dict(old.net.state_dict())  # new normalisation, old weights
    train, val = _loaders(data, int(recipe["batch_size"]), seed)
    trainer = L.Trainer(max_epochs=int(recipe["epochs"]), accelerator="cpu", devices=1, logger=logger or False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        log_every_n_steps=1, num_sanity_val_steps=0, deterministic=True)
    trainer.fit(model, train, val)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "bc.ckpt"
    trainer.save_checkpoint(path)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    metrics.update(bc_samples=float(len(data)), bc_episodes=float(data.episodes))
    log.info("trained BC on %d pairs (%d episodes): %s", len(data), data.episodes, metrics)
    return str(path), metrics


class BCPolicy:
    """Runs a checkpoint: features -> MLP -> action (end-effector targets made absolute again)."""

    def __init__(self, model: BCNet) -> None:
        self.model = model.eval()
        self.keys = tuple(model.hparams["obs_keys"] or ())
        self.cartesian = bool(model.hparams["cartesian"])

    @classmethod
    def load(cls, path: str | Path) -> BCPolicy:
        torch.set_num_threads(1)
        if not Path(path).is_file():
            raise FileNotFoundError(f"candidate.checkpoint: {str(path)!r} does not exist; expected a BC .ckpt")
        return cls(BCNet.load_from_checkpoint(str(path), map_location="cpu"))

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        if self.keys and tuple(sorted(obs)) != self.keys:
            raise ValueError(f"observation keys: got {sorted(obs)}; the checkpoint was trained on {list(self.keys)}")

    def act(self, obs: Observation) -> np.ndarray:
        with torch.no_grad():
            target = self.model(torch.from_numpy(features(obs))[None])[0].numpy()
        return target_to_action(obs, target, self.cartesian)


def build_bc_policy(spec: ExperimentSpec, candidate: Candidate) -> BCPolicy:
    """factory.make_policy for kind=bc."""
    if not candidate.checkpoint:
        raise ValueError(f"candidate {candidate.candidate_id}: kind=bc needs a checkpoint; got none "
                         "(train it first: enpire.policy.trainer.train_candidate)")
    return BCPolicy.load(candidate.checkpoint)
