"""Fingerprints of what must not move during a session: the judge, all of it.

done_sha256 covers the resolved done criteria and every file that decides success: the
verifier, the keep and /done rules with the candidate pooling (`enpire/judge/*.py`), the code
that resets, runs and scores a trial (scene, reset, rollout, station) and the session's task
itself: the modules its Task and TaskPhysics classes come from (the named quantities), the
helpers those modules import, the arena MJCF and every file reading the arena opens (includes,
meshes, textures).

safety_sha256 covers the envelope with the robot limits it refers to, the code that enforces
it (envelope, controller, rollout, station, scene binding, estop) and the robot's model: the
modules of its builder class and every file building its MJCF opens (dm-control's Jaco XML and
meshes included).

spec_sha256 is the whole resolved spec.

The task is the one `done.name` names (enpire.spec.semantic requires done.name == task.name),
the robot the one `robot.name` names; both are looked up in their registries
(enpire.plugins), so a task or robot from a plugin is covered the same way as the shipped ones;
a declarative task (no class) by its yaml, enpire/world/declarative.py, enpire/world/quantities.py
and its MJCF. The list of files of a task or robot is
found once per process (its arena or model is built once, with the files it opens recorded);
file contents are hashed again whenever a file's stat signature (inode, size, mtime, ctime)
changes, so the loop's check every second costs a few `stat` calls. `judged_files(doc)` lists
every file of both fingerprints; `changed_files()` names those whose content differs from the
first time this process hashed them (what an integrity breach should report).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import os
import sys
import threading
import time
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from enpire import PROJECT_ROOT
from enpire.spec.frozen import thaw

_JUDGE = tuple(sorted(f"enpire/judge/{p.name}" for p in (PROJECT_ROOT / "enpire" / "judge").glob("*.py")))
# Files of both fingerprints that do not depend on the spec (relative to PROJECT_ROOT, or absolute).
DONE_SOURCES: tuple[str, ...] = (
    "enpire/world/verifier.py",
    *_JUDGE,
    "enpire/world/task.py",
    "enpire/world/quantities.py",
    "enpire/world/declarative.py",
    "enpire/world/task_factory.py",
    "enpire/plugins.py",
    "enpire/world/scene.py",
    "enpire/world/reset.py",
    "enpire/world/rollout.py",
    "enpire/world/station.py",
)
SAFETY_SOURCES: tuple[str, ...] = (
    "enpire/world/envelope.py",
    "enpire/world/controller.py",
    "enpire/world/rollout.py",
    "enpire/world/station.py",
    "enpire/world/scene.py",
    "enpire/world/robot_binding.py",
    "enpire/world/robots/base.py",
    "enpire/world/estop.py",
    # the adapter seam every robot moves through (controller -> envelope -> adapter.send_command)
    "enpire/hardware/adapter.py",
    "enpire/hardware/mujoco_adapter.py",
    "enpire/hardware/gates.py",
    "enpire/hardware/mirror.py",
    "enpire/hardware/registry.py",
)
# Opened while a model builds but not model files: a lazy import there must not change the list.
CODE_SUFFIXES = frozenset({".py", ".pyc", ".pyo", ".so", ".pyd", ".pth"})
RACY_NS = 2_000_000_000  # a file changed this recently is hashed again next time (timestamps are coarse)


def canonical_json(value: Any) -> str:
    return json.dumps(thaw(value), sort_keys=True, separators=(",", ":"), allow_nan=False)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- file digests -----------------------------------------------------------------------------
_lock = threading.Lock()
_digests: dict[str, tuple[tuple[int, ...], str, bool]] = {}  # path -> (stat signature, digest, trusted)
_first: dict[str, str] = {}  # path -> the digest this process saw first


def _digest(path: Path) -> str:
    """sha256 of a file's bytes ('<missing>' / '<unreadable>'), cached while its stat signature holds."""
    key = str(path)
    try:
        st = os.stat(path)
    except OSError:
        digest = "<missing>"
    else:
        sig = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        with _lock:
            cached = _digests.get(key)
        if cached is not None and cached[0] == sig and cached[2]:
            digest = cached[1]
        else:
            try:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            except OSError:
                digest = "<unreadable>"
            trusted = time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS
            with _lock:
                _digests[key] = (sig, digest, trusted)
    with _lock:
        _first.setdefault(key, digest)
    return digest


