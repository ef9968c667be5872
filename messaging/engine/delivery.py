"""Delivery guarantees, end to end: producer acks and retries, idempotence, transactions, and the
consumer loop's at-most-once / at-least-once / exactly-once.

Facts reproduced (Apache Kafka's producer, ProducerStateManager, transaction coordinator and
Fetcher):

* Producer. ``acks=0`` is fire and forget: no response, so retries never happen and a lost request
  is lost silently (Kafka reports offset -1, shown here as None). ``acks=1``: the leader answers
  once it has written; if it dies before a follower copied the record, the record is gone although
  the producer saw success. ``acks=all`` (the default): the answer waits for the in-sync replicas,
  so that loss cannot happen. A request whose answer never comes is retried (``retries``), so a
  lost ack writes the record twice unless the producer is idempotent.
* Idempotence (``enable.idempotence=true``, the default; needs ``acks=all``): the broker keeps, per
  producer id and partition, the last sequence number and the last 5 batches. Sequence last+1 is
  appended; a retry of one of the last 5 is a duplicate, dropped, and answered with the original
  offset; anything else is ``OutOfOrderSequenceException``.
* Transactions (``transactional.id``): records written inside a transaction are in the log at once
  (``read_uncommitted`` readers see them) and a COMMIT or ABORT control record (a marker, which
  takes an offset) ends them in every partition touched. ``read_committed`` readers stop at the
  last stable offset (the first offset of the oldest open transaction), skip aborted records and
  never see markers. ``sendOffsetsToTransaction`` commits the consumer group's offsets with the
  transaction. A new producer with the same transactional.id bumps the epoch, aborts the open
  transaction and fences the old one (``ProducerFencedException``).
* Consumer loop: the committed offset is the next offset to read; after a crash the partition's
  next owner starts from it. Commit before processing loses records on a crash (at-most-once);
  process before commit replays them (at-least-once: duplicates); consume-transform-produce with
  the offsets inside the transaction and a read_committed reader gives exactly-once output.

Simplifications (shown on screen): one record per batch; the high watermark is the log end
offset; the coordinator, not the client, tracks that a transaction has begun; the transform of
the consumer loop is the identity, so its output can be compared with its input; the epoch is
bumped only by ``init_transactions`` (Kafka 4's KIP-890 also bumps it on every commit).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

from messaging.engine.offsets import (
    AUTO_OFFSET_RESET_DEFAULT,
    AutoOffsetReset,
    lag,
    starting_position,
)

Acks = Literal[0, 1, "all"]
AttemptFate = Literal["delivered", "request-lost", "ack-lost", "leader-lost-before-replication"]
EntryKind = Literal["data", "commit-marker", "abort-marker"]
TxnOutcome = Literal["none", "committed", "aborted", "ongoing"]
IsolationLevel = Literal["read_uncommitted", "read_committed"]
TxnState = Literal["Empty", "Ongoing", "CompleteCommit", "CompleteAbort"]
Semantics = Literal["at-most-once", "at-least-once", "exactly-once"]
CrashPoint = Literal[
    "after-poll", "before-commit", "after-commit-before-process", "mid-batch", "after-commit"
]
LedgerStatus = Literal["first", "duplicate", "aborted", "pending"]
BrokerSaw = Literal["appended", "duplicate", "not received", "lost in leader failover"]
ProducerHeard = Literal["acked", "timeout", "no response expected"]

RETRIES_DEFAULT = 2_147_483_647
MAX_POLL_RECORDS_DEFAULT = 500
# The broker remembers this many batches per producer and partition (why max.in.flight <= 5).
DEDUP_WINDOW = 5
FIRST_PRODUCER_ID = 1000


class DeliveryError(ValueError):
    """Base class of the delivery errors."""


class ConfigError(DeliveryError):
    """Kafka's ConfigException: a client configuration Kafka refuses."""


class UnknownTopicOrPartitionError(DeliveryError):
    """Kafka's UnknownTopicOrPartitionException."""


class OutOfOrderSequenceError(DeliveryError):
    """Kafka's OutOfOrderSequenceException: a gap in an idempotent producer's sequence."""


class ProducerFencedError(DeliveryError):
    """Kafka's ProducerFencedException: a newer producer owns this transactional.id."""


class InvalidTxnStateError(DeliveryError):
    """Kafka's InvalidTxnStateException / IllegalStateException: a transaction call out of order."""


class InvalidCrashPointError(DeliveryError):
    """The crash point does not happen in this semantics' loop."""


# --- the broker's data --------------------------------------------------------------------------


@dataclass(frozen=True)
class LogEntry:
    offset: int
    kind: EntryKind
    value: str | None = None
    producer_id: int | None = None
    producer_epoch: int | None = None
    sequence: int | None = None
    transactional: bool = False


@dataclass(frozen=True)
class ProducerEntry:
    """The broker's memory of one producer id on one partition."""

    producer_id: int
    epoch: int
    last_sequence: int = -1  # -1: none yet (or reset by an epoch bump)
    recent: tuple[tuple[int, int], ...] = ()  # (sequence, offset) of the last DEDUP_WINDOW


