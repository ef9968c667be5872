"""A Kafka REST API in the shape of Confluent REST Proxy, one per room, under `api/kafka/<code>`.

The room is the cluster: its `cluster_id` is the room's code. v3 answers `application/json` with
REST Proxy's resources (`kind`, `metadata.self`, `data`); v2 answers
`application/vnd.kafka.v2+json` and keeps consumer instances. Errors are REST Proxy's
`{"error_code", "message"}` (see `messaging.api.errors` and docs/clients.md).

Thin function views: parse and check the request, call a service or a selector, shape the
answer. Partitioning, assignment, offsets and lag are decided by the services and the engine.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any
from urllib.parse import quote

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from messaging import selectors
from messaging.api.errors import (
    FORBIDDEN,
    FORMAT_MISMATCH,
    ILLEGAL_STATE,
    INSTANCE_EXISTS,
    INVALID_CONSUMER_CONFIG,
    INVALID_PAYLOAD,
    KAFKA_BAD_REQUEST,
    METHOD_NOT_ALLOWED,
    NOT_FOUND,
    PARTITION_NOT_FOUND,
    TOO_MANY_REQUESTS,
    TOPIC_NOT_FOUND,
    UNPROCESSABLE,
    UNSUPPORTED_MEDIA_TYPE,
    ApiError,
    error_response,
    json_body,
    media_type,
    service_errors,
    throttle,
    translate,
)
from messaging.errors import LogLabError, NotFound
from messaging.models import ConsumerGroup, RestConsumerInstance, Room, Topic, join_code_normalise
from messaging.permissions import (
    REST_PROXY_LOCKS,
    Forbidden,
    TooManyRequests,
    api_lock_check,
    api_produce_rate_check,
)
from messaging.services import rest_consumers as consumers
from messaging.services.records import MAX_RECORDS_PER_CALL, RecordIn, records_produce
from messaging.services.topics import TOPIC_CONFIGS, topic_create_configured

V2 = "application/vnd.kafka.v2+json"
V3 = "application/json"
# Bodies without embedded data (consumer configs, subscriptions, commits).
V2_BODIES = frozenset({V2, "application/vnd.kafka+json", "application/json"})
V3_BODIES = frozenset({"application/json"})
# A v2 produce's content type names the embedded format; without one, REST Proxy assumes binary.
PRODUCE_FORMATS = {
    "application/vnd.kafka.json.v2+json": "json",
    "application/vnd.kafka.binary.v2+json": "binary",
    V2: "binary",
    "application/vnd.kafka+json": "binary",
    "application/json": "binary",
}
RECORDS_TYPES = {fmt: f"application/vnd.kafka.{fmt}.v2+json" for fmt in consumers.FORMATS}
EMBEDDED_RE = re.compile(r"^application/vnd\.kafka\.([a-z]+)\.v2\+json$")
# Who the board says produced a record that came through this API.
PRODUCER = "rest-proxy"
# v3's key and value types LogLab serialises (no Schema Registry for the others).
V3_TYPES = ("BINARY", "JSON", "STRING")


def kafka_api(*, version: str, methods: tuple[str, ...]) -> Callable:
    """The plumbing every endpoint shares.

    Method check, the client's rate limit for this room, the room (the cluster), the
    classroom's locks for this call (permissions.REST_PROXY_LOCKS), lazy expiry of idle
    consumer instances, and every refusal as REST Proxy's error body.
    """
    content_type = V2 if version == "v2" else V3

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        # Every endpoint names its locks: one missing from the table fails at import.
        locks = {method: REST_PROXY_LOCKS[(view.__name__, method)] for method in methods}

        @csrf_exempt
        @wraps(view)
        def wrapper(request: HttpRequest, code: str, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        METHOD_NOT_ALLOWED, f"HTTP 405 Method Not Allowed: {request.method}."
                    )
                throttle(request, join_code_normalise(code) or code)
                try:
                    room = selectors.room_get(code=code)
                except NotFound as error:
                    raise ApiError(NOT_FOUND, error.message) from None
                try:
                    api_lock_check(room, locks[request.method])
                except Forbidden as error:
                    raise ApiError(FORBIDDEN, error.message) from None
                consumers.rest_instances_expire(room=room)
                return view(request, room, **kwargs)
            except ApiError as error:
                response = error_response(error, content_type=content_type)
            except LogLabError as error:
                response = error_response(translate(error), content_type=content_type)
            if response.status_code == 405:
                response["Allow"] = ", ".join(methods)
            return response

        return wrapper

    return decorate


def _v2(data: Any, *, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, content_type=V2)


def _v3(data: Any, *, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False, content_type=V3)


def _url(request: HttpRequest, room: Room, *parts: object) -> str:
    base = request.build_absolute_uri(reverse("kafka_root", args=[room.code]))
    return "/".join([base, *(quote(str(part), safe="") for part in parts)])


def _object(body: Any, what: str) -> dict:
    if not isinstance(body, dict):
        raise ApiError(UNPROCESSABLE, f"The body is a JSON object: {what}.")
    return body


def _int(raw: Any, field: str, *, low: int = 0) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < low:
        raise ApiError(UNPROCESSABLE, f"{field} is an integer of at least {low} (not {raw!r}).")
    return raw


def _query_int(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError(UNPROCESSABLE, f"{name} is a whole number of at least 0 (not {raw!r}).")
    return value


@kafka_api(version="v2", methods=("GET",))
def root(request: HttpRequest, room: Room) -> HttpResponse:
    """REST Proxy's root resource answers an empty object; the room's base URL does too."""
    return _v2({})


@csrf_exempt
def unknown(request: HttpRequest, code: str, rest: str) -> HttpResponse:
    """Any other path under a room's base URL: REST Proxy's JSON 404, not an HTML page."""
    return error_response(
        ApiError(NOT_FOUND, "HTTP 404 Not Found: no such endpoint (see docs/clients.md)."),
    )


# --- keys and values --------------------------------------------------------------------------


def _json_text(data: Any) -> str:
    """JSON embedded data as Jackson writes it: compact, UTF-8 as is."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _from_base64(data: Any, field: str) -> str:
    if not isinstance(data, str):
        raise ApiError(INVALID_PAYLOAD, f"{field} is a base64 string in the binary format.")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(INVALID_PAYLOAD, f"{field} is not valid base64.") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiError(
            INVALID_PAYLOAD,
            f"{field}: LogLab keeps keys and values as text, so binary data must be UTF-8.",
        ) from None


