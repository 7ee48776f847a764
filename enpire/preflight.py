"""Validate every job of a command line before Hydra runs anything.

Hydra reports its own errors with exit code 1 and would start a multirun's first jobs before
a later one fails; enpire promises exit code 2 with nothing run. So the overrides (each
combination of a sweep) are composed and validated here first.
"""

from __future__ import annotations

import itertools
from pathlib import Path

from enpire import CONFIG_DIR
from enpire.spec.compose import compose_config, parse_override, syntax_problems
from enpire.spec.errors import Problem, SpecError
from enpire.spec.load import load_spec

# Flags that make Hydra print something instead of running a session.
INFO_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--shell-completion", "-sc",
              "--resolve"}
# Flags that take a value in the next argument.
VALUED_FLAGS = {"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--cfg", "-c",
                "--package", "-p", "--info", "-i", "--experimental-rerun"}


def split_argv(argv: list[str]) -> tuple[list[str], set[str], Path]:
    """(overrides, flags, config dir) of a Hydra command line."""
    overrides, flags, config_dir = [], set(), CONFIG_DIR
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("-"):
            name, eq, value = arg.partition("=")
            flags.add(name)
            if name in VALUED_FLAGS and not eq and i + 1 < len(argv) and not argv[i + 1].startswith("-") \
                    and "=" not in argv[i + 1]:
                value = argv[i + 1]
                i += 1
            if name in ("--config-dir", "-cd") and value:
                config_dir = Path(value)
        else:
            overrides.append(arg)
        i += 1
    return overrides, flags, config_dir


def expand_sweeps(overrides: list[str]) -> list[list[str]]:
    """Every job of a basic-sweeper multirun: the cartesian product of comma lists and ranges."""
    problems = syntax_problems(overrides)
    if problems:
        raise SpecError(problems, "overrides")
    axes = []
    for o in (parse_override(text)[0] for text in overrides):
        if o is None:  # unreachable: every override parsed above
            continue
        key = o.get_key_element()
        if o.is_sweep_override():
            axes.append([f"{key}={v}" for v in o.sweep_string_iterator()])
        else:
            axes.append([o.input_line])
    return [list(combo) for combo in itertools.product(*axes)]


def preflight(argv: list[str], compose_only: bool = False) -> list[list[str]]:
    """Validate every job of `argv`; returns the jobs. Raises SpecError naming all problems.

    compose_only: only check that each job composes (for --cfg/--help, which print a config
    that may still fail validation, but cannot print one that does not compose).
    """
    check = compose_config if compose_only else load_spec
    overrides, flags, config_dir = split_argv(argv)
    multirun = bool(flags & {"-m", "--multirun"})
    jobs = expand_sweeps(overrides) if multirun else [overrides]
    problems: list[Problem] = []
    for job in jobs:
        try:
            check(job, config_dir)
        except SpecError as error:
            prefix = f"[{' '.join(job)}] " if multirun and len(jobs) > 1 else ""
            problems += [Problem(prefix + p.path, p.value, p.expected) for p in error.problems]
    if problems:
        raise SpecError(problems, "spec or overrides")
    return jobs
