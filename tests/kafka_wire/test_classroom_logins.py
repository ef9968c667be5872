"""Kafka clients in a classroom: each student logs in as themselves, their clients are named
after them, and the instructor's locks hold for what their code does over the wire."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from kafka.protocol.producer import ProduceRequest
from kafka.record.default_records import DefaultRecordBatchBuilder

from messaging import selectors
from messaging.api.kafka_wire import handlers
from messaging.api.kafka_wire.session import Session
from messaging.models import Record
from messaging.services.classroom import (
    classroom_create,
    classroom_permissions_set,
    student_join,
)

pytestmark = pytest.mark.django_db


class _Listener:
    def room_admit(self, room_pk: int) -> bool:
        return True


@pytest.fixture
def classroom():
    owner = get_user_model().objects.create_user("ada", password="a long password 1")
    return classroom_create(owner=owner, title="Week 3")


def login(username: str, password: str) -> tuple[Session, str | None]:
    session = Session(peer="10.0.0.7", host="10.0.0.1", port=9092, listener=_Listener())
    error = handlers._plain_login(session, f"\0{username}\0{password}".encode())
    return session, error


def produce_request(key: bytes) -> ProduceRequest:
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 20,
    )
    builder.append(0, timestamp=1_700_000_000_000, key=key, value=b"from my laptop", headers=[])
    request = ProduceRequest[7](
        transactional_id=None,
        acks=-1,
        timeout_ms=1000,
        topic_data=[
            ProduceRequest.TopicProduceData(
                name="orders",
                partition_data=[
                    ProduceRequest.TopicProduceData.PartitionProduceData(
                        index=0, records=bytes(builder.build())
                    )
                ],
            )
        ],
    )
    return request


def partition_error(body: dict) -> tuple[int, str | None]:
    entry = body["responses"][0]["partition_responses"][0]
    return entry["error_code"], entry.get("error_message")


def test_it_logs_a_student_in_with_their_own_secret_only(classroom):
    student, _ = student_join(room=classroom, display_name="Grace", session_key="s1")
    username = selectors.kafka_student_username(student=student)
    session, error = login(username, student.client_secret)
    assert error is None
    assert (session.room_code, session.student_name, session.owner) == (
        classroom.code,
        "Grace",
        False,
    )
    # Another student's secret, or the room's, does not open Grace's name.
    other, _ = student_join(room=classroom, display_name="Alan", session_key="s2")
    assert login(username, other.client_secret)[1] == (
        "Authentication failed: Invalid username or password"
    )
    # The room's own login is the instructor's: no lock applies to it.
    owner, error = login(classroom.code, classroom.client_secret)
    assert error is None and owner.owner


def test_it_holds_a_students_code_to_the_instructors_locks(classroom):
    student, _ = student_join(room=classroom, display_name="Grace", session_key="s1")
    session, _ = login(selectors.kafka_student_username(student=student), student.client_secret)
    session.software = "kafka-python 3.0.12"
    # The APIs are closed in a new classroom: `clients` opens them.
    code, message = partition_error(handlers._produce(session, produce_request(b"k"), 7))
    assert code == 29  # TOPIC_AUTHORIZATION_FAILED
    assert "instructor" in message
    classroom_permissions_set(room=classroom, permissions={"clients": True, "produce": False})
    code, message = partition_error(handlers._produce(session, produce_request(b"k"), 7))
    assert code == 29 and "produce" in message
    classroom_permissions_set(room=classroom, permissions={"clients": True, "produce": True})
    code, _ = partition_error(handlers._produce(session, produce_request(b"grace"), 7))
    assert code == 0
    record = Record.objects.get(partition__topic__room=classroom, key="grace")
    # The board names it after the software and the student who ran it.
    assert record.producer == "kafka-python 3.0.12 (Grace)"