@dataclass(frozen=True)
class Partition:
    name: str
    entries: tuple[LogEntry, ...] = ()
    producers: tuple[ProducerEntry, ...] = ()

    @property
    def log_end_offset(self) -> int:
        return len(self.entries)


@dataclass(frozen=True)
class GroupOffset:
    group_id: str
    partition: str
    offset: int


@dataclass(frozen=True)
class TransactionState:
    """The transaction coordinator's entry for one transactional.id."""

    transactional_id: str
    producer_id: int
    epoch: int
    state: TxnState = "Empty"
    partitions: tuple[str, ...] = ()
    pending_offsets: tuple[GroupOffset, ...] = ()


@dataclass(frozen=True)
class Cluster:
    partitions: tuple[Partition, ...]
    group_offsets: tuple[GroupOffset, ...] = ()
    transactions: tuple[TransactionState, ...] = ()
    next_producer_id: int = FIRST_PRODUCER_ID


def new_cluster(partition_names: Iterable[str]) -> Cluster:
    return Cluster(tuple(Partition(name) for name in partition_names))


def get_partition(cluster: Cluster, name: str) -> Partition:
    for partition in cluster.partitions:
        if partition.name == name:
            return partition
    raise UnknownTopicOrPartitionError(f"This server does not host this topic-partition: {name}")


def _put_partition(cluster: Cluster, updated: Partition) -> Cluster:
    return replace(
        cluster,
        partitions=tuple(updated if p.name == updated.name else p for p in cluster.partitions),
    )


def append_values(cluster: Cluster, partition: str, values: Iterable[str]) -> Cluster:
    """Plain writes (no producer id), e.g. to fill an input topic."""
    for value in values:
        cluster, _ = broker_append(cluster, partition, value)
    return cluster


# --- the broker's append: idempotence -----------------------------------------------------------


@dataclass(frozen=True)
class AppendResult:
    offset: int
    duplicate: bool  # True: a retry of a batch already in the log; nothing was written


def broker_append(
    cluster: Cluster,
    partition: str,
    value: str | None,
    *,
    producer_id: int | None = None,
    epoch: int = 0,
    sequence: int | None = None,
    transactional: bool = False,
) -> tuple[Cluster, AppendResult]:
    """What the partition leader does with one produced record."""
    target = get_partition(cluster, partition)
    if producer_id is None or sequence is None:
        return _write(cluster, target, LogEntry(target.log_end_offset, "data", value))
    known = _producer_entry(target, producer_id)
    if known is not None:
        _check_epoch(target, known, epoch)
        duplicate_of = _find_duplicate(known, epoch, sequence)
        if duplicate_of is not None:
            return cluster, AppendResult(duplicate_of, duplicate=True)
        _check_sequence(target, known, epoch, sequence)
    entry = LogEntry(
        target.log_end_offset, "data", value, producer_id, epoch, sequence, transactional
    )
    cluster, result = _write(cluster, target, entry)
    updated = _remember(known, producer_id, epoch, sequence, result.offset)
    return _put_producer(cluster, partition, updated), result


def _write(cluster: Cluster, target: Partition, entry: LogEntry) -> tuple[Cluster, AppendResult]:
    grown = replace(target, entries=target.entries + (entry,))
    return _put_partition(cluster, grown), AppendResult(entry.offset, duplicate=False)


def _producer_entry(target: Partition, producer_id: int) -> ProducerEntry | None:
    return next((e for e in target.producers if e.producer_id == producer_id), None)


def _put_producer(cluster: Cluster, partition: str, entry: ProducerEntry) -> Cluster:
    target = get_partition(cluster, partition)
    others = tuple(e for e in target.producers if e.producer_id != entry.producer_id)
    return _put_partition(cluster, replace(target, producers=others + (entry,)))


def _check_epoch(target: Partition, known: ProducerEntry, epoch: int) -> None:
    if epoch < known.epoch:
        raise ProducerFencedError(
            f"Epoch of producer {known.producer_id} at offset {target.log_end_offset} in "
            f"{target.name} is {epoch}, which is smaller than the last seen epoch {known.epoch}"
        )


def _find_duplicate(known: ProducerEntry, epoch: int, sequence: int) -> int | None:
    if epoch != known.epoch:
        return None
    return next((offset for seq, offset in known.recent if seq == sequence), None)


def _check_sequence(target: Partition, known: ProducerEntry, epoch: int, sequence: int) -> None:
    # A new epoch (or one bumped by a marker) starts again at sequence 0.
    expected = 0 if epoch > known.epoch else known.last_sequence + 1
    if sequence != expected:
        raise OutOfOrderSequenceError(
            f"Out of order sequence number for producer {known.producer_id} at offset "
            f"{target.log_end_offset} in partition {target.name}: {sequence} (incoming seq. "
            f"number), {expected - 1} (current end sequence number)"
        )