def _embedded(data: Any, fmt: str, field: str) -> str | None:
    """A v2 record's key or value as stored: JSON as serialised JSON, binary base64-decoded."""
    if data is None:
        return None
    if fmt == "json":
        return _json_text(data)
    return _from_base64(data, field)


def _for_reader(text: str | None, fmt: str) -> Any:
    """A stored key or value as a v2 consumer of `fmt` receives it."""
    if text is None:
        return None
    if fmt == "binary":
        return base64.b64encode(text.encode("utf-8")).decode("ascii")
    try:
        return json.loads(text, parse_constant=_not_json)
    except ValueError:
        return text  # not JSON (the board's producers write plain text): as a string


def _not_json(name: str) -> Any:
    raise ValueError(name)


def _v3_data(raw: Any, field: str) -> tuple[str | None, str | None]:
    """A v3 record's `key` or `value` object: its type and the text stored."""
    if raw is None:
        return None, None
    if not isinstance(raw, dict):
        raise ApiError(UNPROCESSABLE, f"{field} is an object with type and data.")
    kind = str(raw.get("type") or "JSON").upper()
    if kind not in V3_TYPES:
        raise ApiError(
            INVALID_PAYLOAD,
            f"{field}.type {kind} needs a Schema Registry, which LogLab does not have: use "
            "BINARY, JSON or STRING.",
        )
    data = raw.get("data")
    if data is None:
        return kind, None
    if kind == "BINARY":
        return kind, _from_base64(data, f"{field}.data")
    if kind == "STRING":
        if not isinstance(data, str):
            raise ApiError(INVALID_PAYLOAD, f"{field}.data is a string for type STRING.")
        return kind, data
    return kind, _json_text(data)


