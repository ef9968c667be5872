"""The stored state of every room: the database is the source of truth.

Everything a browser sees can be rebuilt from these rows; websocket events are only hints that
something changed. The constraints here are the invariants of the real systems (offsets unique
per partition, one owner per partition within a group, one committed offset per group and
partition), so a bug elsewhere fails loudly instead of teaching something false.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from messaging.engine import clock as clocks
from messaging.engine import consumer_group as kip848
from messaging.engine import consumption
from messaging.engine import group as coordinator
from messaging.engine import retention as cleaner
from messaging.engine import share_group as share_rules

# Kafka's defaults, by their real names (see shared/semantics.md).
DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000  # retention.ms
DEFAULT_DELETE_RETENTION_MS = 24 * 60 * 60 * 1000  # delete.retention.ms
DEFAULT_SESSION_TIMEOUT_MS = 45_000  # session.timeout.ms
DEFAULT_HEARTBEAT_INTERVAL_MS = 3_000  # heartbeat.interval.ms


def default_student_permissions() -> dict[str, bool]:
    """What a classroom's students may do until the instructor changes it (see permissions.py)."""
    return {"produce": True, "join": True, "crash": True, "settings": False, "clients": False}


def client_secret_new() -> str:
    """A room's (or a student's) password for their own Kafka clients (SASL/PLAIN)."""
    return secrets.token_urlsafe(18)


def join_code_normalise(raw: str) -> str:
    """What a person typed ("k7q-4mx ") as a stored code ("K7Q4MX")."""
    return "".join(ch for ch in raw.upper() if ch.isalnum())


