"""Tests for messaging.engine.consumer_group: KIP-848's coordinator.

The reconciliation cases are Kafka's ``CurrentAssignmentBuilderTest`` (apache/kafka
``group-coordinator/src/test/java/org/apache/kafka/coordinator/group/modern/consumer/``)
re-encoded as data, each named after its Java test; the heartbeat cases follow the rules of
``GroupMetadataManager.consumerGroupHeartbeat`` and its validations. The properties drive groups
of members through random heartbeats, stale heartbeats, leaves, crashes and growing topics and
check that no partition ever has two owners, at any epoch, and that a group whose members keep
heartbeating ends Stable with everyone owning exactly their target.
"""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.engine import consumer_group as cg
from messaging.engine.consumer_group import (
    Config,
    Group,
    GroupState,
    Heartbeat,
    Member,
    MemberState,
    flat,
    partitions_of,
)
from messaging.engine.server_assignors import TopicMeta

S = MemberState


def parts(**by_topic: tuple[int, ...]) -> cg.Partitions:
    return partitions_of(by_topic)


def meta(**counts: int) -> dict[str, TopicMeta]:
    return {t: TopicMeta(uuid.uuid5(uuid.NAMESPACE_DNS, t), n) for t, n in counts.items()}


def member(state: MemberState, epoch: int, previous: int, assigned, revoking=()) -> Member:
    return Member(
        "member",
        member_epoch=epoch,
        previous_member_epoch=previous,
        state=state,
        assigned=assigned,
        pending_revocation=revoking,
    )


def epochs(value: int, only: str | None = None):
    """Java's ``withCurrentPartitionEpoch((topicId, partitionId) -> value)``."""

    class Epochs(dict):
        def get(self, key, default=None):
            return value if only is None or key[0] == only else -1

    return Epochs()


# --- CurrentAssignmentBuilderTest ------------------------------------------------------------


def test_it_moves_a_stable_member_to_the_new_epoch_when_nothing_changes():
    # testStableToStable
    before = member(S.STABLE, 10, 10, parts(t1=(1, 2, 3), t2=(4, 5, 6)))
    after = cg.reconcile(
        before,
        target_epoch=11,
        target=parts(t1=(1, 2, 3), t2=(4, 5, 6)),
        partition_epochs=epochs(10),
        owned=None,
    )
    assert after == member(S.STABLE, 11, 10, parts(t1=(1, 2, 3), t2=(4, 5, 6)))


def test_it_assigns_free_partitions_at_once():  # testStableToStableWithNewPartitions
    before = member(S.STABLE, 10, 10, parts(t1=(1, 2, 3), t2=(4, 5, 6)))
    after = cg.reconcile(
        before,
        target_epoch=11,
        target=parts(t1=(1, 2, 3, 4), t2=(4, 5, 6, 7)),
        partition_epochs=epochs(-1),
        owned=None,
    )
    assert after == member(S.STABLE, 11, 10, parts(t1=(1, 2, 3, 4), t2=(4, 5, 6, 7)))


def test_it_revokes_before_it_assigns():  # testStableToUnrevokedPartitions
    before = member(S.STABLE, 10, 10, parts(t1=(1, 2, 3), t2=(4, 5, 6)))
    after = cg.reconcile(
        before,
        target_epoch=11,
        target=parts(t1=(2, 3, 4), t2=(5, 6, 7)),
        partition_epochs=epochs(-1),
        owned=None,
    )
    assert after == member(
        S.UNREVOKED_PARTITIONS, 10, 10, parts(t1=(2, 3), t2=(5, 6)), parts(t1=(1,), t2=(4,))
    )


def test_it_waits_for_partitions_others_still_own():  # testStableToUnreleasedPartitions
    before = member(S.STABLE, 10, 10, parts(t1=(1, 2, 3), t2=(4, 5, 6)))
    after = cg.reconcile(
        before,
        target_epoch=11,
        target=parts(t1=(1, 2, 3, 4), t2=(4, 5, 6, 7)),
        partition_epochs=epochs(10),
        owned=None,
    )
    assert after == member(S.UNRELEASED_PARTITIONS, 11, 10, parts(t1=(1, 2, 3), t2=(4, 5, 6)))


