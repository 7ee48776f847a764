"""The shipped tasks, one folder each: `<task>/task.py` (the Task and its named state quantities),
`<task>/<task>.xml` (the arena MJCF), `<task>/scripted.py` (the parametric baseline) and
`<task>/conf/` (its task, safety, done and policy config options). Adding a task to the package
is adding a folder here; the package itself is a plugin (enpire.plugins) like any user's.
"""

from pathlib import Path

from enpire.plugins import Plugin

PLUGIN = Plugin.from_folders(
    "enpire", Path(__file__).parent, "enpire.tasks",
    robots={"enarm": "enpire.world.robots.enarm:EnArm", "jaco": "enpire.world.robots.jaco:Jaco"},
    agents={
        "search": "enpire.agent.search:SearchAgent",
        "random": "enpire.agent.baselines:RandomSearchAgent",
        "tpe": "enpire.agent.baselines:TPEAgent",
        "claude": "enpire.agent.claude:ClaudeAgent",
    },
    executors={
        "inline": "enpire.fleet.executor:InlineExecutor",
        "local": "enpire.fleet.local:LocalExecutor",
        "ray": "enpire.fleet.ray_executor:RayExecutor",
        "remote": "enpire.fleet.remote:RemoteExecutor",
    },
    verifiers={"predicate": "enpire.world.verifier:Verifier",
               "classifier": "enpire.detector.verifier:ClassifierVerifier"},
    capabilities={
        "gripper": "the robot can grasp (any gripper kind)",
        "parallel_gripper": "a two-jaw parallel gripper",
        "enarm_wrist": "the wrist link `enarm/link6` that peg_insert welds its peg to",
    },
)
