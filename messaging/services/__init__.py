"""Every write to LogLab's state goes through a function in this package.

Each one is atomic, asks the engine for the decision, stores the result with a numbered
RoomEvent, and broadcasts that event after the commit.
"""

from messaging.services.events import event_record, room_lock
from messaging.services.groups import group_create, offset_commit
from messaging.services.records import ProducedRecord, RecordIn, records_produce
from messaging.services.rooms import room_create, room_seed_demo, room_seed_sandbox
from messaging.services.topics import topic_create

__all__ = [
    "ProducedRecord",
    "RecordIn",
    "event_record",
    "group_create",
    "offset_commit",
    "records_produce",
    "room_create",
    "room_lock",
    "room_seed_demo",
    "room_seed_sandbox",
    "topic_create",
]