def _remember(
    known: ProducerEntry | None, producer_id: int, epoch: int, sequence: int, offset: int
) -> ProducerEntry:
    recent = () if known is None or known.epoch != epoch else known.recent
    recent = (recent + ((sequence, offset),))[-DEDUP_WINDOW:]
    return ProducerEntry(producer_id, epoch, sequence, recent)


# --- the producer: acks, retries, idempotence ---------------------------------------------------


@dataclass(frozen=True)
class ProducerConfig:
    acks: Acks = "all"
    enable_idempotence: bool = True
    retries: int = RETRIES_DEFAULT
    transactional_id: str | None = None


@dataclass(frozen=True)
class NextSequence:
    partition: str
    sequence: int


@dataclass(frozen=True)
class Producer:
    config: ProducerConfig
    producer_id: int | None = None  # given by the broker (InitProducerId) when idempotent
    epoch: int = 0
    sequences: tuple[NextSequence, ...] = ()


@dataclass(frozen=True)
class AttemptReport:
    fate: AttemptFate
    broker: BrokerSaw
    producer: ProducerHeard


@dataclass(frozen=True)
class SendOutcome:
    partition: str
    value: str | None
    producer_sees: Literal["success", "error"]
    offset: int | None  # what the producer is told; None with acks=0 (Kafka reports -1)
    offsets_in_log: tuple[int, ...]  # where this send's record really is, after every attempt
    attempts: tuple[AttemptReport, ...]
    error: str | None = None


def new_producer(
    cluster: Cluster, config: ProducerConfig | None = None
) -> tuple[Cluster, Producer]:
    """A producer; an idempotent one gets a producer id from the cluster."""
    config = config or ProducerConfig()
    _check_producer_config(config)
    if config.transactional_id is not None:
        return init_transactions(cluster, config)
    if not config.enable_idempotence:
        return cluster, Producer(config)
    producer = Producer(config, producer_id=cluster.next_producer_id)
    return replace(cluster, next_producer_id=cluster.next_producer_id + 1), producer


def _check_producer_config(config: ProducerConfig) -> None:
    if config.acks not in (0, 1, "all"):
        raise ConfigError(f"Invalid value {config.acks} for configuration acks")
    if config.retries < 0:
        raise ConfigError(f"Invalid value {config.retries} for configuration retries")
    if config.enable_idempotence and config.acks != "all":
        raise ConfigError(
            "Must set acks to all in order to use the idempotent producer. "
            "Otherwise we cannot guarantee idempotence."
        )
    if config.transactional_id is not None and not config.enable_idempotence:
        raise ConfigError("Cannot set a transactional.id without also enabling idempotence.")


def send(
    cluster: Cluster,
    producer: Producer,
    partition: str,
    value: str | None,
    fates: Iterable[AttemptFate] = (),
) -> tuple[Cluster, Producer, SendOutcome]:
    """One ``producer.send()``, its retries, and what each side ends up believing.

    ``fates`` says what happens to each attempt in turn; attempts past the list are delivered.
    """
    if producer.config.transactional_id is not None:
        raise InvalidTxnStateError(
            "a transactional producer sends inside a transaction: use send_in_transaction"
        )
    get_partition(cluster, partition)
    sequence = _next_sequence(producer, partition)
    planned = list(fates)
    attempts: list[AttemptReport] = []
    written: list[int] = []
    for index in range(producer.config.retries + 1):
        fate: AttemptFate = planned[index] if index < len(planned) else "delivered"
        cluster, report, offset = _attempt(cluster, producer, partition, value, sequence, fate)
        attempts.append(report)
        if report.broker == "appended" and offset is not None:
            written.append(offset)
        # acks=0 never waits for an answer, so it never times out and never retries.
        if report.producer != "timeout":
            told = None if producer.config.acks == 0 else offset
            outcome = SendOutcome(
                partition, value, "success", told, tuple(written), tuple(attempts)
            )
            return cluster, _advance(producer, partition, sequence), outcome
    error = f"TimeoutException: no acknowledgement after {len(attempts)} attempt(s)"
    outcome = SendOutcome(partition, value, "error", None, tuple(written), tuple(attempts), error)
    return cluster, _advance(producer, partition, sequence), outcome


def _next_sequence(producer: Producer, partition: str) -> int | None:
    if producer.producer_id is None:
        return None
    return next((s.sequence for s in producer.sequences if s.partition == partition), 0)


def _advance(producer: Producer, partition: str, sequence: int | None) -> Producer:
    if sequence is None:
        return producer
    others = tuple(s for s in producer.sequences if s.partition != partition)
    return replace(producer, sequences=others + (NextSequence(partition, sequence + 1),))