def _produce(request: HttpRequest, room: Room, topic_name: str, records: list[RecordIn]) -> list:
    try:
        api_produce_rate_check(request=request, room=room, count=len(records))
    except TooManyRequests as error:
        if not error.retryable:
            raise ApiError(INVALID_PAYLOAD, error.message) from None
        raise ApiError(TOO_MANY_REQUESTS, error.message, retry_after=error.retry_after) from None
    with service_errors(not_found=TOPIC_NOT_FOUND, invalid=INVALID_PAYLOAD):
        return records_produce(room=room, topic_name=topic_name, records=records, producer=PRODUCER)


# --- v3: the cluster, its topics and groups ---------------------------------------------------


def _cluster_check(room: Room, cluster_id: str) -> None:
    if join_code_normalise(cluster_id) != room.code:
        raise ApiError(NOT_FOUND, f"Cluster {cluster_id} not found: this room is {room.code}.")


def _topic(room: Room, name: str) -> Topic:
    with service_errors(not_found=TOPIC_NOT_FOUND):
        return selectors.topic_get(room=room, name=name)


def _collection(kind: str, url: str, data: list) -> dict:
    return {"kind": kind, "metadata": {"self": url, "next": None}, "data": data}


def _cluster_data(request: HttpRequest, room: Room) -> dict:
    code = room.code

    def related(*parts: str) -> dict:
        return {"related": _url(request, room, "v3", "clusters", code, *parts)}

    return {
        "kind": "KafkaCluster",
        "metadata": {
            "self": _url(request, room, "v3", "clusters", code),
            "resource_name": f"crn:///kafka={code}",
        },
        "cluster_id": code,
        "controller": related("brokers", "1"),
        "acls": related("acls"),
        "brokers": related("brokers"),
        "broker_configs": related("broker-configs"),
        "consumer_groups": related("consumer-groups"),
        "topics": related("topics"),
        "partition_reassignments": related("topics", "-", "partitions", "-", "reassignment"),
    }


def _topic_data(request: HttpRequest, room: Room, topic: Topic) -> dict:
    base = ("v3", "clusters", room.code, "topics", topic.name)
    return {
        "kind": "KafkaTopic",
        "metadata": {
            "self": _url(request, room, *base),
            "resource_name": f"crn:///kafka={room.code}/topic={topic.name}",
        },
        "cluster_id": room.code,
        "topic_name": topic.name,
        "is_internal": False,
        "replication_factor": topic.replication_factor,
        "partitions_count": topic.partition_count,
        "partitions": {"related": _url(request, room, *base, "partitions")},
        "configs": {"related": _url(request, room, *base, "configs")},
        "partition_reassignments": {
            "related": _url(request, room, *base, "partitions", "-", "reassignment")
        },
        "authorized_operations": [],
    }


def _partition_data(request: HttpRequest, room: Room, topic: Topic, index: int) -> dict:
    base = ("v3", "clusters", room.code, "topics", topic.name, "partitions", index)
    return {
        "kind": "KafkaPartition",
        "metadata": {
            "self": _url(request, room, *base),
            "resource_name": f"crn:///kafka={room.code}/topic={topic.name}/partition={index}",
        },
        "cluster_id": room.code,
        "topic_name": topic.name,
        "partition_id": index,
        "leader": {"related": _url(request, room, *base, "replicas", 1)},
        "replicas": {"related": _url(request, room, *base, "replicas")},
        "reassignment": {"related": _url(request, room, *base, "reassignment")},
    }


