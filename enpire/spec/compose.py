"""Compose Hydra configs into a plain, resolved dict; Hydra's own errors become SpecErrors.

Two things are refused before anything is composed or resolved, each under its key path:
a YAML file in the config directory whose aliases would expand past `MAX_YAML_NODES` nodes
(an alias bomb hangs OmegaConf: it copies every alias), is nested deeper than Python can
compose, is over `MAX_YAML_BYTES` or is not a regular file; and a config value or override
that calls a resolver outside `SAFE_RESOLVERS` (enpire.spec.resolvers) (`${oc.env:ANTHROPIC_API_KEY}` would put the key
into the run name, the params and the tags). While resolving, every other resolver is swapped
for one that refuses, so a value assembled at resolution time (`oc.decode` of a string) cannot
reach the environment either.

Hydra stops at its first error and names it in prose. A user with three mistakes on the
command line should hear about all three, each under its key path, so composition here
checks every override's syntax on its own, checks group options exist (Hydra silently skips
a missing option of an `optional` group), and when composing still fails finds which
overrides fail on their own, drops them and composes the rest, so later stages can report
their problems too.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from enpire import CONFIG_DIR
from enpire.spec.errors import Problem, SpecError
from enpire.spec.resolvers import only_safe_resolvers, resolver_problems
from enpire.spec.search_path import config_dirs, group_options, is_group, option_file
from enpire.spec.search_path import install as install_search_path

_OPTIONS = re.compile(r"Available options[^:]*:(.*?)(?:\n\s*\n|Config search path|$)", re.S)
_KEY_PATTERNS = (
    r"Could not (?:find|load) '([^']+)/[^'/]*'",  # missing group option: the group
    r"[Kk]ey '([^']+)'",
    r"override '([^'=]+)",
    r"[Aa]n item is already at '([^']+)'",
    r"'([^']+)' does not exist",
    r"argument '([^'=]+)=",
    r"Multiple values for ([\w./@-]+)",
    r"merging override ([\w./@-]+)=",
)
COMPOSE_ERRORS = (HydraException, OmegaConfBaseException, ValueError, yaml.YAMLError)
_PARSER = OverridesParser.create()
MAX_YAML_NODES = 100_000  # nodes a config file may expand to, aliases copied (the shipped ones: < 200)
MAX_YAML_BYTES = 1 << 20


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _override_key(text: str) -> str:
    """The key an override addresses, from its raw text (also when it does not parse)."""
    key = text.split("=", 1)[0].lstrip("+~").strip()
    return key if re.fullmatch(r"[\w./@-]+", key) else "<overrides>"


def parse_override(text: str) -> tuple[Override | None, Problem | None]:
    """One override parsed on its own, or the problem with its syntax."""
    try:
        return _PARSER.parse_override(text), None
    except (HydraException, ValueError) as error:
        hint = "key=value" if "=" not in text and not text.startswith("~") else "valid Hydra override syntax"
        return None, Problem(_override_key(text), text, f"{hint} ({_first_line(error)})")


def syntax_problems(overrides: list[str]) -> list[Problem]:
    """Every override that does not parse, each named by the key it meant to set."""
    return [p for p in (parse_override(o)[1] for o in overrides) if p is not None]


def _listed_options(text: str) -> str:
    options = _OPTIONS.search(text)
    return ", ".join(options.group(1).split()) if options else ""


def _option_problems(overrides: list[str], config_dir: Path) -> list[Problem]:
    """`group=option` overrides whose option file does not exist anywhere on the search path (the
    primary config dir and every plugin's); Hydra ignores them for optional groups."""
    out = []
    for text in overrides:
        o, _ = parse_override(text)
        if o is None or o.is_delete() or o.is_sweep_override() or not isinstance(o.value(), str):
            continue
        group = o.key_or_group
        if group.startswith("hydra") or not is_group(group, config_dir) or option_file(group, o.value(), config_dir):
            continue
        available = ", ".join(group_options(group, config_dir))
        out.append(Problem(group, o.value(), f"an option of config group '{group}' (available: {available})"))
    return out


def _yaml_problem(error: yaml.YAMLError, config_dir: Path) -> Problem:
    """A YAML syntax error names the config file (as group path) and the line."""
    mark = getattr(error, "problem_mark", None)
    name = getattr(mark, "name", "") or ""
    try:
        rel = Path(name).resolve().relative_to(config_dir.resolve())
    except ValueError:
        rel = Path(name)
    where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"
    problem = getattr(error, "problem", None) or _first_line(error)
    path = "/".join(rel.with_suffix("").parts[:-1]) or "<config>"
    return Problem(path, str(rel), f"valid YAML ({problem} at {where})")


def _hydra_problem(error: BaseException, overrides: list[str], config_dir: Path = CONFIG_DIR) -> Problem:
    """A Problem for a Hydra/OmegaConf error that no single override explains."""
    if isinstance(error, yaml.YAMLError):
        return _yaml_problem(error, config_dir)
    text = str(error).strip()
    m = re.search(r"Could not (?:find|load) '([^']+)'", text)
    if m:
        group, _, option = missing.rpartition("/") if (missing := m.group(1)) else ("", "", "")
        where = re.match(r"In '([^']+)'", text)
        listed = _listed_options(text)
        return Problem(group or "<config>", option or missing,
                       f"an option of config group '{group}'" + (f" (available: {listed})" if listed else "")
                       + (f", named in {where.group(1)}.yaml" if where and where.group(1) != "config" else ""))
    if isinstance(error, MissingConfigException):  # e.g. the config directory itself is gone
        return Problem("<config>", str(config_dir), f"a readable config directory ({_first_line(error)})")
    key = next((m.group(1) for pat in _KEY_PATTERNS if (m := re.search(pat, text))), "<overrides>")
    given = next((o.split("=", 1)[1] for o in overrides if "=" in o and _override_key(o) == key), " ".join(overrides))
    return Problem(key, given, f"an override the config accepts ({_first_line(error)})")


def _culprit_problem(error: BaseException, text: str, config_dir: Path) -> Problem:
    """The problem of one override that fails to compose on its own, under that override's key."""
    o, _ = parse_override(text)
    key = o.key_or_group if o is not None else _override_key(text)
    value = o.value() if o is not None and not o.is_sweep_override() else text.split("=", 1)[-1]
    if isinstance(error, yaml.YAMLError):
        base = _yaml_problem(error, config_dir)
        return Problem(key, value, f"{base.expected} in {base.value}")
    general = _hydra_problem(error, [text], config_dir)
    if general.expected.startswith("an option of config group"):
        if general.path == key:
            return Problem(key, value, general.expected)
        return Problem(key, value, f"an option whose defaults compose ({general.path}: got {general.value!r}; "
                                   f"expected {general.expected})")
    msg = _first_line(error)
    if "Could not override" in msg or "does not exist" in msg:
        return Problem(key, value, f"a key the config has ({msg})")
    if "Ambiguous value" in msg:
        return Problem(key, value, "a single value (a comma list is a sweep: add -m)")
    return Problem(key, value, f"an override the config accepts ({msg})")


def _named_culprit(error: BaseException, overrides: list[str], config_dir: Path) -> str | None:
    """The override a Hydra/YAML error message points at, if exactly one does."""
    if isinstance(error, yaml.YAMLError):
        rel = _yaml_problem(error, config_dir).value  # group/option.yaml
        group, _, option = str(rel).removesuffix(".yaml").rpartition("/")
        wanted = [(group, option)]
    else:
        text = str(error)
        where = re.match(r"In '([^']+)/([^'/]+)'", text.strip())
        key = next((m.group(1) for pat in _KEY_PATTERNS if (m := re.search(pat, text))), None)
        wanted = [(where.group(1), where.group(2))] if where else [(key, None)] if key else []
    hits = []
    for text in overrides:
        o, _ = parse_override(text)
        if o is None:
            continue
        for key, option in wanted:
            value = o.value()
            if key in (o.key_or_group, o.get_key_element().lstrip("+~")) and (
                    option is None or value == option or (isinstance(value, list) and option in value)):
                hits.append(text)
    return hits[0] if len(hits) == 1 else None


_yaml_checked: dict[str, tuple[tuple[int, ...], Problem | None]] = {}


def _expanded_nodes(root: yaml.Node, limit: int) -> int:
    """Nodes of `root` with every alias copied (what OmegaConf builds), counted up to just past `limit`.

    Shared nodes are counted once per use without being walked again, so the count costs one pass
    over the composed graph however large the expansion; a recursive alias counts as unbounded.
    """
    size: dict[int, int] = {}
    active: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            active.discard(key)
            if isinstance(node, yaml.MappingNode):
                kids = [n for pair in node.value for n in pair]
            elif isinstance(node, yaml.SequenceNode):
                kids = list(node.value)
            else:
                kids = []
            size[key] = min(limit + 1, 1 + sum(size[id(k)] for k in kids))
            continue
        if key in size:
            continue
        if key in active:
            return limit + 1  # an alias inside its own anchor: infinite
        active.add(key)
        stack.append((node, True))
        if isinstance(node, yaml.MappingNode):
            stack.extend((n, False) for pair in node.value for n in pair if id(n) not in size)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((n, False) for n in node.value if id(n) not in size)
    return size[id(root)]


def _yaml_file_problem(path: Path, config_dir: Path) -> Problem | None:
    rel = path.relative_to(config_dir)
    where = "/".join(rel.with_suffix("").parts[:-1]) or "<config>"
    try:
        st = path.stat()
    except OSError as error:
        return Problem(where, str(rel), f"a readable config file ({error.strerror})")
    sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)
    cached = _yaml_checked.get(str(path))
    if cached is not None and cached[0] == sig:
        return cached[1]
    problem: Problem | None = None
    if not path.is_file():
        problem = Problem(where, str(rel), "a regular config file")
    elif st.st_size > MAX_YAML_BYTES:
        problem = Problem(where, str(rel), f"a config file of at most {MAX_YAML_BYTES} bytes (it has {st.st_size})")
    else:
        try:
            documents = yaml.compose_all(path.read_text(), Loader=yaml.SafeLoader)
            total = sum(_expanded_nodes(n, MAX_YAML_NODES) for n in documents if n is not None)
        except RecursionError:
            problem = Problem(where, str(rel), "a YAML file nested less deeply (composing it exhausts the stack)")
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            total = 0  # Hydra names a syntax error with its line; not this check's business
        else:
            if total > MAX_YAML_NODES:
                problem = Problem(where, str(rel), f"a YAML file whose aliases expand to at most {MAX_YAML_NODES} "
                                                   f"nodes (it expands to more: an alias bomb)")
    _yaml_checked[str(path)] = (sig, problem)
    return problem


