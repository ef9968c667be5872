"""Tests for messaging.engine.server_assignors (KIP-848's uniform and range).

The cases are Kafka's own tests of the group coordinator's assignors re-encoded as data, each
named after the Java test it comes from (apache/kafka ``group-coordinator/src/test/java/org/
apache/kafka/coordinator/group/assignor/``: ``OptimizedUniformAssignmentBuilderTest``,
``UniformHeterogeneousAssignmentBuilderTest``, ``RangeAssignorTest``), with the same topic ids
(the homogeneous builder deals partitions in the order of a Java ``HashSet`` of those ids).
Members come in sorted order, as the Java tests' ``TreeMap`` (and the heterogeneous tests'
``TestGroupSpecImpl``) give them.

Left out: ``testValidityAndBalanceForLargeSampleSet`` (99 topics x 49 members with random ids)
is replaced by the property tests below, which check the same validity and balance on
hypothesis-drawn groups.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.engine.server_assignors import (
    RANGE,
    UNIFORM,
    AssignorError,
    MemberSpec,
    TopicMeta,
    assign,
    java_hash_set_order,
)


def kafka_uuid(text: str) -> uuid.UUID:
    """Kafka's ``Uuid.fromString``: URL-safe base64 of the 16 bytes, without padding."""
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=="))


T1 = kafka_uuid("T1-A4s3VTwiI5CTbEp6POw")
T2 = kafka_uuid("T2-B4s3VTwiI5YHbPp6YUe")
T3 = kafka_uuid("T3-CU8fVTLCz5YMkLoDQsa")
T4 = kafka_uuid("T4-Tw9fVTLCz5HbPp6YQsa")
IDS = {"topic1": T1, "topic2": T2, "topic3": T3, "topic4": T4}


def topics(**counts: int) -> dict[str, TopicMeta]:
    return {name: TopicMeta(IDS[name], count) for name, count in counts.items()}


def member(
    member_id: str,
    *subscribed: str,
    owned: Mapping[str, tuple[int, ...]] | None = None,
    instance: str | None = None,
) -> MemberSpec:
    return MemberSpec(member_id, tuple(subscribed), dict(owned or {}), instance)


def plain(result: Mapping[str, Mapping[str, set[int]]]) -> dict[str, dict[str, set[int]]]:
    return {m: {t: set(ps) for t, ps in tps.items()} for m, tps in result.items()}


def test_it_reads_a_java_hash_set_of_topic_ids_in_bucket_order():
    # topic2's id hashes to bucket 1, topic3's to 9, topic1's to 10 of a 16-bucket table:
    # what makes Kafka's homogeneous builder deal topic3 before topic1 below.
    meta = topics(topic1=1, topic2=1, topic3=1)
    assert java_hash_set_order(["topic1", "topic2", "topic3"], meta) == [
        "topic2",
        "topic3",
        "topic1",
    ]


# --- OptimizedUniformAssignmentBuilderTest (homogeneous uniform) -------------------------------


def test_it_assigns_nothing_to_a_member_with_no_subscription():  # testOneMemberNoTopicSubscription
    assert assign(UNIFORM, [member("A")], topics(topic1=3)) == {}


def test_it_refuses_a_subscription_to_a_missing_topic():
    # testOneMemberSubscribedToNonexistentTopic
    with pytest.raises(AssignorError):
        assign(UNIFORM, [member("A", "topic2")], topics(topic1=3))


def test_it_deals_a_first_uniform_assignment_in_hash_set_order():
    # testFirstAssignmentTwoMembersTwoTopicsNoMemberRacks
    result = assign(
        UNIFORM,
        [member("A", "topic1", "topic3"), member("B", "topic1", "topic3")],
        topics(topic1=3, topic3=2),
    )
    assert plain(result) == {"A": {"topic1": {0}, "topic3": {0, 1}}, "B": {"topic1": {1, 2}}}


