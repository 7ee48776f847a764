"""Retrying MLflow writes through store outages, and telling a full disk from a passing fault.

A SQLite store locked by another process ("database is locked") or a tracking server refusing
connections for a while are transient: the writer keeps the write (and every one queued behind it, in
order) and retries with exponential backoff for up to RETRY_WINDOW_S, so nothing is lost and the session
goes on. A full output disk is not transient: retrying would only pile up half-written files, so it is
raised at once and the session ends with a clear error (SQLite rolls the failed transaction back, so
what was recorded before stays readable).
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

RETRY_WINDOW_S = 120.0  # give up on a write after this long (then it is logged as failed, as before)
BACKOFF_S = (0.2, 5.0)  # first wait, longest wait

_TRANSIENT = ("database is locked", "database table is locked", "connection refused", "max retries exceeded",
              "temporarily unavailable", "timed out", "connection reset", "connection aborted",
              "remotedisconnected", "503", "502", "504", "failed to establish a new connection")
_DISK_FULL = ("database or disk is full", "no space left on device", "disk quota exceeded")


def _chain(error: BaseException) -> list[BaseException]:
    out, seen = [], set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        out.append(error)
        error = error.__cause__ or error.__context__  # type: ignore[assignment]
    return out


def is_disk_full(error: BaseException) -> bool:
    for e in _chain(error):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(s in str(e).lower() for s in _DISK_FULL):
            return True
    return False


def disk_full_reason(error: BaseException) -> str:
    """The shortest words of the chain that say the disk is full (SQLAlchemy wraps them in noise)."""
    for e in reversed(_chain(error)):
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if (isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT)) or \
                any(s in text.lower() for s in _DISK_FULL):
            return text[:200]
    return str(error).splitlines()[0][:200]


def is_transient(error: BaseException) -> bool:
    if is_disk_full(error):
        return False
    for e in _chain(error):
        if isinstance(e, ConnectionError | TimeoutError):
            return True
        if any(s in str(e).lower() for s in _TRANSIENT):
            return True
    return False


def with_retry(op: Callable[[], T], stats: dict[str, Any] | None = None, window_s: float = RETRY_WINDOW_S,
               sleep: Callable[[float], Any] = time.sleep) -> T:
    """Run `op`, retrying transient store errors with backoff for up to `window_s`; other errors propagate."""
    start = time.monotonic()
    wait = BACKOFF_S[0]
    attempt = 0
    while True:
        try:
            result = op()
        except Exception as error:
            elapsed = time.monotonic() - start
            if not is_transient(error) or elapsed + wait > window_s:
                raise
            attempt += 1
            if stats is not None:
                stats["retries"] = stats.get("retries", 0) + 1
                stats["retry_wait_s"] = stats.get("retry_wait_s", 0.0) + wait
            log.warning("MLflow store unavailable (%s); retry %d in %.1f s (%.0f s of %.0f s used)",
                        str(error).splitlines()[0][:200], attempt, wait, elapsed, window_s)
            sleep(wait)
            wait = min(BACKOFF_S[1], wait * 2)
            continue
        if attempt and stats is not None:
            stats["recovered"] = stats.get("recovered", 0) + 1
            log.warning("MLflow store available again after %d retries (%.1f s)", attempt,
                        time.monotonic() - start)
        return result
