"""Verified against true success (done.verifier=classifier in simulation): a section per session.

Read from the session run's metrics (enpire.judge.shadow via the summary), so it needs MLflow alone. Nothing
for a session judged by the state verifier.
"""

from __future__ import annotations

from enpire.report.data import Session
from enpire.report.markdown import table

HEADERS = ("judged trials", "agreement", "false success rate", "false failure rate", "verified success",
           "true success", "/done candidate: true success", "kept successes the state verifier denies")


def verifier_section(session: Session) -> list[str]:
    m = session.metrics
    if "verifier_agreement" not in m:
        return []

    def pct(key: str) -> str:
        return f"{m[key]:.3f}" if key in m else "–"

    row = (int(m.get("shadow_trials", 0)), pct("verifier_agreement"), pct("false_success_rate"),
           pct("false_failure_rate"), pct("verified_success_rate"), pct("true_success_rate"),
           pct("done_true_success_rate"), pct("kept_false_success_share"))
    return ["### Verifier: the detector against the state verifier (its shadow)", "",
            "Every trial was judged by the success detector (done.verifier=classifier); the state verifier judged "
            "the same attempts in the shadow, never shown to an agent. /done was met by the detector's verdicts: "
            "its true rate is the state verifier's (docs/verifiers.md).", "", table(HEADERS, [row]), ""]
