"""What each Kafka request does: thin over the same services and selectors as the board.

A handler gets the decoded request and answers with the response body as a dict (fields by
kafka-python's names; what it leaves out takes the schema's default). Database work runs in
the listener's thread pool (`db`), never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection

from messaging import selectors
from messaging.api.kafka_wire import brokers
from messaging.api.kafka_wire import records as wire_records
from messaging.api.kafka_wire.protocol import ERRORS, SUPPORTED, Api, Header, code
from messaging.api.kafka_wire.session import Session
from messaging.engine.offsets import OffsetOutOfRangeError, check_fetch_offset
from messaging.errors import LogLabError
from messaging.models import Partition, Room, Topic
from messaging.permissions import Forbidden, api_lock_check
from messaging.services import client_records, topics
from messaging.services.client_records import ClientBatch
from messaging.services.clock import room_clock_set

log = logging.getLogger("loglab.kafka")

# Requests' database work: a pool of its own, so a burst of clients cannot starve the web
# app's threads (and the other way round).
EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kafka-wire")
NODE_ID = 1
# How often a waiting request (a Fetch's long poll, a parked JoinGroup) looks again; a Produce
# through this listener wakes the room's fetches at once.
POLL_SECONDS = 0.1

# The locks each API passes in a classroom, the same as the student's button that does the
# same (permissions.REST_PROXY_LOCKS for REST Proxy). Reads pass none.
KAFKA_LOCKS: dict[str, tuple[str, ...]] = {
    "Produce": ("produce",),
    "InitProducerId": ("produce",),
    "CreateTopics": ("settings",),
    "DeleteTopics": ("settings",),
    "CreatePartitions": ("settings",),
    "JoinGroup": ("join",),
    "SyncGroup": ("join",),
    "LeaveGroup": ("join",),
    "OffsetCommit": ("join", "crash"),
    "ConsumerGroupHeartbeat": ("join",),
    "ShareGroupHeartbeat": ("join",),
    "ShareFetch": ("join",),
    "ShareAcknowledge": ("join",),
}


def _in_thread(fn: Callable, args: tuple, kwargs: dict) -> Any:
    # The pool has a fixed number of threads, so each may keep its SQLite connection (opening
    # one costs more than a small Fetch); on PostgreSQL a job's connection goes back to the
    # pool (CONN_MAX_AGE 0, docs/deployment.md), so none outlives its request.
    keep = connection.vendor == "sqlite"
    if not keep:
        close_old_connections()
    try:
        return fn(*args, **kwargs)
    finally:
        if not keep:
            close_old_connections()
        elif connection.errors_occurred:
            if connection.is_usable():
                connection.errors_occurred = False
            else:
                connection.close()


async def db(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(EXECUTOR, functools.partial(_in_thread, fn, args, kwargs))


# --- room wake-ups: a Produce here wakes the room's waiting fetches --------------------------

_wakers: dict[int, asyncio.Event] = {}


def _room_woken(room_pk: int) -> asyncio.Event:
    event = _wakers.get(room_pk)
    if event is None:
        event = _wakers[room_pk] = asyncio.Event()
    return event


def room_wake(room_pk: int) -> None:
    event = _wakers.pop(room_pk, None)
    if event is not None:
        event.set()


async def room_wait(room_pk: int, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_room_woken(room_pk).wait(), timeout=max(0.0, seconds))


# --- the room behind a connection ------------------------------------------------------------


def session_room(session: Session) -> Room:
    assert session.room_pk is not None
    return Room.objects.get(pk=session.room_pk)


def lock_check(session: Session, room: Room, api: Api) -> str | None:
    """None when the call may go ahead; else the message of the instructor's lock."""
    if session.owner:
        return None
    try:
        api_lock_check(room, KAFKA_LOCKS.get(api.name, ()))
    except Forbidden as error:
        return str(error)
    return None


def _default_room_bind(session: Session) -> bool:
    room = selectors.room_find(code=settings.LOGLAB_KAFKA_DEFAULT_ROOM)
    if room is None:
        return False
    session.room_pk, session.room_code = room.pk, room.code
    return True