# The records a simulated consumer takes in one poll on the board: few, so that a class can
# follow them one by one (Kafka's max.poll.records defaults to 500).
BOARD_MAX_POLL_RECORDS = 5
# Fetch sizes on the same scale: a board record stands for the 100 records of 1 KiB that
# max.poll.records is divided by, so a fetch and a poll keep Kafka's proportions:
# max.partition.fetch.bytes (1 MiB) brings up to 10 records of a partition, fetch.max.bytes
# (50 MiB) up to 512 in all, and a poll of 5 leaves the rest buffered.
BOARD_RECORD_BYTES = (500 // BOARD_MAX_POLL_RECORDS) * 1024

# A student's page is "seen" while its websocket is open: each server process refreshes its
# pages' StudentPage rows (and their students' `last_seen_at`) every STUDENT_SEEN_REFRESH_S,
# and a page counts as open, and a student's member as online, only while that is more recent
# than STUDENT_SEEN_WINDOW_S. So if a server process dies with pages open, they go offline on
# their own within STUDENT_SEEN_WINDOW_S + STUDENT_SEEN_REFRESH_S.
STUDENT_SEEN_REFRESH_S: float = settings.LOGLAB_STUDENT_SEEN_REFRESH_S
STUDENT_SEEN_WINDOW_S: float = settings.LOGLAB_STUDENT_SEEN_WINDOW_S


class Room(models.Model):
    class Kind(models.TextChoices):
        SANDBOX = "sandbox", "Sandbox"
        CLASSROOM = "classroom", "Classroom"
        LESSON = "lesson", "Lesson"

    code = models.CharField(max_length=12, unique=True)
    title = models.CharField(max_length=80, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SANDBOX)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE
    )
    # The room's virtual clock: simulated milliseconds, and how fast they pass.
    sim_time_ms = models.BigIntegerField(default=0)
    clock_running = models.BooleanField(default=False)
    clock_speed = models.FloatField(default=1.0)
    # The seq of the last RoomEvent; every write bumps it under the room's row lock.
    last_seq = models.BigIntegerField(default=0)
    # Which server process steps the room's simulation, until when (wall clock): with several
    # processes exactly one drives a room, and another takes over when the lease runs out.
    driver_owner = models.CharField(max_length=64, blank=True)
    driver_lease_until = models.DateTimeField(null=True, blank=True)
    # Side-by-side mode: records produced to this topic are also sent to the room's SQS FIFO
    # queue and classic queue, so the same stream is seen in all three.
    mirror_topic = models.ForeignKey(
        "Topic", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Classrooms: what students may do (action -> allowed), and "follow me": the path of the
    # view every student's screen follows, empty when off.
    student_permissions = models.JSONField(default=default_student_permissions, blank=True)
    follow_path = models.CharField(max_length=200, blank=True)
    # Lessons: the lesson a lesson room (or a classroom running one for the room) is on, and
    # which step of it the room has reached (classroom lesson mode: students follow it).
    lesson = models.ForeignKey(
        "Lesson", null=True, blank=True, on_delete=models.SET_NULL, related_name="rooms"
    )
    lesson_stage = models.PositiveIntegerField(default=0)
    # Learners' own Kafka clients log in with the room's code and this (SASL/PLAIN).
    client_secret = models.CharField(max_length=40, default=client_secret_new)
    # InitProducerId hands out ids from here (the broker's producer id block).
    producer_id_next = models.BigIntegerField(default=1000)
    created_at = models.DateTimeField(auto_now_add=True)
    last_active_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(clock_speed__gte=0.25) & Q(clock_speed__lte=20),
                name="room_clock_speed_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.title or self.code

    def get_absolute_url(self) -> str:
        return reverse("room", args=[self.code])

    def clock(self) -> clocks.VirtualClock:
        return clocks.new_clock(
            now_ms=self.sim_time_ms, speed=self.clock_speed, running=self.clock_running
        )


class Topic(models.Model):
    class CleanupPolicy(models.TextChoices):
        DELETE = "delete", "delete"
        COMPACT = "compact", "compact"
        COMPACT_DELETE = "compact,delete", "compact,delete"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="topics")
    name = models.CharField(max_length=249)
    partition_count = models.PositiveIntegerField()
    retention_ms = models.BigIntegerField(default=DEFAULT_RETENTION_MS)
    retention_bytes = models.BigIntegerField(default=-1)
    cleanup_policy = models.CharField(
        max_length=16, choices=CleanupPolicy.choices, default=CleanupPolicy.DELETE
    )
    delete_retention_ms = models.BigIntegerField(default=DEFAULT_DELETE_RETENTION_MS)
    # A simplification of segment.bytes: a segment rolls after this many records.
    segment_records = models.PositiveIntegerField(default=10)
    segment_ms = models.BigIntegerField(default=DEFAULT_RETENTION_MS)  # segment.ms
    # The null-key sticky partitioner's state (KIP-794), kept between produce calls.
    sticky_state = models.JSONField(default=dict, blank=True)
    # Replication (#16), by Kafka's names. A topic of replication.factor 1 has no replica state
    # of its own: its one replica is on broker 1, and its high watermark is its log end.
    replication_factor = models.PositiveSmallIntegerField(default=1)
    min_insync_replicas = models.PositiveSmallIntegerField(default=1)
    unclean_leader_election_enable = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["room", "name"], name="topic_name_unique_in_room"),
            models.CheckConstraint(
                condition=Q(partition_count__gte=1) & Q(partition_count__lte=128),
                name="topic_partition_count_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def log_config(self) -> cleaner.LogConfig:
        return cleaner.LogConfig(
            cleanup_policy=self.cleanup_policy,
            retention_ms=self.retention_ms,
            retention_bytes=self.retention_bytes,
            segment_records=self.segment_records,
            segment_ms=self.segment_ms,
            delete_retention_ms=self.delete_retention_ms,
        )


class Partition(models.Model):
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="partitions")
    index = models.PositiveIntegerField()
    # Offsets are never reused: retention moves the start, produce moves the end.
    log_start_offset = models.BigIntegerField(default=0)
    log_end_offset = models.BigIntegerField(default=0)
    # The active segment, as the engine's roll rule left it; older segments are named by their
    # records' segment_base. The log holds records, the engine thinks in segments.
    active_segment_base = models.BigIntegerField(default=0)
    active_segment_records = models.PositiveIntegerField(default=0)
    active_segment_first_ms = models.BigIntegerField(null=True, blank=True)
    # Set when a segment rolls: the log cleaner has something new to compact.
    cleaner_dirty = models.BooleanField(default=False)
    # Replication (#16): what consumers may read up to (Kafka's high watermark). None: the
    # partition has one replica, and the high watermark is the log end offset.
    high_watermark = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["topic_id", "index"]
        constraints = [
            models.UniqueConstraint(fields=["topic", "index"], name="partition_unique_in_topic"),
            models.CheckConstraint(
                condition=Q(log_start_offset__gte=0) & Q(log_start_offset__lte=F("log_end_offset")),
                name="partition_log_start_le_log_end",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.topic.name}-{self.index}"

    @property
    def consumable_end(self) -> int:
        """Where consumers' reads end: the high watermark (records past it are not yet on
        enough replicas), the log end offset for a partition of one replica."""
        return self.log_end_offset if self.high_watermark is None else self.high_watermark


class Record(models.Model):
    # No index of its own: the unique (partition, offset) index below serves every lookup by
    # partition, and a second B-tree on every insert cost a real client's Produce about a
    # tenth of SQLite's time (docs/benchmarks.md).
    partition = models.ForeignKey(
        Partition, on_delete=models.CASCADE, related_name="records", db_index=False
    )
    offset = models.BigIntegerField()
    # Null and "" differ in Kafka: an empty key is hashed like any other, a null key is not.
    key = models.CharField(max_length=256, null=True, blank=True)  # noqa: DJ001
    # A null value is a tombstone for compaction; an empty one is not.
    value = models.TextField(null=True, blank=True)  # noqa: DJ001
    # Simulated time, on the room's virtual clock: what retention.ms is measured against.
    timestamp_ms = models.BigIntegerField()
    size_bytes = models.PositiveIntegerField(default=0)
    segment_base = models.BigIntegerField(default=0)
    # Stamped by the log cleaner the first time it keeps a tombstone (KIP-534).
    delete_horizon_ms = models.BigIntegerField(null=True, blank=True)
    # Who produced it, for the board ("checkout-svc"); not part of Kafka's record.
    producer = models.CharField(max_length=64, blank=True)
    # A real client's exact bytes, kept only when the text columns above cannot hold them (not
    # UTF-8): a Fetch returns what was produced, byte for byte. The text is what pages show.
    key_bytes = models.BinaryField(null=True, blank=True)
    value_bytes = models.BinaryField(null=True, blank=True)
    # Record headers from real clients: [[name, base64 value or null], ...].
    headers = models.JSONField(null=True, blank=True)
    # A real client's CreateTime (epoch ms), given back on Fetch; retention reads timestamp_ms.
    create_time_ms = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["partition_id", "offset"]
        constraints = [
            models.UniqueConstraint(
                fields=["partition", "offset"], name="record_offset_unique_in_partition"
            ),
            models.CheckConstraint(condition=Q(offset__gte=0), name="record_offset_non_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.partition}@{self.offset}"


class ConsumerGroup(models.Model):
    """A Kafka consumer group; its states are those of Kafka's group coordinator."""

    class State(models.TextChoices):
        EMPTY = "Empty"
        PREPARING_REBALANCE = "PreparingRebalance"
        COMPLETING_REBALANCE = "CompletingRebalance"
        STABLE = "Stable"
        DEAD = "Dead"

    class Assignor(models.TextChoices):
        RANGE = "range"
        ROUNDROBIN = "roundrobin"
        STICKY = "sticky"
        COOPERATIVE_STICKY = "cooperative-sticky"

    class Protocol(models.TextChoices):
        EAGER = "eager"
        COOPERATIVE = "cooperative"

    class Delivery(models.TextChoices):
        AT_MOST_ONCE = "at-most-once"
        AT_LEAST_ONCE = "at-least-once"
        EXACTLY_ONCE = "exactly-once"

    class OffsetReset(models.TextChoices):
        EARLIEST = "earliest"
        LATEST = "latest"
        NONE = "none"

    class GroupProtocol(models.TextChoices):
        CLASSIC = "classic"
        CONSUMER = "consumer"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="groups")
    group_id = models.CharField(max_length=249)
    topics = models.ManyToManyField(Topic, related_name="groups", blank=True)
    state = models.CharField(max_length=24, choices=State.choices, default=State.EMPTY)
    generation = models.PositiveIntegerField(default=0)
    assignor = models.CharField(max_length=24, choices=Assignor.choices, default=Assignor.RANGE)
    protocol = models.CharField(max_length=16, choices=Protocol.choices, default=Protocol.EAGER)
    delivery = models.CharField(
        max_length=16, choices=Delivery.choices, default=Delivery.AT_LEAST_ONCE
    )
    auto_offset_reset = models.CharField(
        max_length=8, choices=OffsetReset.choices, default=OffsetReset.LATEST
    )
    session_timeout_ms = models.PositiveIntegerField(default=DEFAULT_SESSION_TIMEOUT_MS)
    heartbeat_interval_ms = models.PositiveIntegerField(default=DEFAULT_HEARTBEAT_INTERVAL_MS)
    # The engine numbers new members from this counter, so member ids repeat across runs.
    member_counter = models.PositiveIntegerField(default=1)
    # The coordinator's leader (the member whose assignor runs) and the partition counts the
    # current assignment was computed from: [[topic, count], ...]. A change of those counts is
    # what makes Kafka rebalance after partitions are added.
    leader_member_id = models.CharField(max_length=128, blank=True)
    known_partitions = models.JSONField(default=list, blank=True)
    # enable.auto.commit's auto.commit.interval.ms (at-least-once commits on this period).
    auto_commit_interval_ms = models.PositiveIntegerField(default=5_000)
    last_auto_commit_ms = models.BigIntegerField(default=0)
    # The processing ledger's totals (its rows are bounded; these count everything).
    processed_total = models.PositiveIntegerField(default=0)
    duplicates_total = models.PositiveIntegerField(default=0)
    skipped_total = models.PositiveIntegerField(default=0)
    # While a real client is a member, the group runs Kafka's join and sync phases in real time
    # (engine/joining.py): its state, as LiveGroup.to_dict(). Empty otherwise.
    live = models.JSONField(default=dict, blank=True)
    # The consumer group protocol (KIP-848, #15): group.protocol=classic is the above
    # (JoinGroup/SyncGroup, `assignor` and `protocol` as the clients' settings); consumer is
    # ConsumerGroupHeartbeat with the coordinator's own assignors, its state in `consumer`
    # (engine/consumer_group.py's Group.to_dict()), mirrored in the Member and Assignment rows.
    # `remote_assignor` is group.remote.assignor of the group's simulated members ("" = none:
    # the broker's default, uniform).
    group_protocol = models.CharField(
        max_length=8, choices=GroupProtocol.choices, default=GroupProtocol.CLASSIC
    )
    remote_assignor = models.CharField(max_length=16, blank=True, default="")
    consumer = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group_id"]
        constraints = [
            models.UniqueConstraint(fields=["room", "group_id"], name="group_id_unique_in_room"),
        ]

    def __str__(self) -> str:
        return self.group_id

    def coordinator_config(self) -> coordinator.GroupConfig:
        return coordinator.GroupConfig(
            group_id=self.group_id,
            assignor=self.assignor,
            rebalance_protocol=coordinator.RebalanceProtocol(self.protocol),
            session_timeout_ms=self.session_timeout_ms,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
        )

    def consumer_settings(self) -> consumption.ConsumerSettings:
        return consumption.ConsumerSettings(
            semantics=self.delivery,  # type: ignore[arg-type]
            auto_offset_reset=self.auto_offset_reset,  # type: ignore[arg-type]
            max_poll_records=BOARD_MAX_POLL_RECORDS,
            auto_commit_interval_ms=self.auto_commit_interval_ms,
        )

    def kip848_config(self) -> kip848.Config:
        """A group.protocol=consumer group's configs: its session.timeout.ms and
        heartbeat.interval.ms are the broker's (group.consumer.session.timeout.ms,
        group.consumer.heartbeat.interval.ms, or the group's consumer.* overrides)."""
        return kip848.Config(
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            session_timeout_ms=self.session_timeout_ms,
        )

    def kip848_state(self) -> kip848.Group:
        if not self.consumer:
            return kip848.Group(self.group_id)
        return kip848.Group.from_dict(self.consumer)

    def consumers_paused(self) -> bool:
        """Whether a rebalance has stopped the members. Under the classic protocol they consume
        only while the group is Stable (a rebalance revokes, then waits for everyone); under
        KIP-848 each member goes on with what it owns, whatever the group's state."""
        return self.group_protocol == self.GroupProtocol.CLASSIC and self.state != self.State.STABLE


class Member(models.Model):
    class Kind(models.TextChoices):
        SIMULATED = "simulated"
        STUDENT = "student"
        REST = "rest"
        # A real Kafka client over the wire (kafka-python, librdkafka, aiokafka, kcat, Java).
        CLIENT = "client"

    group = models.ForeignKey(ConsumerGroup, on_delete=models.CASCADE, related_name="members")
    member_id = models.CharField(max_length=128)
    client_id = models.CharField(max_length=64)
    display_name = models.CharField(max_length=40, blank=True)
    # group.instance.id: set for static members (KIP-345).
    # Null for dynamic members, so the uniqueness constraint below ignores them.
    group_instance_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SIMULATED)
    subscription = models.JSONField(default=list)
    # Join order decides the next leader when the leader goes.
    join_order = models.PositiveIntegerField(default=0)
    # The generation in which the member received its assignment (sticky assignors use it).
    generation = models.IntegerField(default=-1)
    # Simulated time of the last heartbeat: session.timeout.ms is measured from here.
    last_heartbeat_ms = models.BigIntegerField(default=0)
    # A crashed member stops heartbeating; the coordinator notices only at the session timeout.
    crashed = models.BooleanField(default=False)
    # A student's member heartbeats while their page is connected (their websocket is open).
    online = models.BooleanField(default=False)
    records_per_second = models.FloatField(default=1.0)
    # Fractions of a record the member's speed earned but did not yet spend.
    budget_carry = models.FloatField(default=0.0)
    # Its fetch session order, buffered partitions and last poll (engine FetchState.to_dict()).
    fetch_state = models.JSONField(default=dict, blank=True)
    # A real client's software, from ApiVersions ("kafka-python 3.0.12"), for the board.
    software = models.CharField(max_length=80, blank=True)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group_id", "join_order"]
        constraints = [
            models.UniqueConstraint(fields=["group", "member_id"], name="member_id_unique"),
            models.UniqueConstraint(
                fields=["group", "group_instance_id"],
                condition=Q(group_instance_id__isnull=False),
                name="group_instance_id_unique",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.client_id

    @staticmethod
    def heartbeating() -> Q:
        """The members in the server whose heartbeat thread is beating.

        Simulated members and REST Proxy's consumers heartbeat on their own (the Java client's
        heartbeat thread); a student's member heartbeats while their page is connected, so a
        closed tab or a lost phone connection ends in a session timeout, as a dead process
        does. A student's `online` alone could outlive a server process that died with the
        page open: it counts only while their page was seen recently. A real client (CLIENT)
        sends its own heartbeats over the wire, so it is never among these.
        """
        return Q(crashed=False) & (
            Q(kind__in=[Member.Kind.SIMULATED, Member.Kind.REST])
            | Q(
                kind=Member.Kind.STUDENT,
                online=True,
                student__last_seen_at__gte=Student.seen_since(),
            )
        )

    def session_expires_at(self, session_timeout_ms: int) -> int:
        """The simulated time at which the coordinator removes this member if it stays silent."""
        return coordinator.session_deadline(self.last_heartbeat_ms, session_timeout_ms)


class Assignment(models.Model):
    """A partition owned by a member; within a group a partition has at most one owner."""

    group = models.ForeignKey(ConsumerGroup, on_delete=models.CASCADE, related_name="assignments")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="assignments")
    partition = models.ForeignKey(Partition, on_delete=models.CASCADE, related_name="+")
    generation = models.PositiveIntegerField()
    # The consumer's fetch position: the next offset it will read. Not yet committed.
    position = models.BigIntegerField(null=True, blank=True)
    # The end (exclusive) of the batch the last poll returned: fetched, not all processed.
    polled_until = models.BigIntegerField(null=True, blank=True)
    # The end (exclusive) of the records fetched for it and buffered, not yet polled.
    fetched_until = models.BigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["group", "partition"], name="partition_one_owner_per_group"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partition_id} -> {self.member_id} (gen {self.generation})"


class CommittedOffset(models.Model):
    """The offset of the NEXT record the group will read from a partition (Kafka's meaning)."""

    group = models.ForeignKey(ConsumerGroup, on_delete=models.CASCADE, related_name="offsets")
    partition = models.ForeignKey(Partition, on_delete=models.CASCADE, related_name="+")
    offset = models.BigIntegerField()
    committed_at_ms = models.BigIntegerField(default=0)
    # What a client committed beside the offset (OffsetAndMetadata), given back by OffsetFetch.
    metadata = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "partition"], name="committed_offset_unique"),
            models.CheckConstraint(
                condition=Q(offset__gte=0), name="committed_offset_non_negative"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group_id}: {self.partition_id} @ {self.offset}"


