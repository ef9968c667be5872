"""The classic group coordinator in real time. Tests named "follows testX" adapt the classic
group tests of apache/kafka's GroupMetadataManagerTest.java (GMMT)."""

import json
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.engine import joining
from messaging.engine.consumer_protocol import (
    Subscription,
    assignment_of,
    decode_assignment,
    encode_subscription,
)
from messaging.engine.group import GroupState, can_transition
from messaging.engine.joining import (
    JoinRequest,
    LiveGroup,
    Timing,
    assign_with_loglab,
    heartbeat,
    heartbeats_kept,
    join,
    join_answer_take,
    leave,
    member_partitions,
    next_deadline,
    rebalance,
    sync,
    sync_poll,
    tick,
)

S = GroupState
T = Timing()
ASSIGN = assign_with_loglab({"orders": 4})
META = encode_subscription(Subscription(("orders",)))
PROTOCOLS = (("range", META),)
REBALANCE = 10_000
SESSION = 10_000


def req(
    member_id="",
    new_id="c-1",
    *,
    instance=None,
    protocols=PROTOCOLS,
    ptype="consumer",
    session=SESSION,
    rebalance_ms=REBALANCE,
    v4=True,
    server_side=False,
):
    return JoinRequest(
        member_id=member_id,
        new_member_id=new_id,
        group_instance_id=instance,
        client_id="c",
        protocol_type=ptype,
        protocols=protocols,
        session_timeout_ms=session,
        rebalance_timeout_ms=rebalance_ms,
        requires_known_member_id=v4 and instance is None,
        server_side=server_side,
    )


def do_join(group, request, now=0):
    return join(group, request, now, timing=T, assign=ASSIGN)


def do_tick(group, now):
    return tick(group, now_ms=now, timing=T, assign=ASSIGN)


def do_sync(group, member_id, generation, assignments=None, now=0, instance=None):
    return sync(
        group,
        member_id=member_id,
        generation=generation,
        group_instance_id=instance,
        protocol_type="consumer",
        protocol_name="range",
        assignments=assignments or {},
        now_ms=now,
    )


def do_leave(group, members, now=0):
    return leave(group, members=members, now_ms=now, assign=ASSIGN, timing=T)


def settle(group):
    """Tick at each join deadline until the join phase completes (joins during the initial
    delay extend it: GMM.tryCompleteInitialRebalanceElseSchedule)."""
    while group.state is S.PREPARING_REBALANCE and group.join_deadline_ms is not None:
        group = do_tick(group, group.join_deadline_ms).group
    return group


def stable_group(*ids, now=0, session=SESSION):
    """A Stable group of wire members, joined together through the initial rebalance (v3:
    no MEMBER_ID_REQUIRED round trip), the first one leader; everybody syncs when the join
    phase completes (at 6000 for two members or more: they extend the initial delay)."""
    group = LiveGroup("g")
    for mid in ids:
        group = do_join(group, req(new_id=mid, v4=False, session=session), now).group
    group = settle(group)
    assert group.state is S.COMPLETING_REBALANCE
    t = completed_at(group)
    leader = group.leader_id
    assignments = {m: assignment_of([]) for m in ids}
    group = do_sync(group, leader, group.generation, assignments, now=t).group
    for mid in ids:
        if mid != leader:
            group = do_sync(group, mid, group.generation, now=t).group
    assert group.state is S.STABLE
    return group


def completed_at(group):
    return group.members[0].expires_at_ms - group.members[0].session_timeout_ms


# --- KIP-394 and new members ------------------------------------------------------------------


def test_it_asks_a_new_v4_member_to_join_again_with_its_id():
    """Follows testJoinGroupUnknownMemberNewGroup and
    testJoinGroupCompletionWhenPendingMemberJoins."""
    out = do_join(LiveGroup("g"), req(new_id="c-1"))
    assert out.error == "MEMBER_ID_REQUIRED" and out.member_id == "c-1"
    assert out.group.pending == (("c-1", SESSION),)
    assert out.group.state is S.EMPTY
    out = do_join(out.group, req("c-1"), 5)
    assert out.parked and out.group.state is S.PREPARING_REBALANCE
    assert out.group.pending == () and out.group.leader_id == "c-1"


