"""Where Ray may place each station actor: the placement keys of `conf/executor/ray.yaml`, read once.

- `resources`: custom Ray resources every station actor needs (`{enpire_station: 1}`): only nodes started
  with them (`ray start --resources='{"enpire_station": 4}'`) host stations, and a replacement goes to any
  node that still has one free.
- `station_resources`: per station index, more resources that pin the station to some nodes
  (`[{rack_a: 1}, {rack_b: 1}]`: station 0 where `rack_a` is, station 1 where `rack_b` is). A station
  pinned to a node that is gone cannot be replaced; it is marked faulty after `start_timeout_s`.
- `placement`: `spread` (default: stations over as many nodes as possible, Ray's SPREAD strategy) or
  `pack` (Ray's default: fill one node first).
- `start_timeout_s`: a station (or its replacement) still not placed and ready after this leaves the rotation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from enpire.spec.model import ExperimentSpec

STRATEGIES = {"spread": "SPREAD", "pack": "DEFAULT"}
DEFAULT_START_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class RayPlacement:
    num_cpus: float
    resources: dict[str, float] = field(default_factory=dict)
    station_resources: tuple[dict[str, float], ...] = ()
    placement: str = "spread"
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S

    @classmethod
    def from_spec(cls, spec: ExperimentSpec) -> RayPlacement:
        opts = spec.executor.options
        per_station = tuple(_amounts(f"executor.station_resources[{i}]", r)
                            for i, r in enumerate(opts.get("station_resources") or ()))
        if len(per_station) > spec.fleet:
            raise ValueError(f"executor.station_resources: got {len(per_station)} entries for fleet={spec.fleet}; "
                             f"expected at most one per station")
        placement = str(opts.get("placement") or "spread")
        if placement not in STRATEGIES:
            raise ValueError(f"executor.placement: got {placement!r}; expected one of {sorted(STRATEGIES)}")
        return cls(num_cpus=spec.executor.num_cpus_per_station,
                   resources=_amounts("executor.resources", opts.get("resources") or {}),
                   station_resources=per_station, placement=placement,
                   start_timeout_s=float(opts.get("start_timeout_s") or DEFAULT_START_TIMEOUT_S))

    def resources_of(self, index: int) -> dict[str, float]:
        """The custom resources station `index` asks Ray for (shared ones plus its own)."""
        own = self.station_resources[index] if index < len(self.station_resources) else {}
        return {**self.resources, **own}

    def actor_options(self, index: int) -> dict[str, Any]:
        """Keyword arguments of `StationActor.options(...)` for station `index`."""
        out: dict[str, Any] = {"num_cpus": self.num_cpus, "scheduling_strategy": STRATEGIES[self.placement]}
        resources = self.resources_of(index)
        if resources:
            out["resources"] = resources
        return out

    def local_instance_resources(self, fleet: int) -> dict[str, float]:
        """Custom resources a local Ray instance (executor.address=null) declares so every station fits on it."""
        total: dict[str, float] = {}
        for i in range(fleet):
            for name, amount in self.resources_of(i).items():
                total[name] = total.get(name, 0.0) + amount
        return {name: float(math.ceil(amount)) for name, amount in total.items()}

    def unplaced_reason(self) -> str:
        """Why a station that never came up left the rotation."""
        want = {"CPU": self.num_cpus, **self.resources}
        pinned = " (plus its own executor.station_resources)" if self.station_resources else ""
        return (f"not placed and ready within {self.start_timeout_s:.0f} s (executor.start_timeout_s): no live Ray "
                f"node had {want}{pinned} free")

def _amounts(path: str, value: Any) -> dict[str, float]:
    if not isinstance(value, dict):
        raise ValueError(f"{path}: got {value!r}; expected a mapping of Ray resource name to amount")
    out: dict[str, float] = {}
    for name, amount in value.items():
        if not isinstance(amount, int | float) or isinstance(amount, bool) or amount < 0 or not math.isfinite(amount):
            raise ValueError(f"{path}.{name}: got {amount!r}; expected a number >= 0")
        out[str(name)] = float(amount)
    return out
