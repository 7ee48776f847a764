"""The judge is frozen, all of it: every file that decides success or safety is fingerprinted.

A changed task quantity (a TaskPhysics method returning a constant) once made a hold-still
policy succeed 7/7 with no exit 3. These tests change the keep rule and a task's quantity
under real running sessions (exit 3), and check which files the fingerprints cover: the
per-task files are found from the task registry, so a task from a plugin module counts too.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest
from mlflow.tracking import MlflowClient

from enpire import PROJECT_ROOT, plugins
from enpire.spec import fingerprint, load_spec
from enpire.world.task_factory import register_task, task_class
from tests.fleet.support import ScriptedAgent, migrated_store, params_proposal, run, spec_of, store

__all__ = ["migrated_store", "store"]

QUANTITY = "        return min(max(float(self._qpos[self._slide]), 0.0), 0.3)\n"
CONSTANT = "        return 0.3  # the drawer is always open\n"


def copy_in_sources(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kind: str, rel: str) -> Path:
    """A copy of the project file `rel` that the `kind` fingerprint covers instead of the original."""
    copy = tmp_path / Path(rel).name
    shutil.copy(PROJECT_ROOT / rel, copy)
    name = f"{kind.upper()}_SOURCES"
    sources = getattr(fingerprint, name)
    assert rel in sources, f"{rel} is not in fingerprint.{name}"
    monkeypatch.setattr(fingerprint, name, tuple(str(copy) if s == rel else s for s in sources))
    return copy


def plugin_drawer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Register a copy of the drawer task (module + MJCF) from outside the package, as a plugin would.

    Returns the copied module; the registry is restored when the test ends.
    """
    folder = tmp_path / "plugin_tasks"
    folder.mkdir()
    module_file = folder / "drawer_plugin.py"
    shutil.copy(PROJECT_ROOT / "enpire/tasks/drawer/task.py", module_file)
    shutil.copy(PROJECT_ROOT / "enpire/tasks/drawer/drawer.xml", folder / "drawer.xml")
    assert QUANTITY in module_file.read_text(), "the drawer_opening query changed: update QUANTITY"
    monkeypatch.setattr(plugins, "_registered", {})  # restored afterwards
    name = f"enpire_test_plugin_{tmp_path.name}"
    spec = importlib.util.spec_from_file_location(name, module_file)
    assert spec is not None and spec.loader is not None
    module: ModuleType = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)
    spec.loader.exec_module(module)
    register_task(module.Drawer)  # as a notebook or test registers a task class in-process
    assert task_class("drawer").__module__ == name
    return module_file


# -- what is covered --------------------------------------------------------------------------
def test_the_fingerprints_cover_the_judge_the_task_and_the_robot() -> None:
    files = fingerprint.judged_files(load_spec(["task=drawer"]).as_dict())
    for rel in (
        "enpire/world/verifier.py",
        "enpire/judge/keep.py",
        "enpire/judge/pools.py",
        "enpire/judge/decision.py",
        "enpire/world/task.py",
        "enpire/world/quantities.py",
        "enpire/plugins.py",
        "enpire/tasks/drawer/task.py",
        "enpire/tasks/drawer/drawer.xml",
        "enpire/world/rollout.py",
        "enpire/world/station.py",
        "enpire/world/reset.py",
    ):
        assert rel in files["done"], rel
    for rel in (
        "enpire/world/envelope.py",
        "enpire/world/controller.py",
        "enpire/world/rollout.py",
        "enpire/world/station.py",
        "enpire/world/robots/enarm.py",
        "enpire/world/robots/base.py",
        "enpire/world/assets/enarm.xml",
        "enpire/world/estop.py",
    ):
        assert rel in files["safety"], rel
    assert not any("reach" in f for f in files["done"]), "another task's files are not this session's judge"


def test_another_task_and_robot_bring_their_own_files_meshes_included() -> None:
    files = fingerprint.judged_files(load_spec(["task=reach", "robot=jaco"]).as_dict())
    assert {"enpire/tasks/reach/task.py", "enpire/tasks/reach/reach.xml"} <= set(files["done"])
    assert "enpire/tasks/drawer/task.py" not in files["done"]
    safety = set(files["safety"])
    assert "enpire/world/robots/jaco.py" in safety and "enpire/world/assets/enarm.xml" not in safety
    assert any(f.endswith("jaco_arm.xml") for f in safety), safety
    assert sum(f.endswith(".stl") for f in safety) >= 5, "the Jaco meshes decide contacts: they are covered"
    assert all(not f.startswith(str(PROJECT_ROOT)) for f in safety), "labels do not depend on the checkout path"


