"""`python -m enpire.validate [--config-dir DIR]`: every config option and shipped combination
against specs/. Exit 0 only when everything passes; errors in the same format as a session's.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

from enpire import CONFIG_DIR
from enpire.plugins import ONLY_CONFIG_DIR_ENV, PluginError, plugins
from enpire.spec.compose import compose_config, resolve
from enpire.spec.errors import EXIT_INVALID_SPEC, Problem, SpecError
from enpire.spec.load import spec_from_config
from enpire.spec.schemas import GROUPS, validate
from enpire.spec.search_path import group_options, option_file
from enpire.spec.semantic import unmet_requirements

COMBINED = ("agent", "budget", "executor")


def options(config_dir: Path, group: str) -> list[str]:
    """Options of a group on the whole search path: the config dir, then every plugin's (enpire.plugins)."""
    return group_options(group, config_dir)


def _yaml(config_dir: Path, group: str, option: str) -> dict:
    """An option's own file as data; {} when it does not parse (composing it reports why)."""
    path = option_file(group, option, config_dir)
    try:
        doc = yaml.safe_load(path.read_text()) if path else None
    except (OSError, yaml.YAMLError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _compatible(config_dir: Path, task: str, robot: str) -> bool:
    """Whether a robot option meets a task option's `requires` (as the session's semantic check decides)."""
    t, r = _yaml(config_dir, "task", task), _yaml(config_dir, "robot", robot)
    requires = t.get("requires") if isinstance(t.get("requires"), list) else []
    try:
        return not unmet_requirements([x for x in requires if isinstance(x, str)], r)
    except (KeyError, TypeError, ValueError):
        return False


def _task_of(config_dir: Path, group: str, option: str) -> str | None:
    """A task that suits a group option, so it can be composed (the first task a robot suits, etc.)."""
    tasks = options(config_dir, "task")
    if group == "robot":
        ok = [t for t in tasks if _compatible(config_dir, t, option)]
        return ok[0] if ok else None
    base = option.removesuffix("_scripted")
    return base if base in tasks else None


def _group_jobs(config_dir: Path) -> Iterator[tuple[str, list[str]]]:
    for group in (*GROUPS, "experiment"):
        for option in options(config_dir, group):
            task = _task_of(config_dir, group, option)
            overrides = ([f"task={task}"] if task and group != "task" else []) + [f"{group}={option}"]
            yield f"{group}/{option}", overrides


def _combination_jobs(config_dir: Path) -> Iterator[tuple[str, list[str]]]:
    choices = [options(config_dir, g) for g in COMBINED]
    for task in options(config_dir, "task"):
        for robot in options(config_dir, "robot"):
            if not _compatible(config_dir, task, robot):
                continue
            for combo in itertools.product(*choices):
                ov = [f"task={task}", f"robot={robot}", *(f"{g}={o}" for g, o in zip(COMBINED, combo))]
                yield " ".join(ov), ov


def check(job: tuple[str, list[str], str, str | None]) -> tuple[str, list[Problem]]:
    """Problems of one job: the composed spec, or only one group's node against its schema."""
    label, overrides, config_dir, group = job
    try:
        cfg = compose_config(overrides, config_dir)
        if group in GROUPS:
            doc = resolve(cfg)
            return label, validate(doc[group], group, prefix=group)
        spec_from_config(cfg, tuple(overrides), config_dir, check_extras=False)  # valid even where an extra is missing
        return label, []
    except SpecError as error:
        return label, error.problems
    except Exception as error:  # a crash on one odd file must not hide the other results
        return label, [Problem("<config>", label, f"a config that loads ({type(error).__name__}: {error})")]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m enpire.validate",
        description="Check every option of every config group, and every combination (each task with each "
                    "robot that meets its `requires`, and every agent, budget and executor), against specs/: the "
                    "config dir's options and those of every installed plugin (enpire.plugins), whose own "
                    "options are checked against the plugin's schemas.")
    parser.add_argument("--config-dir", type=Path, default=CONFIG_DIR, help="config directory (default: %(default)s)")
    parser.add_argument("--only-config-dir", action="store_true",
                        help="search only --config-dir, not the plugins' config dirs (a dir that holds every option, "
                             "e.g. one made by enpire.spec.search_path.copy_configs)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel processes (default: %(default)s)")
    args = parser.parse_args(argv)
    config_dir = args.config_dir.resolve()
    before = os.environ.get(ONLY_CONFIG_DIR_ENV)
    if args.only_config_dir:
        os.environ[ONLY_CONFIG_DIR_ENV] = "1"  # read by every worker process too
    try:
        return _run(config_dir, args.jobs)
    except PluginError as error:
        print(f"enpire.validate: {error}", file=sys.stderr)
        return EXIT_INVALID_SPEC
    finally:
        if before is None:
            os.environ.pop(ONLY_CONFIG_DIR_ENV, None)
        else:
            os.environ[ONLY_CONFIG_DIR_ENV] = before


def _run(config_dir: Path, n_jobs: int) -> int:
    if not (config_dir / "config.yaml").is_file():
        print(f"enpire.validate: {config_dir}: no config.yaml here", file=sys.stderr)
        return 2
    jobs = [(label, ov, str(config_dir), label.split("/")[0]) for label, ov in _group_jobs(config_dir)]
    n_options = len(jobs)
    jobs += [(label, ov, str(config_dir), None) for label, ov in _combination_jobs(config_dir)]
    failed = 0
    with ProcessPoolExecutor(max_workers=max(1, n_jobs)) as pool:
        for label, problems in pool.map(check, jobs, chunksize=8):
            if problems:
                failed += 1
                print(f"FAIL {label}: " + SpecError(problems).render(), file=sys.stderr)
    n_combos = len(jobs) - n_options
    print(f"validated {n_options} group options and {n_combos} combinations against specs/: "
          f"{len(jobs) - failed} passed, {failed} failed (plugins: {', '.join(p.name for p in plugins())})")
    return EXIT_INVALID_SPEC if failed else 0


if __name__ == "__main__":
    sys.exit(main())
