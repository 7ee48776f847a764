"""Where a run came from, as MLflow's own UI shows it: the git commit, what was run, who ran it.

MLflow's fluent API sets these tags itself; enpire creates runs through the client, so it sets them:
`mlflow.source.git.commit` (plus `enpire.git.dirty`: did tracked files differ from that commit),
`mlflow.source.name`, `mlflow.source.type` and `mlflow.user`. Computed once per process.
"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

_SOURCE: dict[str, str] | None = None


def source_tags() -> dict[str, str]:
    """mlflow.source.* and mlflow.user, as MLflow's fluent API sets them: the git commit of the enpire checkout
    (with `enpire.git.dirty` when files differ from it), what was run, and who ran it."""
    global _SOURCE
    if _SOURCE is None:
        repo = Path(__file__).resolve().parents[2]
        tags = {"mlflow.source.type": "LOCAL", "mlflow.source.name": _source_name()}
        try:
            tags["mlflow.user"] = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name in a container is not an error
            tags["mlflow.user"] = os.environ.get("USER", "unknown")
        try:
            commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True,
                                    timeout=5, check=True).stdout.strip()
            dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                   capture_output=True, text=True, timeout=5, check=True).stdout.strip()
            if commit:
                tags["mlflow.source.git.commit"] = commit
                tags["enpire.git.dirty"] = str(bool(dirty)).lower()
        except (OSError, subprocess.SubprocessError):  # not a git checkout (an installed package): no commit tag
            pass
        _SOURCE = tags
    return dict(_SOURCE)


def _source_name() -> str:
    argv0 = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path("python")
    if argv0.name == "__main__.py":
        return f"python -m {argv0.parent.name}"
    return argv0.name or "python"
