"""Set up a benchmark room in the database the environment names (SQLITE_PATH), then exit.

`python -m bench.roomsetup` creates a room with topic `orders` (3 partitions) and prints
`{"code": ...}`. With `--autoplay RATE` it also adds an autoplay producer at RATE records/s and
starts the room's clock, so the server's room driver steps the room while a browser watches.
"""

from __future__ import annotations

import argparse
import json
import os

import django

KEYS = ["alice", "bob", "carol", "dave", "erin", "frank"]


def main() -> dict:
    parser = argparse.ArgumentParser()
    parser.add_argument("--autoplay", type=float, default=0.0)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()

    from messaging.services.rooms import room_create
    from messaging.services.topics import topic_create

    room = room_create(title="bench")
    topic_create(room=room, name="orders", partitions=3)
    if args.autoplay:
        from messaging.services.clock import room_clock_set
        from messaging.services.simulation import producer_create

        producer_create(
            room=room,
            name="autoplay",
            topic_name="orders",
            key_mode="set",
            keys=KEYS,
            records_per_second=args.autoplay,
        )
        room_clock_set(room=room, running=True, speed=1.0)
    return {"code": room.code}


if __name__ == "__main__":
    print(json.dumps(main()))
