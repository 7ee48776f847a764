"""agent=claude: a research agent on the Messages API, proposing experiments by tool use.

One propose() is one short conversation: the research context goes in, the model answers
with a `propose_experiment` tool call. An input that fails the proposal schema is answered
with a tool_result (is_error) naming every problem, so the model can correct it (up to
`max_corrections` times, after which the last proposal goes to the loop to be recorded as
rejected); an answer with no tool call gets one nudge. Every response's `usage` is summed
exactly into the reply, failed turns included.

Failures (deadline, API errors after the SDK's retries, no tool call after the nudge,
proposals still invalid after corrections) come back as replies, so their tokens are
accounted; after `max_consecutive_failures` of them in a row the next propose() raises
AgentGaveUp before any call. No call starts when the token budget is spent (TokenBudgetSpent).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import httpx2

from enpire.agent.api import AgentReply, IterationSummary, ResearchState
from enpire.agent.claude_client import CallFailed, CallUsage, ClaudeOptions, MessagesCaller
from enpire.agent.claude_prompt import NUDGE, SYSTEM_PROMPT, TOOL_NAME, render_context, tool_definition
from enpire.agent.errors import AgentGaveUp, TokenBudgetSpent
from enpire.agent.proposal import proposal_problems, proposal_schema
from enpire.spec.model import AgentSpec, ExperimentSpec

log = logging.getLogger(__name__)

FEEDBACK_KEPT = 5


@dataclass
class _Turns:
    """The running tally of one propose(): messages, exact usage, transcript."""

    messages: list[dict[str, Any]]
    usages: list[CallUsage] = field(default_factory=list)
    transcript: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tokens_in(self) -> int:
        return sum(u.tokens_in for u in self.usages)

    @property
    def tokens_out(self) -> int:
        return sum(u.output_tokens for u in self.usages)

    def reply(self, proposal: dict[str, Any] | None, error: str | None = None) -> AgentReply:
        return AgentReply(proposal=proposal, tokens_in=self.tokens_in, tokens_out=self.tokens_out, error=error,
                          transcript=self.transcript)


class ClaudeAgent:
    """An Agent (enpire.agent.api) backed by Claude; built by enpire.agent.registry.make_agent."""

    def __init__(self, spec: ExperimentSpec, config: AgentSpec, index: int, branch: str, seed: int,
                 http_client: httpx2.Client | None = None) -> None:
        self.name = f"claude-{index}"
        self.branch = branch
        self.opts = ClaudeOptions.from_options(config.options)
        self._spec = spec
        self._seed = seed
        self._schema = proposal_schema(spec.policy)
        self._tool = tool_definition(self._schema)
        self._caller = MessagesCaller(self.opts, self.name, http_client)
        self._failures: list[str] = []
        self._feedback: list[str] = []
        self.calls = 0  # Messages API calls made (a call's SDK retries count once)
        self.tokens_in = 0  # lifetime totals, for the agent's own MTU
        self.tokens_out = 0

    # -- the Agent protocol -------------------------------------------------------------
    def propose(self, state: ResearchState) -> AgentReply:
        if len(self._failures) >= self.opts.max_consecutive_failures:
            raise AgentGaveUp(self.name, f"{len(self._failures)} consecutive failures "
                              f"(max_consecutive_failures={self.opts.max_consecutive_failures}); "
                              f"last: {self._failures[-1]}", tuple(self._failures))
        tokens_left = self._tokens_left(state)
        if tokens_left is not None and tokens_left <= 0:
            raise TokenBudgetSpent(self.name, "token budget spent: no further call may start")
        context = render_context(state, self._spec, self.opts.history, self.opts.trials_per_candidate, self._feedback)
        turns = _Turns(messages=[{"role": "user", "content": context}])
        reply = self._converse(turns, state, tokens_left)
        self.tokens_in += reply.tokens_in
        self.tokens_out += reply.tokens_out
        invalid = reply.proposal is not None and bool(proposal_problems(reply.proposal, self._schema))
        if reply.error or invalid:
            self._failures.append(reply.error or "proposal still invalid after corrections")
            log.warning("%s: failed proposal (%d in a row): %s", self.name, len(self._failures), self._failures[-1])
        else:
            self._failures.clear()
        return reply

    def observe(self, result: IterationSummary) -> None:
        """Remember what became of this agent's own proposals; it goes into the next context as data."""
        if result.agent != self.name and result.branch != self.branch:
            return
        note = f"iteration {result.index}: {result.decision}, success_rate {result.success_rate:.3f} " \
               f"over {result.trials} trials"
        if result.reason:
            note += f"; reason: {result.reason}"
        self._feedback = [*self._feedback, note][-FEEDBACK_KEPT:]

    # -- one proposal's conversation ------------------------------------------------------
    def _converse(self, turns: _Turns, state: ResearchState, tokens_left: float | None) -> AgentReply:
        nudged, corrections = False, 0
        last_invalid: dict[str, Any] | None = None
        while True:
            if tokens_left is not None and tokens_left - turns.tokens_in - turns.tokens_out <= 0:
                return turns.reply(last_invalid, None if last_invalid else "token budget spent during the proposal")
            try:
                message = self._caller.create(self._params(turns.messages), self._deadline(state))
            except CallFailed as failed:
                turns.transcript.append({"error": str(failed), "kind": failed.kind})
                return turns.reply(None, f"{failed.kind}: {failed}")
            self.calls += 1
            usage = CallUsage.of(message)
            turns.usages.append(usage)
            content = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
            turns.transcript.append({"response": content, "stop_reason": message.stop_reason,
                                     "usage": usage.__dict__})
            turns.messages.append({"role": "assistant", "content": content})
            uses = [b for b in content if b.get("type") == "tool_use"]
            if not uses:
                if nudged:
                    return turns.reply(None, "no tool call, even after a nudge")
                nudged = True
                turns.messages.append({"role": "user", "content": NUDGE})
                continue
            first, extra = uses[0], uses[1:]
            proposal = first.get("input") if isinstance(first.get("input"), dict) else {}
            problems = proposal_problems(proposal, self._schema) if first.get("name") == TOOL_NAME else []
            if first.get("name") == TOOL_NAME and not problems:
                return turns.reply(dict(proposal))  # any extra calls are simply not used
            results = [self._tool_error(first, problems, proposal)] + [self._tool_error(u, None) for u in extra]
            last_invalid = dict(proposal) if first.get("name") == TOOL_NAME else last_invalid
            corrections += 1
            if corrections > self.opts.max_corrections:
                # handed to the loop, whose validation records it as a `rejected` iteration
                return turns.reply(last_invalid, None if last_invalid else "no valid tool call after corrections")
            turns.messages.append({"role": "user", "content": results})

    def _tool_error(self, use: dict[str, Any], problems: list[Any] | None,
                    proposal: dict[str, Any] | None = None) -> dict[str, Any]:
        if use.get("name") != TOOL_NAME:
            text = f"Unknown tool {use.get('name')!r}; the only tool is {TOOL_NAME}."
        elif problems is None:
            text = "Only one proposal per turn is used; this extra call was ignored."
        else:
            lines = [f"- {p.path}: got {p.value!r}, expected {p.expected}" for p in problems]
            unknown = sorted(set(proposal or {}) - set(self._schema["properties"]))
            lines += [f"- proposal.{k}: not a field of a proposal. The success criteria, the safety envelope and "
                      "the budgets are fixed for the session; no proposal can change them." for k in unknown]
            text = "The proposal does not satisfy the tool's input schema; nothing was run. Fix these and call " \
                   f"{TOOL_NAME} again:\n" + "\n".join(lines)
        return {"type": "tool_result", "tool_use_id": use.get("id", ""), "is_error": True, "content": text}

    def _params(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        o = self.opts
        system: list[dict[str, Any]] = [{"type": "text", "text": SYSTEM_PROMPT}]
        if o.cache_prompt:
            system[0]["cache_control"] = {"type": "ephemeral"}
        params: dict[str, Any] = {"model": o.model, "max_tokens": o.max_tokens, "system": system,
                                  "tools": [self._tool], "messages": messages}
        if o.thinking == "off":
            params["tool_choice"] = {"type": "tool", "name": TOOL_NAME, "disable_parallel_tool_use": True}
            if o.temperature is not None:  # no longer a typed SDK argument; the API still takes it
                params["extra_body"] = {"temperature": o.temperature}
        else:  # forced tool use and temperature are not allowed with extended thinking
            params["tool_choice"] = {"type": "auto", "disable_parallel_tool_use": True}
            params["thinking"] = ({"type": "adaptive"} if o.thinking == "adaptive"
                                  else {"type": "enabled", "budget_tokens": o.thinking_budget_tokens})
        return params

    def _deadline(self, state: ResearchState) -> float:
        """call_timeout_s, but never past the session's remaining wall-clock."""
        wall = state.budgets.remaining().get("wall_clock_s")
        return min(self.opts.call_timeout_s, wall) if wall and wall > 0 else self.opts.call_timeout_s

    @staticmethod
    def _tokens_left(state: ResearchState) -> float | None:
        return state.budgets.remaining().get("tokens") if "tokens" in state.budgets.limits else None
