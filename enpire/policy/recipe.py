"""A bc candidate's training recipe: the defaults and how a proposal's recipe is completed.

Kept apart from enpire.policy.bc (which imports torch) so the agents and the loop's intake can
complete and compare recipes without loading torch and Lightning (seconds on a loaded machine).
"""

from __future__ import annotations

from typing import Any

from enpire.spec.model import ExperimentSpec

DEFAULT_RECIPE: dict[str, Any] = {
    "source_trials": "successes_and_demos", "demos": 16, "demo_noise": 0.01, "hidden_sizes": [128, 128],
    "epochs": 30, "learning_rate": 3e-3, "batch_size": 256, "weight_decay": 0.0, "online": "none",
    "dagger_rounds": 2, "dagger_episodes": 6, "dataset": None,  # dataset: an exported dir (docs/data.md)
}


def resolve_recipe(spec: ExperimentSpec | None, recipe: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults < the policy's `train` section < the agent's recipe; unknown keys are an error."""
    out = dict(DEFAULT_RECIPE)
    if spec is not None:
        out.update({k: (list(v) if isinstance(v, tuple) else v) for k, v in dict(spec.policy.train).items()})
    unknown = sorted(set(recipe or {}) - set(DEFAULT_RECIPE))
    if unknown:
        raise ValueError(f"candidate.recipe: unknown keys {unknown}; expected among {sorted(DEFAULT_RECIPE)}")
    out.update(recipe or {})
    return out
