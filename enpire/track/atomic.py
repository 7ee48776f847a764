"""Crash-safe file writes: a reader (or a resume after `kill -9`) sees the old or the new version, never half.

`write_text_atomic`: write a temporary file in the same folder, fsync it, `os.replace` it over
the target (atomic on POSIX within one filesystem), then fsync the folder so the rename itself
survives a power cut. `append_line_durable`: one JSON line appended and fsync'ed before the call
returns; a torn last line (the process died inside `write`) is skipped by `read_lines`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems do not open folders; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` by `data` atomically (tmp + fsync + os.replace + fsync of the folder)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    write_bytes_atomic(path, text.encode())


def write_json_atomic(path: str | os.PathLike[str], doc: Any) -> None:
    write_text_atomic(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def append_line_durable(path: str | os.PathLike[str], doc: dict[str, Any]) -> None:
    """Append `doc` as one JSON line and fsync: once this returns, the line survives `kill -9`.

    One `os.write` of the whole line on an O_APPEND descriptor, so concurrent appenders never
    interleave inside a line.
    """
    target = Path(path)
    line = (json.dumps(doc, sort_keys=True, default=str, allow_nan=True) + "\n").encode()
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


class AppendFile:
    """An append-only JSON-lines file kept open: each `append` is one `os.write` of the whole line on an
    O_APPEND descriptor (in the page cache at once: it survives `kill -9` of this process, and concurrent
    appenders never interleave inside a line); fsync is a group commit: a timer syncs at most
    `sync_every_s` after the first unsynced line, and `close` syncs the rest, instead of one fsync per
    line (a power cut loses at most that window)."""

    def __init__(self, path: str | os.PathLike[str], sync_every_s: float = 1.0) -> None:
        self.path = Path(path)
        self.sync_every_s = sync_every_s
        self._fd: int | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def append(self, doc: dict[str, Any]) -> None:
        line = (json.dumps(doc, sort_keys=True, default=str, allow_nan=True) + "\n").encode()
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.write(self._fd, line)
            if self.sync_every_s <= 0:
                os.fsync(self._fd)
            elif self._timer is None:
                self._timer = threading.Timer(self.sync_every_s, self.sync)
                self._timer.daemon = True
                self._timer.start()

    def sync(self) -> None:
        with self._lock:
            self._timer = None
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                except OSError as error:  # the timer's thread has no caller to tell: log it
                    log.error("%s: fsync failed (%s)", self.path, error.strerror or error)

    def close(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
            if timer is not None:
                timer.cancel()
            fd, self._fd = self._fd, None
        if fd is not None:
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def read_lines(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every complete JSON line of an append-only file; a torn or corrupt line is skipped with a warning."""
    target = Path(path)
    if not target.is_file():
        return []
    out = []
    for n, raw in enumerate(target.read_bytes().split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            doc = json.loads(raw)
        except ValueError:
            log.warning("%s line %d is torn or corrupt (a crash mid-write); skipped", target, n)
            continue
        if isinstance(doc, dict):
            out.append(doc)
    return out