class RoomEvent(models.Model):
    """The numbered stream of what happened in a room; browsers resync from it."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="events")
    seq = models.BigIntegerField()
    type = models.CharField(max_length=48)
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["room", "seq"], name="event_seq_unique_in_room"),
        ]

    def __str__(self) -> str:
        return f"#{self.seq} {self.type}"

    def as_message(self) -> dict:
        return {"seq": self.seq, "type": self.type, "payload": self.payload}


class Producer(models.Model):
    """A simulated producer on the board: a key strategy and a rate, driven by the room."""

    class KeyMode(models.TextChoices):
        FIXED = "fixed", "one fixed key"
        SET = "set", "a set of keys"
        NULL = "null", "null key"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="producers")
    name = models.CharField(max_length=40)
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="producers")
    key_mode = models.CharField(max_length=8, choices=KeyMode.choices, default=KeyMode.SET)
    keys = models.JSONField(default=list, blank=True)
    records_per_second = models.FloatField(default=1.0)
    running = models.BooleanField(default=True)
    budget_carry = models.FloatField(default=0.0)
    produced = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "name"]
        constraints = [
            models.UniqueConstraint(fields=["room", "name"], name="producer_name_unique_in_room"),
            models.CheckConstraint(
                condition=Q(records_per_second__gte=0) & Q(records_per_second__lte=200),
                name="producer_rate_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class ProcessedRecord(models.Model):
    """One line of a group's processing ledger: what its members did with each record."""

    class Status(models.TextChoices):
        FIRST = "first"
        DUPLICATE = "duplicate"  # processed again: at-least-once after a crash
        SKIPPED = "skipped"  # never processed: at-most-once after a crash

    group = models.ForeignKey(ConsumerGroup, on_delete=models.CASCADE, related_name="ledger")
    partition = models.ForeignKey(Partition, on_delete=models.CASCADE, related_name="+")
    offset = models.BigIntegerField()
    member_id = models.CharField(max_length=128, blank=True)
    status = models.CharField(max_length=12, choices=Status.choices)
    at_ms = models.BigIntegerField()

    class Meta:
        ordering = ["group_id", "id"]
        indexes = [models.Index(fields=["group", "partition", "offset"])]

    def __str__(self) -> str:
        return f"{self.group_id} {self.partition_id}@{self.offset} {self.status}"