def yaml_file_problems(config_dir: Path) -> list[Problem]:
    """Config files that would hang or crash composition (alias bombs, too deep, too big, not files)."""
    if not config_dir.is_dir():
        return []  # compose names a missing config dir itself
    out = []
    for root in config_dirs(config_dir):  # the primary dir, then every plugin's
        for folder, dirs, files in os.walk(root):
            dirs.sort()
            for name in sorted(files):
                if name.endswith((".yaml", ".yml")):
                    problem = _yaml_file_problem(Path(folder) / name, root)
                    if problem is not None:
                        out.append(problem)
    return out


def _compose_once(overrides: list[str], config_dir: Path, config_name: str) -> DictConfig:
    install_search_path()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir.resolve()), version_base="1.3"):
            return compose(config_name=config_name, overrides=overrides)
    finally:
        GlobalHydra.instance().clear()


def compose_partial(overrides: list[str] | tuple[str, ...] = (), config_dir: Path | str = CONFIG_DIR,
                    config_name: str = "config") -> tuple[DictConfig | None, list[Problem]]:
    """Compose as much as can be composed: (config without the failing overrides, their problems).

    The config is None when nothing sensible composes (the base config itself is broken, or
    overrides only fail together).
    """
    config_dir = Path(config_dir)
    bombs = yaml_file_problems(config_dir)
    if bombs:  # composing would hang or crash: nothing is composed
        return None, bombs
    problems: list[Problem] = []
    remaining: list[str] = []
    for text in overrides:
        _, bad = parse_override(text)
        bad = bad or next(iter(_option_problems([text], config_dir)), None)
        if bad is None:
            remaining.append(text)
        else:
            problems.append(bad)
    while True:  # drop the overrides Hydra's message names, one at a time (cheap: one compose each)
        try:
            return _compose_once(remaining, config_dir, config_name), problems
        except COMPOSE_ERRORS as error:
            first = error
        named = _named_culprit(first, remaining, config_dir)
        if named is None:
            break
        remaining.remove(named)
        problems.append(_culprit_problem(first, named, config_dir))
    try:
        _compose_once([], config_dir, config_name)
    except COMPOSE_ERRORS as error:  # the config files themselves are broken
        return None, [*problems, _hydra_problem(error, [], config_dir)]
    culprits = []  # the message names no override: find those that fail on their own
    for text in remaining:
        try:
            _compose_once([text], config_dir, config_name)
        except COMPOSE_ERRORS as error:
            culprits.append(text)
            problems.append(_culprit_problem(error, text, config_dir))
    if not culprits:  # only a combination fails; say what Hydra said
        return None, [*problems, _hydra_problem(first, remaining, config_dir)]
    rest = [t for t in remaining if t not in culprits]
    try:
        return _compose_once(rest, config_dir, config_name), problems
    except COMPOSE_ERRORS as error:
        return None, [*problems, _hydra_problem(error, rest, config_dir)]


