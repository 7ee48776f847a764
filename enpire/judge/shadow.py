"""Verified against true success: the classifier verifier's verdicts beside its shadow's (the state verifier).

With done.verifier=classifier in simulation every judged trial carries the state verifier's verdict of the
same attempts (TrialRecord.shadow). This tally pools both per candidate, so a session can say how often its
verifier was wrong: agreement, false successes (the detector said success, the state said failure) and false
failures, overall, over the kept candidates and for the /done candidate. Agents never see it.
"""

from __future__ import annotations

from collections.abc import Iterable

from enpire.judge.pools import NO_EVIDENCE
from enpire.records import TrialRecord


class ShadowTally:
    def __init__(self) -> None:
        self.by_key: dict[str, list[tuple[bool, bool]]] = {}  # candidate -> (verified, true) pass@1 per trial

    def add(self, key: str, record: TrialRecord) -> None:
        if record.shadow is None or record.outcome in NO_EVIDENCE:
            return
        self.by_key.setdefault(key, []).append((bool(record.pass_at_1), bool(record.shadow["pass_at_1"])))

    def pairs(self, keys: Iterable[str] | None = None) -> list[tuple[bool, bool]]:
        chosen = self.by_key if keys is None else {k: self.by_key.get(k, []) for k in set(keys)}
        return [p for k in sorted(chosen) for p in chosen[k]]

    def figures(self, kept: Iterable[str] = (), done_key: str | None = None) -> dict[str, float | int]:
        """The session's figures (none without shadow verdicts); rates are of the trials the state verifier failed
        (false_success_rate) or passed (false_failure_rate)."""
        pairs = self.pairs()
        if not pairs:
            return {}
        out = _figures(pairs, "")
        kept_pairs = self.pairs(kept)
        if kept_pairs:
            verified = sum(v for v, _ in kept_pairs)
            fooled = sum(v and not t for v, t in kept_pairs)
            out["kept_shadow_trials"] = len(kept_pairs)
            out["kept_false_successes"] = fooled
            # of the successes the verifier credited to kept candidates, the share the state verifier denies
            out["kept_false_success_share"] = round(fooled / verified, 4) if verified else 0.0
        if done_key is not None and self.by_key.get(done_key):
            out.update(_figures(self.by_key[done_key], "done_"))
        return out


def _figures(pairs: list[tuple[bool, bool]], prefix: str) -> dict[str, float | int]:
    n = len(pairs)
    fs = sum(v and not t for v, t in pairs)
    ff = sum(t and not v for v, t in pairs)
    true_pass = sum(t for _, t in pairs)
    out: dict[str, float | int] = {
        f"{prefix}shadow_trials": n,
        f"{prefix}verifier_agreement": round((n - fs - ff) / n, 4),
        f"{prefix}verified_success_rate": round(sum(v for v, _ in pairs) / n, 4),
        f"{prefix}true_success_rate": round(true_pass / n, 4),
    }
    if not prefix:
        out.update(false_successes=fs, false_failures=ff,
                   false_success_rate=round(fs / (n - true_pass), 4) if n > true_pass else 0.0,
                   false_failure_rate=round(ff / true_pass, 4) if true_pass else 0.0)
    return out
