"""Training a success detector: labelled frames in, frozen weights, a model card and an MLflow run out.

Trials are split (by trial, never by frame) into training and held-out sets. The network learns per frame
whether the success conditions hold; it is judged on held-out trials the way a station would judge them:
the hold rule on its frames of attempt 1 (enpire.detector.judge) against the state verifier's verdict of
that attempt. Accuracy, precision and recall carry 95% Wilson intervals (enpire.track.confidence).
"""

from __future__ import annotations

import hashlib
import math
import platform
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from enpire.detector.collect import TrialFrames
from enpire.detector.judge import decision_frame, frames_needed
from enpire.detector.model import DetectorConfig, DetectorNet, save_detector
from enpire.track.confidence import wilson


@dataclass(frozen=True)
class TrainOptions:
    epochs: int = 15
    batch_size: int = 128
    learning_rate: float = 2e-3
    heldout: float = 0.3  # fraction of trials held out
    seed: int = 0
    device: str = "auto"  # auto: cuda when present, else cpu
    validation: float = 0.2  # fraction of the training trials kept back to calibrate the decision rule


THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
EXTRA_FRAMES = (0, 1, 2, 3)


def resolve_device(device: str) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def split(trials: list[TrialFrames], heldout: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, held-out) trial indices: a seeded permutation, at least one trial in each when possible."""
    order = np.random.default_rng(seed + 7919).permutation(len(trials))
    k = min(len(trials) - 1, max(1, round(heldout * len(trials)))) if len(trials) > 1 else 0
    return sorted(order[k:].tolist()), sorted(order[:k].tolist())


def rate(hits: int, n: int) -> dict[str, Any]:
    lo, hi = wilson(hits, n)
    return {"value": round(hits / n, 4) if n else None, "ci95": [round(lo, 4), round(hi, 4)], "n": n}


def verdict_metrics(pred: list[bool], truth: list[bool]) -> dict[str, Any]:
    """Accuracy, precision and recall (with 95% intervals) of detector verdicts against the state verifier's."""
    tp = sum(p and t for p, t in zip(pred, truth))
    tn = sum(not p and not t for p, t in zip(pred, truth))
    fp = sum(p and not t for p, t in zip(pred, truth))
    fn = sum(not p and t for p, t in zip(pred, truth))
    return {"accuracy": rate(tp + tn, len(pred)), "precision": rate(tp, tp + fp), "recall": rate(tp, tp + fn),
            "false_success": fp, "false_failure": fn, "true_success": tp, "true_failure": tn}


def _frames_labels(trials: list[TrialFrames], idx: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    frames = np.concatenate([trials[i].frames for i in idx]) if idx else np.zeros((0, 1, 1, 3), np.uint8)
    labels = np.concatenate([trials[i].labels for i in idx]) if idx else np.zeros(0, bool)
    return torch.from_numpy(frames), torch.from_numpy(labels.astype(np.float32))


def _module(net: DetectorNet, lr: float, pos_weight: float) -> Any:
    import lightning as L

    class DetectorModule(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.loss = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight))

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
            x, y = batch
            loss = self.loss(self.net(x), y)
            self.log("train_loss", loss, on_epoch=True, on_step=False)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=1e-4)

    return DetectorModule()


def fit(trials: list[TrialFrames], config: DetectorConfig, hold_s: float,
        opts: TrainOptions) -> tuple[DetectorNet, dict[str, Any]]:
    """Train on the training trials, evaluate on the held-out ones; (network, metrics and data facts)."""
    import lightning as L

    L.seed_everything(opts.seed, workers=True, verbose=False)
    train_idx, held_idx = split(trials, opts.heldout, opts.seed)
    fit_pos, val_pos = split([trials[i] for i in train_idx], opts.validation, opts.seed + 1)
    fit_idx, val_idx = [train_idx[i] for i in fit_pos], [train_idx[i] for i in val_pos]
    x, y = _frames_labels(trials, fit_idx)
    pos = float(y.sum())
    pos_weight = (len(y) - pos) / pos if pos else 1.0
    net = DetectorNet(config)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=opts.batch_size,
                                         shuffle=True, generator=torch.Generator().manual_seed(opts.seed))
    device = resolve_device(opts.device)
    trainer = L.Trainer(max_epochs=opts.epochs, accelerator="gpu" if device == "cuda" else "cpu", devices=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, deterministic=True)
    t0 = time.perf_counter()
    trainer.fit(_module(net, opts.learning_rate, pos_weight), loader)
    train_s = time.perf_counter() - t0
    net = net.cpu().eval()
    decision = calibrate(net, [trials[i] for i in val_idx], hold_s, config.rate_hz)
    net.config = replace(config, threshold=decision["threshold"], extra_frames=decision["extra_frames"])
    metrics = evaluate(net, [trials[i] for i in held_idx], hold_s, config.rate_hz, decision["threshold"],
                       decision["extra_frames"])
    metrics["decision"] = decision
    facts = {"train_trials": len(fit_idx), "validation_trials": len(val_idx), "heldout_trials": len(held_idx),
             "train_frames": len(y),
             "train_positive_frames": int(pos), "train_seconds": round(train_s, 2), "device": device,
             "final_train_loss": round(float(trainer.callback_metrics.get("train_loss", math.nan)), 5)}
    return net, {"metrics": metrics, "training": facts}