def _attempt(
    cluster: Cluster,
    producer: Producer,
    partition: str,
    value: str | None,
    sequence: int | None,
    fate: AttemptFate,
) -> tuple[Cluster, AttemptReport, int | None]:
    """One request: what reaches the log, and what answer the producer gets."""
    acks = producer.config.acks
    if fate == "request-lost":
        heard: ProducerHeard = "no response expected" if acks == 0 else "timeout"
        return cluster, AttemptReport(fate, "not received", heard), None
    if fate == "leader-lost-before-replication":
        # The leader wrote it, then died; the new leader never had it. The log is unchanged,
        # and the offset acks=1 was told will be given to the next record the new leader takes.
        offset = get_partition(cluster, partition).log_end_offset
        report = AttemptReport(fate, "lost in leader failover", _answer_after_failover(acks))
        return cluster, report, offset
    cluster, result = broker_append(
        cluster,
        partition,
        value,
        producer_id=producer.producer_id,
        epoch=producer.epoch,
        sequence=sequence,
    )
    stored: BrokerSaw = "duplicate" if result.duplicate else "appended"
    return cluster, AttemptReport(fate, stored, _answer(acks, fate)), result.offset


def _answer_after_failover(acks: Acks) -> ProducerHeard:
    """acks=1 was answered before replication; acks=all waits for the replicas, so never."""
    if acks == "all":
        return "timeout"
    return "acked" if acks == 1 else "no response expected"


def _answer(acks: Acks, fate: AttemptFate) -> ProducerHeard:
    """What the producer hears back about a request the broker did receive."""
    if acks == 0:
        return "no response expected"
    return "timeout" if fate == "ack-lost" else "acked"


# --- transactions -------------------------------------------------------------------------------


def init_transactions(cluster: Cluster, config: ProducerConfig) -> tuple[Cluster, Producer]:
    """``initTransactions()``: get the producer id, bump the epoch, abort what the last owner left.

    The bump is what fences a zombie: the previous instance still holds the old epoch.
    """
    if config.transactional_id is None:
        raise ConfigError("initTransactions needs a transactional.id")
    _check_producer_config(config)
    existing = _transaction(cluster, config.transactional_id)
    if existing is None:
        state = TransactionState(config.transactional_id, cluster.next_producer_id, 0)
        cluster = replace(cluster, next_producer_id=cluster.next_producer_id + 1)
    else:
        state = replace(existing, epoch=existing.epoch + 1)
        if existing.state == "Ongoing":
            cluster = _write_markers(cluster, state, "abort-marker")
        state = replace(state, state="Empty", partitions=(), pending_offsets=())
    cluster = _put_transaction(cluster, state)
    return cluster, Producer(config, state.producer_id, state.epoch)


def begin_transaction(cluster: Cluster, producer: Producer) -> Cluster:
    state = _owned_transaction(cluster, producer)
    if state.state == "Ongoing":
        raise InvalidTxnStateError(
            f"TransactionalId {state.transactional_id}: a transaction is already in progress"
        )
    return _put_transaction(cluster, replace(state, state="Ongoing", partitions=()))


def send_in_transaction(
    cluster: Cluster, producer: Producer, partition: str, value: str | None
) -> tuple[Cluster, Producer, int]:
    """Write a record inside the open transaction; returns the offset it took."""
    state = _ongoing_transaction(cluster, producer, "send")
    sequence = _next_sequence(producer, partition)
    cluster, result = broker_append(
        cluster,
        partition,
        value,
        producer_id=producer.producer_id,
        epoch=producer.epoch,
        sequence=sequence,
        transactional=True,
    )
    if partition not in state.partitions:
        state = replace(state, partitions=state.partitions + (partition,))
    cluster = _put_transaction(cluster, state)
    return cluster, _advance(producer, partition, sequence), result.offset


def send_offsets_to_transaction(
    cluster: Cluster, producer: Producer, group_id: str, offsets: Mapping[str, int]
) -> Cluster:
    """The group's offsets become committed only if (and when) the transaction commits."""
    state = _ongoing_transaction(cluster, producer, "sendOffsetsToTransaction")
    replaced = {(group_id, partition) for partition in offsets}
    kept = tuple(o for o in state.pending_offsets if (o.group_id, o.partition) not in replaced)
    added = tuple(GroupOffset(group_id, p, offset) for p, offset in sorted(offsets.items()))
    return _put_transaction(cluster, replace(state, pending_offsets=kept + added))


def commit_transaction(cluster: Cluster, producer: Producer) -> Cluster:
    state = _ongoing_transaction(cluster, producer, "commit")
    cluster = _write_markers(cluster, state, "commit-marker")
    for pending in state.pending_offsets:
        cluster = _set_group_offset(cluster, pending)
    done = replace(state, state="CompleteCommit", partitions=(), pending_offsets=())
    return _put_transaction(cluster, done)


def abort_transaction(cluster: Cluster, producer: Producer) -> Cluster:
    state = _ongoing_transaction(cluster, producer, "abort")
    cluster = _write_markers(cluster, state, "abort-marker")
    done = replace(state, state="CompleteAbort", partitions=(), pending_offsets=())
    return _put_transaction(cluster, done)