class SqsQueue(models.Model):
    """An SQS queue of a room; `state` is the engine's Queue, serialised (`queue_to_dict`),
    plus a "board" key with what only the page needs: which consumer holds each in-flight
    message, the last dropped duplicates, and when the queue next changes on its own."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="sqs_queues")
    name = models.CharField(max_length=80)
    state = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["room", "name"], name="sqs_queue_name_unique_in_room"),
        ]

    def __str__(self) -> str:
        return self.name


class ClassicBroker(models.Model):
    """A room's RabbitMQ-style broker; `state` is the engine's Broker, serialised."""

    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="classic_broker")
    state = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"broker of {self.room_id}"


class RestConsumerInstance(models.Model):
    """A consumer instance of the Kafka REST API (Confluent REST Proxy's v2 consumers).

    Its member is an ordinary member of the group on the board; this row holds what REST Proxy
    keeps per instance.
    """

    member = models.OneToOneField(Member, on_delete=models.CASCADE, related_name="rest_instance")
    name = models.CharField(max_length=64)
    format = models.CharField(max_length=16, default="json")
    auto_offset_reset = models.CharField(max_length=8, default="latest")
    auto_commit_enable = models.BooleanField(default=True)
    subscribed = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # consumer.instance.timeout.ms is measured on the wall clock from the last request.
    last_request_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.name


class Student(models.Model):
    """A person who joined a classroom with the join code: no account, a name in the room."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="students")
    display_name = models.CharField(max_length=40)
    # The browser session that joined; the student's own page is tied to it.
    session_key = models.CharField(max_length=64)
    # Their consumer, once they join a group (they can leave it and join another).
    member = models.OneToOneField(
        Member, null=True, blank=True, on_delete=models.SET_NULL, related_name="student"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # Refreshed while the student's page is connected (at most every few seconds, in bulk):
    # their member counts as online only while this is recent, so a server that died with the
    # websocket open does not keep the member alive forever.
    last_seen_at = models.DateTimeField(auto_now=True)
    # Set when the instructor removes the student: the name stays taken and the session can no
    # longer act or join again.
    removed_at = models.DateTimeField(null=True, blank=True)
    # Their own Kafka clients log in as `<room code>.<id>` with this (SASL/PLAIN), so what they
    # run appears under their name and the classroom's locks apply to it.
    client_secret = models.CharField(max_length=40, default=client_secret_new)

    class Meta:
        ordering = ["room_id", "created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "display_name"], name="student_name_unique_in_room"
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    @staticmethod
    def seen_since() -> datetime:
        """A page seen after this is open (see STUDENT_SEEN_WINDOW_S)."""
        return timezone.now() - timedelta(seconds=STUDENT_SEEN_WINDOW_S)


class StudentPage(models.Model):
    """One open page of a student: a websocket connected to one server process.

    "Online" means at least one fresh row. The process that holds the socket writes the row
    when it opens and deletes it when it closes, however it closes; it refreshes `seen_at` for
    all its pages at once every STUDENT_SEEN_REFRESH_S, so the rows of a process that died
    turn stale after STUDENT_SEEN_WINDOW_S and any other process sweeps them. Kept in the
    database, not Redis, because the coordinator's session timeouts read presence inside the
    room's transaction: one store, one lock, the same in every deployment.
    """

    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="pages")
    # The websocket's own id (its channel name): unique across processes.
    page_id = models.CharField(max_length=200, unique=True)
    # The server process that holds the socket (services.driving.OWNER).
    owner = models.CharField(max_length=200)
    seen_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["seen_at"], name="student_page_seen_at")]

    def __str__(self) -> str:
        return self.page_id


