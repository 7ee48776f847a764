"""The Task object a spec names: a task class some plugin registers (enpire.plugins), or a
declarative task when the task yaml names its own MJCF (`mjcf:`)."""

from __future__ import annotations

import inspect
from types import ModuleType

from enpire import plugins
from enpire.spec.model import TaskSpec
from enpire.world.task import Task


def register_task(cls: type[Task]) -> type[Task]:
    """Register a task class defined in an already imported module (tests, notebooks)."""
    if getattr(cls, "name", None) is None or getattr(cls, "xml", None) is None:
        raise TypeError(f"{cls.__name__}: a task needs class attributes `name` and `xml`")
    plugins.register("tasks", cls.name, cls)
    return cls


def task_class(name: str) -> type[Task]:
    """The registered class of task `name` (imports its module now)."""
    found = plugins.resolve("tasks", name)
    if isinstance(found, ModuleType):
        matches = [c for _, c in inspect.getmembers(found, inspect.isclass)
                   if issubclass(c, Task) and c.__module__ == found.__name__ and getattr(c, "name", None) == name]
        if not matches:
            raise plugins.PluginError(f"task {name!r}: module {found.__name__} defines no Task subclass "
                                      f"with name = {name!r}")
        found = matches[0]
    if not (isinstance(found, type) and issubclass(found, Task)):
        raise plugins.PluginError(f"task {name!r}: {plugins.target('tasks', name)} is not a Task subclass")
    return found


def make_task(spec: TaskSpec) -> Task:
    if spec.mjcf is not None and spec.name not in plugins.names("tasks"):
        from enpire.world.declarative import DeclarativeTask

        return DeclarativeTask(spec)
    try:
        return task_class(spec.name)(spec)
    except KeyError:
        known = ", ".join(plugins.names("tasks"))
        raise ValueError(f"task.name: got {spec.name!r}; expected a registered task ({known}) "
                         "or a task yaml with `mjcf:`") from None