def _transaction(cluster: Cluster, transactional_id: str) -> TransactionState | None:
    return next((t for t in cluster.transactions if t.transactional_id == transactional_id), None)


def _put_transaction(cluster: Cluster, state: TransactionState) -> Cluster:
    others = tuple(t for t in cluster.transactions if t.transactional_id != state.transactional_id)
    return replace(cluster, transactions=others + (state,))


def _owned_transaction(cluster: Cluster, producer: Producer) -> TransactionState:
    transactional_id = producer.config.transactional_id
    state = None if transactional_id is None else _transaction(cluster, transactional_id)
    if state is None:
        raise InvalidTxnStateError("call init_transactions before using transactions")
    if producer.epoch < state.epoch:
        raise ProducerFencedError(
            "There is a newer producer with the same transactionalId which fences the current "
            f"one. (transactional.id {transactional_id}: epoch {producer.epoch} < {state.epoch})"
        )
    return state


def _ongoing_transaction(cluster: Cluster, producer: Producer, action: str) -> TransactionState:
    state = _owned_transaction(cluster, producer)
    if state.state != "Ongoing":
        raise InvalidTxnStateError(
            f"TransactionalId {state.transactional_id}: cannot {action} without an ongoing "
            "transaction (call begin_transaction first)"
        )
    return state


def _write_markers(cluster: Cluster, state: TransactionState, kind: EntryKind) -> Cluster:
    """A control record in every partition the transaction wrote to; each takes an offset."""
    for name in state.partitions:
        target = get_partition(cluster, name)
        marker = LogEntry(
            target.log_end_offset, kind, None, state.producer_id, state.epoch, None, True
        )
        cluster, _ = _write(cluster, target, marker)
        cluster = _bump_producer_epoch(cluster, name, state.producer_id, state.epoch)
    return cluster


def _bump_producer_epoch(cluster: Cluster, partition: str, producer_id: int, epoch: int) -> Cluster:
    known = _producer_entry(get_partition(cluster, partition), producer_id)
    if known is None or epoch <= known.epoch:
        return cluster
    # A marker with a newer epoch fences older writers and restarts the sequence.
    return _put_producer(cluster, partition, ProducerEntry(producer_id, epoch))


# --- reading: isolation.level -------------------------------------------------------------------


@dataclass(frozen=True)
class FetchResult:
    partition: str
    records: tuple[LogEntry, ...]  # only data records: the consumer never hands markers out
    next_offset: int  # the consumer's position after this fetch
    bound: int  # log end offset (read_uncommitted) or last stable offset (read_committed)


def transaction_outcomes(partition: Partition) -> tuple[TxnOutcome, ...]:
    """Per entry: how its transaction ended (a marker's own outcome is its kind's)."""
    outcomes: list[TxnOutcome] = []
    ending: dict[int, TxnOutcome] = {}
    for entry in reversed(partition.entries):
        # Scanning backwards, the marker seen last is the first one after the entry.
        if entry.kind != "data" and entry.producer_id is not None:
            ending[entry.producer_id] = "committed" if entry.kind == "commit-marker" else "aborted"
        outcomes.append(_outcome(entry, ending))
    return tuple(reversed(outcomes))


def _outcome(entry: LogEntry, ending: dict[int, TxnOutcome]) -> TxnOutcome:
    if not entry.transactional or entry.producer_id is None:
        return "none"
    return ending.get(entry.producer_id, "ongoing")


def last_stable_offset(cluster: Cluster, partition: str) -> int:
    """The first offset of the oldest open transaction, or the log end offset if none is open."""
    target = get_partition(cluster, partition)
    for entry, outcome in zip(target.entries, transaction_outcomes(target), strict=True):
        if outcome == "ongoing":
            return entry.offset
    return target.log_end_offset


def fetch(
    cluster: Cluster,
    partition: str,
    offset: int,
    isolation_level: IsolationLevel = "read_uncommitted",
    max_records: int | None = None,
) -> FetchResult:
    target = get_partition(cluster, partition)
    committed_only = isolation_level == "read_committed"
    bound = last_stable_offset(cluster, partition) if committed_only else target.log_end_offset
    found: list[LogEntry] = []
    pairs = zip(target.entries, transaction_outcomes(target), strict=True)
    for entry, outcome in pairs:
        if entry.offset < offset or entry.offset >= bound:
            continue
        if max_records is not None and len(found) >= max_records:
            return FetchResult(partition, tuple(found), entry.offset, bound)
        if entry.kind == "data" and not (committed_only and outcome == "aborted"):
            found.append(entry)
    return FetchResult(partition, tuple(found), max(offset, bound), bound)


def visible_values(
    cluster: Cluster, partition: str, isolation_level: IsolationLevel = "read_uncommitted"
) -> tuple[str | None, ...]:
    """Every value a reader with this isolation level sees, from offset 0."""
    return tuple(e.value for e in fetch(cluster, partition, 0, isolation_level).records)