# --- lessons -------------------------------------------------------------------------------


class Lesson(models.Model):
    """A guided lesson, loaded from lessons/<slug>.toml by `manage.py lessons_load`.

    `spec` is the parsed file (see docs/lessons-format.md); the admin can edit it, and the
    loader overwrites it from the file the next time it runs.
    """

    slug = models.SlugField(max_length=64, unique=True)
    title = models.CharField(max_length=120)
    order = models.PositiveIntegerField(default=0)
    spec = models.JSONField(default=dict)
    source_path = models.CharField(max_length=200, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "slug"]

    def __str__(self) -> str:
        return self.title


class LessonProgress(models.Model):
    """A logged-in learner's progress in one lesson (anonymous learners keep it in the session)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_progress"
    )
    lesson_slug = models.SlugField(max_length=64)
    goals_met = models.JSONField(default=list, blank=True)  # indexes of goals reached
    completed_at = models.DateTimeField(null=True, blank=True)
    quiz_correct = models.PositiveIntegerField(default=0)
    quiz_total = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "lesson progress"
        constraints = [
            models.UniqueConstraint(
                fields=["user", "lesson_slug"], name="lesson_progress_unique_per_user"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.lesson_slug}"


class RoomSnapshot(models.Model):
    """The state of a lesson room before one of the learner's steps: what "undo" goes back to."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="snapshots")
    label = models.CharField(max_length=120, blank=True)
    data = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["room_id", "pk"]

    def __str__(self) -> str:
        return self.label or f"snapshot {self.pk}"