def test_it_skips_the_revocation_a_member_already_did():
    # testStableToUnreleasedPartitionsWithOwnedPartitionsNotHavingRevokedPartitions
    before = member(S.STABLE, 10, 10, parts(t1=(1, 2, 3), t2=(4, 5, 6)))
    after = cg.reconcile(
        before,
        target_epoch=11,
        target=parts(t1=(1, 2, 3), t2=(4, 5, 7)),
        partition_epochs=epochs(10, only="t2"),
        owned=(),
    )
    assert after == member(S.UNRELEASED_PARTITIONS, 11, 10, parts(t1=(1, 2, 3), t2=(4, 5)))


def test_it_moves_on_once_the_heartbeat_no_longer_lists_the_revoked():
    # testUnrevokedPartitionsToStable
    before = member(
        S.UNREVOKED_PARTITIONS, 10, 10, parts(t1=(2, 3), t2=(5, 6)), parts(t1=(1,), t2=(4,))
    )
    after = cg.reconcile(
        before,
        target_epoch=11,
        target=parts(t1=(2, 3), t2=(5, 6)),
        partition_epochs=epochs(-1),
        owned=parts(t1=(2, 3), t2=(5, 6)),
    )
    assert after == member(S.STABLE, 11, 10, parts(t1=(2, 3), t2=(5, 6)))


@pytest.mark.parametrize(
    "owned",
    [None, parts(t1=(1, 2, 3), t2=(5, 6)), parts(t1=(2, 3), t2=(4, 5, 6))],
    ids=["owned not sent", "t1-1 still owned", "t2-4 still owned"],
)
def test_it_stays_unrevoked_while_the_member_still_owns_a_revoked_partition(owned):
    # testRemainsInUnrevokedPartitions
    before = member(
        S.UNREVOKED_PARTITIONS, 10, 10, parts(t1=(2, 3), t2=(5, 6)), parts(t1=(1,), t2=(4,))
    )
    after = cg.reconcile(
        before,
        target_epoch=12,
        target=parts(t1=(3,), t2=(6,)),
        partition_epochs=epochs(-1),
        owned=owned,
    )
    assert after == before


def test_it_asks_for_the_next_revocation_one_epoch_up():
    # testUnrevokedPartitionsToUnrevokedPartitions
    before = member(
        S.UNREVOKED_PARTITIONS, 10, 10, parts(t1=(2, 3), t2=(5, 6)), parts(t1=(1,), t2=(4,))
    )
    after = cg.reconcile(
        before,
        target_epoch=12,
        target=parts(t1=(3,), t2=(6,)),
        partition_epochs=epochs(-1),
        owned=parts(t1=(2, 3), t2=(5, 6)),
    )
    assert after == member(
        S.UNREVOKED_PARTITIONS, 11, 10, parts(t1=(3,), t2=(6,)), parts(t1=(2,), t2=(5,))
    )


def test_it_goes_from_revoking_to_waiting_for_others():
    # testUnrevokedPartitionsToUnreleasedPartitions
    before = member(S.UNREVOKED_PARTITIONS, 11, 10, parts(t1=(2, 3), t2=(5, 6)))
    after = cg.reconcile(
        before,
        target_epoch=11,
        target=parts(t1=(2, 3, 4), t2=(5, 6, 7)),
        partition_epochs=epochs(10),
        owned=parts(t1=(2, 3), t2=(5, 6)),
    )
    assert after == member(S.UNRELEASED_PARTITIONS, 11, 11, parts(t1=(2, 3), t2=(5, 6)))


def test_it_leaves_waiting_when_the_target_no_longer_needs_the_partitions():
    # testUnreleasedPartitionsToStable
    before = member(S.UNRELEASED_PARTITIONS, 11, 11, parts(t1=(2, 3), t2=(5, 6)))
    after = cg.reconcile(
        before,
        target_epoch=12,
        target=parts(t1=(2, 3), t2=(5, 6)),
        partition_epochs=epochs(10),
        owned=None,
    )
    assert after == member(S.STABLE, 12, 11, parts(t1=(2, 3), t2=(5, 6)))


def test_it_takes_released_partitions():  # testUnreleasedPartitionsToStableWithNewPartitions
    before = member(S.UNRELEASED_PARTITIONS, 11, 11, parts(t1=(2, 3), t2=(5, 6)))
    after = cg.reconcile(
        before,
        target_epoch=11,
        target=parts(t1=(2, 3, 4), t2=(5, 6, 7)),
        partition_epochs=epochs(-1),
        owned=None,
    )
    assert after == member(S.STABLE, 11, 11, parts(t1=(2, 3, 4), t2=(5, 6, 7)))


