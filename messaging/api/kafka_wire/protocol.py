"""The Kafka wire format around each request: frames, headers, versions and error codes.

The messages themselves are kafka-python's classes (`kafka.protocol`), generated from Kafka's
own JSON schemas, every version of every field, so a field is never hand-encoded here. Why
kafka-python's and not Aiven's `kio` (also generated from the schemas): kafka-python is one of
the clients LogLab is tested with anyway, pinned exactly; its classes decode requests as well as
encode responses, with an encoder compiled per version; and a field left out takes the schema's
default, so one dict serves every version of a response.

What LogLab advertises (`SUPPORTED`): each client picks, per API, the highest version both
sides know, so every version inside these ranges must be right. The ranges stop below each
API's first flexible version (KIP-482) except ApiVersions, where librdkafka starts at v3, and
what librdkafka's group.protocol=consumer needs (KIP-848: Metadata with topic ids, OffsetCommit
and OffsetFetch v9, ConsumerGroupHeartbeat): all three Python clients and librdkafka speak
these (kafka-reference.md, section 6).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from kafka.protocol.admin import (
    CreatePartitionsRequest,
    CreatePartitionsResponse,
    CreateTopicsRequest,
    CreateTopicsResponse,
    DeleteTopicsRequest,
    DeleteTopicsResponse,
    DescribeConfigsRequest,
    DescribeConfigsResponse,
    DescribeGroupsRequest,
    DescribeGroupsResponse,
    ListGroupsRequest,
    ListGroupsResponse,
)
from kafka.protocol.consumer import (
    FetchRequest,
    FetchResponse,
    HeartbeatRequest,
    HeartbeatResponse,
    JoinGroupRequest,
    JoinGroupResponse,
    LeaveGroupRequest,
    LeaveGroupResponse,
    ListOffsetsRequest,
    ListOffsetsResponse,
    OffsetCommitRequest,
    OffsetCommitResponse,
    OffsetFetchRequest,
    OffsetFetchResponse,
    SyncGroupRequest,
    SyncGroupResponse,
)
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    FindCoordinatorRequest,
    FindCoordinatorResponse,
    MetadataRequest,
    MetadataResponse,
)
from kafka.protocol.producer import (
    InitProducerIdRequest,
    InitProducerIdResponse,
    ProduceRequest,
    ProduceResponse,
)
from kafka.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)
from kafka.protocol.schemas.fields.codecs.types import UUID

from messaging.api.kafka_wire import kip848_messages as kip848
from messaging.api.kafka_wire import share_messages as share


@dataclass(frozen=True)
class Api:
    key: int
    name: str
    min_version: int
    max_version: int
    request: Any
    response: Any
    # The first flexible version (KIP-482): compact strings, tagged fields, header v2.
    flexible_from: int | None = None

    def flexible(self, version: int) -> bool:
        return self.flexible_from is not None and version >= self.flexible_from


_APIS = (
    Api(0, "Produce", 3, 8, ProduceRequest, ProduceResponse, 9),
    Api(1, "Fetch", 4, 11, FetchRequest, FetchResponse, 12),
    Api(2, "ListOffsets", 1, 5, ListOffsetsRequest, ListOffsetsResponse, 6),
    # Metadata 10+ carries topic ids, which a group.protocol=consumer client needs; librdkafka
    # asks for topics by id with v12 (KIP-848, #15).
    Api(3, "Metadata", 0, 12, MetadataRequest, MetadataResponse, 9),
    # v9 of both is KIP-848's (a member epoch for a consumer group's member): librdkafka's
    # group.protocol=consumer needs OffsetCommit and OffsetFetch v9 (rdkafka_feature.c).
    Api(8, "OffsetCommit", 2, 9, OffsetCommitRequest, OffsetCommitResponse, 8),
    Api(9, "OffsetFetch", 1, 9, OffsetFetchRequest, OffsetFetchResponse, 6),
    Api(10, "FindCoordinator", 0, 2, FindCoordinatorRequest, FindCoordinatorResponse, 3),
    Api(11, "JoinGroup", 0, 5, JoinGroupRequest, JoinGroupResponse, 6),
    Api(12, "Heartbeat", 0, 3, HeartbeatRequest, HeartbeatResponse, 4),
    Api(13, "LeaveGroup", 0, 3, LeaveGroupRequest, LeaveGroupResponse, 4),
    Api(14, "SyncGroup", 0, 3, SyncGroupRequest, SyncGroupResponse, 4),
    Api(15, "DescribeGroups", 0, 4, DescribeGroupsRequest, DescribeGroupsResponse, 5),
    Api(16, "ListGroups", 0, 2, ListGroupsRequest, ListGroupsResponse, 3),
    Api(17, "SaslHandshake", 0, 1, SaslHandshakeRequest, SaslHandshakeResponse, None),
    Api(18, "ApiVersions", 0, 3, ApiVersionsRequest, ApiVersionsResponse, 3),
    Api(19, "CreateTopics", 0, 4, CreateTopicsRequest, CreateTopicsResponse, 5),
    Api(20, "DeleteTopics", 0, 3, DeleteTopicsRequest, DeleteTopicsResponse, 4),
    Api(22, "InitProducerId", 0, 1, InitProducerIdRequest, InitProducerIdResponse, 2),
    Api(32, "DescribeConfigs", 0, 3, DescribeConfigsRequest, DescribeConfigsResponse, 4),
    Api(36, "SaslAuthenticate", 0, 1, SaslAuthenticateRequest, SaslAuthenticateResponse, 2),
    Api(37, "CreatePartitions", 0, 1, CreatePartitionsRequest, CreatePartitionsResponse, 2),
    # The consumer group protocol (KIP-848, #15): messages defined in kip848_messages.py.
    Api(
        68,
        "ConsumerGroupHeartbeat",
        0,
        1,
        kip848.ConsumerGroupHeartbeatRequest,
        kip848.ConsumerGroupHeartbeatResponse,
        0,
    ),
    Api(
        69,
        "ConsumerGroupDescribe",
        0,
        0,
        kip848.ConsumerGroupDescribeRequest,
        kip848.ConsumerGroupDescribeResponse,
        0,
    ),
    # Share groups (KIP-932, #15): messages defined in share_messages.py; librdkafka's share
    # consumer sends version 1 of each, and only that.
    Api(
        76,
        "ShareGroupHeartbeat",
        1,
        1,
        share.ShareGroupHeartbeatRequest,
        share.ShareGroupHeartbeatResponse,
        0,
    ),
    Api(78, "ShareFetch", 1, 1, share.ShareFetchRequest, share.ShareFetchResponse, 0),
    Api(
        79,
        "ShareAcknowledge",
        1,
        1,
        share.ShareAcknowledgeRequest,
        share.ShareAcknowledgeResponse,
        0,
    ),
)
SUPPORTED: dict[int, Api] = {api.key: api for api in _APIS}
API_VERSIONS = 18

# Kafka's error codes (clients/.../common/protocol/Errors.java), by the names its docs use.
ERRORS: dict[str, int] = {
    "NONE": 0,
    "UNKNOWN_SERVER_ERROR": -1,
    "OFFSET_OUT_OF_RANGE": 1,
    "CORRUPT_MESSAGE": 2,
    "UNKNOWN_TOPIC_OR_PARTITION": 3,
    "INVALID_FETCH_SIZE": 4,
    "LEADER_NOT_AVAILABLE": 5,
    "NOT_LEADER_OR_FOLLOWER": 6,
    "REQUEST_TIMED_OUT": 7,
    "MESSAGE_TOO_LARGE": 10,
    "OFFSET_METADATA_TOO_LARGE": 12,
    "COORDINATOR_NOT_AVAILABLE": 15,
    "NOT_COORDINATOR": 16,
    "INVALID_TOPIC_EXCEPTION": 17,
    "RECORD_LIST_TOO_LARGE": 18,
    "NOT_ENOUGH_REPLICAS": 19,
    "NOT_ENOUGH_REPLICAS_AFTER_APPEND": 20,
    "INVALID_REQUIRED_ACKS": 21,
    "ILLEGAL_GENERATION": 22,
    "INCONSISTENT_GROUP_PROTOCOL": 23,
    "INVALID_GROUP_ID": 24,
    "UNKNOWN_MEMBER_ID": 25,
    "INVALID_SESSION_TIMEOUT": 26,
    "REBALANCE_IN_PROGRESS": 27,
    "INVALID_COMMIT_OFFSET_SIZE": 28,
    "TOPIC_AUTHORIZATION_FAILED": 29,
    "GROUP_AUTHORIZATION_FAILED": 30,
    "CLUSTER_AUTHORIZATION_FAILED": 31,
    "UNSUPPORTED_SASL_MECHANISM": 33,
    "ILLEGAL_SASL_STATE": 34,
    "UNSUPPORTED_VERSION": 35,
    "TOPIC_ALREADY_EXISTS": 36,
    "INVALID_PARTITIONS": 37,
    "INVALID_REPLICATION_FACTOR": 38,
    "INVALID_REPLICA_ASSIGNMENT": 39,
    "INVALID_CONFIG": 40,
    "INVALID_REQUEST": 42,
    "UNSUPPORTED_FOR_MESSAGE_FORMAT": 43,
    "POLICY_VIOLATION": 44,
    "OUT_OF_ORDER_SEQUENCE_NUMBER": 45,
    "DUPLICATE_SEQUENCE_NUMBER": 46,
    "INVALID_PRODUCER_EPOCH": 47,
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED": 53,
    "SASL_AUTHENTICATION_FAILED": 58,
    "UNKNOWN_PRODUCER_ID": 59,
    "NON_EMPTY_GROUP": 68,
    "GROUP_ID_NOT_FOUND": 69,
    "UNSUPPORTED_COMPRESSION_TYPE": 76,
    "MEMBER_ID_REQUIRED": 79,
    "GROUP_MAX_SIZE_REACHED": 81,
    "FENCED_INSTANCE_ID": 82,
    "INVALID_RECORD": 87,
    "THROTTLING_QUOTA_EXCEEDED": 89,
    "UNKNOWN_TOPIC_ID": 100,
    "FENCED_MEMBER_EPOCH": 110,
    "UNRELEASED_INSTANCE_ID": 111,
    "UNSUPPORTED_ASSIGNOR": 112,
    "STALE_MEMBER_EPOCH": 113,
    "INVALID_RECORD_STATE": 121,
    "SHARE_SESSION_NOT_FOUND": 122,
    "INVALID_SHARE_SESSION_EPOCH": 123,
}


def code(name: str | None) -> int:
    """An error name's code; a name this table lacks is a bug, reported as Kafka would."""
    if name is None:
        return 0
    return ERRORS.get(name, ERRORS["UNKNOWN_SERVER_ERROR"])