@functools.lru_cache(maxsize=4096)
def _label(path: Path) -> str:
    """A name for a file that does not depend on where the project or the venv lives.

    Relative to the deepest of PROJECT_ROOT and the installed-package directories (site-packages,
    dist-packages) that holds it (a venv inside the project counts as the venv), else the absolute
    path. Other import path entries do not count: a process that adds one must not relabel files.
    """
    roots = {
        PROJECT_ROOT,
        *(Path(p) for p in sys.path if os.path.isabs(p) and Path(p).name in ("site-packages", "dist-packages")),
    }
    best = max((r for r in roots if path.is_relative_to(r)), key=lambda r: len(r.parts), default=None)
    return path.relative_to(best).as_posix() if best is not None else path.as_posix()


def _path(p: str | Path) -> Path:
    return Path(p) if Path(p).is_absolute() else PROJECT_ROOT / p


def _files_text(paths: Iterable[Path]) -> str:
    unique = sorted({str(p): p for p in paths}.values(), key=_label)
    return "".join(f"\n# {_label(p)} {_digest(p)}" for p in unique)


def changed_files() -> list[str]:
    """Files whose content now differs from the first time this process hashed them (labels)."""
    with _lock:
        first = dict(_first)
    return sorted(_label(Path(p)) for p, digest in first.items() if _digest(Path(p)) != digest)


# -- files found from the registries ----------------------------------------------------------
_trace = threading.local()
_hooked = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    seen = getattr(_trace, "seen", None)
    if seen is not None and event == "open" and args and isinstance(args[0], str | bytes | os.PathLike):
        seen.add(os.path.abspath(os.fsdecode(args[0])))


def _opened_while(build: Any) -> tuple[set[Path], str]:
    """(files opened by this thread while `build()` ran, '' or the error it raised)."""
    global _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # inert unless a thread is tracing: one attribute read per audit event
        _hooked = True
    _trace.seen = set()
    error = ""
    try:
        build()
    except Exception as exc:  # noqa: BLE001 - a model that does not build still gets a fingerprint
        error = f"{type(exc).__name__}: {str(exc)[:200]}"
    finally:
        seen, _trace.seen = _trace.seen, None
    return {Path(p) for p in seen if Path(p).suffix not in CODE_SUFFIXES and Path(p).is_file()}, error


def _module_file(obj: Any) -> Path | None:
    module = inspect.getmodule(obj)
    name = getattr(module, "__name__", "")
    if module is None or name.split(".")[0] in sys.stdlib_module_names or name == "builtins":
        return None
    file = getattr(module, "__file__", None)
    return Path(file).resolve() if file else None


def code_files(classes: Iterable[type]) -> set[Path]:
    """Source files of `classes` and their bases, plus what those modules import by name.

    Imported functions and classes count wherever they come from (a quantity may be computed by
    a helper); imported modules only when they belong to the same top-level package. The
    standard library is left out.
    """
    roots = {c for cls in classes for c in cls.__mro__ if _module_file(c) is not None}
    files: set[Path] = set()
    for cls in roots:
        module = inspect.getmodule(cls)
        top = module.__name__.split(".")[0] if module else ""
        own = _module_file(cls)
        if own is not None:
            files.add(own)
        for value in vars(module).values() if module else ():
            if isinstance(value, type | types.FunctionType) or (
                isinstance(value, types.ModuleType) and value.__name__.split(".")[0] == top
            ):
                found = _module_file(value)
                if found is not None:
                    files.add(found)
    return files


@functools.cache
def _files_of_task_class(cls: type) -> tuple[tuple[Path, ...], str]:
    files = code_files([cls, getattr(cls, "physics_class", object)])
    if _module_file(cls) is not None:
        files.add(cls.arena_file().resolve())
    opened, error = _opened_while(lambda: cls.__new__(cls).arena())
    return tuple(sorted(files | opened)), error


@functools.cache
def _files_of_robot_class(cls: type) -> tuple[tuple[Path, ...], str]:
    opened, error = _opened_while(lambda: cls().build())
    return tuple(sorted(code_files([cls]) | opened)), error


def task_files(name: str, mjcf_path: str | None = None) -> tuple[tuple[Path, ...], str]:
    """(files of task `name`, '' or why they are incomplete): a registered task's classes, modules and
    arena, or, for a declarative task (`mjcf_path`, as the spec resolved it), its MJCF and what it opens."""
    from enpire import plugins
    from enpire.world.task_factory import task_class

    if name not in plugins.names("tasks"):
        if mjcf_path:
            return _files_of_declarative_task(mjcf_path)
        return (), f"task {name!r} is not registered"
    try:
        cls = task_class(name)
    except plugins.PluginError as error:
        return (), str(error)
    return _files_of_task_class(cls)


