"""An rl candidate's training recipe: defaults, the policy's bounds, and how a proposal's recipe is completed.

Kept apart from the learner (which imports torch and stable-baselines3) so the agents, the intake and the
proposal schema can complete, bound-check and compare rl recipes without loading torch.

`policy.train` of conf/policy/rl.yaml holds the recipe defaults and, under `bounds`, the range each
numeric key may take in a proposal ([low, high]; lists such as `hidden_sizes` bound every entry, the
reward weights bound every declared term). The proposal schema of an rl session is narrowed to these
bounds (enpire.agent.proposal), so an out-of-bounds proposal is rejected with its key path before it runs;
`resolve_rl_recipe` checks them again for callers that bypass the intake.
"""

from __future__ import annotations

from typing import Any

from enpire.spec.model import ExperimentSpec

# The reward terms an agent may weight (never the verifier: success is the frozen verifier's verdict).
#   shaping: the task's own dense shaping reward, per control step
#   success: a bonus on the last step of the attempt the frozen verifier passed
#   safety_stop: a penalty on the step the envelope stopped the robot (the trial is then a failed, unsafe trial)
#   action:  a penalty on the squared size of the learner's normalised action (smoothness)
REWARD_TERMS: tuple[str, ...] = ("shaping", "success", "safety_stop", "action")

DEFAULT_RL_RECIPE: dict[str, Any] = {
    "learning_rate": 3e-4, "batch_size": 256, "demo_ratio": 0.5, "demos": 8, "demo_noise": 0.002,
    "hidden_sizes": [256, 256], "gamma": 0.98, "utd_ratio": 0.5, "pretrain_steps": 200, "publish_every": 50,
    "reward": {"shaping": 1.0, "success": 10.0, "safety_stop": 10.0, "action": 0.0},
    "residual": True, "action_scale": 0.02, "explore": True, "warm_start": None, "buffer_size": 200000,
}

# bounds that hold when the policy config names none (the policy's `train.bounds` narrows them)
DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "learning_rate": (1e-5, 1e-2), "batch_size": (16, 2048), "demo_ratio": (0.0, 1.0), "demos": (0, 200),
    "demo_noise": (0.0, 0.05), "hidden_sizes": (16, 1024), "gamma": (0.8, 0.999), "utd_ratio": (0.0, 4.0),
    "pretrain_steps": (0, 20000), "publish_every": (1, 10000), "reward": (0.0, 100.0),
    "action_scale": (0.001, 0.2), "buffer_size": (1000, 2000000),
}
# keys of the policy's `train` section that are settings of the session, not of a candidate
SESSION_KEYS: tuple[str, ...] = ("bounds", "device")


def policy_bounds(train: dict[str, Any]) -> dict[str, tuple[float, float]]:
    """The bounds a session's rl proposals must keep: DEFAULT_BOUNDS narrowed by `policy.train.bounds`."""
    out = dict(DEFAULT_BOUNDS)
    for key, pair in dict(train.get("bounds") or {}).items():
        low, high = list(pair)
        out[key] = (float(low), float(high))
    return out


def bound_problems(recipe: dict[str, Any], bounds: dict[str, tuple[float, float]],
                   prefix: str = "candidate.recipe") -> list[str]:
    """Every value of `recipe` outside `bounds`, each naming its key path, the value and the range."""
    problems = []

    def check(path: str, key: str, value: Any) -> None:
        if key not in bounds or isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        low, high = bounds[key]
        if not low <= float(value) <= high:
            problems.append(f"{path}: got {value!r}; expected within [{low:g}, {high:g}] (policy.train.bounds.{key})")

    for key, value in recipe.items():
        if key == "hidden_sizes" and isinstance(value, (list, tuple)):
            for i, width in enumerate(value):
                check(f"{prefix}.{key}[{i}]", key, width)
        elif key == "reward" and isinstance(value, dict):
            for term, weight in value.items():
                check(f"{prefix}.reward.{term}", key, weight)
        else:
            check(f"{prefix}.{key}", key, value)
    return problems


def resolve_rl_recipe(spec: ExperimentSpec | None, recipe: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults < the policy's `train` section < the agent's recipe; unknown keys, unknown reward terms and
    values outside the policy's bounds are an error naming the key path."""
    out: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in DEFAULT_RL_RECIPE.items()}
    train: dict[str, Any] = {}
    if spec is not None:
        train = {k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(spec.policy.train).items()}
    bounds = policy_bounds(train)
    for layer in ({k: v for k, v in train.items() if k not in SESSION_KEYS}, dict(recipe or {})):
        unknown = sorted(set(layer) - set(DEFAULT_RL_RECIPE))
        if unknown:
            raise ValueError(f"candidate.recipe: unknown keys {unknown}; expected among {sorted(DEFAULT_RL_RECIPE)}")
        for key, value in layer.items():
            if key == "reward":
                terms = sorted(set(dict(value)) - set(REWARD_TERMS))
                if terms:
                    raise ValueError(f"candidate.recipe.reward: unknown terms {terms}; expected among "
                                     f"{list(REWARD_TERMS)} (the verifier itself cannot be reweighted)")
                out["reward"] = {**out["reward"], **{k: float(v) for k, v in dict(value).items()}}
            else:
                out[key] = list(value) if isinstance(value, tuple) else value
    problems = bound_problems(out, bounds)
    if problems:
        raise ValueError("; ".join(problems))
    return out


def narrow_schema(branch: dict[str, Any], train: dict[str, Any]) -> None:
    """Narrow the proposal schema's rl branch to the policy's bounds (enpire.agent.proposal calls this)."""
    props = branch["properties"]["recipe"]["properties"]
    for key, (low, high) in policy_bounds(train).items():
        if key not in props:
            continue
        if key == "reward":  # every declared term
            for term in props["reward"]["properties"].values():
                term.update(minimum=low, maximum=high)
            continue
        target = props[key]["items"] if key == "hidden_sizes" else props[key]
        target.pop("exclusiveMinimum", None)
        target.update(minimum=low, maximum=high)
