"""Validate every job of a command line before Hydra runs anything.

Hydra reports its own errors with exit code 1 and would start a multirun's first jobs before
a later one fails; enpire promises exit code 2 with nothing run. So the overrides (each
combination of a sweep) are composed and validated here first, and then checked against this
machine (enpire.spec.environment: the tracking store, the control root, the camera; a resumed
session against its recorded run), so that a session that cannot run here is refused up front.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

from enpire import CONFIG_DIR
from enpire.spec.compose import compose_config, parse_override, syntax_problems
from enpire.spec.environment import (
    artifact_root_problems,
    control_root_problems,
    override_problems,
    run_dir_problems,
    sqlite_file,
    tracking_problems,
)
from enpire.spec.errors import IntegrityError, Problem, SpecError
from enpire.spec.load import load_spec
from enpire.spec.model import ExperimentSpec
from enpire.spec.resolvers import override_resolver_problems, resolver_problems
from enpire.spec.secrets import scrub_problems

log = logging.getLogger(__name__)

# Flags that make Hydra print something instead of running a session.
INFO_FLAGS = {"--help", "-h", "--hydra-help", "--info", "-i", "--cfg", "-c", "--shell-completion", "-sc",
              "--resolve"}
# Hydra's shell completion: its arguments (install=bash, query=bash ...) are commands, not overrides.
COMPLETION_FLAGS = {"--shell-completion", "-sc"}
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


def camera_problems(spec: ExperimentSpec) -> list[Problem]:
    """video.camera must name a camera of the task's scene (built here only when a camera is named)."""
    camera = spec.video.camera
    if camera is None:
        return []
    try:
        from enpire.world.scene import build_scene

        model = build_scene(spec).model
    except Exception:  # the world names its own problem when the session builds the scene
        log.debug("scene of task %s did not build; video.camera not checked", spec.task.name, exc_info=True)
        return []
    names = [model.camera(i).name for i in range(model.ncam)]
    if camera in names:
        return []
    return [Problem("video.camera", camera,
                    f"a camera of the {spec.task.name} scene ({', '.join(names) or 'it has none'})")]


def motion_problems(spec: ExperimentSpec) -> list[Problem]:
    """A physical robot adapter without station.confirm_motion (enpire.hardware.gates) is refused here, exit 2,
    before any station is built; stations that all run elsewhere (executor=remote) answer to their own gates."""
    remote = spec.executor.kind == "remote" and len(spec.executor.options.get("stations") or ()) >= spec.fleet
    if remote:
        return []
    from enpire.hardware import gates, registry
    from enpire.plugins import PluginError

    try:
        cls = registry.adapter_class(spec.robot.adapter)
    except PluginError:  # a driver this machine lacks: the station that builds it names the problem
        log.debug("robot.adapter %s not importable here; motion gate left to the station", spec.robot.adapter)
        return []
    return gates.motion_problems(cls, spec)


def environment_problems(spec: ExperimentSpec, stores: dict[str, list[Problem]]) -> list[Problem]:
    """What keeps a valid spec from running here: its store, a resumed session's record, control root, camera.

    `stores` caches the tracking check per URI (the jobs of a sweep share a store). A resume is
    checked against its session run (resume_spec: SpecError, or IntegrityError for a tampered
    spec) only once the store answers.
    """
    uri = spec.tracking.uri
    if uri not in stores:
        stores[uri] = tracking_problems(uri)
    problems = list(stores[uri])
    db = sqlite_file(uri)
    if spec.resume and not problems and db is not None and not db.is_file():  # MLflow would create it
        problems.append(Problem("resume", spec.resume, f"a session run in the store {uri} (no database at {db})"))
    elif spec.resume and not problems:
        from enpire.track.resume_spec import resume_spec

        try:
            spec = resume_spec(spec, report=False)
        except (SpecError, IntegrityError):
            raise
        except Exception as error:  # a store MLflow cannot read (a newer schema, a server error ...)
            problems.append(Problem("resume", spec.resume, f"a session run readable from the store {uri} "
                                                           f"({type(error).__name__}: {str(error)[:200]})"))
    if not problems:  # agent.memory_from: the other session's notebooks are in this store (enpire.agent.memory)
        problems += memory_problems(spec)
    return [*problems, *control_root_problems(dict(spec.resolved)), *artifact_root_problems(dict(spec.resolved)),
            *camera_problems(spec), *motion_problems(spec)]


def memory_problems(spec: ExperimentSpec) -> list[Problem]:
    if not any(c.get("memory_from") for c in (spec.agent, *spec.team)):
        return []  # MLflow is not imported for a session that borrows nothing
    from enpire.agent.memory import problems

    return problems(spec)


def preflight(argv: list[str], compose_only: bool = False) -> list[list[str]]:
    """Validate every job of `argv`; returns the jobs. Raises SpecError naming all problems.

    compose_only: only check that each job composes (for --cfg/--help, which print a config
    that may still fail validation, but cannot print one that does not compose). Otherwise
    each job's spec is also checked against this machine (environment_problems). A resumed
    session whose stored spec does not match its fingerprint raises IntegrityError (exit 3).
    """
    overrides, flags, config_dir = split_argv(argv)
    if flags & COMPLETION_FLAGS:
        return []  # Hydra prints the completion script (or completes a line) and runs nothing
    multirun = bool(flags & {"-m", "--multirun"})
    problems: list[Problem] = override_resolver_problems(overrides)  # hydra.run.dir=${oc.env:KEY} ...
    if not compose_only:
        problems += override_problems(overrides) + run_dir_problems(overrides)
    jobs = expand_sweeps(overrides) if multirun else [overrides]
    stores: dict[str, list[Problem]] = {}
    for job in jobs:
        try:
            if compose_only:  # --cfg ... --resolve would print oc.env resolved: refused here too
                found = resolver_problems(compose_config(job, config_dir))
            else:
                found = environment_problems(load_spec(job, config_dir), stores)
        except SpecError as error:
            found = error.problems
        prefix = f"[{' '.join(job)}] " if multirun and len(jobs) > 1 else ""
        problems += [Problem(prefix + p.path, p.value, p.expected) for p in found]
    if problems:
        raise SpecError(scrub_problems(problems), "spec or overrides")  # no secret value in any message
    return jobs
