"""compose -> resolve -> validate -> semantic checks -> frozen ExperimentSpec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from enpire import CONFIG_DIR
from enpire.spec import fingerprint
from enpire.spec.compose import compose_config, resolve
from enpire.spec.errors import SpecError
from enpire.spec.model import ExperimentSpec, Fingerprints, build
from enpire.spec.schemas import validate
from enpire.spec.semantic import semantic_problems

HYDRA_KEY = "hydra"


def check_document(doc: dict[str, Any]) -> None:
    """Raise SpecError with every problem of a resolved experiment document."""
    problems = validate(doc, "experiment")
    if not problems:
        problems = semantic_problems(doc)
    if problems:
        raise SpecError(problems)


def spec_from_config(cfg: DictConfig | dict[str, Any], overrides: tuple[str, ...] = ()) -> ExperimentSpec:
    doc = resolve(cfg) if isinstance(cfg, DictConfig) else dict(cfg)
    doc.pop(HYDRA_KEY, None)
    check_document(doc)
    prints = Fingerprints(
        done_sha256=fingerprint.done_sha256(doc["done"]),
        safety_sha256=fingerprint.safety_sha256(doc["safety"], doc["robot"]),
        spec_sha256=fingerprint.spec_sha256(doc),
    )
    return build(doc, prints, overrides)


def load_spec(overrides: list[str] | tuple[str, ...] = (), config_dir: Path | str = CONFIG_DIR) -> ExperimentSpec:
    """The frozen spec of `overrides` applied to the configs in `config_dir`. Raises SpecError."""
    return spec_from_config(compose_config(overrides, config_dir), tuple(overrides))
