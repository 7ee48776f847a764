"""The station protocol's messages: JSON objects checked against specs/station_protocol.schema.json on both
ends, and the conversions between them and enpire.records (TrialRequest, TrialRecord). Never pickle: a
station may sit on a robot's computer and a runner must not be able to make it execute anything but a trial.

Also here: where the shared secret comes from (an env var or a file, never a config value).
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jsonschema

from enpire.records import Candidate, SafetyEvent, TrialRecord, TrialRequest

PROTOCOL = 1
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "specs" / "station_protocol.schema.json"
TOKEN_ENV = "ENPIRE_STATION_TOKEN"  # default name of the env var that holds the token
MAX_FILE_BYTES = 16 * 1024 * 1024  # a trial's video/replay/trajectory larger than this stays on the station


class ProtocolError(ValueError):
    """A message that is not one of the protocol's, or breaks its schema; the message names the path."""


@functools.cache
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@functools.cache
def _validator(kind: str) -> jsonschema.protocols.Validator:
    doc = schema()
    if kind not in doc["$defs"]:
        raise ProtocolError(f"type: got {kind!r}; expected one of the protocol's messages")
    return jsonschema.Draft202012Validator({"$defs": doc["$defs"], "$ref": f"#/$defs/{kind}"})


def check(message: Any, expect: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """`message` if it is a valid protocol message (of type `expect`), else ProtocolError naming the problem."""
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("message: expected a JSON object with a string `type`")
    kind = message["type"]
    allowed = (expect,) if isinstance(expect, str) else expect
    if allowed is not None and kind not in allowed:
        raise ProtocolError(f"type: got {kind!r}; expected {' or '.join(allowed)}")
    error = next(iter(sorted(_validator(kind).iter_errors(message), key=lambda e: list(e.path))), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(message)"
        raise ProtocolError(f"{kind}.{where}: {error.message}")
    return message


def parse(text: str | bytes, expect: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    try:
        message = json.loads(text)
    except ValueError as error:
        raise ProtocolError(f"message: not JSON ({error})") from None
    return check(message, expect)


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(check(message), allow_nan=False, separators=(",", ":"))


# ---- records ----------------------------------------------------------------------------------------
def request_to_json(request: TrialRequest) -> dict[str, Any]:
    c = request.candidate
    candidate: dict[str, Any] = {"candidate_id": c.candidate_id, "kind": c.kind, "params": dict(c.params)}
    if c.source is not None:
        candidate["source"] = c.source
    if c.checkpoint is not None:
        candidate["checkpoint"] = c.checkpoint
    return {"trial_id": request.trial_id, "iteration": request.iteration, "seed": request.seed,
            "candidate": candidate, "record_video": request.record_video,
            "record_replay": request.record_replay, "record_trajectory": request.record_trajectory}


def request_from_json(doc: dict[str, Any], out_dir: str) -> TrialRequest:
    c = doc["candidate"]
    candidate = Candidate(candidate_id=c["candidate_id"], kind=c["kind"],
                          params={k: float(v) for k, v in (c.get("params") or {}).items()},
                          source=c.get("source"), checkpoint=c.get("checkpoint"))
    return TrialRequest(trial_id=doc["trial_id"], iteration=doc["iteration"], seed=doc["seed"], candidate=candidate,
                        record_video=bool(doc.get("record_video")), record_replay=bool(doc.get("record_replay")),
                        record_trajectory=bool(doc.get("record_trajectory")), out_dir=out_dir)


def _finite(value: Any) -> Any:
    """NaN and inf are not JSON: they travel as null (a final state the simulator could not read)."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    return value


def record_to_json(record: TrialRecord) -> dict[str, Any]:
    d = asdict(record)
    d["final_state"] = {k: _finite(v) for k, v in d["final_state"].items()}
    for e in d["safety_events"]:
        e["value"], e["limit"] = _finite(e["value"]), _finite(e["limit"])
    d["shaping_return"] = _finite(d["shaping_return"]) or 0.0
    return d


def record_from_json(doc: dict[str, Any]) -> TrialRecord:
    d = dict(doc)
    d["safety_events"] = [SafetyEvent(**e) for e in d.get("safety_events", [])]
    return TrialRecord(**d)


# ---- the shared secret --------------------------------------------------------------------------------
def load_token(env: str | None = TOKEN_ENV, file: str | None = None) -> str | None:
    """The token from `file` (its first line) or the environment variable named `env`; None when neither has one.

    The token itself never enters a config, a log line or MLflow: configs name where it is, not what it is."""
    if file:
        text = Path(file).expanduser().read_text().strip()
        return text.splitlines()[0].strip() if text else None
    value = os.environ.get(env or TOKEN_ENV, "").strip()
    return value or None
