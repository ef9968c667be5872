"""Kafka's classic consumer group protocol: states, generations, plans, timeouts, statics."""

import itertools
import json
from collections import Counter
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.engine.group import (
    ALLOWED_TRANSITIONS,
    FENCED_INSTANCE_ID,
    NON_EMPTY_GROUP,
    UNKNOWN_MEMBER_ID,
    ConsumerGroup,
    GroupConfig,
    GroupResult,
    GroupState,
    IllegalTransition,
    JoinRequest,
    RebalancePlan,
    RebalanceProtocol,
    TopicPartition,
    apply_plan,
    can_transition,
    close,
    config_from_strategies,
    delete_group,
    describe,
    expire,
    heartbeat,
    heartbeats_kept,
    idle_members,
    join,
    join_many,
    leave,
    new_group,
    plan_rebalance,
    rebalance,
    transition,
    update_topics,
)

S = GroupState
EAGER = GroupConfig("orders-app")
COOPERATIVE = GroupConfig("orders-app", "cooperative-sticky", "cooperative")
SESSION = 45_000


def tp(topic: str, partition: int) -> TopicPartition:
    return TopicPartition(topic, partition)


def ts(topic: str, *partitions: int) -> tuple[TopicPartition, ...]:
    return tuple(tp(topic, p) for p in partitions)


def grow(config: GroupConfig, consumers: int, partitions: int = 3, now_ms: int = 0):
    """A group built one JoinGroup at a time, so each consumer costs its own rebalance."""
    group = new_group(config, {"t": partitions})
    for _ in range(consumers):
        group = join(group, "c", ["t"], now_ms).group
    return group


# --- the state machine ----------------------------------------------------------------------

# ClassicGroupState.validPreviousStates in Kafka's group coordinator, as (from, to) pairs.
KAFKA_TRANSITIONS = {
    (S.PREPARING_REBALANCE, S.EMPTY),
    (S.STABLE, S.PREPARING_REBALANCE),
    (S.COMPLETING_REBALANCE, S.PREPARING_REBALANCE),
    (S.EMPTY, S.PREPARING_REBALANCE),
    (S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE),
    (S.COMPLETING_REBALANCE, S.STABLE),
    (S.STABLE, S.DEAD),
    (S.PREPARING_REBALANCE, S.DEAD),
    (S.COMPLETING_REBALANCE, S.DEAD),
    (S.EMPTY, S.DEAD),
    (S.DEAD, S.DEAD),
}


def test_state_names_are_kafkas():
    assert [s.value for s in GroupState] == [
        "Empty",
        "PreparingRebalance",
        "CompletingRebalance",
        "Stable",
        "Dead",
    ]


def test_the_table_is_exactly_kafkas():
    table = {(a, b) for a, targets in ALLOWED_TRANSITIONS.items() for b in targets}
    assert table == KAFKA_TRANSITIONS


@pytest.mark.parametrize(("current", "target"), sorted(KAFKA_TRANSITIONS))
def test_legal_transitions_are_allowed(current, target):
    assert can_transition(current, target)
    assert transition(current, target) is target


ILLEGAL = sorted(set(itertools.product(GroupState, GroupState)) - KAFKA_TRANSITIONS)


@pytest.mark.parametrize(("current", "target"), ILLEGAL)
def test_illegal_transitions_are_refused_with_a_clear_error(current, target):
    assert not can_transition(current, target)
    with pytest.raises(IllegalTransition, match=f"from {current.value} to {target.value}"):
        transition(current, target)


def test_there_are_fourteen_illegal_transitions_among_them_the_shortcuts_learners_guess():
    assert len(ILLEGAL) == 25 - 11
    assert (S.STABLE, S.EMPTY) in ILLEGAL  # emptying always goes through a join phase
    assert (S.PREPARING_REBALANCE, S.STABLE) in ILLEGAL  # no Stable without a SyncGroup
    assert (S.DEAD, S.EMPTY) in ILLEGAL  # Dead is final


