"""The config files as written: each valid against its own `$schema` the way an editor reads it,
and experiment overlays composed over the root config (their values win)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from enpire import CONFIG_DIR, SPECS_DIR
from enpire.spec.compose import compose_config
from enpire.spec.search_path import config_dirs

MODELINE = re.compile(r"^#\s*yaml-language-server:\s*\$schema=(\S+)\s*$", re.M)
ROOTS = config_dirs()  # the primary conf/ and every task folder's conf/ (and any installed plugin's)
FILES = sorted(f for root in ROOTS for f in root.rglob("*.yaml"))
HYDRA_OWN = CONFIG_DIR / "hydra"  # Hydra's launcher configs: Hydra's keys, no enpire schema


def _registry() -> Registry:
    resources = []
    for path in SPECS_DIR.glob("*.schema.json"):
        contents = json.loads(path.read_text())
        resource = Resource.from_contents(contents)
        resources += [(contents["$id"], resource), (path.name, resource)]
    return Registry().with_resources(resources)


def _label(path: Path) -> str:
    return str(path.relative_to(next(r for r in ROOTS if path.is_relative_to(r)).parent))


@pytest.mark.parametrize("path", FILES, ids=[_label(p) for p in FILES])
def test_every_config_file_is_valid_against_its_own_schema(path: Path) -> None:
    """What yaml-language-server shows: the raw YAML (defaults list, hydra keys, `${...}` as strings)."""
    text = path.read_text()
    found = MODELINE.search(text)
    if path.is_relative_to(HYDRA_OWN):
        assert found is None, "Hydra's own configs have no enpire schema"
        return
    assert found, f"{path.name}: no `# yaml-language-server: $schema=` comment"
    schema_path = (path.parent / found.group(1)).resolve()
    assert schema_path.is_file() and schema_path.parent == SPECS_DIR.resolve(), schema_path  # a plugin's may differ
    schema = json.loads(schema_path.read_text())
    validator = Draft202012Validator(schema, registry=_registry())
    errors = [f"{'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}"
              for e in validator.iter_errors(yaml.safe_load(text))]
    assert errors == [], f"{_label(path)} against {schema_path.name}: {errors}"


def _leaves(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        return {k: v for key, child in node.items() for k, v in _leaves(child, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): node}


OVERLAYS = sorted((CONFIG_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("path", OVERLAYS, ids=[p.stem for p in OVERLAYS])
def test_an_experiment_overlay_wins_over_the_root_config(path: Path) -> None:
    """experiment=debug keeps video off and experiment=drawer_fleet4 has four stations: every value an
    overlay sets, root keys included, is what composes."""
    overlay = yaml.safe_load(path.read_text())
    values = _leaves({k: v for k, v in overlay.items() if k not in ("defaults", "hydra")})
    assert values, f"{path.name} sets no values"
    cfg = compose_config([f"experiment={path.stem}"])
    for key, value in values.items():
        node: Any = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, f"experiment={path.stem}: {key} composed as {node!r}, the overlay sets {value!r}"


def test_an_overlay_that_sets_a_root_key_wins(tmp_path: Path) -> None:
    """The same for a root key the shipped overlays do not touch (seed), in a copy of conf/."""
    conf = tmp_path / "conf"
    shutil.copytree(CONFIG_DIR, conf)
    (conf / "experiment" / "seeded.yaml").write_text("# @package _global_\nseed: 7\nsession:\n  notes: seeded\n")
    cfg = compose_config(["experiment=seeded"], conf)
    assert cfg.seed == 7 and cfg.session.notes == "seeded"
    assert compose_config(["experiment=seeded", "seed=3"], conf).seed == 3  # the command line still wins
