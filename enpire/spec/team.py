"""`team=[claude,search,search]`: a team of mixed agents, each named by an option of conf/agent/.

Hydra composes one option per group, so the other members' configs are read here, from the
same config directory, and put into the document in place of their names. The document that
is validated, fingerprinted and logged to MLflow therefore holds every member's full agent
config, and each member is checked against specs/agent.schema.json under `team[i]`.

The member whose name is the composed `agent` group's kind uses that composed group, so
overrides like `agent=claude agent.model=...` reach it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from enpire import CONFIG_DIR
from enpire.spec.errors import Problem
from enpire.spec.search_path import group_options, option_file


def agent_options(config_dir: Path | str = CONFIG_DIR) -> list[str]:
    return group_options("agent", config_dir)


def resolve_team(doc: dict[str, Any], config_dir: Path | str = CONFIG_DIR) -> list[Problem]:
    """Replace the names in doc['team'] with agent configs; the problems of names that are not options."""
    team = doc.get("team")
    if team is None or not isinstance(team, list):
        return []  # null, or a wrong type the schema reports
    problems: list[Problem] = []
    resolved: list[Any] = []
    options = agent_options(config_dir)
    for i, member in enumerate(team):
        if not isinstance(member, str):
            resolved.append(member)  # already a config (e.g. a resumed session's document)
            continue
        if isinstance(doc.get("agent"), dict) and member == doc["agent"].get("kind"):
            resolved.append(dict(doc["agent"]))
            continue
        path = option_file("agent", member, config_dir)
        if path is None:
            problems.append(Problem(f"team[{i}]", member, f"an option of config group 'agent' "
                                    f"(available: {', '.join(options)})"))
            resolved.append(member)
            continue
        try:
            resolved.append(OmegaConf.to_container(OmegaConf.load(path), resolve=True))
        except (OmegaConfBaseException, OSError, ValueError) as error:
            problems.append(Problem(f"team[{i}]", member, f"a readable agent config ({path}: {error})"))
            resolved.append(member)
    doc["team"] = resolved
    agents = doc.get("agents")
    if team and agents is not None and agents != len(team):
        problems.append(Problem("agents", agents, f"null or {len(team)}, the size of team={team}"))
    return problems