def _room_clock_start(room_pk: int) -> None:
    """Real clients live in real time: a room whose clock stands still starts at 1x when the
    first client connects. A person can pause it again; the board and the APIs say so."""
    room = Room.objects.get(pk=room_pk)
    if not room.clock_running and room.sim_time_ms == 0:
        room_clock_set(room=room, running=True, speed=1.0)


async def _bind(session: Session) -> None:
    assert session.room_pk is not None
    session.listener.bind(session, session.room_pk)
    await db(_room_clock_start, session.room_pk)


# --- ApiVersions and SASL --------------------------------------------------------------------


def _api_keys(apis: list[Api]) -> list[dict[str, int]]:
    return [
        {"api_key": a.key, "min_version": a.min_version, "max_version": a.max_version} for a in apis
    ]


def api_versions_unsupported() -> dict[str, Any]:
    return {
        "error_code": ERRORS["UNSUPPORTED_VERSION"],
        "api_keys": _api_keys([SUPPORTED[18]]),
    }


def _api_versions(session: Session, request: Any, version: int) -> dict[str, Any]:
    if version >= 3:
        name = (request.client_software_name or "")[:40]
        release = (request.client_software_version or "")[:30]
        if name:
            session.software = f"{name} {release}".strip()
    return {"error_code": 0, "api_keys": _api_keys(list(SUPPORTED.values())), "throttle_time_ms": 0}


def _sasl_handshake(session: Session, request: Any, version: int) -> dict[str, Any]:
    if session.authenticated or session.handshake_version is not None:
        session.closing = True
        return {"error_code": ERRORS["ILLEGAL_SASL_STATE"], "mechanisms": ["PLAIN"]}
    if request.mechanism != "PLAIN":
        return {"error_code": ERRORS["UNSUPPORTED_SASL_MECHANISM"], "mechanisms": ["PLAIN"]}
    session.handshake_version = version
    # v0: the token comes next as a bare frame; v1: wrapped in SaslAuthenticate.
    session.raw_sasl = version == 0
    return {"error_code": 0, "mechanisms": ["PLAIN"]}


def _plain_login(session: Session, token: bytes) -> str | None:
    """RFC 4616's `[authzid] NUL authcid NUL passwd`: None when it names a principal."""
    parts = token.split(b"\x00")
    if len(parts) != 3:
        return "Invalid SASL/PLAIN response: expected 3 tokens"
    authzid, username, password = (p.decode("utf-8", "replace") for p in parts)
    if not username:
        return "Authentication failed: username not specified"
    if authzid and authzid != username:
        return (
            "Authentication failed: Client requested an authorization id that is different "
            "from username"
        )
    principal = selectors.kafka_principal(username=username, password=password)
    if principal is None:
        return "Authentication failed: Invalid username or password"
    if not session.listener.room_admit(principal.room.pk):
        return (
            f"Room {principal.room.code} has {settings.LOGLAB_KAFKA_MAX_CONNECTIONS_PER_ROOM} "
            "client connections, the most LogLab allows: close some and try again"
        )
    session.room_pk, session.room_code = principal.room.pk, principal.room.code
    session.owner = principal.student is None
    if principal.student is not None:
        session.student_pk, session.student_name = principal.student.pk, principal.name
    return None


async def _sasl_authenticate(session: Session, token: bytes) -> str | None:
    error = await db(_plain_login, session, bytes(token))
    if error is None:
        session.authenticated = True
        session.raw_sasl = False
        await _bind(session)
    else:
        session.closing = True
        log.info("kafka: %s failed SASL/PLAIN: %s", session.peer, error)
    return error


async def sasl_raw_token(session: Session, token: bytes) -> bytes:
    """SaslHandshake v0's bare token; an empty frame answers success, and failure closes."""
    await _sasl_authenticate(session, token)
    return b""


# --- Metadata and topics ---------------------------------------------------------------------


