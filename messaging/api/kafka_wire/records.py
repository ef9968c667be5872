"""Record batches (magic 2): read a Produce request's records, write a Fetch response's.

The layout and the checks are Kafka's (`DefaultRecordBatch.java`, `DefaultRecord.java`,
`ByteUtils.java`; the broker's checks in `UnifiedLog.analyzeAndValidateRecords`,
`LogValidator.validateBatch` and `ProduceRequest.validateRecords`), and each refusal carries the
error name Kafka answers with. Which name matters to clients: CORRUPT_MESSAGE is retriable (a
producer sends the batch again until `delivery.timeout.ms`), INVALID_RECORD is not, so the
names below follow where Kafka throws `CorruptRecordException` and where
`InvalidRecordException`:

- CORRUPT_MESSAGE: a batch length below the overhead or past the end of the data, a CRC-32C that
  does not match, a compressed payload its codec cannot read.
- INVALID_RECORD: a magic other than 2 (Kafka 4 only takes Produce v3+, whose
  `validateRecords` refuses old magic 0/1 message sets that way), a base offset other than 0, a
  record count that is not `lastOffsetDelta + 1` or not positive, a control batch (transaction
  markers are the coordinator's, never a client's), an idempotent batch without a sequence, and
  any record that does not parse (truncated, a varint longer than Kafka's 5/10 bytes, a length
  that does not add up, bytes left after the last record).
- UNSUPPORTED_COMPRESSION_TYPE: codec ids 5-7.
- RECORD_LIST_TOO_LARGE: more than `max_records` records, or decompressing past
  `max_uncompressed_bytes`. Kafka has no such bound; we need one so a zip bomb costs at most the
  bound (every codec is read incrementally with a cap on its output, never inflated whole).
- MESSAGE_TOO_LARGE: an uncompressed batch whose records alone pass `max_uncompressed_bytes`.

Where Kafka is lenient we are too: a negative key or value length of any size means null
(`Utils.readBytes`), a 5-byte varint keeps its low 32 bits as Java's `int` does, the record
attributes byte is ignored. Where it is lenient by accident we refuse: Kafka's batch iterator
silently drops a truncated trailing batch; here it is CORRUPT_MESSAGE. Header keys are decoded
as UTF-8 with replacement characters, as Java's `new String(bytes, UTF_8)` shows them.
`batches_decode` reads every batch in the data; Kafka refuses a Produce whose partition holds
more than one (INVALID_RECORD, "exactly one record batch per partition"), which is the caller's
rule to apply: no client sends several.

Why our own reader and writer, measured with `python -m bench.records_codec` (Python 3.11, one
core of this 2-core machine while other work ran, best of 5; a producer's batch of 500 records
of ~60 bytes, no headers):

    kafka-python 3.0.12 DefaultRecordBatch, uncompressed (iterate, CRC)   ~340,000 records/s
    batches_decode, uncompressed (CRC checked, WireRecord objects)       ~780,000 records/s
    batches_decode, gzip / snappy / lz4 / zstd                   ~650,000-760,000 records/s
    kafka-python DefaultRecordBatchBuilder (append + build)              ~640,000 records/s
    batch_encode (Fetch; also with compacted gaps)                     ~2,500,000 records/s

kafka-python's reader builds a record object per record through a Python varint function per
field; ours reads 1- and 2-byte varints inline. We keep kafka-python's CRC-32C
(`kafka.record.util.calc_crc32c`, the C `crc32c` package when installed) and the pinned codec
libraries (zlib for gzip, python-snappy, lz4.frame, zstandard), and kafka-python's
reader and builder remain the reference the tests compare against.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import lz4.frame
import snappy
import zstandard
from kafka.record.util import calc_crc32c

COMPRESSION_NONE = 0
COMPRESSION_GZIP = 1
COMPRESSION_SNAPPY = 2
COMPRESSION_LZ4 = 3
COMPRESSION_ZSTD = 4

# BaseOffset int64, Length int32, PartitionLeaderEpoch int32, Magic int8, CRC uint32, then the
# part the CRC covers: Attributes int16, LastOffsetDelta int32, BaseTimestamp int64,
# MaxTimestamp int64, ProducerId int64, ProducerEpoch int16, BaseSequence int32, count int32.
_BATCH_HEAD = struct.Struct(">qiibI")
_BATCH_TAIL = struct.Struct(">hiqqqhii")
BATCH_OVERHEAD = _BATCH_HEAD.size + _BATCH_TAIL.size  # 61
_LOG_OVERHEAD = 12  # BaseOffset + Length: what the Length does not count
_MAGIC_AT = 16
_CRC_FROM = _BATCH_HEAD.size  # 21: Attributes onwards
# The smallest length any magic's framing allows (LegacyRecord.RECORD_OVERHEAD_V0): below it
# Kafka's batch iterator throws CorruptRecordException before it looks at the magic.
_MIN_LENGTH_ANY_MAGIC = 14

_ATTR_CODEC = 0x07
_ATTR_TIMESTAMP_TYPE = 0x08
_ATTR_TRANSACTIONAL = 0x10
_ATTR_CONTROL = 0x20

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_INT32_MAX = (1 << 31) - 1

# zstd's block format caps what one byte of input can become (an RLE block: 4 bytes -> 128 KiB),
# so fed in slices of n bytes it produces at most n * _ZSTD_MAX_RATIO bytes before we can look.
# The window a frame may ask for is capped too (8 MiB covers levels up to 19; the "ultra"
# levels' larger windows are refused as corrupt).
_ZSTD_MAX_RATIO = 32 * 1024
_ZSTD_MAX_WINDOW = 8 << 20
_XERIAL_MAGIC = b"\x82SNAPPY\x00"


class RecordsError(Exception):
    """Records a client sent that Kafka would refuse; ``error`` is Kafka's error name."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(f"{error}: {message}")
        self.error = error
        self.message = message


