"""Fixtures of the Claude agent tests: a composed spec and a fake key in the environment."""

from __future__ import annotations

import pytest

from enpire.spec import ExperimentSpec, load_spec

FAKE_KEY = "sk-ant-api03-FAKE-test-key-do-not-use-1234567890"


@pytest.fixture(scope="module")
def spec() -> ExperimentSpec:
    return load_spec(["agent=claude", "budget=smoke"])


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fake key (tests prove it never leaks) and no endpoint from the outer environment."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
