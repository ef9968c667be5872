"""The "consumer" protocol's embedded bytes, checked against kafka-python's generated classes
(made from Kafka's own JSON schemas) and against garbage."""

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kafka.protocol.consumer.metadata import ConsumerProtocolAssignment as KAssignment
from kafka.protocol.consumer.metadata import ConsumerProtocolSubscription as KSubscription

from messaging.engine.consumer_protocol import (
    Assignment,
    ProtocolBytesError,
    Subscription,
    assignment_of,
    decode_assignment,
    decode_subscription,
    encode_assignment,
    encode_subscription,
)

topics = st.text(min_size=1, max_size=12)
partitions = st.lists(st.integers(0, 2**31 - 1), max_size=4).map(tuple)
topic_partitions = st.lists(st.tuples(topics, partitions), max_size=4).map(tuple)
subscriptions = st.builds(
    Subscription,
    topics=st.lists(topics, max_size=4).map(tuple),
    user_data=st.none() | st.binary(max_size=16),
    owned_partitions=topic_partitions,
    generation_id=st.integers(-1, 2**31 - 1),
    rack_id=st.none() | topics,
    version=st.integers(0, 3),
)


def kafka_subscription(sub: Subscription) -> bytes:
    return KSubscription(
        topics=list(sub.topics),
        user_data=sub.user_data,
        owned_partitions=[
            KSubscription.TopicPartition(topic=t, partitions=list(p))
            for t, p in sub.owned_partitions
        ],
        generation_id=sub.generation_id,
        rack_id=sub.rack_id,
        version=sub.version,
    ).encode(version=sub.version)


def expected(sub: Subscription) -> Subscription:
    """What survives a round trip at the subscription's version."""
    v = sub.version
    return Subscription(
        sub.topics,
        sub.user_data,
        sub.owned_partitions if v >= 1 else (),
        sub.generation_id if v >= 2 else -1,
        sub.rack_id if v >= 3 else None,
        v,
    )


@settings(max_examples=200)
@given(subscriptions)
def test_it_writes_subscriptions_byte_for_byte_as_kafkas_schema(sub):
    assert encode_subscription(sub) == kafka_subscription(expected(sub))
    assert decode_subscription(encode_subscription(sub)) == expected(sub)


@settings(max_examples=200)
@given(topic_partitions, st.none() | st.binary(max_size=16), st.integers(0, 3))
def test_it_writes_assignments_byte_for_byte_as_kafkas_schema(parts, user_data, version):
    ours = encode_assignment(Assignment(parts, user_data, version))
    theirs = KAssignment(
        assigned_partitions=[
            KAssignment.TopicPartition(topic=t, partitions=list(p)) for t, p in parts
        ],
        user_data=user_data,
        version=version,
    ).encode(version=version)
    assert ours == theirs
    assert decode_assignment(ours) == Assignment(parts, user_data, version)


def test_it_encodes_version_0_unless_asked():
    assert encode_subscription(Subscription(("t",)))[:2] == b"\x00\x00"
    assert encode_subscription(Subscription(("t",)), version=2)[:2] == b"\x00\x02"
    assert assignment_of([("t", 0)])[:2] == b"\x00\x00"


def test_it_groups_an_assignment_by_topic_in_first_seen_order():
    data = assignment_of([("b", 1), ("a", 0), ("b", 0)])
    assert decode_assignment(data).assigned_partitions == (("b", (1, 0)), ("a", (0,)))
    assert decode_assignment(data).partitions() == (("b", 1), ("b", 0), ("a", 0))


def test_it_reads_a_newer_version_as_the_highest_known_and_ignores_extra_bytes():
    # ConsumerProtocol.checkSubscriptionVersion: version > 3 is read as 3.
    sub = Subscription(("t",), None, (("t", (0,)),), 7, "rack-a", 3)
    body = encode_subscription(sub)[2:] + b"\x00\x00\x00\x2a future field"
    decoded = decode_subscription(struct.pack(">h", 9) + body)
    assert decoded == sub
    a = encode_assignment(Assignment((("t", (1,)),), b"u", 3))
    assert decode_assignment(struct.pack(">h", 4) + a[2:] + b"more").partitions() == (("t", 1),)


def test_it_reads_what_kafka_python_writes_at_its_default_version():
    data = KSubscription(topics=["orders"], user_data=None, version=1).encode(version=1)
    assert decode_subscription(data).topics == ("orders",)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"\xff\xff\x00\x00\x00\x00",  # negative version
        b"\x00\x00\x7f\xff\xff\xff",  # two billion topics in six bytes
        b"\x00\x00\xff\xff\xff\xff",  # null topics array
        b"\x00\x00\x00\x00\x00\x01\xff\xff",  # null topic name
        b"\x00\x00\x00\x00\x00\x01\x00\x05ab",  # short string
    ],
)
def test_it_refuses_garbage_with_a_protocol_bytes_error(data):
    with pytest.raises(ProtocolBytesError):
        decode_subscription(data)
    with pytest.raises(ProtocolBytesError):
        decode_assignment(data)


def test_it_refuses_a_v1_subscription_without_its_owned_partitions():
    with pytest.raises(ProtocolBytesError):
        decode_subscription(b"\x00\x01\x00\x00\x00\x00\xff\xff\xff\xff")


@settings(max_examples=500)
@given(st.binary(max_size=64))
def test_it_never_raises_anything_else_on_any_bytes(data):
    for decode in (decode_subscription, decode_assignment):
        with contextlib.suppress(ProtocolBytesError):
            decode(data)


@settings(max_examples=200)
@given(subscriptions, st.integers(0, 40))
def test_it_refuses_every_truncation_cleanly(sub, cut):
    data = encode_subscription(sub)
    if cut < len(data):
        with contextlib.suppress(ProtocolBytesError):
            decode_subscription(data[:cut])
