"""The Claude agent's evidence: stills of real trials and investigation tools, against the Messages API stand-in.

The trials are real (reach on a MuJoCo station, with replays), kept by the same EvidenceStore the loop uses;
the stand-in is a real HTTP server. What a user would notice: the model is shown a failed and a successful
trial as images, its tool calls are answered (records, frames, candidates) and bounded, every token billed is
counted, and the transcript holds the whole exchange without the image bytes.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import shutil
from pathlib import Path
from typing import Any

import imageio.v3 as iio
import numpy as np
import pytest

from enpire.agent.calls import strict_lag
from enpire.agent.claude_prompt import DATA_TAG, TOOL_NAME
from enpire.agent.evidence import EvidenceMissing, EvidenceStore, TrialNote
from enpire.fleet.stations import make_station
from enpire.records import Candidate, TrialRecord, TrialRequest
from enpire.spec import ExperimentSpec, load_spec
from enpire.world.replay import ReplayRenderer
from tests.agent.fake_anthropic import FakeMessagesAPI, research_state, tool_call, usage
from tests.agent.test_claude_agent import make, params_proposal, summary
from tests.fleet.support import ScriptedAgent, run, spec_of

SIZE = (96, 72)  # small frames keep the test fast; the shipped default is 256 x 192


@pytest.fixture(scope="module")
def reach() -> ExperimentSpec:
    return load_spec(["agent=claude", "budget=smoke", "task=reach", "video.fps=5",
                      f"agent.image_size=[{SIZE[0]},{SIZE[1]}]"])


@pytest.fixture(scope="module")
def kept(reach: ExperimentSpec, tmp_path_factory: pytest.TempPathFactory) -> tuple[EvidenceStore, list[TrialRecord]]:
    """Iteration 0: a failing reach (a crawl at 2 cm/s) and iteration 1: the default (succeeds), real trials."""
    out = tmp_path_factory.mktemp("trials")
    station = make_station(reach, 0)
    slow = {**reach.policy.defaults(), "speed": 0.02}
    records = [station.run_trial(TrialRequest(f"i000{i}-t00{i}", i, 5 + i, Candidate(f"c{i}", params=params),
                                              record_replay=True, out_dir=str(out)))
               for i, params in enumerate((slow, reach.policy.defaults()))]
    assert [r.success for r in records] == [False, True]
    store = EvidenceStore(reach, out / "evidence", SIZE)
    for i, record in enumerate(records):
        store.keep(summary(reach, i, params_proposal(reach, f"iteration {i}"), float(record.success),
                           candidate_id=f"c{i}"), [record])
        Path(str(record.replay)).unlink()  # as the MLflow writer does: the store's link must survive it
    yield store, records
    store.close()


def _state(reach: ExperimentSpec, store: EvidenceStore) -> Any:
    its = tuple(summary(reach, i, params_proposal(reach, f"iteration {i}"), float(i), candidate_id=f"c{i}")
                for i in range(2))
    return dataclasses.replace(research_state(reach, iterations=its), evidence=store.view())


def _png(block: dict[str, Any]) -> np.ndarray:
    assert block["type"] == "image" and block["source"]["media_type"] == "image/png"
    return iio.imread(io.BytesIO(base64.b64decode(block["source"]["data"])))


def test_stills_of_a_failed_and_a_successful_trial_reach_the_request(reach: ExperimentSpec, kept: Any) -> None:
    store, records = kept
    proposal = params_proposal(reach, "The crawl times out: move faster.", 0.6)
    with FakeMessagesAPI([tool_call(proposal, usage(2900, 80))]) as api:
        agent = make(reach, api)
        reply = agent.propose(_state(reach, store))
    assert reply.proposal == proposal and reply.error is None
    (body,) = api.message_requests()
    content = body["messages"][0]["content"]
    images = [b for b in content if b["type"] == "image"]
    captions = [json.loads(b["text"].split("\n")[1]) for b in content if b["type"] == "text" and
                b["text"].startswith(f'<{DATA_TAG} name="still"')]
    assert len(images) == 2 and {c["trial_id"] for c in captions} == {r.trial_id for r in records}
    assert [c["success"] for c in captions] == [False, True]  # the failure first, then the success
    strips = [_png(b) for b in images]
    assert all(s.shape == (SIZE[1], 3 * SIZE[0], 3) for s in strips)  # start, middle, end side by side
    assert not np.array_equal(strips[0], strips[1])  # two different trials
    assert reply.tokens == 2980 == api.tokens_returned  # image tokens are in what the API billed
    sent = reply.transcript[0]["request"]["messages"][0]["content"]
    kept_images = [b for b in sent if b["type"] == "image"]
    assert all("data" not in b["source"] for b in kept_images)  # the transcript keeps digests, not bytes
    assert [b["source"]["sha256"] for b in kept_images] == \
        [hashlib.sha256(base64.b64decode(b["source"]["data"])).hexdigest() for b in images]


def test_investigation_calls_are_answered_then_the_proposal_is_forced(reach: ExperimentSpec, kept: Any) -> None:
    store, records = kept
    failed = records[0].trial_id
    proposal = params_proposal(reach, "The failed trial never got near the target: speed it up.", 0.7)
    script = [tool_call({"iteration": 0}, usage(3000, 20), name="list_trials"),
              tool_call({"trial_id": failed}, usage(3100, 20), name="read_trial"),
              tool_call({"trial_id": failed, "at": [0.0, 1.0]}, usage(3300, 20), name="trial_frames"),
              tool_call({"iteration": 1}, usage(3400, 20), name="read_candidate"),
              tool_call(proposal, usage(3500, 90))]
    with FakeMessagesAPI(script) as api:
        agent = make(reach, api, images=0, max_tool_calls=4)
        reply = agent.propose(_state(reach, store))
    assert reply.proposal == proposal and reply.error is None
    bodies = api.message_requests()
    assert [b["tool_choice"]["type"] for b in bodies] == ["any"] * 4 + ["tool"]  # the fifth may only propose
    assert bodies[-1]["tool_choice"]["name"] == TOOL_NAME
    results = [b["messages"][-1]["content"][0] for b in bodies[1:]]
    assert all(r["type"] == "tool_result" and not r.get("is_error") for r in results)
    listed = json.loads(results[0]["content"].split("\n")[1])
    assert [(row["trial_id"], row["success"], row["frames"]) for row in listed] == [(failed, False, True)]
    record = json.loads(results[1]["content"].split("\n")[1])["record"]
    assert record["outcome"] == records[0].outcome and record["final_state"].keys() == records[0].final_state.keys()
    assert record["attribution"][0]["failing"] is not None  # why it failed, per attempt
    frames = results[2]["content"]
    assert frames[0]["text"].startswith(f'<{DATA_TAG} name="frames"') and _png(frames[1]).shape == \
        (SIZE[1], 2 * SIZE[0], 3)
    assert '"speed"' in results[3]["content"] and f"<{DATA_TAG}" in results[3]["content"]
    assert reply.tokens == api.tokens_returned and len(reply.transcript) == 5  # the whole exchange
    assert '"data": ' not in json.dumps(reply.transcript)  # the frames answer's image kept as a digest too


def test_a_bad_or_unbounded_investigation_is_answered_with_an_error(reach: ExperimentSpec, kept: Any) -> None:
    store, records = kept
    proposal = params_proposal(reach, "A faster reach should arrive in time.", 0.7)
    script = [tool_call({"trial_id": records[0].trial_id, "at": [0, 0.2, 0.4, 0.6]}, name="trial_frames"),
              tool_call({"trial_id": "i9999-t999"}, name="read_trial"),
              tool_call({"iteration": 0}, name="list_trials"),  # past max_tool_calls=2: a correction
              tool_call(proposal)]
    with FakeMessagesAPI(script) as api:
        reply = make(reach, api, images=0, max_tool_calls=2).propose(_state(reach, store))
    assert reply.proposal == proposal
    results = [b["messages"][-1]["content"][0] for b in api.message_requests()[1:]]
    assert all(r["is_error"] for r in results)
    assert "input.at" in results[0]["content"]  # four frames asked, three allowed: the key path named
    assert "no trial 'i9999-t999'" in results[1]["content"]
    assert "max_tool_calls=2" in results[2]["content"]
    assert reply.tokens == api.tokens_returned


def _copies(records: list[TrialRecord], store: EvidenceStore, folder: Path) -> list[TrialRecord]:
    """The records again, each with a fresh copy of its kept replay (as a station would hand them over)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for r in records:
        path = folder / f"{r.trial_id}.replay.npz"
        shutil.copyfile(store.root / f"{r.trial_id}.npz", path)
        out.append(dataclasses.replace(r, replay=str(path)))
    return out


