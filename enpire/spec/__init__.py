"""Declarative experiment spec: compose, validate against specs/, freeze, fingerprint.

`load_spec` and `spec_from_config` (Hydra, OmegaConf, jsonschema: ~0.2 s of imports) are loaded on first
use: a station worker unpickles an ExperimentSpec (enpire.spec.model) and never composes one, and four of
them booting at once on a small machine paid that import four times.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from enpire.spec.errors import EXIT_INTEGRITY, EXIT_INVALID_SPEC, IntegrityError, Problem, SpecError
from enpire.spec.model import ExperimentSpec

if TYPE_CHECKING:
    from enpire.spec.load import load_spec, spec_from_config

__all__ = [
    "EXIT_INTEGRITY", "EXIT_INVALID_SPEC", "ExperimentSpec", "IntegrityError", "Problem", "SpecError",
    "load_spec", "spec_from_config",
]


def __getattr__(name: str) -> Any:
    if name in ("load_spec", "spec_from_config"):
        from enpire.spec import load

        return getattr(load, name)
    raise AttributeError(f"module 'enpire.spec' has no attribute {name!r}")
