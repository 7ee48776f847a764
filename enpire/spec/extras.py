"""Optional parts of enpire and the extra that installs each (`pip install 'enpire[ray]'`).

The core (a session of any shipped task with the offline search agent, MLflow, videos) needs none
of them. A config that picks a part whose packages are missing is refused before anything runs
(exit 2), naming the key, the value and the extra to install, instead of failing inside a station.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from enpire.spec.errors import Problem

# (key path, value) -> (modules it imports, the extra that installs them)
EXTRAS: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("executor.kind", "ray"): (("ray",), "ray"),
    ("agent.kind", "claude"): (("anthropic",), "claude"),
    ("agent.kind", "tpe"): (("optuna",), "tpe"),
    ("policy.kind", "bc"): (("torch", "lightning"), "learn"),
    ("policy.kind", "rl"): (("torch", "stable_baselines3"), "learn"),
}


def installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _missing(path: str, value: Any) -> Problem | None:
    need = EXTRAS.get((path, value)) if isinstance(value, str) else None
    if need is None:
        return None
    modules, extra = need
    absent = [m for m in modules if not installed(m)]
    if not absent:
        return None
    return Problem(path, value, f"an option whose packages are installed ({', '.join(absent)} missing: "
                                f"pip install 'enpire[{extra}]')")


def extras_problems(doc: dict[str, Any]) -> list[Problem]:
    """Options of a composed document that need an extra that is not installed."""
    out = [p for path, value in (("executor.kind", doc["executor"].get("kind")),
                                 ("agent.kind", doc["agent"].get("kind")),
                                 ("policy.kind", doc["policy"].get("kind")))
           if (p := _missing(path, value)) is not None]
    for i, member in enumerate(doc.get("team") or ()):
        p = _missing("agent.kind", member.get("kind") if isinstance(member, dict) else None)
        if p is not None and p.value != doc["agent"].get("kind"):
            out.append(Problem(f"team[{i}]", p.value, p.expected))
    return out