def test_it_leaves_a_member_idle_when_members_outnumber_partitions():
    # testFirstAssignmentNumMembersGreaterThanTotalNumPartitions
    members = [member(m, "topic3") for m in "ABC"]
    assert plain(assign(UNIFORM, members, topics(topic3=2))) == {
        "A": {"topic3": {0}},
        "B": {"topic3": {1}},
        "C": {},
    }


def test_it_rebalances_an_unbalanced_assignment_keeping_what_fits_the_quota():
    # testReassignmentForTwoMembersTwoTopicsGivenUnbalancedPrevAssignment
    members = [
        member("A", "topic1", "topic2", owned={"topic1": (0, 1), "topic2": (0, 1)}),
        member("B", "topic1", "topic2", owned={"topic1": (2,), "topic2": (2,)}),
    ]
    assert plain(assign(UNIFORM, members, topics(topic1=3, topic2=3))) == {
        "A": {"topic1": {0, 1}, "topic2": {0}},
        "B": {"topic1": {2}, "topic2": {1, 2}},
    }


def test_it_deals_added_partitions_to_the_members_with_room():
    # testReassignmentWhenPartitionsAreAddedForTwoMembersTwoTopics
    members = [
        member("A", "topic1", "topic2", owned={"topic1": (0, 2), "topic2": (0,)}),
        member("B", "topic1", "topic2", owned={"topic1": (1,), "topic2": (1, 2)}),
    ]
    assert plain(assign(UNIFORM, members, topics(topic1=6, topic2=5))) == {
        "A": {"topic1": {0, 2, 3}, "topic2": {0, 3, 4}},
        "B": {"topic1": {1, 4, 5}, "topic2": {1, 2}},
    }


def test_it_gives_a_new_member_what_the_others_hold_over_their_quota():
    # testReassignmentWhenOneMemberAddedAfterInitialAssignmentWithTwoMembersTwoTopics
    members = [
        member("A", "topic1", "topic2", owned={"topic1": (0, 2), "topic2": (0,)}),
        member("B", "topic1", "topic2", owned={"topic1": (1,), "topic2": (1, 2)}),
        member("C", "topic1", "topic2"),
    ]
    assert plain(assign(UNIFORM, members, topics(topic1=3, topic2=3))) == {
        "A": {"topic1": {0, 2}},
        "B": {"topic1": {1}, "topic2": {1}},
        "C": {"topic2": {0, 2}},
    }


def test_it_hands_a_removed_members_partitions_to_the_others():
    # testReassignmentWhenOneMemberRemovedAfterInitialAssignmentWithThreeMembersTwoTopics
    members = [
        member("A", "topic1", "topic2", owned={"topic1": (0,), "topic2": (0,)}),
        member("B", "topic1", "topic2", owned={"topic1": (1,), "topic2": (1,)}),
    ]
    assert plain(assign(UNIFORM, members, topics(topic1=3, topic2=3))) == {
        "A": {"topic1": {0}, "topic2": {0, 2}},
        "B": {"topic1": {1, 2}, "topic2": {1}},
    }


def test_it_drops_a_topic_nobody_subscribes_to_any_more():
    # testReassignmentWhenOneSubscriptionRemovedAfterInitialAssignmentWithTwoMembersTwoTopics
    members = [
        member("A", "topic2", owned={"topic1": (0,), "topic2": (0,)}),
        member("B", "topic2", owned={"topic1": (1,), "topic2": (1,)}),
    ]
    assert plain(assign(UNIFORM, members, topics(topic1=2, topic2=2))) == {
        "A": {"topic2": {0}},
        "B": {"topic2": {1}},
    }


# --- UniformHeterogeneousAssignmentBuilderTest ----------------------------------------------


def test_it_assigns_nothing_when_no_member_subscribes():  # testTwoMembersNoTopicSubscription
    assert assign(UNIFORM, [member("A"), member("B")], topics(topic1=3), homogeneous=False) == {}


def test_it_refuses_heterogeneous_subscriptions_to_missing_topics():
    # testTwoMembersSubscribedToNonexistentTopics
    with pytest.raises(AssignorError):
        assign(UNIFORM, [member("A", "topic3"), member("B", "topic2")], topics(topic1=3))


