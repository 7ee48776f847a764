"""Stills from the trial videos an iteration logged, so a report shows what the robot did."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import imageio.v3 as iio
from mlflow.tracking import MlflowClient

from enpire.report.data import Session

log = logging.getLogger(__name__)


def _videos(client: MlflowClient, run_id: str) -> list[str]:
    try:
        return [f.path for f in client.list_artifacts(run_id, "videos") if f.path.endswith(".mp4")]
    except Exception as error:  # noqa: BLE001 - a missing artifact store must not sink the report
        log.warning("cannot list videos of %s: %s", run_id, error)
        return []


def video_stills(client: MlflowClient, session: Session, out_dir: Path, limit: int = 4) -> list[tuple[str, Path]]:
    """(caption, png) for the first video of up to `limit` iterations: the middle and last frames side by side."""
    import numpy as np

    out: list[tuple[str, Path]] = []
    for it in session.iterations:
        if len(out) >= limit:
            break
        videos = _videos(client, it.run_id)
        if not videos:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = client.download_artifacts(it.run_id, videos[0], tmp)
                frames = iio.imread(local)
            except Exception as error:  # noqa: BLE001
                log.warning("cannot read %s of %s: %s", videos[0], it.run_id, error)
                continue
        if len(frames) == 0:
            continue
        picked = [frames[0], frames[len(frames) // 2], frames[-1]]
        png = out_dir / f"still_{session.run_id[:8]}_iter{it.index:04d}.png"
        iio.imwrite(png, np.concatenate(picked, axis=1))
        out.append((f"iteration {it.index} ({it.decision}): {Path(videos[0]).name}, first / middle / last frame", png))
    return out
