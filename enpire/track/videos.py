"""The videos an iteration logs: its first failure and its first success, rendered from trial replays.

Stations keep a replay of every trial (enpire.world.replay: positions at the video frame rate), so no
station waits on software rendering; the MLflow writer renders only the trials an iteration shows and
then deletes every replay of the iteration. A replay that cannot be rendered costs its video, never
the iteration's record.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from enpire.spec.model import ExperimentSpec
from enpire.world.api import TrialRecord
from enpire.world.replay import ReplayRenderer

log = logging.getLogger(__name__)

MAX_FAILURES = 3


def _order(record: TrialRecord) -> tuple[int, str]:
    return record.iteration, record.trial_id  # trial ids are i<iteration>-t<k>: dispatch order


def shown_trials(trials: list[TrialRecord]) -> list[TrialRecord]:
    """The first failure and the first success (in dispatch order) among trials that kept a replay."""
    with_replay = sorted((r for r in trials if r.replay and Path(r.replay).is_file()), key=_order)
    first_failure = next((r for r in with_replay if not r.pass_at_1), None)
    first_success = next((r for r in with_replay if r.pass_at_1), None)
    return [r for r in (first_failure, first_success) if r is not None]


class IterationVideos:
    """Renders shown trials to `<folder>/<trial_id>.mp4`; one renderer per thread (GL contexts are per thread)."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec = spec
        self._local = threading.local()
        self._renderers: list[ReplayRenderer] = []
        self._lock = threading.Lock()
        self.failed = 0
        self._streak = 0
        self.disabled: str | None = None  # set after MAX_FAILURES failures in a row: rendering itself is broken

    def _renderer(self) -> ReplayRenderer:
        renderer = getattr(self._local, "renderer", None)
        if renderer is None:
            renderer = self._local.renderer = ReplayRenderer(self.spec)
            with self._lock:
                self._renderers.append(renderer)
        return renderer

    def render(self, trials: list[TrialRecord], folder: Path) -> dict[str, str]:
        """trial_id -> file name under `folder` for each shown trial whose video could be rendered."""
        out: dict[str, str] = {}
        if not self.spec.video.enabled or self.disabled:
            return out
        for record in shown_trials(trials):
            target = folder / f"{record.trial_id}.mp4"
            try:
                self._renderer().render(str(record.replay), target)
            except Exception as error:  # a broken replay or renderer: no video, the record still goes in
                self.failed += 1
                self._streak += 1
                log.warning("video of trial %s not rendered: %s", record.trial_id, error)
                if self._streak >= MAX_FAILURES:
                    self.disabled = f"{self._streak} videos in a row failed, last: {error}"
                    log.error("no more videos this session (%s); set MUJOCO_GL=egl or osmesa for offscreen "
                              "rendering, or video.enabled=false", self.disabled)
                    return out
                continue
            self._streak = 0
            out[record.trial_id] = target.name
        return out

    @staticmethod
    def discard(trials: list[TrialRecord]) -> None:
        """Delete the iteration's replays once its record is written."""
        for record in trials:
            if record.replay:
                Path(record.replay).unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            renderers, self._renderers = self._renderers, []
        for renderer in renderers:
            try:
                renderer.close()
            except Exception as error:  # a context of a thread that has ended: nothing left to free
                log.debug("renderer close: %s", error)
