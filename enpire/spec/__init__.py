"""Declarative experiment spec: compose, validate against specs/, freeze, fingerprint."""

from enpire.spec.errors import EXIT_INTEGRITY, EXIT_INVALID_SPEC, IntegrityError, Problem, SpecError
from enpire.spec.load import load_spec, spec_from_config
from enpire.spec.model import ExperimentSpec

__all__ = [
    "EXIT_INTEGRITY", "EXIT_INVALID_SPEC", "ExperimentSpec", "IntegrityError", "Problem", "SpecError",
    "load_spec", "spec_from_config",
]
