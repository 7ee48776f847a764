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
