"""Compose Hydra configs into a plain, resolved dict; Hydra's own errors become SpecErrors."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import HydraException, MissingConfigException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from enpire import CONFIG_DIR
from enpire.spec.errors import Problem, SpecError

_OPTIONS = re.compile(r"Available options[^:]*:(.*?)(?:\n\s*\n|Config search path|$)", re.S)


def _hydra_problem(error: Exception, overrides: list[str]) -> Problem:
    text = str(error).strip()
    if isinstance(error, MissingConfigException) or "Could not find" in text:
        m = re.search(r"Could not find '([^']+)'", text)
        missing = m.group(1) if m else ""
        group, _, option = missing.rpartition("/")
        options = _OPTIONS.search(text)
        listed = " ".join(options.group(1).split()) if options else ""
        return Problem(group or missing, option or missing, f"an option of config group '{group}'"
                       + (f" (available: {listed.replace(' ', ', ')})" if listed else ""))
    if isinstance(error, OverrideParseException):
        return Problem("<overrides>", " ".join(overrides), f"valid Hydra override syntax ({text.splitlines()[0]})")
    m = re.search(r"[Kk]ey '([^']+)'", text) or re.search(r"override '([^']+)'", text)
    key = m.group(1) if m else "<overrides>"
    given = next((o.split("=", 1)[1] for o in overrides if o.lstrip("+~").split("=", 1)[0] == key and "=" in o),
                 " ".join(overrides))
    return Problem(key, given, f"a key the config has ({text.splitlines()[0]})")


def compose_config(overrides: list[str] | tuple[str, ...] = (), config_dir: Path | str = CONFIG_DIR,
                   config_name: str = "config") -> DictConfig:
    """Hydra composition of `config_dir/config_name` with `overrides` (unresolved)."""
    overrides = list(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(Path(config_dir).resolve()), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        raise SpecError([_hydra_problem(error, overrides)], source="overrides") from error
    finally:
        GlobalHydra.instance().clear()


def resolve(cfg: DictConfig) -> dict[str, Any]:
    """Resolve interpolations into a plain dict; a broken interpolation names its key path."""
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException:
        pass  # find every broken key below, not only the first
    problems: list[Problem] = []

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, DictConfig):
            out = {}
            for key in node.keys():
                sub = f"{path}.{key}" if path else str(key)
                try:
                    child = node._get_node(key)
                    out[key] = walk(child, sub) if isinstance(child, DictConfig | list) or \
                        OmegaConf.is_list(child) else OmegaConf.to_container(
                            OmegaConf.create({"v": node[key]}), resolve=True)["v"]
                except OmegaConfBaseException as error:
                    problems.append(Problem(sub, _raw(node, key), f"a resolvable value ({_first_line(error)})"))
            return out
        if OmegaConf.is_list(node):
            items = []
            for i in range(len(node)):
                try:
                    items.append(walk(node._get_node(i), f"{path}[{i}]") if OmegaConf.is_config(node._get_node(i))
                                 else OmegaConf.to_container(OmegaConf.create({"v": node[i]}), resolve=True)["v"])
                except OmegaConfBaseException as error:
                    problems.append(Problem(f"{path}[{i}]", _raw(node, i), f"a resolvable value ({_first_line(error)})"))
            return items
        return OmegaConf.to_container(OmegaConf.create({"v": node}), resolve=True)["v"]

    data = walk(cfg, "")
    if problems:
        raise SpecError(problems, source="config")
    return data


def _raw(node: Any, key: Any) -> Any:
    try:
        return node._get_node(key)._value()
    except Exception:
        return "?"


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
