"""Share groups over the wire (KIP-932): ShareGroupHeartbeat, ShareFetch and ShareAcknowledge,
thin over services/share_groups.py.

A share consumer (confluent-kafka's ShareConsumer, librdkafka 2.16) heartbeats to the group
coordinator and is told every partition of the group's topic (share groups have no exclusive
assignment); it then opens a share session with the partition leader: ShareFetch with session
epoch 0 names the partitions, later ones (epoch 1, 2, ...) name only what changed, carry the
acknowledgements of what it processed, and get records acquired for it with their delivery
counts. Epoch -1 ends the session and releases what the member still holds; so does the
connection closing. A ShareFetch with nothing to acquire waits, as a Fetch does, until a
Produce in the room wakes it or MaxWaitMs has passed.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from messaging import selectors
from messaging.api.kafka_wire import brokers
from messaging.api.kafka_wire import records as wire_records
from messaging.api.kafka_wire.handlers import (
    POLL_SECONDS,
    db,
    handlers_register,
    lock_check,
    on_session_closed,
    room_wait,
    session_room,
)
from messaging.api.kafka_wire.protocol import SUPPORTED, code
from messaging.api.kafka_wire.session import Session
from messaging.engine import share_group as rules
from messaging.models import Partition, Room
from messaging.services import share_groups as share_services

HEARTBEAT, FETCH, ACKNOWLEDGE = 76, 78, 79
# Bounds LogLab sets on one request (Kafka's are its own configs).
MAX_TOPICS = 100
MAX_ACK_BATCHES = 1000
MAX_WAIT_MS = 30_000


@dataclass
class ShareSession:
    """A connection's share session with this broker: its member and partitions, and the
    epoch the next request must carry."""

    group_id: str
    member_id: str
    room_pk: int
    epoch: int = 0
    partitions: set[tuple[uuid.UUID, int]] = field(default_factory=set)


_sessions: dict[int, ShareSession] = {}


def _topics(room: Room) -> tuple[dict[uuid.UUID, str], dict[str, uuid.UUID]]:
    metas = selectors.kafka_topic_metas(room=room)
    return {m.topic_id: name for name, m in metas.items()}, {
        name: m.topic_id for name, m in metas.items()
    }


# --- ShareGroupHeartbeat --------------------------------------------------------------------


def _heartbeat(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    body: dict[str, Any] = {
        "throttle_time_ms": 0,
        "error_code": 0,
        "error_message": None,
        "member_id": request.member_id or None,
        "member_epoch": request.member_epoch,
        "heartbeat_interval_ms": rules.DEFAULT_HEARTBEAT_INTERVAL_MS,
        "assignment": None,
    }
    locked = lock_check(session, room, SUPPORTED[HEARTBEAT])
    subscribed = request.subscribed_topic_names
    refusal = None
    if locked:
        refusal = ("GROUP_AUTHORIZATION_FAILED", locked)
    elif not (request.group_id or "").strip():
        refusal = ("INVALID_REQUEST", "GroupId can't be empty.")
    elif subscribed is not None and len(subscribed) > MAX_TOPICS:
        refusal = ("INVALID_REQUEST", "Too many topics in one heartbeat.")
    if refusal is not None:
        body.update(error_code=code(refusal[0]), error_message=refusal[1])
        return body
    answer = share_services.client_share_heartbeat(
        room=room,
        group_id=request.group_id,
        member_id=request.member_id or "",
        member_epoch=request.member_epoch,
        subscribed=None if subscribed is None else list(subscribed),
        software=session.software or session.client_id or "kafka client",
        display_name=session.label(),
        new_member_id=str(uuid.uuid4()),
    )
    if answer.error:
        body.update(error_code=code(answer.error), error_message=answer.message)
        return body
    body.update(member_id=answer.member_id, member_epoch=answer.member_epoch)
    if answer.member_epoch >= 0:
        _, ids = _topics(room)
        body["assignment"] = {
            "topic_partitions": [
                {"topic_id": ids[answer.topic], "partitions": list(answer.partitions)}
            ]
            if answer.topic in ids
            else []
        }
    return body


# --- ShareFetch and ShareAcknowledge ---------------------------------------------------------


def _acks(
    topics: Any, by_id: dict[uuid.UUID, str], topic: str
) -> tuple[dict[int, list[rules.Acknowledgement]], bool]:
    """The acknowledgements a request carries for the group's topic, by partition; False
    when it carries more than LogLab takes in one request."""
    acks: dict[int, list[rules.Acknowledgement]] = {}
    count = 0
    for entry in topics or []:
        if by_id.get(entry.topic_id) != topic:
            continue
        for part in entry.partitions:
            for batch in part.acknowledgement_batches or []:
                count += 1
                acks.setdefault(part.partition_index, []).append(
                    rules.Acknowledgement(
                        batch.first_offset, batch.last_offset, tuple(batch.acknowledge_types or ())
                    )
                )
    return acks, count <= MAX_ACK_BATCHES


def _partition_entry(
    index: int, answer: share_services.ClientPartition | None, error: str | None = None
) -> dict[str, Any]:
    return {
        "partition_index": index,
        "error_code": code(error or (answer.error if answer else None)),
        "error_message": None,
        "acknowledge_error_code": code(answer.ack_error if answer else None),
        "acknowledge_error_message": answer.ack_message if answer else None,
        "current_leader": {"leader_id": -1, "leader_epoch": -1},
        "records": b"",
        "acquired_records": [
            {
                "first_offset": block.first_offset,
                "last_offset": block.last_offset,
                "delivery_count": block.delivery_count,
            }
            for block in (answer.acquired if answer else ())
        ],
    }


def _records(room: Room, partition: Partition, acquired: tuple[rules.AcquiredRecords, ...]):
    """The log's records over the acquired ranges, as the client reads them (it keeps only the
    offsets its AcquiredRecords name, as it would of Kafka's whole batches)."""
    if not acquired:
        return b""
    first = min(block.first_offset for block in acquired)
    last = max(block.last_offset for block in acquired)
    read = selectors.kafka_records_read(
        partition=partition,
        offset=first,
        max_bytes=2**30,
        epoch_ms=int(room.created_at.timestamp() * 1000),
    )
    records = [r for r in read.records if r[0] <= last]
    return wire_records.batch_encode(records) if records else b""


