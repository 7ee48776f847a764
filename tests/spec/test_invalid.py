"""Invalid specs and overrides: exit code 2, every problem under its key path, nothing run.

Each case is a function of the shipped default spec, so the bad value stays bad when other
engineers tune the configs (a torque cap just above the robot's actuators, a threshold just
outside the quantity's range, ...).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import yaml

from enpire.spec import ExperimentSpec
from enpire.spec.search_path import group_options, option_file
from enpire.spec.semantic import unmet_requirements
from tests.spec.conftest import problem_paths

Overrides = Callable[[ExperimentSpec], list[str]]


@dataclass(frozen=True)
class Case:
    id: str
    overrides: Overrides
    paths: tuple[str, ...]  # key paths the error must name


def _fixed(*overrides: str) -> Overrides:
    return lambda _: list(overrides)


def _first(mapping: object) -> str:
    return next(iter(mapping))  # type: ignore[call-overload]


def _unreachable(s: ExperimentSpec) -> list[str]:
    c = s.done.conditions[0]
    q = s.task.state_space[c.quantity]
    beyond = q.high + 1.0 if c.op == ">=" else q.low - 1.0
    return [f"done.predicate.conditions.0.value={beyond}"]


def _off_rate(s: ExperimentSpec) -> list[str]:
    """A control rate whose period is 2.5 physics steps."""
    return [f"robot.controller.control_hz={1.0 / (2.5 * s.task.physics_dt)}"]


def _outside_reach(s: ExperimentSpec) -> list[str]:
    far = s.robot.base_pos[0] + s.robot.reach_m + 0.5
    hi = list(s.safety.workspace.high)
    return [f"safety.workspace.high=[{far},{hi[1]},{hi[2]}]"]


def _inverted_box(s: ExperimentSpec) -> list[str]:
    lo = list(s.safety.workspace.low)
    lo[2] = s.safety.workspace.high[2] + 0.01
    return [f"safety.workspace.low=[{lo[0]},{lo[1]},{lo[2]}]"]


def _incompatible() -> tuple[str, str] | None:
    """A (task, robot) pair where the robot does not meet the task's `requires`."""
    for robot in group_options("robot"):
        r = yaml.safe_load(option_file("robot", robot).read_text())
        for task in group_options("task"):
            if unmet_requirements(yaml.safe_load(option_file("task", task).read_text()).get("requires", []), r):
                return task, robot
    return None


