"""A task from an MJCF and a yaml alone (enpire.world.declarative): init values set on named elements,
quantities read from named elements, observations and shaping from the yaml, the files fingerprinted."""

from __future__ import annotations

import shutil
from pathlib import Path

import mujoco
import pytest

from enpire.fleet.stations import make_station
from enpire.spec import fingerprint, load_spec
from enpire.spec.errors import SpecError
from enpire.spec.search_path import copy_configs
from enpire.world.declarative import DeclarativeTask
from enpire.world.quantities import QuantityError
from enpire.world.station import SimStation

HERE = Path(__file__).resolve().parent / "declarative"


@pytest.fixture(scope="module")
def conf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user's config dir: the shipped options plus the slide task's yaml, MJCF and done option."""
    root = copy_configs(tmp_path_factory.mktemp("userconf") / "conf")
    shutil.copy(HERE / "slide.yaml", root / "task" / "slide.yaml")
    shutil.copy(HERE / "slide.xml", root / "task" / "slide.xml")
    shutil.copy(HERE / "done_slide.yaml", root / "done" / "slide.yaml")
    return root


@pytest.fixture(scope="module")
def station(conf: Path) -> SimStation:
    return make_station(load_spec(["task=slide", "video.enabled=false"], config_dir=conf), 0)


def _joint(st: SimStation, name: str) -> float:
    m, d = st.scene.model, st.scene.data
    return float(d.qpos[m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, name)]])


def test_a_yaml_and_an_mjcf_make_a_task_without_python(station: SimStation) -> None:
    assert isinstance(station.scene.task, DeclarativeTask)
    obs = station.observe()
    assert {"block_pos", "block_to_goal", "tool_height", "ee_pos"} <= set(obs)  # the quantities are observed


def test_init_values_land_on_the_named_elements_and_vary_by_seed(station: SimStation) -> None:
    starts, goals = [], []
    for seed in range(4):
        assert station.reset(seed)
        starts.append(_joint(station, "block_slide"))
        goals.append(float(station.scene.physics.site_pos("goal")[0]))
        assert -0.08 <= starts[-1] <= 0.08 and 0.4 <= goals[-1] <= 0.5
    assert len({round(s, 4) for s in starts}) == 4 and len({round(g, 4) for g in goals}) == 4


def test_declared_quantities_read_the_simulator_and_clip_to_their_range(station: SimStation) -> None:
    station.reset(1)
    state = station.state()
    block_x = float(station.scene.physics.site_pos("block_site")[0])
    goal_x = float(station.scene.physics.site_pos("goal")[0])
    assert state["block_pos"] == pytest.approx(_joint(station, "block_slide"))
    assert state["block_to_goal"] == pytest.approx(min(abs(block_x - goal_x), 0.05))  # x only, clipped at high
    assert state["tool_height"] == pytest.approx(float(station.scene.physics.ee_pos()[2]))
    assert station.scene.task.shaping_reward(station.scene.physics) == pytest.approx(-state["block_to_goal"])


def test_the_mjcf_and_the_declaring_code_are_part_of_the_done_fingerprint(conf: Path) -> None:
    """The declarations themselves are in the frozen spec; the files that read them are fingerprinted."""
    spec = load_spec(["task=slide"], config_dir=conf)
    done = set(fingerprint.judged_files(spec.as_dict())["done"])
    assert {"enpire/world/declarative.py", "enpire/world/quantities.py"} <= done
    assert spec.task.mjcf == str(conf / "task" / "slide.xml") and spec.task.mjcf in done
    xml = conf / "task" / "slide.xml"
    before = xml.read_text()
    try:
        xml.write_text(before.replace('damping="5"', 'damping="50"'))
        assert fingerprint.done_sha256(spec.as_dict()["done"], spec.as_dict()["task"]) != spec.fingerprints.done_sha256
    finally:
        xml.write_text(before)


def test_a_declared_element_that_is_not_in_the_arena_is_refused_at_load(conf: Path) -> None:
    """Exit 2 naming the key, before any station starts (not a crash in every trial)."""
    with pytest.raises(SpecError) as error:
        load_spec(["task=slide", "task.state_space.block_pos.from.joint_pos=nope",
                   "task.init.goal_x.set.body=nobody"], config_dir=conf)
    assert sorted(p.path for p in error.value.problems) == ["task.init.goal_x.set.body",
                                                            "task.state_space.block_pos.from.joint_pos"]
    assert "block_slide" in error.value.render()  # what the arena does have


def test_the_station_names_a_robot_element_missing_from_the_built_scene(conf: Path) -> None:
    """A robot's element ("enarm/...") is not in the arena file: the scene build names the quantity."""
    bad = "task.state_space.tool_height.from.position=body:enarm/nope"
    spec = load_spec(["task=slide", bad], config_dir=conf)
    with pytest.raises(QuantityError, match=r"tool_height.from: body 'enarm/nope' is not in the scene"):
        make_station(spec, 0)


def test_a_malformed_declaration_is_refused_at_load(conf: Path) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(["task=slide", "task.state_space.block_pos.from={position: 'nowhere'}"], config_dir=conf)
    assert any(p.path.startswith("task.state_space.block_pos.from") for p in error.value.problems), error.value


def test_an_mjcf_that_is_not_there_is_refused_naming_the_key(conf: Path) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(["task=slide", "task.mjcf=task/nope.xml"], config_dir=conf)
    assert [p.path for p in error.value.problems] == ["task.mjcf"]
