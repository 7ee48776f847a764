"""Runs one escape attempt through the real code-policy proxy and sandbox, and keeps the tally.

An attempt is a snippet placed in a policy's act(); if the attack worked it returns ESCAPED
(or leaks data into its error text, which the test checks). Every attempt is a real
subprocess under the limits below, with short deadlines so the suite stays fast.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from enpire.policy.code import CodePolicy
from enpire.policy.sandbox import SandboxError, SandboxLimits, SandboxTimeout, pids_of_uid

ESCAPED = [7.0, 7.0, 7.0, 7.0, 7.0]
REPO = Path(__file__).resolve().parents[2]
FAST = SandboxLimits(start_timeout_s=10.0, step_timeout_s=0.5, trial_timeout_s=3.0, cpu_s=5, memory_mb=384,
                     file_size_mb=4, max_processes=16, open_files=64, max_message_kb=64)
OBS = {"ee_pos": np.array([0.4, 0.0, 0.3]), "gripper": np.array([0.0])}

# name -> stopped? (filled by the tests, printed by conftest's terminal summary)
TALLY: dict[str, bool] = {}


@dataclass
class Result:
    actions: list[np.ndarray] = field(default_factory=list)
    error: str = ""
    timed_out: bool = False
    uid: int | None = None
    protections: dict = field(default_factory=dict)

    @property
    def escaped(self) -> bool:
        return any(np.array_equal(a, ESCAPED) for a in self.actions)

    @property
    def leftover_pids(self) -> list[int]:
        return pids_of_uid(self.uid) if self.uid is not None else []


def policy_source(body: str, preamble: str = "") -> str:
    return (
        "import os, sys, socket, ctypes, signal, time\n"
        f"ESCAPED = {ESCAPED!r}\n{textwrap.dedent(preamble)}\n"
        "class Policy:\n"
        "    def reset(self, obs, feedback=None):\n"
        "        pass\n\n"
        "    def act(self, obs):\n"
        f"{textwrap.indent(textwrap.dedent(body), ' ' * 8)}\n"
        "        return [0.4, 0.0, 0.3, 0.0, 0.0]\n"
    )


def run_attempt(body: str, preamble: str = "", limits: SandboxLimits = FAST, steps: int = 2) -> Result:
    """Reset once, act `steps` times, close; whatever the sandbox raised is kept as text."""
    policy = CodePolicy(policy_source(body, preamble), limits, action_dim=5, name="escape")
    out = Result()
    try:
        policy.reset(OBS)
        for _ in range(steps):
            out.actions.append(policy.act(OBS))
    except SandboxError as e:
        out.error = str(e)
        out.timed_out = isinstance(e, SandboxTimeout)
    finally:
        if policy.last_sandbox is not None:
            out.uid = policy.last_sandbox.uid
            out.protections = policy.last_sandbox.stats.protections
        policy.close()
    return out


def record(name: str, stopped: bool) -> None:
    TALLY[name] = stopped
