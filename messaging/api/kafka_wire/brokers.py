"""A room's brokers over the wire (#16): each broker's own port, Metadata's brokers, leaders
and ISRs, connections to a stopped broker, and acks=all answers that wait for the ISR.

Ports: broker 1 listens on the listener's port (the bootstrap address), broker N on that port
+ N - 1 (9092-9096 by default), one socket per broker id shared by every room; a port taken by
something else is replaced by a free one, which Metadata advertises. A connection knows its
broker by the port it came to. Once a connection is bound to a room (after SASL, or at the
first request of a client without SASL), it is closed when that room has no such broker or the
broker is stopped: the client sees a broker that is down, as when a Kafka broker's process is
gone, and turns to the brokers Metadata lists. The room's broker states are read at most every
CACHE_SECONDS per room and process.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from messaging.api.kafka_wire.protocol import ERRORS, code
from messaging.api.kafka_wire.session import Session
from messaging.engine import replication as rep
from messaging.models import Partition, PartitionReplicas, Topic
from messaging.services import replication as replication_service

log = logging.getLogger("loglab.kafka")

CACHE_SECONDS = 0.2
# An acks=all request waiting for the ISR looks again this often (the room's step, ten times a
# second, is what moves the high watermark).
ACKS_POLL_SECONDS = 0.05
MAX_ACKS_WAIT_SECONDS = 30.0


# --- ports -------------------------------------------------------------------------------------


async def brokers_listen(
    host: str, port: int, serve: Callable[..., Awaitable[None]], limit: int
) -> tuple[dict[int, int], list[asyncio.base_events.Server]]:
    """Sockets for brokers 2..5 beside broker 1's `port`: {broker id: port} and the servers."""
    ports = {1: port}
    servers = []
    for broker in range(2, rep.MAX_BROKERS + 1):
        wanted = port + broker - 1
        server = None
        if wanted <= 65535:
            try:
                server = await asyncio.start_server(serve, host, wanted, limit=limit)
            except OSError:
                server = None
        if server is None:
            server = await asyncio.start_server(serve, host, 0, limit=limit)
            log.info("kafka: port %s is taken; broker %s listens on another", wanted, broker)
        servers.append(server)
        ports[broker] = server.sockets[0].getsockname()[1]
    return ports, servers


def broker_ports(session: Session) -> dict[int, int]:
    return getattr(session.listener, "broker_ports", None) or {1: session.port}


# --- the room's brokers, as this process last read them -----------------------------------------

_seen: dict[int, tuple[float, dict[int, str]]] = {}


def _cached(room_pk: int) -> dict[int, str] | None:
    seen = _seen.get(room_pk)
    if seen is None or time.monotonic() > seen[0]:
        return None
    return seen[1]


def room_brokers(room_pk: int) -> dict[int, str]:
    """The room's brokers and their states (database work: call it in the listener's pool)."""
    brokers = replication_service.brokers_of(room_pk)
    _seen[room_pk] = (time.monotonic() + CACHE_SECONDS, brokers)
    return brokers


def _refusal(session: Session, brokers: dict[int, str]) -> str | None:
    state = brokers.get(session.broker)
    if state is None:
        return f"room {session.room_code} has no broker {session.broker}"
    if state == rep.STOPPED:
        return f"broker {session.broker} of room {session.room_code} is stopped"
    return None


async def refused(session: Session, db: Callable[..., Awaitable[Any]]) -> bool:
    """Whether this connection goes to a broker its room does not run; if so it is closed."""
    if session.room_pk is None:
        return False
    brokers = _cached(session.room_pk)
    if brokers is None:
        brokers = await db(room_brokers, session.room_pk)
    reason = _refusal(session, brokers)
    if reason is not None:
        session.closing = True
        log.info("kafka: closed %s: %s", session.peer, reason)
        return True
    return False


# --- Metadata ----------------------------------------------------------------------------------


def metadata_brokers(session: Session, brokers: dict[int, str]) -> list[dict[str, Any]]:
    """The live brokers (a stopped one is not registered), each at its own port."""
    ports = broker_ports(session)
    return [
        {"node_id": b, "host": session.host, "port": ports.get(b, session.port)}
        for b, state in sorted(brokers.items())
        if state != rep.STOPPED
    ]


def controller_id(brokers: dict[int, str]) -> int:
    chosen = rep.controller(brokers)
    return -1 if chosen is None else chosen