def _state(state: str) -> str:
    """Kafka's group state as REST Proxy names it: PreparingRebalance -> PREPARING_REBALANCE."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", state).upper()


def _group_data(request: HttpRequest, room: Room, group: ConsumerGroup) -> dict:
    base = ("v3", "clusters", room.code, "consumer-groups", group.group_id)
    return {
        "kind": "KafkaConsumerGroup",
        "metadata": {
            "self": _url(request, room, *base),
            "resource_name": f"crn:///kafka={room.code}/consumer-group={group.group_id}",
        },
        "cluster_id": room.code,
        "consumer_group_id": group.group_id,
        "is_simple": False,
        "partition_assignor": group.assignor,
        "state": _state(group.state),
        "coordinator": {"related": _url(request, room, "v3", "clusters", room.code, "brokers", 1)},
        "consumers": {"related": _url(request, room, *base, "consumers")},
        "lag_summary": {"related": _url(request, room, *base, "lag-summary")},
    }


@kafka_api(version="v3", methods=("GET",))
def clusters(request: HttpRequest, room: Room) -> HttpResponse:
    url = _url(request, room, "v3", "clusters")
    return _v3(_collection("KafkaClusterList", url, [_cluster_data(request, room)]))


@kafka_api(version="v3", methods=("GET",))
def cluster(request: HttpRequest, room: Room, cluster_id: str) -> HttpResponse:
    _cluster_check(room, cluster_id)
    return _v3(_cluster_data(request, room))


@kafka_api(version="v3", methods=("GET", "POST"))
def v3_topics(request: HttpRequest, room: Room, cluster_id: str) -> HttpResponse:
    _cluster_check(room, cluster_id)
    if request.method == "POST":
        return _v3_topic_create(request, room)
    topics = selectors.room_topics(room=room)
    url = _url(request, room, "v3", "clusters", room.code, "topics")
    data = [_topic_data(request, room, t) for t in topics]
    return _v3(_collection("KafkaTopicList", url, data))


def _v3_topic_create(request: HttpRequest, room: Room) -> HttpResponse:
    """Kafka's CreateTopics: its refusals are 400 with REST Proxy's 40002."""
    body = _object(json_body(request, accepted=V3_BODIES), "topic_name, partitions_count")
    name = body.get("topic_name")
    if not isinstance(name, str):
        raise ApiError(UNPROCESSABLE, "topic_name is a string.")
    partitions = _int(body.get("partitions_count", 1), "partitions_count", low=-1)
    if partitions == -1:
        partitions = 1  # the broker's num.partitions
    factor = _int(body.get("replication_factor", 1), "replication_factor", low=-1)
    if factor == 0 or factor < -1:
        raise ApiError(KAFKA_BAD_REQUEST, "Replication factor must be larger than 0.")
    factor = max(1, factor)  # -1: default.replication.factor, 1 as on a Kafka broker
    configs = body.get("configs") or []
    if not isinstance(configs, list):
        raise ApiError(UNPROCESSABLE, "configs is a list of {name, value}.")
    changes: dict[str, Any] = {}
    for entry in configs:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ApiError(UNPROCESSABLE, "configs is a list of {name, value}.")
        if entry["name"] not in TOPIC_CONFIGS:
            raise ApiError(
                KAFKA_BAD_REQUEST,
                f"Unknown topic config name: {entry['name']}. LogLab sets "
                f"{', '.join(TOPIC_CONFIGS)}.",
            )
        changes[TOPIC_CONFIGS[entry["name"]]] = entry.get("value")
    with service_errors(invalid=KAFKA_BAD_REQUEST, conflict=KAFKA_BAD_REQUEST):
        topic = topic_create_configured(
            room=room, name=name, partitions=partitions, replication_factor=factor, **changes
        )
    return _v3(_topic_data(request, room, topic), status=201)


@kafka_api(version="v3", methods=("GET",))
def v3_topic(request: HttpRequest, room: Room, cluster_id: str, topic: str) -> HttpResponse:
    _cluster_check(room, cluster_id)
    return _v3(_topic_data(request, room, _topic(room, topic)))


@kafka_api(version="v3", methods=("GET",))
def v3_partitions(request: HttpRequest, room: Room, cluster_id: str, topic: str) -> HttpResponse:
    _cluster_check(room, cluster_id)
    found = _topic(room, topic)
    url = _url(request, room, "v3", "clusters", room.code, "topics", found.name, "partitions")
    data = [_partition_data(request, room, found, i) for i in range(found.partition_count)]
    return _v3(_collection("KafkaPartitionList", url, data))


@kafka_api(version="v3", methods=("GET",))
def v3_partition(
    request: HttpRequest, room: Room, cluster_id: str, topic: str, partition: int
) -> HttpResponse:
    _cluster_check(room, cluster_id)
    found = _topic(room, topic)
    if partition >= found.partition_count:
        raise ApiError(PARTITION_NOT_FOUND, f"Partition {partition} of {found.name} not found.")
    return _v3(_partition_data(request, room, found, partition))


def _timestamp(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@kafka_api(version="v3", methods=("POST",))
def v3_records(request: HttpRequest, room: Room, cluster_id: str, topic: str) -> HttpResponse:
    """v3 produce: one record per request (REST Proxy's streaming mode is not offered)."""
    _cluster_check(room, cluster_id)
    body = json_body(request, accepted=V3_BODIES)
    if body is None:
        raise ApiError(INVALID_PAYLOAD, "Payload error. Request body is empty. Data is required.")
    body = _object(body, "one record with key, value and optional partition_id")
    partition = body.get("partition_id")
    if partition is not None:
        partition = _int(partition, "partition_id")
    if body.get("headers"):
        raise ApiError(INVALID_PAYLOAD, "LogLab's records carry no headers.")
    key_type, key = _v3_data(body.get("key"), "key")
    value_type, value = _v3_data(body.get("value"), "value")
    record = RecordIn(key=key, value=value, partition=partition)
    produced = _produce(request, room, topic, [record])[0]
    answer: dict[str, Any] = {
        "error_code": 200,
        "cluster_id": room.code,
        "topic_name": produced.topic,
        "partition_id": produced.partition,
        "offset": produced.offset,
        # The room's simulated time: what retention.ms is measured against.
        "timestamp": _timestamp(produced.timestamp_ms),
    }
    for field, kind, text in (("key", key_type, key), ("value", value_type, value)):
        if text is not None:
            answer[field] = {"type": kind, "size": len(text.encode("utf-8"))}
    return _v3(answer)


@kafka_api(version="v3", methods=("GET",))
def v3_groups(request: HttpRequest, room: Room, cluster_id: str) -> HttpResponse:
    _cluster_check(room, cluster_id)
    groups = selectors.room_groups(room=room)
    url = _url(request, room, "v3", "clusters", room.code, "consumer-groups")
    data = [_group_data(request, room, g) for g in groups]
    return _v3(_collection("KafkaConsumerGroupList", url, data))


def _group(room: Room, group_id: str) -> ConsumerGroup:
    try:
        return selectors.group_get(room=room, group_id=group_id)
    except NotFound:
        raise ApiError(NOT_FOUND, f"Consumer group {group_id} could not be found.") from None


@kafka_api(version="v3", methods=("GET",))
def v3_group(request: HttpRequest, room: Room, cluster_id: str, group: str) -> HttpResponse:
    _cluster_check(room, cluster_id)
    return _v3(_group_data(request, room, _group(room, group)))


@kafka_api(version="v3", methods=("GET",))
def v3_lags(request: HttpRequest, room: Room, cluster_id: str, group: str) -> HttpResponse:
    """The group's lag per partition it has committed on, largest lag first (as REST Proxy)."""
    _cluster_check(room, cluster_id)
    found = _group(room, group)
    [view] = [v for v in selectors.board_groups(room=room) if v.group.pk == found.pk]
    members = {m.member.member_id: m.member for m in view.members}
    rows = sorted(
        (r for r in view.rows if r.current_offset is not None),
        key=lambda r: (-(r.lag or 0), r.topic, r.partition),
    )
    if not rows:
        raise ApiError(NOT_FOUND, "Consumer lags not found: the group has committed nothing.")
    base = ("v3", "clusters", room.code, "consumer-groups", found.group_id, "lags")
    data = []
    for row in rows:
        member = members.get(row.consumer_id)
        data.append(
            {
                "kind": "KafkaConsumerLag",
                "metadata": {
                    "self": _url(request, room, *base, row.topic, "partitions", row.partition),
                    "resource_name": (
                        f"crn:///kafka={room.code}/consumer-group={found.group_id}"
                        f"/lag={row.topic}/partition={row.partition}"
                    ),
                },
                "cluster_id": room.code,
                "consumer_group_id": found.group_id,
                "topic_name": row.topic,
                "partition_id": row.partition,
                "current_offset": row.current_offset,
                "log_end_offset": row.log_end_offset,
                "lag": row.lag,
                "consumer_id": member.member_id if member else "",
                "instance_id": member.group_instance_id if member else None,
                "client_id": member.client_id if member else "",
            }
        )
    return _v3(_collection("KafkaConsumerLagList", _url(request, room, *base), data))


# --- v2: topics and produce -------------------------------------------------------------------


@kafka_api(version="v2", methods=("GET",))
def topics(request: HttpRequest, room: Room) -> HttpResponse:
    names = [topic.name for topic in selectors.room_topics(room=room)]
    return _v2(list(names))


@kafka_api(version="v2", methods=("GET", "POST"))
def topic(request: HttpRequest, room: Room, topic: str) -> HttpResponse:
    if request.method == "POST":
        return _v2_produce(request, room, topic)
    found = _topic(room, topic)
    replicas = [{"broker": 1, "leader": True, "in_sync": True}]
    return _v2(
        {
            "name": found.name,
            "configs": {"cleanup.policy": found.cleanup_policy},
            "partitions": [
                {"partition": i, "leader": 1, "replicas": replicas}
                for i in range(found.partition_count)
            ],
        }
    )


def _v2_produce(request: HttpRequest, room: Room, topic_name: str) -> HttpResponse:
    kind = media_type(request.META.get("CONTENT_TYPE"))
    fmt = PRODUCE_FORMATS.get(kind)
    if fmt is None:
        raise ApiError(
            UNSUPPORTED_MEDIA_TYPE,
            f"HTTP 415 Unsupported Media Type: produce with application/vnd.kafka.json.v2+json "
            f"or application/vnd.kafka.binary.v2+json (not {kind or 'none'}); LogLab has no "
            "Schema Registry for avro, protobuf or jsonschema.",
        )
    body = _object(json_body(request, accepted=None), "records")
    records = body.get("records")
    if not isinstance(records, list) or not records:
        raise ApiError(UNPROCESSABLE, "records may not be empty")
    if len(records) > MAX_RECORDS_PER_CALL:
        raise ApiError(
            INVALID_PAYLOAD, f"At most {MAX_RECORDS_PER_CALL} records per request in LogLab."
        )
    parsed = []
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise ApiError(UNPROCESSABLE, f"records[{i}] is an object with key, value, partition.")
        partition = record.get("partition")
        if partition is not None:
            partition = _int(partition, f"records[{i}].partition")
        parsed.append(
            RecordIn(
                key=_embedded(record.get("key"), fmt, f"records[{i}].key"),
                value=_embedded(record.get("value"), fmt, f"records[{i}].value"),
                partition=partition,
            )
        )
    produced = _produce(request, room, topic_name, parsed)
    return _v2(
        {
            "key_schema_id": None,
            "value_schema_id": None,
            "offsets": [
                {"partition": p.partition, "offset": p.offset, "error_code": None, "error": None}
                for p in produced
            ],
        }
    )


# --- v2: consumer instances -------------------------------------------------------------------


def _instance(
    room: Room, group: str, name: str
) -> RestConsumerInstance | consumers.PendingInstance:
    with service_errors():
        return consumers.rest_instance_get(room=room, group_id=group, name=name)


def _subscribed(found: RestConsumerInstance | consumers.PendingInstance) -> RestConsumerInstance:
    if not isinstance(found, RestConsumerInstance):
        raise ApiError(
            ILLEGAL_STATE,
            "Illegal state: Consumer is not subscribed to any topics or assigned any "
            "partitions (POST .../subscription first).",
        )
    return found


@kafka_api(version="v2", methods=("POST",))
def consumer_create(request: HttpRequest, room: Room, group: str) -> HttpResponse:
    body = json_body(request, accepted=V2_BODIES)
    body = {} if body is None else _object(body, "name, format, auto.offset.reset, ...")
    with service_errors(invalid=INVALID_CONSUMER_CONFIG, conflict=INSTANCE_EXISTS):
        config = consumers.instance_config_validate(
            name=body.get("name", body.get("id")),
            format=body.get("format"),
            auto_offset_reset=body.get("auto.offset.reset"),
            auto_commit_enable=body.get("auto.commit.enable"),
        )
        consumers.rest_instance_create(room=room, group_id=group, config=config)
    group = group.strip()
    return _v2(
        {
            "instance_id": config.name,
            "base_uri": _url(request, room, "consumers", group, "instances", config.name),
        }
    )


@kafka_api(version="v2", methods=("DELETE",))
def consumer_instance(request: HttpRequest, room: Room, group: str, name: str) -> HttpResponse:
    with service_errors():
        consumers.rest_instance_delete(room=room, group_id=group, name=name)
    return HttpResponse(status=204)


@kafka_api(version="v2", methods=("GET", "POST"))
def consumer_subscription(request: HttpRequest, room: Room, group: str, name: str) -> HttpResponse:
    found = _instance(room, group, name)
    if request.method == "GET":
        if isinstance(found, RestConsumerInstance):
            found = consumers.rest_instance_touch(instance=found)
            return _v2({"topics": sorted(found.member.group.topics.values_list("name", flat=True))})
        return _v2({"topics": []})
    body = _object(json_body(request, accepted=V2_BODIES), "topics")
    if "topic_pattern" in body:
        raise ApiError(
            UNPROCESSABLE, "LogLab does not take topic_pattern: list the topics in topics."
        )
    wanted = body.get("topics")
    if not isinstance(wanted, list) or not all(isinstance(t, str) for t in wanted) or not wanted:
        raise ApiError(UNPROCESSABLE, "topics is a non-empty list of topic names.")
    with service_errors():
        consumers.rest_instance_subscribe(room=room, group_id=group, name=name, topics=wanted)
    return HttpResponse(status=204)


def _accepts(request: HttpRequest, fmt: str) -> None:
    """An Accept naming another embedded format than the instance's is REST Proxy's 40601."""
    named = set()
    for part in request.headers.get("Accept", "").split(","):
        match = EMBEDDED_RE.match(media_type(part))
        if match:
            named.add(match.group(1))
    if named and fmt not in named:
        raise ApiError(
            FORMAT_MISMATCH,
            "The requested embedded data format does not match the deserializer for this "
            f"consumer instance: it was created with format {fmt}, so ask for "
            f"{RECORDS_TYPES[fmt]}.",
        )


@kafka_api(version="v2", methods=("GET",))
def consumer_records(request: HttpRequest, room: Room, group: str, name: str) -> HttpResponse:
    instance = _subscribed(_instance(room, group, name))
    _accepts(request, instance.format)
    _query_int(request, "timeout")  # LogLab answers at once: nothing to wait for
    max_bytes = _query_int(request, "max_bytes")
    with service_errors():
        fetched = consumers.rest_records_fetch(instance=instance, max_bytes=max_bytes)
    fmt = instance.format
    return JsonResponse(
        [
            {
                "topic": r.topic,
                "key": _for_reader(r.key, fmt),
                "value": _for_reader(r.value, fmt),
                "partition": r.partition,
                "offset": r.offset,
            }
            for r in fetched
        ],
        safe=False,
        content_type=RECORDS_TYPES[fmt],
    )


@kafka_api(version="v2", methods=("POST",))
def consumer_offsets(request: HttpRequest, room: Room, group: str, name: str) -> HttpResponse:
    found = _instance(room, group, name)
    body = json_body(request, accepted=V2_BODIES)
    offsets = None
    if body is not None and _object(body, "offsets").get("offsets") is not None:
        entries = body["offsets"]
        if not isinstance(entries, list):
            raise ApiError(UNPROCESSABLE, "offsets is a list of {topic, partition, offset}.")
        offsets = []
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("topic"), str):
                raise ApiError(UNPROCESSABLE, f"offsets[{i}] is {{topic, partition, offset}}.")
            offsets.append(
                (
                    entry["topic"],
                    _int(entry.get("partition"), f"offsets[{i}].partition"),
                    _int(entry.get("offset"), f"offsets[{i}].offset"),
                )
            )
    if not isinstance(found, RestConsumerInstance):
        if offsets:
            _subscribed(found)
        return HttpResponse(status=204)  # nothing fetched, nothing to commit
    with service_errors(not_found=PARTITION_NOT_FOUND):
        consumers.rest_offsets_commit(instance=found, offsets=offsets)
    return HttpResponse(status=204)


@kafka_api(version="v2", methods=("GET",))
def consumer_assignments(request: HttpRequest, room: Room, group: str, name: str) -> HttpResponse:
    found = _instance(room, group, name)
    partitions: list[tuple[str, int]] = []
    if isinstance(found, RestConsumerInstance):
        found = consumers.rest_instance_touch(instance=found)
        partitions = selectors.rest_instance_assignments(instance=found)
    return _v2({"partitions": [{"topic": t, "partition": p} for t, p in partitions]})
