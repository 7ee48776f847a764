"""Checks a schema cannot express: relations between groups and with the physical world.

Each check reads an already schema-valid document and reports Problems with key paths.
"""

from __future__ import annotations

import itertools
import math
import operator
import re
from typing import Any

from enpire.spec.errors import Problem, SpecError
from enpire.spec.policy_source import policy_source_problem

_COMPARE = re.compile(r"^(dof|reach_m) *(>=|<=|==|>|<) *([0-9]+(?:\.[0-9]+)?)$")
_OPS = {">=": operator.ge, "<=": operator.le, "==": operator.eq, ">": operator.gt, "<": operator.lt}


def unmet_requirements(requires: list[str], robot: dict[str, Any]) -> list[str]:
    """The entries of a task's `requires` that a robot document does not meet (capabilities by name,
    `dof`/`reach_m` comparisons by value)."""
    caps = set(robot.get("capabilities") or [])
    out = []
    for need in requires:
        m = _COMPARE.match(need)
        ok = _OPS[m.group(2)](float(robot[m.group(1)]), float(m.group(3))) if m else need in caps
        if not ok:
            out.append(need)
    return out


# Robot kinds with a station implementation: kind -> the class that drives such a robot. A robot
# config may only name one of these; a kind without a station would silently run something else
# (robot.kind=real used to run the simulator). Real hardware adds its kind here with its station.
STATION_KINDS: dict[str, str] = {"mujoco": "enpire.world.station.SimStation"}


def _robot_task(doc: dict[str, Any]) -> list[Problem]:
    task, robot = doc["task"], doc["robot"]
    missing = unmet_requirements(task.get("requires") or [], robot)
    if missing:
        has = ", ".join([*(robot.get("capabilities") or []), f"dof={robot['dof']}", f"reach_m={robot['reach_m']}"])
        return [Problem("robot.name", robot["name"],
                        f"a robot that meets the requires of task '{task['name']}' (missing: {', '.join(missing)}; "
                        f"robot '{robot['name']}' has: {has})")]
    return []


def _robot_kind(doc: dict[str, Any]) -> list[Problem]:
    kind = doc["robot"]["kind"]
    if kind not in STATION_KINDS:
        return [Problem("robot.kind", kind, f"a robot kind with a station implementation (kinds that exist: "
                                            f"{', '.join(sorted(STATION_KINDS))}; {kind!r} has none)")]
    return []


def _workspace(doc: dict[str, Any]) -> list[Problem]:
    box, robot = doc["safety"]["workspace"], doc["robot"]
    out = []
    for axis, (lo, hi) in enumerate(zip(box["low"], box["high"])):
        if lo >= hi:
            out.append(Problem(f"safety.workspace.low[{axis}]", lo, f"< safety.workspace.high[{axis}] = {hi}"))
    if out:
        return out
    base = robot["base_pos"]
    far = max(math.dist(corner, base) for corner in itertools.product(*zip(box["low"], box["high"])))
    if far > robot["reach_m"]:
        out.append(Problem("safety.workspace", box,
                           f"a box within the reach of robot '{robot['name']}' ({robot['reach_m']} m from its base; "
                           f"the farthest corner is {far:.3f} m away)"))
    return out


def _torque(doc: dict[str, Any]) -> list[Problem]:
    limit, robot = doc["safety"]["torque_limit_nm"], doc["robot"]
    biggest = max(robot["actuator_force_range_nm"])
    out = []
    if limit > biggest:
        out.append(Problem("safety.torque_limit_nm", limit,
                           f"<= {biggest} N·m, the largest actuator force range of robot '{robot['name']}'"))
    if len(robot["actuator_force_range_nm"]) != robot["dof"]:
        out.append(Problem("robot.actuator_force_range_nm", robot["actuator_force_range_nm"],
                           f"one range per arm joint ({robot['dof']} for dof={robot['dof']})"))
    return out


