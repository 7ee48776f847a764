"""Checks of a valid spec against the machine it is about to run on, before anything is created.

A schema-valid spec can still be unusable here: a tracking store that records nothing (an
in-memory SQLite database), that is not a database, or a server that does not answer; a control
root that cannot be created. Each would otherwise fail minutes into a session, or worse, run
it without a record. These checks create nothing they leave behind: writability is probed with
a temporary directory that is removed at once.
"""

from __future__ import annotations

import re
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from enpire.spec.errors import Problem

CONNECT_TIMEOUT_S = 3.0
SQLITE_HEADER = b"SQLite format 3\x00"
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306}
# Top-level integers whose override text must be plain digits: YAML 1.1 and Hydra's grammar read
# `fleet=1_0` as 10, almost certainly a typo of the sweep `fleet=1,0`.
PLAIN_INTEGER_KEYS = ("fleet", "agents", "seed")
_UNDERSCORED_NUMBER = re.compile(r"[+-]?\d[\d_]*_[\d_]*(\.[\d_]*)?([eE][+-]?\d+)?")


def override_problems(overrides: list[str]) -> list[Problem]:
    """Numbers with underscores in overrides of `PLAIN_INTEGER_KEYS` (each item of a comma sweep)."""
    out = []
    for text in overrides:
        key, eq, value = text.partition("=")
        key = key.lstrip("+~").strip()
        if key not in PLAIN_INTEGER_KEYS or not eq:
            continue
        for item in value.split(","):
            if _UNDERSCORED_NUMBER.fullmatch(item.strip()):
                out.append(Problem(key, item.strip(), "a number written without underscores (Hydra reads "
                                                      f"{item.strip()} as {item.strip().replace('_', '')}; "
                                                      "a sweep is a comma list with -m)"))
    return out


def unusable_dir(path: Path) -> str | None:
    """Why `path` cannot be created (if absent) and written as a directory; None when it can.

    Probes the path itself when it exists, else its nearest existing ancestor, by creating and
    removing a temporary directory with a file in it.
    """
    path = Path(path).expanduser()
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory"
    try:
        probe = Path(tempfile.mkdtemp(prefix=".enpire-probe-", dir=existing))
    except OSError as error:
        return f"cannot create a directory in {existing} ({error.strerror or error})"
    try:
        (probe / "probe").write_bytes(b"")
    except OSError as error:
        return f"cannot write in {existing} ({error.strerror or error})"
    finally:
        shutil.rmtree(probe, ignore_errors=True)
    return None


def sqlite_file(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (None for other stores and in-memory databases)."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return None if path in ("", ":memory:") or path.startswith("file:") else Path(path).expanduser()


def _sqlite_problem(uri: str) -> str | None:
    rest = uri[len("sqlite:///"):]
    path = rest.split("?", 1)[0]
    if path in ("", ":memory:") or path.startswith("file::memory:") or "mode=memory" in rest:
        return "a store that keeps its records (an in-memory SQLite database is gone when the session ends)"
    file = Path(path).expanduser()
    if file.is_dir():
        return f"a SQLite database file ({file} is a directory)"
    if file.exists():
        try:
            with file.open("rb") as f:
                header = f.read(len(SQLITE_HEADER))
        except OSError as error:
            return f"a readable SQLite database file ({file}: {error.strerror or error})"
        if header and header != SQLITE_HEADER:
            return f"a SQLite database file ({file} exists and is not one)"
        return None
    why = unusable_dir(file.parent)
    return f"a SQLite file that can be created ({why})" if why else None


def _server_problem(uri: str) -> str | None:
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0]
    try:
        host, port = parts.hostname, parts.port or DEFAULT_PORTS.get(scheme)
    except ValueError as error:  # a port that is not a number
        return f"a tracking URI with a valid host and port ({error})"
    if not host or port is None:
        return None
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return None
    except OSError as error:
        return (f"a reachable tracking server (no connection to {host}:{port} within {CONNECT_TIMEOUT_S:g} s: "
                f"{error.strerror or error})")


def tracking_problems(uri: str) -> list[Problem]:
    """The store at `uri`: keeps records, is a SQLite database (or can become one), or answers."""
    if uri.startswith("sqlite:"):
        why = _sqlite_problem(uri)
    elif uri.startswith("file:"):
        local = Path(urlsplit(uri).path or uri[len("file:"):])
        why = unusable_dir(local)
        why = f"a usable file store ({why})" if why else None
    else:
        why = _server_problem(uri)
    return [Problem("tracking.uri", uri, why)] if why else []


def control_root_problems(resolved: dict[str, Any]) -> list[Problem]:
    root = (resolved.get("supervision") or {}).get("control_root")
    if not isinstance(root, str):
        return []
    why = unusable_dir(Path(root))
    return [Problem("supervision.control_root", root, f"a directory that can be created and written ({why})")] \
        if why else []


def artifact_root_problems(resolved: dict[str, Any]) -> list[Problem]:
    """A local `tracking.artifact_root` (a path or file:// URI) must be a directory that can be written."""
    root = (resolved.get("tracking") or {}).get("artifact_root")
    if not root or ("://" in str(root) and not str(root).startswith("file://")):
        return []  # the store's default, or an object store MLflow reaches itself
    path = Path(str(root).removeprefix("file://"))
    why = unusable_dir(path)
    return [Problem("tracking.artifact_root", root, f"a directory that can be created and written ({why})")] \
        if why else []


RUN_DIR_KEYS = ("hydra.run.dir", "hydra.sweep.dir")


def run_dir_problems(overrides: list[str]) -> list[Problem]:
    """`hydra.run.dir=` / `hydra.sweep.dir=` overrides naming a place that cannot be written (e.g. under /proc)."""
    out = []
    for text in overrides:
        key, eq, value = text.partition("=")
        key = key.lstrip("+~").strip()
        if key not in RUN_DIR_KEYS or not eq or "${" in value:
            continue
        why = unusable_dir(Path(value.strip()))
        if why:
            out.append(Problem(key, value.strip(), f"a directory that can be created and written ({why})"))
    return out