def test_it_forgets_a_pending_member_after_its_session_timeout():
    """Follows testHeartbeatExpirationShouldRemovePendingMember."""
    group = do_join(LiveGroup("g"), req(new_id="c-1")).group
    assert next_deadline(group) == SESSION
    assert do_tick(group, SESSION - 1).group.pending
    assert do_tick(group, SESSION).group.pending == ()


def test_it_refuses_a_session_timeout_outside_the_brokers_range():
    out = do_join(LiveGroup("g"), req(session=5_999))
    assert out.error == "INVALID_SESSION_TIMEOUT" and out.group == LiveGroup("g")
    assert do_join(LiveGroup("g"), req(session=1_800_001)).error == "INVALID_SESSION_TIMEOUT"


def test_it_refuses_a_different_protocol_type_or_no_shared_assignor():
    """Follows testClassicGroupJoinInconsistentProtocolType and
    testJoinGroupSecondJoinInconsistentProtocol."""
    group = do_join(LiveGroup("g"), req(v4=False)).group
    assert do_join(group, req(new_id="c-2", ptype="connect", v4=False)).error == (
        "INCONSISTENT_GROUP_PROTOCOL"
    )
    other = (("roundrobin", META),)
    out = do_join(group, req(new_id="c-2", protocols=other, v4=False))
    assert out.error == "INCONSISTENT_GROUP_PROTOCOL" and out.member_id == ""
    assert do_join(LiveGroup("g"), req(protocols=())).error == "INCONSISTENT_GROUP_PROTOCOL"


# --- initial rebalance delay ----------------------------------------------------------------


def test_it_delays_the_initial_rebalance():
    """Follows testDelayInitialRebalanceByGroupInitialRebalanceDelayOnEmptyGroup."""
    group = do_join(LiveGroup("g"), req(v4=False)).group
    assert group.join_deadline_ms == 3000
    assert do_tick(group, 2999).group.state is S.PREPARING_REBALANCE
    out = do_tick(group, 3000)
    assert out.completed and out.group.state is S.COMPLETING_REBALANCE
    group, answer = join_answer_take(out.group, "c-1")
    assert answer.generation == 1 and answer.leader_id == "c-1" and answer.error is None
    assert answer.members == (("c-1", None, META),) and answer.protocol_name == "range"
    assert join_answer_take(group, "c-1")[1] is None  # taken once


def test_it_waits_another_delay_when_a_member_joins_during_the_initial_delay():
    """Follows testResetRebalanceDelayWhenNewMemberJoinsGroupDuringInitialRebalance."""
    r = req(v4=False, rebalance_ms=9000)
    group = do_join(LiveGroup("g"), r).group
    group = do_join(group, replace(r, new_member_id="c-2"), 2999).group
    group = do_tick(group, 3000).group
    assert group.state is S.PREPARING_REBALANCE and group.join_deadline_ms == 6000
    assert do_tick(group, 5999).group.state is S.PREPARING_REBALANCE
    assert do_tick(group, 6000).group.state is S.COMPLETING_REBALANCE


def test_it_stops_delaying_at_the_rebalance_timeout():
    """Follows testDelayRebalanceUptoRebalanceTimeout (rebalance timeout 2 x the delay). The
    re-armed timer counts from its own deadline (3000), as a broker's timer fires on time;
    Kafka's MockTime test counts from the tick 1 ms later."""
    r = req(v4=False, rebalance_ms=6000)
    group = do_join(LiveGroup("g"), r).group
    group = do_join(group, replace(r, new_member_id="c-2")).group
    group = do_tick(group, 3001).group
    group = do_join(group, replace(r, new_member_id="c-3"), 3001).group
    assert do_tick(group, 5999).group.state is S.PREPARING_REBALANCE
    out = do_tick(group, 6000)
    assert out.group.state is S.COMPLETING_REBALANCE and len(out.group.members) == 3


