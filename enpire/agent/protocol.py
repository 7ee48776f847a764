"""The evaluation protocol shared by the offline search agent and its baselines.

What differs between CEM, random search and TPE is only where the next *fresh* candidate comes
from (`_fresh`). Everything else is the same protocol so the benchmark compares strategies,
not bookkeeping:

1. a candidate that looks at least as good as the incumbent on its first trials, with a raw
   success rate consistent with the /done goal (within two binomial standard errors of it), is
   re-evaluated (`reevaluate_trials` more) before it is trusted;
2. the incumbent is the candidate with the best lower confidence bound (noise-aware: a lucky
   8/8 does not displace 45/48);
3. once the incumbent's pooled success rate reaches the /done goal, it is re-evaluated until
   the goal window is filled (the loop checks /done over the last `done.window` trials).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from enpire.agent.api import AgentReply, ResearchState
from enpire.agent.attribution_progress import histogram_progress
from enpire.agent.proposal import max_trials
from enpire.agent.ranking import Ranking
from enpire.agent.search_screen import next_chunk, plausible, prob_at_least
from enpire.agent.space import candidate_key, canonical_params, smoothed_rate, standard_error
from enpire.records import IterationSummary
from enpire.spec.model import AgentSpec, ExperimentSpec

log = logging.getLogger(__name__)


@dataclass
class Stats:
    """What this agent knows of one candidate (pooled over every iteration that ran it)."""

    params: dict[str, float]
    iteration: int  # latest iteration that evaluated it
    trials: int = 0
    successes: float = 0.0
    fresh: bool = True  # proposed by this agent as a new sample (not a re-evaluation / borrow)
    progress: float = 0.0  # how close its failed trials came to the done thresholds, 0..1 (a tie-breaker)
    screened_out: bool = False  # the digital twin kept it off the fleet (rate 0 while it has no fleet trial)

    @property
    def score(self) -> tuple[float, float]:
        """Ranking key: success rate first; among equal rates, the one whose failures got closer."""
        return (self.rate, self.progress)

    @property
    def rate(self) -> float:
        if self.screened_out and not self.trials:
            return 0.0
        return smoothed_rate(self.successes, self.trials)

    def lcb(self, z: float) -> float:
        return self.rate - z * standard_error(self.successes, self.trials)


class StatsTable(dict):
    """Candidate key -> Stats that tells its agent when an entry is set (the incremental rankings re-rank it).
    A Stats changed in place needs `agent._stats_changed(key)`; ProtocolAgent does that where it changes one."""

    def __init__(self, changed: Callable[[str], None]) -> None:
        super().__init__()
        self._changed = changed

    def __setitem__(self, key: str, value: Stats) -> None:
        super().__setitem__(key, value)
        self._changed(key)

    def setdefault(self, key: str, default: Stats) -> Stats:  # type: ignore[override]
        if key not in self:
            self[key] = default
        return self[key]


class ProtocolAgent:
    """Base class: candidate statistics, incumbent, re-evaluation and /done confirmation."""

    kind = "protocol"

    def __init__(self, spec: ExperimentSpec, config: AgentSpec, index: int, branch: str, seed: int) -> None:
        self.spec = spec
        self.config = config
        self.index = index
        self.branch = branch
        self.name = f"{config.kind}-{index}"
        self.rng = np.random.default_rng([int(seed), index])
        self.z = float(config.get("noise_z", 1.0))
        self.stats: dict[str, Stats] = StatsTable(self._stats_changed)
        self.pending: set[str] = set()
        self.rejections = 0
        self.batch = max(1, int(config.get("batch", 1)))  # proposals per call: a screen of several candidates
        self.max_outstanding = 2 * self.batch  # one batch evaluated while the next is proposed
        self._synced = 0  # how many of state.iterations _sync has read
        self._latest: dict[str, IterationSummary] = {}  # candidate id -> its newest iteration seen
        # Incremental rankings (enpire.agent.ranking): only candidates whose statistics changed are ranked again.
        self._order: dict[str, int] = {}  # key -> when it entered self.stats (max()'s tie-break over the dict)
        self._changed: set[str] = set()  # statistics changed since the rankings were refreshed
        self._resync: set[str] = set()  # changed outside _sync: its newest pooled figures apply again
        self._incumbent = Ranking()
        self._plausible = Ranking()  # sequential screening: the candidates still plausible for /done

    # ---- shared protocol ---------------------------------------------------------------------
    def _sync(self, state: ResearchState) -> None:
        """Refresh pooled statistics of the candidates this agent knows from the idea tree.

        Incremental: `state.iterations` only grows at its end (closing order; under determinism=strict the
        horizon only moves forward), so each call reads the iterations added since the last one, by their
        stored candidate id, into `_latest` (the newest pooled figures of every candidate), then refreshes
        the candidates this agent tracks. No candidate is hashed again (that was O(history) per call)."""
        touched, self._resync = self._resync, set()
        for it in state.iterations[self._synced:]:
            key = it.candidate_id or candidate_key(it.candidate)
            if key and it.decision not in ("rejected", "cancelled"):
                known = self._latest.get(key)
                if known is None or it.candidate_trials >= known.candidate_trials:
                    self._latest[key] = it
                    touched.add(key)
        self._synced = len(state.iterations)
        for key in sorted(touched, key=lambda k: self._order.get(k, -1)):  # = every tracked key whose figures moved
            s = self.stats.get(key)
            it = self._latest.get(key)
            if s is not None and it is not None and it.candidate_trials >= s.trials:
                s.trials = it.candidate_trials
                s.successes = it.candidate_success_rate * it.candidate_trials
                s.iteration = max(s.iteration, it.index)
                self._changed.add(key)

    def _stats_changed(self, key: str) -> None:
        """Call after a candidate's Stats were created or changed outside _sync."""
        self._order.setdefault(key, len(self._order))
        self._changed.add(key)
        self._resync.add(key)

    def _refresh_rankings(self) -> None:
        goal, window = self.spec.done.min_success_rate, self.spec.done.window
        drop = self.config.get("screen_drop", None)
        confirm_drop = float(self.config.get("confirm_drop", 0.5))
        for key in self._changed:
            s = self.stats.get(key)
            order = self._order.setdefault(key, len(self._order))
            self._incumbent.note(key, (s.lcb(self.z), s.trials) if s is not None and s.trials > 0 else None, order)
            live = s is not None and 0 < s.trials < 4 * window and plausible(
                s.successes, s.trials, goal, confirm_drop if s.trials >= window else None if drop is None else
                float(drop))
            self._plausible.note(key, (prob_at_least(s.successes, s.trials, goal), s.trials, key)
                                 if live and s is not None else None, order)
            self._rank(key, s, order)
        self._changed.clear()

    def _rank(self, key: str, s: Stats | None, order: int) -> None:
        """Subclasses keep rankings of their own here (the search agent: its best shaped candidate)."""

    def incumbent(self) -> tuple[str, Stats] | None:
        """The candidate with the highest lower confidence bound (then the most trials)."""
        self._refresh_rankings()
        key = self._incumbent.best()
        return (key, self.stats[key]) if key is not None else None

    def trusted(self, s: Stats) -> bool:
        """Evaluated with its first trials plus a re-evaluation (or re-evaluation is switched off)."""
        return s.trials >= self.config.trials_per_candidate + self.config.reevaluate_trials

    def _goal_floor(self, trials: int) -> float:
        """Lowest raw success rate still consistent with the /done goal on `trials` trials (2 s.e.)."""
        goal = self.spec.done.min_success_rate
        return goal - 2.0 * math.sqrt(goal * (1.0 - goal) / max(1, trials))

    def _reevaluation(self) -> dict | None:
        if self.config.get("screening", "fixed") == "sequential":
            return self._sequential()
        goal, window = self.spec.done.min_success_rate, self.spec.done.window
        inc = self.incumbent()
        if inc is None:
            return None
        inc_rate = inc[1].successes / max(1, inc[1].trials)  # raw rates: smoothing would favour many trials
        promising = [(s.successes / s.trials, k, s) for k, s in self.stats.items()
                     if k not in self.pending and s.trials > 0 and not self.trusted(s)
                     and s.successes / s.trials >= max(inc_rate, self._goal_floor(s.trials))]
        if promising:
            _, key, s = max(promising, key=lambda t: (t[0], t[1]))
            n = self.config.reevaluate_trials
            return self._proposal(s.params, s.iteration, n, f"Re-evaluate a promising candidate ({s.successes:.0f}/"
                                  f"{s.trials} successes, at least the incumbent's {inc_rate:.2f}) with {n} more "
                                  "trials before trusting it: its lead may be sampling noise.")
        key, s = inc
        raw = s.successes / max(1, s.trials)
        if key not in self.pending and self.trusted(s) and raw >= goal and s.trials < 4 * window:
            n = max(self.config.reevaluate_trials, window - s.trials) if s.trials < window else \
                self.config.reevaluate_trials
            return self._proposal(s.params, s.iteration, n, f"Re-evaluate the incumbent ({s.successes:.0f}/"
                                  f"{s.trials} successes, at the goal rate {goal:.2f}) with {n} more trials to "
                                  f"confirm it holds over the {window}-trial /done window.")
        return None

    def _sequential(self) -> dict | None:
        """Sequential screening (enpire.agent.search_screen): the most plausible /done candidate gets its next
        chunk of trials; one whose posterior makes the goal implausible gets none (a fresh one is proposed)."""
        goal, window = self.spec.done.min_success_rate, self.spec.done.window
        # Plausible: fewer than 4 windows of trials and P(rate >= goal) above screen_drop (confirm_drop once it
        # had a full window); the best by (P, trials, key), kept incrementally (_refresh_rankings).
        self._refresh_rankings()
        best = self._plausible.best(skip=self.pending)
        if best is None:
            return None
        s = self.stats[best]
        p = prob_at_least(s.successes, s.trials, goal)
        n = min(next_chunk(s.trials, window), max_trials())  # a huge window is confirmed in several chunks
        stage = "confirm it over the /done window" if s.trials + n >= window else "screen it further"
        return self._proposal(s.params, s.iteration, n, f"Re-evaluate a candidate still plausible for /done "
                              f"({s.successes:.0f}/{s.trials} successes, P(rate >= {goal:.2f}) = {p:.2f}) with {n} "
                              f"more trials to {stage}; a failure stops it early, so its lead is never trusted on "
                              "noise.")

    def _proposal(self, params: dict[str, float], parent: int | None, trials: int, hypothesis: str,
                  borrowed_from: str | None = None) -> dict:
        params = canonical_params(params, self.spec.policy)
        key = candidate_key({"kind": "params", "params": params})
        self.pending.add(key)
        if key not in self.stats:
            self.stats[key] = Stats(params=params, iteration=-1 if parent is None else parent)
        proposal: dict = {"hypothesis": hypothesis, "parent": parent, "trials": min(int(trials), max_trials()),
                          "candidate": {"kind": "params", "params": params}}
        if borrowed_from:
            proposal["borrowed_from"] = borrowed_from
        return proposal

    # ---- the Agent protocol ------------------------------------------------------------------
    def propose(self, state: ResearchState) -> AgentReply:
        """`state.slots` proposals: each the protocol's next step given the ones before it in the batch (a
        candidate already in it is pending, so the next re-evaluation or a fresh sample comes instead)."""
        self._sync(state)
        batch = [self._reevaluation() or self._fresh(state) for _ in range(max(1, state.slots))]
        return AgentReply(proposal=batch[0], more=batch[1:])

    def observe(self, result: IterationSummary) -> None:
        if result.decision == "rejected" and result.twin is not None:
            self._screened_out(result)
            return
        if result.decision == "rejected":
            self.rejections += 1
            log.warning("%s: proposal rejected: %s", self.name, result.reason)
            return
        if result.candidate.get("kind") != "params":
            return
        key = candidate_key(result.candidate)
        self.pending.discard(key)
        s = self.stats.setdefault(key, Stats(params=dict(result.candidate["params"]), iteration=result.index,
                                             fresh=False))
        first = s.trials == 0
        if first:
            s.progress = self._progress(result)
        s.trials = result.candidate_trials
        s.successes = result.candidate_success_rate * result.candidate_trials
        s.iteration = max(s.iteration, result.index)
        self._stats_changed(key)
        if first and s.trials > 0 and s.fresh:
            self._learn(key, s)

    def _screened_out(self, result: IterationSummary) -> None:
        """The digital twin kept a candidate off the fleet (enpire.fleet.screen): it is no longer pending, its rate is 0
        while it has no fleet trial (so it never enters the incumbent or /done rankings), and a fresh sample of this
        agent goes to `_learn` once, with how close the twin's failures came (TPE is told 0; CEM ignores it)."""
        key = candidate_key(result.candidate) if result.candidate.get("kind") == "params" else ""
        if not key:
            return
        self.pending.discard(key)
        s = self.stats.get(key)
        log.info("%s: %s screened out by the twin (%s)", self.name, key, result.reason)
        if s is None:  # another agent's, or one a resume hands back: known as screened out, never learned from
            self.stats[key] = Stats(params=dict(result.candidate["params"]), iteration=result.index, fresh=False,
                                    screened_out=True)
            return
        if s.trials == 0 and s.fresh:
            s.progress = self._progress(result)
            s.fresh, s.screened_out = False, True  # learned once: a re-proposal reuses the twin's verdict
            self._stats_changed(key)
            self._learn(key, s)

    def _progress(self, result: IterationSummary) -> float:
        """Mean fraction of each done threshold that the failed trials reached (from their final task state);
        with `attribution` on (agent option) and a failure histogram, how far through the task's phases and
        toward the failing condition every failed trial got (enpire.agent.attribution_progress)."""
        if self.config.get("attribution", False) and result.failure_histogram:
            return histogram_progress(result.failure_histogram, self.spec.done)
        scores = []
        for failure in result.failures:
            state = failure.get("final_state") or {}
            parts = []
            for c in self.spec.done.conditions:
                value = state.get(c.quantity)
                if value is None:
                    parts.append(0.0)
                elif c.op == ">=":
                    parts.append(min(1.0, max(0.0, value / c.value)) if c.value > 0 else float(value >= c.value))
                else:
                    parts.append(min(1.0, max(0.0, c.value / value)) if value > 0 else 1.0)
            scores.append(sum(parts) / len(parts) if parts else 0.0)
        return sum(scores) / len(scores) if scores else 1.0

    # ---- strategy hooks ----------------------------------------------------------------------
    def _fresh(self, state: ResearchState) -> dict:
        raise NotImplementedError

    def _learn(self, key: str, stats: Stats) -> None:
        """A fresh candidate got its first evaluation."""