def test_it_keeps_waiting_while_the_partitions_are_owned():
    # testUnreleasedPartitionsToUnreleasedPartitions
    before = member(S.UNRELEASED_PARTITIONS, 11, 11, parts(t1=(2, 3), t2=(5, 6)))
    after = cg.reconcile(
        before,
        target_epoch=11,
        target=parts(t1=(2, 3, 4), t2=(5, 6, 7)),
        partition_epochs=epochs(10),
        owned=None,
    )
    assert after == before


def test_it_revokes_from_a_waiting_member_when_the_target_shrinks():
    # testUnreleasedPartitionsToUnrevokedPartitions
    before = member(S.UNRELEASED_PARTITIONS, 11, 11, parts(t1=(2, 3), t2=(5, 6)))
    after = cg.reconcile(
        before,
        target_epoch=12,
        target=parts(t1=(3,), t2=(6,)),
        partition_epochs=epochs(10),
        owned=None,
    )
    assert after == member(
        S.UNREVOKED_PARTITIONS, 11, 11, parts(t1=(3,), t2=(6,)), parts(t1=(2,), t2=(5,))
    )


def test_it_fences_a_member_in_an_unknown_state_until_it_owns_nothing():  # testUnknownState
    before = member(S.UNKNOWN, 11, 11, parts(t1=(3,), t2=(6,)), parts(t1=(2,), t2=(5,)))
    with pytest.raises(cg._Refused) as refused:
        cg.reconcile(
            before,
            target_epoch=12,
            target=parts(t1=(3,), t2=(6,)),
            partition_epochs=epochs(10),
            owned=None,
        )
    assert refused.value.error == cg.FENCED_MEMBER_EPOCH
    after = cg.reconcile(
        before,
        target_epoch=12,
        target=parts(t1=(3,), t2=(6,)),
        partition_epochs=epochs(11),
        owned=(),
    )
    assert after == member(S.STABLE, 12, 11, parts(t1=(3,), t2=(6,)))


# --- the heartbeat ---------------------------------------------------------------------------

TOPICS = meta(orders=6)
RANGE = Config()


def join(member_id: str, assignor: str | None = "range", topics=("orders",), **kw) -> Heartbeat:
    return Heartbeat(
        member_id,
        0,
        rebalance_timeout_ms=300_000,
        subscribed=tuple(topics),
        server_assignor=assignor,
        owned=(),
        **kw,
    )


def beat(group: Group, request: Heartbeat, now: int = 0, topics=None, config=RANGE):
    outcome = cg.heartbeat(group, request, now_ms=now, topics=topics or TOPICS, config=config)
    return outcome.group, outcome.answer


def test_it_gives_a_lone_member_every_partition_in_one_heartbeat():
    group, answer = beat(Group("g"), join("a"))
    assert answer.error is None
    assert (answer.member_id, answer.member_epoch, answer.heartbeat_interval_ms) == ("a", 1, 5000)
    assert answer.assignment == parts(orders=(0, 1, 2, 3, 4, 5))
    assert group.state() is GroupState.STABLE


def test_it_hands_a_partition_over_only_after_its_owner_revoked_it():
    group, _ = beat(Group("g"), join("a"))
    group, b = beat(group, join("b"), now=1)
    # b is at the new epoch with nothing yet: a still owns 3, 4, 5.
    assert (b.member_epoch, b.assignment) == (2, ())
    assert group.state() is GroupState.RECONCILING
    group, a = beat(group, Heartbeat("a", 1, owned=parts(orders=(0, 1, 2, 3, 4, 5))), now=2)
    # a is told its smaller assignment at its old epoch: revoke first.
    assert (a.member_epoch, a.assignment) == (1, parts(orders=(0, 1, 2)))
    group, b = beat(group, Heartbeat("b", 2, owned=()), now=3)
    assert b.assignment is None  # still owned by a: nothing to hand out
    group, a = beat(group, Heartbeat("a", 1, owned=parts(orders=(0, 1, 2))), now=4)
    assert (a.member_epoch, a.assignment) == (2, None)
    group, b = beat(group, Heartbeat("b", 2, owned=()), now=5)
    assert b.assignment == parts(orders=(3, 4, 5))
    assert group.state() is GroupState.STABLE


