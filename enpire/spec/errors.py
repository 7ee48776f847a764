"""Spec errors: every problem names its key path, the bad value and what was expected."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

EXIT_INVALID_SPEC = 2
EXIT_INTEGRITY = 3

_MISSING = object()


def _show(value: Any) -> str:
    if value is _MISSING:
        return "<missing>"
    try:
        text = json.dumps(value, default=str, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where, what was there, what was expected."""

    path: str
    value: Any
    expected: str

    def __str__(self) -> str:
        return f"{self.path or '<root>'}: got {_show(self.value)}; expected {self.expected}"


MISSING = _MISSING


class SpecError(Exception):
    """A spec or override that must not run. Carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem], source: str = "spec") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(self.render())

    def render(self) -> str:
        head = f"invalid {self.source}: {len(self.problems)} problem(s)"
        return "\n".join([head, *(f"  - {p}" for p in self.problems)])


class IntegrityError(Exception):
    """Frozen criteria, envelope or a stored spec changed under a session (exit code 3).

    `detail` says what differs, when more is known than the two fingerprints.
    """

    def __init__(self, what: str, expected: str, actual: str, detail: str = "") -> None:
        self.what = what
        self.expected = expected
        self.actual = actual
        self.detail = detail
        super().__init__(f"integrity breach: {what} fingerprint changed (launch {expected[:12]}, now {actual[:12]})"
                         + (f": {detail}" if detail else ""))
