"""Where config options come from: the primary config directory, then every plugin's (the
shipped tasks' folders included), in that order. Hydra searches the same list (a search-path
plugin registered here), so `task=valve` finds a plugin's `conf/task/valve.yaml`, and the primary
directory wins where both have an option of the same name (a copied config dir can shadow one).
"""

from __future__ import annotations

import functools
import shutil
from pathlib import Path

from hydra.core.config_search_path import ConfigSearchPath
from hydra.core.plugins import Plugins
from hydra.plugins.search_path_plugin import SearchPathPlugin

from enpire import CONFIG_DIR, plugins


def config_dirs(primary: Path | str = CONFIG_DIR) -> list[Path]:
    """The primary config directory, then every plugin's, without repeats."""
    out: list[Path] = []
    for d in (Path(primary).resolve(), *(p.resolve() for p in plugins.conf_dirs())):
        if d not in out:
            out.append(d)
    return out


def group_options(group: str, primary: Path | str = CONFIG_DIR) -> list[str]:
    """Every option of a config group across the search path."""
    return sorted({p.stem for d in config_dirs(primary) for p in (d / group).glob("*.yaml")})


def option_file(group: str, option: str, primary: Path | str = CONFIG_DIR) -> Path | None:
    """The file Hydra composes for `group=option` (the first on the search path), or None."""
    return next((f for d in config_dirs(primary) if (f := d / group / f"{option}.yaml").is_file()), None)


def is_group(group: str, primary: Path | str = CONFIG_DIR) -> bool:
    return any((d / group).is_dir() for d in config_dirs(primary))


def copy_configs(dest: Path | str, primary: Path | str = CONFIG_DIR) -> Path:
    """One self-contained config dir at `dest`: the primary dir's options and every plugin's (the
    first on the search path wins, as in Hydra). A starting point for a user's own config dir."""
    dest = Path(dest)
    for root in reversed(config_dirs(primary)):  # the primary last, so its files win
        shutil.copytree(root, dest, dirs_exist_ok=True)
    return dest


class EnpirePluginSearchPath(SearchPathPlugin):
    """Appends every plugin's config directory to Hydra's search path."""

    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        for d in plugins.conf_dirs():
            search_path.append(provider="enpire-plugin", path=f"file://{d}")


@functools.cache
def install() -> None:
    """Register the search-path plugin with Hydra (once per process; before any compose)."""
    Plugins.instance().register(EnpirePluginSearchPath)