# --- group offsets ------------------------------------------------------------------------------


def committed_offset(cluster: Cluster, group_id: str, partition: str) -> int | None:
    return next(
        (
            o.offset
            for o in cluster.group_offsets
            if o.group_id == group_id and o.partition == partition
        ),
        None,
    )


def commit_offsets(cluster: Cluster, group_id: str, offsets: Mapping[str, int]) -> Cluster:
    for partition, offset in sorted(offsets.items()):
        cluster = _set_group_offset(cluster, GroupOffset(group_id, partition, offset))
    return cluster


def _set_group_offset(cluster: Cluster, committed: GroupOffset) -> Cluster:
    others = tuple(
        o
        for o in cluster.group_offsets
        if (o.group_id, o.partition) != (committed.group_id, committed.partition)
    )
    return replace(cluster, group_offsets=others + (committed,))


# --- the consumer loop --------------------------------------------------------------------------


@dataclass(frozen=True)
class Polled:
    partition: str
    offset: int
    value: str | None


@dataclass(frozen=True)
class Cursor:
    partition: str
    position: int  # the next offset this consumer fetches
    started_at: int  # where the group first started here: nothing below it was ever due


@dataclass(frozen=True)
class LedgerEntry:
    """One processing of one record (the side effect the application performed)."""

    partition: str
    offset: int
    attempt: int  # 1 the first time this record is processed, 2 the next, ...
    incarnation: int  # which owner of the partition did it (a crash starts a new one)
    output_offset: int | None = None


@dataclass(frozen=True)
class ConsumerLoop:
    group_id: str
    semantics: Semantics
    cursors: tuple[Cursor, ...]
    max_poll_records: int = MAX_POLL_RECORDS_DEFAULT
    auto_offset_reset: AutoOffsetReset = AUTO_OFFSET_RESET_DEFAULT
    output_partition: str | None = None
    batch: tuple[Polled, ...] = ()
    processed_in_batch: int = 0
    ledger: tuple[LedgerEntry, ...] = ()
    incarnation: int = 1
    producer: Producer | None = None  # the transactional producer of exactly-once


def new_consumer_loop(
    cluster: Cluster,
    group_id: str,
    partitions: Iterable[str],
    semantics: Semantics,
    *,
    max_poll_records: int = MAX_POLL_RECORDS_DEFAULT,
    auto_offset_reset: AutoOffsetReset = AUTO_OFFSET_RESET_DEFAULT,
    output_partition: str | None = None,
) -> tuple[Cluster, ConsumerLoop]:
    """A consumer that owns ``partitions`` for ``group_id`` and starts where the group is."""
    if max_poll_records < 1:
        raise ConfigError(
            f"Invalid value {max_poll_records} for configuration max.poll.records: "
            "Value must be at least 1"
        )
    if semantics not in _CYCLES:
        raise ConfigError(f"unknown delivery semantics {semantics!r}: expected {list(_CYCLES)}")
    if semantics == "exactly-once" and output_partition is None:
        raise ConfigError("exactly-once is consume-transform-produce: give an output partition")
    loop = ConsumerLoop(
        group_id,
        semantics,
        (),
        max_poll_records,
        auto_offset_reset,
        output_partition,
    )
    starts = _start_positions(cluster, loop, tuple(partitions))
    loop = replace(loop, cursors=tuple(Cursor(p, start, start) for p, start in starts))
    if semantics == "exactly-once":
        cluster, producer = init_transactions(cluster, _transactional_config(group_id))
        loop = replace(loop, producer=producer)
    return cluster, loop


def _transactional_config(group_id: str) -> ProducerConfig:
    return ProducerConfig(transactional_id=f"{group_id}-eos")


def _start_positions(
    cluster: Cluster, loop: ConsumerLoop, partitions: tuple[str, ...]
) -> tuple[tuple[str, int], ...]:
    starts = []
    for name in partitions:
        committed = committed_offset(cluster, loop.group_id, name)
        log_end = get_partition(cluster, name).log_end_offset
        start = starting_position(committed, 0, log_end, loop.auto_offset_reset, name)
        starts.append((name, start.offset))
    return tuple(starts)


def poll(loop: ConsumerLoop, cluster: Cluster) -> ConsumerLoop:
    """Fetch up to max.poll.records from the owned partitions; positions move past them."""
    isolation: IsolationLevel = (
        "read_committed" if loop.semantics == "exactly-once" else "read_uncommitted"
    )
    polled: list[Polled] = []
    cursors = []
    for cursor in loop.cursors:
        room = loop.max_poll_records - len(polled)
        if room == 0:
            cursors.append(cursor)
            continue
        result = fetch(cluster, cursor.partition, cursor.position, isolation, room)
        polled.extend(Polled(cursor.partition, e.offset, e.value) for e in result.records)
        cursors.append(replace(cursor, position=result.next_offset))
    return replace(loop, cursors=tuple(cursors), batch=tuple(polled), processed_in_batch=0)


