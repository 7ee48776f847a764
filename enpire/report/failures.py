"""Why trials failed: each iteration's failure histogram (enpire.attribution), one row an iteration.

Read from the iteration runs' `enpire.failures` tag, so it needs MLflow alone, like the rest of the report.
"""

from __future__ import annotations

from enpire.report.data import Session
from enpire.report.markdown import table

FAILURE_HEADERS = ("#", "candidate", "decision", "failed / trials", "why the failed trials failed (typical value)")


def failure_table(session: Session) -> str | None:
    """The table, or None when no iteration of the session had a failed trial with attribution."""
    rows = []
    for it in session.iterations:
        if not it.failures:
            continue
        successes, trials = it.own
        rows.append((it.index, it.candidate_id[:12] or "–", it.decision, f"{trials - successes}/{trials}",
                     it.failures))
    return table(FAILURE_HEADERS, rows) if rows else None


def failure_section(session: Session) -> list[str]:
    """Markdown lines of the section (nothing when there is nothing to attribute)."""
    text = failure_table(session)
    if text is None:
        return []
    return ["### Failure attribution", "",
            "Failed trials grouped by the phase they never entered (done.phases) or the first done condition "
            "failing at the end of their first attempt, with the group's median measured value.", "", text, ""]