def states_of(result: GroupResult) -> list[GroupState]:
    assert result.plan is not None
    return [step.state for step in result.plan.steps]


def test_first_join_walks_empty_preparing_completing_stable_and_starts_generation_1():
    group = new_group(EAGER, {"t": 3})
    assert (group.state, group.generation, group.members) == (S.EMPTY, 0, ())
    result = join(group, "c", ["t"], 0)
    assert states_of(result) == [S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE, S.STABLE]
    assert result.member_id == "c-1"
    assert result.group.state is S.STABLE
    assert result.group.generation == 1
    assert result.group.leader_id == "c-1"
    assert result.group.assignment() == {"c-1": ts("t", 0, 1, 2)}
    # The coordinator waits group.initial.rebalance.delay.ms for more members of a new group.
    assert result.plan.delay_ms == 3_000


def test_generation_goes_up_when_the_join_phase_completes_as_in_init_next_generation():
    result = join(grow(EAGER, 1), "c", ["t"], 0)
    generations = [(step.state, step.generation) for step in result.plan.steps]
    assert generations == [
        (S.PREPARING_REBALANCE, 1),
        (S.COMPLETING_REBALANCE, 2),
        (S.STABLE, 2),
    ]
    assert result.plan.delay_ms == 0  # only a new (Empty) group waits for more members
    assert (result.plan.generation_before, result.plan.generation_after) == (1, 2)


def test_each_eager_rebalance_adds_exactly_one_generation():
    group = new_group(EAGER, {"t": 3})
    for expected in range(1, 6):
        group = join(group, "c", ["t"], 0).group
        assert group.generation == expected


def test_last_member_leaving_goes_stable_preparing_empty_and_still_counts_a_generation():
    group = grow(EAGER, 1)
    result = leave(group, "c-1")
    assert states_of(result) == [S.PREPARING_REBALANCE, S.EMPTY]
    assert result.group.state is S.EMPTY
    assert result.group.generation == 2
    assert result.group.leader_id is None
    assert result.plan.steps[0].revoked == {"c-1": ts("t", 0, 1, 2)}
    # And an Empty group comes back to life with the next join, keeping its count.
    again = join(result.group, "c", ["t"], 10)
    assert states_of(again)[0] is S.PREPARING_REBALANCE
    assert again.group.generation == 3


def test_delete_needs_an_empty_group_and_leaves_it_dead():
    group = grow(EAGER, 2)
    refused = delete_group(group)
    assert refused.error.code == NON_EMPTY_GROUP
    assert refused.group == group
    emptied = leave(leave(group, "c-1").group, "c-2").group
    dead = delete_group(emptied).group
    assert dead.state is S.DEAD
    assert delete_group(dead).group.state is S.DEAD  # Dead -> Dead is allowed


def test_forced_delete_removes_everything_from_a_stable_group():
    result = delete_group(grow(EAGER, 2), force=True)
    assert result.group.state is S.DEAD
    assert result.group.members == ()
    assert result.removed == ("c-1", "c-2")


def test_a_dead_group_refuses_every_member_request():
    dead = delete_group(new_group(EAGER, {"t": 3})).group
    assert join(dead, "c", ["t"], 0).error.code == UNKNOWN_MEMBER_ID
    assert heartbeat(dead, "c-1", 0).error.code == UNKNOWN_MEMBER_ID
    assert leave(dead, "c-1").error.code == UNKNOWN_MEMBER_ID
    with pytest.raises(IllegalTransition, match="from Dead to PreparingRebalance"):
        rebalance(dead)


# --- configuration ----------------------------------------------------------------------------


def test_config_defaults_are_kafkas():
    config = GroupConfig("g")
    assert config.assignor == "range"
    assert config.rebalance_protocol is RebalanceProtocol.EAGER
    assert (config.session_timeout_ms, config.heartbeat_interval_ms) == (45_000, 3_000)
    assert config.initial_rebalance_delay_ms == 3_000


