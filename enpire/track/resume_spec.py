"""The spec of a resumed session: the ORIGINAL resolved spec from the session run, never today's configs.

`python -m enpire resume=ID [tracking.uri=URI]` finds the session run in the store named by the
command line and reads `spec/resolved_spec.json`. Before anything else that artifact must hash
to the run's `enpire.spec_sha256` tag (what was fingerprinted at launch): an artifact edited
since (say, a raised budget) is an integrity breach (IntegrityError: exit 3, nothing runs), and
the message names the keys that differ from the run's params, which MLflow never lets change.
Then the spec is validated again and the /done and safety fingerprints are recomputed with the
code as it is now; if either differs from the run's `enpire.done_sha256` /
`enpire.safety_sha256` tags the resume is refused (SpecError: exit 2, nothing runs): the session
would otherwise continue under criteria it did not start with. Those fingerprints cover every
file that decides success or safety (enpire.spec.fingerprint: the verifier, keep and /done
rules, the task's code and MJCF, the robot's model, the envelope and rollout code); when the
session recorded their digests (`spec/judged_files.json`) the refusal names the files that
changed.

Overrides other than `resume`, `tracking.uri`/`tracking.artifact_root` and `hydra.*` are ignored
(with a warning): a session's spec is frozen for its whole life. The config files may have
moved on since the launch: the session's own overrides are composed with today's configs and
every key path where that differs from the stored spec is logged as a warning (the stored spec
is what runs).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from enpire.spec import fingerprint
from enpire.spec.errors import IntegrityError, Problem, SpecError
from enpire.spec.load import load_spec, spec_from_config
from enpire.spec.model import ExperimentSpec
from enpire.track.records import flatten

log = logging.getLogger(__name__)

ALLOWED_PREFIXES = ("resume=", "tracking.uri=", "tracking.artifact_root=", "hydra.", "+hydra.", "++hydra.")
SPEC_ARTIFACT = "spec/resolved_spec.json"
OVERRIDES_ARTIFACT = "spec/overrides.txt"
JUDGED_ARTIFACT = "spec/judged_files.json"  # fingerprint.file_digests at launch, when the writer records it
SHOWN = 10  # differing keys named in one message; the rest are counted


def _refuse(value: object, expected: str) -> SpecError:
    return SpecError([Problem("resume", value, expected)], source="resume")


def _download(client: Any, run_id: str, path: str) -> str | None:
    with tempfile.TemporaryDirectory() as tmp:
        try:
            return Path(client.download_artifacts(run_id, path, tmp)).read_text()
        except Exception:  # absent
            return None


def _show(value: str | None) -> str:
    if value is None:
        return "absent"
    return repr(value if len(value) <= 40 else value[:37] + "...")


def differing_keys(a: dict[str, str], b: dict[str, str], names: tuple[str, str]) -> str:
    """'k (names[0] x, names[1] y), ...' for every flat key whose value differs; '' when none."""
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    shown = [f"{k} ({names[0]} {_show(a.get(k))}, {names[1]} {_show(b.get(k))})" for k in keys[:SHOWN]]
    more = f" and {len(keys) - SHOWN} more" if len(keys) > SHOWN else ""
    return ", ".join(shown) + more


def check_stored_spec(run: Any, doc: Any) -> None:
    """IntegrityError unless the stored spec hashes to the run's enpire.spec_sha256 tag."""
    run_id, tagged = run.info.run_id, run.data.tags.get("enpire.spec_sha256")
    try:
        now = fingerprint.spec_sha256(doc)
    except (TypeError, ValueError):  # not JSON any more (NaN, ...)
        now = "<not canonical JSON>"
    if tagged is not None and now == tagged:
        return
    where = f"the stored {SPEC_ARTIFACT} of session run {run_id}"
    if tagged is None:
        raise IntegrityError("spec", "<no tag>", now, f"{where} has no enpire.spec_sha256 tag to be checked against; "
                                                     "refusing to resume")
    keys = differing_keys(dict(run.data.params), flatten(doc) if isinstance(doc, dict) else {}, ("launch", "now"))
    what = f"differs from the spec fingerprinted at launch at {keys}" if keys else \
        "differs from the spec fingerprinted at launch (no logged param shows where)"
    raise IntegrityError("spec", tagged, now, f"{where} {what}; refusing to resume")


