"""The messages of the "consumer" group protocol (KIP-848): ConsumerGroupHeartbeat (API key 68)
and ConsumerGroupDescribe (69), which kafka-python 3.0.12 has no classes for.

Written here from Kafka's protocol documentation (kafka.apache.org/protocol: the BNF of each
version, the field types, which fields are nullable, the defaults): every version of both is
flexible (KIP-482: compact strings and arrays, tagged fields), and ConsumerGroupHeartbeat v1
adds SubscribedTopicRegex. The definitions are given to kafka-python's own schema machinery in
the form its loader builds from a schema file, so these classes decode, encode and check nulls
exactly as the listener's other messages do (protocol.py's `make`, `nulls_refuse`).
"""

from __future__ import annotations

from typing import Any

from kafka.protocol.api_message import ApiMessage

from messaging.api.kafka_wire.defined_messages import Defined as _Defined
from messaging.api.kafka_wire.defined_messages import field as _field
from messaging.api.kafka_wire.defined_messages import message
from messaging.api.kafka_wire.defined_messages import nullable as _nullable

_HEARTBEAT_PARTITIONS = [_field("TopicId", "uuid"), _field("Partitions", "[]int32")]


class ConsumerGroupHeartbeatRequest(ApiMessage, metaclass=_Defined):
    SCHEMA = message(
        68,
        "request",
        "ConsumerGroupHeartbeatRequest",
        "0-1",
        [
            _field("GroupId", "string"),
            _field("MemberId", "string"),
            # 0 to join; -1 to leave; -2 a static member leaving for a while.
            _field("MemberEpoch", "int32"),
            _nullable("InstanceId", "string"),
            _nullable("RackId", "string"),
            # -1: unchanged since the last heartbeat.
            _field("RebalanceTimeoutMs", "int32", default=-1),
            # null: unchanged since the last heartbeat (so are the nullable fields below).
            _nullable("SubscribedTopicNames", "[]string"),
            _nullable("SubscribedTopicRegex", "string", "1+"),
            _nullable("ServerAssignor", "string"),
            _nullable("TopicPartitions", "[]TopicPartitions", fields=_HEARTBEAT_PARTITIONS),
        ],
    )


class ConsumerGroupHeartbeatResponse(ApiMessage, metaclass=_Defined):
    SCHEMA = message(
        68,
        "response",
        "ConsumerGroupHeartbeatResponse",
        "0-1",
        [
            _field("ThrottleTimeMs", "int32"),
            _field("ErrorCode", "int16"),
            _nullable("ErrorMessage", "string"),
            _nullable("MemberId", "string"),
            _field("MemberEpoch", "int32"),
            _field("HeartbeatIntervalMs", "int32"),
            # null: not provided (the request was not full and the assignment did not change).
            _nullable(
                "Assignment",
                "Assignment",
                fields=[
                    _field("TopicPartitions", "[]TopicPartitions", fields=_HEARTBEAT_PARTITIONS)
                ],
            ),
        ],
    )


class ConsumerGroupDescribeRequest(ApiMessage, metaclass=_Defined):
    SCHEMA = message(
        69,
        "request",
        "ConsumerGroupDescribeRequest",
        "0",
        [
            _field("GroupIds", "[]string"),
            _field("IncludeAuthorizedOperations", "bool"),
        ],
    )


def _described_assignment(name: str) -> dict[str, Any]:
    return _field(
        name,
        "Assignment",
        fields=[
            _field(
                "TopicPartitions",
                "[]TopicPartitions",
                fields=[
                    _field("TopicId", "uuid"),
                    _field("TopicName", "string"),
                    _field("Partitions", "[]int32"),
                ],
            )
        ],
    )


class ConsumerGroupDescribeResponse(ApiMessage, metaclass=_Defined):
    SCHEMA = message(
        69,
        "response",
        "ConsumerGroupDescribeResponse",
        "0",
        [
            _field("ThrottleTimeMs", "int32"),
            _field(
                "Groups",
                "[]DescribedGroup",
                fields=[
                    _field("ErrorCode", "int16"),
                    _nullable("ErrorMessage", "string"),
                    _field("GroupId", "string"),
                    _field("GroupState", "string"),
                    _field("GroupEpoch", "int32"),
                    _field("AssignmentEpoch", "int32"),
                    _field("AssignorName", "string"),
                    _field(
                        "Members",
                        "[]Member",
                        fields=[
                            _field("MemberId", "string"),
                            _nullable("InstanceId", "string"),
                            _nullable("RackId", "string"),
                            _field("MemberEpoch", "int32"),
                            _field("ClientId", "string"),
                            _field("ClientHost", "string"),
                            _field("SubscribedTopicNames", "[]string"),
                            _nullable("SubscribedTopicRegex", "string"),
                            _described_assignment("Assignment"),
                            _described_assignment("TargetAssignment"),
                        ],
                    ),
                    # Integer.MIN_VALUE: authorized operations not asked for.
                    _field("AuthorizedOperations", "int32", default="-2147483648"),
                ],
            ),
        ],
    )