def test_it_gives_a_leavers_partitions_to_the_others_at_their_next_heartbeat():
    group, _ = beat(Group("g"), join("a"))
    group, _ = beat(group, join("b"))
    group, _ = beat(group, Heartbeat("a", 1, owned=parts(orders=(0, 1, 2))))
    group, _ = beat(group, Heartbeat("b", 2, owned=()))
    group, left = beat(group, Heartbeat("b", cg.LEAVE_EPOCH))
    assert (left.member_id, left.member_epoch) == ("b", -1)
    assert (group.group_epoch, group.state()) == (3, GroupState.ASSIGNING)
    group, a = beat(group, Heartbeat("a", 2, owned=parts(orders=(0, 1, 2))))
    assert (a.member_epoch, a.assignment) == (3, parts(orders=(0, 1, 2, 3, 4, 5)))


def test_it_uses_the_assignor_most_members_name_and_uniform_by_default():
    group, _ = beat(Group("g"), join("a", assignor=None))
    assert group.preferred_assignor() is None
    group, _ = beat(group, join("b", assignor="range"))
    assert group.preferred_assignor() == "range"


def test_it_refuses_an_assignor_it_does_not_have():
    group, answer = beat(Group("g"), join("a", assignor="sticky"))
    assert answer.error == cg.UNSUPPORTED_ASSIGNOR
    assert "Supported assignors: uniform, range." in answer.error_message
    assert group == Group("g")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (
            Heartbeat("a", 0, subscribed=("orders",), owned=()),
            "RebalanceTimeoutMs must be provided",
        ),
        (
            Heartbeat("a", 0, rebalance_timeout_ms=1, subscribed=("orders",)),
            "TopicPartitions must be empty",
        ),
        (Heartbeat("a", 0, rebalance_timeout_ms=1, owned=()), "SubscribedTopicNames must be set"),
        (Heartbeat("", 3), "MemberId can't be empty"),
        (Heartbeat("a", -3), "MemberEpoch is invalid"),
        (Heartbeat("a", -2), "InstanceId can't be null"),
        (Heartbeat("a", 1, instance_id=""), "InstanceId can't be empty"),
    ],
)
def test_it_refuses_invalid_requests(request_, message):
    _, answer = beat(Group("g"), request_)
    assert answer.error == cg.INVALID_REQUEST
    assert message in answer.error_message


def test_it_fences_a_member_ahead_of_or_behind_its_epoch():
    group, _ = beat(Group("g"), join("a"))
    _, ahead = beat(group, Heartbeat("a", 5, owned=()))
    assert ahead.error == cg.FENCED_MEMBER_EPOCH
    group, _ = beat(group, join("b"))
    group, _ = beat(group, Heartbeat("a", 1, owned=parts(orders=(0, 1, 2))))
    assert group.member("a").member_epoch == 2
    # One epoch behind, owning a subset of its assignment: its last answer was lost.
    _, lost = beat(group, Heartbeat("a", 1, owned=parts(orders=(0, 1))))
    assert lost.error is None
    _, behind = beat(group, Heartbeat("a", 1, owned=parts(orders=(0, 1, 2, 3))))
    assert behind.error == cg.FENCED_MEMBER_EPOCH


def test_it_does_not_know_a_member_that_never_joined():
    _, answer = beat(Group("g"), Heartbeat("ghost", 3, owned=()))
    assert answer.error == cg.UNKNOWN_MEMBER_ID


def test_it_includes_the_assignment_only_in_full_requests_or_when_it_changed():
    group, _ = beat(Group("g"), join("a"))
    _, quiet = beat(group, Heartbeat("a", 1))
    assert quiet.assignment is None
    full = Heartbeat(
        "a",
        1,
        rebalance_timeout_ms=300_000,
        subscribed=("orders",),
        owned=parts(orders=(0, 1, 2, 3, 4, 5)),
    )
    _, answer = beat(group, full)
    assert answer.assignment == parts(orders=(0, 1, 2, 3, 4, 5))


