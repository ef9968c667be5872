"""Record batches (magic 2) against kafka-python's own reader and writer, plus Kafka's refusals.

kafka-python's DefaultRecordBatchBuilder stands in for the producers (it writes what the Java
client and librdkafka write), its DefaultRecordBatch for the consumers that parse our Fetch
batches.
"""

from __future__ import annotations

import gzip
import struct
import tracemalloc
import zlib

import lz4.frame
import pytest
import snappy
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder
from kafka.record.legacy_records import LegacyRecordBatchBuilder
from kafka.record.memory_records import MemoryRecords
from kafka.record.util import calc_crc32c

from messaging.api.kafka_wire.records import (
    BATCH_OVERHEAD,
    RecordsError,
    WireBatch,
    WireRecord,
    batch_encode,
    batches_decode,
)

LIMITS = {"max_records": 100_000, "max_uncompressed_bytes": 64 << 20}
TS = 1_760_000_000_000
CODECS = {"gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def decode(data: bytes, **limits: int) -> list[WireBatch]:
    return batches_decode(data, **{**LIMITS, **limits})


def built(
    records,
    *,
    compression: int = 0,
    producer_id: int = -1,
    producer_epoch: int = -1,
    base_sequence: int = -1,
    transactional: bool = False,
) -> bytes:
    """A batch as a producer writes it (kafka-python's builder; base offset 0)."""
    builder = DefaultRecordBatchBuilder(
        2, compression, transactional, producer_id, producer_epoch, base_sequence, 1 << 30
    )
    for offset, timestamp, key, value, headers in records:
        builder.append(offset, timestamp, key, value, list(headers))
    return bytes(builder.build())


def recrc(batch: bytes | bytearray) -> bytes:
    """The batch with its CRC-32C recomputed, so a test reaches the checks behind the CRC."""
    out = bytearray(batch)
    struct.pack_into(">I", out, 17, calc_crc32c(memoryview(out)[21:]))
    return bytes(out)


def raw_batch(
    records_section: bytes,
    *,
    count: int,
    attributes: int = 0,
    last_offset_delta: int | None = None,
    base_offset: int = 0,
    producer_id: int = -1,
    base_sequence: int = -1,
) -> bytes:
    """A batch around hand-written record bytes (for records no builder would write)."""
    tail = (
        struct.pack(
            ">hiqqqhii",
            attributes,
            count - 1 if last_offset_delta is None else last_offset_delta,
            TS,
            TS,
            producer_id,
            -1 if producer_id < 0 else 0,
            base_sequence,
            count,
        )
        + records_section
    )
    head = struct.pack(">qiibI", base_offset, len(tail) + 9, 0, 2, calc_crc32c(tail))
    return head + tail


def varint(value: int) -> bytes:
    v = (value << 1) ^ (value >> 63)
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def record_bytes(body: bytes) -> bytes:
    return varint(len(body)) + body


def refused(data: bytes, **limits: int) -> str:
    with pytest.raises(RecordsError) as caught:
        decode(data, **limits)
    return caught.value.error


SAMPLE = [
    (0, TS, b"k0", b"v0", []),
    (1, TS + 5, None, b"value without a key", [("trace", b"abc"), ("empty", None)]),
    (2, TS - 3, b"tombstone", None, []),
    (3, TS + 1000, None, None, [("h\u00e9llo", b"")]),
    (4, TS + 70_000, b"big", b"x" * 300_000, [("a", b"1"), ("b", b"2" * 200)]),
]


def as_tuples(batch: WireBatch) -> list[tuple]:
    return [
        (r.offset_delta, r.timestamp_ms, r.key, r.value, [(k, v) for k, v in r.headers])
        for r in batch.records
    ]


# Round trips with kafka-python's builder ------------------------------------------------------


@pytest.mark.parametrize("compression", [0, 1, 2, 3, 4], ids=["none", *CODECS])
def test_it_reads_every_codec_kafka_python_writes(compression):
    data = built(SAMPLE, compression=compression, producer_id=7, producer_epoch=3, base_sequence=41)
    (batch,) = decode(data)
    assert as_tuples(batch) == SAMPLE
    reference = DefaultRecordBatch(data)
    assert batch.compression == reference.compression_type == compression
    assert (batch.producer_id, batch.producer_epoch, batch.base_sequence) == (7, 3, 41)
    assert (batch.base_offset, batch.last_offset_delta) == (0, 4)
    assert (batch.is_transactional, batch.is_control, batch.timestamp_type) == (False, False, 0)
    assert batch.size_bytes == len(data)


def test_it_reads_a_transactional_batch_as_transactional():
    data = built(SAMPLE[:2], producer_id=9, producer_epoch=0, base_sequence=0, transactional=True)
    (batch,) = decode(data)
    assert batch.is_transactional


def test_it_reads_several_batches_in_one_records_field():
    first = built(SAMPLE[:2])
    second = built([(0, *SAMPLE[2][1:])], compression=4)
    batches = decode(first + second)
    assert [b.size_bytes for b in batches] == [len(first), len(second)]
    assert as_tuples(batches[1]) == [(0, *SAMPLE[2][1:])]


def test_it_takes_a_memoryview_and_a_bytearray():
    data = built(SAMPLE[:2])
    assert decode(memoryview(data)) == decode(bytearray(data)) == decode(data)


def test_it_builds_records_equal_to_ones_made_by_the_constructor():
    (batch,) = decode(built(SAMPLE[:1]))
    assert batch.records[0] == WireRecord(0, TS, b"k0", b"v0", ())
    assert hash(batch.records[0]) == hash(WireRecord(0, TS, b"k0", b"v0", ()))


headers_st = st.lists(
    st.tuples(st.text(max_size=8), st.one_of(st.none(), st.binary(max_size=20))), max_size=3
)
records_st = st.lists(
    st.tuples(
        st.integers(-(10**6), 10**6),
        st.one_of(st.none(), st.binary(max_size=300)),
        st.one_of(st.none(), st.binary(max_size=3000)),
        headers_st,
    ),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(records=records_st, compression=st.sampled_from([0, 1, 2, 3, 4]))
def test_it_round_trips_anything_kafka_pythons_builder_writes(records, compression):
    rows = [(i, TS + dt, k, v, h) for i, (dt, k, v, h) in enumerate(records)]
    (batch,) = decode(built(rows, compression=compression))
    assert as_tuples(batch) == rows


# Our Fetch batches, read by kafka-python's consumer side -------------------------------------


def test_it_encodes_a_batch_kafka_pythons_reader_accepts():
    rows = [(100 + i, ts, k, v, h) for i, (_, ts, k, v, h) in enumerate(SAMPLE)]
    data = batch_encode(rows)
    reference = DefaultRecordBatch(data)
    assert reference.validate_crc()
    assert (reference.magic, reference.base_offset, reference.last_offset_delta) == (2, 100, 4)
    assert (reference.producer_id, reference.producer_epoch, reference.base_sequence) == (
        -1,
        -1,
        -1,
    )
    assert (reference.compression_type, reference.timestamp_type) == (0, 0)
    assert reference.max_timestamp == max(r[1] for r in rows)
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in reference] == rows


def test_it_keeps_the_offsets_of_a_compacted_log():
    rows = [(5, TS, b"a", b"1", []), (9, TS + 1, b"b", b"2", []), (30, TS + 2, b"c", None, [])]
    data = batch_encode(rows)
    reference = DefaultRecordBatch(data)
    assert reference.validate_crc()
    assert reference.base_offset == 5 and reference.last_offset_delta == 25
    assert [r.offset for r in reference] == [5, 9, 30]


def test_it_encodes_from_a_given_base_offset():
    # A compacted batch that lost its first records still starts at its original base offset.
    data = batch_encode([(12, TS, None, b"v", [])], base_offset=10)
    reference = DefaultRecordBatch(data)
    assert reference.base_offset == 10 and [r.offset for r in reference] == [12]


def test_it_encodes_batches_a_consumer_reads_back_to_back():
    data = batch_encode([(0, TS, b"a", b"1", [])]) + batch_encode([(1, TS, b"b", b"2", [])])
    records = MemoryRecords(data)
    offsets = []
    while records.has_next():
        batch = records.next_batch()
        assert batch.validate_crc()
        offsets.extend(r.offset for r in batch)
    assert offsets == [0, 1]


def test_it_encodes_nothing_for_no_records():
    assert batch_encode([]) == b""


def test_it_refuses_to_encode_records_out_of_order():
    with pytest.raises(ValueError):
        batch_encode([(3, TS, None, None, []), (3, TS, None, None, [])])
    with pytest.raises(ValueError):
        batch_encode([(3, TS, None, None, [])], base_offset=4)


@settings(max_examples=150, deadline=None)
@given(
    records=records_st,
    start=st.integers(0, 2**40),
    gaps=st.lists(st.integers(1, 1000), min_size=40, max_size=40),
)
def test_it_encodes_what_kafka_python_reads_and_we_read_back(records, start, gaps):
    rows, offset = [], start
    for (dt, key, value, headers), gap in zip(records, gaps, strict=False):
        rows.append((offset, TS + dt, key, value, headers))
        offset += gap
    data = batch_encode(rows)
    reference = DefaultRecordBatch(data)
    assert reference.validate_crc()
    assert [(r.offset, r.timestamp, r.key, r.value, r.headers) for r in reference] == rows
    # Our own reader takes it too once it looks like a producer's: base offset 0, no gaps.
    contiguous = [(i, *rest) for i, (_, *rest) in enumerate(rows)]
    (batch,) = decode(batch_encode(contiguous))
    assert [
        (r.offset_delta, r.timestamp_ms, r.key, r.value, list(r.headers)) for r in batch.records
    ] == contiguous


def test_it_refuses_a_fetch_batch_with_gaps_as_a_producers_batch():
    # Kafka's LogValidator: a client's batch must hold lastOffsetDelta + 1 records.
    gappy = batch_encode([(0, TS, None, b"a", []), (2, TS, None, b"b", [])])
    assert refused(gappy) == "INVALID_RECORD"


# Kafka's refusals ------------------------------------------------------------------------------


def test_it_refuses_an_empty_records_field_as_kafka_does():
    assert refused(b"") == "INVALID_RECORD"


def test_it_refuses_a_wrong_crc_as_corrupt():
    data = bytearray(built(SAMPLE[:2]))
    data[-1] ^= 0x01
    assert refused(bytes(data)) == "CORRUPT_MESSAGE"


@pytest.mark.parametrize("magic", [0, 1])
def test_it_refuses_old_message_sets_like_kafka_4(magic):
    builder = LegacyRecordBatchBuilder(magic, 0, 1 << 20)
    builder.append(0, timestamp=TS if magic else None, key=b"k", value=b"v")
    assert refused(bytes(builder.build())) == "INVALID_RECORD"


def test_it_refuses_a_magic_it_does_not_know():
    data = bytearray(built(SAMPLE[:1]))
    data[16] = 3
    assert refused(bytes(data)) == "INVALID_RECORD"


@pytest.mark.parametrize("codec", [5, 6, 7])
def test_it_refuses_an_unknown_codec(codec):
    data = bytearray(built(SAMPLE[:1]))
    data[22] |= codec
    assert refused(recrc(data)) == "UNSUPPORTED_COMPRESSION_TYPE"


def test_it_refuses_a_control_batch_from_a_client():
    # A transaction marker: control bit, key (version 0, type 1 = commit).
    body = b"\x00" + varint(0) + varint(0) + varint(4) + b"\x00\x00\x00\x01" + varint(6)
    body += b"\x00\x00\x00\x00\x00\x00" + varint(0)
    data = raw_batch(record_bytes(body), count=1, attributes=0x30, producer_id=5, base_sequence=0)
    assert refused(data) == "INVALID_RECORD"


def test_it_refuses_a_base_offset_other_than_zero():
    data = bytearray(built(SAMPLE[:1]))
    struct.pack_into(">q", data, 0, 42)  # not covered by the CRC
    assert refused(bytes(data)) == "INVALID_RECORD"


@pytest.mark.parametrize(("count", "last_delta"), [(2, 0), (0, -1), (1, 1), (-1, -2)], ids=str)
def test_it_refuses_a_count_that_does_not_match_the_offsets(count, last_delta):
    body = record_bytes(b"\x00" + varint(0) + varint(0) + varint(-1) + varint(-1) + varint(0))
    data = raw_batch(body, count=count, last_offset_delta=last_delta)
    assert refused(data) == "INVALID_RECORD"


def test_it_refuses_an_idempotent_batch_without_a_sequence():
    data = built(SAMPLE[:1], producer_id=3, producer_epoch=0, base_sequence=0)
    data = bytearray(data)
    struct.pack_into(">i", data, 53, -1)
    assert refused(recrc(data)) == "INVALID_RECORD"


def test_it_refuses_a_truncated_batch_as_corrupt():
    data = built(SAMPLE[:2])
    assert refused(data[:-1]) == "CORRUPT_MESSAGE"
    assert refused(data[:11]) == "CORRUPT_MESSAGE"
    assert refused(data + data[:30]) == "CORRUPT_MESSAGE"


@pytest.mark.parametrize("length", [-1, 0, 13])
def test_it_refuses_a_length_below_any_overhead(length):
    data = bytearray(built(SAMPLE[:1]))
    struct.pack_into(">i", data, 8, length)
    assert refused(bytes(data)) == "CORRUPT_MESSAGE"


def test_it_refuses_a_magic_2_batch_shorter_than_its_header():
    data = bytearray(built(SAMPLE[:1]))
    struct.pack_into(">i", data, 8, BATCH_OVERHEAD - 13)
    assert refused(bytes(data[: BATCH_OVERHEAD - 1])) == "CORRUPT_MESSAGE"


def test_it_refuses_bytes_left_after_the_last_record():
    body = record_bytes(b"\x00" + varint(0) + varint(0) + varint(-1) + varint(-1) + varint(0))
    assert refused(raw_batch(body + b"\x00", count=1)) == "INVALID_RECORD"


def test_it_refuses_a_record_longer_than_its_batch():
    body = b"\x00" + varint(0) + varint(0) + varint(-1) + varint(-1) + varint(0)
    assert refused(raw_batch(varint(len(body) + 5) + body, count=1)) == "INVALID_RECORD"


def test_it_refuses_a_record_whose_fields_overrun_its_length():
    body = b"\x00" + varint(0) + varint(0) + varint(3) + b"abc" + varint(-1) + varint(0)
    assert refused(raw_batch(varint(len(body) - 2) + body, count=1)) == "INVALID_RECORD"


def test_it_refuses_a_varint_longer_than_five_bytes():
    body = b"\x00" + varint(0) + b"\x80\x80\x80\x80\x80\x00" + varint(-1) + varint(-1)
    body += varint(0)
    assert refused(raw_batch(record_bytes(body), count=1)) == "INVALID_RECORD"


def test_it_refuses_a_negative_header_count_or_key_size():
    base = b"\x00" + varint(0) + varint(0) + varint(-1) + varint(-1)
    assert refused(raw_batch(record_bytes(base + varint(-1)), count=1)) == "INVALID_RECORD"
    bad_key = base + varint(1) + varint(-1) + varint(-1)
    assert refused(raw_batch(record_bytes(bad_key), count=1)) == "INVALID_RECORD"
    too_many = base + varint(1000) + varint(0) + varint(-1)
    assert refused(raw_batch(record_bytes(too_many), count=1)) == "INVALID_RECORD"


def test_it_reads_any_negative_key_or_value_length_as_null_like_kafka():
    # Kafka's Utils.readBytes returns null for every negative size, not only -1.
    body = b"\x00" + varint(0) + varint(0) + varint(-7) + varint(-2) + varint(0)
    (batch,) = decode(raw_batch(record_bytes(body), count=1))
    assert (batch.records[0].key, batch.records[0].value) == (None, None)


def test_it_keeps_32_bits_of_a_five_byte_varint_like_java():
    # 0xFFFFFFFE in 5 bytes with high garbage bits in the last one: Java's int keeps 0xFFFFFFFE,
    # zig-zag 2147483647.
    offset = b"\xfe\xff\xff\xff\x7f"
    body = b"\x00" + varint(0) + offset + varint(-1) + varint(-1) + varint(0)
    (batch,) = decode(raw_batch(record_bytes(body), count=1))
    assert batch.records[0].offset_delta == 2147483647


def test_it_wraps_timestamps_as_javas_long_does():
    body = b"\x00" + varint(10) + varint(0) + varint(-1) + varint(-1) + varint(0)
    data = bytearray(raw_batch(record_bytes(body), count=1))
    struct.pack_into(">q", data, 27, 2**63 - 1)
    (batch,) = decode(recrc(data))
    assert batch.records[0].timestamp_ms == -(2**63) + 9


def test_it_reads_header_keys_that_are_not_utf8_with_replacement_characters():
    base = b"\x00" + varint(0) + varint(0) + varint(-1) + varint(-1)
    body = base + varint(1) + varint(2) + b"\xff\xfe" + varint(1) + b"v"
    (batch,) = decode(raw_batch(record_bytes(body), count=1))
    assert batch.records[0].headers == (("\ufffd\ufffd", b"v"),)


def test_it_refuses_more_records_than_allowed_in_the_whole_request():
    data = built(SAMPLE[:3])
    assert refused(data + data, max_records=5) == "RECORD_LIST_TOO_LARGE"
    assert len(decode(data + data, max_records=6)) == 2


def test_it_refuses_an_uncompressed_batch_over_the_bytes_allowed():
    data = built([(0, TS, None, b"x" * 1000, [])])
    assert refused(data, max_uncompressed_bytes=500) == "MESSAGE_TOO_LARGE"


# Compressed payloads: corruption, framings, bombs ---------------------------------------------


def compressed_batch(payload: bytes, codec: int, count: int = 1) -> bytes:
    return raw_batch(payload, count=count, attributes=codec)


def one_record() -> bytes:
    return record_bytes(b"\x00" + varint(0) + varint(0) + varint(-1) + varint(1) + b"v" + b"\x00")


@pytest.mark.parametrize("codec", CODECS.values(), ids=list(CODECS))
def test_it_refuses_a_payload_its_codec_cannot_read_as_corrupt(codec):
    assert refused(compressed_batch(b"not compressed at all, really", codec)) == "CORRUPT_MESSAGE"


@pytest.mark.parametrize(
    ("codec", "compress"),
    [
        (1, gzip.compress),
        (3, lz4.frame.compress),
        (4, zstandard.ZstdCompressor().compress),
    ],
    ids=["gzip", "lz4", "zstd"],
)
def test_it_refuses_a_compressed_stream_cut_short(codec, compress):
    payload = compress(one_record() * 2000)
    (batch,) = decode(compressed_batch(payload, codec, count=2000))
    assert len(batch.records) == 2000
    cut = compressed_batch(payload[: len(payload) // 2], codec, count=2000)
    assert refused(cut) == "CORRUPT_MESSAGE"


def test_it_reads_gzip_members_back_to_back_as_java_does():
    payload = gzip.compress(one_record()) + gzip.compress(one_record())
    (batch,) = decode(compressed_batch(payload, 1, count=2))
    assert len(batch.records) == 2


def test_it_reads_raw_snappy_as_well_as_xerial_framing():
    raw = snappy.compress(one_record() * 3)
    (batch,) = decode(compressed_batch(raw, 2, count=3))
    assert len(batch.records) == 3


def test_it_reads_zstd_frames_back_to_back():
    z = zstandard.ZstdCompressor()
    (batch,) = decode(compressed_batch(z.compress(one_record()) + z.compress(one_record()), 4, 2))
    assert len(batch.records) == 2


BOMB = b"\x00" * (200 << 20)


def _xerial(data: bytes) -> bytes:
    header = b"\x82SNAPPY\x00" + struct.pack(">ii", 1, 1)
    blocks = [snappy.compress(data[i : i + (1 << 20)]) for i in range(0, len(data), 1 << 20)]
    return header + b"".join(struct.pack(">i", len(b)) + b for b in blocks)


@pytest.mark.parametrize(
    ("codec", "make"),
    [
        (1, lambda: zlib.compress(BOMB, 9, wbits=31)),
        (2, lambda: _xerial(BOMB)),
        (2, lambda: snappy.compress(BOMB)),
        (3, lambda: lz4.frame.compress(BOMB)),
        (4, lambda: zstandard.ZstdCompressor(level=19).compress(BOMB)),
        (4, lambda: zstandard.ZstdCompressor(write_content_size=False).compress(BOMB)),
    ],
    ids=["gzip", "snappy-xerial", "snappy-raw", "lz4", "zstd", "zstd-no-size"],
)
def test_it_stops_a_zip_bomb_at_the_bound_without_inflating_it(codec, make):
    payload = make()
    assert len(payload) < 12 << 20
    data = compressed_batch(payload, codec, count=1000)
    tracemalloc.start()
    try:
        error = refused(data, max_uncompressed_bytes=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error == "RECORD_LIST_TOO_LARGE"
    assert peak < 24 << 20  # 200 MiB inflated would show; the bound and a slice do not


# Nothing but RecordsError, whatever comes in ---------------------------------------------------

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALID = [
    built(SAMPLE[:4], compression=c, producer_id=1, producer_epoch=0, base_sequence=0)
    for c in range(5)
] + [
    raw_batch(one_record() * 3, count=3),
    batch_encode([(i, TS + i, b"k", b"v" * i, [("h", b"x")]) for i in range(5)]),
]


def decodes_or_refuses(data: bytes) -> None:
    try:
        decode(data, max_records=1000, max_uncompressed_bytes=1 << 20)
    except RecordsError as exc:
        assert exc.error in {
            "CORRUPT_MESSAGE",
            "INVALID_RECORD",
            "UNSUPPORTED_COMPRESSION_TYPE",
            "RECORD_LIST_TOO_LARGE",
            "MESSAGE_TOO_LARGE",
        }


@FUZZ
@given(st.binary(max_size=400))
def test_it_only_ever_refuses_random_bytes(data):
    decodes_or_refuses(data)


@FUZZ
@given(st.binary(min_size=49, max_size=400))
def test_it_only_ever_refuses_random_bytes_behind_a_valid_header(body):
    # Framing, magic and CRC right: the parser reaches the attributes, counts and records.
    data = struct.pack(">qiib", 0, len(body) + 4 + 5, 0, 2) + b"\x00\x00\x00\x00" + body
    decodes_or_refuses(recrc(data))


@FUZZ
@given(
    batch=st.sampled_from(VALID),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=8),
    fix_crc=st.booleans(),
)
def test_it_only_ever_refuses_mutated_batches(batch, flips, fix_crc):
    data = bytearray(batch)
    for where, mask in flips:
        data[where % len(data)] ^= mask
    decodes_or_refuses(recrc(data) if fix_crc and len(data) > 21 else bytes(data))


@FUZZ
@given(batch=st.sampled_from(VALID), cut=st.integers(0, 10**6), fix_length=st.booleans())
def test_it_only_ever_refuses_truncated_batches(batch, cut, fix_length):
    data = bytearray(batch[: cut % len(batch)])
    if fix_length and len(data) >= 21:
        struct.pack_into(">i", data, 8, len(data) - 12)
        data = bytearray(recrc(data))
    decodes_or_refuses(bytes(data))