def test_it_balances_a_first_heterogeneous_assignment():  # testFirstAssignmentTwoMembersTwoTopics
    members = [member("A", "topic1", "topic3"), member("B", "topic3")]
    assert plain(assign(UNIFORM, members, topics(topic1=3, topic3=6))) == {
        "A": {"topic1": {0, 1, 2}, "topic3": {4}},
        "B": {"topic3": {0, 1, 2, 3, 5}},
    }


def test_it_leaves_a_heterogeneous_member_idle_when_partitions_run_out():
    # testFirstAssignmentNumMembersGreaterThanTotalNumPartitions
    members = [member("A", "topic3"), member("B", "topic3"), member("C", "topic1")]
    assert plain(assign(UNIFORM, members, topics(topic3=1, topic1=2))) == {
        "A": {"topic3": {0}},
        "B": {},
        "C": {"topic1": {0, 1}},
    }


def test_it_rebalances_an_unbalanced_heterogeneous_assignment():
    # testReassignmentForTwoMembersThreeTopicsGivenUnbalancedPrevAssignment
    members = [
        member("A", "topic1", owned={"topic1": (0, 1, 2)}),
        member("B", "topic1", "topic2", owned={"topic1": (3,), "topic2": (0,)}),
        member(
            "C",
            "topic1",
            "topic2",
            "topic3",
            owned={"topic1": (4, 5), "topic2": (1, 2, 3), "topic3": (0, 1, 2, 3)},
        ),
    ]
    assert plain(assign(UNIFORM, members, topics(topic1=6, topic2=4, topic3=4))) == {
        "A": {"topic1": {0, 1, 2, 5}},
        "B": {"topic1": {3}, "topic2": {0, 1, 2, 3}},
        "C": {"topic1": {4}, "topic3": {0, 1, 2, 3}},
    }


def test_it_deals_added_partitions_heterogeneously():
    # testReassignmentWhenPartitionsAreAddedForTwoMembers
    members = [
        member("A", "topic1", "topic3", owned={"topic1": (0, 1, 2, 3), "topic3": (0, 1)}),
        member(
            "B",
            "topic1",
            "topic2",
            "topic3",
            "topic4",
            owned={"topic2": (0, 1, 2), "topic4": (0, 1, 2)},
        ),
    ]
    assert plain(assign(UNIFORM, members, topics(topic1=6, topic2=5, topic3=3, topic4=3))) == {
        "A": {"topic1": {0, 1, 2, 3, 4, 5}, "topic3": {0, 1, 2}},
        "B": {"topic2": {0, 1, 2, 3, 4}, "topic4": {0, 1, 2}},
    }


def test_it_balances_a_member_and_partitions_added_together():
    # testReassignmentWhenOneMemberAddedAndPartitionsAddedTwoMembersTwoTopics
    members = [
        member("A", "topic1", owned={"topic1": (0, 2), "topic2": (0,)}),
        member("B", "topic1", "topic2", owned={"topic1": (1,), "topic2": (1, 2)}),
        member("C", "topic1", "topic2"),
    ]
    assert plain(assign(UNIFORM, members, topics(topic1=6, topic2=7))) == {
        "A": {"topic1": {0, 2, 3, 4, 5}},
        "B": {"topic1": {1}, "topic2": {1, 2, 6}},
        "C": {"topic2": {0, 3, 4, 5}},
    }


def test_it_hands_a_removed_heterogeneous_members_partitions_on():
    # testReassignmentWhenOneMemberRemovedAfterInitialAssignmentWithThreeMembersThreeTopics
    members = [
        member("A", "topic1", "topic3", owned={"topic1": (0, 1, 2), "topic3": (0, 1)}),
        member("B", "topic2", owned={"topic2": (3, 4, 5, 6)}),
    ]
    assert plain(assign(UNIFORM, members, topics(topic1=3, topic2=8, topic3=3))) == {
        "A": {"topic1": {0, 1, 2}, "topic3": {0, 1, 2}},
        "B": {"topic2": {0, 1, 2, 3, 4, 5, 6, 7}},
    }