def test_it_fences_a_member_whose_session_timed_out():
    group, _ = beat(Group("g"), join("a"), now=0)
    group, _ = beat(group, join("b"), now=1_000)
    outcome = cg.tick(group, now_ms=44_999, topics=TOPICS)
    assert [m.member_id for m in outcome.group.members] == ["a", "b"]
    outcome = cg.tick(group, now_ms=45_000, topics=TOPICS)
    assert [m.member_id for m in outcome.group.members] == ["b"]
    assert "session timed out" in outcome.narration
    assert outcome.group.group_epoch == 3


def test_it_fences_a_member_that_does_not_revoke_within_its_rebalance_timeout():
    group, _ = beat(Group("g"), join("a"), now=0)
    group, _ = beat(group, join("b"), now=0)
    group, _ = beat(group, Heartbeat("a", 1, owned=parts(orders=(0, 1, 2, 3, 4, 5))), now=1_000)
    assert group.member("a").rebalance_deadline_ms == 301_000
    # a keeps heartbeating but never lets go.
    for now in range(5_000, 301_000, 5_000):
        group, _ = beat(group, Heartbeat("a", 1), now=now)
        group, _ = beat(group, Heartbeat("b", 2), now=now)
    outcome = cg.tick(group, now_ms=301_000, topics=TOPICS)
    assert [m.member_id for m in outcome.group.members] == ["b"]
    assert "rebalance timeout" in outcome.narration


def test_it_keeps_a_static_members_partitions_while_it_restarts():
    group, _ = beat(Group("g"), join("a1", instance_id="pod-a"))
    group, _ = beat(group, join("b", instance_id="pod-b"))
    group, _ = beat(group, Heartbeat("a1", 1, owned=parts(orders=(0, 1, 2))))
    group, _ = beat(group, Heartbeat("b", 2, owned=()))
    held = group.member("a1").assigned
    group, left = beat(group, Heartbeat("a1", -2, instance_id="pod-a"))
    assert left.member_epoch == -2
    assert group.group_epoch == 2  # no bump: it said it will be back
    # Another process with the same instance id is refused until then... it is the same pod:
    _, taken = beat(group, join("a2", instance_id="pod-b"))
    assert taken.error == cg.UNRELEASED_INSTANCE_ID
    group, back = beat(group, join("a2", instance_id="pod-a"))
    assert back.error is None
    assert back.assignment == held
    assert group.member("a1") is None and group.group_epoch == 2


def test_it_fences_a_static_member_speaking_for_another_id():
    group, _ = beat(Group("g"), join("a1", instance_id="pod-a"))
    _, answer = beat(group, Heartbeat("other", 1, instance_id="pod-a", owned=()))
    assert answer.error == cg.FENCED_INSTANCE_ID


def test_it_bumps_the_group_epoch_when_a_subscribed_topic_grows():
    group, _ = beat(Group("g"), join("a"))
    group, answer = beat(group, Heartbeat("a", 1), topics=meta(orders=8))
    assert group.group_epoch == 2
    assert answer.assignment == parts(orders=tuple(range(8)))


def test_it_refuses_a_full_group():
    group, _ = beat(Group("g"), join("a"), config=Config(max_size=1))
    _, answer = beat(group, join("b"), config=Config(max_size=1))
    assert answer.error == cg.GROUP_MAX_SIZE_REACHED


def test_it_checks_offset_commits_against_the_member_epoch():
    group, _ = beat(Group("g"), join("a"))
    assert cg.offset_commit_check(group, member_id="a", member_epoch=1, api_version=9) is None
    assert cg.offset_commit_check(group, member_id="a", member_epoch=0, api_version=9) == (
        cg.STALE_MEMBER_EPOCH
    )
    assert cg.offset_commit_check(group, member_id="a", member_epoch=1, api_version=8) == (
        cg.UNSUPPORTED_VERSION
    )
    assert cg.offset_commit_check(group, member_id="", member_epoch=-1, api_version=7) == (
        cg.UNKNOWN_MEMBER_ID
    )
    assert cg.offset_commit_check(Group("g"), member_id="", member_epoch=-1, api_version=7) is None


def test_it_round_trips_through_json():
    group, _ = beat(Group("g"), join("a", instance_id="pod"))
    group, _ = beat(group, join("b"))
    group, _ = beat(group, Heartbeat("a", 1, owned=parts(orders=(0, 1, 2, 3, 4, 5))))
    assert Group.from_dict(group.to_dict()) == group