def _control_rate(doc: dict[str, Any]) -> list[Problem]:
    hz, dt = doc["robot"]["controller"]["control_hz"], doc["task"]["physics_dt"]
    ratio = 1.0 / (hz * dt) if hz * dt > 0 else math.inf
    if not math.isfinite(ratio) or ratio < 1 or abs(ratio - round(ratio)) > 1e-6:
        return [Problem("robot.controller.control_hz", hz,
                        f"a rate whose period is a whole number of physics steps (task.physics_dt = {dt} s)")]
    return []


def _ranges(doc: dict[str, Any]) -> list[Problem]:
    out = []
    for name, r in doc["task"]["init"].items():
        if r["low"] > r["high"]:
            out.append(Problem(f"task.init.{name}.low", r["low"], f"<= task.init.{name}.high = {r['high']}"))
    for name, q in doc["task"]["state_space"].items():
        if q["low"] >= q["high"]:
            out.append(Problem(f"task.state_space.{name}.low", q["low"],
                               f"< task.state_space.{name}.high = {q['high']}"))
    for name, p in doc["policy"]["params"].items():
        key = f"policy.params.{name}"
        if p["low"] >= p["high"]:
            out.append(Problem(f"{key}.low", p["low"], f"< {key}.high = {p['high']}"))
        elif not p["low"] <= p["default"] <= p["high"]:
            out.append(Problem(f"{key}.default", p["default"], f"within [{p['low']}, {p['high']}]"))
        if p.get("scale") == "log" and p["low"] <= 0:
            out.append(Problem(f"{key}.low", p["low"], "> 0 for a log-scale parameter"))
    return out


def _done_task(doc: dict[str, Any]) -> list[Problem]:
    """done.name names the task it judges: the done fingerprint covers that task's code and MJCF."""
    name, task = doc["done"]["name"], doc["task"]["name"]
    if name != task:
        return [Problem("done.name", name, f"the name of the task these criteria judge (task.name = {task!r}): "
                                           "done_sha256 fingerprints that task's code and MJCF")]
    return []


def _done_reachable(doc: dict[str, Any]) -> list[Problem]:
    space, out = doc["task"]["state_space"], []
    for i, cond in enumerate(doc["done"]["predicate"]["conditions"]):
        key = f"done.predicate.conditions[{i}]"
        q = space.get(cond["quantity"])
        if q is None:
            out.append(Problem(f"{key}.quantity", cond["quantity"],
                               f"a state quantity of task '{doc['task']['name']}' ({', '.join(sorted(space))})"))
            continue
        v, lo, hi = cond["value"], q["low"], q["high"]
        if (cond["op"] == ">=" and not lo < v <= hi) or (cond["op"] == "<=" and not lo <= v < hi):
            out.append(Problem(f"{key}.value", v, f"a threshold reachable and not trivially met within "
                               f"{cond['quantity']}'s range [{lo}, {hi}] {q['unit']}"))
    for i, phase in enumerate(doc["done"].get("phases") or ()):
        if "quantity" in phase and phase["quantity"] not in space:
            out.append(Problem(f"done.phases[{i}].quantity", phase["quantity"],
                               f"a state quantity of task '{doc['task']['name']}' ({', '.join(sorted(space))})"))
    hold, limit = doc["done"]["predicate"]["hold_s"], doc["done"]["episode"]["time_limit_s"]
    if hold >= limit:
        out.append(Problem("done.predicate.hold_s", hold, f"< done.episode.time_limit_s = {limit}"))
    return out


def _policy(doc: dict[str, Any]) -> list[Problem]:
    pol, task, out = doc["policy"], doc["task"]["name"], []
    if pol["kind"] == "scripted" and pol["name"] != task:
        out.append(Problem("policy.name", pol["name"], f"the scripted policy of task '{task}'"))
    if pol["kind"] == "scripted" and not pol["params"]:
        out.append(Problem("policy.params", {}, "at least one tunable parameter for a scripted policy"))
    src = pol.get("source")
    if pol["kind"] == "code" and src is not None:
        wrong = policy_source_problem(src)  # cwd or an allowed dir, regular, bounded, UTF-8, Python, no secret
        if wrong is not None:
            out.append(Problem("policy.source", src, wrong))
    if pol["kind"] != "code" and src is not None:
        out.append(Problem("policy.source", src, "null unless policy.kind is 'code'"))
    return out