def test_it_moves_an_unsubscribed_topic_away_heterogeneously():
    # testReassignmentWhenOneSubscriptionRemovedAfterInitialAssignmentWithTwoMembersTwoTopics
    members = [
        member("A", "topic1", owned={"topic1": (0, 2), "topic2": (1, 3)}),
        member("B", "topic1", "topic2", owned={"topic1": (1,), "topic2": (0, 2, 4)}),
    ]
    assert plain(assign(UNIFORM, members, topics(topic1=3, topic2=5))) == {
        "A": {"topic1": {0, 1, 2}},
        "B": {"topic2": {0, 1, 2, 3, 4}},
    }


def test_it_stops_balancing_a_topic_whose_partitions_ran_out():
    # testReassignmentWhenTopicPartitionsRunOutAndMembersHaveNoPartitions
    every = ("topic1", "topic2", "topic3")
    members = [
        member("A", *every, owned={"topic1": (0, 1), "topic2": (0, 1), "topic3": (0, 1)}),
        member("B", *every),
    ]
    result = assign(UNIFORM, members, topics(topic1=2, topic2=2, topic3=2), homogeneous=False)
    assert plain(result) == {
        "A": {"topic2": {0}, "topic3": {0, 1}},
        "B": {"topic1": {0, 1}, "topic2": {1}},
    }


def test_it_gives_a_member_without_subscriptions_nothing():
    # testFirstAssignmentWithTwoMembersIncludingOneWithoutSubscriptions
    members = [member("A", "topic1"), member("B")]
    assert plain(assign(UNIFORM, members, topics(topic1=3))) == {
        "A": {"topic1": {0, 1, 2}},
        "B": {},
    }


# --- RangeAssignorTest -------------------------------------------------------------------------


def test_it_gives_a_range_member_without_topics_an_empty_assignment():  # testOneMemberNoTopic
    assert assign(RANGE, [member("A")], topics(topic1=3)) == {"A": {}}


def test_it_refuses_a_range_subscription_to_a_missing_topic():
    # testOneMemberSubscribedToNonExistentTopic
    with pytest.raises(AssignorError):
        assign(RANGE, [member("A", "topic2")], topics(topic1=3))


def test_it_cuts_each_topic_into_ranges():
    # testFirstAssignmentTwoMembersTwoTopicsSameSubscriptions
    members = [member("A", "topic1", "topic3"), member("B", "topic1", "topic3")]
    assert plain(assign(RANGE, members, topics(topic1=3, topic3=2))) == {
        "A": {"topic1": {0, 1}, "topic3": {0}},
        "B": {"topic1": {2}, "topic3": {1}},
    }


def test_it_cuts_ranges_among_each_topics_own_subscribers():
    # testFirstAssignmentThreeMembersThreeTopicsDifferentSubscriptions
    members = [
        member("A", "topic1", "topic2"),
        member("B", "topic3"),
        member("C", "topic2", "topic3"),
    ]
    assert plain(assign(RANGE, members, topics(topic1=3, topic2=3, topic3=2))) == {
        "A": {"topic1": {0, 1, 2}, "topic2": {0, 1}},
        "B": {"topic3": {0}},
        "C": {"topic2": {2}, "topic3": {1}},
    }


def test_it_leaves_range_members_beyond_the_partition_count_without_partitions():
    # testFirstAssignmentNumMembersGreaterThanNumPartitions
    members = [member(m, "topic1", "topic3") for m in "ABC"]
    assert plain(assign(RANGE, members, topics(topic1=3, topic3=2))) == {
        "A": {"topic1": {0}, "topic3": {0}},
        "B": {"topic1": {1}, "topic3": {1}},
        "C": {"topic1": {2}},
    }