def calibrate(net: DetectorNet, trials: list[TrialFrames], hold_s: float, rate_hz: float) -> dict[str, Any]:
    """The decision rule (threshold, extra frames) with the best trial accuracy on validation trials, judged as a
    session judges; ties go to fewer extra frames, then the lower threshold. Never sees the held-out trials."""
    best: tuple[float, int, float] | None = None
    for extra in EXTRA_FRAMES:
        for threshold in THRESHOLDS:
            acc = evaluate(net, trials, hold_s, rate_hz, threshold, extra)["trials"]["accuracy"]["value"] or 0.0
            if best is None or acc > best[0] + 1e-12:
                best = (acc, extra, threshold)
    assert best is not None
    return {"threshold": best[2], "extra_frames": best[1], "validation_accuracy": best[0],
            "validation_trials": len(trials)}


def evaluate(net: DetectorNet, trials: list[TrialFrames], hold_s: float, rate_hz: float,
             threshold: float, extra_frames: int = 0) -> dict[str, Any]:
    """Held-out figures: trials (attempt 1, what success_rate counts), every attempt, and single frames.

    As a session would judge: an attempt the detector passes ends at the frame it decided on, so its truth is
    whether the state verifier's hold was met by then (the shadow verdict of that session); an attempt it
    fails runs to its end, so its truth is whether the state verifier's hold was met at all."""
    needed = frames_needed(hold_s, rate_hz) + extra_frames
    trial_pred, trial_true, att_pred, att_true, frame_hits, frames = [], [], [], [], 0, 0
    for t in trials:
        if not len(t.labels):
            continue
        p = net.probabilities(t.frames)
        frame_hits += int(((p >= threshold) == t.labels).sum())
        frames += len(p)
        for a in sorted(set(t.attempt.tolist())):
            sel = np.flatnonzero(t.attempt == a)
            stop = decision_frame(p[sel], threshold, needed)
            said = stop is not None
            met = t.met_step.get(a)
            truth = met is not None and (not said or met <= int(t.frame_step[sel[stop]]))
            att_pred.append(said)
            att_true.append(truth)
            if a == 1:
                trial_pred.append(said)
                trial_true.append(truth)
    return {"trials": verdict_metrics(trial_pred, trial_true), "attempts": verdict_metrics(att_pred, att_true),
            "frames": rate(frame_hits, frames), "frames_needed": needed, "threshold": threshold}


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def model_card(config: DetectorConfig, trials: list[TrialFrames], result: dict[str, Any], collect_s: float,
               options: dict[str, Any]) -> dict[str, Any]:
    """What the detector is: its configuration, the data (sources, seeds, counts), training and held-out metrics."""
    import lightning

    sources: dict[str, int] = {}
    for t in trials:
        sources[t.source] = sources.get(t.source, 0) + 1
    return {
        "detector": config.to_dict(),
        "data": {"trials": len(trials), "frames": int(sum(len(t.labels) for t in trials)),
                 "positive_frames": int(sum(int(t.labels.sum()) for t in trials)),
                 "state_successes": int(sum(t.pass_at_1 for t in trials)), "sources": sources,
                 "labels": "the state verifier: all done.predicate conditions hold in the frame; trial truth = its "
                           "verdict of attempt 1", "collect_seconds": round(collect_s, 2), **options},
        "training": result["training"], "metrics": result["metrics"],
        "versions": {"torch": torch.__version__, "lightning": lightning.__version__,
                     "python": platform.python_version()},
    }


def write(out_dir: Path, net: DetectorNet, card_without_sha: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """detector.pt (card facts inside) and detector.json (the card with the weights' sha256) in out_dir."""
    import json

    from enpire.detector.files import CARD_NAME, WEIGHTS_NAME

    path = save_detector(out_dir / WEIGHTS_NAME, net, {k: v for k, v in card_without_sha.items()
                                                       if k in ("data", "training", "metrics")})
    card = {**card_without_sha, "weights": path.name, "weights_sha256": sha256_file(path)}
    (out_dir / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    return path, card
