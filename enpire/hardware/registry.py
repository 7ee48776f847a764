"""Which adapter class a robot config names (`robot.adapter`), resolved the way plugin parts are.

`robot.adapter` is one of:
- `mujoco`: the simulated robot (enpire.hardware.mujoco_adapter.MujocoAdapter), the default;
- a name registered in this process (`register_adapter`, kept in the plugin registry, enpire.plugins, under
  the kind "adapters"), e.g. by a plugin module or a test;
- an import path `module:Class`, the form every plugin part uses: a plugin that brings its own arm ships a
  robot config naming its adapter this way (its builder module importing the class keeps the adapter's source
  in safety_sha256, docs/stations.md).
The class is imported when a station is built, never when a config is validated, so a config naming a real
arm validates on a machine without its driver.
"""

from __future__ import annotations

import importlib

from enpire import plugins
from enpire.hardware.adapter import RobotAdapter

KIND = "adapters"
BUILTIN: dict[str, str] = {"mujoco": "enpire.hardware.mujoco_adapter:MujocoAdapter"}


def register_adapter(cls: type[RobotAdapter]) -> type[RobotAdapter]:
    """Register an adapter class under its `name` (a decorator), for `robot.adapter: <name>`."""
    plugins.register(KIND, cls.name, cls)
    return cls


def _import(path: str) -> type[RobotAdapter]:
    module, _, attr = path.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as error:
        raise plugins.PluginError(f"robot.adapter {path!r}: cannot be imported ({type(error).__name__}: "
                                  f"{error})") from error


def adapter_class(ref: str) -> type[RobotAdapter]:
    """The adapter class `robot.adapter` names; PluginError naming the key when there is none."""
    if ":" in ref:
        return _import(ref)
    if ref in BUILTIN:
        return _import(BUILTIN[ref])
    try:
        return plugins.resolve(KIND, ref)
    except (KeyError, AttributeError):  # AttributeError: no plugin declares adapters (a registration-only kind)
        raise plugins.PluginError(f"robot.adapter: got {ref!r}; expected one of {sorted(BUILTIN)}, a name given "
                                  "to enpire.hardware.registry.register_adapter, or an import path "
                                  "module:Class") from None