def coordinator(session: Session) -> tuple[int, int]:
    """The group coordinator's broker and port: the first running broker (Kafka's is the
    leader of the group's __consumer_offsets partition, which moves when its broker stops)."""
    assert session.room_pk is not None
    node = controller_id(room_brokers(session.room_pk))
    node = node if node > 0 else session.broker
    return node, broker_ports(session).get(node, session.port)


def replica_states(topics: Iterable[Topic]) -> dict[int, rep.PartitionState]:
    """Partition pk -> replica state, for the replicated topics among `topics` (one query)."""
    replicated = [t.pk for t in topics if t.replication_factor > 1]
    if not replicated:
        return {}
    return {
        row.partition_id: rep.PartitionState.from_dict(row.state)
        for row in PartitionReplicas.objects.filter(partition__topic_id__in=replicated)
    }


def partition_metadata(
    partition: Partition, state: rep.PartitionState | None, brokers: dict[int, str]
) -> dict[str, Any]:
    if state is None:
        # One replica, on broker 1.
        up = rep.single_replica_leader(brokers) is not None
        return {
            "error_code": 0 if up else ERRORS["LEADER_NOT_AVAILABLE"],
            "partition_index": partition.index,
            "leader_id": 1 if up else -1,
            "leader_epoch": 0,
            "replica_nodes": [1],
            "isr_nodes": [1],
            "offline_replicas": [] if up else [1],
        }
    return {
        "error_code": 0 if state.leader is not None else ERRORS["LEADER_NOT_AVAILABLE"],
        "partition_index": partition.index,
        "leader_id": state.leader if state.leader is not None else -1,
        "leader_epoch": state.leader_epoch,
        "replica_nodes": list(state.brokers),
        "isr_nodes": list(state.isr),
        "offline_replicas": [
            b for b in state.brokers if brokers.get(b, rep.STOPPED) == rep.STOPPED
        ],
    }


def leaders(partitions: Iterable[Partition]) -> dict[int, int | None]:
    """Partition pk -> the broker leading it (None: offline), for Fetch and ListOffsets."""
    partitions = list(partitions)
    states = replica_states({p.topic.pk: p.topic for p in partitions}.values())
    brokers: dict[int, str] | None = None
    answer: dict[int, int | None] = {}
    for p in partitions:
        state = states.get(p.pk)
        if state is not None:
            answer[p.pk] = state.leader
            continue
        if brokers is None:
            # A Fetch is the listener's hottest request: the cached read, as for connections.
            brokers = _cached(p.topic.room_id) or room_brokers(p.topic.room_id)
        answer[p.pk] = rep.single_replica_leader(brokers)
    return answer


def not_leader(partition: Partition, leader: int | None, broker: int) -> str:
    who = "no leader (offline)" if leader is None else f"broker {leader}"
    return f"{partition} is led by {who}, not by broker {broker}."


# --- acks=all ----------------------------------------------------------------------------------


async def acks_wait(bodies: list[dict[str, Any] | None], db: Callable[..., Awaitable[Any]]) -> None:
    """Answer each acks=all partition that waits for the ISR (its entry carries "_wait": the
    partition, the offset the high watermark must reach, the leader epoch and the request's
    timeout) once it is committed, or with Kafka's error: NOT_LEADER_OR_FOLLOWER (the leader
    changed), NOT_ENOUGH_REPLICAS_AFTER_APPEND, or REQUEST_TIMED_OUT."""
    waits: list[tuple[dict[str, Any], tuple[int, int, int]]] = []
    timeout = 0.0
    for body in bodies:
        if body is None:
            continue
        for topic in body["responses"]:
            for entry in topic["partition_responses"]:
                marker = entry.pop("_wait", None)
                if marker is not None:
                    pk, required, epoch, timeout_ms = marker
                    waits.append((entry, (pk, required, epoch)))
                    timeout = max(timeout, min(max(timeout_ms, 0) / 1000, MAX_ACKS_WAIT_SECONDS))
    deadline = time.monotonic() + timeout
    while waits:
        outcomes = await db(replication_service.acks_outcomes, [w for _, w in waits])
        still = []
        for (entry, wait), outcome in zip(waits, outcomes, strict=True):
            if outcome == "waiting":
                still.append((entry, wait))
            elif outcome != "ok":
                entry.update(error_code=code(outcome), base_offset=-1, error_message=outcome)
        waits = still
        if waits and time.monotonic() >= deadline:
            for entry, _wait in waits:
                entry.update(
                    error_code=ERRORS["REQUEST_TIMED_OUT"],
                    base_offset=-1,
                    error_message="The ISR did not have the records within the request's timeout.",
                )
            break
        if waits:
            await asyncio.sleep(ACKS_POLL_SECONDS)