def test_done_name_must_name_the_task_whose_files_are_fingerprinted() -> None:
    from enpire.spec.errors import SpecError

    with pytest.raises(SpecError) as error:
        load_spec(["task=drawer", "done.name=reach"])
    assert [p.path for p in error.value.problems] == ["done.name"]


def test_an_edit_of_any_judged_file_changes_its_fingerprint_and_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = copy_in_sources(monkeypatch, tmp_path, "done", "enpire/judge/keep.py")
    controller = copy_in_sources(monkeypatch, tmp_path, "safety", "enpire/world/controller.py")
    spec = load_spec(["task=drawer"])
    doc = spec.as_dict()
    keep.write_text(keep.read_text().replace("KEEP_ALPHA = 0.05", "KEEP_ALPHA = 0.5"))
    assert fingerprint.done_sha256(doc["done"]) != spec.fingerprints.done_sha256
    assert fingerprint.safety_sha256(doc["safety"], doc["robot"]) == spec.fingerprints.safety_sha256
    controller.write_text(controller.read_text() + "\n# stiffer\n")
    assert fingerprint.safety_sha256(doc["safety"], doc["robot"]) != spec.fingerprints.safety_sha256
    assert {keep.as_posix(), controller.as_posix()} <= set(fingerprint.changed_files())


def test_a_plugin_task_is_found_from_the_registry_mjcf_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = plugin_drawer(monkeypatch, tmp_path)
    spec = load_spec(["task=drawer"])
    done = fingerprint.judged_files(spec.as_dict())["done"]
    assert module.as_posix() in done and (module.parent / "drawer.xml").as_posix() in done
    assert "enpire/tasks/drawer/task.py" not in done  # the registered class is the plugin's
    xml = module.parent / "drawer.xml"
    xml.write_text(xml.read_text().replace("<worldbody>", "<worldbody>\n    <!-- moved -->", 1))
    assert fingerprint.done_sha256(spec.as_dict()["done"]) != spec.fingerprints.done_sha256


# -- under a running session: exit 3 ----------------------------------------------------------
def _assert_breach(spec, summary: dict[str, str], code: int, what: str = "done") -> None:
    assert code == 3, summary
    assert summary["stopped_by"] == f"integrity_breach: {what}"
    assert summary["iterations"] == "1"  # nothing started after the change
    session = MlflowClient(tracking_uri=spec.tracking.uri).get_run(summary["session_id"])
    assert session.info.status == "FAILED"
    assert session.data.tags["enpire.integrity_breach"] == what


def test_an_edit_of_the_keep_rule_under_a_running_session_exits_3(
    store: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keep = copy_in_sources(monkeypatch, tmp_path, "done", "enpire/judge/keep.py")
    spec = spec_of(*store, "budget=smoke", "budget.iterations=10")

    def tamper(_summary: object) -> None:  # every candidate is a keep from now on
        keep.write_text(keep.read_text().replace("KEEP_MIN_TRIALS = 3", "KEEP_MIN_TRIALS = 0"))

    agent = ScriptedAgent([params_proposal(spec, trials=1)])
    code, summary, _ = run(spec, tmp_path / "run", agents=[agent], on_iteration=tamper)
    _assert_breach(spec, summary, code)


def test_an_edit_of_the_task_quantity_under_a_running_session_exits_3(
    store: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = plugin_drawer(monkeypatch, tmp_path)
    spec = spec_of(*store, "budget=smoke", "budget.iterations=10")

    def tamper(_summary: object) -> None:  # a hold-still policy would now open the drawer
        module.write_text(module.read_text().replace(QUANTITY, CONSTANT))

    agent = ScriptedAgent([params_proposal(spec, trials=1)])
    code, summary, _ = run(spec, tmp_path / "run", agents=[agent], on_iteration=tamper)
    _assert_breach(spec, summary, code)