def test_it_never_completes_the_initial_rebalance_early_even_when_all_joined():
    group = do_join(LiveGroup("g"), req(v4=False)).group
    assert group.has_all_members_joined() and group.state is S.PREPARING_REBALANCE


# --- joins of existing members --------------------------------------------------------------


def test_it_rebalances_when_the_leader_joins_again_in_stable():
    """Follows testJoinGroupAsExistingLeaderTriggersRebalanceInStableState."""
    group = stable_group("a", "b")
    out = do_join(group, req("a"), 100)
    assert out.parked and out.group.state is S.PREPARING_REBALANCE
    assert out.group.join_deadline_ms == 100 + REBALANCE


def test_it_answers_an_unchanged_follower_at_once_in_stable():
    """Follows testJoinGroupExistingMemberDoesNotTriggerRebalanceInStableState."""
    group = stable_group("a", "b")
    out = do_join(group, req("b"), 100)
    assert not out.parked and out.group.state is S.STABLE
    assert out.answer.generation == 1 and out.answer.leader_id == "a" and out.answer.members == ()


def test_it_rebalances_when_a_follower_changes_its_metadata():
    """Follows testJoinGroupAsExistingMemberWithUpdatedMetadataTriggersRebalanceInStableState."""
    group = stable_group("a", "b")
    changed = (("range", encode_subscription(Subscription(("orders", "audit")))),)
    out = do_join(group, req("b", protocols=changed), 100)
    assert out.parked and out.group.state is S.PREPARING_REBALANCE


def test_it_completes_the_join_when_everybody_rejoined_and_removes_the_rest_at_the_timeout():
    """Follows testCompleteJoinRemoveNotYetRejoinedDynamicMembers."""
    group = stable_group("a", "b", "c", session=60_000)  # Stable at 6000
    group = do_join(group, req("a", session=60_000), 7000).group
    group = do_join(group, req("b", session=60_000), 7100).group
    assert group.state is S.PREPARING_REBALANCE
    assert do_tick(group, 7000 + REBALANCE - 1).group.state is S.PREPARING_REBALANCE
    out = do_tick(group, 7000 + REBALANCE)
    assert out.completed and [m.member_id for m in out.group.members] == ["a", "b"]
    assert out.group.generation == 2 and out.group.state is S.COMPLETING_REBALANCE
    # All rejoined: completes at once.
    group = do_sync(out.group, "a", 2, now=17_000).group
    group = do_sync(group, "b", 2, now=17_000).group
    group = do_join(group, req("a", session=60_000), 20_000).group
    assert group.state is S.PREPARING_REBALANCE
    out = do_join(group, req("b", session=60_000), 20_001)
    assert out.completed and out.answer.generation == 3 and out.group.generation == 3


def test_it_waits_another_rebalance_timeout_when_nobody_rejoined():
    """Follows testCompleteJoinPhaseNoMembersRejoinedExtendsJoinPhase (static members stay)."""
    group = LiveGroup("g")
    for i in ("x", "y"):
        group = do_join(group, req(new_id=f"{i}-1", instance=i, session=60_000)).group
    group = settle(group)
    group = do_sync(group, "x-1", 1, instance="x").group
    group = do_sync(group, "y-1", 1, instance="y").group
    out = rebalance(group, now_ms=4000, reason="button", assign=ASSIGN, timing=T)
    out = do_tick(out.group, 4000 + REBALANCE)
    assert out.group.state is S.PREPARING_REBALANCE and len(out.group.members) == 2
    assert out.group.join_deadline_ms == 4000 + 2 * REBALANCE


