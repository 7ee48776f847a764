"""Which executor backend a spec asks for (`executor.kind`): inline, local processes, or Ray actors.

A module of its own so the backends import the shared executor code and nothing imports back
(enpire.fleet.executor <- local / ray_executor <- this factory): no import cycle.
"""

from __future__ import annotations

from enpire.fleet.executor import STATION_FACTORY, Executor, InlineExecutor
from enpire.spec.model import ExperimentSpec


def make_executor(spec: ExperimentSpec, factory: str = STATION_FACTORY) -> Executor:
    if spec.executor.kind == "inline":
        return InlineExecutor(spec, factory)
    if spec.executor.kind == "local":
        from enpire.fleet.local import LocalExecutor

        return LocalExecutor(spec, factory)
    if spec.executor.kind == "ray":
        from enpire.fleet.ray_executor import RayExecutor  # Ray is imported only when used

        return RayExecutor(spec, factory)
    raise ValueError(f"executor.kind: got {spec.executor.kind!r}; expected 'local', 'inline' or 'ray'")