class LessonPrediction(models.Model):
    """A student's answer to a lesson's "predict, then observe" question, pooled for the room."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="predictions")
    lesson_slug = models.SlugField(max_length=64)
    question = models.CharField(max_length=64)  # the prediction's id in the lesson file
    student = models.ForeignKey(Student, on_delete=models.CASCADE, related_name="predictions")
    choice = models.PositiveSmallIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["room", "lesson_slug", "question", "student"],
                name="prediction_unique_per_student",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.lesson_slug}/{self.question}: {self.choice}"


class RateBucket(models.Model):
    """A token bucket every server process shares when the rate limits live in the database
    (messaging/infra/rates.py: `DatabaseBuckets`, chosen in apps.py when there is no Redis)."""

    key = models.CharField(max_length=200, primary_key=True)
    tokens = models.FloatField()
    updated = models.FloatField()  # wall-clock seconds (time.time()) of the last spend
    full_at = models.FloatField(db_index=True)  # full again from then on: purged after

    def __str__(self) -> str:
        return f"{self.key}: {self.tokens:.2f}"


class ProducerState(models.Model):
    """An idempotent producer's last batches in one partition (Kafka's ProducerStateEntry):
    what lets the broker recognise a retried batch and answer it without appending it again."""

    partition = models.ForeignKey(Partition, on_delete=models.CASCADE, related_name="+")
    producer_id = models.BigIntegerField()
    # engine.idempotence.ProducerEntry.to_dict()
    state = models.JSONField(default=dict)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["partition", "producer_id"], name="producer_state_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.partition_id}/{self.producer_id}"


# --- the room timeline (#17) -------------------------------------------------------------------


class TimelineRecording(models.Model):
    """An instructor's recording: the frames of a stretch of a room's timeline, kept past the
    room's rolling window (services/timeline.py) and replayed at a link that carries `token`."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="recordings")
    token = models.CharField(max_length=32, unique=True)
    title = models.CharField(max_length=80)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    # The room events it covers (the seq of its first and last frame).
    first_seq = models.BigIntegerField(default=0)
    last_seq = models.BigIntegerField(default=0)
    # Still taking frames: a room has at most one running recording.
    running = models.BooleanField(default=True)
    size_bytes = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.room_id}: {self.title}"


