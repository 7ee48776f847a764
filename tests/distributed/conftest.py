"""A two-node Ray cluster per test module (start-up costs about 10 s on two busy cores). Per module, not per
session: a cluster left running would be found by other tests' `ray.init()` (tests/fleet/test_ray_*.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from enpire.world.estop import ESTOP_ENV as ESTOP_FLAG_ENV
from tests.distributed.stations import HOLD_ENV


@pytest.fixture(autouse=True)
def _no_leaked_estop_flag() -> Iterator[None]:
    """Sessions run in this process can leave ENPIRE_ESTOP_FLAG pointing at their provisional control dir (when
    MLflow opened after the loop ended, the channel is never closed); later sessions' stations, and any CLI
    subprocess, would map a file that is gone. Put the variable back as it was after each test."""
    before = os.environ.get(ESTOP_FLAG_ENV)
    yield
    if before is None:
        os.environ.pop(ESTOP_FLAG_ENV, None)
    else:
        os.environ[ESTOP_FLAG_ENV] = before


@pytest.fixture(scope="session")
def hold_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hold") / "hold"


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory: pytest.TempPathFactory, hold_file: Path) -> Iterator[object]:
    pytest.importorskip("ray")
    from tests.distributed.cluster import TwoNodeCluster

    cluster = TwoNodeCluster(tmp_path_factory.mktemp("cluster"), {HOLD_ENV: str(hold_file)})
    yield cluster
    cluster.shutdown()


@pytest.fixture
def cluster(two_nodes: object, hold_file: Path) -> Iterator[object]:
    """The cluster with both station nodes up (a test that killed one gets it back) and no hold set."""
    from tests.distributed.cluster import TwoNodeCluster

    assert isinstance(two_nodes, TwoNodeCluster)
    for name in ("a", "b"):
        two_nodes.add(name)
    hold_file.unlink(missing_ok=True)
    yield two_nodes
    hold_file.unlink(missing_ok=True)
    Path(str(hold_file) + ".held").unlink(missing_ok=True)