def test_the_default_strategy_list_ends_up_eager_with_range():
    config = config_from_strategies("g")
    assert (config.assignor, config.rebalance_protocol) == ("range", RebalanceProtocol.EAGER)
    only_cooperative = config_from_strategies("g", ["cooperative-sticky"])
    assert only_cooperative.rebalance_protocol is RebalanceProtocol.COOPERATIVE
    mixed = config_from_strategies("g", ["sticky", "cooperative-sticky"], session_timeout_ms=10_000)
    assert (mixed.assignor, mixed.rebalance_protocol) == ("sticky", RebalanceProtocol.EAGER)
    assert mixed.session_timeout_ms == 10_000


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"assignor": "cooperative-sticky"}, "implies the cooperative protocol"),
        ({"assignor": "range", "rebalance_protocol": "cooperative"}, "only supports eager"),
        ({"assignor": "sticky", "rebalance_protocol": "cooperative"}, "only supports eager"),
        ({"assignor": "uniform"}, "unknown partition.assignment.strategy"),
        ({"rebalance_protocol": "consumer"}, "unknown rebalance protocol"),
        ({"session_timeout_ms": 5_999}, "group.min.session.timeout.ms"),
        ({"session_timeout_ms": 1_800_001}, "group.max.session.timeout.ms"),
        ({"heartbeat_interval_ms": 45_000}, "lower than session.timeout.ms"),
        ({"initial_rebalance_delay_ms": -1}, "must not be negative"),
    ],
)
def test_invalid_configs_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GroupConfig("g", **kwargs)


def test_config_accepts_the_protocol_as_a_string_and_keeps_the_enum():
    assert COOPERATIVE.rebalance_protocol is RebalanceProtocol.COOPERATIVE
    assert COOPERATIVE.cooperative
    with pytest.raises(ValueError):
        config_from_strategies("g", [])
    with pytest.raises(ValueError, match="group.id"):
        GroupConfig("")


# --- eager versus cooperative -----------------------------------------------------------------


def test_eager_third_consumer_stops_the_world_and_redraws_everything():
    group = grow(EAGER, 2)
    assert group.assignment() == {"c-1": ts("t", 0, 1), "c-2": ts("t", 2)}
    result = join(group, "c", ["t"], 0)
    plan = result.plan
    assert plan.rounds == 1
    prepare, compute, stable = plan.steps
    assert prepare.revoked == {"c-1": ts("t", 0, 1), "c-2": ts("t", 2)}
    assert prepare.owned == {"c-1": (), "c-2": (), "c-3": ()}  # nobody consumes
    assert compute.generation == group.generation + 1
    assert stable.assigned == {"c-1": ts("t", 0), "c-2": ts("t", 1), "c-3": ts("t", 2)}
    assert result.group.generation == group.generation + 1
    assert "stop the world" in prepare.narration


def test_cooperative_third_consumer_moves_one_partition_in_two_rounds():
    group = grow(COOPERATIVE, 2)
    before = group.assignment()
    assert sorted(len(p) for p in before.values()) == [1, 2]
    result = join(group, "c", ["t"], 0)
    plan = result.plan
    assert plan.rounds == 2
    assert result.group.generation == group.generation + 2
    round_one = [s for s in plan.steps if s.round == 1]
    round_two = [s for s in plan.steps if s.round == 2]
    assert [s.state for s in round_one] == [S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE, S.STABLE]
    assert [s.state for s in round_two] == [S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE, S.STABLE]
    assert round_one[0].revoked == {}  # members keep consuming while they rejoin
    # Round 1 revokes exactly one partition and gives it to nobody yet.
    revoked = [p for tps in round_one[-1].revoked.values() for p in tps]
    assert len(revoked) == 1
    assert round_one[-1].assigned == {}
    assert round_one[-1].generation == group.generation + 1
    # Round 2 hands it to the newcomer.
    assert round_two[-1].revoked == {}
    assert round_two[-1].assigned == {"c-3": (revoked[0],)}
    assert round_two[-1].generation == group.generation + 2
    assert plan.moving == {str(revoked[0]): "c-3"}
    # The partitions that did not move never stopped.
    for member, tps in before.items():
        kept = set(tps) - set(revoked)
        assert all(kept <= set(step.owned[member]) for step in plan.steps)
    assert "follow-up rebalance" in round_one[-1].narration


