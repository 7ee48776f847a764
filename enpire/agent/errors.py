"""Terminal conditions an agent raises so the loop can end (or retire the agent) cleanly.

Recoverable trouble (a failed call, an invalid tool input, a deadline) goes back to the loop
as an AgentReply with `error` set: the loop records it and asks again. Only these exceptions
mean "stop asking this agent"; each carries a reason the loop records in the session summary.

How the loop is meant to act on them:

    try:
        reply = agent.propose(state)
    except AgentGaveUp as stop:
        # retire `agent`; when no agent is left, end the session (exit 0) with
        # summary `stop_reason: <stop.reason>` and MLflow tag `enpire.stop_reason`.
        ...
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of everything an agent raises on purpose."""


class AgentConfigError(AgentError):
    """The agent cannot be built as configured (e.g. no ANTHROPIC_API_KEY in the environment)."""


class AgentGaveUp(AgentError):
    """Terminal: the agent will not produce further proposals; `reason` says why."""

    def __init__(self, agent: str, reason: str, failures: tuple[str, ...] = ()) -> None:
        self.agent = agent
        self.reason = reason
        self.failures = failures  # the last errors, oldest first (key-free, safe to log)
        super().__init__(f"agent {agent} gave up: {reason}")


class TokenBudgetSpent(AgentGaveUp):
    """Terminal: the session's token budget is spent, so no further call may start."""