def _share_session(session: Session, request: Any, room: Room) -> tuple[ShareSession | None, str]:
    """The share session this request continues, opens (epoch 0) or ends (epoch -1), or why
    not: SHARE_SESSION_NOT_FOUND, INVALID_SHARE_SESSION_EPOCH."""
    epoch = request.share_session_epoch
    current = _sessions.get(id(session))
    if epoch == 0:
        opened = ShareSession(request.group_id or "", request.member_id or "", room.pk)
        _sessions[id(session)] = opened
        return opened, ""
    if current is None or current.member_id != (request.member_id or ""):
        return None, "SHARE_SESSION_NOT_FOUND"
    if epoch != -1 and epoch != current.epoch:
        return None, "INVALID_SHARE_SESSION_EPOCH"
    return current, ""


def _fetch_once(session: Session, request: Any, acks_pending: bool) -> tuple[dict[str, Any], bool]:
    """One try at a ShareFetch: the acknowledgements (only on the first try), then what can
    be acquired. Returns the answer and whether it acquired anything."""
    room = session_room(session)
    base: dict[str, Any] = {
        "throttle_time_ms": 0,
        "error_code": 0,
        "error_message": None,
        "acquisition_lock_timeout_ms": rules.DEFAULT_RECORD_LOCK_DURATION_MS,
        "responses": [],
        "node_endpoints": [],
    }
    locked = lock_check(session, room, SUPPORTED[FETCH])
    if locked:
        return {
            **base,
            "error_code": code("GROUP_AUTHORIZATION_FAILED"),
            "error_message": locked,
        }, True
    current = _sessions.get(id(session))
    group = selectors.share_groups_of(room=room)
    group = next((g for g in group if current and g.group_id == current.group_id), None)
    if current is None or group is None:
        return {**base, "error_code": code("SHARE_SESSION_NOT_FOUND")}, True
    base["acquisition_lock_timeout_ms"] = group.record_lock_duration_ms
    by_id, ids = _topics(room)
    topic_id = ids.get(group.topic.name)
    wanted = {index for tid, index in current.partitions if tid == topic_id}
    others = {(tid, index) for tid, index in current.partitions if tid != topic_id}
    partitions = {p.index: p for p in Partition.objects.filter(topic=group.topic, index__in=wanted)}
    leaders = brokers.leaders(partitions.values())
    led = {index for index, p in partitions.items() if leaders.get(p.pk) == session.broker}
    acks: dict[int, list[rules.Acknowledgement]] = {}
    if acks_pending:
        acks, fits = _acks(request.topics, by_id, group.topic.name)
        if not fits:
            return {**base, "error_code": code("INVALID_REQUEST")}, True
    closing = request.share_session_epoch == -1
    max_records = request.max_records if request.max_records > 0 else 500
    error, answered = share_services.client_share_fetch(
        room=room,
        group_id=group.group_id,
        member_id=current.member_id,
        acks=acks,
        partitions=set() if closing else led,
        max_records=0 if closing else max_records,
        close=closing,
    )
    if error:
        return {**base, "error_code": code(error)}, True
    # The log as the acquisition saw it: a Produce that committed after `partitions` was read
    # moved the log end, and records acquired past the old end were sent as gaps.
    fresh = {
        p.index: p
        for p in Partition.objects.filter(
            topic=group.topic, index__in=[i for i, a in answered.items() if a.acquired]
        )
    }
    topic_entries = []
    for index in sorted(wanted | set(answered)):
        answer = answered.get(index)
        problem = None
        if index not in partitions:
            problem = "UNKNOWN_TOPIC_OR_PARTITION"
        elif index not in led:
            problem = "NOT_LEADER_OR_FOLLOWER"
        entry = _partition_entry(index, answer, problem)
        if answer and answer.acquired and index in fresh:
            entry["records"] = _records(room, fresh[index], answer.acquired)
        if answer or problem or acks_pending:
            topic_entries.append(entry)
    responses = []
    if topic_entries and topic_id is not None:
        responses.append({"topic_id": topic_id, "partitions": topic_entries})
    for tid, index in sorted(others, key=lambda item: (str(item[0]), item[1])):
        responses.append(
            {
                "topic_id": tid,
                "partitions": [_partition_entry(index, None, "UNKNOWN_TOPIC_ID")],
            }
        )
    acquired = any(a.acquired for a in answered.values())
    return {**base, "responses": responses}, acquired or bool(acks) or closing


