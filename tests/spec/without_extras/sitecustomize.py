"""Put on PYTHONPATH, this makes the optional packages (the extras of pyproject.toml) unimportable in the
interpreter and every process it starts: what a core-only install of enpire sees."""

import sys

BLOCKED = {"torch", "lightning", "ray", "anthropic", "optuna", "hydra_plugins.hydra_submitit_launcher", "submitit",
           "pytorch_lightning", "torchvision"}
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name in BLOCKED or name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None
sys.meta_path.insert(0, _Block())
