"""Every task with every robot that declares it composes through Hydra into a sound frozen spec."""

from __future__ import annotations

import json
import math
import pickle
import types
import typing
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from enpire import CONFIG_DIR
from enpire.spec import ExperimentSpec, load_spec
from enpire.spec.frozen import FrozenDict
from enpire.spec.search_path import group_options, option_file
from enpire.spec.semantic import unmet_requirements


def _pairs() -> list[tuple[str, str]]:
    """(task, robot) of every robot that meets a task's `requires`, all options of the search path."""
    def doc(group: str, option: str) -> dict:
        return yaml.safe_load(option_file(group, option).read_text())

    return [(t, r) for t in group_options("task") for r in group_options("robot")
            if not unmet_requirements(doc("task", t).get("requires", []), doc("robot", r))]


PAIRS = _pairs()


def _check_types(value: Any, hint: Any, path: str) -> None:
    """Every field of the frozen spec holds the type its dataclass declares (int counts as float)."""
    origin = typing.get_origin(hint)
    if hint is Any:
        return
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None:
            assert type(None) in options, f"{path} is None"
            return
        hint = next(h for h in options if h is not type(None))
        origin = typing.get_origin(hint)
    if is_dataclass(hint):
        assert isinstance(value, hint), f"{path}: {type(value).__name__} is not {hint.__name__}"
        hints = typing.get_type_hints(hint)
        for f in fields(hint):
            _check_types(getattr(value, f.name), hints[f.name], f"{path}.{f.name}")
    elif origin is tuple:
        assert isinstance(value, tuple), f"{path}: {type(value).__name__} is not a tuple"
        args = typing.get_args(hint)
        item_hints = [args[0]] * len(value) if len(args) == 2 and args[1] is Ellipsis else list(args)
        assert len(item_hints) == len(value), f"{path}: {len(value)} items"
        for i, (item, h) in enumerate(zip(value, item_hints)):
            _check_types(item, h, f"{path}[{i}]")
    elif hint is float:
        assert isinstance(value, float) and math.isfinite(value), f"{path}: {value!r} is not a finite float"
    elif hint is int:
        assert isinstance(value, int) and not isinstance(value, bool), f"{path}: {value!r} is not an int"
    elif hint in (str, bool):
        assert isinstance(value, hint), f"{path}: {value!r} is not {hint.__name__}"
    elif hint is FrozenDict:
        assert isinstance(value, FrozenDict), f"{path}: {type(value).__name__} is not a FrozenDict"


@pytest.mark.parametrize(("task", "robot"), PAIRS, ids=[f"{t}-{r}" for t, r in PAIRS])
def test_task_with_compatible_robot(task: str, robot: str) -> None:
    spec = load_spec([f"task={task}", f"robot={robot}"])
    assert (spec.task.name, spec.robot.name, spec.done.name) == (task, robot, task)
    _check_types(spec, ExperimentSpec, "spec")
    for name, quantity in spec.task.state_space.items():
        assert quantity.name == name and quantity.low < quantity.high
    assert {c.quantity for c in spec.done.conditions} <= set(spec.task.state_space)
    assert spec.physics_steps_per_control >= 1
    assert math.isclose(spec.control_dt, 1.0 / spec.robot.controller.control_hz, rel_tol=1e-9)

    # frozen all the way down
    with pytest.raises(TypeError):
        spec.resolved["fleet"] = 9  # type: ignore[index]
    with pytest.raises(TypeError):
        spec.task.init.pop(next(iter(spec.task.init)))  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        spec.agent.options["kind"] = "x"  # type: ignore[index]
    with pytest.raises(AttributeError):
        spec.budget.trials = 1  # type: ignore[misc]
    assert isinstance(spec.resolved["safety"]["workspace"]["low"], tuple)

    # picklable (specs travel to station worker processes) and plain data for MLflow
    clone = pickle.loads(pickle.dumps(spec))
    assert clone == spec and isinstance(clone.resolved, FrozenDict)
    doc = spec.as_dict()
    assert json.loads(json.dumps(doc, allow_nan=False)) == doc
    assert doc["task"]["name"] == task and "hydra" not in doc

    # fingerprints: stable across two loads
    again = load_spec([f"task={task}", f"robot={robot}"])
    assert again.fingerprints == spec.fingerprints
    assert all(len(h) == 64 for h in vars(spec.fingerprints).values())


def test_fingerprints_move_with_what_they_cover(drawer: ExperimentSpec) -> None:
    base = drawer.fingerprints
    cond = drawer.done.conditions[0]
    q = drawer.task.state_space[cond.quantity]
    nudged = cond.value + (q.high - cond.value) / 2 if cond.op == ">=" else cond.value - (cond.value - q.low) / 2
    done = load_spec(["task=drawer", f"done.predicate.conditions.0.value={nudged}"]).fingerprints
    assert done.done_sha256 != base.done_sha256
    assert done.safety_sha256 == base.safety_sha256
    assert done.spec_sha256 != base.spec_sha256

    safety = load_spec(["task=drawer", f"safety.contact_force_limit_n={drawer.safety.contact_force_limit_n / 2}"])
    assert safety.fingerprints.safety_sha256 != base.safety_sha256
    assert safety.fingerprints.done_sha256 == base.done_sha256

    # what neither covers moves only the whole-spec fingerprint
    fleet = load_spec(["task=drawer", f"fleet={drawer.fleet + 1}"]).fingerprints
    assert (fleet.done_sha256, fleet.safety_sha256) == (base.done_sha256, base.safety_sha256)
    assert fleet.spec_sha256 != base.spec_sha256


def test_every_task_has_a_compatible_robot() -> None:
    assert set(group_options("task")) == {t for t, _ in PAIRS}
    assert ("peg_insert", "jaco") not in PAIRS and ("peg_insert", "enarm") in PAIRS  # jaco lacks enarm_wrist


def test_agents_null_means_one_per_station() -> None:
    spec = load_spec(["fleet=3"])
    assert spec.agents == 3 and spec.resolved["agents"] is None


def test_numbers_take_their_declared_types() -> None:
    """JSON Schema calls 12.0 an integer; the frozen spec still hands out ints."""
    spec = load_spec(["budget.trials=12.0", "seed=3.0"])
    assert spec.budget.trials == 12 and type(spec.budget.trials) is int
    assert type(spec.seed) is int


def test_load_spec_from_a_copied_config_dir(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(CONFIG_DIR, tmp_path / "conf")  # the task options still come from the task folders
    spec = load_spec(["task=reach"], config_dir=tmp_path / "conf")
    assert spec.task.name == "reach"
    assert spec.fingerprints == load_spec(["task=reach"]).fingerprints
