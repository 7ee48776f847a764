"""Sequential screening and the shaped surrogate: bad candidates stop early, good ones go to /done.

Driven through the real idea tree (tests/agent/test_search.py's `drive`), with trial outcomes and
final task states drawn from fixed landscapes over the drawer's parameter space.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from enpire.agent.proposal import max_trials, proposal_problems, proposal_schema
from enpire.agent.protocol import ProtocolAgent, Stats
from enpire.agent.registry import make_agent
from enpire.agent.search_screen import next_chunk, plausible, prob_at_least
from enpire.agent.space import candidate_key, to_unit
from enpire.spec import load_spec
from tests.agent import test_search as ts


def test_posterior_tail_matches_the_beta_distribution_and_drops_a_first_failure() -> None:
    # thousands of trials too (a long /done window): a binomial sum in floats overflowed there
    for s, n in [(0, 0), (0, 1), (1, 1), (3, 4), (4, 4), (18, 20), (47, 50), (1016, 1030), (9700, 10000)]:
        assert prob_at_least(s, n, 0.95) == pytest.approx(stats.beta.sf(0.95, s + 1, n - s + 1), rel=1e-9)
    assert not plausible(0, 1, 0.95)  # one failure in one trial: far less plausible than the prior
    assert not plausible(3, 4, 0.95)
    assert plausible(1, 1, 0.95) and plausible(15, 16, 0.95)
    assert plausible(9700, 10000, 0.95) and not plausible(9400, 10000, 0.95)
    with pytest.raises(ValueError, match="goal"):
        prob_at_least(1, 1, 1.0)


def test_chunks_grow_geometrically_to_the_done_window() -> None:
    sizes, n = [], 1
    while n < 50:
        sizes.append(next_chunk(n, 50))
        n += sizes[-1]
    assert sizes == [3, 12, 34] and next_chunk(50, 50) == 16


@pytest.mark.parametrize("kind", ["search", "random", "tpe"])
def test_every_kind_screens_the_same_way(kind: str) -> None:
    """One trial per fresh candidate; a failure ends it, a success earns 3, 12 then 34 more trials."""
    spec = ts._spec(f"agent={kind}")
    agent = make_agent(spec, index=0, seed=3)
    good: set[str] = set()

    def p(params: dict) -> float:  # about a third of the space always works, the rest never
        return 1.0 if to_unit(params, spec.policy)[0] > 0.6 else 0.0

    proposals, _ = ts.drive(spec, [agent], 30, p)
    trials_of: dict[str, list[int]] = {}
    for proposal in proposals:
        key = candidate_key(proposal["candidate"])
        trials_of.setdefault(key, []).append(proposal["trials"])
        if p(proposal["candidate"]["params"]) == 1.0:
            good.add(key)
    assert good, "no good candidate sampled in 30 proposals"
    for key, chunks in trials_of.items():
        if key in good:
            assert chunks[: 4] == [1, 3, 12, 34][: len(chunks)]
        else:
            assert chunks == [1]  # failed its screen: never re-evaluated
    assert any(sum(trials_of[k][:4]) == 50 for k in good)  # reached the /done window


def drive_shaped(spec, agent, iterations: int, optimum: np.ndarray):  # type: ignore[no-untyped-def]
    """Every trial fails, but the drawer opens more the closer the params are to `optimum`."""
    def opening(params: dict) -> float:
        return float(max(0.0, 0.15 * (1.0 - np.linalg.norm(to_unit(params, spec.policy) - optimum))))

    proposals = []
    tree = ts.IdeaTree(spec)
    schema = ts.proposal_schema(spec.policy)
    for i in range(iterations):
        proposal = agent.propose(tree.state(agent.branch, ts.BUDGETS, schema)).proposal
        proposals.append(proposal)
        parents = {it.index: it.candidate for it in tree.iterations if it.decision != "rejected"}
        candidate, key = ts.normalise(proposal, spec, parents)
        ev = ts.Evaluation(i, agent.name, agent.branch, proposal.get("parent"), proposal["hypothesis"], candidate,
                           key, proposal["trials"], None)
        for _ in range(ev.trials_wanted):
            r = dataclasses.replace(ts._record(i, False), final_state={"drawer_opening": opening(candidate["params"])})
            ev.dispatched += 1
            ev.records.append(r)
            tree.add_record(key, r)
        agent.observe(tree.finish(ev))
    return [float(np.linalg.norm(to_unit(p["candidate"]["params"], spec.policy) - optimum)) for p in proposals]


def test_cem_follows_the_shaped_score_when_no_trial_succeeds() -> None:
    """0/1 successes everywhere: only the final task state ranks candidates, and CEM closes in on the optimum."""
    spec = ts._spec()
    optimum = np.full(len(spec.policy.params), 0.8)
    dist = drive_shaped(spec, make_agent(spec, index=0, seed=5), 40, optimum)
    assert np.mean(dist[-10:]) < 0.6 * np.mean(dist[1:11])


@pytest.mark.parametrize(("successes", "trials", "wanted"), [(16, 16, 34), (3, 4, 0), (0, 1, 0), (47, 50, 0),
                                                            (59, 60, 16)])
def test_the_protocol_stops_implausible_candidates_and_confirms_plausible_ones(successes: int, trials: int,
                                                                             wanted: int) -> None:
    """16/16 goes on to the /done window; 3/4 and 0/1 stop; a full window that fell short (47/50) stops too."""
    spec = ts._spec("agent=tpe")
    agent = make_agent(spec, index=0, seed=0)
    params = ts._canon(spec, spec.policy.defaults())
    agent.stats[candidate_key({"kind": "params", "params": params})] = Stats(
        params=params, iteration=0, trials=trials, successes=float(successes), fresh=False)
    proposal = agent._reevaluation()
    assert (proposal["trials"] if proposal else 0) == wanted


def test_a_window_larger_than_one_proposal_is_confirmed_in_chunks_the_schema_allows() -> None:
    spec = load_spec(["task=drawer", "done.goal.window=5000"])
    agent = ProtocolAgent(spec, spec.agent, 0, "b0", 0)
    agent.stats["k"] = Stats(params=spec.policy.defaults(), iteration=0, trials=16, successes=16.0)
    proposal = agent._sequential()
    assert proposal is not None and proposal["trials"] == max_trials() == 1000
    assert "1000 more trials" in proposal["hypothesis"]
    assert proposal_problems(proposal, proposal_schema(spec.policy)) == []