def process_next(loop: ConsumerLoop, cluster: Cluster) -> tuple[ConsumerLoop, Cluster]:
    """Process the next polled record: record it in the ledger and write its output, if any."""
    if loop.processed_in_batch >= len(loop.batch):
        raise DeliveryError("nothing left to process in this batch: poll first")
    record = loop.batch[loop.processed_in_batch]
    loop, cluster, output_offset = _write_output(loop, cluster, record)
    attempt = 1 + sum(
        1 for e in loop.ledger if (e.partition, e.offset) == (record.partition, record.offset)
    )
    entry = LedgerEntry(record.partition, record.offset, attempt, loop.incarnation, output_offset)
    loop = replace(
        loop, ledger=loop.ledger + (entry,), processed_in_batch=loop.processed_in_batch + 1
    )
    return loop, cluster


def _write_output(
    loop: ConsumerLoop, cluster: Cluster, record: Polled
) -> tuple[ConsumerLoop, Cluster, int | None]:
    if loop.output_partition is None:
        return loop, cluster, None
    if loop.producer is None:
        cluster, result = broker_append(cluster, loop.output_partition, record.value)
        return loop, cluster, result.offset
    cluster = _ensure_transaction(cluster, loop.producer)
    cluster, producer, offset = send_in_transaction(
        cluster, loop.producer, loop.output_partition, record.value
    )
    return replace(loop, producer=producer), cluster, offset


def _ensure_transaction(cluster: Cluster, producer: Producer) -> Cluster:
    if _owned_transaction(cluster, producer).state == "Ongoing":
        return cluster
    return begin_transaction(cluster, producer)


def commit(loop: ConsumerLoop, cluster: Cluster) -> tuple[ConsumerLoop, Cluster]:
    """Commit the current positions (``commitSync()``): the end of the polled batch."""
    offsets = {c.partition: c.position for c in loop.cursors}
    if loop.producer is None:
        return loop, commit_offsets(cluster, loop.group_id, offsets)
    cluster = _ensure_transaction(cluster, loop.producer)
    cluster = send_offsets_to_transaction(cluster, loop.producer, loop.group_id, offsets)
    return loop, commit_transaction(cluster, loop.producer)


def crash(loop: ConsumerLoop, cluster: Cluster) -> tuple[ConsumerLoop, Cluster]:
    """The consumer dies; the partitions' next owner starts from the committed offsets.

    Whatever was polled but not committed is forgotten. For exactly-once the next owner's
    ``init_transactions`` aborts the transaction the dead one left open.
    """
    starts = dict(_start_positions(cluster, loop, tuple(c.partition for c in loop.cursors)))
    cursors = tuple(replace(c, position=starts[c.partition]) for c in loop.cursors)
    producer = loop.producer
    if producer is not None:
        cluster, producer = init_transactions(cluster, producer.config)
    restarted = replace(
        loop,
        cursors=cursors,
        batch=(),
        processed_in_batch=0,
        incarnation=loop.incarnation + 1,
        producer=producer,
    )
    return restarted, cluster


_CYCLES: dict[str, tuple[str, ...]] = {
    # The actions poll / process / commit, with the crash points between them in loop order.
    "at-most-once": (
        "poll",
        "after-poll",
        "before-commit",
        "commit",
        "after-commit-before-process",
        "process",
    ),
    "at-least-once": ("poll", "after-poll", "process", "before-commit", "commit", "after-commit"),
    "exactly-once": ("poll", "after-poll", "process", "before-commit", "commit", "after-commit"),
}
_CRASH_POINTS: dict[str, tuple[str, ...]] = {
    "at-most-once": ("after-poll", "before-commit", "after-commit-before-process", "mid-batch"),
    "at-least-once": ("after-poll", "mid-batch", "before-commit", "after-commit"),
    "exactly-once": ("after-poll", "mid-batch", "before-commit", "after-commit"),
}


def crash_points(semantics: Semantics) -> tuple[str, ...]:
    """The crash points that exist in this semantics' loop, in the order they happen."""
    return _CRASH_POINTS[semantics]


def run_cycle(
    loop: ConsumerLoop,
    cluster: Cluster,
    crash_at: CrashPoint | None = None,
    crash_after_records: int | None = None,
) -> tuple[ConsumerLoop, Cluster]:
    """One poll-process-commit cycle in the order the semantics prescribes.

    With ``crash_at`` the consumer dies at that point (``mid-batch``: after
    ``crash_after_records`` records, by default half the batch) and the next owner takes over.
    """
    if crash_at is not None and crash_at not in crash_points(loop.semantics):
        raise InvalidCrashPointError(
            f"crash point {crash_at!r} does not happen in {loop.semantics}: "
            f"its loop is {' -> '.join(_CYCLES[loop.semantics])}"
        )
    for step in _CYCLES[loop.semantics]:
        if step == "poll":
            loop = poll(loop, cluster)
        elif step == "commit":
            loop, cluster = commit(loop, cluster)
        elif step == "process":
            stop = _mid_batch_stop(loop, crash_after_records) if crash_at == "mid-batch" else None
            loop, cluster = _process_batch(loop, cluster, stop)
            if stop is not None:
                return crash(loop, cluster)
        elif step == crash_at:
            return crash(loop, cluster)
    return loop, cluster