def test_cooperative_needs_one_round_when_nothing_moves():
    group = grow(COOPERATIVE, 3)
    result = join(group, "c", ["t"], 0)  # a 4th consumer over 3 partitions takes nothing
    assert result.plan.rounds == 1
    assert result.group.generation == group.generation + 1
    assert result.plan.idle == {"c-4": "4 members, 3 partitions"}
    assert all(not step.revoked for step in result.plan.steps)


def test_cooperative_leave_hands_the_leavers_partitions_out_in_one_round():
    group = grow(COOPERATIVE, 3)
    result = leave(group, "c-3")
    assert result.plan.rounds == 1
    prepare = result.plan.steps[0]
    assert prepare.revoked == {"c-3": group.member("c-3").assignment}
    owned = sorted(p for tps in result.group.assignment().values() for p in tps)
    assert tuple(owned) == ts("t", 0, 1, 2)


def test_a_plan_is_not_applied_until_asked_and_applying_it_is_what_operations_do():
    group = grow(EAGER, 2)
    plan = plan_rebalance(group, reason="test")
    assert group.generation == 2  # untouched
    applied = apply_plan(group, plan)
    assert applied == rebalance(group, reason="test").group
    assert applied.generation == 3
    assert applied.state is S.STABLE
    with pytest.raises(ValueError, match="stale plan"):
        apply_plan(applied, plan)
    with pytest.raises(ValueError, match="members changed"):
        apply_plan(replace(group, members=group.members[:1]), plan)
    with pytest.raises(ValueError, match="is for group"):
        apply_plan(grow(GroupConfig("other"), 2), plan)


def test_operations_never_mutate_their_input():
    group = grow(COOPERATIVE, 2)
    snapshot = ConsumerGroup.from_dict(group.to_dict())
    join(group, "c", ["t"], 0)
    leave(group, "c-1")
    expire(group, 10**9)
    heartbeat(group, "c-1", 5)
    update_topics(group, {"t": 6})
    assert group == snapshot


# --- heartbeats and session timeouts ----------------------------------------------------------


def test_a_silent_member_is_removed_exactly_at_session_timeout_not_before():
    group = join(grow(EAGER, 1, now_ms=0), "c", ["t"], 10_000).group  # c-2 last seen at 10 s
    group = heartbeat(group, "c-1", 40_000).group
    too_early = expire(group, 10_000 + SESSION - 1)
    assert too_early.plan is None
    assert too_early.group == group
    on_time = expire(group, 10_000 + SESSION)
    assert on_time.removed == ("c-2",)
    assert on_time.group.member_ids() == ("c-1",)
    assert on_time.group.assignment() == {"c-1": ts("t", 0, 1, 2)}
    assert on_time.group.generation == group.generation + 1
    assert "session.timeout.ms (45 s)" in on_time.plan.reason


def test_heartbeats_keep_a_member_in():
    group = grow(EAGER, 1, now_ms=0)
    for now in range(3_000, 200_000, 3_000):  # heartbeat.interval.ms
        result = heartbeat(group, "c-1", now)
        assert result.ok and result.plan is None
        group = result.group
        assert expire(group, now + SESSION - 1).plan is None
    assert group.member("c-1").last_heartbeat_ms == 198_000
    assert group.generation == 1


