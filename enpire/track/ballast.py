"""Room to record a failure when the output disk fills up.

When the disk that holds the SQLite store fills mid-session, nothing more can be written, not even
the session run's end: it was left RUNNING with no reason. So a session keeps a small ballast file
beside its store; when a write fails because the disk is full, the ballast is deleted, which frees
just enough room to end the session run FAILED with the reason as a tag. The file is removed at the
end of every session.
"""

from __future__ import annotations

import logging
import os

from enpire.track.store_init import sqlite_path

log = logging.getLogger(__name__)

BALLAST_BYTES = 512 * 1024  # a few SQLite pages and their journal: enough for one tag and a status


class Ballast:
    def __init__(self, uri: str, run_id: str) -> None:
        store = sqlite_path(uri)
        self.path = store.with_name(f".{store.name}.ballast-{run_id}") if store is not None else None
        if self.path is None:
            return
        try:
            with open(self.path, "wb") as fh:
                fh.write(b"\0" * BALLAST_BYTES)  # real blocks (not a sparse file): they are what gets freed
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as error:  # a disk already nearly full: no ballast, the session still runs
            log.warning("no room for the %d-byte ballast beside the store (%s)", BALLAST_BYTES, error)
            self.release()

    def release(self) -> bool:
        """Free the room (idempotent); True when there was ballast to free."""
        path, self.path = self.path, None
        if path is None or not path.exists():
            return False
        try:
            path.unlink()
        except OSError:
            return False
        return True


def end_failed(uri: str, run_id: str, reason: str, ballast: Ballast | None) -> bool:
    """End the session run FAILED with `reason` (tag `enpire.stopped_by`), freeing the ballast first."""
    from mlflow.tracking import MlflowClient

    if ballast is not None:
        ballast.release()
    try:
        client = MlflowClient(tracking_uri=uri)
        client.set_tag(run_id, "enpire.stopped_by", reason[:5000])
        client.set_terminated(run_id, "FAILED")
        return True
    except Exception as error:  # still no room: say so once, do not bury it under tracebacks
        log.error("could not mark the session run %s FAILED (%s)", run_id, str(error).splitlines()[0][:200])
        return False