def _session_overrides(client: Any, run: Any) -> list[str]:
    text = _download(client, run.info.run_id, OVERRIDES_ARTIFACT)
    if text is not None:
        return [line for line in text.splitlines() if line.strip()]
    tag = run.data.tags.get("enpire.overrides", "defaults")
    return [] if tag == "defaults" else tag.split()


def report_config_drift(client: Any, run: Any, doc: dict[str, Any]) -> str | None:
    """Warn (and return the message) where today's configs, with the session's overrides, differ from its spec."""
    overrides = _session_overrides(client, run)
    try:
        now = load_spec(overrides).as_dict()
    except SpecError as error:
        message = (f"resume: the current config files no longer accept session {run.info.run_id}'s overrides "
                   f"({' '.join(overrides) or 'none'}): {'; '.join(map(str, error.problems))}; "
                   "the session continues under its stored spec")
    else:
        now.pop("resume", None)
        stored = {k: v for k, v in doc.items() if k != "resume"}
        keys = differing_keys(flatten(stored), flatten(now), ("session", "configs now"))
        if not keys:
            return None
        message = (f"resume: session {run.info.run_id} continues under its stored spec, which differs from what the "
                   f"current config files compose with its overrides at {keys}")
    log.warning("%s", message)
    return message


def _changed_files(client: Any, run_id: str, spec: ExperimentSpec, what: str) -> str:
    """' (changed: a.py, b.xml)' from the session's recorded JUDGED_ARTIFACT, or '' when it has none."""
    text = _download(client, run_id, JUDGED_ARTIFACT)
    try:
        recorded = json.loads(text) if text is not None else None
        files = fingerprint.differing_files(recorded, fingerprint.file_digests(spec.as_dict()), what) \
            if isinstance(recorded, dict) else []
    except (ValueError, TypeError, KeyError, AttributeError):
        files = []
    if not files:
        return ""
    more = f" and {len(files) - SHOWN} more" if len(files) > SHOWN else ""
    return f" (changed: {', '.join(files[:SHOWN])}{more})"


def resume_spec(spec: ExperimentSpec, report: bool = True) -> ExperimentSpec:
    """The original spec of session `spec.resume`, with `resume` set.

    SpecError when it must not resume, IntegrityError when its stored spec was tampered with.
    report: log the ignored overrides and the drift of today's configs (False for a dry check).
    """
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    run_id, uri = spec.resume, spec.tracking.uri
    client = MlflowClient(tracking_uri=uri)
    try:
        run = client.get_run(run_id)
    except MlflowException:
        raise _refuse(run_id, f"the run id of a session run in the store {uri}") from None
    tags = run.data.tags
    if tags.get("enpire.kind") != "session":
        raise _refuse(run_id, f"a session run (tag enpire.kind=session); it is {tags.get('enpire.kind')!r}")
    text = _download(client, run_id, SPEC_ARTIFACT)
    try:
        doc = json.loads(text) if text is not None else None
    except json.JSONDecodeError as error:
        doc = f"<not JSON: {error}>"
    if doc is None:
        raise _refuse(run_id, f"a session run with {SPEC_ARTIFACT}")
    check_stored_spec(run, doc)
    stored = json.loads(json.dumps(doc))  # as launched, before the store is pointed at where it was found
    doc["tracking"]["uri"] = uri  # the store it was found in (a moved store keeps working)
    doc["resume"] = None
    original = spec_from_config(doc, spec.overrides)
    for what in ("done", "safety"):
        tagged, now = tags.get(f"enpire.{what}_sha256"), getattr(original.fingerprints, f"{what}_sha256")
        if tagged != now:
            changed = _changed_files(client, run_id, original, what)
            raise _refuse(run_id, f"the {what} fingerprint of the code now ({now[:12]}) to equal the run's "
                                  f"enpire.{what}_sha256 ({str(tagged)[:12]}): the /done or safety code changed "
                                  f"since the session started{changed}, so it cannot be continued")
    if report:
        ignored = [o for o in spec.overrides if not o.startswith(ALLOWED_PREFIXES)]
        if ignored:
            log.warning("resume uses the session's original spec; overrides ignored: %s", " ".join(ignored))
        report_config_drift(client, run, stored)
    return dataclasses.replace(original, resume=run_id)