def test_a_heartbeat_after_the_timeout_is_too_late_the_timer_already_fired():
    group = join(grow(EAGER, 1), "c", ["t"], 40_000).group
    result = heartbeat(group, "c-1", SESSION)
    assert result.error.code == UNKNOWN_MEMBER_ID
    assert "must rejoin" in result.error.message
    assert result.removed == ("c-1",)
    assert result.group.member_ids() == ("c-2",)
    assert result.plan is not None


def test_it_keeps_members_whose_heartbeat_thread_ran_through_a_jump_longer_than_the_session():
    # c-1 beat last at 0 and c-2 at 40 s; the clock jumps to 2 x session.timeout.ms, c-1's
    # thread beating all along (every 3 s), c-2 silent.
    group = join(grow(EAGER, 1, now_ms=0), "c", ["t"], 40_000).group
    now = 2 * SESSION
    kept = heartbeats_kept(group, ["c-1"], now)
    assert kept.member("c-1").last_heartbeat_ms == now - now % 3_000  # its latest beat
    assert kept.member("c-2").last_heartbeat_ms == group.member("c-2").last_heartbeat_ms
    result = expire(kept, now)
    assert result.removed == ("c-2",)
    assert result.group.member_ids() == ("c-1",)


def test_heartbeat_from_an_unknown_member_is_a_clear_error():
    group = grow(EAGER, 1)
    result = heartbeat(group, "nobody-7", 1_000)
    assert not result.ok
    assert result.error.code == UNKNOWN_MEMBER_ID
    assert "nobody-7" in result.error.message
    assert result.group == group


def test_one_rebalance_for_every_member_that_timed_out_at_once():
    group = grow(EAGER, 3, now_ms=0)
    result = expire(group, SESSION)
    assert result.removed == ("c-1", "c-2", "c-3")
    assert states_of(result) == [S.PREPARING_REBALANCE, S.EMPTY]
    assert result.group.state is S.EMPTY


# --- static membership (KIP-345) --------------------------------------------------------------


def static_pair() -> ConsumerGroup:
    group = new_group(EAGER, {"t": 4})
    group = join(group, "a", ["t"], 0, group_instance_id="pod-a").group
    return join(group, "b", ["t"], 0, group_instance_id="pod-b").group


def test_a_static_member_closing_sends_no_leave_group():
    group = static_pair()
    result = close(group, "a-1")
    assert result.plan is None
    assert result.group == group
    assert "without LeaveGroup" in result.narration


def test_a_dynamic_member_closing_leaves_at_once():
    result = close(grow(EAGER, 2), "c-2")
    assert result.removed == ("c-2",)
    assert result.plan is not None


def test_static_restart_within_the_session_timeout_keeps_partitions_without_rebalance():
    group = static_pair()
    before = group.member("a-1")
    group = heartbeat(close(group, "a-1").group, "b-2", 30_000).group
    result = join(group, "a", ["t"], 30_000, group_instance_id="pod-a")
    assert result.plan is None
    assert result.member_id == "a-3"  # a new member id, as the coordinator gives one
    back = result.group.member("a-3")
    assert back.assignment == before.assignment
    assert back.generation == before.generation
    assert result.group.generation == group.generation
    assert result.group.leader_id == "a-3"  # it was the leader and keeps the role
    assert result.group.member("a-1") is None
    assert "no rebalance" in result.narration
    # The old member id is now a fenced zombie.
    fenced = heartbeat(result.group, "a-1", 31_000, group_instance_id="pod-a")
    assert fenced.error.code == FENCED_INSTANCE_ID
    assert heartbeat(result.group, "a-1", 31_000).error.code == UNKNOWN_MEMBER_ID


def test_a_static_member_away_longer_than_the_session_timeout_is_removed():
    group = close(static_pair(), "a-1").group
    group = heartbeat(group, "b-2", 40_000).group
    assert expire(group, SESSION - 1).plan is None
    result = expire(group, SESSION)
    assert result.removed == ("a-1",)
    assert result.group.assignment() == {"b-2": ts("t", 0, 1, 2, 3)}
    back = join(result.group, "a", ["t"], 60_000, group_instance_id="pod-a")
    assert back.plan is not None  # it is a new member now
    assert back.group.generation == result.group.generation + 1