def _topic_metadata(
    topic: Topic, states: dict[int, Any] | None = None, cluster: dict[int, str] | None = None
) -> dict[str, Any]:
    """A topic's partitions with their leaders, replicas and ISRs (#16: api/kafka_wire/brokers)."""
    states = brokers.replica_states([topic]) if states is None else states
    cluster = {NODE_ID: "up"} if cluster is None else cluster
    return {
        "error_code": 0,
        "name": topic.name,
        # Metadata v10+ (KIP-516): what ConsumerGroupHeartbeat names topics by (KIP-848).
        "topic_id": selectors.kafka_topic_id(topic),
        "is_internal": False,
        "partitions": [
            brokers.partition_metadata(p, states.get(p.pk), cluster)
            for p in sorted(topic.partitions.all(), key=lambda p: p.index)
        ],
    }


class _NoTopics:
    """A Metadata request for the brokers alone (an empty topic list)."""

    topics: list[Any] = []
    allow_auto_topic_creation = False


def _metadata_by_topic_id(room: Room, request: Any, version: int) -> list[dict[str, Any]] | None:
    """Metadata v12 asks for topics by id (a null name): librdkafka does, for the topic ids a
    ConsumerGroupHeartbeat assigned it. An id the room does not have is UNKNOWN_TOPIC_ID."""
    if version < 12 or not request.topics or any(t.name is not None for t in request.topics):
        return None
    topics = {selectors.kafka_topic_id(t): t for t in selectors.kafka_topics(room=room)}
    cluster = brokers.room_brokers(room.pk)
    states = brokers.replica_states(topics.values())
    answered = []
    for wanted in request.topics:
        topic = topics.get(wanted.topic_id)
        if topic is None:
            answered.append(
                {
                    "error_code": ERRORS["UNKNOWN_TOPIC_ID"],
                    "name": None,
                    "topic_id": wanted.topic_id,
                    "is_internal": False,
                    "partitions": [],
                }
            )
        else:
            answered.append(_topic_metadata(topic, states, cluster))
    return answered


