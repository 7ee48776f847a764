"""Shared fixtures: composed specs, temporary MLflow stores, rendering without a GPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

from enpire.spec import ExperimentSpec, load_spec


@pytest.fixture
def tmp_tracking(tmp_path: Path) -> list[str]:
    """Overrides that send a session's MLflow records to a fresh SQLite store under tmp_path."""
    return [f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"tracking.artifact_root={tmp_path}/artifacts"]


@pytest.fixture
def drawer_spec() -> ExperimentSpec:
    return load_spec(["task=drawer"])