def test_a_late_static_rejoin_expires_the_old_slot_and_joins_in_the_same_rebalance():
    group = heartbeat(static_pair(), "b-2", 40_000).group
    result = join(group, "a", ["t"], 50_000, group_instance_id="pod-a")
    assert result.removed == ("a-1",)
    assert result.plan.rounds == 1
    assert result.group.generation == group.generation + 1
    assert result.group.member_ids() == ("b-2", "a-3")


def test_a_static_member_changing_its_subscription_rebalances():
    group = static_pair()
    group = update_topics(group, {"u": 2}).group
    result = join(group, "a", ["t", "u"], 1_000, group_instance_id="pod-a")
    assert result.plan is not None
    assert tp("u", 0) in result.group.member("a-3").assignment


def test_an_admin_can_remove_a_static_member_with_an_explicit_leave():
    result = leave(static_pair(), "a-1")
    assert result.removed == ("a-1",)


def test_range_puts_static_members_first_by_group_instance_id():
    group = new_group(EAGER, {"t": 3})
    group = join(group, "a", ["t"], 0).group
    group = join(group, "z", ["t"], 0, group_instance_id="instance-1").group
    assert group.assignment() == {"a-1": ts("t", 2), "z-2": ts("t", 0, 1)}


# --- other triggers ---------------------------------------------------------------------------


def test_rejoining_with_the_same_subscription_changes_nothing():
    group = grow(EAGER, 2)
    result = join(group, "c", ["t"], 1_000, member_id="c-1")
    assert result.plan is None
    assert result.group.generation == group.generation
    assert result.group.member("c-1").last_heartbeat_ms == 1_000


def test_rejoining_with_a_new_subscription_rebalances():
    group = update_topics(grow(EAGER, 2), {"u": 2}).group
    result = join(group, "c", ["t", "u"], 1_000, member_id="c-2")
    assert result.plan is not None
    assert result.group.member("c-2").subscription == ("t", "u")
    assert join(group, "c", ["t"], 0, member_id="ghost").error.code == UNKNOWN_MEMBER_ID


def test_adding_partitions_rebalances_because_the_metadata_changed():
    group = grow(EAGER, 2)
    result = update_topics(group, {"t": 4})
    assert result.plan is not None
    assert "t 3 -> 4 partitions" in result.plan.reason
    assert result.group.assignment() == {"c-1": ts("t", 0, 1), "c-2": ts("t", 2, 3)}
    assert result.group.partition_counts() == {"t": 4}


def test_metadata_of_unsubscribed_or_unchanged_topics_does_not_rebalance():
    group = grow(EAGER, 2)
    assert update_topics(group, {"t": 3}).plan is None
    other = update_topics(group, {"payments": 12})
    assert other.plan is None
    assert other.group.partition_counts() == {"payments": 12, "t": 3}


def test_partitions_cannot_be_removed():
    with pytest.raises(ValueError, match="can only add partitions"):
        update_topics(grow(EAGER, 1), {"t": 2})


def test_cooperative_partition_growth_hands_new_partitions_out_without_revoking():
    group = grow(COOPERATIVE, 2)
    result = update_topics(group, {"t": 4})
    assert result.plan.rounds == 1
    assert all(not step.revoked for step in result.plan.steps)
    assert sorted(len(p) for p in result.group.assignment().values()) == [2, 2]


def test_a_member_subscribed_to_a_topic_without_partitions_is_idle_with_the_reason():
    group = join(grow(EAGER, 1), "x", ["missing"], 0).group
    assert idle_members(group) == {"x-2": "its topics (missing) have no partitions"}


# --- the lessons --------------------------------------------------------------------------------


