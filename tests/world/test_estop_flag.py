"""A station's estop flag fails closed: a station of a controlled session that cannot map its flag does not
start (it would otherwise run unstoppable); one that boots while the control directory is being renamed
(enpire.ops.control.adopt) finds the flag once the rename lands."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from enpire.world import estop
from enpire.world.estop import EstopUnavailable, estop_flag


def test_a_flag_that_cannot_be_mapped_stops_the_station_from_starting(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estop, "MAP_RETRY_S", 0.1)
    with pytest.raises(EstopUnavailable, match="cannot be stopped does not start"):
        estop_flag(str(tmp_path / "gone" / "estop.flag"))


def test_a_flag_that_appears_while_the_station_boots_is_mapped(tmp_path: Path) -> None:
    flag = tmp_path / "renamed" / "estop.flag"

    def rename_lands() -> None:
        time.sleep(0.15)
        flag.parent.mkdir()
        flag.write_bytes(b"\x01")

    threading.Thread(target=rename_lands).start()
    assert estop_flag(str(flag))[0] == 1


def test_outside_a_controlled_session_there_is_no_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(estop.ESTOP_ENV, raising=False)
    assert estop_flag()[0] == 0