def _mid_batch_stop(loop: ConsumerLoop, crash_after_records: int | None) -> int:
    size = len(loop.batch)
    stop = size // 2 if crash_after_records is None else crash_after_records
    if not 0 <= stop <= size:
        raise InvalidCrashPointError(f"cannot crash after {stop} records of a batch of {size}")
    return stop


def _process_batch(
    loop: ConsumerLoop, cluster: Cluster, stop: int | None
) -> tuple[ConsumerLoop, Cluster]:
    limit = len(loop.batch) if stop is None else stop
    while loop.processed_in_batch < limit:
        loop, cluster = process_next(loop, cluster)
    return loop, cluster


def run_until_caught_up(
    loop: ConsumerLoop, cluster: Cluster, max_cycles: int = 1000
) -> tuple[ConsumerLoop, Cluster]:
    """Crash-free cycles until a poll finds nothing new."""
    for _ in range(max_cycles):
        loop, cluster = run_cycle(loop, cluster)
        if not loop.batch:
            return loop, cluster
    raise DeliveryError(f"still not caught up after {max_cycles} cycles")


# --- what the board shows -----------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionProgress:
    partition: str
    position: int
    committed: int | None
    log_end_offset: int
    lag: int | None


def progress(loop: ConsumerLoop, cluster: Cluster) -> tuple[PartitionProgress, ...]:
    """Per partition: the consumer's position, the group's committed offset and its lag."""
    rows = []
    for cursor in loop.cursors:
        committed = committed_offset(cluster, loop.group_id, cursor.partition)
        log_end = get_partition(cluster, cursor.partition).log_end_offset
        rows.append(
            PartitionProgress(
                cursor.partition, cursor.position, committed, log_end, lag(log_end, committed)
            )
        )
    return tuple(rows)


@dataclass(frozen=True)
class LedgerLine:
    partition: str
    offset: int
    attempt: int
    incarnation: int
    status: LedgerStatus


@dataclass(frozen=True)
class LedgerReport:
    lines: tuple[LedgerLine, ...]
    first: int  # records whose effect happened once
    duplicates: tuple[tuple[str, int], ...]  # (partition, offset) of every repeated effect
    skipped: tuple[tuple[str, int], ...]  # below the committed offset yet never processed: lost
    aborted: int  # processings whose output a read_committed reader never sees
    pending: int  # processings inside a transaction still open


def ledger_report(loop: ConsumerLoop, cluster: Cluster) -> LedgerReport:
    """Mark each processing first / duplicate / aborted / pending and find the lost records."""
    lines = []
    effective: set[tuple[str, int]] = set()
    output_outcomes = _output_outcomes(loop, cluster)
    for entry in loop.ledger:
        outcome = "none" if entry.output_offset is None else output_outcomes[entry.output_offset]
        status = _ledger_status(entry, effective, outcome)
        if status == "first":
            effective.add((entry.partition, entry.offset))
        lines.append(
            LedgerLine(entry.partition, entry.offset, entry.attempt, entry.incarnation, status)
        )
    return LedgerReport(
        lines=tuple(lines),
        first=sum(1 for line in lines if line.status == "first"),
        duplicates=tuple((x.partition, x.offset) for x in lines if x.status == "duplicate"),
        skipped=_skipped(loop, cluster, effective),
        aborted=sum(1 for line in lines if line.status == "aborted"),
        pending=sum(1 for line in lines if line.status == "pending"),
    )


def _output_outcomes(loop: ConsumerLoop, cluster: Cluster) -> tuple[TxnOutcome, ...]:
    if loop.output_partition is None:
        return ()
    return transaction_outcomes(get_partition(cluster, loop.output_partition))


def _ledger_status(
    entry: LedgerEntry, effective: set[tuple[str, int]], outcome: TxnOutcome
) -> LedgerStatus:
    if outcome == "aborted":
        return "aborted"
    if outcome == "ongoing":
        return "pending"
    return "duplicate" if (entry.partition, entry.offset) in effective else "first"


def _skipped(
    loop: ConsumerLoop, cluster: Cluster, effective: set[tuple[str, int]]
) -> tuple[tuple[str, int], ...]:
    lost = []
    for cursor in loop.cursors:
        committed = committed_offset(cluster, loop.group_id, cursor.partition)
        if committed is None:
            continue
        target = get_partition(cluster, cursor.partition)
        outcomes = transaction_outcomes(target)
        for entry in target.entries[cursor.started_at : committed]:
            due = entry.kind == "data" and outcomes[entry.offset] != "aborted"
            if due and (cursor.partition, entry.offset) not in effective:
                lost.append((cursor.partition, entry.offset))
    return tuple(lost)