def many(config: GroupConfig, consumers: int, partitions: int = 100) -> GroupResult:
    requests = [JoinRequest(f"consumer-{i}", ("orders",)) for i in range(1, consumers + 1)]
    return join_many(new_group(config, {"orders": partitions}), requests, 0)


@pytest.mark.parametrize("config", [EAGER, GroupConfig("g", "roundrobin"), COOPERATIVE])
def test_100_partitions_2_consumers_get_50_each(config):
    result = many(config, 2)
    assert result.group.generation == 1
    assert [len(tps) for tps in result.group.assignment().values()] == [50, 50]
    assert result.plan.idle == {}


@pytest.mark.parametrize("config", [EAGER, GroupConfig("g", "sticky"), COOPERATIVE])
def test_100_partitions_100_consumers_get_one_each(config):
    result = many(config, 100)
    assert Counter(len(tps) for tps in result.group.assignment().values()) == {1: 100}
    assert idle_members(result.group) == {}


@pytest.mark.parametrize("config", [EAGER, GroupConfig("g", "roundrobin"), COOPERATIVE])
def test_100_partitions_150_consumers_leave_50_idle_with_the_reason(config):
    result = many(config, 150)
    group = result.group
    assert Counter(len(tps) for tps in group.assignment().values()) == {1: 100, 0: 50}
    idle = idle_members(group)
    assert len(idle) == 50
    assert set(idle.values()) == {"150 members, 100 partitions"}
    assert result.plan.idle == idle
    assert "50 members are idle (150 members, 100 partitions)" in result.plan.steps[-1].narration
    assert group.generation == 1  # one join window, one generation for all 150
    # One more consumer is one more generation, and one more idle member.
    later = join(group, "consumer-151", ["orders"], 1_000)
    assert later.group.generation == 2
    assert len(idle_members(later.group)) == 51


def test_joining_one_by_one_costs_one_generation_each():
    group = new_group(EAGER, {"orders": 100})
    for i in range(1, 6):
        group = join(group, f"consumer-{i}", ["orders"], 0).group
    assert group.generation == 5
    assert sorted(len(tps) for tps in group.assignment().values()) == [20] * 5


def test_describe_summarises_the_group_for_the_board():
    group = join(grow(EAGER, 3), "c", ["t"], 0).group
    info = describe(group)
    assert info["state"] == "Stable"
    assert info["generation"] == 4
    assert info["leader_id"] == "c-1"
    assert info["idle"] == {"c-4": "4 members, 3 partitions"}
    assert info["members"][0]["assignment"] == ["t-0"]
    assert info["members"][0]["session_expires_at_ms"] == SESSION
    assert info["summary"] == (
        "orders-app: Stable, generation 4, 4 member(s) over 3 partition(s) (range, eager)"
    )
    json.dumps(info)


def test_idle_members_is_empty_for_an_empty_group():
    assert idle_members(new_group(EAGER, {"t": 3})) == {}


# --- plain data ---------------------------------------------------------------------------------


def test_group_result_and_plan_round_trip_through_json():
    result = join(grow(COOPERATIVE, 2), "c", ["t"], 0)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["ok"] is True
    assert data["plan"]["rounds"] == 2
    assert data["plan"]["steps"][0]["state"] == "PreparingRebalance"
    assert data["group"]["members"][0]["assignment"][0] == ["t", 0]
    assert ConsumerGroup.from_dict(data["group"]) == result.group
    assert RebalancePlan.from_dict(data["plan"]) == result.plan


def test_join_requests_are_validated():
    with pytest.raises(ValueError, match="at least one topic"):
        join(new_group(EAGER), "c", [], 0)
    with pytest.raises(ValueError, match="list of topic names"):
        JoinRequest("c", "orders")  # type: ignore[arg-type]


# --- invariants under random traffic ------------------------------------------------------------

CONFIGS = [
    EAGER,
    GroupConfig("g", "roundrobin"),
    GroupConfig("g", "sticky"),
    COOPERATIVE,
]

