"""The station server on loopback (a real subprocess): the protocol, the token, the lease, and the
runner-side refusal of a station whose judge differs from the session's."""

from __future__ import annotations

import http.client
import json
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from enpire.fleet.executors import make_executor
from enpire.records import Candidate, TrialRequest
from enpire.spec import load_spec
from enpire.spec.errors import IntegrityError
from enpire.station.client import StationClient, StationError
from enpire.station.protocol import record_from_json, request_to_json
from tests.station.support import ROOT, TOKEN, StationServer, env


@pytest.fixture(scope="module")
def station(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StationServer]:
    with StationServer(tmp_path_factory.mktemp("station") / "s0") as server:
        server.wait_ready()
        yield server


def _request(trial_id: str, seed: int = 0) -> TrialRequest:
    spec = load_spec(["task=drawer"])
    return TrialRequest(trial_id, 0, seed, Candidate("defaults", params=spec.policy.defaults()))


def _run(client: StationClient, owner: str, request: TrialRequest) -> dict:
    channel = client.channel()
    try:
        channel.send({"type": "run_trial", "owner": owner, "request": request_to_json(request)})
        seq = 0
        while True:
            message = channel.recv(0.05)
            if message is None:
                seq += 1
                channel.send({"type": "heartbeat", "owner": owner, "seq": seq, "trial_id": request.trial_id})
            elif message["type"] in ("trial_record", "error"):
                return message
    finally:
        channel.close()


def test_a_trial_runs_on_the_station_and_is_never_run_twice(station: StationServer) -> None:
    client = StationClient(station.address, TOKEN)
    info = client.info()
    spec = load_spec(["task=drawer"])
    assert info["fingerprints"] == {"done_sha256": spec.fingerprints.done_sha256,
                                    "safety_sha256": spec.fingerprints.safety_sha256}
    assert (info["adapter"], info["physical"], info["dry_run"]) == ("mujoco", False, False)
    assert client.activate("runner-a", "s", 30)["type"] == "lease"
    try:
        first = _run(client, "runner-a", _request("t-once", seed=5))
        assert first["type"] == "trial_record"
        record = record_from_json(first["record"])
        assert record.trial_id == "t-once" and record.seed == 5 and record.outcome != "crash" and record.steps > 0
        again = _run(client, "runner-a", _request("t-once", seed=5))  # the same id: the stored record, not a rerun
        assert again == first
        assert client.health()["trials"] == 1
        assert client.record("t-once") == first
    finally:
        client.release("runner-a")


def test_wrong_or_missing_token_is_refused_and_nothing_runs(station: StationServer) -> None:
    before = StationClient(station.address, TOKEN).health()["trials"]
    for token in ("wrong-token", ""):
        bad = StationClient(station.address, token)
        for call in (bad.info, bad.health, lambda b=bad: b.activate("intruder", "s", 30),
                     lambda b=bad: b.estop("x"), lambda b=bad: b.record("t-once")):
            with pytest.raises(StationError) as refused:
                call()
            assert refused.value.code == "unauthorized"
            assert "wrong-token" not in str(refused.value)
        channel = bad.channel()
        message = channel.recv(5.0)
        assert message is not None and message["code"] == "unauthorized"
        with pytest.raises(StationError):
            channel.send({"type": "run_trial", "owner": "intruder", "request": request_to_json(_request("t-bad"))})
            channel.recv(2.0)
    health = StationClient(station.address, TOKEN).health()
    assert health["trials"] == before and health["lease"] is None and health["estopped"] is None
    assert "wrong-token" not in station.log.read_text()


def test_second_runner_is_refused_naming_the_holder(station: StationServer) -> None:
    a, b = StationClient(station.address, TOKEN), StationClient(station.address, TOKEN)
    a.activate("runner-a@host1", "session-a", 30)
    try:
        with pytest.raises(StationError) as refused:
            b.activate("runner-b@host2", "session-b", 30)
        assert refused.value.code == "leased" and refused.value.holder == "runner-a@host1"
        assert "runner-a@host1" in str(refused.value) and "session-a" in str(refused.value)
        reply = _run(b, "runner-b@host2", _request("t-stolen"))
        assert reply["type"] == "error" and reply["code"] == "leased"
    finally:
        a.release("runner-a@host1")
    assert b.activate("runner-b@host2", "session-b", 30)["owner"] == "runner-b@host2"  # free once released
    b.release("runner-b@host2")