@dataclass(frozen=True)
class WireRecord:
    offset_delta: int
    timestamp_ms: int  # absolute: the batch's base timestamp + the record's delta
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class WireBatch:
    base_offset: int
    producer_id: int  # -1 when not idempotent
    producer_epoch: int
    base_sequence: int  # -1 when not idempotent
    last_offset_delta: int
    is_transactional: bool
    is_control: bool
    compression: int  # 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd
    timestamp_type: int  # 0 CreateTime, 1 LogAppendTime
    records: tuple[WireRecord, ...]
    size_bytes: int  # the whole batch on the wire, BaseOffset to its last byte


def batches_decode(
    data: bytes | bytearray | memoryview, *, max_records: int, max_uncompressed_bytes: int
) -> list[WireBatch]:
    """Every batch in a Produce request's records field, checked as Kafka's broker checks them.

    Raises RecordsError (and nothing else) for anything Kafka refuses; `max_records` and
    `max_uncompressed_bytes` bound the whole call, all batches together.
    """
    buf = bytes(data)
    end = len(buf)
    if end == 0:
        raise RecordsError(
            "INVALID_RECORD", "Produce requests must have at least one record batch per partition"
        )
    batches: list[WireBatch] = []
    budget = _Budget(max_records, max_uncompressed_bytes)
    pos = 0
    while pos < end:
        batch, pos = _batch_read(buf, pos, budget)
        batches.append(batch)
    return batches


class _Budget:
    __slots__ = ("records", "bytes")

    def __init__(self, records: int, bytes_: int) -> None:
        self.records = records
        self.bytes = bytes_


