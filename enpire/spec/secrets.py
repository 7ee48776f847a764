"""Secret values of the environment, kept out of everything a session records.

A secret is the value of an environment variable whose name contains KEY, TOKEN, SECRET or
PASSWORD (ANTHROPIC_API_KEY, MLFLOW_TRACKING_TOKEN, AWS_SECRET_ACCESS_KEY ...), at least
`MIN_LENGTH` characters long (`KEYTIMEOUT=1` names no secret worth hiding, and scrubbing "1"
would wreck every number) and not an existing path (`SSH_KEY_DIR=/home/me/.ssh` is a place).
The spec refuses resolvers that read the environment (enpire.spec.compose); this is the
defence behind that: whatever secret value still reaches the resolved spec, its overrides or
an error message is replaced by `<redacted:$NAME>` before the spec is built, fingerprinted
and logged.
"""

from __future__ import annotations

import os
from typing import Any

from enpire.spec.errors import Problem

MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD")
MIN_LENGTH = 8


def secret_values() -> dict[str, str]:
    """{value: variable name} of every secret in the environment now, longest value first."""
    found = {
        v: k
        for k, v in os.environ.items()
        if any(m in k.upper() for m in MARKERS) and len(v.strip()) >= MIN_LENGTH and not os.path.exists(v)
    }  # KEY_DIR=/home/me names a place, not a secret
    return dict(sorted(found.items(), key=lambda kv: -len(kv[0])))


def secret_names_in(text: str) -> list[str]:
    """Names of the secret variables whose value occurs in `text`."""
    return sorted({name for value, name in secret_values().items() if value in text})


def scrub_text(text: str, known: dict[str, str] | None = None) -> str:
    known = secret_values() if known is None else known
    for value, name in known.items():
        if value in text:
            text = text.replace(value, f"<redacted:${name}>")
    return text


def scrub(value: Any, known: dict[str, str] | None = None) -> Any:
    """`value` (JSON-like: dicts, lists, strings) with every secret value replaced."""
    known = secret_values() if known is None else known
    if not known:
        return value
    if isinstance(value, str):
        return scrub_text(value, known)
    if isinstance(value, dict):
        return {scrub(k, known): scrub(v, known) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(v, known) for v in value)
    return value


def scrubbed_paths(value: Any, known: dict[str, str] | None = None, path: str = "") -> list[str]:
    """Key paths of `value` whose strings hold a secret (for the warning that says where)."""
    known = secret_values() if known is None else known
    if not known:
        return []
    if isinstance(value, str):
        return [path or "<root>"] if any(s in value for s in known) else []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in scrubbed_paths(v, known, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in scrubbed_paths(v, known, f"{path}[{i}]")]
    return []


def scrub_problems(problems: list[Problem]) -> list[Problem]:
    """Problems with no secret in their value or text."""
    known = secret_values()
    if not known:
        return problems
    return [Problem(scrub_text(p.path, known), scrub(p.value, known), scrub_text(p.expected, known)) for p in problems]