def test_it_picks_the_assignor_by_vote():
    both = (("range", META), ("roundrobin", META))
    rr_first = (("roundrobin", META), ("range", META))
    group = do_join(LiveGroup("g"), req(new_id="a", protocols=both, v4=False)).group
    group = do_join(group, req(new_id="b", protocols=rr_first, v4=False)).group
    group = do_join(group, req(new_id="c", protocols=rr_first, v4=False)).group
    assert settle(group).protocol_name == "roundrobin"


# --- new member join timeout, session expiry ------------------------------------------------


def test_it_drops_a_new_member_whose_join_waits_past_the_new_member_timeout():
    """Follows testNewMemberJoinExpiration."""
    big = req("", "a", session=5000 + 300_000, rebalance_ms=600_000, v4=False)
    group = do_join(LiveGroup("g"), big).group
    group = settle(group)
    group = do_sync(group, "a", 1, {"a": b""}, now=3000).group
    group = do_join(group, req("", "b", session=6000, rebalance_ms=6000, v4=False), 3000).group
    assert group.state is S.PREPARING_REBALANCE
    out = do_tick(group, 3000 + 300_000)
    assert [m.member_id for m in out.group.members] == ["a"]
    group, answer = join_answer_take(out.group, "b")
    assert answer.error == "UNKNOWN_MEMBER_ID" and answer.member_id == ""


def test_it_removes_a_silent_member_and_rebalances():
    """Follows testClassicGroupMemberSessionTimeout / testHeartbeatExpirationShouldRemoveMember."""
    group = stable_group("a", "b")  # Stable at 6000
    group = heartbeat(group, member_id="a", generation=1, group_instance_id=None, now_ms=9000).group
    assert do_tick(group, 6000 + SESSION - 1).group.state is S.STABLE
    out = do_tick(group, 6000 + SESSION)
    assert [m.member_id for m in out.group.members] == ["a"]
    assert out.group.state is S.PREPARING_REBALANCE


def test_it_keeps_a_members_session_with_heartbeats():
    """Follows testClassicGroupMemberHeartbeatMaintainsSession."""
    group = stable_group("a")
    for now in range(5000, 60_000, 5000):
        group = heartbeat(group, member_id="a", generation=1, group_instance_id=None, now_ms=now)
        group = do_tick(group.group, now).group
    assert group.state is S.STABLE


# --- SyncGroup ------------------------------------------------------------------------------


def test_it_parks_a_followers_sync_until_the_leaders():
    """Follows testSyncGroupLeaderAfterFollower."""
    group = LiveGroup("g")
    for mid in ("a", "b"):
        group = do_join(group, req(new_id=mid, v4=False)).group
    group = settle(group)
    out = do_sync(group, "b", 1)
    assert out.parked and sync_poll(out.group, member_id="b", generation=1).parked
    out = do_sync(out.group, "a", 1, {"a": assignment_of([("orders", 0)]), "b": b"\x01"})
    assert out.completed and out.group.state is S.STABLE
    assert decode_assignment(out.assignment).partitions() == (("orders", 0),)
    polled = sync_poll(out.group, member_id="b", generation=1)
    assert polled.assignment == b"\x01" and polled.error is None
    assert out.group.sync_deadline_ms is None


def test_it_answers_a_follower_after_the_leader_from_the_stored_assignment():
    """Follows testSyncGroupFollowerAfterLeader."""
    group = LiveGroup("g")
    for mid in ("a", "b"):
        group = do_join(group, req(new_id=mid, v4=False)).group
    group = settle(group)
    group = do_sync(group, "a", 1, {"b": b"\x02"}).group
    out = do_sync(group, "b", 1)
    assert out.assignment == b"\x02" and not out.parked
    assert out.group.member("a").assignment == b""  # missing from the leader's map


