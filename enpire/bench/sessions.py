"""Helpers for benchmarks that run whole sessions in-process: a throwaway MLflow store, quiet
stdout, the summary parsed back into numbers."""

from __future__ import annotations

import contextlib
import io
import logging
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from enpire.spec import load_spec
from enpire.track.summary import parse

if TYPE_CHECKING:
    from enpire.records import IterationSummary

log = logging.getLogger(__name__)


def run_quiet(overrides: list[str], store: Path,
              on_iteration: Callable[[IterationSummary], None] | None = None) -> dict[str, str]:
    """Run one session with `overrides` against the MLflow store in `store`; its summary as strings.
    `on_iteration`: told of every closed iteration (what the bench reads besides the summary)."""
    from enpire.loop import SessionContext, run_session

    spec = load_spec([*overrides, f"tracking.uri=sqlite:///{store}/mlflow.db",
                      f"tracking.artifact_root={store}/artifacts"])
    buf = io.StringIO()
    run_dir = tempfile.mkdtemp(prefix="run-", dir=store)
    with contextlib.redirect_stdout(buf):
        code = run_session(spec, SessionContext(run_dir=run_dir), live=False, on_iteration=on_iteration)
    summary = parse(buf.getvalue())
    summary["exit_code"] = str(code)
    log.info("bench session %s: %s", overrides, {k: summary.get(k) for k in ("reached_done", "wall_s", "mru")})
    return summary


def number(summary: dict[str, str], key: str, missing: float = float("nan")) -> float:
    try:
        return float(summary[key])
    except (KeyError, ValueError):
        return missing


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")
