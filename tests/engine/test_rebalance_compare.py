"""Tests for messaging.engine.rebalance_compare: the same join or leave under eager,
cooperative and KIP-848, from one start.

What the side-by-side page claims is checked on every run: nobody reads a partition another
member reads at the same moment; in the end every partition is read; eager stops every member
that hears of a join, cooperative and KIP-848 stop nobody who stays.
"""

from __future__ import annotations

import pytest

from messaging.engine.rebalance_compare import Run, Scenario, compare

SCENARIOS = [
    Scenario(members=3, partitions=6),
    Scenario(members=2, partitions=5),
    Scenario(members=4, partitions=4),
    Scenario(members=1, partitions=3),
    Scenario(members=3, partitions=6, event="leave"),
    Scenario(members=5, partitions=12, event="leave"),
]


def overlaps(run: Run) -> list[tuple[int, str, str]]:
    clashes = []
    for p in {s.partition for s in run.segments}:
        bars = sorted((s.start_ms, s.end_ms, s.member) for s in run.segments if s.partition == p)
        for (_, end, a), (start, _, b) in zip(bars, bars[1:], strict=False):
            if start < end:
                clashes.append((p, a, b))
    return clashes


@pytest.mark.parametrize(
    "scenario", SCENARIOS, ids=lambda s: f"{s.members}x{s.partitions}-{s.event}"
)
def test_it_never_lets_two_members_read_one_partition_and_ends_with_every_partition_read(scenario):
    for run in compare(scenario):
        assert overlaps(run) == [], run.protocol
        read_at_end = {s.partition for s in run.segments if s.end_ms == run.end_ms}
        assert read_at_end == set(range(scenario.partitions)), run.protocol
        assert run.settled_ms <= run.end_ms


def test_it_stops_every_member_under_eager_and_nobody_under_the_others_on_a_join():
    eager, cooperative, consumer = compare(Scenario(members=3, partitions=6))
    assert eager.stopped == ("c1", "c2", "c3")
    assert cooperative.stopped == () and consumer.stopped == ()
    assert eager.paused_ms > 0
    # Cooperative needs two rounds: the second one ends after the first.
    rounds = [t for t, text in cooperative.events if "join phase over" in text]
    assert len(rounds) == 2 and rounds[0] < rounds[1]
    # KIP-848: a moved partition waits for its new owner's next heartbeat (5 s apart).
    assert any("must revoke" in text for _, text in consumer.events)
    assert consumer.settled_ms == consumer.heartbeat_ms


def test_it_refuses_scenarios_out_of_bounds():
    for bad in (
        Scenario(members=0),
        Scenario(members=9),
        Scenario(partitions=25),
        Scenario(members=1, event="leave"),
    ):
        with pytest.raises(ValueError):
            compare(bad)
