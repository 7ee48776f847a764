"""Station tests: the runner side (in this process) knows the loopback stations' token."""

from __future__ import annotations

import pytest

from tests.station.support import TOKEN


@pytest.fixture(autouse=True)
def station_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENPIRE_STATION_TOKEN", TOKEN)
