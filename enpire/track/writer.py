"""The MLflow writer of a session: one parent run, one child run per iteration, batched.

Layout (DESIGN.md): experiment `enpire/<task>` (or `tracking.experiment`) created with
`tracking.artifact_root` as artifact location; a session run tagged `enpire.kind=session` with
the fingerprints, the resolved spec as params and as `spec/resolved_spec.json`; a child run per
iteration with its tags, metrics and artifacts (`candidate.json`, `iteration.json`,
`trials.jsonl`: a row per trial, `videos/*.mp4`). Session metrics carry the ledger totals
(step = iterations so far) so a resume can restore the ledger, and `idea_tree.json` is
written at the end.

Writes happen on a background thread that flushes every `tracking.flush_every_s`, so the loop
never waits on SQLite.
"""

from __future__ import annotations

import json
import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enpire.agent.api import IterationSummary
from enpire.spec.model import ExperimentSpec
from enpire.track import records
from enpire.track.retry import RETRY_WINDOW_S, disk_full_reason, is_disk_full, with_retry
from enpire.track.store_init import ensure_store
from enpire.track.videos import IterationVideos
from enpire.world.api import TrialRecord

log = logging.getLogger(__name__)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


class Tracker:
    def __init__(self, spec: ExperimentSpec, run_name: str, sweep: str | None, extra_tags: dict[str, str],
                 resume_run_id: str | None = None) -> None:
        from mlflow.tracking import MlflowClient

        self.spec = spec
        self.sweep = sweep
        uri = spec.tracking.uri
        ensure_store(uri)  # first use of a SQLite store migrates it; sessions of a sweep must not race on that
        self.client = MlflowClient(tracking_uri=uri)
        self.experiment_id = self._experiment(spec.experiment_name)
        tags = {
            "enpire.kind": "session", "enpire.task": spec.task.name, "enpire.robot": spec.robot.name,
            "enpire.agent_kind": spec.agent.kind, "enpire.fleet": str(spec.fleet),
            "enpire.done_sha256": spec.fingerprints.done_sha256,
            "enpire.safety_sha256": spec.fingerprints.safety_sha256,
            "enpire.spec_sha256": spec.fingerprints.spec_sha256,
            "enpire.overrides": " ".join(spec.overrides)[:records.MAX_TAG_CHARS] or "defaults", **extra_tags,
        }
        if sweep:
            tags["enpire.sweep"] = sweep
        if resume_run_id:  # resume: reopen the SAME session run (enpire.track.resume); spec already logged
            self.client.update_run(resume_run_id, status="RUNNING")
            self.run_id: str = resume_run_id
        else:
            run = self.client.create_run(self.experiment_id, start_time=_now_ms(), tags=tags, run_name=run_name)
            self.run_id = run.info.run_id
            self._log_spec()
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self.open_runs: dict[int, str] = {}  # iteration index -> run created before it closed (bc)
        self.write_stats: dict[str, float] = {}  # retries through store outages (enpire.track.retry)
        self.fatal: str | None = None  # set when writing cannot go on (disk full): the loop ends the session
        self.videos = IterationVideos(spec)  # each iteration's first failure and first success, from replays
        self._thread = threading.Thread(target=self._loop, name="enpire-mlflow", daemon=True)
        self._thread.start()

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        root = Path(self.spec.tracking.artifact_root).resolve() / name.replace("/", "_")
        root.mkdir(parents=True, exist_ok=True)
        try:
            return self.client.create_experiment(name, artifact_location=root.as_uri())
        except Exception:  # created concurrently by another session of a sweep
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _log_spec(self) -> None:
        from mlflow.entities import Param

        params = [Param(k, v) for k, v in sorted(records.flatten(self.spec.as_dict()).items())]
        for chunk in _chunks(params, 100):
            self.client.log_batch(self.run_id, params=chunk)
        self.client.log_dict(self.run_id, self.spec.as_dict(), "spec/resolved_spec.json")
        if self.spec.overrides:
            self.client.log_text(self.run_id, "\n".join(self.spec.overrides) + "\n", "spec/overrides.txt")

    # ---- background writing --------------------------------------------------------------------
    def _loop(self) -> None:
        every = self.spec.tracking.flush_every_s
        while not self._stop.is_set():
            self._stop.wait(every)
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                with_retry(op, self.write_stats)  # a locked/unreachable store: wait and retry, in order
            except Exception as error:  # keep writing the rest; surfaced at close()
                log.exception("MLflow write failed")
                self._errors.append(error)
                if is_disk_full(error) and self.fatal is None:
                    self.fatal = f"output disk full: MLflow write failed ({disk_full_reason(error)})"

    def log_iteration(self, it: IterationSummary, trials: list[TrialRecord], raised_best: bool) -> None:
        ended_ms = _now_ms()  # the run's end time is when the loop closed it, not when the queue got to it
        self._queue.put(lambda: self._write_iteration(it, list(trials), raised_best, ended_ms))

    def open_iteration_run(self, index: int) -> str:
        """Create iteration `index`'s run now (synchronously; called from the trainer thread) so training
        can log into it before the iteration is recorded; `_write_iteration` then fills the same run."""
        tags = {"enpire.kind": "iteration", "enpire.iteration": str(index), "mlflow.parentRunId": self.run_id,
                "enpire.session": self.run_id}
        run_id = self.client.create_run(self.experiment_id, start_time=_now_ms(), tags=tags,
                                        run_name=f"iter-{index:04d}").info.run_id
        self.open_runs[index] = run_id
        return run_id

    def log_session_metrics(self, metrics: dict[str, float], step: int) -> None:
        stamp = _now_ms()
        self._queue.put(lambda: self._write_metrics(self.run_id, metrics, step, stamp))

    def _write_metrics(self, run_id: str, metrics: dict[str, float], step: int, stamp: int) -> None:
        from mlflow.entities import Metric

        items = [Metric(k, float(v), stamp, step) for k, v in sorted(metrics.items())]
        for chunk in _chunks(items, 1000):
            self.client.log_batch(run_id, metrics=chunk)

    def _write_iteration(self, it: IterationSummary, trials: list[TrialRecord], raised_best: bool,
                         ended_ms: int | None = None) -> None:
        from mlflow.entities import Param, RunTag

        tags = records.iteration_tags(it, raised_best, self.sweep)
        tags["mlflow.parentRunId"] = self.run_id
        run_id = self.open_runs.get(it.index)  # bc: opened before its training (open_iteration_run)
        if run_id is None:
            run_id = self.client.create_run(self.experiment_id, start_time=ended_ms or _now_ms(), tags=tags,
                                            run_name=f"iter-{it.index:04d}").info.run_id
            self.open_runs[it.index] = run_id  # a retried write (store locked) fills the same run
        params = [Param(f"candidate.{k}", str(v)) for k, v in sorted(it.candidate.get("params", {}).items())]
        self.client.log_batch(run_id, params=params[:100],
                              tags=[RunTag("enpire.session", self.run_id), *(RunTag(k, v) for k, v in tags.items())])
        self._write_metrics(run_id, records.iteration_metrics(it), it.index, _now_ms())
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            (folder / "candidate.json").write_text(json.dumps(it.candidate, indent=2, sort_keys=True))
            if it.candidate.get("kind") == "code" and it.candidate.get("source"):
                (folder / "candidate.py").write_text(str(it.candidate["source"]))
            (folder / "iteration.json").write_text(
                json.dumps(records.iteration_document(it, raised_best), indent=2, default=str))
            rows = []
            videos = folder / "videos"
            shown = self.videos.render(trials, videos)
            for record in trials:
                video_artifact = f"videos/{shown[record.trial_id]}" if record.trial_id in shown else None
                if video_artifact is None and record.video and Path(record.video).is_file():
                    videos.mkdir(exist_ok=True)
                    target = videos / f"{record.trial_id}.mp4"
                    target.write_bytes(Path(record.video).read_bytes())
                    video_artifact = f"videos/{target.name}"
                rows.append(json.dumps(records.trial_row(record, it.candidate_id, video_artifact), default=str))
            (folder / "trials.jsonl").write_text("\n".join(rows) + ("\n" if rows else ""))
            self.client.log_artifacts(run_id, str(folder))
        self.client.set_terminated(run_id, "FINISHED" if it.decision != "crash" else "FAILED",
                                   end_time=ended_ms or _now_ms())
        self.open_runs.pop(it.index, None)
        self.videos.discard(trials)

    # ---- end of session -------------------------------------------------------------------------
    def close(self, final_metrics: dict[str, float], step: int, tags: dict[str, str], idea_tree: list[dict],
              summary_text: str, status: str) -> None:
        """Flush everything, write the final metrics, tags and documents, end the run with `status`."""
        from mlflow.entities import RunTag

        queued = self._queue.qsize()
        if queued:
            log.info("writing %d queued records to MLflow (iterations render their videos here)", queued)
        self._stop.set()
        self._thread.join(timeout=RETRY_WINDOW_S + 60.0)  # it may be waiting out a store outage
        self._drain()
        self.videos.close()
        stats = self.write_stats
        with_retry(lambda: self._write_metrics(self.run_id, final_metrics, step, _now_ms()), stats)
        with_retry(lambda: self.client.log_batch(
            self.run_id, tags=[RunTag(k, v[:records.MAX_TAG_CHARS]) for k, v in tags.items()]), stats)
        with_retry(lambda: self.client.log_dict(self.run_id, {"iterations": idea_tree}, "idea_tree.json"), stats)
        with_retry(lambda: self.client.log_text(self.run_id, summary_text, "summary.txt"), stats)
        with_retry(lambda: self.client.set_terminated(self.run_id, status, end_time=_now_ms()), stats)
        if stats:
            log.warning("MLflow store outages survived: %s", stats)
        if self._errors:
            log.error("%d MLflow writes failed; first: %r", len(self._errors), self._errors[0])