def test_it_keeps_a_static_members_range_across_a_new_member_id():  # testStaticMembership
    meta = topics(topic1=3)
    before = assign(
        RANGE,
        [member("A", "topic1", instance="instanceA"), member("B", "topic1", instance="instanceB")],
        meta,
    )
    after = assign(
        RANGE,
        [
            member("B", "topic1", instance="instanceB"),
            member("memberA1", "topic1", instance="instanceA"),
        ],
        meta,
    )
    assert after["memberA1"] == before["A"]
    assert after["B"] == before["B"]


def test_it_sorts_static_members_before_dynamic_ones():  # testMixedStaticMembership
    meta = topics(topic1=5)
    before = assign(
        RANGE,
        [
            member("A", "topic1", instance="instanceA"),
            member("B", "topic1"),
            member("C", "topic1", instance="instanceC"),
        ],
        meta,
    )
    after = assign(
        RANGE,
        [
            member("B", "topic1"),
            member("C", "topic1", instance="instanceC"),
            member("memberA1", "topic1", instance="instanceA"),
        ],
        meta,
    )
    assert after["memberA1"] == before["A"]
    assert after["B"] == before["B"]
    assert after["C"] == before["C"]


def test_it_gives_a_range_member_nothing_when_ranges_run_out():
    # testReassignmentNumMembersGreaterThanNumPartitionsWhenOneMemberAdded
    members = [
        member("A", "topic1", "topic2", owned={"topic1": (0,), "topic2": (0,)}),
        member("B", "topic1", "topic2", owned={"topic1": (1,), "topic2": (1,)}),
        member("C", "topic1", "topic2"),
    ]
    assert plain(assign(RANGE, members, topics(topic1=2, topic2=2))) == {
        "A": {"topic1": {0}, "topic2": {0}},
        "B": {"topic1": {1}, "topic2": {1}},
        "C": {},
    }


def test_it_recuts_ranges_when_a_partition_is_added():
    # testReassignmentWhenOnePartitionAddedForTwoMembersTwoTopics
    members = [
        member("A", "topic1", "topic2", owned={"topic1": (0, 1), "topic2": (0, 1)}),
        member("B", "topic1", "topic2", owned={"topic1": (2,), "topic2": (2,)}),
    ]
    assert plain(assign(RANGE, members, topics(topic1=4, topic2=4))) == {
        "A": {"topic1": {0, 1}, "topic2": {0, 1}},
        "B": {"topic1": {2, 3}, "topic2": {2, 3}},
    }


def test_it_recuts_ranges_when_a_member_joins():
    # testReassignmentWhenOneMemberAddedAfterInitialAssignmentWithTwoMembersTwoTopics
    members = [
        member("A", "topic1", "topic2", owned={"topic1": (0, 1), "topic2": (0, 1)}),
        member("B", "topic1", "topic2", owned={"topic1": (2,), "topic2": (2,)}),
        member("C", "topic1", "topic2"),
    ]
    assert plain(assign(RANGE, members, topics(topic1=3, topic2=3))) == {
        "A": {"topic1": {0}, "topic2": {0}},
        "B": {"topic1": {1}, "topic2": {1}},
        "C": {"topic1": {2}, "topic2": {2}},
    }


def test_it_recuts_ranges_for_a_member_and_a_partition_added_together():
    # testReassignmentWhenOneMemberAddedAndOnePartitionAfterInitialAssignmentWithTwoMembersTwoTopics
    members = [
        member("A", "topic1", "topic2", owned={"topic1": (0, 1), "topic2": (0, 1)}),
        member("B", "topic1", "topic2", owned={"topic1": (2,), "topic2": (2,)}),
        member("C", "topic1"),
    ]
    assert plain(assign(RANGE, members, topics(topic1=4, topic2=3))) == {
        "A": {"topic1": {0, 1}, "topic2": {0, 1}},
        "B": {"topic1": {2}, "topic2": {2}},
        "C": {"topic1": {3}},
    }


