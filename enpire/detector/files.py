"""Where a detector's weights file is. No torch here: the fingerprint (done_sha256) and the spec checks read it."""

from __future__ import annotations

import importlib
import types
from pathlib import Path
from typing import Any

WEIGHTS_NAME = "detector.pt"  # a task's shipped detector: beside its task module
CARD_NAME = "detector.json"  # its model card (data, seeds, metrics), beside the weights
KEY = "done.classifier.weights"


def task_dir(task: str) -> Path | None:
    """The folder of the task's module (None for a task not registered)."""
    from enpire import plugins

    try:
        part = plugins.resolve("tasks", task)  # a task module, or a class registered in-process
    except Exception:
        return None
    module = part if isinstance(part, types.ModuleType) else importlib.import_module(part.__module__)
    path = getattr(module, "__file__", None)
    return Path(path).resolve().parent if path else None


def weights_path(task: str, weights: str | None) -> Path | None:
    """The weights file `done.classifier.weights` names (a relative path from the working directory), or the
    task's shipped one (`<task folder>/detector.pt`) when it names none; None if the task has no folder."""
    if weights:
        return Path(str(weights)).expanduser().resolve()
    folder = task_dir(task)
    return None if folder is None else folder / WEIGHTS_NAME


def done_weights_path(done: Any) -> Path | None:
    """weights_path of a resolved `done` document (a dict)."""
    done = dict(done or {})
    return weights_path(str(done.get("name")), dict(done.get("classifier") or {}).get("weights"))
