"""The MLflow writer of a session: one parent run, one child run per iteration, batched.

Layout (docs/loop.md, MLflow layout): experiment `enpire/<task>` (or `tracking.experiment`) created with
`tracking.artifact_root` as artifact location; a session run named by records.session_run_name (session.name
or the changed overrides), tagged `enpire.kind=session` with the fingerprints, a description, the git commit,
source and user (enpire.track.source), the resolved spec as params (no prose) and as
`spec/resolved_spec.json`; a child run per iteration lasting from its proposal to its close, described by its
hypothesis, with its tags, metrics (rates with 95% lower bounds) and artifacts (`candidate.json`,
`iteration.json`, `trials.jsonl` and `trials_table.json`: a row per trial, `agent/transcript.json`: the agent
call that proposed it, when given, `videos/*.mp4`). Session metrics carry the ledger totals (step = iterations
so far) so a resume can restore the ledger, one step per trial (enpire.track.steps), and `idea_tree.json` and
`iterations_table.json` are written at the end. Metric values are rounded (records.rounded).

Writes happen on ONE background thread that flushes every `tracking.flush_every_s`, so the loop
never waits on SQLite; `close` queues the session's last writes behind everything else and waits
for that thread (nothing else ever takes from the queue). A flush takes everything queued: with an SQL
store, the iterations and metric rows among it go in one transaction (enpire.track.batch, one commit and
one fsync for a whole flush, the run-by-run client calls cost ~50 ms an iteration); other stores, and a
run opened before its iteration closed (training), are written run by run through the client.

Videos (enpire.track.videos): the writer picks the trials an iteration shows, deletes every other replay
at once and, by default, queues the shown ones for a detached renderer started after the last write, so
the summary does not wait on software rendering.
"""

from __future__ import annotations

import logging
import queue
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from enpire.records import IterationSummary, TrialRecord
from enpire.spec.model import ExperimentSpec
from enpire.track import iteration_run, records
from enpire.track import videos as vids
from enpire.track.batch import NewRun, Row, SqlBatch, new_run_id
from enpire.track.create_once import WRITE_TAG, RunCreator
from enpire.track.retry import RETRY_WINDOW_S, disk_full_reason, is_disk_full, is_transient, with_retry
from enpire.track.source import source_tags
from enpire.track.steps import TrialSteps
from enpire.track.store_init import ensure_store
from enpire.track.videos import IterationVideos, PendingVideo, PendingVideos

log = logging.getLogger(__name__)

CLOSE_WAIT_S = (RETRY_WINDOW_S + 60.0) * 2  # close() waits this long for the writer (it may wait out outages)
BATCH_MAX = 200  # iterations in one transaction at most (a backlog after an outage goes in several)


def _now_ms() -> int:
    return int(time.time() * 1000)


def wall_ms(monotonic: float | None) -> int | None:
    """Epoch milliseconds of a `time.monotonic()` stamp taken earlier in this process (Evaluation.started)."""
    if monotonic is None:
        return None
    return int((time.time() - (time.monotonic() - monotonic)) * 1000)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)] or [[]]


class _IterationWrite:
    """An iteration queued for MLflow. Called, it is written on its own through the client
    (`Tracker._write_iteration`); `_drain` writes it with the others queued in one transaction instead
    when the store allows (`Tracker._write_group`)."""

    def __init__(self, tracker: Tracker, it: IterationSummary, trials: list[TrialRecord], raised_best: bool,
                 ended_ms: int, shown: list[TrialRecord], transcript: list[dict] | None,
                 started_ms: int | None) -> None:
        self.tracker, self.it, self.trials, self.raised_best = tracker, it, trials, raised_best
        self.ended_ms, self.shown, self.transcript, self.started_ms = ended_ms, shown, transcript, started_ms
        self.run_id: str | None = None  # chosen when first written in a batch: a retried transaction reuses it

    def __call__(self) -> None:
        self.tracker._write_iteration(self.it, self.trials, self.raised_best, self.ended_ms, self.shown,
                                      self.transcript, self.started_ms)


