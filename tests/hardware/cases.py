"""Trials whose records must not depend on the adapter refactor: run by the tests, and (from a tree
before the refactor) by the script that wrote golden_records.json:

    python -c "from tests.hardware.cases import write_golden; write_golden('tests/hardware/golden_records.json')"
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import numpy as np

from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRequest
from enpire.spec import load_spec

FIELDS = ("outcome", "attempts", "success_attempt", "pass_at_1", "pass_at_k", "robot_seconds", "steps", "clamps",
          "shaping_return", "final_state", "reason")
SCRIPTED = (("drawer", "enarm", 3), ("reach", "enarm", 0), ("lift", "jaco", 0))  # a success, a success, a failure


class PushHard:
    """torque mode: 12 N·m on every joint (clamped by the envelope) until the envelope stops the arm."""

    def reset(self, obs: dict[str, np.ndarray], feedback: object = None) -> None:
        pass

    def act(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        return np.r_[np.full(len(obs["joint_pos"]), 12.0), 0.0]


def record_fields(rec: Any) -> dict[str, Any]:
    d = asdict(rec)
    return {**{k: d[k] for k in FIELDS}, "safety_events": [e["kind"] for e in d["safety_events"]]}


def run_cases(out_dir: str) -> dict[str, dict[str, Any]]:
    out = {}
    for task, robot, seed in SCRIPTED:
        st = make_station(load_spec([f"task={task}", f"robot={robot}", "video.enabled=false"]), 0)
        rec = st.run_trial(TrialRequest(f"{task}{seed}", 0, seed, Candidate("golden"), out_dir=out_dir))
        out[f"{task}/{robot}/{seed}"] = record_fields(rec)
        st.close()
    st = make_station(load_spec(["task=reach", "policy.action_mode=torque", "video.enabled=false"]), 0)
    rec = st.run_trial(TrialRequest("push1", 0, 1, Candidate("golden"), out_dir=out_dir), policy=PushHard())
    out["reach/enarm/1/push_hard"] = record_fields(rec)
    st.close()
    return out


def write_golden(path: str) -> None:
    with open(path, "w") as fh:
        json.dump(run_cases("/tmp/enpire-golden"), fh, indent=1, sort_keys=True)