def _metadata(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    by_id = _metadata_by_topic_id(room, request, version)
    if by_id is not None:
        return {**_metadata(session, _NoTopics(), version), "topics": by_id}
    asked = None if request.topics is None else [t.name for t in request.topics]
    if version == 0 and asked == []:
        asked = None  # v0: an empty list means every topic
    found = {t.name: t for t in selectors.kafka_topics(room=room, names=asked)}
    cluster = brokers.room_brokers(room.pk)
    states = brokers.replica_states(found.values())
    answered: list[dict[str, Any]] = []
    if asked is None:
        answered = [_topic_metadata(t, states, cluster) for t in found.values()]
    else:
        # auto.create.topics.enable is true on a Kafka broker by default (num.partitions=1):
        # a producer's first Metadata for a new topic creates it.
        auto = version < 4 or bool(request.allow_auto_topic_creation)
        for name in dict.fromkeys(asked):
            topic = found.get(name)
            if topic is None and auto and lock_check(session, room, SUPPORTED[19]) is None:
                try:
                    topic = topics.topic_create(room=room, name=name, partitions=1)
                except LogLabError:
                    topic = None
            if topic is None:
                answered.append(
                    {
                        "error_code": ERRORS["UNKNOWN_TOPIC_OR_PARTITION"],
                        "name": name,
                        "is_internal": False,
                        "partitions": [],
                    }
                )
            else:
                answered.append(_topic_metadata(topic, states, cluster))
    return {
        "throttle_time_ms": 0,
        "brokers": brokers.metadata_brokers(session, cluster),
        "cluster_id": f"loglab-{room.code}",
        "controller_id": brokers.controller_id(cluster),
        "topics": answered,
    }


def _configs(raw: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    for entry in raw or ():
        if entry.name not in topics.TOPIC_CONFIGS:
            raise _ConfigError(
                f"LogLab sets {', '.join(sorted(topics.TOPIC_CONFIGS))} at creation, "
                f"not {entry.name}."
            )
        changes[topics.TOPIC_CONFIGS[entry.name]] = entry.value
    return changes


class _ConfigError(Exception):
    pass


def _create_topics(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    locked = lock_check(session, room, SUPPORTED[19])
    cluster = brokers.room_brokers(room.pk)
    answers = []
    for wanted in request.topics:
        answer = {"name": wanted.name, "error_code": 0, "error_message": None}
        running = sum(1 for state in cluster.values() if state != "stopped")
        if locked:
            answer.update(error_code=ERRORS["TOPIC_AUTHORIZATION_FAILED"], error_message=locked)
        elif not (wanted.replication_factor == -1 or 1 <= wanted.replication_factor <= running):
            # Kafka's own words.
            answer.update(
                error_code=ERRORS["INVALID_REPLICATION_FACTOR"],
                error_message=(
                    f"Unable to replicate the partition {wanted.replication_factor} time(s): "
                    "The target replication factor of "
                    f"{wanted.replication_factor} cannot be reached because only {running} "
                    "broker(s) are registered."
                ),
            )
        elif wanted.assignments:
            answer.update(
                error_code=ERRORS["INVALID_REPLICA_ASSIGNMENT"],
                error_message="LogLab places replicas itself: leave replica assignments out.",
            )
        elif Topic.objects.filter(room=room, name=wanted.name).exists():
            answer.update(
                error_code=ERRORS["TOPIC_ALREADY_EXISTS"],
                error_message=f"Topic '{wanted.name}' already exists.",
            )
        else:
            partitions = 1 if wanted.num_partitions == -1 else wanted.num_partitions
            try:
                changes = _configs(wanted.configs)
                if not (version >= 1 and request.validate_only):
                    # default.replication.factor is 1, as on a Kafka broker.
                    topics.topic_create_configured(
                        room=room,
                        name=wanted.name,
                        partitions=partitions,
                        replication_factor=max(1, wanted.replication_factor),
                        **changes,
                    )
            except _ConfigError as error:
                answer.update(error_code=ERRORS["INVALID_CONFIG"], error_message=str(error))
            except LogLabError as error:
                name = "INVALID_PARTITIONS" if error.field == "partitions" else "INVALID_REQUEST"
                if error.field == "name":
                    name = "INVALID_TOPIC_EXCEPTION"
                elif error.field == "replication_factor":
                    name = "INVALID_REPLICATION_FACTOR"
                elif error.field in ("min.insync.replicas", "unclean.leader.election.enable"):
                    name = "INVALID_CONFIG"
                answer.update(error_code=ERRORS[name], error_message=str(error))
        answers.append(answer)
    return {"throttle_time_ms": 0, "topics": answers}


def _delete_topics(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    locked = lock_check(session, room, SUPPORTED[20])
    answers = []
    for name in request.topic_names:
        answer = {"name": name, "error_code": 0}
        topic = Topic.objects.filter(room=room, name=name).first()
        if locked:
            answer["error_code"] = ERRORS["TOPIC_AUTHORIZATION_FAILED"]
        elif topic is None:
            answer["error_code"] = ERRORS["UNKNOWN_TOPIC_OR_PARTITION"]
        else:
            topics.topic_delete(topic=topic)
        answers.append(answer)
    return {"throttle_time_ms": 0, "responses": answers}


def _create_partitions(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    locked = lock_check(session, room, SUPPORTED[37])
    answers = []
    for wanted in request.topics:
        answer = {"name": wanted.name, "error_code": 0, "error_message": None}
        topic = Topic.objects.filter(room=room, name=wanted.name).first()
        if locked:
            answer.update(error_code=ERRORS["TOPIC_AUTHORIZATION_FAILED"], error_message=locked)
        elif topic is None:
            answer.update(
                error_code=ERRORS["UNKNOWN_TOPIC_OR_PARTITION"],
                error_message=f"Topic '{wanted.name}' does not exist.",
            )
        elif wanted.count <= topic.partition_count:
            answer.update(
                error_code=ERRORS["INVALID_PARTITIONS"],
                error_message=(
                    f"Topic currently has {topic.partition_count} partitions, which is higher "
                    f"than the requested {wanted.count}."
                ),
            )
        elif not request.validate_only:
            try:
                topics.topic_add_partitions(topic=topic, partitions=wanted.count)
            except LogLabError as error:
                answer.update(error_code=ERRORS["INVALID_PARTITIONS"], error_message=str(error))
        answers.append(answer)
    return {"throttle_time_ms": 0, "results": answers}


_TOPIC_CONFIG_VALUES: dict[str, Callable[[Topic], str]] = {
    "cleanup.policy": lambda t: t.cleanup_policy,
    "retention.ms": lambda t: str(t.retention_ms),
    "retention.bytes": lambda t: str(t.retention_bytes),
    "delete.retention.ms": lambda t: str(t.delete_retention_ms),
    "segment.ms": lambda t: str(t.segment_ms),
    "max.message.bytes": lambda t: str(settings.LOGLAB_KAFKA_MAX_FRAME_BYTES),
    "min.insync.replicas": lambda t: str(t.min_insync_replicas),
    "unclean.leader.election.enable": lambda t: str(t.unclean_leader_election_enable).lower(),
    "message.timestamp.type": lambda t: "CreateTime",
}


def _describe_configs(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    results = []
    for resource in request.resources:
        result: dict[str, Any] = {
            "error_code": 0,
            "error_message": None,
            "resource_type": resource.resource_type,
            "resource_name": resource.resource_name,
            "configs": [],
        }
        if resource.resource_type == 2:  # TOPIC
            topic = Topic.objects.filter(room=room, name=resource.resource_name).first()
            if topic is None:
                result.update(
                    error_code=ERRORS["UNKNOWN_TOPIC_OR_PARTITION"],
                    error_message=f"Topic '{resource.resource_name}' does not exist.",
                )
            else:
                wanted = resource.configuration_keys
                result["configs"] = [
                    {
                        "name": name,
                        "value": value(topic),
                        "read_only": name not in topics.TOPIC_CONFIGS,
                        "is_default": False,
                        "config_source": 1,  # DYNAMIC_TOPIC_CONFIG
                        "is_sensitive": False,
                        "synonyms": [],
                    }
                    for name, value in _TOPIC_CONFIG_VALUES.items()
                    if wanted is None or name in wanted
                ]
        else:
            result.update(
                error_code=ERRORS["INVALID_REQUEST"],
                error_message="LogLab describes topic configs only.",
            )
        results.append(result)
    return {"throttle_time_ms": 0, "results": results}


# --- Produce, Fetch, ListOffsets -------------------------------------------------------------


def _batches(raw: bytes | None, version: int) -> list[ClientBatch]:
    decoded = wire_records.batches_decode(
        raw or b"",
        max_records=settings.LOGLAB_MAX_FETCH * 20,
        max_uncompressed_bytes=settings.LOGLAB_KAFKA_MAX_FRAME_BYTES * 16,
    )
    if len(decoded) != 1:
        # ProduceRequest.validateRecords: v3 and later carry exactly one batch per partition.
        raise wire_records.RecordsError(
            "INVALID_RECORD",
            "Produce requests with version 3 and above are only allowed to contain exactly "
            "one record batch per partition.",
        )
    if decoded[0].compression == wire_records.COMPRESSION_ZSTD and version < 7:
        raise wire_records.RecordsError(
            "UNSUPPORTED_COMPRESSION_TYPE", "zstd needs Produce v7 or later (KIP-110)."
        )
    # The decoded records go to the service as they are: a WireRecord has a ClientRecord's
    # fields (key, value, timestamp_ms, headers), and copying 500 of them per batch showed.
    return [
        ClientBatch(
            producer_id=b.producer_id,
            producer_epoch=b.producer_epoch,
            base_sequence=b.base_sequence,
            records=b.records,
        )
        for b in decoded
    ]


def _produce(session: Session, request: Any, version: int) -> dict[str, Any] | None:
    return produces(session, [(request, version)])[0]


def produces(session: Session, requests: list[tuple[Any, int]]) -> list[dict[str, Any] | None]:
    """Produce requests of one connection, in the order they came: stored in one transaction
    (the listener hands over those already waiting in the socket together, which spares
    the per-request work of the room's lock and event), answered one by one."""
    room = session_room(session)
    locked = lock_check(session, room, SUPPORTED[0])
    refused: dict[tuple[int, str, int], tuple[str, str | None]] = {}
    writes = []
    for n, (request, version) in enumerate(requests):
        for topic_data in request.topic_data:
            for partition_data in topic_data.partition_data:
                at = (n, topic_data.name, partition_data.index)
                if locked:
                    refused[at] = ("TOPIC_AUTHORIZATION_FAILED", locked)
                elif request.transactional_id is not None:
                    refused[at] = (
                        "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
                        "LogLab's wire listener does not run transactions yet.",
                    )
                elif request.acks not in (-1, 0, 1):
                    refused[at] = ("INVALID_REQUIRED_ACKS", "acks is -1 (all), 0 or 1.")
                else:
                    try:
                        batches = _batches(partition_data.records, version)
                    except wire_records.RecordsError as error:
                        refused[at] = (error.error, error.message)
                    else:
                        writes.append((at, batches))
    # One connection's requests share their acks (a producer's setting); a mix is stored at
    # the strictest, all.
    asked = {request.acks for request, _ in requests}
    acks = -1 if -1 in asked or len(asked) != 1 else asked.pop()
    answers = (
        dict(
            zip(
                (at for at, _ in writes),
                client_records.client_produce(
                    room=room,
                    writes=[(at[1], at[2], batches) for at, batches in writes],
                    producer=session.label(),
                    broker=session.broker,
                    acks=acks,
                ),
                strict=True,
            )
        )
        if writes
        else {}
    )
    bodies: list[dict[str, Any] | None] = []
    for n, (request, _version) in enumerate(requests):
        if request.acks == 0:
            bodies.append(None)
            failed = any(
                (n, t.name, p.index) in refused or answers[(n, t.name, p.index)].error is not None
                for t in request.topic_data
                for p in t.partition_data
            )
            if failed:
                # acks=0 gets no answer: Kafka closes the connection instead, so that the
                # producer refreshes its metadata (KafkaApis.handleProduceRequest).
                session.closing = True
            continue
        by_topic: dict[str, list[dict[str, Any]]] = {}
        for topic_data in request.topic_data:
            for partition_data in topic_data.partition_data:
                at = (n, topic_data.name, partition_data.index)
                entry: dict[str, Any] = {"index": at[2], "log_append_time_ms": -1}
                if at in refused:
                    name, message = refused[at]
                    entry.update(error_code=code(name), base_offset=-1, error_message=message)
                else:
                    result = answers[at]
                    entry.update(
                        error_code=code(result.error),
                        base_offset=result.base_offset,
                        log_start_offset=result.log_start_offset,
                        error_message=result.message,
                    )
                    if result.wait is not None:
                        # acks=all: answered once the ISR has the records (brokers.acks_wait).
                        entry["_wait"] = (*result.wait, request.timeout_ms)
                by_topic.setdefault(at[1], []).append(entry)
        bodies.append(
            {
                "responses": [{"name": t, "partition_responses": e} for t, e in by_topic.items()],
                "throttle_time_ms": 0,
            }
        )
    return bodies


def _init_producer_id(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    locked = lock_check(session, room, SUPPORTED[22])
    if locked:
        return {"error_code": ERRORS["CLUSTER_AUTHORIZATION_FAILED"]}
    if request.transactional_id is not None:
        return {"error_code": ERRORS["TRANSACTIONAL_ID_AUTHORIZATION_FAILED"]}
    producer_id, epoch = client_records.client_producer_id_init(room=room)
    return {
        "throttle_time_ms": 0,
        "error_code": 0,
        "producer_id": producer_id,
        "producer_epoch": epoch,
    }


def _partitions(room: Room, wanted: list[tuple[str, int]]) -> dict[tuple[str, int], Partition]:
    names = {t for t, _ in wanted}
    return {
        (p.topic.name, p.index): p
        for p in Partition.objects.filter(topic__room=room, topic__name__in=names).select_related(
            "topic"
        )
    }


def _fetch_once(
    room: Room, request: Any, broker: int = NODE_ID
) -> tuple[list[dict[str, Any]], int]:
    epoch_ms = int(room.created_at.timestamp() * 1000)
    wanted = [(t.topic, p.partition) for t in request.topics for p in t.partitions]
    found = _partitions(room, wanted)
    leaders = brokers.leaders(found.values())
    budget = max(1, request.max_bytes)
    size = 0
    responses: list[dict[str, Any]] = []
    for topic in request.topics:
        answered = []
        for asked in topic.partitions:
            partition = found.get((topic.topic, asked.partition))
            entry: dict[str, Any] = {
                "partition_index": asked.partition,
                "high_watermark": -1,
                "last_stable_offset": -1,
                "log_start_offset": -1,
                "aborted_transactions": None,
                "preferred_read_replica": -1,
                "records": None,
            }
            if partition is None:
                entry["error_code"] = ERRORS["UNKNOWN_TOPIC_OR_PARTITION"]
            elif leaders.get(partition.pk) != broker:
                # Only the leader serves consumers: the client refreshes its metadata.
                entry["error_code"] = ERRORS["NOT_LEADER_OR_FOLLOWER"]
            elif not _fetchable(partition, asked.fetch_offset):
                entry.update(
                    error_code=ERRORS["OFFSET_OUT_OF_RANGE"],
                    high_watermark=partition.consumable_end,
                    last_stable_offset=partition.consumable_end,
                    log_start_offset=partition.log_start_offset,
                )
            else:
                read = selectors.kafka_records_read(
                    partition=partition,
                    offset=asked.fetch_offset,
                    max_bytes=max(1, min(asked.partition_max_bytes, budget - size))
                    if size < budget
                    else 1,
                    epoch_ms=epoch_ms,
                )
                records = b""
                if read.records and size < budget:
                    records = wire_records.batch_encode(read.records)
                    size += len(records)
                entry.update(
                    error_code=0,
                    high_watermark=read.high_watermark,
                    last_stable_offset=read.high_watermark,
                    log_start_offset=read.log_start_offset,
                    records=records,
                )
            answered.append(entry)
        responses.append({"topic": topic.topic, "partitions": answered})
    return responses, size


def _fetchable(partition: Partition, offset: int) -> bool:
    try:
        check_fetch_offset(offset, partition.log_start_offset, partition.log_end_offset)
    except OffsetOutOfRangeError:
        return False
    return True


async def _fetch(session: Session, request: Any, version: int) -> dict[str, Any]:
    """A long poll: answered once min_bytes are there or max_wait_ms has passed."""
    deadline = time.monotonic() + min(max(request.max_wait_ms, 0), 30_000) / 1000
    room = await db(session_room, session)
    while True:
        responses, size = await db(_fetch_once, room, request, session.broker)
        left = deadline - time.monotonic()
        errors = any(p["error_code"] for t in responses for p in t["partitions"])
        if size >= max(request.min_bytes, 1) or left <= 0 or errors:
            break
        assert session.room_pk is not None
        await room_wait(session.room_pk, min(left, POLL_SECONDS))
    # Fetch sessions (KIP-227) are not kept: session id 0 tells the client to send full fetches.
    return {"throttle_time_ms": 0, "error_code": 0, "session_id": 0, "responses": responses}


def _list_offsets(session: Session, request: Any, version: int) -> dict[str, Any]:
    room = session_room(session)
    epoch_ms = int(room.created_at.timestamp() * 1000)
    wanted = [(t.name, p.partition_index) for t in request.topics for p in t.partitions]
    found = _partitions(room, wanted)
    leaders = brokers.leaders(found.values())
    topics_out = []
    for topic in request.topics:
        answered = []
        for asked in topic.partitions:
            partition = found.get((topic.name, asked.partition_index))
            entry: dict[str, Any] = {
                "partition_index": asked.partition_index,
                "timestamp": -1,
                "offset": -1,
                "leader_epoch": 0,
            }
            if partition is None:
                entry["error_code"] = ERRORS["UNKNOWN_TOPIC_OR_PARTITION"]
            elif leaders.get(partition.pk) != session.broker:
                entry["error_code"] = ERRORS["NOT_LEADER_OR_FOLLOWER"]
            elif asked.timestamp == -1:  # LATEST: the high watermark, for read_uncommitted
                entry.update(error_code=0, offset=partition.consumable_end)
            elif asked.timestamp == -2:  # EARLIEST
                entry.update(error_code=0, offset=partition.log_start_offset)
            elif asked.timestamp < 0:
                entry.update(error_code=0, offset=partition.consumable_end)  # -3 MAX_TIMESTAMP
            else:
                found_at = selectors.kafka_offset_for_time(
                    partition=partition, timestamp_ms=asked.timestamp, epoch_ms=epoch_ms
                )
                if found_at is not None:
                    # The record found, with its own timestamp (not the one asked for).
                    entry.update(error_code=0, offset=found_at[0], timestamp=found_at[1])
                else:
                    entry["error_code"] = 0
            answered.append(entry)
        topics_out.append({"name": topic.name, "partitions": answered})
    return {"throttle_time_ms": 0, "topics": topics_out}


# --- dispatch ----------------------------------------------------------------------------------

Handler = Callable[[Session, Any, int], Any]

_SYNC: dict[str, Handler] = {
    "Metadata": _metadata,
    "CreateTopics": _create_topics,
    "DeleteTopics": _delete_topics,
    "CreatePartitions": _create_partitions,
    "DescribeConfigs": _describe_configs,
    "Produce": _produce,
    "InitProducerId": _init_producer_id,
    "ListOffsets": _list_offsets,
}
_ASYNC: dict[str, Callable[[Session, Any, int], Awaitable[dict[str, Any]]]] = {
    "Fetch": _fetch,
}


def handlers_register(sync: dict[str, Handler], asynchronous: dict[str, Any]) -> None:
    _SYNC.update(sync)
    _ASYNC.update(asynchronous)


async def handle(session: Session, api: Api, header: Header, request: Any) -> dict[str, Any] | None:
    version = header.api_version
    if api.name == "ApiVersions":
        return _api_versions(session, request, version)
    if api.name == "SaslHandshake":
        return _sasl_handshake(session, request, version)
    if api.name == "SaslAuthenticate":
        if session.handshake_version != 1 or session.authenticated:
            session.closing = True
            return {
                "error_code": ERRORS["ILLEGAL_SASL_STATE"],
                "error_message": "SaslAuthenticate comes once, after SaslHandshake v1.",
                "auth_bytes": b"",
            }
        error = await _sasl_authenticate(session, request.auth_bytes)
        return {
            "error_code": ERRORS["SASL_AUTHENTICATION_FAILED"] if error else 0,
            "error_message": error,
            "auth_bytes": b"",
            "session_lifetime_ms": 0,
        }
    if session.handshake_version is not None and not session.authenticated:
        # SaslServerAuthenticator: anything but the token during the exchange ends it.
        session.closing = True
        log.info("kafka: %s sent %s during the SASL exchange", session.peer, api.name)
        return None
    if session.room_pk is None:
        # No SASL at all: a PLAINTEXT client, which goes to the default room.
        if not await db(_default_room_bind, session):
            session.closing = True
            log.info(
                "kafka: no default room %s for a client without SASL",
                settings.LOGLAB_KAFKA_DEFAULT_ROOM,
            )
            return None
        await _bind(session)
    if await brokers.refused(session, db):
        return None  # a broker this room does not run: the connection closes
    if api.name in _ASYNC:
        return await _ASYNC[api.name](session, request, version)
    handler = _SYNC.get(api.name)
    if handler is None:
        session.closing = True
        return None
    body = await db(handler, session, request, version)
    if api.name == "Produce" and session.room_pk is not None:
        room_wake(session.room_pk)
        await brokers.acks_wait([body], db)
    return body


def produces_ready(session: Session) -> bool:
    """Whether this session's Produce requests go straight to the handler in `handle` (so
    that several may be handed over together: `produces_handle`)."""
    return session.room_pk is not None and (
        session.handshake_version is None or session.authenticated
    )


async def produces_handle(
    session: Session, requests: list[tuple[Any, int]]
) -> list[dict[str, Any] | None]:
    if await brokers.refused(session, db):
        return [None] * len(requests)
    bodies = await db(produces, session, requests)
    if session.room_pk is not None:
        room_wake(session.room_pk)
    await brokers.acks_wait(bodies, db)
    return bodies


_closers: list[Callable[[Session, int], Awaitable[None]]] = []


def on_session_closed(closer: Callable[[Session, int], Awaitable[None]]) -> None:
    _closers.append(closer)


async def session_closed(session: Session, room_pk: int) -> None:
    for closer in _closers:
        try:
            await closer(session, room_pk)
        except Exception:
            log.exception("kafka: cleaning up after %s", session.peer)
