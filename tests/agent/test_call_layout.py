"""determinism=strict with batches: which member's call owns which iteration indices, fixed before anything runs."""

from __future__ import annotations

from enpire.agent.api import AgentReply
from enpire.agent.calls import strict_lag
from enpire.agent.order import CallOrder


def test_a_round_gives_each_member_its_batch_of_consecutive_indices() -> None:
    order = CallOrder("strict", lag=strict_lag(2, (3, 1)), sizes=(3, 1))
    starts = []
    for _ in range(4):
        index = order.next_index()
        starts.append((index, *order.slot(index)))
        order.started(index)
    assert starts == [(0, 0, 3), (3, 1, 1), (4, 0, 3), (7, 1, 1)]


def test_replies_are_taken_in_layout_order_and_unused_slots_close_as_gaps() -> None:
    order = CallOrder("strict", lag=8, sizes=(2, 2))
    for _ in range(2):
        order.started(order.next_index())
    order.arrived(2, object(), AgentReply(proposal={"p": 2}), 0.0)  # type: ignore[arg-type]
    assert order.in_order() == []  # the call at 0 has not answered yet
    order.arrived(0, object(), AgentReply(proposal={"p": 0}), 0.0)  # type: ignore[arg-type]
    assert [index for index, *_ in order.in_order()] == [0, 2]
    order.skip(1)  # the reply at 0 had one proposal for its two slots
    assert order.closed_below == 0
    order.closed.add(0)
    order.skip(3)
    order.closed.add(2)
    order.skip(2)
    assert order.closed_below == 4


def test_the_lag_covers_a_round_of_batches() -> None:
    assert strict_lag(4, (1, 1, 1, 1)) == 8  # one proposal a call: twice the fleet, as before
    assert strict_lag(4, (8, 8, 8, 8)) == 64
