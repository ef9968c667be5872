"""The consumer group protocol over the wire (KIP-848): ConsumerGroupHeartbeat and
ConsumerGroupDescribe, thin over services/consumer_groups.py.

A librdkafka consumer with ``group.protocol=consumer`` (and ``group.remote.assignor`` uniform or
range) heartbeats here every ``HeartbeatIntervalMs`` the answer tells it; the answer carries
its member epoch and, when it changed, the partitions it may use, by topic id (Metadata v10+
tells the client which topic an id is). There is no JoinGroup, no SyncGroup, nothing parked:
every heartbeat is answered at once.
"""

from __future__ import annotations

import uuid
from typing import Any

from messaging import selectors
from messaging.api.kafka_wire.handlers import handlers_register, lock_check, session_room
from messaging.api.kafka_wire.protocol import SUPPORTED, code
from messaging.api.kafka_wire.session import Session
from messaging.engine import consumer_group as kip848
from messaging.errors import LogLabError
from messaging.models import ConsumerGroup, Room
from messaging.services import consumer_groups
from messaging.services.live_groups import ClientInfo

HEARTBEAT = 68
DESCRIBE = 69
# Bounds LogLab sets on what one heartbeat may name (Kafka has none of its own here).
MAX_SUBSCRIBED = 100
MAX_OWNED_TOPICS = 100


def _client(session: Session) -> ClientInfo:
    return ClientInfo(
        client_id=session.client_id or "kafka-client",
        software=session.software or session.client_id,
        display_name=session.student_name or session.client_id or "kafka-client",
    )


def _topic_ids(room: Room) -> tuple[dict[uuid.UUID, str], dict[str, uuid.UUID]]:
    metas = selectors.kafka_topic_metas(room=room)
    return {m.topic_id: name for name, m in metas.items()}, {
        n: m.topic_id for n, m in metas.items()
    }


def _answer(answer: kip848.Answer, ids: dict[str, uuid.UUID]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "throttle_time_ms": 0,
        "error_code": code(answer.error),
        "error_message": answer.error_message,
        "member_id": answer.member_id,
        "member_epoch": answer.member_epoch,
        "heartbeat_interval_ms": answer.heartbeat_interval_ms,
        "assignment": None,
    }
    if answer.assignment is not None:
        body["assignment"] = {
            "topic_partitions": [
                {"topic_id": ids[topic], "partitions": list(parts)}
                for topic, parts in answer.assignment
                if topic in ids
            ]
        }
    return body


def _refused(error: str, message: str, request: Any) -> dict[str, Any]:
    return _answer(
        kip848.Answer(error=error, error_message=message, member_id=request.member_id or None),
        {},
    )


def _heartbeat(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    # A heartbeat that joins (epoch 0) or leaves (-1, -2) passes the lock JoinGroup and
    # LeaveGroup pass in a classroom; a member's plain heartbeat passes none, as Heartbeat.
    locked = lock_check(session, room, SUPPORTED[HEARTBEAT]) if request.member_epoch <= 0 else None
    if locked:
        return _refused("GROUP_AUTHORIZATION_FAILED", locked, request)
    if not (request.group_id or "").strip():
        return _refused("INVALID_REQUEST", "GroupId can't be empty.", request)
    subscribed = request.subscribed_topic_names
    owned_in = request.topic_partitions
    if (subscribed is not None and len(subscribed) > MAX_SUBSCRIBED) or (
        owned_in is not None and len(owned_in) > MAX_OWNED_TOPICS
    ):
        return _refused("INVALID_REQUEST", "Too many topics in one heartbeat.", request)
    by_id, ids = _topic_ids(room)
    owned = None
    if owned_in is not None:
        # An id this room does not have names nothing the member could own here.
        owned = kip848.partitions_of(
            {by_id[tp.topic_id]: tp.partitions for tp in owned_in if tp.topic_id in by_id}
        )
    heartbeat = kip848.Heartbeat(
        member_id=request.member_id or "",
        member_epoch=request.member_epoch,
        instance_id=request.instance_id,
        rack_id=request.rack_id,
        rebalance_timeout_ms=request.rebalance_timeout_ms,
        subscribed=None if subscribed is None else tuple(subscribed),
        regex=request.subscribed_topic_regex if version >= 1 else None,
        server_assignor=request.server_assignor,
        owned=owned,
        client_host=f"/{session.peer}",
        # Kafka's coordinator draws the id when the member sends none (clients since
        # KIP-1082 send their own).
        new_member_id=str(uuid.uuid4()),
    )
    try:
        answer = consumer_groups.client_heartbeat(
            room=room, group_id=request.group_id, request=heartbeat, client=_client(session)
        )
    except LogLabError as error:
        return _refused("INVALID_REQUEST", str(error), request)
    return _answer(answer, ids)


def _described_assignment(parts: kip848.Partitions, ids: dict[str, uuid.UUID]) -> dict[str, Any]:
    return {
        "topic_partitions": [
            {"topic_id": ids[topic], "topic_name": topic, "partitions": list(ps)}
            for topic, ps in parts
            if topic in ids
        ]
    }


def _describe(session: Session, request: Any, version: int) -> dict[str, Any]:
    """GMM.consumerGroupDescribe: a group that is not a consumer group is GROUP_ID_NOT_FOUND."""
    room = session_room(session)
    _, ids = _topic_ids(room)
    described = []
    for group_id in request.group_ids[:100]:
        group = ConsumerGroup.objects.filter(room=room, group_id=group_id).first()
        if group is None or group.group_protocol != ConsumerGroup.GroupProtocol.CONSUMER:
            described.append(
                {
                    "error_code": code("GROUP_ID_NOT_FOUND"),
                    "error_message": None,
                    "group_id": group_id,
                    "group_state": "",
                    "group_epoch": 0,
                    "assignment_epoch": 0,
                    "assignor_name": "",
                    "members": [],
                }
            )
            continue
        state = group.kip848_state()
        described.append(
            {
                "error_code": 0,
                "error_message": None,
                "group_id": group_id,
                "group_state": str(state.state()),
                "group_epoch": state.group_epoch,
                "assignment_epoch": state.assignment_epoch,
                "assignor_name": state.preferred_assignor() or kip848.Config().assignors[0],
                "members": [
                    {
                        "member_id": m.member_id,
                        "instance_id": m.instance_id,
                        "rack_id": m.rack_id,
                        "member_epoch": m.member_epoch,
                        "client_id": m.client_id,
                        "client_host": m.client_host or "/127.0.0.1",
                        "subscribed_topic_names": list(m.subscribed),
                        "subscribed_topic_regex": None,
                        "assignment": _described_assignment(m.assigned, ids),
                        "target_assignment": _described_assignment(
                            state.target_of(m.member_id), ids
                        ),
                    }
                    for m in state.members
                ],
            }
        )
    return {"throttle_time_ms": 0, "groups": described}


handlers_register(
    {"ConsumerGroupHeartbeat": _heartbeat, "ConsumerGroupDescribe": _describe},
    {},
)