class TimelineFrame(models.Model):
    """The room's board as it was once event `seq` had been recorded: a whole capture
    (`keyframe`) or the difference from the frame before it (services/timeline.py)."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="timeline_frames")
    # None: the room's rolling window; else the recording the frame belongs to.
    recording = models.ForeignKey(
        TimelineRecording, on_delete=models.CASCADE, null=True, blank=True, related_name="frames"
    )
    seq = models.BigIntegerField()
    sim_time_ms = models.BigIntegerField(default=0)
    keyframe = models.BooleanField(default=False)
    data = models.JSONField(default=dict)
    size_bytes = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["room", "recording", "seq"], name="timeline_frame_seq")]

    def __str__(self) -> str:
        return f"{self.room_id}#{self.seq}"


# --- lessons instructors build in the browser (issue #17: the lesson builder) ---------------


def share_token_new() -> str:
    return secrets.token_hex(12)


class AuthoredLesson(models.Model):
    """A lesson an instructor built in the browser or imported: `toml` (the lessons/*.toml
    format) is the source of truth. While it validates, `lesson` is its playable `Lesson` row,
    rebuilt from the text on every save (the same runner plays it); a draft that does not
    validate yet keeps its last playable row, and `error` says why."""

    class Visibility(models.TextChoices):
        PRIVATE = "private", "Only me (a draft)"
        CLASSES = "classes", "My classrooms"
        PUBLIC = "public", "My classrooms and anyone with the link"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="authored_lessons"
    )
    slug = models.SlugField(max_length=64)
    title = models.CharField(max_length=120)
    toml = models.TextField()
    error = models.TextField(blank=True)
    visibility = models.CharField(
        max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE
    )
    # The share link's secret, and the suffix of the playable row's slug.
    token = models.CharField(max_length=32, unique=True, default=share_token_new)
    lesson = models.OneToOneField(
        Lesson, null=True, blank=True, on_delete=models.SET_NULL, related_name="authored"
    )
    # The board it is built on, and that board's state when the last step was recorded.
    room = models.ForeignKey(
        Room, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    mark = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "slug"], name="authored_lesson_slug_per_owner"
            ),
        ]

    def __str__(self) -> str:
        return self.title


# --- brokers and replication (#16) ------------------------------------------------------------


class Cluster(models.Model):
    """A room's brokers. A room without this row has one broker (node 1), always up."""

    class BrokerState(models.TextChoices):
        UP = "up"
        STOPPED = "stopped"
        SLOW = "slow"

    room = models.OneToOneField(Room, on_delete=models.CASCADE, related_name="cluster")
    # [{"id": 1, "state": "up"}, ...]: node ids 1..5, in order.
    brokers = models.JSONField(default=list)
    replica_lag_time_max_ms = models.BigIntegerField(default=30_000)
    auto_leader_rebalance_enable = models.BooleanField(default=True)
    # When the controller last looked for leaders to move back to their preferred replica
    # (leader.imbalance.check.interval.seconds), on the room's clock.
    leader_checked_ms = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.room_id}: {len(self.brokers)} brokers"


class PartitionReplicas(models.Model):
    """A replicated partition's replicas, leader, ISR and high watermark: engine/replication.py's
    PartitionState as a dict. The partition's records are its leader's log."""

    partition = models.OneToOneField(
        Partition, on_delete=models.CASCADE, related_name="replication"
    )
    state = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"replicas of {self.partition_id}"


class LostRecord(models.Model):
    """The durability ledger: a record a leader change took away (its replicas never had it),
    and whether its producer had been told it was written."""

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="lost_records")
    topic = models.CharField(max_length=249)
    partition = models.PositiveIntegerField()
    offset = models.BigIntegerField()
    key = models.CharField(max_length=256, null=True, blank=True)  # noqa: DJ001
    value = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    # The producer's acks (-1, 0 or 1), and whether it had its acknowledgement.
    acks = models.SmallIntegerField()
    acknowledged = models.BooleanField()
    leader_epoch = models.IntegerField()
    # "clean": a leader from the ISR (only records past the high watermark go);
    # "unclean": unclean.leader.election.enable (committed records may go too).
    election = models.CharField(max_length=8)
    at_ms = models.BigIntegerField()

    class Meta:
        ordering = ["room_id", "-id"]

    def __str__(self) -> str:
        return f"{self.topic}-{self.partition}@{self.offset}"


# --- share groups (KIP-932, #15) ----------------------------------------------------------------


class ShareGroup(models.Model):
    """A share group ("queues for Kafka") on one topic: every member may read every partition,
    and each record is acquired by one member at a time under a lock. The per-partition state
    lives in SharePartitionState; the settings are Kafka's, by their broker names."""

    class OffsetReset(models.TextChoices):
        LATEST = "latest"
        EARLIEST = "earliest"

    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="share_groups")
    group_id = models.CharField(max_length=249)
    topic = models.ForeignKey(Topic, on_delete=models.CASCADE, related_name="share_groups")
    # share.auto.offset.reset (a group config): where a partition's SPSO starts.
    auto_offset_reset = models.CharField(
        max_length=8, choices=OffsetReset.choices, default=OffsetReset.LATEST
    )
    record_lock_duration_ms = models.PositiveIntegerField(
        default=share_rules.DEFAULT_RECORD_LOCK_DURATION_MS
    )
    delivery_count_limit = models.PositiveSmallIntegerField(
        default=share_rules.DEFAULT_DELIVERY_COUNT_LIMIT
    )
    max_record_locks = models.PositiveIntegerField(default=share_rules.DEFAULT_MAX_RECORD_LOCKS)
    # The group epoch goes up on every join and leave (ShareGroupHeartbeat's GroupEpoch).
    group_epoch = models.PositiveIntegerField(default=0)
    member_counter = models.PositiveIntegerField(default=1)
    # Running totals, by what happened to a delivery: accept, release, reject, gap,
    # lock-expired, member-left, log-start, refused (an acknowledgement Kafka refused).
    totals = models.JSONField(default=dict, blank=True)
    # The last few things that happened, newest last, for the board's narration.
    recent = models.JSONField(default=list, blank=True)
    # The side-by-side comparison this group is part of (services/share_compare.py): the SQS
    # FIFO queue and consumer group fed the same records, and the state of the simulated SQS
    # workers the room step drives like this group's consumers. Empty when it is on its own.
    compare = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["room", "group_id"], name="share_group_id_unique_in_room"
            ),
        ]

    def __str__(self) -> str:
        return self.group_id

    def config(self) -> share_rules.ShareConfig:
        return share_rules.ShareConfig(
            record_lock_duration_ms=self.record_lock_duration_ms,
            delivery_count_limit=self.delivery_count_limit,
            max_record_locks=self.max_record_locks,
        )


class ShareMember(models.Model):
    """A share consumer. A simulated one processes what it acquired at its speed and
    acknowledges each record: ACCEPT, or on a failure (`failure_rate`) RELEASE or REJECT."""

    class Kind(models.TextChoices):
        SIMULATED = "simulated"
        CLIENT = "client"

    class OnFailure(models.TextChoices):
        RELEASE = "release"
        REJECT = "reject"

    group = models.ForeignKey(ShareGroup, on_delete=models.CASCADE, related_name="members")
    member_id = models.CharField(max_length=128)
    display_name = models.CharField(max_length=40, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SIMULATED)
    member_epoch = models.IntegerField(default=0)
    join_order = models.PositiveIntegerField(default=0)
    records_per_second = models.FloatField(default=1.0)
    failure_rate = models.FloatField(default=0.0)
    on_failure = models.CharField(
        max_length=8, choices=OnFailure.choices, default=OnFailure.RELEASE
    )
    # A crashed consumer stops processing and acknowledging: its locks run out.
    crashed = models.BooleanField(default=False)
    budget_carry = models.FloatField(default=0.0)
    # What its last fetch gave it and it has not acknowledged yet, as the consumer sees it:
    # [[partition index, offset, delivery count], ...]. Its lock may have run out meanwhile.
    polled = models.JSONField(default=list, blank=True)
    # Per outcome: accept, release, reject, gap, refused.
    counts = models.JSONField(default=dict, blank=True)
    # A real client's ShareGroupHeartbeat, on the room's clock, and its software.
    last_heartbeat_ms = models.BigIntegerField(default=0)
    software = models.CharField(max_length=80, blank=True)
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["group_id", "join_order"]
        constraints = [
            models.UniqueConstraint(fields=["group", "member_id"], name="share_member_id_unique"),
            models.CheckConstraint(
                condition=Q(failure_rate__gte=0) & Q(failure_rate__lte=1),
                name="share_member_failure_rate_in_range",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name or self.member_id


class SharePartitionState(models.Model):
    """One share-partition: engine/share_group.py's SharePartition as a dict (SPSO, SPEO and
    the in-flight records), `due_ms` the next lock expiry (so the step finds them with one
    query), and `finished` the last records that became final, for the board."""

    group = models.ForeignKey(ShareGroup, on_delete=models.CASCADE, related_name="partitions")
    partition = models.ForeignKey(Partition, on_delete=models.CASCADE, related_name="+")
    state = models.JSONField(default=dict)
    due_ms = models.BigIntegerField(null=True, blank=True)
    # [[offset, state, delivery count], ...], newest last, bounded.
    finished = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["group_id", "partition_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "partition"], name="share_partition_unique_in_group"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group_id}: {self.partition_id}"