CASES = [
    # wrong types
    Case("fleet-not-int", _fixed("fleet=abc"), ("fleet",)),
    Case("fleet-fraction", _fixed("fleet=1.5"), ("fleet",)),
    Case("video-enabled-not-bool", _fixed("video.enabled=maybe"), ("video.enabled",)),
    Case("session-name-list", _fixed("session.name=[1]"), ("session.name",)),
    # out of range
    Case("fleet-zero", _fixed("fleet=0"), ("fleet",)),
    Case("agents-zero", _fixed("agents=0"), ("agents",)),
    Case("seed-negative", _fixed("seed=-1"), ("seed",)),
    Case("video-too-small", _fixed("video.width=8"), ("video.width",)),
    Case("success-rate-above-1", _fixed("done.goal.min_success_rate=1.5"), ("done.goal.min_success_rate",)),
    Case("attempts-zero", _fixed("done.episode.attempts=0"), ("done.episode.attempts",)),
    Case("physics-dt-zero", _fixed("task.physics_dt=0"), ("task.physics_dt",)),
    Case("claude-temperature", _fixed("agent=claude", "agent.temperature=2"), ("agent.temperature",)),
    Case("robot-capability-name", _fixed("robot.capabilities=[Gripper]"), ("robot.capabilities[0]",)),
    Case("task-requires-bad", _fixed("task.requires=['dof about 6']"), ("task.requires[0]",)),
    Case("workspace-two-corners", _fixed("safety.workspace.low=[0.1,0.1]"), ("safety.workspace.low",)),
    Case("resume-not-run-id", _fixed("resume=xyz"), ("resume",)),
    Case("tracking-uri-scheme", _fixed("tracking.uri=bogus"), ("tracking.uri",)),
    # zero or negative budgets
    Case("budget-trials-negative", _fixed("budget.trials=-1"), ("budget.trials",)),
    Case("budget-iterations-zero", _fixed("budget.iterations=0"), ("budget.iterations",)),
    Case("budget-robot-seconds-zero", _fixed("budget.robot_seconds=0"), ("budget.robot_seconds",)),
    Case("budget-wall-clock-negative", _fixed("budget.wall_clock_s=-5"), ("budget.wall_clock_s",)),
    Case("budget-tokens-zero", _fixed("budget.tokens=0"), ("budget.tokens",)),
    # NaN and infinities
    Case("torque-nan", _fixed("safety.torque_limit_nm=nan"), ("safety.torque_limit_nm",)),
    Case("workspace-inf", _fixed("safety.workspace.low.0=-inf"), ("safety.workspace.low[0]",)),
    Case("trials-overflow", _fixed("budget.trials=1e400"), ("budget.trials",)),
    # unknown keys at several depths
    Case("unknown-root-key", _fixed("+telemetry=1"), ("telemetry",)),
    Case("unknown-key-depth-2", _fixed("+task.reset.retries=2"), ("task.reset.retries",)),
    Case("unknown-key-depth-3", _fixed("+robot.gripper.finger_count=3"), ("robot.gripper.finger_count",)),
    Case("unknown-key-in-list-item", _fixed("+done.predicate.conditions.0.tolerance=0.1"),
         ("done.predicate.conditions[0].tolerance",)),
    Case("override-of-absent-key", _fixed("budget.gpu_hours=3"), ("budget.gpu_hours",)),
    # missing required keys
    Case("missing-budget-tokens", _fixed("~budget.tokens"), ("budget.tokens",)),
    Case("missing-controller-kind", _fixed("~robot.controller.kind"), ("robot.controller.kind",)),
    Case("missing-done-window", _fixed("~done.goal.window"), ("done.goal.window",)),
    Case("missing-task-name", _fixed("~task.name"), ("task.name",)),
    Case("delete-absent-key", _fixed("~budget.gpu_hours"), ("budget.gpu_hours",)),
    # broken interpolations
    Case("interpolation-missing-key", _fixed("seed=${nope}"), ("seed",)),
    Case("interpolation-missing-nested", _fixed("budget.trials=${budget.nope}"), ("budget.trials",)),
    Case("interpolation-missing-env", _fixed("fleet=${oc.env:ENPIRE_TEST_UNSET_VARIABLE}"), ("fleet",)),
    # unknown group options and bad override syntax
    Case("unknown-task", _fixed("task=nope"), ("task",)),
    Case("unknown-robot", _fixed("robot=nope"), ("robot",)),
    Case("unknown-optional-experiment", _fixed("experiment=nope"), ("experiment",)),
    Case("group-given-number", _fixed("budget=3"), ("budget",)),
    Case("sweep-without-multirun", _fixed("budget=small,large"), ("budget",)),
    Case("syntax-unclosed-list", _fixed("fleet=[1,2"), ("fleet",)),
    Case("syntax-no-equals", _fixed("fleet"), ("fleet",)),
    # checks a schema cannot express
    Case("workspace-outside-reach", _outside_reach, ("safety.workspace",)),
    Case("workspace-inverted", _inverted_box, ("safety.workspace.low[2]",)),
    Case("torque-above-actuators", lambda s: [f"safety.torque_limit_nm={max(s.robot.actuator_force_range_nm) + 1}"],
         ("safety.torque_limit_nm",)),
    Case("done-threshold-unreachable", _unreachable, ("done.predicate.conditions[0].value",)),
    Case("done-unknown-quantity", _fixed("done.predicate.conditions.0.quantity=not_a_quantity"),
         ("done.predicate.conditions[0].quantity",)),
    Case("hold-longer-than-episode", lambda s: [f"done.predicate.hold_s={s.done.time_limit_s}"],
         ("done.predicate.hold_s",)),
    Case("control-rate-not-whole-steps", _off_rate, ("robot.controller.control_hz",)),
    Case("dof-without-actuators", lambda s: [f"robot.dof={s.robot.dof + 1}"], ("robot.actuator_force_range_nm",)),
    Case("init-range-inverted", lambda s: [f"task.init.{_first(s.task.init)}.low="
                                           f"{s.task.init[_first(s.task.init)].high + 1}"],
         ("task.init.{init}.low",)),
    Case("param-default-outside-range", lambda s: [f"policy.params.{s.policy.params[0].name}.default="
                                                   f"{s.policy.params[0].high + 1}"],
         ("policy.params.{param}.default",)),
    Case("inline-executor-with-processes", _fixed("executor=inline", "executor.start_method=spawn"),
         ("executor.start_method",)),
    Case("robot-kind-without-station", _fixed("robot.kind=real"), ("robot.kind",)),
    # overrides Hydra reads differently from what was typed
    Case("fleet-underscore", _fixed("fleet=1_0"), ("fleet",)),
    Case("agents-underscore", _fixed("agents=2_0"), ("agents",)),
    Case("seed-underscore-in-sweep", _fixed("-m", "seed=1_000,2"), ("seed",)),
    # valid specs this machine cannot run: refused before anything is created
    Case("tracking-in-memory", _fixed("tracking.uri=sqlite:///:memory:"), ("tracking.uri",)),
    Case("tracking-server-unreachable", _fixed("tracking.uri=http://127.0.0.1:9"), ("tracking.uri",)),
    Case("control-root-unusable", _fixed("supervision.control_root=/proc/enpire/control"),
         ("supervision.control_root",)),
    Case("artifact-root-under-proc", _fixed("tracking.artifact_root=/proc/enpire/artifacts"),
         ("tracking.artifact_root",)),
    Case("run-dir-under-proc", _fixed("hydra.run.dir=/proc/enpire/run"), ("hydra.run.dir",)),
    Case("resume-from-a-store-that-does-not-exist", _fixed("resume=0123456789abcdef0123456789abcdef"),
         ("resume",)),  # refused before MLflow would create the store to look the run up
    Case("video-camera-not-in-scene", _fixed("video.camera=no_such_camera"), ("video.camera",)),
    # untrusted inputs that would copy secrets into the record (tests/spec/test_untrusted_inputs.py has more)
    Case("policy-source-proc-environ", _fixed("policy=code", "policy.source=/proc/self/environ"), ("policy.source",)),
    Case("policy-source-etc-shadow", _fixed("policy=code", "policy.source=/etc/shadow"), ("policy.source",)),
    Case("policy-source-missing", _fixed("policy=code", "policy.source=no_such_policy.py"), ("policy.source",)),
    Case("session-name-oc-env", _fixed("session.name=${oc.env:HOME}"), ("session.name",)),
    Case("notes-oc-env-default", _fixed("session.notes=${oc.env:ENPIRE_TEST_UNSET_VARIABLE,x}"), ("session.notes",)),
    Case("done-name-not-the-task", _fixed("done.name=reach"), ("done.name",)),
    Case("search-min-std-above-init", lambda s: [f"agent.min_std={s.agent.get('init_std')}",
                                                 f"agent.init_std={s.agent.get('init_std') / 2}"],
         ("agent.min_std",)),
]


