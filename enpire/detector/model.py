"""The success detector: a small convolutional network on one camera frame, and its weights file.

The weights file is the frozen part of a classifier verifier: one `torch.save` of a plain dict (read back with
`weights_only=True`, so loading it runs no code) holding the state dict and everything the verdict depends on
besides the weights (camera, image size, the rate it was trained at). Its sha256 joins done_sha256.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FORMAT = 1


class DetectorFileError(ValueError):
    """A weights file that is missing, unreadable, or not a detector of this architecture (what is wrong, in words)."""


@dataclass(frozen=True)
class DetectorConfig:
    task: str
    camera: str
    image_size: int = 64  # square frames, pixels
    rate_hz: float = 10.0  # frames per second it was trained at (the verifier's default rate)
    channels: tuple[int, ...] = (16, 32, 64, 64)  # conv widths; each conv halves the frame
    hidden: int = 64
    # the decision rule, calibrated on validation trials (enpire.detector.train.calibrate): a frame is positive
    # at P >= threshold; success needs extra_frames more positive frames in a row than the hold time alone
    threshold: float = 0.5
    extra_frames: int = 0

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DetectorConfig:
        return cls(task=str(d["task"]), camera=str(d["camera"]), image_size=int(d["image_size"]),
                   rate_hz=float(d["rate_hz"]), channels=tuple(int(c) for c in d["channels"]),
                   hidden=int(d["hidden"]), threshold=float(d.get("threshold", 0.5)),
                   extra_frames=int(d.get("extra_frames", 0)))


class DetectorNet(nn.Module):
    """uint8 frames (N, H, W, 3) -> logit (N,) of "the success conditions hold in this frame"."""

    def __init__(self, config: DetectorConfig) -> None:
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        width, size = 3, config.image_size
        for i, c in enumerate(config.channels):
            layers += [nn.Conv2d(width, c, 5 if i == 0 else 3, stride=2, padding=2 if i == 0 else 1), nn.ReLU()]
            width, size = c, (size + 1) // 2
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(width * size * size, config.hidden), nn.ReLU(),
                                  nn.Linear(config.hidden, 1))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 255.0  # NHWC uint8 -> NCHW in [0, 1]
        return self.head(self.features(x)).squeeze(-1)

    @torch.inference_mode()
    def probabilities(self, frames: np.ndarray) -> np.ndarray:
        """P(success state) per frame, as float64 (eval mode, no gradients)."""
        self.eval()
        return torch.sigmoid(self(torch.from_numpy(np.ascontiguousarray(frames)))).double().numpy()


@dataclass
class Detector:
    """A loaded detector: the network and the card facts saved with it."""

    net: DetectorNet
    meta: dict[str, Any] = field(default_factory=dict)  # seeds, data and metrics of its training

    @property
    def config(self) -> DetectorConfig:
        return self.net.config


def save_detector(path: Path, net: DetectorNet, meta: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    torch.save({"format": FORMAT, "config": net.config.to_dict(), "state_dict": state, "meta": meta}, path)
    return path


def load_detector(path: Path | str) -> Detector:
    """The detector in `path`; DetectorFileError naming what is wrong with the file."""
    path = Path(path)
    if not path.is_file():
        raise DetectorFileError(f"no weights file at {path}")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise DetectorFileError(f"{path} is not a detector weights file ({type(error).__name__}: "
                                f"{str(error).splitlines()[0] if str(error) else ''})") from None
    if not isinstance(blob, dict) or blob.get("format") != FORMAT or "config" not in blob or "state_dict" not in blob:
        raise DetectorFileError(f"{path} is not a detector weights file of format {FORMAT} "
                                "(a dict with format, config and state_dict)")
    try:
        config = DetectorConfig.from_dict(blob["config"])
    except (KeyError, TypeError, ValueError) as error:
        raise DetectorFileError(f"{path}: its config is incomplete ({type(error).__name__}: {error})") from None
    net = DetectorNet(config)
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in blob["state_dict"].items() if hasattr(v, "shape")}
    wrong = [f"{k}: {got.get(k)} (needs {shape})" for k, shape in expected.items() if got.get(k) != shape]
    extra = sorted(set(got) - set(expected))
    if wrong or extra:
        raise DetectorFileError(f"{path}: weights of the wrong shape for a {config.image_size}x{config.image_size} "
                                f"detector with channels {list(config.channels)}: "
                                + "; ".join(wrong[:3] + [f"unexpected {k}" for k in extra[:3]]))
    net.load_state_dict(blob["state_dict"])
    net.eval()
    return Detector(net, dict(blob.get("meta") or {}))
