"""compose -> resolve -> scrub secrets -> validate -> semantic checks -> frozen ExperimentSpec.

Scrubbing (enpire.spec.secrets) replaces the value of any secret environment variable that
reached the resolved spec or the overrides (a key pasted into session.name, say) with
`<redacted:$NAME>` before the spec is validated, fingerprinted and handed to the tracker, and
takes secrets out of every problem message. Resolvers that read the environment never get
that far: enpire.spec.compose refuses them.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from enpire import CONFIG_DIR
from enpire.spec import fingerprint
from enpire.spec.compose import compose_partial, resolve
from enpire.spec.errors import Problem, SpecError
from enpire.spec.extras import extras_problems
from enpire.spec.model import ExperimentSpec, Fingerprints, build
from enpire.spec.schemas import validate
from enpire.spec.secrets import scrub, scrub_problems, scrubbed_paths, secret_values
from enpire.spec.semantic import semantic_problems
from enpire.spec.task_elements import element_problems
from enpire.spec.team import resolve_team


def resolve_mjcf(doc: dict[str, Any], config_dir: Path | str) -> list[Problem]:
    """`task.mjcf` relative to a config dir on the search path -> the absolute path every process uses."""
    task = doc.get("task")
    rel = task.get("mjcf") if isinstance(task, dict) else None
    if not isinstance(rel, str) or not rel:
        return []
    from enpire.world.declarative import find_mjcf

    try:
        task["mjcf"] = str(find_mjcf(rel, config_dir))
    except FileNotFoundError as error:
        return [Problem("task.mjcf", rel, f"an MJCF file relative to a config directory ({error})")]
    return []

def resolve_weights(doc: dict[str, Any]) -> None:
    """`done.classifier.weights` relative to the working directory -> absolute, in the resolved spec, so station
    processes, Ray workers, remote stations and a resume elsewhere fingerprint and load the same file."""
    done = doc.get("done")
    classifier = done.get("classifier") if isinstance(done, dict) else None
    weights = classifier.get("weights") if isinstance(classifier, dict) else None
    if isinstance(weights, str) and weights and not Path(weights).expanduser().is_absolute():
        classifier["weights"] = str(Path(weights).expanduser().resolve())


HYDRA_KEY = "hydra"
log = logging.getLogger(__name__)


def check_document(doc: dict[str, Any]) -> None:
    """Raise SpecError with every problem of a resolved experiment document."""
    problems = validate(doc, "experiment")
    problems += semantic_problems(doc, skip_groups={p.path.split(".")[0].split("[")[0] for p in problems})
    if problems:
        raise SpecError(problems)


def spec_from_config(cfg: DictConfig | dict[str, Any], overrides: tuple[str, ...] = (),
                     config_dir: Path | str = CONFIG_DIR, check_extras: bool = True) -> ExperimentSpec:
    """The frozen spec of a composed config. `check_extras=False` (enpire.validate) accepts options whose
    optional packages are not installed here: the config is valid, only this machine cannot run it."""
    try:
        doc = resolve(cfg) if isinstance(cfg, DictConfig) else dict(cfg)
    except SpecError as error:
        raise SpecError(scrub_problems(error.problems), error.source) from None
    doc.pop(HYDRA_KEY, None)
    doc, overrides = _scrubbed(doc, overrides)
    team_problems = resolve_team(doc, config_dir)  # team=[claude,search]: names -> agent configs
    team_problems += resolve_mjcf(doc, config_dir)  # a declarative task's arena: an absolute path from here on
    resolve_weights(doc)  # the classifier's weights: one absolute path for every process and fingerprint
    try:
        check_document(doc)
    except SpecError as error:
        unknown = tuple(p.path for p in team_problems)  # names already reported; their schema errors are noise
        raise SpecError(scrub_problems(team_problems + [p for p in error.problems
                                                        if not p.path.startswith(unknown)])) from None
    if team_problems:
        raise SpecError(scrub_problems(team_problems))
    if missing_elements := element_problems(doc):  # names in `from:` / `set:` that the arena does not have
        raise SpecError(missing_elements)
    if check_extras and (missing := extras_problems(doc)):
        raise SpecError(missing)
    prints = Fingerprints(
        done_sha256=fingerprint.done_sha256(doc["done"], doc["task"]),
        safety_sha256=fingerprint.safety_sha256(doc["safety"], doc["robot"]),
        spec_sha256=fingerprint.spec_sha256(doc),
    )
    return build(doc, prints, overrides)


def _scrubbed(doc: dict[str, Any], overrides: tuple[str, ...]) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The document and overrides with every secret value of the environment redacted (logged by key path)."""
    known = secret_values()
    where = scrubbed_paths(doc, known) + [f"overrides[{i}]" for i, o in enumerate(overrides)
                                          if scrubbed_paths(o, known)]
    if not where:
        return doc, overrides
    log.warning("the value of a secret environment variable was found at %s; recorded as <redacted:$NAME>",
                ", ".join(where))
    return scrub(doc, known), tuple(scrub(list(overrides), known))


def load_spec(overrides: list[str] | tuple[str, ...] = (), config_dir: Path | str = CONFIG_DIR) -> ExperimentSpec:
    """The frozen spec of `overrides` applied to the configs in `config_dir`.

    Raises SpecError with every problem: overrides that do not compose are set aside so the
    rest can still be resolved and checked, and their problems reported together.
    """
    cfg, problems = compose_partial(overrides, config_dir)
    if cfg is not None:
        try:
            spec = spec_from_config(cfg, tuple(overrides), config_dir)
        except SpecError as error:
            seen = {p.path for p in problems}
            problems += [p for p in error.problems if p.path not in seen]
        else:
            if not problems:
                return spec
    raise SpecError(scrub_problems(problems), source="spec or overrides")