def test_at_least_30_distinct_cases() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_invalid_spec_exits_2_naming_the_key(case: Case, drawer: ExperimentSpec, run_cli) -> None:
    overrides = case.overrides(drawer)
    code, err = run_cli(overrides)
    assert code == 2, err
    names = {"init": _first(drawer.task.init), "param": drawer.policy.params[0].name}
    expected = [p.format(**names) for p in case.paths]
    named = problem_paths(err)
    for path in expected:
        assert path in named, f"{overrides}: {path!r} not among {named}\n{err}"
    assert "expected" in err and "got" in err


def test_a_store_that_is_not_a_sqlite_database(run_cli, tmp_path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("my notes, not a database\n")
    code, err = run_cli([f"tracking.uri=sqlite:///{notes}", f"tracking.artifact_root={tmp_path / 'artifacts'}"])
    assert code == 2
    assert problem_paths(err) == ["tracking.uri"] and "not one" in err
    assert notes.read_text() == "my notes, not a database\n"
    assert "Traceback" not in err


def test_incompatible_robot_and_task(run_cli) -> None:
    pair = _incompatible()
    if pair is None:
        pytest.skip("every shipped robot declares every shipped task")
    task, robot = pair
    code, err = run_cli([f"task={task}", f"robot={robot}"])
    assert code == 2
    assert problem_paths(err) == ["robot.name"]
    assert task in err and robot in err


def test_three_mistakes_three_problems(run_cli) -> None:
    """Composition, schema and cross-group mistakes on one line are all reported at once."""
    code, err = run_cli(["task=nope", "budget.trials=-1", "fleet=0"])
    assert code == 2
    assert sorted(problem_paths(err)) == ["budget.trials", "fleet", "task"]
    assert "3 problem(s)" in err


def test_schema_and_semantic_problems_together(drawer: ExperimentSpec, run_cli) -> None:
    torque = max(drawer.robot.actuator_force_range_nm) + 1
    code, err = run_cli(["fleet=0", f"safety.torque_limit_nm={torque}", "+budget.gpu_hours=1", "nokey=3"])
    assert code == 2
    assert sorted(problem_paths(err)) == ["budget.gpu_hours", "fleet", "nokey", "safety.torque_limit_nm"]


def test_several_syntax_errors_each_named(run_cli) -> None:
    code, err = run_cli(["fleet=[1,2", "seed=(", "video.fps=0"])
    assert code == 2
    assert problem_paths(err) == ["fleet", "seed", "video.fps"]


def test_every_job_of_a_sweep_is_checked_before_any_runs(run_cli) -> None:
    code, err = run_cli(["-m", "fleet=1,0", "budget=smoke,nope"])
    assert code == 2
    jobs = re.findall(r"^\s+- \[(fleet=\d budget=\w+)[^\]]*\] (\S+):", err, re.M)
    assert ("fleet=0 budget=smoke", "fleet") in jobs
    assert ("fleet=1 budget=nope", "budget") in jobs
    assert ("fleet=0 budget=nope", "budget") in jobs
    assert not any(job == "fleet=1 budget=smoke" for job, _ in jobs), "a valid job was reported"


def test_print_config_of_uncomposable_overrides_exits_2(run_cli) -> None:
    code, err = run_cli(["--cfg", "job", "task=nope"])
    assert code == 2
    assert problem_paths(err) == ["task"]
