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

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent  # the checkout (editable install) or site-packages (a wheel)
CONFIG_DIR = PACKAGE_DIR / "conf"  # the shipped configs and schemas travel inside the package (a wheel has them);
SPECS_DIR = PACKAGE_DIR / "specs"  # the checkout's top-level conf/ and specs/ are links to these
