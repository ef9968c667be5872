"""A real client's records stored and read back byte for byte, whichever way they were
inserted (SQLite's JSON path for plain rows, executemany for the rest)."""

from __future__ import annotations

import pytest

from messaging.models import Partition, Record
from messaging.selectors import kafka_records_read
from messaging.services.client_records import ClientBatch, ClientRecord, client_produce
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db

SENT = [
    (b"plain", b'{"order": 1, "note": "quotes \\" and \\\\ backslashes"}', ()),
    ("caf\u00e9 \U0001f600".encode(), "\u2028 line separator, \U0001f680 astral".encode(), ()),
    (b"nul\x00key", b"nul\x00value", ()),
    (b"\xff\xfe not utf-8", b"\x80\x81\x82", ()),
    (None, b"no key", ()),
    (b"tombstone", None, ()),
    (b"", b"", ()),
    (b"headers", b"h", (("trace", b"\x00\x01"), ("empty", None))),
    (b"\x01\x1f control", b"\t\n\r", ()),
]


@pytest.fixture
def partition():
    room = room_create(title="bytes")
    topic_create(room=room, name="raw", partitions=1)
    return room, Partition.objects.get(topic__room=room, topic__name="raw")


def read_back(room, partition):
    partition.refresh_from_db()
    read = kafka_records_read(partition=partition, offset=0, max_bytes=1 << 20, epoch_ms=0)
    return [(key, value, tuple(headers)) for _, _, key, value, headers in read.records]


@pytest.mark.parametrize("together", [True, False], ids=["one-batch", "a-batch-each"])
def test_it_gives_back_exactly_the_bytes_a_client_produced(partition, together) -> None:
    room, part = partition
    records = [ClientRecord(key, value, 1_700_000_000_000 + i, headers)
               for i, (key, value, headers) in enumerate(SENT)]  # fmt: skip
    batches = [ClientBatch(-1, -1, -1, records)] if together else [
        ClientBatch(-1, -1, -1, [record]) for record in records]  # fmt: skip
    [answer] = client_produce(room=room, writes=[("raw", 0, batches)], producer="t")
    assert answer.error is None and answer.base_offset == 0
    assert read_back(room, part) == [(k, v, h) for k, v, h in SENT]
    stored = list(Record.objects.filter(partition=part).order_by("offset"))
    # What the board shows: the text, with what it cannot hold written out.
    assert (stored[2].key, stored[2].value) == ("nul\\x00key", "nul\\x00value")
    assert (stored[3].key, stored[3].value) == ("\\xff\\xfe not utf-8", "\\x80\\x81\\x82")
    assert [r.offset for r in stored] == list(range(len(SENT)))
    assert [r.create_time_ms for r in stored] == [1_700_000_000_000 + i for i in range(len(SENT))]
    assert stored[0].key == "plain" and stored[1].value.startswith("\u2028")
    assert all(r.producer == "t" and r.timestamp_ms == room.sim_time_ms for r in stored)


def test_it_stores_a_plain_batch_with_the_rows_the_board_reads(partition) -> None:
    room, part = partition
    records = [ClientRecord(f"k{i}".encode(), f"v{i}".encode(), 5) for i in range(500)]
    client_produce(room=room, writes=[("raw", 0, [ClientBatch(-1, -1, -1, records)])], producer="p")
    stored = Record.objects.filter(partition=part).order_by("offset")
    assert stored.count() == 500
    last = stored.last()
    assert (last.offset, last.key, last.value, last.size_bytes) == (499, "k499", "v499", 4 + 4 + 8)
    assert last.key_bytes is None and last.value_bytes is None and last.headers is None
    part.refresh_from_db()
    assert part.log_end_offset == 500


def test_it_keeps_a_nul_in_a_header_name_as_text_instead_of_failing(partition) -> None:
    room, part = partition
    record = ClientRecord(b"k", b"v", 0, (("a\x00b", b"x"),))
    [answer] = client_produce(
        room=room, writes=[("raw", 0, [ClientBatch(-1, -1, -1, [record])])], producer="t"
    )
    assert answer.error is None
    assert read_back(room, part) == [(b"k", b"v", (("a\\x00b", b"x"),))]
