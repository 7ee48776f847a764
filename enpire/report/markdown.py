"""Markdown tables of the report."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from enpire.report.data import Session, session_row


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


ITERATION_HEADERS = ("#", "agent", "parent", "decision", "success", "pass@1", "pass@k", "trials", "robot s",
                     "tokens", "hypothesis")


def iteration_table(session: Session, hypothesis_chars: int = 90) -> str:
    rows = []
    for it in session.iterations:
        hyp = it.hypothesis if len(it.hypothesis) <= hypothesis_chars else it.hypothesis[: hypothesis_chars - 1] + "…"
        rows.append((it.index, it.agent, it.parent, ("**keep**" if it.decision == "keep" else it.decision),
                     it.metric("success_rate"), it.metric("pass_at_1"), it.metric("pass_at_k"),
                     int(it.metric("trials")), it.metric("robot_seconds"), int(it.metric("tokens")), hyp))
    return table(ITERATION_HEADERS, rows)


SESSION_HEADERS = ("session", "label", "fleet", "agent", "/done", "best success", "iterations", "trials",
                   "robot s", "tokens", "wall s", "time to done s", "robot s to done", "MRU", "MTU", "status")


def session_table(sessions: Sequence[Session]) -> str:
    return table(SESSION_HEADERS, [tuple(session_row(s).values()) for s in sessions])
