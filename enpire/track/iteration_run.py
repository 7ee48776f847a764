"""What an iteration's MLflow run holds: its tags, params, metric rows and artifact files.

One place for both ways the writer records an iteration (one transaction for many, enpire.track.batch;
or the client, run by run), so the two cannot drift apart: tests/track/test_writer_batch.py holds them
to the same record.
"""

from __future__ import annotations

import json
from pathlib import Path

from enpire.records import IterationSummary, TrialRecord
from enpire.track import records
from enpire.track.batch import Row
from enpire.track.source import source_tags
from enpire.track.videos import TAG as VIDEOS_TAG

MAX_PARAMS = 100  # MLflow's limit per batch; a candidate with more params keeps them in candidate.json


def run_name(index: int) -> str:
    return f"iter-{index:04d}"


def tags(it: IterationSummary, raised_best: bool, sweep: str | None, session_id: str,
         videos_pending: bool) -> dict[str, str]:
    """The run's tags (records.iteration_tags), its place under the session run, its source and its name."""
    out = records.iteration_tags(it, raised_best, sweep)
    out["mlflow.parentRunId"] = session_id
    out["mlflow.runName"] = run_name(it.index)
    out["enpire.session"] = session_id
    out["mlflow.loggedArtifacts"] = records.logged_tables_tag()  # trials_table.json shows as a table
    out.update(source_tags())
    if videos_pending:
        out[VIDEOS_TAG] = "pending"
    return out


def params(it: IterationSummary) -> list[tuple[str, str]]:
    return [(f"candidate.{k}", str(v)) for k, v in sorted(it.candidate.get("params", {}).items())][:MAX_PARAMS]


def metric_rows(it: IterationSummary, trials: list[TrialRecord], stamp: int) -> list[Row]:
    """records.iteration_metrics, rounded, at step = the iteration's index."""
    return [(k, records.rounded(v), stamp, it.index) for k, v in sorted(records.iteration_metrics(it, trials).items())]


def status(it: IterationSummary) -> str:
    return "FAILED" if it.decision == "crash" else "FINISHED"


def write_files(folder: Path, it: IterationSummary, trials: list[TrialRecord], raised_best: bool,
                transcript: list[dict] | None, rendered: dict[str, str]) -> None:
    """The run's artifacts in `folder`: candidate.json (and candidate.py), iteration.json,
    agent/transcript.json, trials.jsonl and trials_table.json; `rendered` maps trial ids to videos already
    in `folder/videos`; a trial's own video file is copied in beside them."""
    (folder / "candidate.json").write_text(json.dumps(it.candidate, indent=2, sort_keys=True))
    if it.candidate.get("kind") == "code" and it.candidate.get("source"):
        (folder / "candidate.py").write_text(str(it.candidate["source"]))
    (folder / "iteration.json").write_text(json.dumps(records.iteration_document(it, raised_best), indent=2,
                                                      default=str))
    if transcript:
        (folder / "agent").mkdir(exist_ok=True)
        (folder / "agent" / "transcript.json").write_text(json.dumps(transcript, indent=2, default=str))
    rows = []
    videos = folder / "videos"
    for record in trials:
        video_artifact = f"videos/{rendered[record.trial_id]}" if record.trial_id in rendered else None
        if video_artifact is None and record.video and Path(record.video).is_file():
            videos.mkdir(exist_ok=True)
            target = videos / f"{record.trial_id}.mp4"
            target.write_bytes(Path(record.video).read_bytes())
            video_artifact = f"videos/{target.name}"
        rows.append(json.dumps(records.trial_row(record, it.candidate_id, video_artifact), default=str))
    (folder / "trials.jsonl").write_text("\n".join(rows) + ("\n" if rows else ""))
    (folder / records.TABLE_FILE).write_text(json.dumps(records.trial_table(trials, it.candidate_id), default=str))
