"""Consumer groups over the wire: FindCoordinator, the classic group protocol, offsets, and
the describe/list calls, thin over services/live_groups.py.

A JoinGroup or SyncGroup that must wait (the join phase is open, the leader has not synced)
is parked as Kafka parks it: this connection gets no answer until the coordinator has one,
looked for every POLL_SECONDS in the database, so whichever process moves the group on (this
listener's polls, the room's driver), the answer is the same.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

from messaging import selectors
from messaging.api.kafka_wire import brokers
from messaging.api.kafka_wire.handlers import (
    POLL_SECONDS,
    db,
    handlers_register,
    lock_check,
    session_room,
)
from messaging.api.kafka_wire.protocol import ERRORS, SUPPORTED, code
from messaging.api.kafka_wire.session import Session
from messaging.engine import joining
from messaging.errors import LogLabError
from messaging.models import ConsumerGroup
from messaging.services import live_groups
from messaging.services.live_groups import ClientInfo

# A parked request gives up (and answers REBALANCE_IN_PROGRESS, so the client rejoins) after
# this long beyond its own rebalance timeout: the coordinator always answers before that.
PARK_MARGIN_S = 10.0


def _find_coordinator(session: Session, request: Any, version: int) -> dict[str, Any]:
    if version >= 1 and request.key_type == 1:
        return {
            "error_code": ERRORS["TRANSACTIONAL_ID_AUTHORIZATION_FAILED"],
            "error_message": "LogLab's wire listener does not run transactions yet.",
            "node_id": -1,
            "host": "",
            "port": -1,
        }
    node, port = brokers.coordinator(session)  # the first running broker (#16)
    return {
        "throttle_time_ms": 0,
        "error_code": 0,
        "error_message": None,
        "node_id": node,
        "host": session.host,
        "port": port,
    }


def _client(session: Session) -> ClientInfo:
    return ClientInfo(
        client_id=session.client_id or "kafka-client",
        software=session.software or session.client_id,
        display_name=session.student_name
        or (f"{session.client_id}" if session.client_id else "kafka-client"),
    )


def _join_body(answer: joining.JoinAnswer) -> dict[str, Any]:
    return {
        "throttle_time_ms": 0,
        "error_code": code(answer.error),
        "generation_id": answer.generation,
        "protocol_type": answer.protocol_type,
        "protocol_name": answer.protocol_name or "",
        "leader": answer.leader_id,
        "member_id": answer.member_id,
        "members": [
            {"member_id": mid, "group_instance_id": instance, "metadata": metadata}
            for mid, instance, metadata in answer.members
        ],
    }


def _join_error(error: str, member_id: str = "") -> dict[str, Any]:
    return _join_body(joining.JoinAnswer(-1, None, None, "", member_id, (), error))


def _join_start(session: Session, request: Any, version: int) -> Any:
    room = session_room(session)
    if lock_check(session, room, SUPPORTED[11]):
        return _join_error("GROUP_AUTHORIZATION_FAILED", request.member_id)
    rebalance_timeout = request.rebalance_timeout_ms if version >= 1 else request.session_timeout_ms
    instance = request.group_instance_id if version >= 5 else None
    join = joining.JoinRequest(
        member_id=request.member_id or "",
        new_member_id=f"{(session.client_id or 'consumer')[:64]}-{uuid.uuid4()}",
        group_instance_id=instance,
        client_id=session.client_id or "",
        protocol_type=request.protocol_type or "",
        protocols=tuple((p.name, bytes(p.metadata or b"")) for p in request.protocols),
        session_timeout_ms=request.session_timeout_ms,
        rebalance_timeout_ms=rebalance_timeout,
        requires_known_member_id=version >= 4 and instance is None,
    )
    try:
        return live_groups.client_group_join(
            room=room, group_id=request.group_id, request=join, client=_client(session)
        )
    except LogLabError as error:
        return _join_error("INVALID_GROUP_ID" if error.field == "group_id" else "INVALID_REQUEST")


async def _join_group(session: Session, request: Any, version: int) -> dict[str, Any]:
    outcome = await db(_join_start, session, request, version)
    if isinstance(outcome, dict):
        return outcome
    if outcome.answer is not None:
        return _join_body(outcome.answer)
    if not outcome.parked:
        return _join_error(outcome.error or "UNKNOWN_SERVER_ERROR", outcome.member_id)
    assert session.room_pk is not None
    room_pk = session.room_pk
    rebalance_timeout = request.rebalance_timeout_ms if version >= 1 else request.session_timeout_ms
    give_up = time.monotonic() + rebalance_timeout / 1000 + PARK_MARGIN_S
    while time.monotonic() < give_up:
        await asyncio.sleep(POLL_SECONDS)
        answer = await db(_join_poll, room_pk, request.group_id, outcome.member_id)
        if answer is not None:
            return _join_body(answer)
    return _join_error("REBALANCE_IN_PROGRESS", outcome.member_id)


def _join_poll(room_pk: int, group_id: str, member_id: str) -> joining.JoinAnswer | None:
    room = selectors.room_by_pk(pk=room_pk)
    return live_groups.client_join_poll(room=room, group_id=group_id, member_id=member_id)


def _sync_body(error: str | None, assignment: bytes = b"") -> dict[str, Any]:
    return {
        "throttle_time_ms": 0,
        "error_code": code(error),
        "assignment": assignment,
    }


def _sync_start(session: Session, request: Any, version: int) -> Any:
    room = session_room(session)
    if lock_check(session, room, SUPPORTED[14]):
        return _sync_body("GROUP_AUTHORIZATION_FAILED")
    return live_groups.client_group_sync(
        room=room,
        group_id=request.group_id,
        member_id=request.member_id,
        generation=request.generation_id,
        group_instance_id=request.group_instance_id if version >= 3 else None,
        protocol_type=None,
        protocol_name=None,
        assignments={a.member_id: bytes(a.assignment or b"") for a in request.assignments},
    )


def _sync_poll(room_pk: int, group_id: str, member_id: str, generation: int) -> Any:
    room = selectors.room_by_pk(pk=room_pk)
    return live_groups.client_sync_poll(
        room=room, group_id=group_id, member_id=member_id, generation=generation
    )


async def _sync_group(session: Session, request: Any, version: int) -> dict[str, Any]:
    outcome = await db(_sync_start, session, request, version)
    assert session.room_pk is not None
    room_pk = session.room_pk
    give_up = time.monotonic() + 300 + PARK_MARGIN_S
    while not isinstance(outcome, dict) and outcome.parked and time.monotonic() < give_up:
        await asyncio.sleep(POLL_SECONDS)
        outcome = await db(
            _sync_poll, room_pk, request.group_id, request.member_id, request.generation_id
        )
    if isinstance(outcome, dict):
        return outcome
    if outcome.parked:
        return _sync_body("REBALANCE_IN_PROGRESS")
    return _sync_body(outcome.error, outcome.assignment or b"")


def _heartbeat(session: Session, request: Any, version: int) -> dict[str, Any]:
    error = live_groups.client_heartbeat(
        room=session_room(session),
        group_id=request.group_id,
        member_id=request.member_id,
        generation=request.generation_id,
        group_instance_id=request.group_instance_id if version >= 3 else None,
    )
    return {"throttle_time_ms": 0, "error_code": code(error)}


def _leave_group(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    if version >= 3:
        leaving = [(m.member_id, m.group_instance_id) for m in request.members]
    else:
        leaving = [(request.member_id, None)]
    if lock_check(session, room, SUPPORTED[13]):
        return {"throttle_time_ms": 0, "error_code": ERRORS["GROUP_AUTHORIZATION_FAILED"]}
    error, results = live_groups.client_group_leave(
        room=room, group_id=request.group_id, members=leaving
    )
    if version < 3:
        return {"throttle_time_ms": 0, "error_code": code(error or results.get(leaving[0]))}
    return {
        "throttle_time_ms": 0,
        "error_code": code(error),
        "members": [
            {
                "member_id": mid,
                "group_instance_id": instance,
                "error_code": code(results.get((mid, instance))),
            }
            for mid, instance in leaving
        ],
    }


def _offset_commit(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    wanted = [
        (t.name, p.partition_index, p.committed_offset, p.committed_metadata or "")
        for t in request.topics
        for p in t.partitions
    ]
    error = None
    results: dict[tuple[str, int], str | None] = {}
    if lock_check(session, room, SUPPORTED[8]):
        error = "GROUP_AUTHORIZATION_FAILED"
    else:
        try:
            error, results = live_groups.client_offsets_commit(
                room=room,
                group_id=request.group_id,
                generation=request.generation_id_or_member_epoch,
                member_id=request.member_id or "",
                group_instance_id=request.group_instance_id if version >= 7 else None,
                offsets=wanted,
                api_version=version,
            )
        except LogLabError:
            error = "INVALID_GROUP_ID"
    by_topic: dict[str, list[dict[str, Any]]] = {}
    for topic, index, _, _ in wanted:
        by_topic.setdefault(topic, []).append(
            {"partition_index": index, "error_code": code(error or results.get((topic, index)))}
        )
    return {
        "throttle_time_ms": 0,
        "topics": [{"name": name, "partitions": parts} for name, parts in by_topic.items()],
    }


def _offset_fetch(session: Session, request: Any, version: int) -> dict[str, Any]:
    """OffsetFetch; from v8 a batch of groups, from v9 with the member id and epoch a
    consumer-protocol member fetches with (ConsumerGroup.validateOffsetFetch)."""
    room = session_room(session)
    if version < 8:
        error, topics = _offsets_of(room, request.group_id, request.topics)
        return {"throttle_time_ms": 0, "error_code": code(error), "topics": topics}
    groups = []
    for asked in request.groups:
        error = None
        if version >= 9:
            error = live_groups.client_offsets_fetch_check(
                room=room,
                group_id=asked.group_id,
                member_id=asked.member_id,
                member_epoch=asked.member_epoch,
            )
        if error:
            groups.append({"group_id": asked.group_id, "topics": [], "error_code": code(error)})
            continue
        _, topics = _offsets_of(room, asked.group_id, asked.topics)
        groups.append({"group_id": asked.group_id, "topics": topics, "error_code": 0})
    return {"throttle_time_ms": 0, "groups": groups}


def _offsets_of(room: Any, group_id: str, topics: Any) -> tuple[str | None, list[dict[str, Any]]]:
    committed = selectors.kafka_committed(room=room, group_id=group_id)
    if topics is None:
        asked: dict[str, list[int]] = {}
        for topic, index in sorted(committed):
            asked.setdefault(topic, []).append(index)
    else:
        asked = {t.name: list(t.partition_indexes) for t in topics}
    return None, [
        {
            "name": topic,
            "partitions": [
                {
                    "partition_index": index,
                    "committed_offset": committed.get((topic, index), (-1, ""))[0],
                    "committed_leader_epoch": -1,
                    "metadata": committed.get((topic, index), (-1, ""))[1],
                    "error_code": 0,
                }
                for index in indexes
            ],
        }
        for topic, indexes in asked.items()
    ]


def _describe_groups(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    groups = []
    for group_id in request.groups:
        group = ConsumerGroup.objects.filter(room=room, group_id=group_id).first()
        if group is None:
            # Kafka describes an unknown group as Dead with no members.
            groups.append(
                {
                    "error_code": 0,
                    "group_id": group_id,
                    "group_state": "Dead",
                    "protocol_type": "",
                    "protocol_data": "",
                    "members": [],
                }
            )
            continue
        if group.group_protocol == ConsumerGroup.GroupProtocol.CONSUMER:
            # DescribeGroups reads classic groups only (GMM.describeGroups): a KIP-848 group
            # is described as Dead with no members, which is why admin tools that only speak
            # it show such groups as DEAD. ConsumerGroupDescribe describes it.
            groups.append(
                {
                    "error_code": 0,
                    "group_id": group_id,
                    "group_state": "Dead",
                    "protocol_type": "",
                    "protocol_data": "",
                    "members": [],
                }
            )
            continue
        live = live_groups.live_load(group)
        groups.append(
            {
                "error_code": 0,
                "group_id": group_id,
                "group_state": str(live.state),
                "protocol_type": live.protocol_type or "",
                "protocol_data": live.protocol_name or "",
                "members": [
                    {
                        "member_id": m.member_id,
                        "group_instance_id": m.group_instance_id,
                        "client_id": m.client_id,
                        "client_host": "/127.0.0.1" if m.server_side else f"/{session.peer}",
                        "member_metadata": m.metadata(live.protocol_name),
                        "member_assignment": m.assignment,
                    }
                    for m in live.members
                ],
            }
        )
    return {"throttle_time_ms": 0, "groups": groups}


def _list_groups(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    return {
        "throttle_time_ms": 0,
        "error_code": 0,
        "groups": [
            {"group_id": g.group_id, "protocol_type": "consumer", "group_state": g.state}
            for g in ConsumerGroup.objects.filter(room=room).order_by("group_id")
        ],
    }


# KIP-848's APIs live in a module of their own; importing it registers them.
from messaging.api.kafka_wire import consumer_groups as _consumer_groups  # noqa: E402, F401
from messaging.api.kafka_wire import share_groups as _share_groups  # noqa: E402, F401

handlers_register(
    {
        "FindCoordinator": _find_coordinator,
        "Heartbeat": _heartbeat,
        "LeaveGroup": _leave_group,
        "OffsetCommit": _offset_commit,
        "OffsetFetch": _offset_fetch,
        "DescribeGroups": _describe_groups,
        "ListGroups": _list_groups,
    },
    {"JoinGroup": _join_group, "SyncGroup": _sync_group},
)