def compose_config(overrides: list[str] | tuple[str, ...] = (), config_dir: Path | str = CONFIG_DIR,
                   config_name: str = "config") -> DictConfig:
    """Hydra composition of `config_dir/config_name` with `overrides` (unresolved). Raises SpecError."""
    cfg, problems = compose_partial(overrides, config_dir, config_name)
    if problems or cfg is None:
        raise SpecError(problems, source="overrides")
    return cfg


def resolve(cfg: DictConfig) -> dict[str, Any]:
    """Resolve interpolations into a plain dict; a broken interpolation names its key path.

    A value calling a resolver that may read the environment is refused before anything resolves.
    """
    refused = resolver_problems(cfg)
    if refused:
        raise SpecError(refused, source="config")
    with only_safe_resolvers():
        return _resolve(cfg)


def _resolve(cfg: DictConfig) -> dict[str, Any]:
    try:
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException:
        pass  # find every broken key below, not only the first
    problems: list[Problem] = []

    def plain(value: Any) -> Any:  # an accessed (so resolved) value; never re-parsed as an interpolation
        return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value

    def walk(node: Any, path: str) -> Any:
        if isinstance(node, DictConfig):
            out = {}
            for key in node.keys():
                sub = f"{path}.{key}" if path else str(key)
                try:
                    child = node._get_node(key)
                    out[key] = walk(child, sub) if isinstance(child, DictConfig | list) or \
                        OmegaConf.is_list(child) else plain(node[key])
                except OmegaConfBaseException as error:
                    problems.append(Problem(sub, _raw(node, key), f"a resolvable value ({_first_line(error)})"))
            return out
        if OmegaConf.is_list(node):
            items = []
            for i in range(len(node)):
                try:
                    items.append(walk(node._get_node(i), f"{path}[{i}]") if OmegaConf.is_config(node._get_node(i))
                                 else plain(node[i]))
                except OmegaConfBaseException as error:
                    problems.append(Problem(f"{path}[{i}]", _raw(node, i),
                                            f"a resolvable value ({_first_line(error)})"))
            return items
        return plain(node)

    data = walk(cfg, "")
    if problems:
        raise SpecError(problems, source="config")
    return data


def _raw(node: Any, key: Any) -> Any:
    try:
        return node._get_node(key)._value()
    except Exception:
        return "?"
