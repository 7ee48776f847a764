"""policy=code: Python source (agent-written or a user's file) run in a sandboxed process.

`build_code_policy` returns a CodePolicy: a proxy that implements the Policy protocol by
sending observations to a sandboxed child (enpire.policy.sandbox) and checking what comes
back. A fresh child starts for every trial (a reset without feedback), so nothing a policy
does in one trial survives into the next, and the kernel's CPU limit is per trial; pass@k
retries of the same trial reuse the child and its state. Whatever goes wrong inside (an
exception, a missed deadline, a malformed or wrong-shaped action) raises a SandboxError
whose message carries the child's traceback: the station records it as a `crash` with that
text in TrialRecord.error, which is what the agent reads next. Non-finite or huge actions of
the right shape are passed on unchanged: the station's envelope is the one place that judges
commands, and it must see them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from enpire.policy.sandbox import Sandbox, SandboxCrash, SandboxError, SandboxLimits, SandboxTimeout
from enpire.policy.sandbox_paths import session_paths
from enpire.records import Candidate
from enpire.spec.model import ExperimentSpec
from enpire.spec.policy_source import read_policy_source
from enpire.world.api import CARTESIAN_ACTION, AttemptFeedback, Observation

log = logging.getLogger(__name__)


def action_size(spec: ExperimentSpec) -> int:
    """Length of the action vector for the spec's action mode."""
    return len(CARTESIAN_ACTION) if spec.policy.action_mode == "cartesian" else spec.robot.dof + 1  # joints + grip


class CodePolicy:
    """Policy proxy to a sandboxed child. Call close() when the station is done with it."""

    def __init__(self, source: str, limits: SandboxLimits, action_dim: int, name: str = "code") -> None:
        self.source = source
        self.limits = limits
        self.action_dim = action_dim
        self.name = name
        self._sandbox: Sandbox | None = None
        self.last_sandbox: Sandbox | None = None  # kept after it stops: its uid and pid for diagnostics
        self._trial_compute_s = 0.0
        self._fresh = False  # the running child has not served a trial yet
        self.protections: dict[str, Any] = {}

    def _start(self) -> None:
        self._stop()
        self._sandbox = Sandbox(self.source, self.limits, name=self.name)
        self.last_sandbox = self._sandbox
        self.protections = self._sandbox.stats.protections
        self._fresh = True

    def _stop(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def _call(self, msg: dict[str, Any]) -> dict[str, Any]:
        assert self._sandbox is not None
        left = self.limits.trial_timeout_s - self._trial_compute_s
        if left <= 0:
            self._stop()
            raise SandboxTimeout(f"policy used its {self.limits.trial_timeout_s:g} s of compute for this trial")
        before = self._sandbox.stats.compute_s
        try:
            return self._sandbox.request(msg, budget_s=left)
        except SandboxError:
            self._stop()
            raise
        finally:
            if self._sandbox is not None:
                self._trial_compute_s += self._sandbox.stats.compute_s - before
            else:
                self._trial_compute_s = self.limits.trial_timeout_s

    def reset(self, obs: Observation, feedback: AttemptFeedback | None = None) -> None:
        if feedback is None:  # a new trial: a new child
            if self._sandbox is None or not self._fresh or not self._sandbox.alive():
                self._start()
            self._trial_compute_s = 0.0
        elif self._sandbox is None or not self._sandbox.alive():
            raise SandboxCrash("the policy process is gone; it cannot retry this trial")
        self._fresh = False
        self._call({"op": "reset", "obs": _jsonable(obs), "feedback": asdict(feedback) if feedback else None})

    def act(self, obs: Observation) -> np.ndarray:
        if self._sandbox is None:
            raise SandboxCrash("act() before reset(): the policy process is not running")
        raw = self._call({"op": "act", "obs": _jsonable(obs)})["action"]
        return self.check_action(raw)

    def check_action(self, raw: Any) -> np.ndarray:
        """The reply as a float vector of the right length, or a SandboxCrash saying what was wrong."""
        names = ", ".join(CARTESIAN_ACTION) if self.action_dim == len(CARTESIAN_ACTION) else "joint values"
        try:
            action = np.asarray(raw, dtype=np.float64)
        except (TypeError, ValueError):
            action = None
        if action is None or action.shape != (self.action_dim,):
            got = f"shape {action.shape}" if action is not None else f"{str(raw)[:80]!r}"
            self._stop()
            raise SandboxCrash(f"policy act() returned {got}; expected {self.action_dim} numbers [{names}]")
        return action

    def close(self) -> None:
        self._stop()

    def __del__(self) -> None:  # a forgotten close() must not leave a process behind
        try:
            self._stop()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _jsonable(obs: Observation) -> dict[str, list[float]]:
    return {k: np.asarray(v, dtype=np.float64).ravel().tolist() for k, v in obs.items()}


def read_source(path: str | Path) -> str:
    """The text of policy.source, read only when it passes enpire.spec.policy_source's checks (the same
    ones validation applied: a file swapped since then is refused here too). PolicySourceError otherwise."""
    return read_policy_source(path)


def code_candidate(source: str, candidate_id: str | None = None) -> Candidate:
    """A code candidate; its id is the source's hash unless given, so identical code pools its trials."""
    cid = candidate_id or "code-" + hashlib.sha256(source.encode()).hexdigest()[:12]
    return Candidate(candidate_id=cid, kind="code", source=source)


def code_candidate_from_spec(spec: ExperimentSpec) -> Candidate | None:
    """The session's first candidate when policy.source names a user's file; None if the agent writes it."""
    return code_candidate(read_source(spec.policy.source)) if spec.policy.source else None


def sandbox_limits(spec: ExperimentSpec) -> SandboxLimits:
    return SandboxLimits.from_config(spec.policy.sandbox)


def build_code_policy(spec: ExperimentSpec, candidate: Candidate) -> CodePolicy:
    """factory.make_policy for kind=code. The child starts at the first reset().

    The sandbox hides everything the session writes (store, artifacts, control dir, run dir:
    `sandbox_paths.session_paths`) on top of the configured `hide_paths`."""
    source = candidate.source
    if source is None and spec.policy.source:
        source = read_source(spec.policy.source)
    if not source:
        raise ValueError(f"candidate {candidate.candidate_id}: kind=code needs source; got none")
    limits = sandbox_limits(spec)
    limits = replace(limits, hide_paths=(*limits.hide_paths, *session_paths(spec)))
    return CodePolicy(source, limits, action_size(spec), name=candidate.candidate_id)