def test_it_checks_sync_requests():
    """Follows testSyncGroupFromUnknownMember / testSyncGroupFromIllegalGeneration /
    testSyncGroupReturnsAnErrorWhenProtocolNameIsInconsistent."""
    group = stable_group("a")
    assert do_sync(group, "zz", 1).error == "UNKNOWN_MEMBER_ID"
    assert do_sync(group, "a", 2).error == "ILLEGAL_GENERATION"
    bad = sync(
        group,
        member_id="a",
        generation=1,
        group_instance_id=None,
        protocol_type="consumer",
        protocol_name="sticky",
        assignments={},
        now_ms=0,
    )
    assert bad.error == "INCONSISTENT_GROUP_PROTOCOL"
    assert do_sync(LiveGroup("g"), "a", 0).error == "UNKNOWN_MEMBER_ID"


def test_it_answers_parked_syncs_rebalance_in_progress_when_a_rebalance_starts():
    """Follows testLeaderFailureInSyncGroup (the parked follower learns of the rebalance)."""
    group = LiveGroup("g")
    for mid in ("a", "b"):
        group = do_join(group, req(new_id=mid, v4=False)).group
    group = settle(group)
    group = do_sync(group, "b", 1).group
    group = do_join(group, req(new_id="c", v4=False), 3100).group
    assert group.state is S.PREPARING_REBALANCE
    assert sync_poll(group, member_id="b", generation=1).error == "REBALANCE_IN_PROGRESS"


def test_it_removes_followers_that_never_sync():
    """Follows testRebalanceTimesOutWhenSyncRequestIsNotReceivedFromFollowers."""
    group = LiveGroup("g")
    for mid in ("a", "b"):
        group = do_join(group, req(new_id=mid, v4=False, session=60_000)).group
    group = settle(group)
    group = do_sync(group, "a", 1, {}, now=6000).group
    assert group.state is S.STABLE and group.sync_deadline_ms == 6000 + REBALANCE
    out = do_tick(group, 6000 + REBALANCE)
    assert [m.member_id for m in out.group.members] == ["a"]
    assert out.group.state in (S.PREPARING_REBALANCE, S.COMPLETING_REBALANCE)


# --- Heartbeat ------------------------------------------------------------------------------


def hb(group, member_id, generation, now=0, instance=None):
    return heartbeat(
        group, member_id=member_id, generation=generation, group_instance_id=instance, now_ms=now
    )


def test_it_answers_heartbeats_by_state():
    """Follows testHeartbeatEmptyGroup, testHeartbeatDuringPreparingRebalance,
    testHeartbeatDuringCompletingRebalance, testHeartbeatIllegalGeneration, testValidHeartbeat."""
    assert hb(LiveGroup("g"), "a", 0).error == "UNKNOWN_MEMBER_ID"
    group = LiveGroup("g")
    for mid in ("a", "b"):
        group = do_join(group, req(new_id=mid, v4=False)).group
    group = settle(group)
    assert hb(group, "a", 1, 3100).error is None  # CompletingRebalance: NONE
    assert hb(group, "a", 0).error == "ILLEGAL_GENERATION"
    group = do_sync(group, "a", 1).group
    group = do_sync(group, "b", 1).group
    assert hb(group, "b", 1).error is None
    preparing = do_join(group, req("a"), 4000).group
    out = hb(preparing, "b", 1, 4500)
    assert out.error == "REBALANCE_IN_PROGRESS"
    assert out.group.member("b").expires_at_ms == 4500 + SESSION


# --- static membership ----------------------------------------------------------------------


def test_it_replaces_a_static_member_in_stable_without_a_rebalance():
    """Follows testReplaceStaticMemberInStableStateNoError and
    testStaticMemberRejoinAsFollowerWithUnknownMemberId."""
    group = LiveGroup("g")
    group = do_join(group, req(new_id="l-1", instance="l")).group
    group = do_join(group, req(new_id="f-1", instance="f")).group
    group = settle(group)
    group = do_sync(group, "l-1", 1, {"f-1": b"\x07"}, instance="l").group
    group = do_sync(group, "f-1", 1, instance="f").group
    out = do_join(group, req(new_id="f-2", instance="f"), 5000)
    assert out.group.state is S.STABLE and out.answer.member_id == "f-2"
    assert out.answer.generation == 1 and out.answer.leader_id == "l-1"
    assert out.group.member("f-2").assignment == b"\x07"
    assert hb(out.group, "f-1", 1, instance="f").error == "FENCED_INSTANCE_ID"
    assert do_sync(out.group, "f-2", 1, instance="f").assignment == b"\x07"


