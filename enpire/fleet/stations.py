"""Station factories: a simulated station wired to enpire's policy families. The world builds the
station and runs whatever Policy it is handed; which policy a candidate means (scripted, bc, code)
is enpire.policy's business, so the wiring lives here, outside both (world imports no policy code).
Executors start stations through `STATION_FACTORY` ("module:function(spec, index) -> Station").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from enpire.policy.factory import make_policy
from enpire.spec.model import ExperimentSpec
from enpire.world.station import SimStation, StepHook


def make_station(spec: ExperimentSpec, index: int = 0, step_hook: StepHook | None = None,
                 verifier: Callable[..., Any] | None = None) -> SimStation:
    """A simulated station that builds each candidate's policy with enpire.policy.factory.make_policy
    (`verifier`: a judge other than done.verifier's, SimStation's argument)."""
    return SimStation(spec, index, step_hook=step_hook, policy_factory=make_policy, verifier=verifier)
