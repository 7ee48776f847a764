"""The output disk fills up mid-session (a real 4 MiB tmpfs holding the MLflow store, artifacts and run dir)."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.fleet.support import migrated_store, run, spec_of
from tests.reliability.ctl_support import figure, trial_rows
from tests.reliability.support import add_figure

__all__ = ["migrated_store"]


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Path:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(folder: Path) -> int:
    """Write until the disk refuses: returns the bytes written."""
    written = 0
    with open(folder / "filler.bin", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
                written += 65536
        except OSError:
            pass
    return written


@pytest.mark.slow
def test_disk_full_mid_session_ends_with_a_clear_error_and_corrupts_nothing(
        migrated_store: Path, tiny_disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.copy(migrated_store, tiny_disk / "mlflow.db")
    spec = spec_of(f"tracking.uri=sqlite:///{tiny_disk}/mlflow.db", f"tracking.artifact_root={tiny_disk}/artifacts",
                   "budget=smoke", "budget.iterations=12", "budget.trials=24", "budget.robot_seconds=10000",
                   "budget.wall_clock_s=120", "tracking.flush_every_s=0.2",
                   "agent.trials_per_candidate=2", f"supervision.control_root={tmp_path}/control")
    filled: list[int] = []

    def fill_after_two(summary: object) -> None:
        if len(seen) == 2:  # once the writer has the first two iterations in MLflow (it writes on its own thread)
            client = MlflowClient(tracking_uri=spec.tracking.uri)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                experiment = client.get_experiment_by_name(spec.experiment_name)
                runs = client.search_runs([experiment.experiment_id], "tags.`enpire.kind` = 'iteration'") \
                    if experiment else []
                if sum(r.info.status == "FINISHED" for r in runs) >= 2:
                    break
                time.sleep(0.1)
            filled.append(fill(tiny_disk))
        seen.append(summary)

    seen: list[object] = []
    code, summary, text = run(spec, tiny_disk / "run", on_iteration=fill_after_two)
    assert filled, "the disk was never filled"
    assert code == 1, text
    assert "output disk full" in summary["stopped_by"], summary["stopped_by"]
    assert int(summary["iterations"]) < 12  # nothing more ran once nothing more could be recorded
    # nothing recorded is corrupted: free the space, then the store passes SQLite's integrity check and every
    # iteration written before the disk filled reads back whole
    # the session run was ended FAILED with the reason (the ballast freed room for it), said in one error line
    session = MlflowClient(tracking_uri=spec.tracking.uri).get_run(summary["session_id"])
    assert session.info.status == "FAILED"
    assert "disk full" in session.data.tags["enpire.stopped_by"]
    tracebacks = [r for r in caplog.records if r.exc_info and r.name.startswith("enpire")]
    assert len(tracebacks) <= 1, [r.getMessage() for r in tracebacks]  # once said, not 68 times
    assert any("disk is full" in r.getMessage() or "disk full" in r.getMessage() for r in caplog.records
               if r.levelname == "ERROR")
    assert not list(tiny_disk.glob(".*ballast*"))  # released at the end
    (tiny_disk / "filler.bin").unlink()
    with sqlite3.connect(tiny_disk / "mlflow.db") as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    client = MlflowClient(tracking_uri=spec.tracking.uri)
    session = client.get_run(summary["session_id"])
    assert session.data.tags["enpire.kind"] == "session"
    complete = [r for r in client.search_runs([session.info.experiment_id],
                                              filter_string=f"tags.`enpire.session` = '{summary['session_id']}'")
                if r.info.status == "FINISHED"]
    assert len(complete) >= 2
    rows = trial_rows(spec.tracking.uri, summary["session_id"]) if len(complete) else []
    assert len(rows) >= 2 * 2 and all(r["outcome"] in ("success", "failure", "unsafe") for r in rows)
    add_figure("faults injected")
    add_figure("faults survived")
    figure("disk_full_iterations_intact", len(complete))
    figure("disk_full_bytes_filled", filled[0])
    figure("disk_full_stopped_by", summary["stopped_by"][:160])