def test_it_fences_a_parked_join_of_the_replaced_static_member():
    """Follows testStaticMemberFenceDuplicateRejoinedFollower."""
    group = LiveGroup("g")
    for i in ("l", "f", "x"):
        group = do_join(group, req(new_id=f"{i}-1", instance=i, session=60_000)).group
    group = settle(group)  # generation 1 at 6000
    for i in ("l", "f", "x"):
        group = do_sync(group, f"{i}-1", 1, instance=i, now=6000).group
    group = do_join(group, req("l-1", instance="l"), 7000).group  # the leader: rebalance
    group = do_join(group, req("f-1", instance="f"), 7001).group  # parked: x not back yet
    assert group.state is S.PREPARING_REBALANCE
    out = do_join(group, req(new_id="f-2", instance="f"), 7002)
    assert out.parked and out.group.member("f-1") is None
    group, answer = join_answer_take(out.group, "f-1")
    assert answer.error == "FENCED_INSTANCE_ID" and answer.member_id == "f-1"
    assert join_answer_take(group, "f-1")[1].error == "UNKNOWN_MEMBER_ID"


def test_it_keeps_absent_static_members_at_join_completion():
    """Follows testStaticMemberFollowerFailToRejoinBeforeRebalanceTimeout."""
    group = LiveGroup("g")
    group = do_join(group, req(new_id="l-1", instance="l", session=60_000)).group
    group = do_join(group, req(new_id="f-1", instance="f", session=60_000)).group
    group = settle(group)
    group = do_sync(group, "l-1", 1, instance="l").group
    group = do_sync(group, "f-1", 1, instance="f").group
    group = do_join(group, req("l-1", instance="l"), 4000).group
    out = do_tick(group, 4000 + REBALANCE)
    assert {m.member_id for m in out.group.members} == {"l-1", "f-1"}
    assert out.group.generation == 2


# --- LeaveGroup -----------------------------------------------------------------------------


def test_it_handles_a_batch_leave():
    """Follows testJoinedMemberPendingMemberBatchLeaveGroupWithUnknownMember and
    testLeaveGroupStaticMemberWithUnknownMemberId."""
    group = stable_group("a", "b")
    group = do_join(group, req(new_id="p-1"), 100).group  # pending
    group = do_join(group, req(new_id="s-1", instance="s", v4=False), 100).group
    out, results = do_leave(group, [("a", None), ("p-1", None), ("zz", None), ("", "s")], 200)
    assert results == {
        ("a", None): None,
        ("p-1", None): None,
        ("zz", None): "UNKNOWN_MEMBER_ID",
        ("", "s"): None,
    }
    assert [m.member_id for m in out.group.members] == ["b"]
    assert join_answer_take(out.group, "s-1")[1].error == "UNKNOWN_MEMBER_ID"


def test_it_empties_the_group_when_the_last_member_leaves():
    """Follows testValidLeaveGroup."""
    group = stable_group("a")
    out, results = do_leave(group, [("a", None)])
    assert results == {("a", None): None}
    assert out.group.state is S.EMPTY and out.group.generation == 2
    assert out.group.members == () and out.group.leader_id is None


def test_it_refuses_a_fenced_static_leave():
    """Follows testLeaveGroupWithFencedInstanceId."""
    group = do_join(LiveGroup("g"), req(new_id="s-1", instance="s")).group
    _, results = do_leave(group, [("s-0", "s")])
    assert results == {("s-0", "s"): "FENCED_INSTANCE_ID"}


