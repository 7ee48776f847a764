"""Stills of the best candidate: one of its successes and its typical failure, from the trial videos.

The best candidate is the session's /done candidate (tag enpire.done_candidate), else its best by
confirmed success (enpire.best_candidate). Its iterations' trial tables say which logged video is a
success and which a failure; the failure shown is of the most common kind (outcome and reason, numbers
left out, as enpire.track.videos picks it). When the best candidate never failed on video, the caption
says so and the session's most common failure on video (another candidate's) is shown instead, labelled
as such. Each still is three frames (start, middle, end) with a caption drawn into the image.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imageio.v3 as iio
from mlflow.tracking import MlflowClient

from enpire.report.data import Iteration, Session

log = logging.getLogger(__name__)


@dataclass
class Clip:
    iteration: Iteration
    row: dict[str, Any]
    artifact: str

    @property
    def success(self) -> bool:
        return bool(self.row.get("pass_at_1"))

    @property
    def kind(self) -> str:
        reason = self.row.get("reason") or self.row.get("error") or ""
        return f"{self.row.get('outcome')}: {re.sub(r'[-+]?[0-9][0-9.eE+-]*', '#', str(reason))}"


def _videos(client: MlflowClient, run_id: str) -> list[str]:
    try:
        return [f.path for f in client.list_artifacts(run_id, "videos") if f.path.endswith(".mp4")]
    except Exception as error:  # noqa: BLE001 - a missing artifact store must not sink the report
        log.warning("cannot list videos of %s: %s", run_id, error)
        return []


def _rows(client: MlflowClient, run_id: str) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            text = Path(client.download_artifacts(run_id, "trials.jsonl", tmp)).read_text()
        except Exception:  # noqa: BLE001
            return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def clips(client: MlflowClient, it: Iteration) -> list[Clip]:
    """The iteration's videos matched to their trial rows (by trial id: `videos/<trial_id>.mp4`)."""
    videos = _videos(client, it.run_id)
    if not videos:
        return []
    rows = {r.get("trial_id"): r for r in _rows(client, it.run_id)}
    out = []
    for v in videos:
        row = rows.get(Path(v).stem)
        if row is not None:
            out.append(Clip(it, row, v))
    return out


def _typical(failures: list[Clip]) -> Clip | None:
    if not failures:
        return None
    counts = Counter(c.kind for c in failures)
    most = max(counts.values())
    return next(c for c in failures if counts[c.kind] == most)


def _still(client: MlflowClient, clip: Clip, png: Path, caption: str) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with tempfile.TemporaryDirectory() as tmp:
        try:
            frames = iio.imread(client.download_artifacts(clip.iteration.run_id, clip.artifact, tmp))
        except Exception as error:  # noqa: BLE001
            log.warning("cannot read %s of %s: %s", clip.artifact, clip.iteration.run_id, error)
            return None
    if len(frames) == 0:
        return None
    picked = [(0, "start"), (len(frames) // 2, "middle"), (len(frames) - 1, "end")]
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.3))
    for ax, (i, name) in zip(axes, picked, strict=True):
        ax.imshow(frames[i])
        ax.set_title(f"{name} (frame {i + 1}/{len(frames)})", fontsize=8)
        ax.axis("off")
    fig.suptitle("\n".join(textwrap.wrap(caption, 110)[:3]), fontsize=9,
                 color="#2a9d3a" if clip.success else "#b22222")
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)
    return png


def _describe(clip: Clip, what: str) -> str:
    r = clip.row
    state = ", ".join(f"{k} {v:.3g}" for k, v in (r.get("final_state") or {}).items() if isinstance(v, int | float))
    why = r.get("reason") or r.get("error") or ""
    return (f"{what}. Trial {r.get('trial_id')} (iteration {clip.iteration.index}): {r.get('outcome')}"
            + (f" - {why}" if why and not clip.success else "") + (f"; final {state}" if state else ""))[:300]


def video_stills(client: MlflowClient, session: Session, out_dir: Path,
                 limit: int = 2) -> list[tuple[str, Path | None]]:
    """(caption, png): the best candidate's success and its typical failure (see the module docstring); a
    caption without a png says what has no video (e.g. no failed trial of it or of any shown iteration)."""
    key = session.best_candidate
    best_its = [it for it in session.iterations if key and it.candidate_id == key]
    mine = [c for it in best_its for c in clips(client, it)]
    picks: list[tuple[Clip, str]] = []
    notes: list[str] = []
    success = next((c for c in mine if c.success), None)
    short = key[:10] if key else "?"
    if success is not None:
        picks.append((success, f"Best candidate {short}, {session.best}: a success"))
    failure = _typical([c for c in mine if not c.success])
    if failure is not None:
        picks.append((failure, f"Best candidate {short}, {session.best}: its typical failure"))
    elif best_its:
        others = [c for it in session.iterations if it.candidate_id != key and it.decision != "cancelled"
                  for c in clips(client, it) if not c.success]
        other = _typical(others)
        if other is not None:
            picks.append((other, f"Best candidate {short} has no failed trial on video; the session's typical "
                                 f"failure (candidate {other.iteration.candidate_id[:10]})"))
        elif mine:
            notes.append(f"No failure to show: the best candidate {short}, {session.best}, has no failed trial on "
                         "video, and no other iteration shown on video failed either.")
    if best_its and not mine and not picks:
        notes.append("No trial videos of the best candidate in MLflow (video.enabled=false, or still being rendered: "
                     "`python -m enpire.report --videos`).")
    if not key and not picks:  # no best candidate: the first iteration with a video, as before
        for it in session.iterations:
            found = clips(client, it)
            if found:
                picks.append((found[0], f"iteration {it.index} ({it.decision})"))
                break
    out: list[tuple[str, Path | None]] = []
    for clip, what in picks[:limit]:
        caption = _describe(clip, what)
        png = out_dir / f"still_{session.run_id[:8]}_{clip.row.get('trial_id')}.png"
        if _still(client, clip, png, caption) is not None:
            out.append((caption, png))
    return out + [(note, None) for note in notes]
