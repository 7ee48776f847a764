"""agent=claude: a research agent on the Messages API, proposing experiments by tool use.

One propose() is one short conversation: the research context goes in, the model answers
with a `propose_experiment` tool call. An input that fails the proposal schema is answered
with a tool_result (is_error) naming every problem, so the model can correct it (up to
`max_corrections` times, after which the last proposal goes to the loop to be recorded as
rejected); an answer with no tool call gets one nudge. Every response's `usage` is summed
exactly into the reply, failed turns included.

Every reply carries a transcript: one JSON-able entry per API call with what was sent (model,
system blocks, tool choice, and the messages added since the previous call: the first entry
holds the whole context), what came back (every content block, the model's text included, the
tool input, the stop reason), the validated usage and any usage problems. Strings in it are cut
at TRANSCRIPT_TEXT_LIMIT characters with a marker. A response with missing or implausible usage
(negative, fractional, over MAX_TOKENS_PER_CALL) never stops the agent: the counts that can be
trusted are used, the rest estimated (enpire.agent.claude_client.CallUsage), with a warning.
Oversized strings of a schema-invalid tool input (a 10 MB hypothesis) are cut to their schema
limit before the input is echoed in the correction and in every later turn.

For `policy=code` the system prompt gets a second block, the session's code-policy contract
(enpire.policy.contract), and the tool's `source` field points at it.

Failures (deadline, API errors after the SDK's retries, no tool call after the nudge,
proposals still invalid after corrections) come back as replies, so their tokens are
accounted; after `max_consecutive_failures` of them in a row the next propose() raises
AgentGaveUp before any call. No call starts when the token budget is spent (TokenBudgetSpent).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2

from enpire.agent.api import AgentReply, ResearchState
from enpire.agent.claude_client import CallFailed, CallUsage, ClaudeOptions, MessagesCaller
from enpire.agent.claude_evidence import (
    INVESTIGATION_TOOLS,
    TOOL_NAMES,
    answer,
    image_tokens,
    stills,
    tools_prompt,
    without_image_data,
)
from enpire.agent.claude_prompt import (
    NUDGE,
    SYSTEM_PROMPT,
    TEXT_LIMIT,
    TOOL_NAME,
    bounded,
    clip,
    render_context,
    tool_definition,
)
from enpire.agent.errors import AgentGaveUp, TokenBudgetSpent
from enpire.agent.proposal import proposal_problems, proposal_schema
from enpire.policy.contract import policy_contract, source_description
from enpire.records import IterationSummary
from enpire.spec.model import AgentSpec, ExperimentSpec

log = logging.getLogger(__name__)

FEEDBACK_KEPT = 5
TRANSCRIPT_TEXT_LIMIT = 200_000  # characters of one string in a transcript (a whole context fits)
TRANSCRIPT_ITEMS = 500  # entries of one list or dict in a transcript
ECHO_LIMIT = 300  # characters of an invalid value quoted back in a correction
ECHO_ITEMS = 100  # entries of one object or list of a tool input sent back to the model


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

    def record(self, entry: dict[str, Any]) -> None:
        """One call's transcript entry, bounded and as plain JSON data."""
        self.transcript.append(bounded(entry, TRANSCRIPT_TEXT_LIMIT, TRANSCRIPT_ITEMS, depth=32))

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
        code = spec.policy.kind == "code"
        self._contract = policy_contract(spec) if code else None  # steps one station of the spec, once
        self._tool = tool_definition(self._schema, source_description(spec) if code else None)
        self._caller = MessagesCaller(self.opts, self.name, http_client)
        self.wants_evidence = self.opts.images > 0 or self.opts.tools  # the loop then adds state.evidence
        self.evidence_size = self.opts.image_size
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
        images = stills(state, self.opts.images)
        content: str | list[dict[str, Any]] = [{"type": "text", "text": context}, *images] if images else context
        turns = _Turns(messages=[{"role": "user", "content": content}])
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
            note += f"; reason: {clip(str(result.reason), 500)}"
        self._feedback = [*self._feedback, note][-FEEDBACK_KEPT:]

    # -- one proposal's conversation ------------------------------------------------------
    def _converse(self, turns: _Turns, state: ResearchState, tokens_left: float | None) -> AgentReply:
        nudged, corrections, sent, investigations = False, 0, 0, 0
        last_invalid: dict[str, Any] | None = None
        while True:
            if tokens_left is not None and tokens_left - turns.tokens_in - turns.tokens_out <= 0:
                return turns.reply(last_invalid, None if last_invalid else "token budget spent during the proposal")
            params = self._params(turns.messages, investigate=investigations < self.opts.max_tool_calls)
            entry: dict[str, Any] = {"call": len(turns.transcript),
                                     "request": _request_record(params, sent, first=not turns.transcript)}
            sent = len(turns.messages)
            t0 = time.monotonic()
            try:
                message = self._caller.create(params, self._deadline(state))
            except CallFailed as failed:
                turns.record({**entry, "error": str(failed), "kind": failed.kind,
                              "elapsed_s": round(time.monotonic() - t0, 3)})
                return turns.reply(None, f"{failed.kind}: {failed}")
            self.calls += 1
            content = _blocks(message)
            estimate_in = _chars(params["system"], params["tools"], without_image_data(params["messages"])) // 4 \
                + image_tokens(params["messages"])
            usage = CallUsage.of(message, estimate_in, _chars(content) // 4)
            if usage.problems:
                log.warning("%s: implausible usage in the response (%s); counted %d in, %d out (estimated: %s)",
                            self.name, "; ".join(usage.problems), usage.tokens_in, usage.output_tokens,
                            ", ".join(usage.estimated) or "nothing")
            turns.usages.append(usage)
            stop = getattr(message, "stop_reason", None)
            uses = [b for b in content if b.get("type") == "tool_use"]
            # kept and sent back: tool inputs with strings over their schema's maxLength cut to it (a 10 MB
            # hypothesis is invalid anyway; echoing it whole would fill this and every later request)
            echoed = [self._echo(b) for b in content]
            turns.record({**entry, "response": {"id": getattr(message, "id", None),
                                                "model": getattr(message, "model", None), "content": echoed,
                                                "usage_reported": getattr(message, "usage", None)},
                          "text": "\n\n".join(str(b.get("text", "")) for b in content if b.get("type") == "text"),
                          "tool_input": self._echo(uses[0]).get("input") if uses else None, "stop_reason": stop,
                          "usage": usage.as_dict(), "elapsed_s": round(time.monotonic() - t0, 3)})
            turns.messages.append({"role": "assistant", "content": echoed})
            if not uses:
                if nudged:
                    return turns.reply(None, "no tool call, even after a nudge")
                nudged = True
                turns.messages.append({"role": "user", "content": NUDGE + self._cut_off(stop)})
                continue
            first, extra = uses[0], uses[1:]
            if self.opts.tools and first.get("name") in TOOL_NAMES and investigations < self.opts.max_tool_calls:
                investigations += 1  # answered, not a correction; the bound then forces the proposal
                body, failed = answer(str(first["name"]), first.get("input"), state)
                result = {"type": "tool_result", "tool_use_id": first.get("id", ""), "content": body}
                turns.messages.append({"role": "user", "content": [{**result, "is_error": True} if failed else result]
                                       + [self._tool_error(u, None) for u in extra]})
                continue
            proposal = first.get("input") if isinstance(first.get("input"), dict) else {}
            problems = proposal_problems(proposal, self._schema) if first.get("name") == TOOL_NAME else []
            if first.get("name") == TOOL_NAME and not problems:
                return turns.reply(dict(proposal))  # any extra calls are simply not used
            results = [self._tool_error(first, problems, proposal, stop)] + [self._tool_error(u, None) for u in extra]
            last_invalid = dict(proposal) if first.get("name") == TOOL_NAME else last_invalid
            corrections += 1
            if corrections > self.opts.max_corrections:
                # handed to the loop, whose validation records it as a `rejected` iteration
                return turns.reply(last_invalid, None if last_invalid else "no valid tool call after corrections")
            turns.messages.append({"role": "user", "content": results})

    def _echo(self, block: dict[str, Any]) -> dict[str, Any]:
        if block.get("type") != "tool_use" or not isinstance(block.get("input"), dict):
            return block
        return {**block, "input": _fit(block["input"], self._schema)}

    def _cut_off(self, stop: Any) -> str:
        if stop != "max_tokens":
            return ""
        return (f" Your answer was cut off at max_tokens ({self.opts.max_tokens} tokens): make it shorter "
                "(a shorter hypothesis; for code, a more compact source).")

    def _tool_error(self, use: dict[str, Any], problems: list[Any] | None,
                    proposal: dict[str, Any] | None = None, stop: Any = None) -> dict[str, Any]:
        if use.get("name") in TOOL_NAMES and self.opts.tools:
            text = (f"No more investigation for this proposal (max_tool_calls={self.opts.max_tool_calls}); "
                    f"call {TOOL_NAME} now.")
        elif use.get("name") != TOOL_NAME:
            text = f"Unknown tool {clip(str(use.get('name')), 100)!r}; the only tool is {TOOL_NAME}."
        elif problems is None:
            text = "Only one proposal per turn is used; this extra call was ignored."
        else:
            lines = [f"- {p.path}: got {clip(repr(p.value), ECHO_LIMIT)}, expected {clip(str(p.expected), 500)}"
                     for p in problems[:50]]
            unknown = sorted(set(proposal or {}) - set(self._schema["properties"]))
            lines += [f"- proposal.{clip(k, 100)}: not a field of a proposal. The success criteria, the safety "
                      "envelope and the budgets are fixed for the session; no proposal can change them."
                      for k in unknown[:20]]
            text = "The proposal does not satisfy the tool's input schema; nothing was run. Fix these and call " \
                   f"{TOOL_NAME} again:\n" + "\n".join(lines) + self._cut_off(stop)
        return {"type": "tool_result", "tool_use_id": use.get("id", ""), "is_error": True, "content": text}

    def _params(self, messages: list[dict[str, Any]], investigate: bool = False) -> dict[str, Any]:
        """One call's parameters; `investigate`: the investigation tools may still be called (else, with
        thinking off, the tool choice is forced to the proposal)."""
        o = self.opts
        system: list[dict[str, Any]] = [{"type": "text", "text": SYSTEM_PROMPT}]
        if self._contract:
            system.append({"type": "text", "text": self._contract})
        if o.tools and o.max_tool_calls:
            system.append({"type": "text", "text": tools_prompt(o.max_tool_calls)})
        if o.cache_prompt:  # the cached prefix: tools, then every system block
            system[-1]["cache_control"] = {"type": "ephemeral"}
        tools = [self._tool, *INVESTIGATION_TOOLS] if o.tools and o.max_tool_calls else [self._tool]
        params: dict[str, Any] = {"model": o.model, "max_tokens": o.max_tokens, "system": system,
                                  "tools": tools, "messages": messages}
        if o.thinking == "off":
            free = investigate and len(tools) > 1  # any tool (an investigation or the proposal), else the proposal
            params["tool_choice"] = ({"type": "any", "disable_parallel_tool_use": True} if free
                                     else {"type": "tool", "name": TOOL_NAME, "disable_parallel_tool_use": True})
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


def _blocks(message: Any) -> list[dict[str, Any]]:
    """The response's content blocks as JSON dicts; anything that is not a block is left out."""
    raw = getattr(message, "content", None)
    out = []
    for block in raw if isinstance(raw, list) else []:
        if hasattr(block, "model_dump"):
            out.append(block.model_dump(mode="json", exclude_none=True, warnings=False))
        elif isinstance(block, dict):
            out.append(dict(block))
    return out


def _chars(*parts: Any) -> int:
    return len(json.dumps(parts, default=str))


def _request_record(params: dict[str, Any], sent: int, first: bool) -> dict[str, Any]:
    """What one call sends: everything but the messages already recorded by earlier calls."""
    rec: dict[str, Any] = {"model": params["model"], "max_tokens": params["max_tokens"],
                           "system": [b.get("text") for b in params["system"]], "tool_choice": params["tool_choice"],
                           "tools": params["tools"] if first else [t["name"] for t in params["tools"]],
                           "messages_before": sent, "messages": without_image_data(params["messages"][sent:])}
    for key in ("thinking", "extra_body"):
        if key in params:
            rec[key] = params[key]
    return rec


def _fit(value: Any, schema: dict[str, Any] | None) -> Any:
    """`value` with every string longer than its schema's maxLength (TEXT_LIMIT where none) cut to it,
    keys cut at 200 characters, and at most ECHO_ITEMS entries of any object or list."""
    schema = schema if isinstance(schema, dict) else {}
    if isinstance(value, str):
        return clip(value, int(schema.get("maxLength", TEXT_LIMIT)))
    if isinstance(value, dict):
        props: dict[str, Any] = {}
        for branch in [schema, *schema.get("oneOf", [])]:
            for k, sub in branch.get("properties", {}).items():
                props.setdefault(k, sub)
        return {clip(str(k), 200): _fit(v, props.get(k)) for k, v in list(value.items())[:ECHO_ITEMS]}
    if isinstance(value, list):
        return [_fit(v, schema.get("items")) for v in value[:ECHO_ITEMS]]
    return value