def _session_update(session: Session, request: Any) -> tuple[ShareSession | None, str]:
    room = session_room(session)
    current, problem = _share_session(session, request, room)
    if current is None:
        return None, problem
    if request.share_session_epoch == -1:
        _sessions.pop(id(session), None)
        return current, ""
    for entry in request.topics or []:
        for part in entry.partitions:
            current.partitions.add((entry.topic_id, part.partition_index))
    for entry in request.forgotten_topics_data or []:
        for index in entry.partitions:
            current.partitions.discard((entry.topic_id, index))
    if len(current.partitions) > MAX_TOPICS * 128:
        return None, "INVALID_REQUEST"
    current.epoch = (
        request.share_session_epoch + 1 if request.share_session_epoch < 2**31 - 1 else 1
    )
    return current, ""


async def _fetch(session: Session, request: Any, version: int) -> dict[str, Any]:
    """A long poll, as Fetch's: answered when something was acquired or acknowledged, or once
    MaxWaitMs has passed."""
    current, problem = await db(_session_update, session, request)
    if current is None:
        return {
            "throttle_time_ms": 0,
            "error_code": code(problem),
            "error_message": None,
            "acquisition_lock_timeout_ms": rules.DEFAULT_RECORD_LOCK_DURATION_MS,
            "responses": [],
            "node_endpoints": [],
        }
    if request.share_session_epoch == -1:
        # The session ended above; the acknowledgements and the release still go through.
        _sessions[id(session)] = current
        try:
            body, _ = await db(_fetch_once, session, request, True)
        finally:
            _sessions.pop(id(session), None)
        return body
    deadline = time.monotonic() + min(max(request.max_wait_ms, 0), MAX_WAIT_MS) / 1000
    first = True
    while True:
        body, done = await db(_fetch_once, session, request, first)
        first = False
        left = deadline - time.monotonic()
        if done or left <= 0 or body["error_code"]:
            return body
        assert session.room_pk is not None
        await room_wait(session.room_pk, min(left, POLL_SECONDS))


def _acknowledge(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    base: dict[str, Any] = {
        "throttle_time_ms": 0,
        "error_code": 0,
        "error_message": None,
        "responses": [],
        "node_endpoints": [],
    }
    locked = lock_check(session, room, SUPPORTED[ACKNOWLEDGE])
    if locked:
        return {**base, "error_code": code("GROUP_AUTHORIZATION_FAILED"), "error_message": locked}
    current, problem = _share_session(session, request, room)
    if current is None:
        return {**base, "error_code": code(problem)}
    closing = request.share_session_epoch == -1
    if closing:
        _sessions.pop(id(session), None)
    else:
        current.epoch = request.share_session_epoch + 1
    group = next(
        (g for g in selectors.share_groups_of(room=room) if g.group_id == current.group_id), None
    )
    if group is None:
        return {**base, "error_code": code("GROUP_ID_NOT_FOUND")}
    by_id, ids = _topics(room)
    acks, fits = _acks(request.topics, by_id, group.topic.name)
    if not fits:
        return {**base, "error_code": code("INVALID_REQUEST")}
    error, answered = share_services.client_share_acknowledge(
        room=room,
        group_id=group.group_id,
        member_id=current.member_id,
        acks=acks,
        close=closing,
    )
    if error:
        return {**base, "error_code": code(error)}
    responses = []
    for entry in request.topics or []:
        parts = []
        for part in entry.partitions:
            answer = answered.get(part.partition_index)
            known = by_id.get(entry.topic_id) == group.topic.name
            parts.append(
                {
                    "partition_index": part.partition_index,
                    "error_code": code(
                        (answer.ack_error if answer else None) if known else "UNKNOWN_TOPIC_ID"
                    ),
                    "error_message": answer.ack_message if answer else None,
                    "current_leader": {"leader_id": -1, "leader_epoch": -1},
                }
            )
        responses.append({"topic_id": entry.topic_id, "partitions": parts})
    return {**base, "responses": responses}


async def _closed(session: Session, room_pk: int) -> None:
    """The connection ended: so does its share session, and what its member held goes back."""
    current = _sessions.pop(id(session), None)
    if current is not None:
        await db(
            share_services.client_share_session_closed,
            room=room_pk,
            group_id=current.group_id,
            member_id=current.member_id,
        )


handlers_register(
    {"ShareGroupHeartbeat": _heartbeat, "ShareAcknowledge": _acknowledge},
    {"ShareFetch": _fetch},
)
on_session_closed(_closed)
