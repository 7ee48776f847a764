"""Fingerprints of what must not move during a session.

done_sha256 covers the resolved done criteria and the source of the verifier that applies
them; safety_sha256 the envelope and the code that enforces it; spec_sha256 the whole spec.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from enpire import PROJECT_ROOT
from enpire.spec.frozen import thaw

DONE_SOURCES = ("enpire/world/verifier.py",)
SAFETY_SOURCES = ("enpire/world/envelope.py",)


def canonical_json(value: Any) -> str:
    return json.dumps(thaw(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _sources(paths: tuple[str, ...]) -> str:
    return "".join(f"\n# {p}\n" + (PROJECT_ROOT / p).read_text() for p in paths)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def done_sha256(done: Any) -> str:
    return _sha(canonical_json(done) + _sources(DONE_SOURCES))


def safety_sha256(safety: Any, robot: Any) -> str:
    """The envelope with the robot limits it refers to, plus the enforcing code."""
    limits = {"safety": thaw(safety), "actuator_force_range_nm": thaw(robot)["actuator_force_range_nm"]}
    return _sha(canonical_json(limits) + _sources(SAFETY_SOURCES))


def spec_sha256(doc: Any) -> str:
    return _sha(canonical_json(doc))