def _batch_read(buf: bytes, start: int, budget: _Budget) -> tuple[WireBatch, int]:
    end = len(buf)
    if end - start < _LOG_OVERHEAD:
        raise RecordsError(
            "CORRUPT_MESSAGE", f"{end - start} trailing bytes are too few for a record batch"
        )
    (length,) = struct.unpack_from(">i", buf, start + 8)
    if length < _MIN_LENGTH_ANY_MAGIC:
        raise RecordsError(
            "CORRUPT_MESSAGE",
            f"Record size {length} is less than the minimum record overhead "
            f"({_MIN_LENGTH_ANY_MAGIC})",
        )
    batch_end = start + _LOG_OVERHEAD + length
    if batch_end > end:
        raise RecordsError(
            "CORRUPT_MESSAGE",
            f"Record batch of {length + _LOG_OVERHEAD} bytes is truncated at {end - start}",
        )
    magic = buf[start + _MAGIC_AT]
    if magic != 2:
        # Message sets of magic 0 and 1 (before Kafka 0.11) are refused by Kafka 4 as well:
        # it only takes Produce v3+, and ProduceRequest.validateRecords lets those carry magic 2
        # only. (A signed byte: 0x80-0xff are negative magics, refused the same way.)
        signed = magic - 256 if magic > 127 else magic
        raise RecordsError(
            "INVALID_RECORD",
            f"Produce requests are only allowed to contain record batches with magic version 2, "
            f"not {signed}",
        )
    if length + _LOG_OVERHEAD < BATCH_OVERHEAD:
        raise RecordsError(
            "CORRUPT_MESSAGE",
            f"Record batch is corrupt (the size {length + _LOG_OVERHEAD} is smaller than the "
            f"minimum allowed overhead {BATCH_OVERHEAD})",
        )
    base_offset, _, _, _, crc = _BATCH_HEAD.unpack_from(buf, start)
    (
        attributes,
        last_offset_delta,
        base_timestamp,
        _max_timestamp,
        producer_id,
        producer_epoch,
        base_sequence,
        count,
    ) = _BATCH_TAIL.unpack_from(buf, start + _CRC_FROM)
    if base_offset != 0:
        raise RecordsError(
            "INVALID_RECORD",
            f"The baseOffset of the record batch in the append should be 0, but it is "
            f"{base_offset}",
        )
    computed = calc_crc32c(memoryview(buf)[start + _CRC_FROM : batch_end])
    if computed != crc:
        raise RecordsError(
            "CORRUPT_MESSAGE", f"Record is corrupt (stored crc = {crc}, computed = {computed})"
        )
    compression = attributes & _ATTR_CODEC
    if compression > COMPRESSION_ZSTD:
        raise RecordsError(
            "UNSUPPORTED_COMPRESSION_TYPE", f"Unknown compression type id: {compression}"
        )
    if last_offset_delta < 0:
        raise RecordsError(
            "INVALID_RECORD", f"Batch has an invalid offset range: [0, {last_offset_delta}]"
        )
    if count <= 0:
        raise RecordsError("INVALID_RECORD", f"Invalid reported count for record batch: {count}")
    if count != last_offset_delta + 1:
        raise RecordsError(
            "INVALID_RECORD",
            f"Inconsistent batch offset range [0, {last_offset_delta}] and count of records "
            f"{count}",
        )
    if attributes & _ATTR_CONTROL:
        raise RecordsError("INVALID_RECORD", "Clients are not allowed to write control records")
    if producer_id >= 0 and base_sequence < 0:
        raise RecordsError(
            "INVALID_RECORD",
            f"Invalid sequence number {base_sequence} in record batch with producerId "
            f"{producer_id}",
        )
    if count > budget.records:
        raise RecordsError(
            "RECORD_LIST_TOO_LARGE",
            f"{count} records are more than the {budget.records} this request may still carry",
        )
    budget.records -= count

    records_from = start + BATCH_OVERHEAD
    if compression == COMPRESSION_NONE:
        size = batch_end - records_from
        if size > budget.bytes:
            raise RecordsError(
                "MESSAGE_TOO_LARGE",
                f"The record batch's {size} bytes of records exceed the {budget.bytes} allowed",
            )
        budget.bytes -= size
        records = _records_read(buf, records_from, batch_end, count, base_timestamp)
    else:
        plain = _decompress(compression, buf[records_from:batch_end], budget.bytes)
        budget.bytes -= len(plain)
        records = _records_read(plain, 0, len(plain), count, base_timestamp)

    batch = WireBatch(
        base_offset=base_offset,
        producer_id=producer_id,
        producer_epoch=producer_epoch,
        base_sequence=base_sequence,
        last_offset_delta=last_offset_delta,
        is_transactional=bool(attributes & _ATTR_TRANSACTIONAL),
        is_control=False,
        compression=compression,
        timestamp_type=1 if attributes & _ATTR_TIMESTAMP_TYPE else 0,
        records=records,
        size_bytes=batch_end - start,
    )
    return batch, batch_end


