"""No shared disk: stations on two Ray nodes write into private folders of their own nodes (each node's TMPDIR,
never the runner's run directory), and everything the runner needs from them comes back through Ray's object
store: the replays the videos are rendered from, the trajectories, and, the other way, a bc checkpoint.
Real Ray nodes, real MuJoCo stations, MLflow on SQLite. Slow."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from enpire.fleet.ray_executor import READY_MESSAGE
from enpire.spec import load_spec
from tests.distributed.cluster import TwoNodeCluster
from tests.fleet.support import run

pytestmark = pytest.mark.slow


def _files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def test_replays_videos_and_trajectories_reach_the_runner_without_a_shared_disk(
        cluster: TwoNodeCluster, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="enpire.fleet.ray_executor")
    uri, run_dir = f"sqlite:///{tmp_path}/mlflow.db", tmp_path / "run"
    spec = load_spec(["task=drawer", "fleet=2", "seed=1", "executor=ray", f"executor.address={cluster.address}",
                      "executor.resources={enpire_station:1}", "video.enabled=true", "video.render=inline",
                      "record.trajectories=all", f"tracking.uri={uri}", f"tracking.artifact_root={tmp_path}/artifacts"])
    code, summary, _ = run(spec, run_dir)
    assert code == 0 and int(summary["trials"]) > 0
    private = [cluster.private_dir("a"), cluster.private_dir("b")]
    wrote_in = [Path(str(r.args[4])) for r in caplog.records if r.msg == READY_MESSAGE]  # type: ignore[index]
    assert len(wrote_in) == 2 and {w.parent for w in wrote_in} == set(private)  # one station per node, privately

    rows = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines() if line.strip()]
    trials = [row["record"] for row in rows if row["kind"] == "trial"]
    assert {t["station"] for t in trials} == {0, 1}
    for trial in trials:  # every trajectory is a file in the runner's run directory, with the recorded steps
        path = Path(trial["trajectory"])
        assert path.is_relative_to(run_dir) and path.is_file(), trial["trajectory"]
        with np.load(path) as arrays:
            assert len(arrays.files) > 0
    text = (run_dir / "journal.jsonl").read_text()
    assert not any(str(p) in text for p in private)  # no record points at a station's disk

    # videos were rendered by the runner from replays that came back as bytes
    client = MlflowClient(tracking_uri=uri)
    session = client.get_run(summary["session_id"])
    children = client.search_runs([session.info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{summary['session_id']}'", max_results=1000)
    videos = [a.path for c in children for a in client.list_artifacts(c.info.run_id, "videos")]
    assert videos and all(v.endswith(".mp4") for v in videos)

    # the stations wrote on their own nodes, and left nothing behind there
    for folder in private:
        assert _files_under(folder) == [], _files_under(folder)[:5]


def test_a_bc_checkpoint_reaches_stations_on_both_nodes_through_the_object_store(
        cluster: TwoNodeCluster, tmp_path: Path) -> None:
    import hashlib
    import time

    import ray

    from enpire.fleet.ray_executor import RayExecutor
    from enpire.records import Candidate, TrialRecord, TrialRequest

    checkpoint = tmp_path / "runner-only" / "bc.ckpt"  # a folder only the runner has
    checkpoint.parent.mkdir()
    checkpoint.write_bytes(np.random.default_rng(0).bytes(200_000))
    want = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    spec = load_spec(["task=drawer", "fleet=2", "video.enabled=false", "executor=ray",
                      f"executor.address={cluster.address}", "executor.station_resources=[{rack_a:1},{rack_b:1}]"])
    executor = RayExecutor(spec, "tests.distributed.stations:checkpoint_reader")
    executor.start()
    try:
        got: list[TrialRecord] = []
        for k in range(4):  # twice per station: the second trial reuses the station's copy
            for station in (0, 1):
                while station not in executor.idle():
                    got += executor.wait(0.1)
                executor.submit(station, TrialRequest(
                    trial_id=f"bc-{k}-{station}", iteration=0, seed=k,
                    candidate=Candidate("bc-0", kind="bc", checkpoint=str(checkpoint)), out_dir=str(tmp_path)))
        deadline = time.monotonic() + 60
        while len(got) < 8 and time.monotonic() < deadline:
            got += executor.wait(0.2)
    finally:
        executor.close()
        ray.shutdown()
    assert len(got) == 8
    for record in got:
        digest, path = record.reason.split(" ", 1)
        assert digest == want  # the same bytes...
        node = "a" if record.station == 0 else "b"
        assert Path(path).is_relative_to(cluster.private_dir(node))  # ...read from the station's own disk