def test_old_replays_are_pruned_and_a_new_store_starts_empty(reach: ExperimentSpec, kept: Any,
                                                            tmp_path: Path) -> None:
    store, records = kept
    small = EvidenceStore(reach, tmp_path / "evidence", SIZE, keep_replays=1)
    (tmp_path / "evidence").mkdir(exist_ok=True)
    (tmp_path / "evidence" / "i0000-t000.npz").write_bytes(b"another session's replay")
    small2 = EvidenceStore(reach, tmp_path / "evidence", SIZE, keep_replays=1)  # same run dir: emptied
    assert not (tmp_path / "evidence").exists()
    for i in range(4):  # four iterations of one failed trial each
        (r,) = _copies([records[0]], store, tmp_path / f"trials{i}")
        small2.keep(summary(reach, i, params_proposal(reach, f"iteration {i}"), 0.0, candidate_id=f"c{i}"),
                    [dataclasses.replace(r, trial_id=f"i000{i}-t000", iteration=i)])
    assert len(list((tmp_path / "evidence").glob("*.npz"))) == small2.retain == 3  # 1 shown + what strict may see
    view = small2.view()
    assert [n.trial_id for n in view.notes if n.replay] == ["i0003-t000"]  # only the newest keeps frames
    assert (view.notes[0].trial_id, view.has_frames(view.notes[0])) == ("i0000-t000", False)
    small.close()
    small2.close()


