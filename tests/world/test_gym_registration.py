"""`gymnasium.make` of an enpire env from a fresh interpreter, as a researcher's RL script calls it."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

from enpire import PROJECT_ROOT

FRESH = """
import json, sys
import gymnasium
assert not any(m.startswith("enpire") for m in sys.modules), "enpire was imported before make"
env = gymnasium.make("enpire.world.gym_env:enpire/Drawer-v0")
obs, info = env.reset(seed=0)
obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
from enpire.world.gym_env import ENV_IDS
print(json.dumps({"id": env.spec.id, "obs": sorted(obs), "reward": float(reward),
                  "bare": gymnasium.spec("enpire/Drawer-v0").id, "ids": ENV_IDS}))
env.close()
"""


def test_make_from_a_fresh_interpreter_without_importing_enpire() -> None:
    """Gymnasium >= 1.0 loads no entry-point plugins: the module-qualified id is how a fresh process
    (a training script taking the env id as an argument) makes an enpire env."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    result = subprocess.run([sys.executable, "-c", FRESH], env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["id"] == out["bare"] == "enpire/Drawer-v0"
    assert out["obs"] and math.isfinite(out["reward"])
    assert {"enpire/Drawer-v0", "enpire/Reach-v0", "enpire/PushT-v0", "enpire/PegInsert-v0",
            "enpire/Lift-v0"} <= set(out["ids"])
