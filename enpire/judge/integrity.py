"""The running check that nothing judged changed under a session: the loop calls it every second and before
every iteration; a difference ends the session with exit 3 (enpire.spec.errors.IntegrityError)."""

from __future__ import annotations

from enpire.spec import fingerprint
from enpire.spec.errors import IntegrityError
from enpire.spec.model import ExperimentSpec


def check_integrity(spec: ExperimentSpec) -> None:
    """Recompute done_sha256 and safety_sha256 from the resolved spec and the judged files now (verifier, keep
    and /done rule, task code and MJCF, robot models, envelope, controller: enpire.spec.fingerprint)."""
    doc = spec.as_dict()
    done = fingerprint.done_sha256(doc["done"], doc["task"])
    if done != spec.fingerprints.done_sha256:
        raise IntegrityError("done", spec.fingerprints.done_sha256, done, _changed())
    safety = fingerprint.safety_sha256(doc["safety"], doc["robot"])
    if safety != spec.fingerprints.safety_sha256:
        raise IntegrityError("safety", spec.fingerprints.safety_sha256, safety, _changed())


def _changed() -> str:
    """Which judged files changed since this process first hashed them (named in the breach)."""
    changed = fingerprint.changed_files()
    return ("changed: " + ", ".join(changed)) if changed else ""