# --- group.max.size -------------------------------------------------------------------------


def test_it_refuses_members_past_group_max_size():
    """Follows testJoinGroupShouldReceiveErrorIfGroupOverMaxSize."""
    small = Timing(max_size=2)
    group = LiveGroup("g")
    for mid in ("a", "b"):
        group = join(group, req(new_id=mid, v4=False), 0, timing=small, assign=ASSIGN).group
    out = join(group, req(new_id="c", v4=False), 0, timing=small, assign=ASSIGN)
    assert out.error == "GROUP_MAX_SIZE_REACHED" and len(out.group.members) == 2


# --- members living in the server -----------------------------------------------------------


def test_it_assigns_at_once_when_the_leader_lives_in_the_server():
    group = do_join(LiveGroup("g"), req(new_id="srv-1", server_side=True, v4=False)).group
    group = do_join(group, req(new_id="wire-1", v4=False)).group
    out = do_tick(group, 3000)
    out = do_tick(out.group, 6000)
    assert out.completed and out.group.state is S.STABLE and out.group.leader_id == "srv-1"
    parts = {m.member_id: member_partitions(m) for m in out.group.members}
    assert parts == {
        "srv-1": (("orders", 0), ("orders", 1)),
        "wire-1": (("orders", 2), ("orders", 3)),
    }
    group, answer = join_answer_take(out.group, "wire-1")
    assert answer.leader_id == "srv-1" and answer.members == ()
    synced = do_sync(group, "wire-1", 1)
    assert decode_assignment(synced.assignment).partitions() == (("orders", 2), ("orders", 3))
    assert synced.group.sync_deadline_ms is None


def test_it_makes_members_in_the_server_rejoin_at_once():
    group = do_join(LiveGroup("g"), req(new_id="wire-1", v4=False)).group
    group = do_join(group, req(new_id="srv-1", server_side=True, v4=False)).group
    group = settle(group)
    group = do_sync(group, "wire-1", 1, {"srv-1": assignment_of([("orders", 1)])}).group
    assert group.state is S.STABLE
    assert member_partitions(group.member("srv-1")) == (("orders", 1),)
    out = do_join(group, req("wire-1"), 4000)  # the leader rejoins: both joined, done
    assert out.completed and out.group.state is S.COMPLETING_REBALANCE
    group = heartbeats_kept(out.group, ["srv-1"], 5000)
    assert group.member("srv-1").expires_at_ms == 5000 + SESSION


# --- JSON -----------------------------------------------------------------------------------


def test_it_round_trips_through_json():
    group = do_join(LiveGroup("g"), req(new_id="p-1")).group
    group = do_join(group, req(new_id="srv-1", server_side=True, v4=False)).group
    group = do_join(group, req(new_id="s-1", instance="s", v4=False)).group
    group = settle(group)
    group = do_sync(group, "srv-1", group.generation).group
    assert LiveGroup.from_dict(json.loads(json.dumps(group.to_dict()))) == group


# --- properties -----------------------------------------------------------------------------

