"""The journal's group commit: every line is written at once (a `kill -9` loses none), the fsync follows
within `sync_every_s` on a timer, and close syncs the rest."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from enpire.track.atomic import AppendFile, read_lines


def test_lines_written_before_a_kill_9_are_all_there(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    code = ("import os, signal; from enpire.track.atomic import AppendFile\n"
            f"f = AppendFile({str(path)!r}, sync_every_s=60.0)\n"
            "for i in range(500): f.append({'kind': 'trial', 'i': i})\n"
            "os.kill(os.getpid(), signal.SIGKILL)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    assert [d["i"] for d in read_lines(path)] == list(range(500))  # no fsync happened, no line lost


def test_the_fsync_follows_within_the_window_and_close_syncs_the_rest(tmp_path: Path, monkeypatch) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    f = AppendFile(tmp_path / "j.jsonl", sync_every_s=0.05)
    for i in range(100):
        f.append({"i": i})
    assert len(synced) == 0  # one group, not one fsync per line
    deadline = time.monotonic() + 5
    while not synced and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(synced) == 1
    f.append({"i": 100})
    f.close()
    assert len(synced) == 2 and len(read_lines(tmp_path / "j.jsonl")) == 101
    f.append({"i": 101})  # after close: the file opens again
    f.close()
    assert len(read_lines(tmp_path / "j.jsonl")) == 102
