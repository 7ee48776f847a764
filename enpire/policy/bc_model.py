"""The behaviour-cloning network: an MLP with observation and action normalisation, as a LightningModule.

The normalisation statistics live in the module (as buffers and hyperparameters), so a
checkpoint alone is enough to act: nothing about the dataset has to travel with it.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch import nn

STD_FLOOR = 1e-3  # constant inputs (a fixed yaw, an unused joint) must not blow up


class BCNet(L.LightningModule):
    def __init__(self, obs_dim: int, act_dim: int, hidden_sizes: list[int], learning_rate: float = 3e-3,
                 weight_decay: float = 0.0, obs_mean: list[float] | None = None, obs_std: list[float] | None = None,
                 act_mean: list[float] | None = None, act_std: list[float] | None = None,
                 obs_keys: list[str] | None = None, cartesian: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters()
        layers: list[nn.Module] = []
        width = obs_dim
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), nn.SiLU()]
            width = h
        layers.append(nn.Linear(width, act_dim))
        self.net = nn.Sequential(*layers)
        for name, value, dim in (("obs_mean", obs_mean, obs_dim), ("obs_std", obs_std, obs_dim),
                                 ("act_mean", act_mean, act_dim), ("act_std", act_std, act_dim)):
            default = np.ones(dim) if name.endswith("std") else np.zeros(dim)
            self.register_buffer(name, torch.tensor(value if value is not None else default, dtype=torch.float32))

    @staticmethod
    def stats(x: np.ndarray) -> tuple[list[float], list[float]]:
        return x.mean(0).tolist(), np.maximum(x.std(0), STD_FLOOR).tolist()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw inputs in, raw (denormalised) targets out."""
        z = self.net((x - self.obs_mean) / self.obs_std)
        return z * self.act_std + self.act_mean

    def _loss(self, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        z = self.net((x - self.obs_mean) / self.obs_std)
        return nn.functional.mse_loss(z, (y - self.act_mean) / self.act_std)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("bc_train_loss", loss, on_step=False, on_epoch=True, prog_bar=False)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("bc_val_loss", self._loss(batch), on_step=False, on_epoch=True, prog_bar=False)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.learning_rate,
                                 weight_decay=self.hparams.weight_decay)
