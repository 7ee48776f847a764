"""enpire-valve: an example enpire plugin. It adds a task (`valve`), a robot variant
(`enarm_rubber`) and an agent (`grid`), each with its config options and the JSON Schemas of its
own options. enpire finds it through the entry point in pyproject.toml (group `enpire.plugins`).
"""

from pathlib import Path

from enpire.plugins import Plugin

HERE = Path(__file__).resolve().parent

PLUGIN = Plugin.from_folders(
    "enpire-valve", HERE / "tasks", "enpire_valve.tasks",  # one folder per task: valve/
    conf_dirs=[HERE / "conf"],  # robot/enarm_rubber.yaml, agent/grid.yaml
    robots={"enarm_rubber": "enpire_valve.robots:RubberEnArm"},
    agents={"grid": "enpire_valve.agents:GridAgent"},
    schemas={
        "agent/grid": str(HERE / "schemas" / "agent.grid.schema.json"),
        "task/valve": str(HERE / "schemas" / "task.valve.schema.json"),
    },
    capabilities={"rubber_pads": "high-friction finger pads"},
)
