"""A trial's files (video, replay, trajectory) carried from a station to the runner as bytes, never as a path.

A station that runs on another machine writes its files to its own disk; the path in its record means
nothing to the runner. So the station side takes the files out of its folder (`take_files`: read, then
removed, so a station's disk does not fill up) and sends the bytes with the record (a Ray actor's return
value, a remote station's record message), and the runner writes them where a local station would have put
them (`place_files`: the request's `out_dir`) and points the record there. Both executors that run stations
elsewhere (enpire.fleet.ray_executor, enpire.fleet.remote) use this module, so a replay reaches the runner
the same way whatever carried it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from enpire.records import TrialRecord

log = logging.getLogger(__name__)

FILE_FIELDS = ("video", "replay", "trajectory")
MAX_FILE_BYTES = 256 * 1024 * 1024  # a file larger than this stays on the station (logged) rather than clog the link


def take_files(record: TrialRecord, max_bytes: int = MAX_FILE_BYTES) -> dict[str, bytes]:
    """The record's files as bytes by field, each removed from the station's disk once read."""
    out: dict[str, bytes] = {}
    for field in FILE_FIELDS:
        path = getattr(record, field)
        if not path:
            continue
        p = Path(path)
        try:
            size = p.stat().st_size
            if size > max_bytes:
                log.warning("trial %s: %s file %s is %d bytes (over %d): left on the station", record.trial_id,
                            field, path, size, max_bytes)
                continue
            out[field] = p.read_bytes()
            p.unlink()
        except OSError as error:
            log.warning("trial %s: %s file %s unreadable (%s)", record.trial_id, field, path, error)
    return out


def place_files(record: TrialRecord, files: Mapping[str, bytes], out_dir: Path) -> None:
    """Write a station's files of `record` into `out_dir` (the name the station gave them) and point the record
    at them; a field whose bytes did not come back is cleared (a path on the station's disk means nothing here)."""
    for field, data in files.items():
        if field not in FILE_FIELDS:
            continue
        name = Path(getattr(record, field) or f"{record.trial_id}.{field}").name
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / name).write_bytes(data)
        setattr(record, field, str(out_dir / name))
    for field in FILE_FIELDS:
        if field not in files:
            setattr(record, field, None)
