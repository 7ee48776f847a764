"""Which executor backend a spec asks for (`executor.kind`): inline, local processes, Ray actors,
or a plugin's (enpire.plugins). Every backend is built as cls(spec, factory).

A module of its own so the backends import the shared executor code and nothing imports back
(enpire.fleet.executor <- local / ray_executor <- this factory): no import cycle. Ray is
imported only when `executor=ray` is used.
"""

from __future__ import annotations

from enpire import plugins
from enpire.fleet.executor import STATION_FACTORY, Executor
from enpire.spec.model import ExperimentSpec


def make_executor(spec: ExperimentSpec, factory: str = STATION_FACTORY) -> Executor:
    try:
        cls = plugins.resolve("executors", spec.executor.kind)
    except KeyError:
        raise ValueError(f"executor.kind: got {spec.executor.kind!r}; expected one of "
                         f"{plugins.names('executors')}") from None
    return cls(spec, factory)
