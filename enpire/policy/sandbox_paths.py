"""Which paths of the session a sandboxed policy must not see: everything the session writes.

A policy reads whatever its mount view shows. The session writes its MLflow store (wherever
`tracking.uri` points), the artifacts (`tracking.artifact_root`), the operator control
directory (`supervision.control_root`, with the estop flag), its run directory (journal,
trial directories, videos): a policy that reads those learns other candidates' results and
the session's bookkeeping; one that could write them (the mount view is read-only, but a
misconfiguration should not be the only wall) could forge them. `session_paths` lists them
from the spec; sandbox_child.py replaces each directory with an empty read-only tmpfs and
each file with an empty file.

The run directory is not part of the spec: the caller passes it, or the session publishes
it in `ENPIRE_RUN_DIR` before its stations start (as it does `ENPIRE_ESTOP_FLAG`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

RUN_DIR_ENV = "ENPIRE_RUN_DIR"
ESTOP_ENV = "ENPIRE_ESTOP_FLAG"
SQLITE_SIDECARS = ("", "-wal", "-shm", "-journal")


def _local_path(uri: str | None) -> Path | None:
    """The local file-system path of a store URI or plain path; None for servers and object stores."""
    if not uri:
        return None
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):].split("?", 1)[0])
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if "://" in uri or uri.startswith(("databricks", "http:", "https:")):
        return None
    return Path(uri)


def _too_wide(d: Path) -> bool:
    """A directory that must not be hidden whole: '/', or one holding the working tree or the interpreter."""
    keep = [Path.cwd().resolve(), Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve(),
            Path(__file__).resolve().parent]
    return d == d.parent or any(k == d or d in k.parents for k in keep)


def session_paths(spec: Any, run_dir: str | os.PathLike[str] | None = None) -> tuple[str, ...]:
    """Absolute paths to hide from the spec's sandboxes: stores, artifacts, control dir, run dir.

    A SQLite store's directory is hidden unless it holds the working tree or the interpreter
    (`sqlite:///mlflow.db` in the repository root); its file and the SQLite side files are
    hidden in any case.
    """
    out: list[Path] = []
    tracking = getattr(spec, "tracking", None)
    uri = str(getattr(tracking, "uri", "") or "")
    store = _local_path(uri)
    if store is not None:
        store = store.resolve()
        if uri.startswith("sqlite:"):
            out += [Path(f"{store}{s}") for s in SQLITE_SIDECARS]
            store = store.parent
        if not _too_wide(store):
            out.append(store)
    artifacts = _local_path(str(getattr(tracking, "artifact_root", "") or ""))
    resolved = getattr(spec, "resolved", None) or {}
    control = (resolved.get("supervision") or {}).get("control_root", "outputs/control")
    estop = os.environ.get(ESTOP_ENV)
    run = run_dir or os.environ.get(RUN_DIR_ENV)
    for p in (artifacts, _local_path(str(control)), Path(estop).parent if estop else None,
              Path(run) if run else None):
        if p is not None and not _too_wide(p.resolve()):
            out.append(p.resolve())
    return tuple(dict.fromkeys(str(p) for p in out))
