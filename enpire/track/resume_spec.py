"""The spec of a resumed session: the ORIGINAL resolved spec from the session run, never today's configs.

`python -m enpire resume=ID [tracking.uri=URI]` finds the session run in the store named by the
command line, reads `spec/resolved_spec.json`, validates it again and recomputes the /done and
safety fingerprints with the code as it is now. If either differs from the run's
`enpire.done_sha256` / `enpire.safety_sha256` tags the resume is refused (SpecError: exit 2,
nothing runs): the session would otherwise continue under criteria it did not start with.
Overrides other than `resume`, `tracking.uri`/`tracking.artifact_root` and `hydra.*` are ignored
(with a warning): a session's spec is frozen for its whole life.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import tempfile
from pathlib import Path

from enpire.spec.errors import Problem, SpecError
from enpire.spec.load import spec_from_config
from enpire.spec.model import ExperimentSpec

log = logging.getLogger(__name__)

ALLOWED_PREFIXES = ("resume=", "tracking.uri=", "tracking.artifact_root=", "hydra.", "+hydra.", "++hydra.")


def _refuse(value: object, expected: str) -> SpecError:
    return SpecError([Problem("resume", value, expected)], source="resume")


def resume_spec(spec: ExperimentSpec) -> ExperimentSpec:
    """The original spec of session `spec.resume`, with `resume` set; SpecError when it must not resume."""
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
    with tempfile.TemporaryDirectory() as tmp:
        try:
            doc = json.loads(Path(client.download_artifacts(run_id, "spec/resolved_spec.json", tmp)).read_text())
        except Exception as error:
            raise _refuse(run_id, f"a session run with spec/resolved_spec.json ({error})") from None
    doc["tracking"]["uri"] = uri  # the store it was found in (a moved store keeps working)
    doc["resume"] = None
    original = spec_from_config(doc, spec.overrides)
    for what in ("done", "safety"):
        tagged, now = tags.get(f"enpire.{what}_sha256"), getattr(original.fingerprints, f"{what}_sha256")
        if tagged != now:
            raise _refuse(run_id, f"the {what} fingerprint of the code now ({now[:12]}) to equal the run's "
                                  f"enpire.{what}_sha256 ({str(tagged)[:12]}): the /done or safety code changed "
                                  "since the session started, so it cannot be continued")
    ignored = [o for o in spec.overrides if not o.startswith(ALLOWED_PREFIXES)]
    if ignored:
        log.warning("resume uses the session's original spec; overrides ignored: %s", " ".join(ignored))
    return dataclasses.replace(original, resume=run_id)