IDS = ["a", "b", "c", "d"]
actions = st.lists(
    st.tuples(
        st.sampled_from(["join", "join_new", "sync", "hb", "leave", "tick", "rebalance", "take"]),
        st.sampled_from(IDS),
        st.integers(0, 9_000),
        st.booleans(),
        st.sampled_from([0, 0, 0, -1, 1]),
    ),
    min_size=10,
    max_size=40,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(actions)
def test_it_keeps_kafkas_invariants_for_any_sequence(steps):
    timing = Timing(max_size=3)
    group = LiveGroup("g")
    now = 0
    ids_given: dict[str, str] = {}
    for n, (action, who, dt, flag, gen_delta) in enumerate(steps):
        now += dt
        before = group
        instance = who if flag and who in ("c", "d") else None
        member_id = ids_given.get(who, "")
        if action == "join_new":
            member_id = ""
        if action in ("join", "join_new"):
            request = req(
                member_id,
                f"{who}-{n}",
                instance=instance,
                v4=flag,
                server_side=(who == "a" and flag),
                session=6000 + dt % 20_000,
                rebalance_ms=5000 + dt,
            )
            out = join(group, request, now, timing=timing, assign=ASSIGN)
            if out.member_id:
                ids_given[who] = out.member_id
        elif action == "sync":
            out = do_sync(
                group, member_id, group.generation + gen_delta, now=now, instance=instance
            )
        elif action == "hb":
            out = hb(group, member_id, group.generation + gen_delta, now, instance)
        elif action == "leave":
            out, _ = leave(
                group, members=[(member_id, instance)], now_ms=now, assign=ASSIGN, timing=timing
            )
        elif action == "tick":
            group = heartbeats_kept(
                group, [m.member_id for m in group.members if m.server_side], now
            )
            out = tick(group, now_ms=now, timing=timing, assign=ASSIGN)
        elif action == "rebalance":
            out = rebalance(group, now_ms=now, reason="test", assign=ASSIGN, timing=timing)
        else:
            g, _ = join_answer_take(group, member_id)
            out = sync_poll(g, member_id=member_id, generation=group.generation)
        group = out.group
        assert group.generation >= before.generation
        ids = [m.member_id for m in group.members]
        assert len(ids) == len(set(ids))
        instances = [m.group_instance_id for m in group.members if m.group_instance_id]
        assert len(instances) == len(set(instances))
        # Every step goes through group.transition (IllegalTransition otherwise); the last
        # one is on record, and a call that moved the state recorded where it came from.
        if group.previous_state is not None:
            assert can_transition(group.previous_state, group.state)
        if group.state is not before.state:
            assert group.previous_state is not None
        # A completed join answered every parked member (a later timer of the same tick may
        # have started the next join phase already: then they wait in PreparingRebalance).
        if group.state in (S.COMPLETING_REBALANCE, S.STABLE):
            for m in group.members:
                assert not m.awaiting_join
                assert m.server_side or m.joined_generation <= group.generation
        if group.members:
            assert group.leader_id in ids
        else:
            assert group.state in (S.EMPTY, S.PREPARING_REBALANCE)
        assert len(group.members) + len(group.pending) <= 2 * timing.max_size
        assert LiveGroup.from_dict(json.loads(json.dumps(group.to_dict()))) == group


def test_it_checks_an_offset_commit_as_the_classic_group_does():
    """ClassicGroup.validateOffsetCommit, as GroupMetadataManagerTest's offset commit tests."""
    empty = joining.LiveGroup("g")
    # A consumer outside group management may commit while the group has no members.
    assert (
        joining.offset_commit_check(empty, generation=-1, member_id="", group_instance_id=None)
        is None
    )
    member = joining.LiveMember(
        member_id="m-1",
        client_id="m",
        group_instance_id=None,
        protocol_type="consumer",
        protocols=(("range", b""),),
        session_timeout_ms=10_000,
        rebalance_timeout_ms=10_000,
        last_heartbeat_ms=0,
    )
    stable = joining.LiveGroup("g", state=GroupState.STABLE, generation=3, members=(member,))
    check = joining.offset_commit_check
    assert check(stable, generation=-1, member_id="", group_instance_id=None) == "UNKNOWN_MEMBER_ID"
    assert (
        check(stable, generation=3, member_id="other", group_instance_id=None)
        == "UNKNOWN_MEMBER_ID"
    )
    assert (
        check(stable, generation=2, member_id="m-1", group_instance_id=None) == "ILLEGAL_GENERATION"
    )
    assert check(stable, generation=3, member_id="m-1", group_instance_id=None) is None
    completing = replace(stable, state=GroupState.COMPLETING_REBALANCE)
    assert check(completing, generation=3, member_id="m-1", group_instance_id=None) == (
        "REBALANCE_IN_PROGRESS"
    )
