"""Replication: leaders, followers, the ISR, the high watermark, acks and failover.

The property tests run a partition of three replicas through any sequence of produces, ticks of
the clock and single-broker stops, starts and slow-downs, keeping the stored log as the service
does (the leader's records, cut where a leader change truncates it). Records are named by an id
the test gives them, so a record that a truncation replaced by another at the same offset
counts as lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from messaging.engine import idempotence
from messaging.engine import replication as rep
from messaging.engine.replication import (
    ACKS_ALL,
    ACKS_LEADER,
    NOT_ENOUGH_REPLICAS,
    NOT_LEADER_OR_FOLLOWER,
    SLOW,
    STOPPED,
    UP,
    PartitionState,
)

LAG = rep.DEFAULT_REPLICA_LAG_TIME_MAX_MS


@dataclass
class Cluster:
    """One partition on brokers 1-3 and the records its producers were told are written."""

    min_isr: int = 2
    unclean: bool = False
    now: int = 0
    brokers: dict[int, str] = field(default_factory=lambda: {1: UP, 2: UP, 3: UP})
    state: PartitionState = field(default_factory=lambda: rep.new_partition([1, 2, 3], now_ms=0))
    log: list[int] = field(default_factory=list)  # record ids, by offset: the stored log
    acked: dict[int, int] = field(default_factory=dict)  # record id -> offset
    waiting: list[tuple[list[int], int, int]] = field(default_factory=list)
    lost_acked: list[tuple[int, rep.Lost]] = field(default_factory=list)  # (offset, ledger run)
    next_id: int = 0
    refused: list[str] = field(default_factory=list)

    def alive(self) -> frozenset[int]:
        return frozenset(b for b, s in self.brokers.items() if s != STOPPED)

    def apply(self, change: rep.Change) -> None:
        old = self.state
        if change.truncated_to is not None:
            cut = change.truncated_to
            gone = set(range(cut, len(self.log)))
            named = {o for lost in change.lost for o in range(lost.start, lost.end)}
            assert named == gone, (named, gone)
            for lost in change.lost:
                for offset in range(lost.start, lost.end):
                    if self.log[offset] in self.acked:
                        assert lost.acknowledged, (offset, lost)
                        self.lost_acked.append((offset, lost))
            del self.log[cut:]
        else:
            assert not change.lost
        self.state = change.state
        if not self.unclean and old.leader is not None:
            assert self.state.hw >= old.hw, "a clean election never moves the HW back"
        self.check()

    def check(self) -> None:
        s = self.state
        assert s.log_end == len(self.log)
        assert s.isr and set(s.isr) <= set(s.brokers)
        assert s.hw <= s.log_end
        if s.leader is not None:
            assert s.leader in s.isr
            assert s.replica(s.leader).leo == s.log_end
            for b in s.isr:
                assert s.replica(b).leo >= s.hw
        # acks=all requests are answered as Kafka answers them
        still = []
        for ids, required, epoch in self.waiting:
            outcome = rep.produce_outcome(
                s, required_offset=required, leader_epoch=epoch, min_isr=self.min_isr
            )
            if outcome == "ok":
                for offset, record in enumerate(ids, start=required - len(ids)):
                    self.acked[record] = offset
            elif outcome == "waiting":
                still.append((ids, required, epoch))
        self.waiting = still

    # --- operations ----------------------------------------------------------------------------

    def produce(self, acks: int, count: int) -> None:
        refused = rep.produce_check(self.state, broker=None, acks=acks, min_isr=self.min_isr)
        if refused:
            self.refused.append(refused)
            return
        base = self.state.log_end
        ids = list(range(self.next_id, self.next_id + count))
        self.next_id += count
        self.state = rep.append(self.state, count=count, acks=acks, min_isr=self.min_isr)
        self.log.extend(ids)
        if acks == ACKS_LEADER:
            for offset, record in enumerate(ids, start=base):
                self.acked[record] = offset
        elif acks == ACKS_ALL:
            self.waiting.append((ids, base + count, self.state.leader_epoch))
        self.check()

    def tick(self, ms: int) -> None:
        self.now += ms
        self.apply(
            rep.step(
                self.state,
                brokers=self.brokers,
                now_ms=self.now,
                lag_max_ms=LAG,
                min_isr=self.min_isr,
                unclean=self.unclean,
            )
        )

    def stop(self, broker: int) -> None:
        if self.brokers[broker] == STOPPED:
            return
        self.brokers[broker] = STOPPED
        self.apply(
            rep.broker_stopped(
                self.state,
                broker,
                alive=self.alive(),
                unclean=self.unclean,
                min_isr=self.min_isr,
                now_ms=self.now,
            )
        )

    def start(self, broker: int) -> None:
        if self.brokers[broker] != STOPPED:
            return
        self.brokers[broker] = UP
        self.apply(
            rep.broker_started(
                self.state, broker, alive=self.alive(), unclean=self.unclean, now_ms=self.now
            )
        )

    def slow(self, broker: int) -> None:
        if self.brokers[broker] != STOPPED:
            self.brokers[broker] = SLOW if self.brokers[broker] == UP else UP

    def preferred(self) -> None:
        self.apply(rep.preferred_election(self.state, alive=self.alive(), now_ms=self.now))

    def run(self, ops: list[tuple]) -> Cluster:
        for op, *args in ops:
            getattr(self, op)(*args)
        return self

    def acked_kept(self) -> bool:
        return all(
            offset < len(self.log) and self.log[offset] == record
            for record, offset in self.acked.items()
        )


BROKER = st.sampled_from([1, 2, 3])


def operations(acks: st.SearchStrategy[int]) -> st.SearchStrategy[list[tuple]]:
    return st.lists(
        st.one_of(
            st.tuples(st.just("produce"), acks, st.integers(1, 3)),
            st.tuples(st.just("tick"), st.sampled_from([100, 1_000, LAG, 2 * LAG + 1])),
            st.tuples(st.just("stop"), BROKER),
            st.tuples(st.just("start"), BROKER),
            st.tuples(st.just("slow"), BROKER),
            st.tuples(st.just("preferred")),
        ),
        max_size=40,
    )


# --- the bar ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(operations(st.just(ACKS_ALL)))
def test_it_loses_no_acknowledged_record_under_acks_all_and_min_insync_2(ops):
    cluster = Cluster(min_isr=2).run(ops)
    assert not cluster.lost_acked
    assert cluster.acked_kept()


def test_it_loses_an_acks_1_record_when_the_leader_dies_before_followers_copy_it():
    cluster = Cluster(min_isr=2).run([("produce", ACKS_LEADER, 1), ("stop", 1)])
    assert cluster.state.leader == 2
    assert cluster.state.leader_epoch == 1
    [(offset, lost)] = cluster.lost_acked
    assert offset == 0
    assert lost == rep.Lost(0, 1, ACKS_LEADER, True, 0, "clean")
    assert not cluster.acked_kept()


def test_it_finds_a_sequence_that_loses_an_acknowledged_acks_1_record():
    ops = find(
        operations(st.just(ACKS_LEADER)),
        lambda ops: bool(Cluster(min_isr=2).run(ops).lost_acked),
        settings=settings(max_examples=2000, database=None, deadline=None),
    )
    cluster = Cluster(min_isr=2).run(ops)
    offset, lost = cluster.lost_acked[0]
    assert lost.acks == ACKS_LEADER and lost.acknowledged
    assert lost.start <= offset < lost.end


@settings(max_examples=200, deadline=None)
@given(operations(st.sampled_from([ACKS_ALL, ACKS_LEADER, 0])), st.booleans(), st.integers(1, 3))
def test_it_keeps_the_invariants_whatever_happens(ops, unclean, min_isr):
    cluster = Cluster(min_isr=min_isr, unclean=unclean).run(ops)
    # Only acks=1 records past the high watermark, or an unclean election, lose acked records.
    for _offset, lost in cluster.lost_acked:
        assert lost.acks == ACKS_LEADER or lost.election == "unclean"
    state = PartitionState.from_dict(cluster.state.to_dict())
    assert state == cluster.state


# --- examples ----------------------------------------------------------------------------------


def test_acks_all_waits_for_the_isr_and_is_answered_when_the_high_watermark_passes():
    cluster = Cluster(min_isr=2).run([("produce", ACKS_ALL, 2)])
    assert cluster.state.hw == 0 and cluster.waiting
    cluster.tick(100)
    assert cluster.state.hw == 2
    assert set(cluster.acked) == {0, 1}


def test_it_refuses_acks_all_with_not_enough_replicas_and_writes_nothing():
    cluster = Cluster(min_isr=2).run([("stop", 2), ("stop", 3), ("produce", ACKS_ALL, 1)])
    assert cluster.refused == [NOT_ENOUGH_REPLICAS]
    assert cluster.state.log_end == 0
    # acks=1 still goes through, and the high watermark stays where it is (under min ISR)
    cluster.produce(ACKS_LEADER, 1)
    assert cluster.state.log_end == 1 and cluster.state.hw == 0


def test_a_slow_follower_leaves_the_isr_after_replica_lag_time_max_ms_and_returns():
    cluster = Cluster(min_isr=1).run([("slow", 3), ("tick", 100)])
    assert cluster.state.isr == (1, 2, 3)
    cluster.produce(ACKS_LEADER, 1)
    # its last fetch reached the leader's end at 0 ms: in sync until 0 + replica.lag.time.max.ms
    cluster.tick(LAG - 200)
    assert cluster.state.isr == (1, 2, 3)
    cluster.tick(200)
    assert cluster.state.isr == (1, 2)
    assert cluster.state.hw == 1, "the high watermark moves on without the slow follower"
    cluster.slow(3)  # back to normal speed
    cluster.tick(100)
    assert cluster.state.isr == (1, 2, 3)
    assert cluster.state.replica(3).leo == 1


def test_a_returning_old_leader_truncates_what_the_new_leader_never_had():
    cluster = Cluster(min_isr=1).run(
        [("produce", ACKS_LEADER, 2), ("tick", 100), ("produce", ACKS_LEADER, 3), ("stop", 1)]
    )
    assert cluster.state.leader == 2 and cluster.state.log_end == 2
    cluster.produce(ACKS_LEADER, 1)
    # broker 1 still holds offsets 2-4 of epoch 0; broker 2 wrote offset 2 in epoch 1
    assert cluster.state.replica(1).leo == 5
    cluster.start(1)
    replica = cluster.state.replica(1)
    assert replica.leo == 2, "truncated to where epoch 0 ends on the new leader"
    cluster.tick(100)
    assert cluster.state.replica(1).leo == 3 and 1 in cluster.state.isr


def test_the_last_isr_member_stays_and_the_partition_goes_offline():
    cluster = Cluster(min_isr=1).run([("stop", 2), ("stop", 3), ("stop", 1)])
    assert cluster.state.leader is None
    assert cluster.state.isr == (1,)
    assert (
        rep.produce_check(cluster.state, broker=None, acks=ACKS_LEADER, min_isr=1)
        == NOT_LEADER_OR_FOLLOWER
    )
    cluster.start(2)
    assert cluster.state.leader is None, "broker 2 is not in the ISR: no unclean election"
    cluster.start(1)
    assert cluster.state.leader == 1


def test_an_unclean_election_loses_committed_records_and_says_so():
    cluster = Cluster(min_isr=1, unclean=True).run(
        [("stop", 3), ("produce", ACKS_ALL, 2), ("tick", 100), ("stop", 2), ("stop", 1)]
    )
    assert cluster.state.leader is None
    cluster.start(3)
    assert cluster.state.leader == 3
    assert cluster.state.isr == (3,)
    assert [lost.election for _, lost in cluster.lost_acked] == ["unclean", "unclean"]
    assert cluster.state.hw == 0


def test_the_preferred_leader_returns():
    cluster = Cluster(min_isr=1).run([("stop", 1), ("start", 1), ("tick", 100)])
    assert cluster.state.leader == 2 and 1 in cluster.state.isr
    assert rep.imbalanced_brokers([cluster.state]) == {1}
    cluster.preferred()
    assert cluster.state.leader == 1
    assert cluster.state.leader_epoch == 2
    assert rep.imbalanced_brokers([cluster.state]) == set()


def test_a_non_leader_broker_answers_not_leader_or_follower():
    state = rep.new_partition([2, 3, 1], now_ms=0)
    assert rep.produce_check(state, broker=1, acks=1, min_isr=1) == NOT_LEADER_OR_FOLLOWER
    assert rep.produce_check(state, broker=2, acks=1, min_isr=1) is None
    assert rep.produce_check(state, broker=2, acks=2, min_isr=1) == "INVALID_REQUIRED_ACKS"


def test_it_places_replicas_as_kafka_rack_unaware_placement_does():
    placed = rep.assign_replicas([1, 2, 3], 6, 3)
    assert [p[0] for p in placed] == [1, 2, 3, 1, 2, 3]
    assert all(len(set(p)) == 3 for p in placed)
    assert placed[0] == [1, 2, 3] and placed[3] == [1, 3, 2]
    with pytest.raises(rep.ReplicationError) as refused:
        rep.assign_replicas([1, 2], 1, 3)
    assert refused.value.error == "INVALID_REPLICATION_FACTOR"


def test_truncation_follows_leader_epochs():
    # follower wrote epoch 0 up to 5; the leader's epoch 0 ended at 3, then epoch 2 from 3
    assert rep.truncation_offset(((0, 0),), 5, ((0, 0), (2, 3)), 7) == 3
    # follower's last epoch 1 the leader never had: back to where both agree (epoch 0's end)
    assert rep.truncation_offset(((0, 0), (1, 4)), 6, ((0, 0), (2, 3)), 7) == 3
    assert rep.truncation_offset(((0, 0),), 2, ((0, 0),), 7) == 2


def test_an_idempotent_producers_state_forgets_truncated_batches():
    entry = idempotence.ProducerEntry(
        producer_id=7,
        producer_epoch=0,
        batches=(
            idempotence.RetainedBatch(0, 4, 0, 0),
            idempotence.RetainedBatch(5, 9, 5, 0),
        ),
    )
    kept = rep.producer_entry_truncated(entry, 5)
    assert kept is not None and [b.first_offset for b in kept.batches] == [0]
    assert rep.producer_entry_truncated(entry, 0) is None
