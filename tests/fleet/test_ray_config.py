"""executor=ray as a user configures it: composition, strict schema, and lazy selection. Fast: no Ray starts."""

from __future__ import annotations

import sys

import pytest

from enpire.fleet.executors import make_executor
from enpire.spec import load_spec
from enpire.spec.errors import SpecError


def _paths(error: SpecError) -> list[str]:
    return [p.path for p in error.problems]


def test_ray_executor_composes_with_a_local_instance_by_default() -> None:
    spec = load_spec(["task=drawer", "fleet=4", "executor=ray"])
    assert spec.executor.kind == "ray"
    assert spec.executor.address is None  # null: a local Ray instance is started
    assert spec.executor.num_cpus_per_station > 0
    assert spec.executor.trial_timeout_s > 0 and spec.executor.max_restarts >= 0


def test_cluster_address_and_cpus_are_overridable() -> None:
    spec = load_spec(["executor=ray", "executor.address=ray://head:10001", "executor.num_cpus_per_station=0.5"])
    assert spec.executor.address == "ray://head:10001"
    assert spec.executor.num_cpus_per_station == 0.5


@pytest.mark.parametrize("override, path", [
    ("executor.num_cpus_per_station=0", "executor.num_cpus_per_station"),
    ("executor.address=''", "executor.address"),
    ("executor.start_method=spawn", "executor.start_method"),  # Ray starts its workers itself
])
def test_bad_ray_settings_name_the_key(override: str, path: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(["executor=ray", override])
    assert path in _paths(error.value)


def test_ray_keys_are_rejected_on_the_local_executor() -> None:
    """The schema stays strict: a cluster address on executor=local is a mistake, not silently ignored."""
    with pytest.raises(SpecError) as error:
        load_spec(["executor=local", "+executor.address=auto"])
    assert any(p.startswith("executor") for p in _paths(error.value))


def test_make_executor_picks_ray_without_starting_it() -> None:
    spec = load_spec(["executor=ray", "fleet=2"])
    executor = make_executor(spec)
    assert type(executor).__name__ == "RayExecutor"
    assert executor.size == 2 and executor.idle() == [] and executor.faulty() == {}
    import ray

    assert not ray.is_initialized()  # nothing connects before start()


def test_local_sessions_do_not_import_ray() -> None:
    """Ray is imported only when executor=ray is used (it costs seconds of start-up)."""
    import subprocess

    code = ("import sys; from enpire.spec import load_spec; from enpire.fleet.executors import make_executor; "
            "make_executor(load_spec(['executor=local'])); import enpire.loop; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "False"


def test_placement_keys_reach_the_actor_options() -> None:
    """Stations ask Ray for the shared resources plus their own; spread is the default strategy."""
    from enpire.fleet.ray_config import RayPlacement

    spec = load_spec(["executor=ray", "fleet=3", "executor.resources={enpire_station:1}",
                      "executor.station_resources=[{rack_a:1},{rack_b:0.5}]", "executor.start_timeout_s=20"])
    placement = RayPlacement.from_spec(spec)
    assert placement.actor_options(0) == {"num_cpus": 1.0, "scheduling_strategy": "SPREAD",
                                          "resources": {"enpire_station": 1.0, "rack_a": 1.0}}
    assert placement.actor_options(1)["resources"] == {"enpire_station": 1.0, "rack_b": 0.5}
    assert placement.actor_options(2)["resources"] == {"enpire_station": 1.0}  # no entry of its own
    assert placement.start_timeout_s == 20.0
    # a local instance (address=null) declares what its stations ask for, so they fit on it
    assert placement.local_instance_resources(3) == {"enpire_station": 3.0, "rack_a": 1.0, "rack_b": 1.0}
    pack = load_spec(["executor=ray", "executor.placement=pack"])
    assert RayPlacement.from_spec(pack).actor_options(0) == {"num_cpus": 1.0, "scheduling_strategy": "DEFAULT"}


@pytest.mark.parametrize("override, path", [
    ("executor.resources={enpire_station:-1}", "executor.resources.enpire_station"),
    ("executor.resources={CPU:1}", "executor.resources.CPU"),  # CPUs are num_cpus_per_station
    ("executor.placement=wide", "executor.placement"),
    ("executor.start_timeout_s=0", "executor.start_timeout_s"),
])
def test_bad_placement_keys_name_the_key(override: str, path: str) -> None:
    with pytest.raises(SpecError) as error:
        load_spec(["executor=ray", override])
    assert path in _paths(error.value)


def test_more_pinned_stations_than_the_fleet_is_refused_before_ray_starts() -> None:
    spec = load_spec(["executor=ray", "fleet=1", "executor.station_resources=[{rack_a:1},{rack_b:1}]"])
    with pytest.raises(ValueError, match=r"executor\.station_resources"):
        make_executor(spec)
