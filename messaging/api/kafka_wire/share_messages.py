"""The messages of share groups (KIP-932): ShareGroupHeartbeat (API key 76), ShareFetch (78)
and ShareAcknowledge (79), which kafka-python 3.0.12 has no classes for.

Written here from Kafka's protocol documentation and the share consumer that speaks them
(librdkafka 2.16, the only installed client with one: it sends version 1 of all three, and
nothing else). Every version is flexible (KIP-482). Version 1 of ShareFetch takes MaxRecords and
BatchSize instead of a PartitionMaxBytes per partition, and its answer carries
AcquisitionLockTimeoutMs; ShareGroupHeartbeat and ShareAcknowledge keep version 0's fields. The
definitions go to kafka-python's own schema machinery, as kip848_messages.py does, so that
these decode, encode and check nulls as the listener's other messages do.
"""

from __future__ import annotations

from kafka.protocol.api_message import ApiMessage

from messaging.api.kafka_wire.defined_messages import Defined as _Defined
from messaging.api.kafka_wire.defined_messages import field as _field
from messaging.api.kafka_wire.defined_messages import message
from messaging.api.kafka_wire.defined_messages import nullable as _nullable

_ACKNOWLEDGEMENTS = _field(
    "AcknowledgementBatches",
    "[]AcknowledgementBatch",
    fields=[
        _field("FirstOffset", "int64"),
        _field("LastOffset", "int64"),
        # 0 gap, 1 accept, 2 release, 3 reject: one for the whole range, or one per offset.
        _field("AcknowledgeTypes", "[]int8"),
    ],
)
_LEADER = _field(
    "CurrentLeader",
    "LeaderIdAndEpoch",
    fields=[
        _field("LeaderId", "int32", default="-1"),
        _field("LeaderEpoch", "int32", default="-1"),
    ],
)
_NODE_ENDPOINTS = _field(
    "NodeEndpoints",
    "[]NodeEndpoint",
    fields=[
        _field("NodeId", "int32"),
        _field("Host", "string"),
        _field("Port", "int32"),
        _nullable("Rack", "string"),
    ],
)


class ShareGroupHeartbeatRequest(ApiMessage, metaclass=_Defined):
    SCHEMA = message(
        76,
        "request",
        "ShareGroupHeartbeatRequest",
        "0-1",
        [
            _field("GroupId", "string"),
            _field("MemberId", "string"),
            # 0 to join; -1 to leave.
            _field("MemberEpoch", "int32"),
            _nullable("RackId", "string"),
            # null: unchanged since the last heartbeat.
            _nullable("SubscribedTopicNames", "[]string"),
        ],
    )


class ShareGroupHeartbeatResponse(ApiMessage, metaclass=_Defined):
    SCHEMA = message(
        76,
        "response",
        "ShareGroupHeartbeatResponse",
        "0-1",
        [
            _field("ThrottleTimeMs", "int32"),
            _field("ErrorCode", "int16"),
            _nullable("ErrorMessage", "string"),
            _nullable("MemberId", "string"),
            _field("MemberEpoch", "int32"),
            _field("HeartbeatIntervalMs", "int32"),
            _nullable(
                "Assignment",
                "Assignment",
                fields=[
                    _field(
                        "TopicPartitions",
                        "[]TopicPartitions",
                        fields=[_field("TopicId", "uuid"), _field("Partitions", "[]int32")],
                    )
                ],
            ),
        ],
    )


class ShareFetchRequest(ApiMessage, metaclass=_Defined):
    SCHEMA = message(
        78,
        "request",
        "ShareFetchRequest",
        "0-1",
        [
            _nullable("GroupId", "string"),
            _nullable("MemberId", "string"),
            # 0 opens a share session, -1 closes it, otherwise one more than the last.
            _field("ShareSessionEpoch", "int32"),
            _field("MaxWaitMs", "int32"),
            _field("MinBytes", "int32"),
            _field("MaxBytes", "int32", default="0x7fffffff"),
            _field("MaxRecords", "int32", "1+", default="-1"),
            _field("BatchSize", "int32", "1+", default="-1"),
            _field(
                "Topics",
                "[]FetchTopic",
                fields=[
                    _field("TopicId", "uuid"),
                    _field(
                        "Partitions",
                        "[]FetchPartition",
                        fields=[
                            _field("PartitionIndex", "int32"),
                            _field("PartitionMaxBytes", "int32", "0"),
                            _ACKNOWLEDGEMENTS,
                        ],
                    ),
                ],
            ),
            _field(
                "ForgottenTopicsData",
                "[]ForgottenTopic",
                fields=[_field("TopicId", "uuid"), _field("Partitions", "[]int32")],
            ),
        ],
    )


class ShareFetchResponse(ApiMessage, metaclass=_Defined):
    SCHEMA = message(
        78,
        "response",
        "ShareFetchResponse",
        "0-1",
        [
            _field("ThrottleTimeMs", "int32"),
            _field("ErrorCode", "int16"),
            _nullable("ErrorMessage", "string"),
            _field("AcquisitionLockTimeoutMs", "int32", "1+"),
            _field(
                "Responses",
                "[]ShareFetchableTopicResponse",
                fields=[
                    _field("TopicId", "uuid"),
                    _field(
                        "Partitions",
                        "[]PartitionData",
                        fields=[
                            _field("PartitionIndex", "int32"),
                            _field("ErrorCode", "int16"),
                            _nullable("ErrorMessage", "string"),
                            _field("AcknowledgeErrorCode", "int16"),
                            _nullable("AcknowledgeErrorMessage", "string"),
                            _LEADER,
                            _nullable("Records", "records"),
                            _field(
                                "AcquiredRecords",
                                "[]AcquiredRecords",
                                fields=[
                                    _field("FirstOffset", "int64"),
                                    _field("LastOffset", "int64"),
                                    _field("DeliveryCount", "int16"),
                                ],
                            ),
                        ],
                    ),
                ],
            ),
            _NODE_ENDPOINTS,
        ],
    )


class ShareAcknowledgeRequest(ApiMessage, metaclass=_Defined):
    SCHEMA = message(
        79,
        "request",
        "ShareAcknowledgeRequest",
        "0-1",
        [
            _nullable("GroupId", "string"),
            _nullable("MemberId", "string"),
            _field("ShareSessionEpoch", "int32"),
            _field(
                "Topics",
                "[]AcknowledgeTopic",
                fields=[
                    _field("TopicId", "uuid"),
                    _field(
                        "Partitions",
                        "[]AcknowledgePartition",
                        fields=[_field("PartitionIndex", "int32"), _ACKNOWLEDGEMENTS],
                    ),
                ],
            ),
        ],
    )


class ShareAcknowledgeResponse(ApiMessage, metaclass=_Defined):
    SCHEMA = message(
        79,
        "response",
        "ShareAcknowledgeResponse",
        "0-1",
        [
            _field("ThrottleTimeMs", "int32"),
            _field("ErrorCode", "int16"),
            _nullable("ErrorMessage", "string"),
            _field(
                "Responses",
                "[]ShareAcknowledgeTopicResponse",
                fields=[
                    _field("TopicId", "uuid"),
                    _field(
                        "Partitions",
                        "[]PartitionData",
                        fields=[
                            _field("PartitionIndex", "int32"),
                            _field("ErrorCode", "int16"),
                            _nullable("ErrorMessage", "string"),
                            _LEADER,
                        ],
                    ),
                ],
            ),
            _NODE_ENDPOINTS,
        ],
    )