class Malformed(Exception):
    """A frame this connection cannot go on from: Kafka closes the connection."""


@dataclass(frozen=True)
class Header:
    api_key: int
    api_version: int
    correlation_id: int
    client_id: str | None
    body_offset: int


_HEAD = struct.Struct(">hhih")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(data) or shift > 28:
            raise Malformed("a bad unsigned varint in a request header")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def header_parse(frame: bytes) -> Header:
    """Request header v1 (v2 with tagged fields for a flexible version). The client id is a
    classic int16-length string even in v2, so an old server can read any ApiVersions header."""
    if len(frame) < _HEAD.size:
        raise Malformed(f"a request of {len(frame)} bytes is shorter than any request header")
    api_key, version, correlation_id, length = _HEAD.unpack_from(frame, 0)
    pos = _HEAD.size
    client_id = None
    if length >= 0:
        if pos + length > len(frame):
            raise Malformed("a client id longer than its request")
        client_id = frame[pos : pos + length].decode("utf-8", "replace")
        pos += length
    elif length != -1:
        raise Malformed("a negative client id length")
    api = SUPPORTED.get(api_key)
    if api is not None and api.flexible(version) and version <= api.max_version:
        count, pos = _varint(frame, pos)
        for _ in range(count):
            _, pos = _varint(frame, pos)
            size, pos = _varint(frame, pos)
            pos += size
            if pos > len(frame):
                raise Malformed("a tagged field longer than its request")
    return Header(api_key, version, correlation_id, client_id, pos)