def test_without_replays_or_gl_the_agent_still_proposes_and_is_told_why(reach: ExperimentSpec, kept: Any,
                                                                       tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    store, records = kept
    off = EvidenceStore(dataclasses.replace(reach, video=dataclasses.replace(reach.video, enabled=False)),
                        tmp_path / "off", SIZE)
    off.keep(summary(reach, 0, params_proposal(reach, "iteration 0"), 0.0), _copies(records[:1], store, tmp_path))
    with pytest.raises(EvidenceMissing, match=r"video\.enabled=false"):
        off.view().frames(records[0].trial_id, [0.5])

    def no_gl(self: Any) -> None:
        raise RuntimeError("Cannot create an EGL context.")

    monkeypatch.setattr(ReplayRenderer, "frames_ready", no_gl)
    broken = EvidenceStore(reach, tmp_path / "broken", SIZE)
    for i, r in enumerate(_copies(records, store, tmp_path / "again")):
        broken.keep(summary(reach, i, params_proposal(reach, f"iteration {i}"), float(r.success)), [r])
    proposal = params_proposal(reach, "Without pictures: a faster reach should arrive in time.", 0.6)
    script = [tool_call({"trial_id": records[0].trial_id, "at": [0.5]}, name="trial_frames"), tool_call(proposal)]
    with FakeMessagesAPI(script) as api:
        reply = make(reach, api).propose(dataclasses.replace(_state(reach, broken), evidence=broken.view()))
    assert reply.proposal == proposal and reply.error is None and reply.tokens == api.tokens_returned
    first, second = api.message_requests()
    assert isinstance(first["messages"][0]["content"], str)  # no stills, and no crash
    answer = second["messages"][-1]["content"][0]
    assert answer["is_error"] and "EGL context" in answer["content"]
    off.close()
    broken.close()


class LookingAgent(ScriptedAgent):
    """Renders the frames of the latest kept trial with a replay, as Claude's tools would, during its call."""

    wants_evidence = True
    evidence_size = SIZE

    def __init__(self, proposals: list[Any]) -> None:
        super().__init__(proposals)
        self.frames: list[tuple[TrialNote, bytes, list[float]]] = []
        self.newest_seen: list[int] = []  # per call (= its index: one agent, one proposal a call)

    def propose(self, state: Any) -> Any:
        notes = [n for n in state.evidence.notes if n.replay] if state.evidence is not None else []
        self.newest_seen.append(max((n.iteration for n in state.evidence.notes), default=-1))
        if notes:
            self.frames.append((notes[-1], *state.evidence.frames(notes[-1].trial_id, [0.0, 1.0])))
        return super().propose(state)


def test_the_loop_keeps_evidence_for_agents_that_look(tmp_path: Path) -> None:
    # strict: a call sees the iterations below its horizon, all closed (fast would ask all five ahead)
    spec = spec_of("task=reach", "video.enabled=true", "video.fps=5", "budget.iterations=5", "determinism=strict")
    slow = {"hypothesis": "A crawl that times out.", "parent": None, "trials": 1,
            "candidate": {"kind": "params", "params": {**spec.policy.defaults(), "speed": 0.02}}}
    agent = LookingAgent([slow])
    code, _, _ = run(spec, tmp_path / "run", agents=[agent])
    assert code == 0
    assert agent.frames, "no call saw the evidence of a closed iteration"
    lag = strict_lag(1, (1,))  # call j sees only the iterations below j - lag, however many have closed
    assert all(newest < max(0, j - lag) for j, newest in enumerate(agent.newest_seen)), (agent.newest_seen, lag)
    note, png, times = agent.frames[-1]
    assert note.record["outcome"] == "failure" and not note.success and note.iteration < len(agent.states) - 1
    assert iio.imread(io.BytesIO(png)).shape == (SIZE[1], 2 * SIZE[0], 3) and times[0] < times[1]
    assert len(list((tmp_path / "run" / "evidence").glob("*.npz"))) == 5  # the failure of each iteration
