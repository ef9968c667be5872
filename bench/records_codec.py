"""Record batch codec speed: `python -m bench.records_codec [--seconds N]`.

Decodes a producer's batch of 500 small records (the size kafka-python and librdkafka send
under load) and encodes Fetch batches of 500 records, with LogLab's codec
(`messaging/api/kafka_wire/records.py`) and, for comparison, kafka-python's own reader and
builder. Prints records per second, best of a few runs, on one core. Not part of `make bench`
(it needs no server): the figures are quoted in the codec's docstring.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from kafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from messaging.api.kafka_wire.records import batch_encode, batches_decode

RECORDS = 500
BASE_TS = 1_760_000_000_000
CODECS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}


def _records() -> list[tuple[int, int, bytes, bytes, list]]:
    return [
        (i, BASE_TS + i // 10, b"key-%d" % (i % 16), b"value-%06d " % i + b"x" * 40, [])
        for i in range(RECORDS)
    ]


def _produced_batch(compression: int) -> bytes:
    """A batch as an idempotent producer sends it, written by kafka-python's builder."""
    builder = DefaultRecordBatchBuilder(2, compression, False, 4000, 0, 0, 10**9)
    for offset, ts, key, value, headers in _records():
        builder.append(offset, ts, key, value, headers)
    return bytes(builder.build())


def _rate(work: Callable[[], int], seconds: float) -> float:
    """Records per second, the best of five slices of `seconds / 5`."""
    best = 0.0
    for _ in range(5):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds / 5
        while time.perf_counter() < deadline:
            done += work()
        best = max(best, done / (time.perf_counter() - start))
    return best


def _kafka_python_decode(data: bytes) -> int:
    batch = DefaultRecordBatch(data)
    if not batch.validate_crc():
        raise AssertionError("bad CRC")
    return len([(r.offset, r.timestamp, r.key, r.value, r.headers) for r in batch])


def _kafka_python_encode(records: list) -> int:
    builder = DefaultRecordBatchBuilder(2, 0, False, -1, -1, -1, 10**9)
    for offset, ts, key, value, headers in records:
        builder.append(offset, ts, key, value, headers)
    builder.build()
    return len(records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.records_codec", description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    seconds = parser.parse_args(argv).seconds
    records = _records()
    limit = 64 << 20
    rows: list[tuple[str, float]] = []
    for name, codec in CODECS.items():
        data = _produced_batch(codec)
        rows.append(
            (
                f"decode {name:6} ({len(data):>6} B) batches_decode",
                _rate(
                    lambda d=data: len(
                        batches_decode(d, max_records=10_000, max_uncompressed_bytes=limit)[
                            0
                        ].records
                    ),
                    seconds,
                ),
            )
        )
    plain = _produced_batch(0)
    rows.append(
        (
            "decode none   kafka-python DefaultRecordBatch",
            _rate(lambda: _kafka_python_decode(plain), seconds),
        )
    )
    rows.append(
        (
            "encode none   batch_encode",
            _rate(lambda: len(records) if batch_encode(records) else 0, seconds),
        )
    )
    gappy = [(r[0] * 3 + 7, *r[1:]) for r in records]
    rows.append(
        (
            "encode gaps   batch_encode (compacted offsets)",
            _rate(lambda: len(gappy) if batch_encode(gappy) else 0, seconds),
        )
    )
    rows.append(
        (
            "encode none   kafka-python DefaultRecordBatchBuilder",
            _rate(lambda: _kafka_python_encode(records), seconds),
        )
    )
    for label, rate in rows:
        print(f"{label:56} {rate:>12,.0f} records/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
