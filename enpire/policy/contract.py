"""The code-policy contract of a session, generated from the code and the spec that enforce it.

`policy_contract(spec)` is the text an agent that writes `policy=code` sources reads: the entry
point and methods the sandbox child looks up, the Policy protocol's signatures, the retry
feedback's fields, the observation keys with the shapes and dtypes a policy receives inside
the sandbox (read from a real station of the spec after a verified reset, and passed through
the same JSON conversion CodePolicy applies), the task's own `observe()` source, the action
layout and size CodePolicy checks, the safety envelope of the spec, the control period, the
episode limits and the sandbox's limits. Nothing in it is copied by hand from those places, so
it cannot drift from them; `contract_facts(spec)` is the same content as data.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import logging
import math
import platform
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from enpire.policy import sandbox
from enpire.policy.code import _jsonable, action_size, sandbox_limits
from enpire.spec.model import ExperimentSpec
from enpire.world.api import CARTESIAN_ACTION, AttemptFeedback, Policy

log = logging.getLogger(__name__)

# What the robot part of every observation means (the station adds these keys; enpire/world/station.py).
ROBOT_KEYS = {
    "ee_pos": "tool centre point (between the fingertips), world frame, m",
    "ee_yaw": "heading of the jaw closing axis about world z, rad, in (-pi/2, pi/2] (the jaws are symmetric)",
    "grip": "distance between the jaws (m; the hand's closure measure on grippers without jaws)",
    "joint_pos": "arm joint angles, base to wrist, rad",
    "joint_vel": "arm joint speeds, rad/s",
}
# What each entry of a cartesian action means (names: enpire.policy.api.CARTESIAN_ACTION).
CARTESIAN_MEANING = {
    "x": "end-effector position target, world frame, m",
    "y": "end-effector position target, world frame, m",
    "z": "end-effector position target, world frame, m (the table top is z = 0)",
    "yaw": "heading of the jaw closing axis about world z, rad; the gripper always points down "
           "(yaw 0: the jaws close along world x)",
    "grip": "grip command in [0, 1] (0 open, 1 closed; clipped)",
}
# The rule for imports. The sandbox enforces no allow-list of its own (only its process-level
# protections); a future `enpire.policy.sandbox.ALLOWED_IMPORTS` replaces this one.
ALLOWED_IMPORTS = getattr(sandbox, "ALLOWED_IMPORTS", ("the Python standard library", "numpy"))
DEFAULT_FACTORIES = ("make_policy", "Policy")
DEFAULT_METHODS = ("reset", "act")
OBSERVE_SOURCE_LIMIT = 4000
TITLE = "Code-policy contract"
_CACHE: dict[str, dict[str, Any]] = {}


def entry_points(child: Path = sandbox.CHILD) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(factory names, required methods), read from the sandbox child's `_load_policy`.

    The child imports nothing from enpire on purpose, so its names are read from its source:
    the string constants of `getattr(module, NAME, None)` and the `for method in (...)` tuple."""
    tree = ast.parse(child.read_text())
    fn = next((n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "_load_policy"), None)
    factories: list[str] = []
    methods: list[str] = []
    for node in ast.walk(fn) if fn is not None else ():
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Name) and node.args[0].id == "module" \
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            factories.append(node.args[1].value)
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple):
            methods += [e.value for e in node.iter.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
    if not factories or not methods:
        log.warning("could not read the entry points from %s; using %s / %s", child, DEFAULT_FACTORIES,
                    DEFAULT_METHODS)
    return tuple(factories) or DEFAULT_FACTORIES, tuple(methods) or DEFAULT_METHODS


def _signature(method: str) -> str:
    sig = inspect.signature(getattr(Policy, method))
    params = [p.replace(annotation=inspect.Parameter.empty) for p in sig.parameters.values() if p.name != "self"]
    return f"{method}{sig.replace(parameters=params, return_annotation=inspect.Signature.empty)}"


def _observation(spec: ExperimentSpec) -> tuple[dict[str, np.ndarray], str, int]:
    """An observation as the sandboxed policy gets it, the task's observe() source, the controller's action size."""
    from enpire.world.station import SimStation

    station = SimStation(spec, 0)
    try:
        if not station.reset(spec.seed):
            log.warning("contract: the example reset of seed %d failed; showing the unsettled scene", spec.seed)
        raw = station.observe()
        task_observe = type(station.scene.task).observe
        try:
            source = textwrap.dedent(inspect.getsource(task_observe))
        except (OSError, TypeError):
            source = ""
        size = station.action_size
    finally:
        station.close()
    # exactly what sandbox_child hands the policy: CodePolicy's JSON lists, as float64 arrays
    obs = {k: np.asarray(v, dtype=np.float64) for k, v in _jsonable(raw).items()}
    return obs, f"# {type(station.scene.task).__qualname__}.observe\n{source}", size


def example_observation(spec: ExperimentSpec) -> dict[str, np.ndarray]:
    """The observation the contract shows (a real station's after a verified reset), as a sandboxed policy gets it."""
    return _observation(spec)[0]


def _action_names(spec: ExperimentSpec, size: int) -> list[str]:
    if spec.policy.action_mode == "cartesian":
        return list(CARTESIAN_ACTION)
    from enpire.world.robots import make_robot

    try:
        joints = list(make_robot(spec.robot).arm_joints)
    except Exception:  # noqa: BLE001 - names only decorate the layout
        joints = [f"joint_{i + 1}" for i in range(spec.robot.dof)]
    unit = "rad" if spec.policy.action_mode == "joint" else "N·m"
    names = [f"{j} ({unit})" for j in joints]
    return [*names, "grip"][:size] if size > len(names) else names[:size]


def contract_facts(spec: ExperimentSpec) -> dict[str, Any]:
    """The contract as data (JSON-able)."""
    factories, methods = entry_points()
    limits = sandbox_limits(spec)
    checked = action_size(spec)
    facts: dict[str, Any] = {
        "factories": list(factories), "methods": list(methods),
        "signatures": {m: _signature(m) for m in methods if hasattr(Policy, m)},
        "feedback_fields": {f.name: str(f.type) for f in dataclasses.fields(AttemptFeedback)},
        "action_mode": spec.policy.action_mode, "action_size": checked,
        "action_names": _action_names(spec, checked),
        "workspace": {"low": list(spec.safety.workspace.low), "high": list(spec.safety.workspace.high)},
        "envelope": {"torque_limit_nm": spec.safety.torque_limit_nm,
                     "joint_position_margin_rad": spec.safety.joint_position_margin_rad,
                     "joint_velocity_limit_rad_s": spec.safety.joint_velocity_limit_rad_s,
                     "contact_force_limit_n": spec.safety.contact_force_limit_n},
        "control_dt": spec.control_dt, "time_limit_s": spec.done.time_limit_s, "attempts": spec.done.attempts,
        "steps_per_attempt": math.ceil(spec.done.time_limit_s / spec.control_dt - 1e-9),  # as world.rollout
        "limits": dataclasses.asdict(limits), "imports": list(ALLOWED_IMPORTS),
        "numpy": np.__version__, "python": platform.python_version(),
        "quantities": {n: {"low": q.low, "high": q.high, "unit": q.unit, "description": q.description}
                       for n, q in spec.task.state_space.items()},
        "init": {n: [r.low, r.high] for n, r in spec.task.init.items()},
        "success": [f"{c.quantity} {c.op} {c.value}" for c in spec.done.conditions],
        "hold_s": spec.done.hold_s, "allow_safety_stop": spec.done.allow_safety_stop,
    }
    try:
        obs, source, ctl_size = _observation(spec)
        facts["observation"] = {k: {"shape": list(v.shape), "dtype": str(v.dtype),
                                    "example": [round(float(x), 4) for x in v]} for k, v in obs.items()}
        facts["observe_source"] = source[:OBSERVE_SOURCE_LIMIT]
        facts["controller_action_size"] = ctl_size
    except Exception as error:  # the contract must not stop an agent; say what is missing instead
        log.exception("contract: could not build a station of the spec to read its observation")
        facts["observation_error"] = f"{type(error).__name__}: {error}"
    return facts


def _fmt(x: float) -> str:
    return f"{x:g}"


def render_contract(f: dict[str, Any]) -> str:
    factories, methods = f["factories"], f["methods"]
    fb = ", ".join(f"`.{n}` ({t})" for n, t in f["feedback_fields"].items())
    k = f["attempts"]
    retry = "none in this session: 1 attempt per trial" if k < 2 else "attempt 2" if k == 2 else f"attempts 2..{k}"
    lines = [
        f"## {TITLE} (generated from this session's sandbox, station and spec)",
        "",
        "A code candidate is the complete source of one Python module. It runs in a sandboxed process of its own, "
        "started fresh for every trial and reused for that trial's retries.",
        "",
        "Entry point: the module must define " + " or ".join(
            f"`{n}()`" if i == 0 else f"a class `{n}`" for i, n in enumerate(factories))
        + " (looked up in that order, called with no arguments); the object it returns must have "
        + " and ".join(f"`{m}()`" for m in methods) + ":",
    ]
    lines += [f"- `{sig}`" for sig in f["signatures"].values()]
    lines += [
        f"`reset` starts each attempt; `feedback` is None at the start of a trial and, on a retry ({retry}; the "
        f"world is NOT reset), an object with {fb}. `act` is called once per control step and returns the action.",
        "",
        "### Observation `obs` (the same keys on every step)",
        "A dict of 1-D numpy float64 arrays (flattened). Key: shape, meaning; example from a verified reset of "
        "this session's scene:",
    ]
    if "observation" in f:
        for key, o in f["observation"].items():
            meaning = ROBOT_KEYS.get(key, "task part, see the observe() source below")
            lines.append(f"- `{key}`: shape ({', '.join(map(str, o['shape']))},) {o['dtype']}; {meaning}; "
                         f"e.g. {o['example']}")
        lines += ["The task part of the observation, as the station computes it:", "```python",
                  f["observe_source"].rstrip(), "```"]
    else:
        lines.append(f"(unavailable: {f['observation_error']})")
    names = f["action_names"]
    lines += ["", "### Action: what `act(obs)` returns",
              f"A sequence of exactly {f['action_size']} finite numbers (list, tuple or numpy array; action mode "
              f"`{f['action_mode']}`): `[{', '.join(names)}]`. Anything else (wrong length, non-numeric) crashes "
              "the trial."]
    if f["action_mode"] == "cartesian":
        lines += [f"- `{n}`: {CARTESIAN_MEANING.get(n, '')}" for n in names]
        lines.append("A compliant Cartesian impedance controller with gravity compensation tracks the target; "
                     "move the target in small steps per control step (a set-point), not in jumps.")
    if f.get("controller_action_size") not in (None, f["action_size"]):
        lines.append(f"(warning: the sandbox checks {f['action_size']} numbers but the station's controller reads "
                     f"{f['controller_action_size']} in this action mode)")
    lo, hi = f["workspace"]["low"], f["workspace"]["high"]
    e = f["envelope"]
    lines += [
        "", "### Safety envelope (checked every control step; a breach stops the robot and ends the trial as `unsafe`)",
        f"- end-effector workspace box, world frame, m: x in [{_fmt(lo[0])}, {_fmt(hi[0])}], "
        f"y in [{_fmt(lo[1])}, {_fmt(hi[1])}], z in [{_fmt(lo[2])}, {_fmt(hi[2])}] "
        f"(low {lo}, high {hi}); the end-effector leaving it is a stop, so keep targets inside it with a margin "
        "(a target outside drags the arm out: a stop, not a stronger pull)",
        f"- joint speed at most {_fmt(e['joint_velocity_limit_rad_s'])} rad/s; joints at least "
        f"{_fmt(e['joint_position_margin_rad'])} rad from their hard ranges",
        f"- contact force at most {_fmt(e['contact_force_limit_n'])} N; torques are clamped to "
        f"{_fmt(e['torque_limit_nm'])} N·m; NaN/Inf in an action is a stop",
        "", "### Timing and limits",
        f"- control period {_fmt(f['control_dt'])} s; an attempt lasts at most {_fmt(f['time_limit_s'])} s "
        f"({f['steps_per_attempt']} act() calls); up to {f['attempts']} attempts per trial (pass@{f['attempts']})",
        f"- each reset()/act() call must return within {_fmt(f['limits']['step_timeout_s'])} s; "
        f"{_fmt(f['limits']['trial_timeout_s'])} s of compute per trial (background threads and child processes "
        f"included); {_fmt(f['limits']['start_timeout_s'])} s to import the module and build the policy; "
        f"{f['limits']['memory_mb']} MB of memory in total over all its processes; "
        f"{f['limits']['disk_mb'] or 2 * f['limits']['file_size_mb']} MB and {f['limits']['max_files']} files "
        f"written in total; replies at most {f['limits']['max_message_kb']} KB. A missed deadline or a spent "
        "total kills the process: the trial is a `crash`.",
        f"- imports: {' and '.join(f['imports'])} only (Python {f['python']}, numpy {f['numpy']}); no network, a "
        "read-only file system except a private working directory, no other process survives the trial.",
        "- an exception, a syntax error or a missed deadline ends the trial as `crash`; its traceback is shown to "
        "you with the iteration's failures.",
        "", "### Task quantities (retry `feedback.quantities`, judged by the verifier)",
    ]
    lines += [f"- `{n}`: [{_fmt(q['low'])}, {_fmt(q['high'])}] {q['unit']}; {q['description']}".rstrip("; ")
              for n, q in f["quantities"].items()]
    lines.append(f"Success of an attempt: {' and '.join(f['success'])}, held {_fmt(f['hold_s'])} s"
                 + ("" if f["allow_safety_stop"] else ", with no safety stop") + ".")
    lines.append("Randomised at every reset (uniform): " + ", ".join(
        f"{n} in [{_fmt(lo_)}, {_fmt(hi_)}]" for n, (lo_, hi_) in f["init"].items()) + ".")
    return "\n".join(lines)


def session_facts(spec: ExperimentSpec) -> dict[str, Any]:
    """contract_facts(spec), computed once per spec fingerprint (it builds and resets a station)."""
    key = spec.fingerprints.spec_sha256
    if key not in _CACHE:
        _CACHE[key] = contract_facts(spec)
    return _CACHE[key]


def policy_contract(spec: ExperimentSpec) -> str:
    """The contract text of `spec`'s code policies."""
    return render_contract(session_facts(spec))


def source_description(spec: ExperimentSpec, title: str = TITLE) -> str:
    """A one-paragraph summary of the contract, for the description of a proposal's `source` field."""
    f = session_facts(spec)
    lo, hi = f["workspace"]["low"], f["workspace"]["high"]
    factory = f"{f['factories'][0]}()" + "".join(f" (or a class {n})" for n in f["factories"][1:])
    keys = ", ".join(f.get("observation", {})) or "see the contract"
    return (f"The complete Python source of the policy module, written to the '{title}' in the system prompt. "
            f"Define {factory} returning an object with {' and '.join(f['signatures'].values())}; act returns "
            f"[{', '.join(f['action_names'])}] every {_fmt(f['control_dt'])} s. Observation keys: {keys}. Keep the "
            f"end-effector inside the workspace box low {lo}, high {hi} (m). Imports: {' and '.join(f['imports'])} "
            "only.")
