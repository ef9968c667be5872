"""The soak's database side, run as a subprocess on the database the environment names
(SQLITE_PATH or DATABASE_URL): sets rooms up through the services, and reads back what the
servers stored. Each command prints one JSON line.

  python -m bench.soak_db room                     a sandbox room with topic `soak` (3 partitions)
  python -m bench.soak_db autoplay RATE SPEED      a room whose clock runs: an autoplay producer
                                                   at RATE records/s into `orders`, group
                                                   `workers` of 2 consumers at SPEED records/s
  python -m bench.soak_db produce CODE VALUE       one record into `soak` through the service
                                                   (once a line arrives on stdin, after READY:
                                                   Django's start-up is not in the timing)
  python -m bench.soak_db check CODE TOPIC ACKS    the log read back against the acknowledged
                                                   produces in the JSON file ACKS
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

import django

TOPIC, PARTITIONS = "soak", 3


def room() -> dict:
    from messaging.services.rooms import room_create
    from messaging.services.topics import topic_create

    created = room_create(title="soak")
    topic_create(room=created, name=TOPIC, partitions=PARTITIONS)
    created.refresh_from_db()
    return {"code": created.code, "pk": created.pk, "seq": created.last_seq}


def autoplay(rate: float, speed: float) -> dict:
    from messaging.models import ConsumerGroup
    from messaging.services.clock import room_clock_set
    from messaging.services.groups import group_create, members_join
    from messaging.services.rooms import room_create
    from messaging.services.simulation import member_set_speed, producer_create
    from messaging.services.topics import topic_create

    created = room_create(title="soak autoplay")
    topic_create(room=created, name="orders", partitions=PARTITIONS)
    producer_create(
        room=created,
        name="autoplay",
        topic_name="orders",
        key_mode="set",
        keys=["alice", "bob", "carol", "dave", "erin", "frank"],
        records_per_second=rate,
    )
    group = group_create(
        room=created,
        group_id="workers",
        topics=["orders"],
        auto_offset_reset=ConsumerGroup.OffsetReset.EARLIEST,
    )
    members, _ = members_join(group=group, client_id="worker", count=2)
    for member in members:
        member_set_speed(member=member, records_per_second=speed)
    room_clock_set(room=created, running=True, speed=1.0)
    return {"code": created.code, "pk": created.pk}


def produce(code: str, value: str) -> dict:
    from messaging.selectors import room_get
    from messaging.services.records import RecordIn, records_produce

    found = room_get(code=code)
    records_produce(
        room=found, topic_name=TOPIC, records=[RecordIn(key="soak", value=value)], producer="soak"
    )
    found.refresh_from_db()
    return {"seq": found.last_seq}


def check(code: str, topic: str, acks_path: str) -> dict:
    """Offsets contiguous from the log start to the log end, every acknowledged produce stored
    exactly once where its acknowledgement said, the room's events numbered without gaps."""
    from messaging.models import Partition, Record, RoomEvent
    from messaging.selectors import room_get

    found = room_get(code=code)
    acks = json.loads(Path(acks_path).read_text()) if acks_path != "-" else []
    gaps = 0
    stored: dict[str, list[tuple[int, int]]] = {}
    partitions = {}
    for partition in Partition.objects.filter(topic__room=found, topic__name=topic).order_by(
        "index"
    ):
        rows = list(
            Record.objects.filter(partition=partition)
            .order_by("offset")
            .values_list("offset", "value")
        )
        offsets = [offset for offset, _ in rows]
        expected = list(range(partition.log_start_offset, partition.log_end_offset))
        gaps += len(set(expected) - set(offsets)) + len(set(offsets) - set(expected))
        gaps += len(offsets) - len(set(offsets))  # one offset given twice
        for offset, value in rows:
            stored.setdefault(value or "", []).append((partition.index, offset))
        partitions[partition.index] = {
            "records": len(rows),
            "log_start_offset": partition.log_start_offset,
            "log_end_offset": partition.log_end_offset,
        }
    acked = Counter(value for value, _, _ in acks)
    # Only acknowledged values are unique by construction (autoplay's repeat).
    duplicates = sum(
        len(stored.get(value, [])) - 1 for value in acked if len(stored.get(value, [])) > 1
    )
    lost = sum(1 for value in acked if value not in stored)
    misplaced = sum(
        1
        for value, partition, offset in acks
        if value in stored and [partition, offset] not in [list(p) for p in stored[value]]
    )
    seqs = list(RoomEvent.objects.filter(room=found).order_by("seq").values_list("seq", flat=True))
    found.refresh_from_db()
    # Old events may be trimmed: what is kept must run without a hole up to the room's last.
    first = seqs[0] if seqs else found.last_seq + 1
    event_gaps = len(set(range(first, found.last_seq + 1)) - set(seqs)) + len(seqs) - len(set(seqs))
    return {
        "partitions": partitions,
        "stored": sum(len(places) for places in stored.values()),
        "acknowledged": len(acks),
        "acknowledged_twice": sum(n - 1 for n in acked.values() if n > 1),
        "gaps": gaps,
        "duplicates": duplicates,
        "lost": lost,
        "misplaced": misplaced,
        "unacknowledged_stored": sum(1 for value in stored if value not in acked and value),
        "events": len(seqs),
        "event_gaps": event_gaps,
    }


def main(argv: list[str]) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    command, args = argv[0], argv[1:]
    if command == "room":
        return room()
    if command == "autoplay":
        return autoplay(float(args[0]), float(args[1]))
    if command == "produce":
        print("READY", flush=True)
        sys.stdin.readline()
        return produce(args[0], args[1])
    if command == "check":
        return check(args[0], args[1], args[2])
    raise SystemExit(__doc__)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    print(json.dumps(main(sys.argv[1:])))
