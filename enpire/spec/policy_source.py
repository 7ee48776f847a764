"""`policy.source`: the user's policy file, checked before anything reads it into a session.

The file's text becomes the session's first candidate: it is journalled, logged to MLflow
(`candidate.py`, `candidate.json`) and shown to agents. So `policy.source=/proc/self/environ`
must not be accepted as "a file": it would copy the environment, API keys included, into the
record. A policy source is accepted only when it is

- under the user's project directory (the current working directory), enpire's own
  `examples/`, or a directory listed in the environment variable `ENPIRE_POLICY_SOURCE_DIRS`
  (`os.pathsep`-separated), after resolving symlinks; never under /proc, /sys or /dev, and the
  file system root itself is never an allowed directory;
- a regular, readable file named `*.py`, at most `MAX_BYTES` bytes;
- UTF-8 text that parses as Python;
- free of the value of any secret environment variable (enpire.spec.secrets).

`read_policy_source` applies the same checks when the file is read (so a file swapped after
validation is refused then too) and reads what it checked through one descriptor.
"""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

from enpire import PROJECT_ROOT
from enpire.spec.secrets import secret_names_in

MAX_BYTES = 256 * 1024
ALLOW_ENV = "ENPIRE_POLICY_SOURCE_DIRS"


class PolicySourceError(ValueError):
    """policy.source is not a file enpire may read; `expected` says what would be accepted."""

    def __init__(self, path: str, expected: str) -> None:
        self.path = path
        self.expected = expected
        super().__init__(f"policy.source: got {path!r}; expected {expected}")


# Kernel and device file systems: never a policy, whatever directory is allowed (cwd may be /).
NEVER = tuple(Path(p) for p in ("/proc", "/sys", "/dev"))


def allowed_roots() -> list[Path]:
    """Directories a policy source may live under: cwd, enpire's examples, $ENPIRE_POLICY_SOURCE_DIRS.

    The file system root is never one of them (a session started from / does not allow every file).
    """
    extra = [Path(p).expanduser() for p in os.environ.get(ALLOW_ENV, "").split(os.pathsep) if p.strip()]
    roots = [Path(p).resolve() for p in (Path.cwd(), PROJECT_ROOT / "examples", *extra)]
    return [r for r in roots if r != Path(r.anchor)]


def read_policy_source(path: str | Path) -> str:
    """The text of a policy source that passes every check above; PolicySourceError naming the first that fails."""
    given = str(path)
    want = f"a readable Python file (*.py, UTF-8, at most {MAX_BYTES // 1024} KB)"
    try:
        real = Path(os.path.expanduser(given)).resolve(strict=True)
    except (OSError, RuntimeError):
        raise PolicySourceError(given, f"{want}; there is no such file") from None
    roots = allowed_roots()
    if any(real.is_relative_to(r) for r in NEVER) or not any(real.is_relative_to(r) for r in roots):
        raise PolicySourceError(
            given,
            f"{want} under the project directory (cwd) or a directory in "
            f"${ALLOW_ENV}; it resolves to {real}, outside "
            f"{', '.join(str(r) for r in roots)}",
        )
    if real.suffix != ".py":
        raise PolicySourceError(given, f"{want}; its name does not end in .py")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise PolicySourceError(given, f"{want}; it cannot be opened ({error.strerror})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PolicySourceError(given, f"{want}; it is not a regular file")
        if st.st_size > MAX_BYTES:
            raise PolicySourceError(given, f"{want}; it has {st.st_size} bytes")
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            data = f.read(MAX_BYTES + 1)
    finally:
        if fd >= 0:
            os.close(fd)
    if len(data) > MAX_BYTES:
        raise PolicySourceError(given, f"{want}; it has more than {MAX_BYTES} bytes")
    if b"\0" in data:
        raise PolicySourceError(given, f"{want}; it is binary (it holds NUL bytes)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise PolicySourceError(given, f"{want}; it is not UTF-8 (byte {error.start})") from None
    try:
        ast.parse(text, filename=str(real))
    except (SyntaxError, ValueError) as error:  # the message, never the offending line's text
        where = f" at line {error.lineno}" if isinstance(error, SyntaxError) and error.lineno else ""
        msg = error.msg if isinstance(error, SyntaxError) else "unparsable"
        raise PolicySourceError(given, f"{want}; it is not valid Python ({msg}{where})") from None
    names = secret_names_in(text)
    if names:
        raise PolicySourceError(given, f"{want} that holds no secret; it contains the value of ${', $'.join(names)}")
    return text


def policy_source_problem(path: str | Path) -> str | None:
    """What is wrong with policy.source `path` (the `expected` part of a Problem), or None."""
    try:
        read_policy_source(path)
    except PolicySourceError as error:
        return error.expected
    return None