# --- properties: one owner per partition, at every epoch --------------------------------------

NAMES = ("a", "b", "c", "d")


@st.composite
def scripts(draw: st.DrawFn) -> list[tuple]:
    steps = []
    for _ in range(draw(st.integers(5, 40))):
        steps.append(
            draw(
                st.one_of(
                    st.tuples(
                        st.just("join"),
                        st.sampled_from(NAMES),
                        st.sampled_from(["uniform", "range", None]),
                    ),
                    st.tuples(st.just("beat"), st.sampled_from(NAMES), st.booleans()),
                    st.tuples(st.just("leave"), st.sampled_from(NAMES)),
                    st.tuples(st.just("time"), st.integers(1_000, 50_000)),
                    st.tuples(st.just("grow"), st.integers(1, 3)),
                )
            )
        )
    return steps


class Clients:
    """What each member's client believes: its epoch and what it owns. A client that `lags`
    keeps what it had for a while before it takes on its latest assignment (its application
    thread is busy); it always reports what it really owns."""

    def __init__(self) -> None:
        self.epoch: dict[str, int] = {}
        self.owned: dict[str, cg.Partitions] = {}
        self.latest: dict[str, cg.Partitions] = {}

    def request(self, name: str) -> Heartbeat:
        return Heartbeat(name, self.epoch[name], owned=self.owned[name])

    def answer(self, name: str, answer: cg.Answer, lags: bool = False) -> None:
        if answer.error is not None:
            # Fenced or unknown: the client drops everything and will rejoin.
            self.epoch.pop(name, None)
            self.owned.pop(name, None)
            self.latest.pop(name, None)
            return
        self.epoch[name] = answer.member_epoch
        if answer.assignment is not None:
            self.latest[name] = answer.assignment
        if not lags and name in self.latest:
            self.owned[name] = self.latest.pop(name)


def owners_ok(group: Group, clients: Clients) -> None:
    group.partition_epochs()  # raises on two owners
    # What clients consume is never claimed by two of them either.
    seen: dict[tuple[str, int], str] = {}
    for name, owned in clients.owned.items():
        if group.member(name) is None:
            continue
        for tp in flat(owned):
            assert tp not in seen, f"{tp} consumed by {seen[tp]} and {name}"
            seen[tp] = name


@settings(max_examples=120, deadline=None)
@given(scripts())
def test_no_partition_is_ever_owned_by_two_members(script):
    group, clients, now, size = Group("g"), Clients(), 0, 4
    for step in script:
        topics = meta(orders=size)
        kind = step[0]
        if kind == "join" and step[1] not in clients.epoch:
            request = join(step[1], assignor=step[2])
            outcome = cg.heartbeat(group, request, now_ms=now, topics=topics)
            group = outcome.group
            clients.answer(step[1], outcome.answer)
        elif kind == "beat" and step[1] in clients.epoch:
            outcome = cg.heartbeat(group, clients.request(step[1]), now_ms=now, topics=topics)
            group = outcome.group
            clients.answer(step[1], outcome.answer, lags=step[2])
        elif kind == "leave" and step[1] in clients.epoch:
            group = cg.heartbeat(group, Heartbeat(step[1], -1), now_ms=now, topics=topics).group
            clients.answer(step[1], cg.Answer(error="left"))
        elif kind == "time":
            now += step[1]
            group = cg.tick(group, now_ms=now, topics=topics).group
            for name in list(clients.epoch):
                if group.member(name) is None:
                    clients.answer(name, cg.Answer(error="fenced"))
        elif kind == "grow":
            size += step[1]
        owners_ok(group, clients)

    # Everyone left heartbeats, promptly and honestly, until the group settles.
    topics = meta(orders=size)
    for _ in range(4 * len(NAMES) + 4):
        for name in list(clients.epoch):
            outcome = cg.heartbeat(group, clients.request(name), now_ms=now, topics=topics)
            group = outcome.group
            clients.answer(name, outcome.answer)
            owners_ok(group, clients)
    if group.members:
        assert group.state() is GroupState.STABLE
        for m in group.members:
            assert m.assigned == group.target_of(m.member_id)
            assert clients.owned[m.member_id] == m.assigned
        everything = {tp for m in group.members for tp in flat(m.assigned)}
        assert everything == {("orders", p) for p in range(size)}