def test_it_gives_every_range_to_the_last_member():
    # testReassignmentWhenOneMemberRemovedAfterInitialAssignmentWithTwoMembersTwoTopics
    members = [member("B", "topic1", "topic2", owned={"topic1": (2,), "topic2": (2,)})]
    assert plain(assign(RANGE, members, topics(topic1=3, topic2=3))) == {
        "B": {"topic1": {0, 1, 2}, "topic2": {0, 1, 2}},
    }


def test_it_recuts_ranges_after_subscriptions_change():
    # testReassignmentWhenMultipleSubscriptionsRemovedAfterInitialAssignment-
    # WithThreeMembersTwoTopics
    members = [
        member("A", "topic1", owned={"topic1": (0, 1, 2), "topic2": (0,)}),
        member("B", "topic1", "topic2", "topic3", owned={"topic2": (1,)}),
        member("C", "topic2", owned={"topic2": (2,), "topic3": (0, 1)}),
    ]
    assert plain(assign(RANGE, members, topics(topic1=3, topic2=3, topic3=2))) == {
        "A": {"topic1": {0, 1}},
        "B": {"topic1": {2}, "topic2": {0, 1}, "topic3": {0, 1}},
        "C": {"topic2": {2}},
    }


# --- properties (Kafka's checkValidityAndBalance, on drawn groups) ----------------------------

NAMES = ("topic1", "topic2", "topic3", "topic4")


@st.composite
def groups(draw: st.DrawFn) -> tuple[list[MemberSpec], dict[str, TopicMeta]]:
    counts = draw(st.lists(st.integers(1, 7), min_size=1, max_size=4))
    meta = {NAMES[i]: TopicMeta(IDS[NAMES[i]], c) for i, c in enumerate(counts)}
    names = list(meta)
    n = draw(st.integers(1, 5))
    members = []
    owned: set[tuple[str, int]] = set()
    for i in range(n):
        subscribed = draw(st.lists(st.sampled_from(names), min_size=1, unique=True))
        held: dict[str, tuple[int, ...]] = {}
        for name in subscribed:
            free = [p for p in range(meta[name].partitions) if (name, p) not in owned]
            take = draw(st.lists(st.sampled_from(free), unique=True)) if free else []
            owned |= {(name, p) for p in take}
            if take:
                held[name] = tuple(sorted(take))
        members.append(MemberSpec(f"m{i}", tuple(subscribed), held))
    return members, meta


@settings(max_examples=150, deadline=None)
@given(groups(), st.sampled_from([UNIFORM, RANGE]))
def test_it_assigns_every_subscribed_partition_once_to_a_subscriber(group, name):
    members, meta = group
    result = assign(name, members, meta)
    seen: set[tuple[str, int]] = set()
    for m in members:
        for topic, parts in result.get(m.member_id, {}).items():
            assert topic in m.subscribed
            for p in parts:
                assert (topic, p) not in seen
                seen.add((topic, p))
    wanted = {(t, p) for m in members for t in m.subscribed for p in range(meta[t].partitions)}
    assert seen == wanted


@settings(max_examples=150, deadline=None)
@given(groups())
def test_it_balances_uniform_homogeneous_groups_within_one_partition(group):
    members, meta = group
    same = [
        MemberSpec(
            m.member_id,
            members[0].subscribed,
            {t: ps for t, ps in m.assignment.items() if t in members[0].subscribed},
        )
        for m in members
    ]
    # One owner per partition across the rewritten members as well.
    claimed: set[tuple[str, int]] = set()
    cleaned = []
    for m in same:
        held = {t: tuple(p for p in ps if (t, p) not in claimed) for t, ps in m.assignment.items()}
        claimed |= {(t, p) for t, ps in held.items() for p in ps}
        cleaned.append(
            MemberSpec(m.member_id, m.subscribed, {t: ps for t, ps in held.items() if ps})
        )
    result = assign(UNIFORM, cleaned, meta)
    sizes = [sum(len(ps) for ps in result.get(m.member_id, {}).values()) for m in cleaned]
    assert max(sizes) - min(sizes) <= 1
