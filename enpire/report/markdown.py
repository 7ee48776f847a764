"""Markdown tables of the report. Every rate is written with its counts and 95% interval."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from enpire.report.data import Iteration, Session, session_row
from enpire.track.confidence import counts, wilson


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


def rate_cell(rate: float, trials: int) -> str:
    """`3/4 (0.30-0.95)`: successes over trials and the 95% Wilson interval; `–` without trials."""
    if trials <= 0:
        return "–"
    s = counts(rate, trials)
    lo, hi = wilson(s, trials)
    return f"{s}/{trials} ({lo:.2f}-{hi:.2f})"


def decision_cell(it: Iteration) -> str:
    if it.decision == "keep":
        return "**keep**"
    if it.decision == "cancelled":
        return "*cancelled* (not judged)"
    return it.decision


def parent_cell(it: Iteration) -> object:
    """The parent iteration; a recipe borrowed from another session's notebook (agent.memory_from) says so."""
    source = it.borrowed_from or ""
    if source.startswith("memory:"):
        session, _, branch = source.removeprefix("memory:").partition("/")
        return f"borrowed: memory:{session[:8]}/{branch}"
    return it.parent


ITERATION_HEADERS = ("#", "agent", "parent", "decision", "pass@1 (own trials)", "pass@k (own trials)",
                     "candidate pooled", "trials", "robot s", "tokens", "hypothesis")


def iteration_table(session: Session, hypothesis_chars: int = 90) -> str:
    """One row an iteration. A session judged by the classifier verifier (done.verifier=classifier) shows the
    state verifier's verdict of the same trials (its shadow) beside the verified pass@1: true success."""
    shadow = any("true_success_rate" in it.metrics for it in session.iterations)
    rows = []
    for it in session.iterations:
        hyp = it.hypothesis if len(it.hypothesis) <= hypothesis_chars else it.hypothesis[: hypothesis_chars - 1] + "…"
        n = it.evidence
        pooled = it.pooled
        rows.append((it.index, it.agent, parent_cell(it), decision_cell(it), rate_cell(it.metric("pass_at_1"), n),
                     rate_cell(it.metric("pass_at_k"), n),
                     f"{pooled.successes}/{pooled.trials} (lower bound {pooled.lcb:.2f})" if pooled.trials else "–",
                     int(it.metric("trials")), it.metric("robot_seconds"), int(it.metric("tokens")), hyp))
        if shadow:
            true = (rate_cell(it.metric("true_success_rate"), int(it.metric("shadow_trials")))
                    if "true_success_rate" in it.metrics else "–")
            rows[-1] = (*rows[-1][:5], true, *rows[-1][5:])
    headers = ITERATION_HEADERS if not shadow else (*ITERATION_HEADERS[:5], "true pass@1 (state verifier)",
                                                    *ITERATION_HEADERS[5:])
    return table(headers, rows)


SESSION_HEADERS = ("session", "label", "task", "fleet", "agent", "/done", "best success (95% CI)",
                   "best pass@1", "best pass@k", "iterations", "trials", "robot s", "tokens", "wall s",
                   "time to done s", "robot s to done", "MRU", "MTU", "status")


def session_table(sessions: Sequence[Session]) -> str:
    return table(SESSION_HEADERS, [tuple(session_row(s).values()) for s in sessions])
