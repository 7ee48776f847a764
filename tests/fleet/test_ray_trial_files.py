"""A trial's files travel as bytes (enpire.fleet.trial_files): taken off the station's disk, written where the
runner keeps its trials. Fast: plain files, no Ray, no MuJoCo."""

from __future__ import annotations

from pathlib import Path

from enpire.fleet.trial_files import place_files, take_files
from enpire.records import TrialRecord


def _record(**paths: str | None) -> TrialRecord:
    return TrialRecord(trial_id="t-1", iteration=0, station=0, seed=1, outcome="success", attempts=1,
                       success_attempt=1, pass_at_1=True, pass_at_k=True, robot_seconds=1.0, wall_s=0.1, steps=10,
                       clamps=0, **paths)


def test_files_leave_the_station_disk_and_land_in_the_runner_folder(tmp_path: Path) -> None:
    station, runner = tmp_path / "station-private", tmp_path / "run" / "trials"
    station.mkdir()
    (station / "t-1.npz").write_bytes(b"replay-bytes")
    (station / "t-1.mp4").write_bytes(b"video-bytes")
    record = _record(replay=str(station / "t-1.npz"), video=str(station / "t-1.mp4"),
                     trajectory=str(station / "gone.npz"))  # unreadable: reported, not raised
    files = take_files(record)
    assert files == {"replay": b"replay-bytes", "video": b"video-bytes"}
    assert list(station.iterdir()) == []  # nothing piles up on the station
    place_files(record, files, runner)
    assert record.replay == str(runner / "t-1.npz") and Path(record.replay).read_bytes() == b"replay-bytes"
    assert record.video == str(runner / "t-1.mp4") and Path(record.video).read_bytes() == b"video-bytes"
    assert record.trajectory is None  # no bytes came back: no path that points at the station's disk


def test_files_over_the_limit_stay_on_the_station(tmp_path: Path) -> None:
    (tmp_path / "big.mp4").write_bytes(b"x" * 100)
    record = _record(video=str(tmp_path / "big.mp4"))
    assert take_files(record, max_bytes=10) == {}
    assert (tmp_path / "big.mp4").exists()


def test_remote_stations_base64_files_land_the_same_way(tmp_path: Path) -> None:
    """executor=remote decodes its wire format and hands the bytes to the same module."""
    import base64

    from enpire.fleet.remote import RemoteExecutor

    record = _record(replay="/station/disk/t-1.npz", video="/station/disk/t-1.mp4")
    RemoteExecutor._write_files(record, {"replay": base64.b64encode(b"npz").decode("ascii")}, tmp_path)
    assert record.replay == str(tmp_path / "t-1.npz") and (tmp_path / "t-1.npz").read_bytes() == b"npz"
    assert record.video is None
