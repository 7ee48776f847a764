"""enpire: physical autoresearch on a fleet of simulated robots.

Data flows one way: overrides -> composed config -> validated frozen spec -> built world,
fleet, agents, tracker -> loop -> MLflow.
"""

import os
from pathlib import Path

# Offscreen rendering without a display (software EGL), chosen before anything imports mujoco: MuJoCo
# picks its GL backend at import. A user's own MUJOCO_GL (e.g. osmesa) wins.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

__version__ = "0.1.0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "conf"
SPECS_DIR = PROJECT_ROOT / "specs"
