"""Sweep directories and run names say what changed, not where it was recorded."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from enpire import CONFIG_DIR
from enpire.spec.search_path import install as install_search_path
from enpire.track.records import NOISE_KEYS


def _hydra(overrides: list[str]):  # noqa: ANN202 - a DictConfig
    install_search_path()  # the task options live in the task folders (enpire.spec.search_path)
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=True).hydra


def test_config_excludes_the_same_noise_keys_from_sweep_directories_as_run_names() -> None:
    hydra = _hydra([])
    excluded = set(OmegaConf.to_container(hydra.job.config.override_dirname.exclude_keys))
    assert excluded == {k for k in NOISE_KEYS if not k.startswith("hydra")}


def test_a_sweep_job_directory_does_not_nest_on_the_tracking_uri() -> None:
    hydra = _hydra(["budget=small", "fleet=2", "tracking.uri=sqlite:////tmp/sweep/mlflow.db", "video.enabled=false"])
    assert hydra.job.override_dirname == "budget=small,fleet=2"
    assert "/" not in hydra.job.override_dirname and "mlflow.db" not in hydra.job.override_dirname
