"""Prints the sandbox escape tally at the end of the run: `sandbox: N escape attempts stopped of M`."""

from __future__ import annotations

from tests.policy.sandbox_harness import TALLY


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001 - pytest hook signature
    if TALLY:
        stopped = sum(TALLY.values())
        terminalreporter.write_line(f"sandbox: {stopped} escape attempts stopped of {len(TALLY)}")
        escaped = sorted(k for k, v in TALLY.items() if not v)
        if escaped:
            terminalreporter.write_line(f"sandbox: NOT stopped: {', '.join(escaped)}")
