"""The decision on a closed iteration: keep, discard, crash, unsafe or cancelled.

- Keep: enpire.judge.keep (own successes, minimum evidence, a one-sided posterior test against
  the reference at a stated error rate). The reference is the nearest ancestor with a
  *different* candidate (a re-evaluation is judged like the iteration it re-evaluates).
- Otherwise the decision is `crash` when no trial produced evidence, `unsafe` when more than
  half of its trials were safety stops, `cancelled` when the session stopped before its trials
  ran (it is not counted as an iteration of the budget), else `discard`.
- A decision fixed before any trial ran (`Evaluation.closed_as`, e.g. its training failed) stands.

Agents propose; these rules decide. They read only the iteration, the pools and the tree's
parent links, and are fingerprinted with the rest of enpire/judge (enpire.spec.fingerprint).
"""

from __future__ import annotations

from collections.abc import Mapping

from enpire.judge.keep import keep_verdict
from enpire.judge.pools import NO_EVIDENCE, Pools
from enpire.records import Evaluation


def reference(parent: int | None, key: str, keys: Mapping[int, str], parents: Mapping[int, int | None]) -> str | None:
    """Candidate key of the nearest ancestor (from `parent` up) whose candidate differs from `key`.

    `keys`: iteration index -> its candidate key; `parents`: iteration index -> its parent index."""
    seen = set()
    while parent is not None and parent in keys and parent not in seen:
        seen.add(parent)
        if keys[parent] != key:
            return keys[parent]
        parent = parents.get(parent)
    return None


def decide(ev: Evaluation, pools: Pools, ref: str | None, cancelled: bool = False) -> tuple[str, str]:
    """(decision, reason) of `ev` against the reference candidate `ref` (None: a root)."""
    s, n = pools.pooled(ev.key)
    outcomes = [r.outcome for r in ev.records]
    if ev.closed_as is not None and not outcomes:
        return ev.closed_as
    if cancelled:
        return "cancelled", (f"the session stopped after {len(outcomes)} of its {ev.trials_wanted} trials; "
                             "not judged and not counted as an iteration")
    if not outcomes:  # no evidence of its own: earlier iterations' pooled trials cannot make it a keep
        return "discard", "no trial of it could run (a budget cap)"
    own = sum(bool(r.pass_at_1) for r in ev.records if r.outcome not in NO_EVIDENCE)
    keep, why = keep_verdict(own, s, n, pools.pooled(ref) if ref else None)
    if keep:
        return "keep", why
    if all(o in NO_EVIDENCE for o in outcomes):
        kinds = sorted(set(outcomes))
        what = "crashed" if kinds == ["crash"] else "gave no evidence (" + ", ".join(kinds) + ")"
        return "crash", f"all {len(outcomes)} trials {what}: {ev.records[0].reason}"
    unsafe = outcomes.count("unsafe")
    if unsafe * 2 > len(outcomes):
        return "unsafe", f"{unsafe}/{len(outcomes)} trials ended in a safety stop"
    return "discard", why
