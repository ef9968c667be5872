"""docs/clients-kafka.md's examples, run as printed for a fresh room.

Each example is a fenced block whose info string names it (```` ```python snippet=NAME ````).
The test fills the placeholders ({bootstrap}, {username}, {password}, {topic}, {group}) with a
new room's values and nothing else, runs the Python ones in a subprocess of this interpreter
(the venv's) and the kcat ones with bash, and checks what they did to the room: the producer's
records in the topic, each in the partition of its key, and the consumer's group with its
commits.
"""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from messaging.engine.partitioner import partition_for_key
from tests.support.kafka_server import KafkaRoom, python_env

DOC = Path(__file__).resolve().parents[2] / "docs" / "clients-kafka.md"
SNIPPET = re.compile(r"^```(\w+) snippet=([\w-]+)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
PLACEHOLDERS = ("{bootstrap}", "{username}", "{password}", "{topic}", "{group}")
CLIENTS = ["kafka-python", "confluent-kafka", "aiokafka", "kcat"]
PARTITIONS = 3
RECORDS = 5
RUN_SECONDS = 60


def snippets() -> dict[str, tuple[str, str]]:
    """name -> (language, code), as printed."""
    found: dict[str, tuple[str, str]] = {}
    for language, name, code in SNIPPET.findall(DOC.read_text()):
        assert name not in found, f"two snippets named {name}"
        found[name] = (language, code)
    return found


def filled(code: str, values: dict[str, str]) -> str:
    for placeholder in PLACEHOLDERS:
        code = code.replace(placeholder, values[placeholder])
    return code


def run(name: str, values: dict[str, str]) -> subprocess.CompletedProcess:
    language, code = snippets()[name]
    code = filled(code, values)
    if language == "python":
        command = [sys.executable, "-c", code]
    else:
        assert language == "sh", f"{name}: a {language} snippet is not run"
        command = ["bash", "-euo", "pipefail", "-c", code]
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=RUN_SECONDS, env=python_env()
        )
    except subprocess.TimeoutExpired as error:
        pytest.fail(f"{name} did not finish in {RUN_SECONDS} s:\n{error.stdout}\n{error.stderr}")
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    return result


def room_values(room: KafkaRoom, topic: str, group: str) -> dict[str, str]:
    return {
        "{bootstrap}": room.bootstrap,
        "{username}": room.username,
        "{password}": room.password,
        "{topic}": topic,
        "{group}": group,
    }


def topic_records(room: KafkaRoom, topic: str) -> list[tuple[bytes, bytes, int]]:
    """Every record of the topic: (key, value, partition), read with kafka-python."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**room.kafka_python(fetch_max_wait_ms=100))
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(partitions)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(partitions)
        read: list[tuple[bytes, bytes, int]] = []
        deadline = time.monotonic() + 20
        while len(read) < sum(ends.values()) and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                read += [(r.key, r.value, r.partition) for r in batch]
        return read
    finally:
        consumer.close()


def test_it_documents_every_client_with_named_snippets():
    names = set(snippets())
    expected = {f"{c}-{role}" for c in CLIENTS for role in ("producer", "consumer")}
    assert expected | {"kcat-metadata", "java-producer", "java-consumer"} == names
    for name, (_, code) in snippets().items():
        for placeholder in ("{bootstrap}", "{username}", "{password}"):
            assert placeholder in code, f"{name} has no {placeholder}"


@pytest.mark.parametrize("client", CLIENTS)
def test_it_runs_the_documented_producer_and_consumer(
    room: KafkaRoom, client: str, request: pytest.FixtureRequest
):
    if client == "kcat":
        request.getfixturevalue("kcat")  # fails with how to install it when it is missing
    topic, group = f"docs-{secrets.token_hex(3)}", f"docs-{client}-{secrets.token_hex(3)}"
    room.rest_topic_create(topic, PARTITIONS)
    values = room_values(room, topic, group)

    run(f"{client}-producer", values)
    records = topic_records(room, topic)
    assert len(records) == RECORDS, records
    assert len({key for key, _, _ in records}) == RECORDS
    for key, value, partition in records:
        assert key.startswith(b"customer-") and value.startswith(b"order "), (key, value)
        assert partition == partition_for_key(key, PARTITIONS), (key, partition)

    consumed = run(f"{client}-consumer", values)
    assert len(consumed.stdout.splitlines()) == RECORDS, consumed.stdout
    counts = {p: sum(1 for _, _, q in records if q == p) for p in range(PARTITIONS)}
    lags = room.lags(group)
    committed = {p: row["current_offset"] for (t, p), row in lags.items() if t == topic}
    assert {p: c for p, c in committed.items() if c} == {p: c for p, c in counts.items() if c}
    assert all(row["lag"] == 0 for row in lags.values()), lags
    group_seen = room.group(group)
    assert group_seen is not None and group_seen["state"] == "EMPTY", group_seen


def test_it_runs_the_documented_kcat_metadata_listing(room: KafkaRoom, kcat: str):
    listed = run("kcat-metadata", room_values(room, "orders", "unused")).stdout
    assert re.search(r"^ *3 brokers:", listed, re.MULTILINE), listed  # a sandbox runs three
    assert 'topic "orders" with 3 partitions' in listed, listed


@pytest.mark.parametrize("role", ["producer", "consumer"])
def test_it_gives_java_properties_that_parse(role: str):
    _, code = snippets()[f"java-{role}"]
    properties = dict(
        line.split("=", 1) for line in code.splitlines() if line and not line.startswith("#")
    )
    assert properties["bootstrap.servers"] == "{bootstrap}"
    assert properties["security.protocol"] == "SASL_PLAINTEXT"
    assert properties["sasl.mechanism"] == "PLAIN"
    jaas = properties["sasl.jaas.config"]
    assert jaas == (
        "org.apache.kafka.common.security.plain.PlainLoginModule required "
        'username="{username}" password="{password}";'
    )
    serde = "serializer" if role == "producer" else "deserializer"
    assert {f"key.{serde}", f"value.{serde}"} <= set(properties)
    if role == "consumer":
        assert properties["group.id"] == "{group}"