@functools.cache
def _files_of_declarative_task(mjcf_path: str) -> tuple[tuple[Path, ...], str]:
    """A task with no class: its MJCF and every file building the arena opens (includes, meshes)."""
    from dm_control import mjcf

    arena = Path(mjcf_path)
    if not arena.is_file():
        return (), f"task.mjcf {mjcf_path}: no such file"
    opened, error = _opened_while(lambda: mjcf.from_path(str(arena)))
    return tuple(sorted({arena, *opened})), error


def robot_files(name: str) -> tuple[tuple[Path, ...], str]:
    """(files of the registered robot `name`, '' or why they are incomplete)."""
    from enpire import plugins

    try:
        cls = plugins.resolve("robots", name)
    except KeyError:
        return (), f"robot {name!r} is not registered"
    except plugins.PluginError as error:
        return (), str(error)
    return _files_of_robot_class(cls)


def _verifier_files(kind: str) -> tuple[list[Path], str]:
    """The module of the verifier class `done.verifier` names (the shipped one is in DONE_SOURCES too)."""
    from enpire import plugins

    try:
        return sorted(code_files([plugins.resolve("verifiers", kind)])), ""
    except KeyError:
        return [], f"verifier {kind!r} is not registered"
    except plugins.PluginError as error:
        return [], str(error)


def _done_files(done: Any, task: Any = None) -> tuple[list[Path], str]:
    mjcf_path = (thaw(task) or {}).get("mjcf") if task is not None else None
    files, note = task_files(str(thaw(done).get("name")), mjcf_path)
    kind = str(thaw(done).get("verifier", "predicate"))
    verifier, why = _verifier_files(kind)
    if kind == "classifier":  # the frozen detector: its weights file is judged like code (enpire.detector)
        from enpire.detector.files import done_weights_path

        weights = done_weights_path(thaw(done))
        verifier, why = ([*verifier, weights], why) if weights is not None else (verifier, why or "no weights file")
    files, note = (*files, *verifier), "; ".join(n for n in (note, why) if n)
    return [*map(_path, DONE_SOURCES), *files], note


def _safety_files(robot: Any) -> tuple[list[Path], str]:
    files, note = robot_files(str(thaw(robot).get("name")))
    return [*map(_path, SAFETY_SOURCES), *files], note


def judged_files(doc: Any) -> dict[str, list[str]]:
    """{'done': labels, 'safety': labels}: every file the two fingerprints of a resolved spec cover."""
    doc = thaw(doc)
    done, _ = _done_files(doc["done"], doc.get("task"))
    safety, _ = _safety_files(doc["robot"])
    return {"done": sorted({_label(p) for p in done}), "safety": sorted({_label(p) for p in safety})}


def file_digests(doc: Any) -> dict[str, dict[str, str]]:
    """{'done': {label: sha256}, 'safety': {...}}: what a session may record at launch (e.g. as the artifact
    `spec/judged_files.json`), so a refused resume can name the files that changed since."""
    doc = thaw(doc)
    out = {}
    kinds = (("done", _done_files(doc["done"], doc.get("task"))), ("safety", _safety_files(doc["robot"])))
    for kind, (files, _) in kinds:
        out[kind] = {_label(p): _digest(p) for p in sorted({str(p): p for p in files}.values(), key=_label)}
    return out


def differing_files(recorded: dict[str, dict[str, str]], now: dict[str, dict[str, str]], kind: str) -> list[str]:
    """Labels of `kind` files added, removed or changed between two file_digests() results."""
    a, b = recorded.get(kind, {}), now.get(kind, {})
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


# -- the fingerprints -------------------------------------------------------------------------
def done_sha256(done: Any, task: Any = None) -> str:
    """The done criteria, the judge's code and the task (code + MJCF + assets) named by done.name."""
    files, note = _done_files(done, task)
    return _sha(canonical_json(done) + _files_text(files) + (f"\n! {note}" if note else ""))


def safety_sha256(safety: Any, robot: Any) -> str:
    """The envelope with the robot limits it refers to, the enforcing code and the robot's model."""
    limits = {"safety": thaw(safety), "actuator_force_range_nm": thaw(robot)["actuator_force_range_nm"]}
    files, note = _safety_files(robot)
    return _sha(canonical_json(limits) + _files_text(files) + (f"\n! {note}" if note else ""))


def spec_sha256(doc: Any) -> str:
    return _sha(canonical_json(doc))