def nulls_refuse(message: Any, version: int) -> None:
    """Kafka's generated readers refuse a null (length -1) in a field the schema does not
    declare nullable at this version: the request is invalid and the connection closes.
    kafka-python's reader reads any negative length as null, so check it here, once, instead
    of trusting every handler to."""

    def walk(container: Any, struct: Any, path: str) -> None:
        for field in struct._fields:
            if field._tag is not None or not field.for_version_q(version):
                continue
            value = getattr(container, field.name, None)
            if value is None and getattr(field, "_type", None) is UUID:
                continue  # a uuid is 16 bytes, never null: kafka-python reads Uuid.ZERO as None
            if value is None:
                nullable = field._nullable_versions
                if nullable is None or not nullable[0] <= version <= nullable[1]:
                    raise Malformed(f"a null {path}{field.name}, which is never null in v{version}")
                continue
            if field.is_struct_array():
                for item in value:
                    walk(item, field, f"{path}{field.name}[].")
            elif field.is_struct():
                walk(value, field, f"{path}{field.name}.")

    walk(message, type(message)._struct, "")


def make(cls: Any, data: dict[str, Any]) -> Any:
    """A message (or nested struct) from plain dicts and lists; fields left out take the
    schema's default, and fields outside the version being encoded are skipped."""
    values = {}
    fields = cls._struct.fields
    for name, value in data.items():
        field = fields[name]
        if field.is_struct_array() and value is not None:
            value = [make(field.data_class, item) for item in value]
        elif field.is_struct() and value is not None:
            value = make(field.data_class, value)
        values[name] = value
    return cls(**values)


def response_encode(api: Api, version: int, correlation_id: int, body: dict[str, Any]) -> bytes:
    """A framed response: size, header (v0, or v1 for a flexible version but ApiVersions'
    always v0, KIP-511), body."""
    message = make(api.response, body)
    message.API_VERSION = version
    message.with_header(correlation_id=correlation_id)
    return bytes(message.encode(header=True, framed=True))
