"""The operator's control channel of a session: a directory, no server.

Layout of `<supervision.control_root>/<session_id>/` (session_id = the MLflow run id of the session run):
  session.json     who owns the directory (pid, start time); ctl refuses unknown sessions
  state.json       what the loop last said about itself (running | paused | ended, held approvals)
  estop.flag       one byte, mmap'ed by every station: 0 = run, 1 = stop the robot now
  estop.json       when the flag was written (wall clock), by whom
  commands/        one JSON file per command, written atomically (tmp file + rename), read in name order

Why a directory: it works across processes (ctl, the runner, station workers) with nothing to start, survives a
crashed runner for inspection, and a rename is atomic on POSIX, so the loop never reads half a command. The
estop does not go through the loop at all: stations read the mmap'ed byte at every control step (a memory read,
~0.05 us; enpire.world.estop), so their robots stop within one control step whatever the loop is doing.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from enpire.world.estop import ESTOP_ENV, estop_flag

log = logging.getLogger(__name__)

VERBS = ("pause", "resume", "stop", "estop", "approve", "reject", "reset-done")
STARTING = ".starting"  # provisional control dirs of sessions whose MLflow run does not exist yet


def control_dir(root: str | Path, session_id: str) -> Path:
    return Path(root) / session_id


def write_json_atomic(path: Path, doc: dict[str, Any]) -> None:
    """Write `doc` so that a reader sees the old file or the new one, never a torn one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
    tmp.write_text(json.dumps(doc, sort_keys=True))
    os.replace(tmp, path)


def send(directory: Path, verb: str, **args: Any) -> Path:
    """Queue one command for the session owning `directory` (the estop flag is also set at once)."""
    if verb not in VERBS:
        raise ValueError(f"command: got {verb!r}; expected one of {', '.join(VERBS)}")
    doc: dict[str, Any] = {"verb": verb, "sent_at": time.time(), "pid": os.getpid(), **args}
    if verb == "estop":
        flag = directory / "estop.flag"
        with open(flag, "r+b") as fh:
            written_at = time.time()
            fh.write(b"\x01")
            fh.flush()
            flushed_at = time.time()  # the byte is visible to every mapping by now
        write_json_atomic(directory / "estop.json", {"written_at": written_at, "flushed_at": flushed_at,
                                                     "pid": os.getpid()})
        doc["written_at"] = written_at
    commands = directory / "commands"
    name = f"{time.time_ns():020d}-{os.getpid()}-{verb}.json"
    write_json_atomic(commands / name, doc)
    return commands / name


class ControlChannel:
    """The session's end of the channel: creates the directory, reads commands, publishes its state."""

    def __init__(self, root: str | Path, session_id: str, poll_s: float = 0.1) -> None:
        self.dir = control_dir(root, session_id).resolve()
        self.poll_s = poll_s
        self._next_poll = 0.0
        (self.dir / "commands").mkdir(parents=True, exist_ok=True)
        (self.dir / "done").mkdir(exist_ok=True)
        self.flag_path = self.dir / "estop.flag"
        self._provisional: Path | None = None  # the name it had before `adopt`, kept as a link
        self.flag_path.write_bytes(b"\x00")
        write_json_atomic(self.dir / "session.json", {"session_id": session_id, "pid": os.getpid(),
                                                       "started_at": time.time()})
        self.publish("running")
        self._flag = estop_flag(str(self.flag_path))
        self._old_env = os.environ.get(ESTOP_ENV)
        os.environ[ESTOP_ENV] = str(self.flag_path)  # stations created from now on (and their restarts) map it

    def adopt(self, session_id: str) -> None:
        """Answer to `session_id`: the channel was made under a provisional name (`<root>/.starting/<key>`)
        before the MLflow run existed, so stations could start while MLflow opens. The directory is renamed
        to `<root>/<session_id>` (mapped flags follow the inode) and the provisional path becomes a link to
        it, for stations still booting with the old path; later stations are given the new one."""
        target = self.dir.parent.parent / session_id if self.dir.parent.name == STARTING else self.dir
        if target != self.dir:
            os.replace(self.dir, target)
            self.dir.symlink_to(target, target_is_directory=True)
            self._provisional = self.dir
            self.dir, self.flag_path = target, target / "estop.flag"
            os.environ[ESTOP_ENV] = str(self.flag_path)
        owner = json.loads((self.dir / "session.json").read_text())
        write_json_atomic(self.dir / "session.json", {**owner, "session_id": session_id})

    def estop_set(self) -> bool:
        """Is the estop flag set (a memory read: the loop checks it before it dispatches anything)?"""
        return bool(self._flag[0])

    def estop_written_at(self) -> float | None:
        try:
            return float(json.loads((self.dir / "estop.json").read_text())["written_at"])
        except (OSError, ValueError, KeyError):
            return None

    def poll(self, now: float) -> list[dict[str, Any]]:
        """Commands that arrived since the last poll, oldest first (at most every poll_s seconds)."""
        if now < self._next_poll:
            return []
        self._next_poll = now + self.poll_s
        out = []
        for entry in sorted(os.scandir(self.dir / "commands"), key=lambda e: e.name):
            if entry.name.startswith(".") or not entry.name.endswith(".json"):
                continue
            try:
                doc = json.loads(Path(entry.path).read_text())
            except (OSError, ValueError) as error:
                log.warning("control command %s unreadable (%s); ignored", entry.name, error)
                doc = None
            os.replace(entry.path, self.dir / "done" / entry.name)
            if isinstance(doc, dict) and doc.get("verb") in VERBS:
                out.append(doc)
        return out

    def publish(self, state: str, **extra: Any) -> None:
        write_json_atomic(self.dir / "state.json", {"state": state, "updated_at": time.time(), **extra})

    def close(self, stopped_by: str) -> None:
        self.publish("ended", stopped_by=stopped_by)
        if self._provisional is not None and self._provisional.is_symlink():
            self._provisional.unlink()
        if self._old_env is None:
            os.environ.pop(ESTOP_ENV, None)
        else:
            os.environ[ESTOP_ENV] = self._old_env
