"""Many processes producing into one topic at once; prints what the log looks like after.

Run as `python -m tests.support.produce_storm WRITERS RECORDS_EACH` with the database chosen by
the environment (SQLITE_PATH or DATABASE_URL). Separate processes, not threads: that is what
concurrent writers are on a real server, each with its own database connection.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import sys

import django


def write(room_pk: int, writer: int, count: int) -> int:
    from messaging.models import Room
    from messaging.services.records import RecordIn, records_produce

    room = Room.objects.get(pk=room_pk)
    for i in range(count):
        records_produce(
            room=room,
            topic_name="storm",
            records=[RecordIn(key=f"writer{writer}-key{i % 17}", value=f"{writer}:{i}")],
            producer=f"writer-{writer}",
        )
    return count


def main(writers: int, each: int) -> dict:
    from django.core.management import call_command
    from django.db import connections

    from messaging.models import Partition, Record, RoomEvent
    from messaging.services.rooms import room_create
    from messaging.services.topics import topic_create

    call_command("migrate", verbosity=0)
    room = room_create(title="storm")
    topic_create(room=room, name="storm", partitions=3)
    connections.close_all()  # children must open their own connections, not share ours
    # A psycopg pool's worker threads do not survive a fork: each child makes a pool of its own.
    if hasattr(connections["default"], "close_pool"):
        connections["default"].close_pool()

    context = multiprocessing.get_context("fork")
    with context.Pool(writers) as pool:
        written = pool.starmap(write, [(room.pk, w, each) for w in range(writers)])

    partitions = {}
    for partition in Partition.objects.filter(topic__room=room).order_by("index"):
        offsets = list(
            Record.objects.filter(partition=partition)
            .order_by("offset")
            .values_list("offset", flat=True)
        )
        partitions[partition.index] = {
            "count": len(offsets),
            "offsets_are_0_to_n": offsets == list(range(len(offsets))),
            "log_end_offset": partition.log_end_offset,
        }
    seqs = list(RoomEvent.objects.filter(room=room).order_by("seq").values_list("seq", flat=True))
    return {
        "written": sum(written),
        "partitions": partitions,
        "events_gapless": seqs == list(range(1, len(seqs) + 1)),
        "events": len(seqs),
        "vendor": connections["default"].vendor,
    }


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]))))