def _executor(doc: dict[str, Any]) -> list[Problem]:
    e = doc["executor"]
    out = []
    if e["kind"] == "remote":  # station servers; a fleet larger than the list runs the rest as local processes
        stations = list(e.get("stations") or [])
        if len(stations) > doc["fleet"]:
            out.append(Problem("executor.stations", stations, f"at most fleet = {doc['fleet']} station addresses "
                                                              f"(got {len(stations)})"))
        twice = sorted({a for a in stations if stations.count(a) > 1})
        if twice:
            out.append(Problem("executor.stations", stations, f"each station once ({', '.join(twice)} more than once)"))
        local_part = len(stations) < doc["fleet"]
        if local_part and e["start_method"] == "none":
            out.append(Problem("executor.start_method", "none", f"a process start method for the "
                                                               f"{doc['fleet'] - len(stations)} local stations"))
        return out
    own = e["kind"] not in ("inline", "ray")  # only `local` starts station processes itself
    if own == (e["start_method"] == "none"):
        want = "a process start method" if own else f"'none' for the {e['kind']} executor"
        return [Problem("executor.start_method", e["start_method"], want)]
    return []


def _verifier(doc: dict[str, Any]) -> list[Problem]:
    from enpire import plugins

    kind = doc["done"].get("verifier", "predicate")
    known = plugins.names("verifiers")
    if kind not in known:
        return [Problem("done.verifier", kind, f"a registered verifier ({', '.join(known)})")]
    return _classifier(doc["done"]) if kind == "classifier" else []


def _classifier(done: dict[str, Any]) -> list[Problem]:
    """done.verifier=classifier: its weights file exists, is a detector of this architecture and of this task
    (loading it imports torch: only for this verifier)."""
    from enpire.detector.verifier import load_for
    from enpire.spec.model import classifier_spec

    try:
        load_for(str(done["name"]), classifier_spec(done.get("classifier") or {}))
    except SpecError as error:
        return list(error.problems)
    return []


def _agent(doc: dict[str, Any]) -> list[Problem]:
    a = doc["agent"]
    if a["kind"] == "search" and a["min_std"] > a["init_std"]:
        return [Problem("agent.min_std", a["min_std"], f"<= agent.init_std = {a['init_std']}")]
    if a["kind"] == "claude" and a["thinking"] == "enabled" and a["thinking_budget_tokens"] >= a["max_tokens"]:
        return [Problem("agent.thinking_budget_tokens", a["thinking_budget_tokens"],
                        f"< agent.max_tokens = {a['max_tokens']} (the answer must fit after the thinking)")]
    return []


# Each check with the top-level groups it reads: it runs only when those passed the schemas,
# so one command line's schema and cross-group problems are reported together without a
# check ever reading a value of the wrong type.
CHECKS = (
    (_robot_task, ("task", "robot")),
    (_robot_kind, ("robot",)),
    (_workspace, ("safety", "robot")),
    (_torque, ("safety", "robot")),
    (_control_rate, ("robot", "task")),
    (_ranges, ("task", "policy")),
    (_done_task, ("task", "done")),
    (_done_reachable, ("task", "done")),
    (_policy, ("policy", "task")),
    (_executor, ("executor",)),
    (_agent, ("agent",)),
    (_verifier, ("done",)),
)


def semantic_problems(doc: dict[str, Any], skip_groups: set[str] | frozenset[str] = frozenset()) -> list[Problem]:
    """All cross-group problems of a composed document whose groups outside `skip_groups` are schema-valid.

    `skip_groups` names groups that failed the schemas (or "" for the root); checks reading them are skipped.
    """
    if "" in skip_groups or not isinstance(doc, dict):
        return []
    return [p for check, groups in CHECKS if not skip_groups & set(groups) and all(g in doc for g in groups)
            for p in check(doc)]
