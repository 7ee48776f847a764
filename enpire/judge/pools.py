"""Candidate pools and the /done window: the evidence every keep and /done decision reads.

- Pooling: trials of the same candidate (same canonical params) pool across iterations, in the
  order the loop hands them over (under `determinism: strict` at each iteration's close, in index
  order and trial order, so every run pools the same evidence in the same order; under `fast` in
  the order they finished). Trials that ended `crash`, `reset_failed` or `estopped` say nothing
  about the candidate (NO_EVIDENCE): they are left out of its pool and of success rates (they
  still count as trials).
- /done: the last `window` pooled trials of one candidate have a success rate of at least
  `min_success_rate`. The first candidate to meet it is the /done candidate; later trials never
  change it.
"""

from __future__ import annotations

from enpire.records import TrialRecord

NO_EVIDENCE = ("crash", "reset_failed", "estopped")
_EPS = 1e-12  # 0.9 * 50 / 50 compared with 0.9: a float rounding is not a miss


class Pools:
    """Every candidate's pooled verdicts (key -> pass@1 of each evidential trial, in pooling order)."""

    def __init__(self, window: int, min_success_rate: float) -> None:
        self.window, self.min_success_rate = int(window), float(min_success_rate)
        self.results: dict[str, list[bool]] = {}
        self.done_key: str | None = None
        self.grown: set[str] = set()  # keys pooled into since a reader last took them (take_grown)

    def add(self, key: str, record: TrialRecord) -> bool:
        """Pool one trial; True when this trial met /done."""
        if record.outcome in NO_EVIDENCE:
            return False
        pool = self.results.setdefault(key, [])
        pool.append(bool(record.pass_at_1))
        self.grown.add(key)
        if self.done_key is None and len(pool) >= self.window \
                and sum(pool[-self.window:]) / self.window >= self.min_success_rate - _EPS:
            self.done_key = key
            return True
        return False

    def take_grown(self) -> set[str]:
        """The keys whose pools grew since the last call (an incremental reader's work list)."""
        grown, self.grown = self.grown, set()
        return grown

    def pooled(self, key: str) -> tuple[int, int]:
        """(successes, trials) pooled for `key`."""
        pool = self.results.get(key, [])
        return sum(pool), len(pool)

    def window_rate(self, key: str) -> float:
        """Success rate of `key`'s last `window` pooled trials (fewer while it has fewer)."""
        pool = self.results.get(key, [])[-self.window:]
        return sum(pool) / len(pool) if pool else 0.0
