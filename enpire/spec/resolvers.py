"""Which OmegaConf resolvers a config value may call: none that can read the environment.

oc.env (and the legacy env), and any resolver enpire does not know, are refused: the environment
holds API keys, and `${oc.env:ANTHROPIC_API_KEY}` in `session.name` would put the key into the run
name, the params and the tags. `resolver_problems` finds such values before anything resolves;
`only_safe_resolvers` swaps every other registered resolver for one that refuses while a config
resolves, so a value assembled at resolution time (`oc.decode` of a string) cannot reach it either.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator
from typing import Any

from omegaconf import DictConfig, OmegaConf
from omegaconf.basecontainer import BaseContainer
from omegaconf.errors import InterpolationResolutionError

from enpire.spec.errors import Problem

SAFE_RESOLVERS = frozenset({"now", "hydra", "oc.select", "oc.create", "oc.decode", "oc.deprecated",
                            "oc.dict.keys", "oc.dict.values"})
_RESOLVER_CALL = re.compile(r"\$\{\s*([A-Za-z_][\w.-]*)\s*:")


def refused_resolvers(text: str) -> list[str]:
    """The resolvers outside SAFE_RESOLVERS that `text` calls, sorted."""
    return sorted({m.group(1) for m in _RESOLVER_CALL.finditer(text)} - SAFE_RESOLVERS)


def _strings(node: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if path or key != "hydra":  # Hydra's own node: its resolvers are Hydra's business
                yield from _strings(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, f"{path}[{i}]")
    elif isinstance(node, str):
        yield path, node


def resolver_problems(cfg: DictConfig | dict[str, Any]) -> list[Problem]:
    """Values (from config files or overrides) that call a resolver outside SAFE_RESOLVERS."""
    raw = OmegaConf.to_container(cfg, resolve=False) if isinstance(cfg, DictConfig) else cfg
    out = []
    for path, text in _strings(raw, ""):
        bad = refused_resolvers(text)
        if bad:
            out.append(Problem(path, text, f"a value that calls no resolver reading the environment or unknown to "
                                           f"enpire ({', '.join(bad)}); write the value itself (resolvers allowed: "
                                           f"{', '.join(sorted(SAFE_RESOLVERS))})"))
    return out


def override_resolver_problems(overrides: list[str] | tuple[str, ...]) -> list[Problem]:
    """`hydra.*` overrides that call a refused resolver (Hydra's node is not in the composed spec, but a
    run directory named by `${oc.env:...}` would still carry the value into the record)."""
    out = []
    for text in overrides:
        key, eq, value = text.partition("=")
        key = key.lstrip("+~")
        if eq and key.startswith("hydra."):
            bad = refused_resolvers(value)
            if bad:
                out.append(Problem(key, value, f"a value that calls no resolver reading the environment or unknown "
                                               f"to enpire ({', '.join(bad)})"))
    return out


_guard = threading.Lock()


class EnvironmentResolverRefused(InterpolationResolutionError):
    pass


def _refusing(name: str) -> Any:
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise EnvironmentResolverRefused(f"resolver {name!r} is refused: it may read the environment, "
                                         "which holds API keys")
    return refuse


@contextlib.contextmanager
def only_safe_resolvers() -> Iterator[None]:
    """Every registered resolver outside SAFE_RESOLVERS refuses while the block runs."""
    with _guard:
        saved = dict(BaseContainer._resolvers)
        for name in saved:
            if name not in SAFE_RESOLVERS:
                BaseContainer._resolvers[name] = _refusing(name)
        try:
            yield
        finally:
            BaseContainer._resolvers.clear()
            BaseContainer._resolvers.update(saved)
