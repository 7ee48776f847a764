"""examples/hardware: the SO-101 skeleton imports without LeRobot and is gated like any physical adapter."""

from __future__ import annotations

import pytest

from enpire.fleet.stations import make_station
from enpire.hardware.registry import adapter_class
from enpire.spec import SpecError, load_spec

SKELETON = "examples.hardware.so101_adapter:SO101Adapter"


def test_the_so101_skeleton_is_a_physical_adapter_that_needs_confirm_motion() -> None:
    cls = adapter_class(SKELETON)  # no lerobot import until connect()
    assert cls.physical is True and cls.name == "so101"
    with pytest.raises(SpecError, match=r"station\.confirm_motion: got false; expected true before adapter 'so101'"):
        make_station(load_spec(["task=reach", f"robot.adapter={SKELETON}"]), 0)
