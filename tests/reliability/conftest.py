"""Reliability tests print their figures at the end of the run (terminal summary).

Figures come from `tests.reliability.support.FIGURES` (counts added with `add_figure`: kills
survived, trials lost, duplicates, faults injected / survived, bad inputs tried) and from
`tests.reliability.ctl_support.FIGURES` (named values set with `figure`, e.g. e-stop latency).
"""

from __future__ import annotations

import importlib
from typing import Any

import pytest

HEADLINE = ("kills survived", "trials lost", "duplicates", "faults injected", "faults survived", "bad inputs tried")
SOURCES = ("tests.reliability.support", "tests.reliability.ctl_support")


def _figures() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in SOURCES:
        try:
            out.update(getattr(importlib.import_module(name), "FIGURES", {}))
        except ImportError:
            continue
    return out


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    figures = _figures()
    if not figures:
        return
    terminalreporter.section("reliability figures")
    for name in [n for n in HEADLINE if n in figures] + sorted(set(figures) - set(HEADLINE)):
        value = figures[name]
        terminalreporter.write_line(f"{name}: {value:g}" if isinstance(value, int | float) else f"{name}: {value}")