def test_messages_outside_the_protocol_are_refused(station: StationServer) -> None:
    host, port = station.address.split(":")
    for body, where in ((b'{"type": "activate", "owner": "x"}', "session"),
                        (json.dumps({"type": "activate", "owner": "x", "session": "s", "ttl_s": -1}).encode(), "ttl_s"),
                        (pickle.dumps({"type": "activate"}), "not JSON")):
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("POST", "/v1/activate", body=body, headers={"Authorization": f"Bearer {TOKEN}"})
        response = conn.getresponse()
        doc = json.loads(response.read())
        conn.close()
        assert response.status == 422 and doc["code"] == "invalid" and where in doc["message"], doc
    assert StationClient(station.address, TOKEN).health()["lease"] is None


@pytest.mark.slow  # 4-5 s: with the slow tests in CI, keeping `make test` under ten minutes
def test_a_station_with_other_done_criteria_is_refused_at_start(tmp_path: Path) -> None:
    with StationServer(tmp_path / "tampered", "done.episode.attempts=1") as tampered:
        tampered.wait_ready()
        spec = load_spec(["task=drawer", "executor=remote", f"executor.stations=[{tampered.address}]"])
        executor = make_executor(spec)
        with pytest.raises(IntegrityError) as breach:
            executor.launch()
        executor.close()
        assert breach.value.what == "done" and tampered.address in str(breach.value)
        r = subprocess.run([sys.executable, "-m", "enpire", "task=drawer", "executor=remote",
                            f"executor.stations=[{tampered.address}]", "video.enabled=false",
                            f"tracking.uri=sqlite:///{tmp_path}/mlflow.db", f"hydra.run.dir={tmp_path}/run",
                            f"supervision.control_root={tmp_path}/control"],
                           cwd=ROOT, env=env(), capture_output=True, text=True, timeout=300)
        assert r.returncode == 3, r.stderr[-2000:]
        assert "integrity breach: done fingerprint" in r.stdout + r.stderr
        assert StationClient(tampered.address, TOKEN).health()["trials"] == 0  # nothing ran


def test_runner_with_wrong_token_starts_no_station(station: StationServer) -> None:
    spec = load_spec(["task=drawer", "executor=remote", f"executor.stations=[{station.address}]",
                      "executor.token_env=ENPIRE_TEST_WRONG_TOKEN"])
    import os

    os.environ["ENPIRE_TEST_WRONG_TOKEN"] = "not-the-token"
    try:
        executor = make_executor(spec)
        with pytest.raises(RuntimeError, match="no station could start"):
            executor.start()
        assert "unauthorized" in executor.faulty()[0] or "wrong token" in executor.faulty()[0]
        executor.close()
    finally:
        del os.environ["ENPIRE_TEST_WRONG_TOKEN"]


def test_the_event_stream_shows_a_trial_an_estop_and_refuses_strangers(station: StationServer) -> None:
    """`python -m enpire.station events` (a real subprocess) follows a trial from busy to idle and an estop."""
    refused = StationClient(station.address, "wrong-token").events(timeout_s=5.0).recv(5.0)
    assert refused is not None and refused["type"] == "error" and refused["code"] == "unauthorized"
    follower = subprocess.Popen([sys.executable, "-m", "enpire.station", "events", station.address], cwd=ROOT,
                                env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[list[str]] = []
    try:
        assert follower.stdout is not None and "following" in follower.stdout.readline()
        client = StationClient(station.address, TOKEN)
        client.activate("runner-e", "s", 30)
        try:
            record = record_from_json(_run(client, "runner-e", _request("t-events", seed=3))["record"])
            client.estop("events test")
            client.clear_estop("events test")
        finally:
            client.release("runner-e")
        for line in follower.stdout:
            lines.append(line.split(maxsplit=3))
            if "released by runner-e" in line:
                break
    finally:
        follower.kill()
        follower.wait(timeout=10)
    kinds = [parts[1] for parts in lines if parts[1] not in ("progress", "safety")]
    assert kinds == ["lease", "busy", "idle", "estop", "estop_cleared", "lease"], lines
    idle = next(parts for parts in lines if parts[1] == "idle")
    assert idle[2] == "t-events" and idle[3].startswith(record.outcome)
    assert all(parts[2] == "t-events" for parts in lines if parts[1] in ("busy", "progress", "safety"))
