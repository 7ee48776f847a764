"""enpire: physical autoresearch on a fleet of simulated robots.

Data flows one way: overrides -> composed config -> validated frozen spec -> built world,
fleet, agents, tracker -> loop -> MLflow.
"""

from pathlib import Path

__version__ = "0.1.0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "conf"
SPECS_DIR = PROJECT_ROOT / "specs"
