"""Videos a session has not logged yet (enpire.track.videos): say which in the report, or render them now."""

from __future__ import annotations

import logging
from pathlib import Path

from enpire.report.data import Session
from enpire.track import videos as vids

log = logging.getLogger(__name__)


def is_pending(session: Session) -> bool:
    return session.tags.get(vids.TAG) in ("pending", "rendering")


def _file(session: Session) -> Path | None:
    path = session.tags.get(vids.TAG_FILE)
    return Path(path) if path and Path(path).is_file() else None


def pending_note(session: Session) -> str | None:
    """One line on the session's videos still to come, or None when there are none."""
    if not is_pending(session):
        return None
    count = session.tags.get(vids.TAG_PENDING, "some")
    path = _file(session)
    if path is None:
        where = (f"their replays ({session.tags.get(vids.TAG_FILE, 'no pending file recorded')}) are not on this "
                 "machine; run `python -m enpire.report --videos` where the session ran")
        return f"Videos pending: {count}, not in MLflow yet; {where}."
    pending = vids.PendingVideos(path)
    state = pending.read()
    iterations = ", ".join(str(i) for i in state.iterations()) or "none"
    if pending.busy():
        how = "a background renderer is on them; `python -m enpire.report --videos` waits for it"
    else:
        how = "no renderer is running; `python -m enpire.report --videos` renders them now"
    return f"Videos pending: {len(state.todo)} of iterations {iterations} not in MLflow yet ({how})."


def render_videos(sessions: list[Session]) -> list[str]:
    """Render every pending video of `sessions` whose replays are here (waiting for a running renderer
    first); returns a line per session touched."""
    from enpire.track.render_pending import render_pending

    lines = []
    for s in sessions:
        if not is_pending(s):
            continue
        path = _file(s)
        if path is None:
            lines.append(f"{s.run_id[:8]}: videos pending, but {s.tags.get(vids.TAG_FILE)} is not on this machine")
            continue
        counts = render_pending(path, wait=True)
        lines.append(f"{s.run_id[:8]}: {counts['rendered']} videos rendered, {counts['failed']} failed, "
                     f"{counts['left']} left ({counts['state']})")
    return lines