operation = st.one_of(
    st.tuples(st.just("join"), st.integers(0, 4), st.booleans(), st.booleans()),
    st.tuples(st.just("leave"), st.integers(0, 20)),
    st.tuples(st.just("close"), st.integers(0, 20)),
    st.tuples(st.just("heartbeat"), st.integers(0, 20)),
    st.tuples(st.just("expire")),
    st.tuples(st.just("grow")),
)


def apply_operation(group: ConsumerGroup, op: tuple, now: int) -> GroupResult:
    kind = op[0]
    if kind == "join":
        _, client, static, both_topics = op
        topics = ["t", "u"] if both_topics else ["t"]
        instance = f"pod-{client}" if static else None
        return join(group, f"c{client}", topics, now, group_instance_id=instance)
    if kind == "expire":
        return expire(group, now)
    if kind == "grow":
        counts = group.partition_counts()
        return update_topics(group, {"t": counts["t"] + 1})
    if not group.members:
        return heartbeat(group, "nobody", now)
    member = group.members[op[1] % len(group.members)].member_id
    if kind == "leave":
        return leave(group, member)
    if kind == "close":
        return close(group, member)
    return heartbeat(group, member, now)


def holdings_by_current_id(before: ConsumerGroup, result: GroupResult) -> dict:
    """Who held what before, under the member id each static instance has now."""
    renamed = {}
    for member in before.members:
        instance = member.group_instance_id
        successor = result.group.static_member(instance) if instance else None
        if member.member_id in result.removed:
            successor = None  # its session ran out: the instance came back as a new member
        renamed[successor.member_id if successor else member.member_id] = member.assignment
    return renamed


def check_plan(before: ConsumerGroup, result: GroupResult) -> None:
    plan = result.plan
    holding = holdings_by_current_id(before, result)
    state = before.state
    generation = before.generation
    for step in plan.steps:
        transition(state, step.state)  # every step is a legal move
        assert step.generation >= generation
        counts = Counter(p for tps in step.owned.values() for p in tps)
        assert all(n == 1 for n in counts.values()), f"owned twice in step {step.index}"
        for member, tps in step.assigned.items():
            for p in tps:
                others = [m for m, held in holding.items() if m != member and p in held]
                assert not others, f"{p} given to {member} while {others} still hold it"
        for member, held in step.owned.items():
            expected = set(holding.get(member, ())) - set(step.revoked.get(member, ())) | set(
                step.assigned.get(member, ())
            )
            assert set(held) == expected
        holding, state, generation = step.owned, step.state, step.generation
    assert state is result.group.state
    assert generation == result.group.generation


def check_group(group: ConsumerGroup) -> None:
    if group.members:
        assert group.state is S.STABLE
        assert group.leader_id in group.member_ids()
        counts = group.partition_counts()
        topics = {t for m in group.members for t in m.subscription}
        expected = {tp(t, p) for t in topics for p in range(counts.get(t, 0))}
        owned = [p for m in group.members for p in m.assignment]
        assert sorted(owned) == sorted(expected)  # every partition exactly once
        assert all(m.generation <= group.generation for m in group.members)
    else:
        assert group.state is S.EMPTY
        assert group.leader_id is None


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    config=st.sampled_from(CONFIGS),
    ops=st.lists(st.tuples(operation, st.integers(0, 30_000)), max_size=25),
)
def test_random_traffic_keeps_the_invariants(config, ops):
    group = new_group(config, {"t": 3, "u": 2})
    now = 0
    for op, elapsed in ops:
        now += elapsed
        result = apply_operation(group, op, now)
        assert result.group.generation >= group.generation
        if result.plan is not None:
            check_plan(group, result)
        elif result.ok:
            assert result.group.assignment().items() <= group.assignment().items() or (
                op[0] == "join"  # a static member took its old slot over under a new id
            )
        check_group(result.group)
        group = result.group
    assert ConsumerGroup.from_dict(json.loads(json.dumps(group.to_dict()))) == group