class _MetricRows:
    """Metric rows of an existing run (the session run) queued for MLflow; batchable like _IterationWrite."""

    def __init__(self, tracker: Tracker, run_id: str, rows: list[Row]) -> None:
        self.tracker, self.run_id, self.rows = tracker, run_id, rows

    def __call__(self) -> None:
        self.tracker._write_metric_rows(self.run_id, self.rows)


class Tracker:
    def __init__(self, spec: ExperimentSpec, run_name: str | None, sweep: str | None, extra_tags: dict[str, str],
                 resume_run_id: str | None = None, started_ms: int | None = None) -> None:
        """The run is named by records.session_run_name (session.name, else the changed overrides), never by
        the run directory; `run_name` (what callers derived from it) is not used any more. `started_ms`: the
        new run's start (epoch ms; the session's launch when its trials began before MLflow opened)."""
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
            "enpire.overrides": " ".join(spec.overrides)[:records.MAX_TAG_CHARS] or "defaults",
            "enpire.label": records.label(spec.overrides, spec.session_name)[:records.MAX_TAG_CHARS],
            "mlflow.note.content": records.session_description(spec), **source_tags(), **extra_tags,
        }
        self.run_name = records.session_run_name(spec)
        if sweep:
            tags["enpire.sweep"] = sweep
        self.pending: PendingVideos | None = None  # the session's videos still to render (enpire.track.videos)
        if resume_run_id:  # resume: reopen the SAME session run (enpire.track.resume); spec already logged
            self.client.update_run(resume_run_id, status="RUNNING")
            self.run_id: str = resume_run_id
            earlier = self.client.get_run(resume_run_id).data.tags.get(vids.TAG_FILE)
            if earlier and Path(earlier).is_file():  # videos an earlier segment queued: this one goes on with them
                self.pending = PendingVideos(earlier)
                self.pending.set_closed(False)
        else:
            run = self.client.create_run(self.experiment_id, start_time=started_ms or _now_ms(), tags=tags,
                                         run_name=self.run_name)
            self.run_id = run.info.run_id
            self._log_spec()
        self._queue: queue.Queue[Callable[[], None]] = queue.Queue()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self.open_runs: dict[int, str] = {}  # iteration index -> run created before it closed (bc)
        self.creator = RunCreator(self.client, self.experiment_id)  # a retried create never makes a second run
        self.write_stats: dict[str, float] = {}  # retries through store outages (enpire.track.retry)
        self.fatal: str | None = None  # set when writing cannot go on (disk full): the loop ends the session
        self.videos = IterationVideos(spec)  # video.render=inline: the writer thread renders the shown trials
        self.render_mode = vids.render_mode(spec) if spec.video.enabled else "off"
        self.video_selection = vids.selection(spec) if spec.video.enabled else "kept"
        self.shown_count = 0  # trials shown (rendered inline or queued) this segment
        self.renderer_pid: int | None = None  # the detached renderer started by close()
        self._final_errors: list[BaseException] = []
        self.steps = TrialSteps()  # session metrics trial/*: one step per trial
        self.batch = SqlBatch.for_client(self.client, self.experiment_id)  # None: write run by run (enpire.track.batch)
        if resume_run_id:  # a resumed session goes on numbering its trials where the last segment stopped
            self.steps.restore(self.client, self.run_id)
        self._thread = threading.Thread(target=self._loop, name="enpire-mlflow", daemon=True)
        self._thread.start()

    def _experiment(self, name: str) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(name, artifact_location=self._artifact_location(name))
        except Exception:  # created concurrently by another session of a sweep
            found = self.client.get_experiment_by_name(name)
            if found is None:
                raise
            return found.experiment_id

    def _artifact_location(self, name: str) -> str | None:
        """Where a new experiment keeps its artifacts: `tracking.artifact_root` as a URI (s3://, gs:// ...) as
        given; a local folder for a local store; none for a tracking server given a relative local folder (the
        server's own artifact root: a folder on this runner's disk means nothing to runners elsewhere)."""
        root = str(self.spec.tracking.artifact_root)
        if "://" in root:
            return root.rstrip("/") + "/" + name.replace("/", "_")
        if self.spec.tracking.uri.startswith(("http://", "https://")) and not Path(root).is_absolute():
            return None
        folder = Path(root).resolve() / name.replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        return folder.as_uri()

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
        """The only consumer of the queue. `close` puts its writes before setting the stop event, so the
        drain that follows a wait which saw the event takes every one of them."""
        every = self.spec.tracking.flush_every_s
        try:
            while True:
                stopping = self._stop.wait(every)
                self._drain()
                if stopping:
                    return
        finally:
            self.videos.close()  # GL contexts belong to the thread that made them

    def _drain(self) -> None:
        """Write whatever is queued, in order: runs of batchable records (iterations, metric rows) go in one
        transaction each (at most BATCH_MAX iterations), any other op on its own."""
        while True:
            ops: list[Callable[[], None]] = []
            while True:
                try:
                    ops.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if not ops:
                return
            group: list[Callable[[], None]] = []
            iterations = 0
            for op in ops:
                if self._batchable(op):
                    group.append(op)
                    iterations += isinstance(op, _IterationWrite)
                    if iterations >= BATCH_MAX:
                        self._write_group(group)
                        group, iterations = [], 0
                    continue
                if group:
                    self._write_group(group)
                    group, iterations = [], 0
                self._run(op)
            if group:
                self._write_group(group)

    def _batchable(self, op: Callable[[], None]) -> bool:
        if self.batch is None:
            return False
        if isinstance(op, _IterationWrite):
            return op.it.index not in self.open_runs  # a run opened for training is filled by the client
        return isinstance(op, _MetricRows)

    def _run(self, op: Callable[[], None]) -> None:
        try:
            with_retry(op, self.write_stats)  # a locked/unreachable store: wait and retry, in order
        except Exception as error:  # keep writing the rest; surfaced at close()
            self._failed(error, bool(getattr(op, "enpire_final", False)))

    def _failed(self, error: BaseException, final: bool = False) -> None:
        self._errors.append(error)
        if final:
            self._final_errors.append(error)
        if self.fatal is not None:  # already said once, clearly: no traceback per later write
            log.debug("MLflow write failed after %s: %s", self.fatal, str(error).splitlines()[0][:200])
        elif is_disk_full(error):
            self.fatal = f"output disk full: MLflow write failed ({disk_full_reason(error)})"
            log.error("%s; the session stops, later writes are dropped", self.fatal)
        else:
            log.exception("MLflow write failed")

    def _write_group(self, group: list[Callable[[], None]]) -> None:
        """Iterations and metric rows in one transaction (enpire.track.batch): artifacts first, then every
        run at once, FINISHED/FAILED. A store that refuses the batch for another reason than an outage or
        a full disk gets the same records one by one, so the client says what is wrong with which."""
        batch = self.batch
        assert batch is not None
        its = [op for op in group if isinstance(op, _IterationWrite)]
        rows: dict[str, list[Row]] = {}
        try:
            for op in group:
                if isinstance(op, _MetricRows):
                    rows.setdefault(op.run_id, []).extend((k, records.rounded(v), t, s) for k, v, t, s in op.rows)
            planned = [self._prepare(op) for op in its]
            with_retry(lambda: batch.commit([run for run, _, _ in planned], rows), self.write_stats)
        except Exception as error:
            if is_transient(error) or is_disk_full(error) or self.fatal is not None:
                self._failed(error)
                return
            log.warning("batched MLflow write of %d iterations failed (%s); writing them one by one", len(its),
                        str(error).splitlines()[0][:200] if str(error) else type(error).__name__)
            batch.discard_artifacts(op.run_id for op in its if op.run_id)
            for op in group:
                self._run(op)
            return
        for op, (run, shown, queue_videos) in zip(its, planned, strict=True):
            try:
                self._closed(op.it.index, run.run_id, op.trials, shown, queue_videos)
            except Exception as error:  # its videos could not be queued; the iteration itself is in
                self._failed(error)

    def _prepare(self, op: _IterationWrite) -> tuple[NewRun, list[TrialRecord], bool]:
        """The run `op` becomes, its artifacts already in place; with the trials it shows, and whether their
        videos are queued."""
        assert self.batch is not None
        it = op.it
        tags, shown, queue_videos = self._plan(it, op.raised_best, op.shown)
        op.run_id = op.run_id or new_run_id()
        self.batch.write_artifacts(op.run_id, lambda folder: self._fill(folder, it, op.trials, op.raised_best,
                                                                        op.transcript, shown, queue_videos))
        tags = {**tags, WRITE_TAG: op.run_id}  # as every run the writer creates (its id is made here: no retry twin)
        run = NewRun(op.run_id, tags["mlflow.runName"], op.started_ms or op.ended_ms, op.ended_ms,
                     iteration_run.status(it), tags, iteration_run.params(it),
                     iteration_run.metric_rows(it, op.trials, op.ended_ms))
        return run, shown, queue_videos

    def log_iteration(self, it: IterationSummary, trials: list[TrialRecord], raised_best: bool, *,
                      transcript: list[dict] | None = None, done: bool | None = None,
                      started: float | None = None, ended: float | None = None) -> None:
        """Queue iteration `it` with its trials. `transcript` (the agent call that proposed it), when not empty,
        goes in as `agent/transcript.json`; `done` says whether its candidate met /done (shown like a kept
        iteration; when not given, a candidate whose pooled rate reaches done.min_success_rate over at least
        done.window trials counts). `started` / `ended` are `time.monotonic()` stamps of when its proposal was
        queued (Evaluation.started; for a rejected one, when its agent call began) and when the loop closed it
        (default: now): the run's start and end times. Without `started` the run starts when it ends (a run
        opened before, for training, keeps that start). Replays of trials it will not show are deleted here."""
        ended_ms = wall_ms(ended) or _now_ms()  # the run's end is when the loop closed it, not when the queue got to it
        started_ms = wall_ms(started)
        if started_ms is not None:
            started_ms = min(started_ms, ended_ms)
        trials = list(trials)
        shown = self._shown(it, trials, done)
        vids.discard(trials, keep={r.trial_id for r in shown})
        transcript = list(transcript) if transcript else None
        steps = self.steps.rows(it, trials, ended_ms)
        self._queue.put(_IterationWrite(self, it, trials, raised_best, ended_ms, shown, transcript, started_ms))
        if steps:
            self._queue.put(_MetricRows(self, self.run_id, steps))

    def _shown(self, it: IterationSummary, trials: list[TrialRecord], done: bool | None) -> list[TrialRecord]:
        if self.render_mode == "off":
            return []
        if done is None:
            d = self.spec.done
            done = it.candidate_trials >= d.window and it.candidate_success_rate >= d.min_success_rate - 1e-12
        if self.video_selection == "all" or it.decision == "keep" or done:
            return vids.shown_trials(trials)
        return []

    def open_iteration_run(self, index: int) -> str:
        """Create iteration `index`'s run now (synchronously; called from the trainer thread) so training
        can log into it before the iteration is recorded; `_write_iteration` then fills the same run."""
        tags = {"enpire.kind": "iteration", "enpire.iteration": str(index), "mlflow.parentRunId": self.run_id,
                "enpire.session": self.run_id}
        run_id = self.creator.create(("iteration", index), tags=tags, run_name=f"iter-{index:04d}",
                                     start_time=_now_ms())
        self.open_runs[index] = run_id
        return run_id

    def log_session_metrics(self, metrics: dict[str, float], step: int) -> None:
        stamp = _now_ms()
        self._queue.put(_MetricRows(self, self.run_id, [(k, v, stamp, step) for k, v in sorted(metrics.items())]))

    def _write_metrics(self, run_id: str, metrics: dict[str, float], step: int, stamp: int) -> None:
        self._write_metric_rows(run_id, [(k, v, stamp, step) for k, v in sorted(metrics.items())])

    def _write_metric_rows(self, run_id: str, rows: list[tuple[str, float, int, int]]) -> None:
        """(key, value, timestamp ms, step) rows, values rounded (records.rounded)."""
        from mlflow.entities import Metric

        items = [Metric(k, records.rounded(v), stamp, step) for k, v, stamp, step in rows]
        for chunk in _chunks(items, 1000):
            self.client.log_batch(run_id, metrics=chunk)

    def _write_iteration(self, it: IterationSummary, trials: list[TrialRecord], raised_best: bool,
                         ended_ms: int | None = None, shown: list[TrialRecord] | None = None,
                         transcript: list[dict] | None = None, started_ms: int | None = None) -> None:
        """One iteration through the client, run by run: for stores SqlBatch does not write, a run opened
        before the iteration closed (open_iteration_run), and a batch the store refused."""
        from mlflow.entities import Metric, Param, RunTag

        ended_ms = ended_ms or _now_ms()
        tags, shown, queue_videos = self._plan(it, raised_best, shown)
        run_id = self.open_runs.get(it.index)  # bc: opened before its training (open_iteration_run)
        opened = run_id is not None
        if run_id is None:
            run_id = self.creator.create(("iteration", it.index), tags=tags, run_name=tags["mlflow.runName"],
                                         start_time=started_ms or ended_ms)
            self.open_runs[it.index] = run_id  # a retried write (store locked) fills the same run
        metrics = [Metric(*row) for row in iteration_run.metric_rows(it, trials, ended_ms)]
        self.client.log_batch(run_id, metrics=metrics, params=[Param(k, v) for k, v in iteration_run.params(it)],
                              tags=[RunTag(k, v) for k, v in tags.items()] if opened else [])
        with tempfile.TemporaryDirectory() as tmp:
            self._fill(Path(tmp), it, trials, raised_best, transcript, shown, queue_videos)
            self.client.log_artifacts(run_id, tmp)
        if queue_videos:
            self._queue_videos(it.index, run_id, shown)
        self.client.set_terminated(run_id, iteration_run.status(it), end_time=ended_ms)
        self._closed(it.index, run_id, trials, shown, queue_videos, videos_queued=True)

    def _plan(self, it: IterationSummary, raised_best: bool, shown: list[TrialRecord] | None
              ) -> tuple[dict[str, str], list[TrialRecord], bool]:
        """The iteration run's tags, the trials it shows (those whose replay is still there) and whether their
        videos are queued (video.render other than inline)."""
        shown = [r for r in shown or () if r.replay and Path(r.replay).is_file()]
        queue_videos = bool(shown) and self.render_mode != "inline"
        return iteration_run.tags(it, raised_best, self.sweep, self.run_id, queue_videos), shown, queue_videos

    def _fill(self, folder: Path, it: IterationSummary, trials: list[TrialRecord], raised_best: bool,
              transcript: list[dict] | None, shown: list[TrialRecord], queue_videos: bool) -> None:
        """The iteration run's artifacts into `folder`; video.render=inline renders the shown trials here."""
        rendered: dict[str, str] = {}
        if shown and not queue_videos:  # video.render=inline
            for record in shown:
                name, _ = self.videos.render_one(record.trial_id, str(record.replay), folder / "videos")
                if name is not None:
                    rendered[record.trial_id] = name
        iteration_run.write_files(folder, it, trials, raised_best, transcript, rendered)

    def _closed(self, index: int, run_id: str, trials: list[TrialRecord], shown: list[TrialRecord],
                queue_videos: bool, videos_queued: bool = False) -> None:
        """After iteration `index` is in MLflow as `run_id`: queue its videos (unless done already), count
        what it shows, delete the replays nobody will render."""
        if queue_videos and not videos_queued:
            self._queue_videos(index, run_id, shown)
        self.open_runs.pop(index, None)
        self.shown_count += len(shown)
        vids.discard(trials, keep={r.trial_id for r in shown} if queue_videos else frozenset())

    def _queue_videos(self, index: int, run_id: str, shown: list[TrialRecord]) -> None:
        """Add the shown trials to the session's pending file (created beside the replays on first use)."""
        from mlflow.entities import RunTag

        if self.pending is None:
            path = Path(str(shown[0].replay)).resolve().parent / vids.PENDING_NAME
            self.pending = PendingVideos.create(path, self.run_id, self.spec.tracking.uri, self.spec.as_dict())
        for record in shown:
            why = "first success" if record.pass_at_1 else "typical failure"
            self.pending.add(PendingVideo(index, run_id, record.trial_id, str(Path(str(record.replay)).resolve()), why))
        self.client.log_batch(self.run_id, tags=[RunTag(vids.TAG, "pending"),
                                                 RunTag(vids.TAG_FILE, str(self.pending.path))])

    # ---- end of session -------------------------------------------------------------------------
    def close(self, final_metrics: dict[str, float], step: int, tags: dict[str, str], idea_tree: list[dict],
              summary_text: str, status: str, documents: dict[str, Any] | None = None) -> None:
        """Write everything queued, then the final metrics, tags and documents, end the run with `status`;
        then start the background renderer of the session's pending videos (video.render=background).

        The writer thread does all of it, in order; this thread only waits for it. Raises the first error of
        the final writes (the caller reports it)."""
        from mlflow.entities import RunTag

        queued = self._queue.qsize()
        if queued:
            log.info("writing %d queued records to MLflow", queued)
        tags = dict(tags)
        final = [
            lambda: self._close_videos(tags),
            lambda: self._write_metrics(self.run_id, final_metrics, step, _now_ms()),
            lambda: self.client.log_batch(self.run_id, tags=[RunTag(k, v[:records.MAX_TAG_CHARS])
                                                             for k, v in tags.items()]),
            lambda: self.client.log_dict(self.run_id, {"iterations": idea_tree}, "idea_tree.json"),
            lambda: self.client.log_dict(self.run_id, records.iteration_table(idea_tree), records.ITERATIONS_TABLE),
            lambda: self.client.set_tag(self.run_id, "mlflow.loggedArtifacts", records.logged_tables_tag(
                records.ITERATIONS_TABLE)),
            *[lambda name=name, doc=doc: self.client.log_dict(self.run_id, doc, name)
              for name, doc in (documents or {}).items()],
            lambda: self.client.log_text(self.run_id, summary_text, "summary.txt"),
            lambda: self.client.set_terminated(self.run_id, status, end_time=_now_ms()),
        ]
        for op in final:
            op.enpire_final = True  # type: ignore[attr-defined]  # its failure is close()'s to raise
            self._queue.put(op)
        self._stop.set()
        wait_s = CLOSE_WAIT_S
        self._thread.join(timeout=wait_s)
        if self._thread.is_alive():  # it keeps the queue: nothing here takes from it (one writer, always)
            self._errors.append(TimeoutError(f"MLflow writer still busy after {wait_s:.0f} s"))
            log.error("the MLflow writer is still busy after %.0f s (%d records queued); the session run may lack "
                      "its last records", wait_s, self._queue.qsize())
        stats = self.write_stats
        if stats:
            log.warning("MLflow store outages survived: %s", stats)
        if self._errors:
            log.error("%d MLflow writes failed; first: %r", len(self._errors), self._errors[0])
        if self._final_errors:
            raise self._final_errors[0]
        if self._thread.is_alive():
            raise self._errors[-1]
        if self.render_mode == "background" and self.pending is not None and int(tags.get(vids.TAG_PENDING, "0")):
            self.renderer_pid = start_renderer(self.pending.path)
            log.info("rendering %s videos in the background (pid %d, log %s); the session run's tag %s turns "
                     "'done' once they are in MLflow (python -m enpire.report --videos waits for it)",
                     tags[vids.TAG_PENDING], self.renderer_pid, renderer_log(self.pending.path), vids.TAG)
        elif self.render_mode == "on_demand" and int(tags.get(vids.TAG_PENDING, "0")):
            log.info("%s videos pending (video.render=on_demand): python -m enpire.report --videos renders them",
                     tags[vids.TAG_PENDING])

    def _close_videos(self, tags: dict[str, str]) -> None:
        """Say in `tags` where the session's videos stand (written with the other final tags)."""
        if self.render_mode == "off":
            return
        if self.pending is None:
            tags[vids.TAG] = "done" if self.shown_count else "none"
            return
        self.pending.set_closed(True)
        todo = self.pending.read().todo
        tags[vids.TAG] = "pending" if todo else "done"
        tags[vids.TAG_PENDING] = str(len(todo))


def renderer_log(pending: Path) -> Path:
    return pending.with_name("videos_render.log")


_RENDERERS: list[subprocess.Popen] = []  # held so the Popen objects outlive close(); the processes are detached


def start_renderer(pending: Path) -> int:
    """Start `python -m enpire.track.render_pending FILE` detached (own session: it outlives this process and a
    Ctrl-C of the terminal); returns its pid. Its output goes to `videos_render.log` beside the file."""
    with open(renderer_log(pending), "ab") as out:
        proc = subprocess.Popen([sys.executable, "-m", "enpire.track.render_pending", str(pending)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True)
    _RENDERERS.append(proc)
    return proc.pid