def _invalid(message: str) -> RecordsError:
    return RecordsError("INVALID_RECORD", message)


def _varint_rest(buf: bytes, pos: int, value: int) -> tuple[int, int]:
    """The unsigned varint whose first two bytes (`value`, continuing) are already read.

    Kafka's readVarint stops at 5 bytes and keeps 32 bits, as Java's int shifts do.
    """
    shift = 14
    while shift <= 28:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value & 0xFFFFFFFF, pos
        shift += 7
    raise _invalid("Varint is too long, the most significant bit in the 5th byte is set")


def _int64(value: int) -> int:
    """Java's long arithmetic wraps around; Kafka adds the timestamp delta that way."""
    if _INT64_MIN <= value <= _INT64_MAX:
        return value
    return ((value - _INT64_MIN) & 0xFFFFFFFFFFFFFFFF) + _INT64_MIN


def _varlong(buf: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varlong (Kafka's readVarlong: at most 10 bytes, 64 bits)."""
    value = 0
    shift = 0
    while shift <= 63:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            value &= 0xFFFFFFFFFFFFFFFF
            return (value >> 1) ^ -(value & 1), pos
        shift += 7
    raise _invalid("Varlong is too long, the most significant bit in the 10th byte is set")


def _records_read(
    buf: bytes, pos: int, end: int, count: int, base_timestamp: int
) -> tuple[WireRecord, ...]:
    # One function with the 1- and 2-byte varint cases written out: a function call per field
    # would cost more than the rest of the loop. Zig-zag: (v >> 1) ^ -(v & 1).
    out: list[WireRecord] = []
    append = out.append
    new = object.__new__
    set_dict = object.__setattr__
    cls = WireRecord
    no_headers: tuple = ()
    # Deltas of 1 or 2 bytes (|delta| < 8192) cannot leave the int64 range from a base this far
    # inside it, so only such bases pay for the check on every record.
    near_edge = not -(1 << 62) < base_timestamp < (1 << 62)
    try:
        for _ in range(count):
            # Length (varint)
            v = buf[pos]
            if v < 0x80:
                pos += 1
            else:
                b = buf[pos + 1]
                if b < 0x80:
                    v = (v & 0x7F) | (b << 7)
                    pos += 2
                else:
                    v, pos = _varint_rest(buf, pos + 2, (v & 0x7F) | ((b & 0x7F) << 7))
            length = (v >> 1) ^ -(v & 1)
            record_end = pos + length
            if length < 0 or record_end > end:
                raise _invalid(
                    f"Invalid record size: expected {length} bytes in record payload, but "
                    f"the batch has only {end - pos} remaining bytes"
                )
            pos += 1  # attributes: unused in magic 2
            # TimestampDelta (varlong)
            v = buf[pos]
            if v < 0x80:
                pos += 1
                timestamp = base_timestamp + ((v >> 1) ^ -(v & 1))
            else:
                b = buf[pos + 1]
                if b < 0x80:
                    v = (v & 0x7F) | (b << 7)
                    pos += 2
                    timestamp = base_timestamp + ((v >> 1) ^ -(v & 1))
                else:
                    delta, pos = _varlong(buf, pos)
                    timestamp = _int64(base_timestamp + delta)
            if near_edge:
                timestamp = _int64(timestamp)
            # OffsetDelta (varint)
            v = buf[pos]
            if v < 0x80:
                pos += 1
            else:
                b = buf[pos + 1]
                if b < 0x80:
                    v = (v & 0x7F) | (b << 7)
                    pos += 2
                else:
                    v, pos = _varint_rest(buf, pos + 2, (v & 0x7F) | ((b & 0x7F) << 7))
            offset_delta = (v >> 1) ^ -(v & 1)
            # Key (varint length, -1 null)
            v = buf[pos]
            if v < 0x80:
                pos += 1
            else:
                b = buf[pos + 1]
                if b < 0x80:
                    v = (v & 0x7F) | (b << 7)
                    pos += 2
                else:
                    v, pos = _varint_rest(buf, pos + 2, (v & 0x7F) | ((b & 0x7F) << 7))
            if v & 1:
                key = None
            else:
                v >>= 1
                key = buf[pos : pos + v]
                pos += v
            # Value (varint length, -1 null)
            v = buf[pos]
            if v < 0x80:
                pos += 1
            else:
                b = buf[pos + 1]
                if b < 0x80:
                    v = (v & 0x7F) | (b << 7)
                    pos += 2
                else:
                    v, pos = _varint_rest(buf, pos + 2, (v & 0x7F) | ((b & 0x7F) << 7))
            if v & 1:
                value = None
            else:
                v >>= 1
                value = buf[pos : pos + v]
                pos += v
            # Headers count (varint)
            v = buf[pos]
            pos += 1
            if v == 0:
                headers = no_headers
            else:
                headers, pos = _headers_read(buf, pos - 1, record_end)
            if pos != record_end:
                raise _invalid(
                    f"Invalid record size: expected to read {length} bytes in record payload, "
                    f"but instead read {pos - record_end + length}"
                )
            # A frozen dataclass's __init__ sets each field through object.__setattr__; one
            # __dict__ assignment builds the same object at a third of the cost.
            record = new(cls)
            set_dict(
                record,
                "__dict__",
                {
                    "offset_delta": offset_delta,
                    "timestamp_ms": timestamp,
                    "key": key,
                    "value": value,
                    "headers": headers,
                },
            )
            append(record)
    except IndexError:
        raise _invalid("Found invalid record structure: the batch ends inside a record") from None
    if pos != end:
        raise _invalid("Incorrect declared batch size, records still remaining in file")
    return tuple(out)


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint (Kafka's readVarint)."""
    v = buf[pos]
    if v < 0x80:
        return (v >> 1) ^ -(v & 1), pos + 1
    b = buf[pos + 1]
    if b < 0x80:
        v = (v & 0x7F) | (b << 7)
        return (v >> 1) ^ -(v & 1), pos + 2
    v, pos = _varint_rest(buf, pos + 2, (v & 0x7F) | ((b & 0x7F) << 7))
    return (v >> 1) ^ -(v & 1), pos


def _headers_read(
    buf: bytes, pos: int, record_end: int
) -> tuple[tuple[tuple[str, bytes | None], ...], int]:
    count, pos = _varint(buf, pos)
    if count < 0:
        raise _invalid(f"Found invalid number of record headers {count}")
    if count > record_end - pos:
        raise _invalid(
            f"Found invalid number of record headers. {count} is larger than the remaining "
            f"size of the buffer"
        )
    headers = []
    for _ in range(count):
        key_size, pos = _varint(buf, pos)
        if key_size < 0:
            raise _invalid(f"Invalid negative header key size {key_size}")
        key = buf[pos : pos + key_size].decode("utf-8", "replace")
        pos += key_size
        value_size, pos = _varint(buf, pos)
        if value_size < 0:
            value = None
        else:
            value = buf[pos : pos + value_size]
            pos += value_size
        headers.append((key, value))
    return tuple(headers), pos


def _too_large(limit: int) -> RecordsError:
    return RecordsError(
        "RECORD_LIST_TOO_LARGE", f"The decompressed records exceed the {limit} bytes allowed"
    )


def _corrupt(codec: str, detail: object) -> RecordsError:
    return RecordsError("CORRUPT_MESSAGE", f"Failed to decompress the {codec} records: {detail}")


def _decompress(compression: int, payload: bytes, limit: int) -> bytes:
    if compression == COMPRESSION_GZIP:
        return _gunzip(payload, limit)
    if compression == COMPRESSION_SNAPPY:
        return _unsnappy(payload, limit)
    if compression == COMPRESSION_LZ4:
        return _unlz4(payload, limit)
    return _unzstd(payload, limit)


def _gunzip(payload: bytes, limit: int) -> bytes:
    out: list[bytes] = []
    produced = 0
    data = payload
    try:
        # Java's GZIPInputStream reads concatenated members and ignores bytes after the last
        # one that do not start another member.
        while True:
            inflater = zlib.decompressobj(wbits=31)
            while True:
                chunk = inflater.decompress(data, limit - produced + 1)
                produced += len(chunk)
                if produced > limit:
                    raise _too_large(limit)
                out.append(chunk)
                data = inflater.unconsumed_tail
                if inflater.eof or not data:
                    break
            # All input read, the output under its cap, and still no end: the stream is cut.
            if not inflater.eof:
                raise _corrupt("gzip", "the stream ends early")
            data = inflater.unused_data
            if not data.startswith(b"\x1f\x8b"):
                break
    except zlib.error as exc:
        raise _corrupt("gzip", exc) from None
    return b"".join(out)


def _snappy_raw(block: bytes, limit: int) -> bytes:
    # A raw snappy block starts with its uncompressed length (an unsigned varint of at most 5
    # bytes): check it before the library allocates that much.
    declared = 0
    for i, b in enumerate(block[:5]):
        declared |= (b & 0x7F) << (7 * i)
        if b < 0x80:
            break
    else:
        raise _corrupt("snappy", "no uncompressed length")
    if declared > limit:
        raise _too_large(limit)
    try:
        return snappy.uncompress(block)
    except snappy.UncompressError as exc:
        raise _corrupt("snappy", exc) from None


def _unsnappy(payload: bytes, limit: int) -> bytes:
    # Java's producer writes snappy-java's "xerial" framing (a 16-byte header, then blocks each
    # prefixed by its int32 length); librdkafka and others may send one raw block, which
    # snappy-java's SnappyInputStream reads too.
    if len(payload) <= 16 or not payload.startswith(_XERIAL_MAGIC):
        return _snappy_raw(payload, limit)
    out: list[bytes] = []
    produced = 0
    pos = 16
    end = len(payload)
    while pos < end:
        if end - pos < 4:
            raise _corrupt("snappy", "a block length is cut short")
        (size,) = struct.unpack_from(">i", payload, pos)
        pos += 4
        if size < 0 or pos + size > end:
            raise _corrupt("snappy", f"a block of {size} bytes does not fit")
        block = _snappy_raw(payload[pos : pos + size], limit - produced)
        pos += size
        produced += len(block)
        out.append(block)
    return b"".join(out)


def _unlz4(payload: bytes, limit: int) -> bytes:
    try:
        inflater = lz4.frame.LZ4FrameDecompressor()
        out = inflater.decompress(payload, max_length=limit + 1)
    except RuntimeError as exc:
        raise _corrupt("lz4", exc) from None
    if len(out) > limit:
        raise _too_large(limit)
    if not inflater.eof:
        raise _corrupt("lz4", "the frame ends early")
    return out


def _unzstd(payload: bytes, limit: int) -> bytes:
    # Overshoot at most max(8 MiB, limit) before the check below refuses the batch.
    step = max(256, min(1 << 16, limit // _ZSTD_MAX_RATIO))
    out: list[bytes] = []
    produced = 0
    data = payload
    context = zstandard.ZstdDecompressor(max_window_size=_ZSTD_MAX_WINDOW)
    try:
        while data:
            inflater = context.decompressobj()
            pos = 0
            while pos < len(data) and not inflater.eof:
                chunk = inflater.decompress(data[pos : pos + step])
                pos += step
                produced += len(chunk)
                if produced > limit:
                    raise _too_large(limit)
                out.append(chunk)
            if not inflater.eof:
                raise _corrupt("zstd", "the frame ends early")
            # zstd-jni's stream reads frame after frame, as does this loop.
            data = inflater.unused_data + data[pos:]
    except zstandard.ZstdError as exc:
        raise _corrupt("zstd", exc) from None
    return b"".join(out)


# Encoding --------------------------------------------------------------------------------------

# Zig-zag varints of the small non-negative numbers (lengths, offset deltas) come from a table.
_SMALL = 1 << 14


def _varint_bytes(value: int) -> bytes:
    v = (value << 1) ^ (value >> 63)
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


_VARINT_SMALL: tuple[bytes, ...] = tuple(_varint_bytes(i) for i in range(_SMALL))
_NULL = _varint_bytes(-1)


def batch_encode(
    records: Sequence[
        tuple[int, int, bytes | None, bytes | None, Sequence[tuple[str, bytes | None]]]
    ],
    *,
    base_offset: int | None = None,
) -> bytes:
    """One uncompressed magic-2 batch of `(offset, timestamp_ms, key, value, headers)`.

    The records are in offset order, possibly with gaps (compaction): each keeps its own offset
    as `base_offset + delta`. `base_offset` defaults to the first record's offset. The batch is
    what a Fetch response carries: CRC-32C set, producer id/epoch/sequence -1, CreateTime,
    partition leader epoch 0. No records: b"" (an empty records field).
    """
    if not records:
        return b""
    first_offset = records[0][0]
    base = first_offset if base_offset is None else base_offset
    base_timestamp = records[0][1]
    max_timestamp = base_timestamp
    small = _VARINT_SMALL
    parts: list[bytes] = []
    append = parts.append
    join = b"".join
    previous = base - 1
    for offset, timestamp, key, value, headers in records:
        if offset <= previous:
            raise ValueError(f"offset {offset} after {previous}: records must be in offset order")
        previous = offset
        if timestamp > max_timestamp:
            max_timestamp = timestamp
        delta = offset - base
        ts_delta = timestamp - base_timestamp
        body = [
            b"\x00",
            small[ts_delta] if 0 <= ts_delta < _SMALL else _varint_bytes(ts_delta),
            small[delta] if delta < _SMALL else _varint_bytes(delta),
        ]
        if key is None:
            body.append(_NULL)
        else:
            n = len(key)
            body.append(small[n] if n < _SMALL else _varint_bytes(n))
            body.append(key)
        if value is None:
            body.append(_NULL)
        else:
            n = len(value)
            body.append(small[n] if n < _SMALL else _varint_bytes(n))
            body.append(value)
        if headers:
            body.append(_varint_bytes(len(headers)))
            for header_key, header_value in headers:
                raw = header_key.encode("utf-8")
                body.append(_varint_bytes(len(raw)))
                body.append(raw)
                if header_value is None:
                    body.append(_NULL)
                else:
                    body.append(_varint_bytes(len(header_value)))
                    body.append(header_value)
        else:
            body.append(b"\x00")
        encoded = join(body)
        n = len(encoded)
        append(small[n] if n < _SMALL else _varint_bytes(n))
        append(encoded)
    last_offset_delta = previous - base
    if last_offset_delta > _INT32_MAX:
        raise ValueError(f"offsets span {last_offset_delta + 1}, more than a batch can hold")
    tail = _BATCH_TAIL.pack(
        0,  # attributes: no compression, CreateTime, not transactional, not control
        last_offset_delta,
        base_timestamp,
        max_timestamp,
        -1,  # producer id
        -1,  # producer epoch
        -1,  # base sequence
        len(records),
    ) + join(parts)
    crc = calc_crc32c(tail)
    length = len(tail) + _BATCH_HEAD.size - _LOG_OVERHEAD
    return _BATCH_HEAD.pack(base, length, 0, 2, crc) + tail
