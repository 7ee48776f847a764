"""`python -m enpire.export SESSION_ID --format lerobot|parquet|hdf5 --out DIR`: a session's recorded trials as a
robot-learning dataset, read from MLflow alone (enpire.data; docs/data.md)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from enpire.data.episodes import Episode, digest
from enpire.data.store import fetch_session, session_spec_doc
from enpire.records import OUTCOMES

log = logging.getLogger(__name__)
FORMATS = ("lerobot", "parquet", "hdf5")


def dataset_info(session_id: str, doc: dict[str, Any], episodes: list[Episode]) -> dict[str, Any]:
    """What every format says about where its episodes came from."""
    m = episodes[0].meta if episodes else {}
    return {"session": session_id, "task": doc["task"]["name"], "task_description": doc["task"].get("description", ""),
            "robot": doc["robot"]["name"], "control_dt": m.get("control_dt"), "action_mode": m.get("action_mode"),
            "quantities": m.get("quantities"), "envelope": m.get("envelope"), "done_sha256": m.get("done_sha256"),
            "source_digest": digest([ep.path for ep in episodes]) if episodes else None}


def export(uri: str, session_id: str, fmt: str, out: str | Path, outcomes: tuple[str, ...] = (),
           log_input: bool = True) -> dict[str, Any]:
    """Write the session's recorded episodes (those of `outcomes`, all when empty) to `out` in `fmt`; returns the
    dataset's info (episodes, steps, digest). Logged as a dataset input (context export) of the session run."""
    from enpire.data.lerobot import write_lerobot
    from enpire.data.tables import write_hdf5, write_parquet

    if fmt not in FORMATS:
        raise ValueError(f"--format: got {fmt!r}; expected one of {', '.join(FORMATS)}")
    bad = [o for o in outcomes if o not in OUTCOMES]
    if bad:
        raise ValueError(f"--outcome: got {bad}; expected among {', '.join(OUTCOMES)}")
    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp:
        episodes = fetch_session(uri, session_id, tmp)
        if not episodes:
            raise LookupError(f"session {session_id} recorded no trajectories (run it with record.trajectories=all, "
                              "failures or successes)")
        kept = [ep for ep in episodes if not outcomes or ep.meta["outcome"] in outcomes]
        if not kept:
            raise LookupError(f"session {session_id}: none of its {len(episodes)} recorded trials has outcome "
                              f"{'|'.join(outcomes)}")
        info = dataset_info(session_id, session_spec_doc(uri, session_id), kept)
        writer = {"lerobot": write_lerobot, "parquet": write_parquet, "hdf5": write_hdf5}[fmt]
        doc = writer(kept, out, info)
    files = sorted(p for p in out.rglob("*") if p.is_file())
    doc["digest"] = digest(files, out)
    if log_input:
        from enpire.track.datasets import log_dataset

        try:
            log_dataset(uri, session_id, f"export-{fmt}", out.resolve().as_uri(), doc["digest"], "export",
                        {"episodes": len(kept), "steps": sum(ep.length for ep in kept), "format": fmt,
                         "outcomes": list(outcomes)})
        except Exception as error:  # the export itself is on disk: say so and go on
            log.warning("export: could not log the dataset input of session %s: %s", session_id, error)
    doc.setdefault("episodes", len(kept))
    doc.setdefault("steps", sum(ep.length for ep in kept))
    return doc
