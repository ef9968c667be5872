"""Delivery semantics, told as lessons: what a crash, a lost ack or an abort really does."""

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from messaging.engine.delivery import (
    ConfigError,
    InvalidCrashPointError,
    InvalidTxnStateError,
    OutOfOrderSequenceError,
    ProducerConfig,
    ProducerFencedError,
    UnknownTopicOrPartitionError,
    abort_transaction,
    append_values,
    begin_transaction,
    broker_append,
    commit_transaction,
    committed_offset,
    crash_points,
    fetch,
    get_partition,
    init_transactions,
    last_stable_offset,
    ledger_report,
    new_cluster,
    new_consumer_loop,
    new_producer,
    poll,
    progress,
    run_cycle,
    run_until_caught_up,
    send,
    send_in_transaction,
    send_offsets_to_transaction,
    visible_values,
)

VALUES = tuple(f"order-{i}" for i in range(10))


def orders_cluster(partitions=("orders-0",), count=10):
    cluster = new_cluster((*partitions, "invoices-0"))
    for name in partitions:
        cluster = append_values(cluster, name, [f"{name}:{i}" for i in range(count)])
    return cluster


def start(semantics, partitions=("orders-0",), count=10, max_poll_records=4):
    cluster = orders_cluster(partitions, count)
    return new_consumer_loop(
        cluster,
        "billing",
        partitions,
        semantics,
        max_poll_records=max_poll_records,
        auto_offset_reset="earliest",
        output_partition="invoices-0",
    )


def offsets_of(pairs):
    return [offset for _, offset in pairs]


# --- the consumer loop: at-least-once -----------------------------------------------------------


def test_at_least_once_a_crash_before_commit_replays_the_batch_as_duplicates():
    cluster, loop = start("at-least-once")
    loop, cluster = run_cycle(loop, cluster)  # processes 0-3, commits 4
    loop, cluster = run_cycle(loop, cluster, crash_at="before-commit")  # processes 4-7, dies
    assert committed_offset(cluster, "billing", "orders-0") == 4
    loop, cluster = run_until_caught_up(loop, cluster)  # the next owner starts again at 4

    report = ledger_report(loop, cluster)
    assert offsets_of(report.duplicates) == [4, 5, 6, 7]
    assert report.skipped == ()
    assert report.first == 10
    assert [line.attempt for line in report.lines if line.offset == 5] == [1, 2]
    # The side effect happened twice: the invoices topic holds 4..7 twice.
    assert len(visible_values(cluster, "invoices-0")) == 14


def test_at_least_once_a_crash_mid_batch_duplicates_only_what_was_processed():
    cluster, loop = start("at-least-once")
    loop, cluster = run_cycle(loop, cluster, crash_at="mid-batch", crash_after_records=2)
    loop, cluster = run_until_caught_up(loop, cluster)
    assert offsets_of(ledger_report(loop, cluster).duplicates) == [0, 1]


def test_after_a_crash_the_next_owner_starts_from_the_committed_offset():
    cluster, loop = start("at-least-once")
    loop, cluster = run_cycle(loop, cluster)
    loop, cluster = run_cycle(loop, cluster, crash_at="before-commit")
    assert loop.incarnation == 2
    assert loop.batch == ()
    row = progress(loop, cluster)[0]
    assert (row.position, row.committed, row.log_end_offset, row.lag) == (4, 4, 10, 6)


# --- the consumer loop: at-most-once ------------------------------------------------------------


def test_at_most_once_a_crash_after_commit_before_processing_loses_the_batch():
    cluster, loop = start("at-most-once")
    loop, cluster = run_cycle(loop, cluster)
    loop, cluster = run_cycle(loop, cluster, crash_at="after-commit-before-process")
    assert committed_offset(cluster, "billing", "orders-0") == 8  # committed, never processed
    loop, cluster = run_until_caught_up(loop, cluster)

    report = ledger_report(loop, cluster)
    assert offsets_of(report.skipped) == [4, 5, 6, 7]
    assert report.duplicates == ()
    assert visible_values(cluster, "invoices-0") == tuple(
        f"orders-0:{i}" for i in (0, 1, 2, 3, 8, 9)
    )


def test_at_most_once_a_crash_mid_batch_loses_the_rest_of_the_batch():
    cluster, loop = start("at-most-once")
    loop, cluster = run_cycle(loop, cluster, crash_at="mid-batch", crash_after_records=1)
    loop, cluster = run_until_caught_up(loop, cluster)
    assert offsets_of(ledger_report(loop, cluster).skipped) == [1, 2, 3]


def test_at_most_once_a_crash_before_its_commit_loses_nothing():
    cluster, loop = start("at-most-once")
    loop, cluster = run_cycle(loop, cluster, crash_at="before-commit")
    loop, cluster = run_until_caught_up(loop, cluster)
    report = ledger_report(loop, cluster)
    assert (report.skipped, report.duplicates, report.first) == ((), (), 10)


# --- the consumer loop: exactly-once ------------------------------------------------------------


@pytest.mark.parametrize("crash_at", ["after-poll", "mid-batch", "before-commit", "after-commit"])
def test_exactly_once_output_has_each_record_once_for_a_read_committed_reader(crash_at):
    cluster, loop = start("exactly-once")
    loop, cluster = run_cycle(loop, cluster)
    loop, cluster = run_cycle(loop, cluster, crash_at=crash_at)
    loop, cluster = run_until_caught_up(loop, cluster)

    expected = tuple(f"orders-0:{i}" for i in range(10))
    assert visible_values(cluster, "invoices-0", "read_committed") == expected
    report = ledger_report(loop, cluster)
    assert (report.duplicates, report.skipped) == ((), ())
    assert committed_offset(cluster, "billing", "orders-0") == 10


def test_exactly_once_the_aborted_attempt_is_still_in_the_log_for_read_uncommitted():
    cluster, loop = start("exactly-once")
    loop, cluster = run_cycle(loop, cluster, crash_at="before-commit")  # 0-3 written, not committed
    loop, cluster = run_until_caught_up(loop, cluster)

    report = ledger_report(loop, cluster)
    assert report.aborted == 4
    assert [line.status for line in report.lines[:4]] == ["aborted"] * 4
    uncommitted = visible_values(cluster, "invoices-0", "read_uncommitted")
    assert uncommitted[:8] == tuple(f"orders-0:{i}" for i in (0, 1, 2, 3, 0, 1, 2, 3))


def test_exactly_once_needs_an_output_topic():
    with pytest.raises(ConfigError, match="consume-transform-produce"):
        new_consumer_loop(orders_cluster(), "billing", ["orders-0"], "exactly-once")


# --- the consumer loop: mechanics ---------------------------------------------------------------


def test_a_poll_returns_at_most_max_poll_records_across_partitions():
    cluster, loop = start("at-least-once", partitions=("orders-0", "orders-1"), count=3)
    loop = poll(loop, cluster)
    assert [(r.partition, r.offset) for r in loop.batch] == [
        ("orders-0", 0),
        ("orders-0", 1),
        ("orders-0", 2),
        ("orders-1", 0),
    ]
    assert [c.position for c in loop.cursors] == [3, 1]


def test_max_poll_records_defaults_to_500():
    cluster = orders_cluster(count=600)
    cluster, loop = new_consumer_loop(
        cluster, "g", ["orders-0"], "at-least-once", auto_offset_reset="earliest"
    )
    assert len(poll(loop, cluster).batch) == 500


def test_a_new_group_with_kafkas_default_latest_skips_the_existing_records():
    cluster, loop = new_consumer_loop(orders_cluster(), "g", ["orders-0"], "at-least-once")
    assert poll(loop, cluster).batch == ()


@pytest.mark.parametrize(
    ("semantics", "point"),
    [("at-least-once", "after-commit-before-process"), ("at-most-once", "after-commit")],
)
def test_a_crash_point_that_does_not_exist_in_the_loop_is_refused(semantics, point):
    cluster, loop = start(semantics)
    assert point not in crash_points(semantics)
    with pytest.raises(InvalidCrashPointError, match="does not happen"):
        run_cycle(loop, cluster, crash_at=point)


def test_max_poll_records_must_be_positive():
    with pytest.raises(ConfigError, match="max.poll.records"):
        new_consumer_loop(orders_cluster(), "g", ["orders-0"], "at-least-once", max_poll_records=0)


def test_loop_cluster_and_report_are_json_serialisable():
    cluster, loop = start("exactly-once")
    loop, cluster = run_cycle(loop, cluster, crash_at="mid-batch")
    for value in (loop, cluster, ledger_report(loop, cluster), progress(loop, cluster)[0]):
        json.dumps(dataclasses.asdict(value))


# --- the producer: acks, retries, idempotence ---------------------------------------------------


def producer(**config):
    cluster = new_cluster(["payments-0"])
    return new_producer(cluster, ProducerConfig(**config))


def test_idempotent_producer_retry_after_a_lost_ack_leaves_one_record():
    cluster, prod = producer()  # Kafka's defaults: acks=all, enable.idempotence=true
    cluster, prod, outcome = send(cluster, prod, "payments-0", "pay-42", ["ack-lost"])
    assert visible_values(cluster, "payments-0") == ("pay-42",)
    assert [(a.broker, a.producer) for a in outcome.attempts] == [
        ("appended", "timeout"),
        ("duplicate", "acked"),  # the broker knew the sequence: dropped, original offset returned
    ]
    assert (outcome.producer_sees, outcome.offset, outcome.offsets_in_log) == ("success", 0, (0,))


def test_non_idempotent_producer_retry_after_a_lost_ack_writes_a_duplicate():
    cluster, prod = producer(enable_idempotence=False)
    cluster, prod, outcome = send(cluster, prod, "payments-0", "pay-42", ["ack-lost"])
    assert visible_values(cluster, "payments-0") == ("pay-42", "pay-42")
    assert outcome.offsets_in_log == (0, 1)
    assert outcome.producer_sees == "success"  # and it has no idea it wrote twice


def test_acks_0_a_lost_request_leaves_nothing_and_the_producer_never_knows():
    cluster, prod = producer(acks=0, enable_idempotence=False)
    cluster, prod, outcome = send(cluster, prod, "payments-0", "pay-42", ["request-lost"])
    assert visible_values(cluster, "payments-0") == ()
    assert outcome.producer_sees == "success"
    assert outcome.offset is None  # Kafka reports offset -1: there was no answer
    assert len(outcome.attempts) == 1  # no answer, so no retry


def test_acks_1_loses_an_acknowledged_record_when_the_leader_dies_before_replication():
    cluster, prod = producer(acks=1, enable_idempotence=False)
    cluster, prod, outcome = send(
        cluster, prod, "payments-0", "pay-42", ["leader-lost-before-replication"]
    )
    assert outcome.producer_sees == "success"
    assert visible_values(cluster, "payments-0") == ()


def test_acks_all_never_acknowledges_before_replication_so_the_retry_saves_the_record():
    cluster, prod = producer()
    cluster, prod, outcome = send(
        cluster, prod, "payments-0", "pay-42", ["leader-lost-before-replication"]
    )
    assert [a.producer for a in outcome.attempts] == ["timeout", "acked"]
    assert visible_values(cluster, "payments-0") == ("pay-42",)


def test_without_retries_a_lost_ack_is_an_error_although_the_record_was_written():
    cluster, prod = producer(enable_idempotence=False, retries=0)
    cluster, prod, outcome = send(cluster, prod, "payments-0", "pay-42", ["ack-lost"])
    assert outcome.producer_sees == "error"
    assert outcome.error is not None and outcome.error.startswith("TimeoutException")
    assert visible_values(cluster, "payments-0") == ("pay-42",)


def test_idempotence_requires_acks_all():
    with pytest.raises(ConfigError, match="Must set acks to all"):
        producer(acks=1)


def test_sending_to_an_unknown_partition_fails():
    cluster, prod = producer()
    with pytest.raises(UnknownTopicOrPartitionError):
        send(cluster, prod, "nope-0", "x")


# --- the broker: sequence numbers ---------------------------------------------------------------


def test_the_broker_rejects_an_out_of_order_sequence():
    cluster = new_cluster(["p-0"])
    cluster, _ = broker_append(cluster, "p-0", "a", producer_id=7, sequence=0)
    with pytest.raises(OutOfOrderSequenceError) as caught:
        broker_append(cluster, "p-0", "c", producer_id=7, sequence=2)
    assert "2 (incoming seq. number), 0 (current end sequence number)" in str(caught.value)


def test_the_broker_remembers_only_the_last_five_batches():
    cluster = new_cluster(["p-0"])
    for seq in range(7):
        cluster, _ = broker_append(cluster, "p-0", f"v{seq}", producer_id=7, sequence=seq)
    cluster, result = broker_append(cluster, "p-0", "v2", producer_id=7, sequence=2)
    assert (result.offset, result.duplicate) == (2, True)
    with pytest.raises(OutOfOrderSequenceError):
        broker_append(cluster, "p-0", "v1", producer_id=7, sequence=1)


# --- transactions -------------------------------------------------------------------------------


def transactional(cluster, transactional_id="tx-1"):
    return init_transactions(cluster, ProducerConfig(transactional_id=transactional_id))


def test_read_committed_stops_at_the_last_stable_offset_while_a_transaction_is_open():
    cluster = new_cluster(["t-0"])
    cluster = append_values(cluster, "t-0", ["before"])
    cluster, tx = transactional(cluster)
    cluster = begin_transaction(cluster, tx)
    cluster, tx, offset = send_in_transaction(cluster, tx, "t-0", "in-tx")
    cluster = append_values(cluster, "t-0", ["after"])  # a plain write behind the open txn

    assert last_stable_offset(cluster, "t-0") == offset == 1
    committed_view = fetch(cluster, "t-0", 0, "read_committed")
    assert [e.value for e in committed_view.records] == ["before"]
    assert committed_view.next_offset == 1  # it waits at the LSO: "after" is held back too
    assert visible_values(cluster, "t-0", "read_uncommitted") == ("before", "in-tx", "after")


def test_commit_writes_a_marker_that_takes_an_offset():
    cluster = new_cluster(["t-0", "u-0"])
    cluster, tx = transactional(cluster)
    cluster = begin_transaction(cluster, tx)
    cluster, tx, _ = send_in_transaction(cluster, tx, "t-0", "a")
    cluster, tx, _ = send_in_transaction(cluster, tx, "u-0", "b")
    cluster = commit_transaction(cluster, tx)

    assert [e.kind for e in get_partition(cluster, "t-0").entries] == ["data", "commit-marker"]
    assert get_partition(cluster, "u-0").log_end_offset == 2  # a marker in every partition
    assert visible_values(cluster, "t-0", "read_committed") == ("a",)
    # A consumer that read everything has position 2, not 1: lag is 0 though one record was read.
    assert fetch(cluster, "t-0", 0, "read_committed").next_offset == 2


def test_abort_hides_the_records_from_read_committed_only():
    cluster = new_cluster(["t-0"])
    cluster, tx = transactional(cluster)
    cluster = begin_transaction(cluster, tx)
    cluster, tx, _ = send_in_transaction(cluster, tx, "t-0", "oops")
    cluster = abort_transaction(cluster, tx)
    assert visible_values(cluster, "t-0", "read_committed") == ()
    assert visible_values(cluster, "t-0", "read_uncommitted") == ("oops",)
    assert get_partition(cluster, "t-0").entries[-1].kind == "abort-marker"


def test_offsets_sent_to_a_transaction_are_committed_with_it_and_only_then():
    cluster = new_cluster(["in-0", "out-0"])
    cluster, tx = transactional(cluster)
    cluster = begin_transaction(cluster, tx)
    cluster = send_offsets_to_transaction(cluster, tx, "billing", {"in-0": 5})
    assert committed_offset(cluster, "billing", "in-0") is None
    aborted = abort_transaction(cluster, tx)
    assert committed_offset(aborted, "billing", "in-0") is None
    committed = commit_transaction(cluster, tx)
    assert committed_offset(committed, "billing", "in-0") == 5


def test_a_new_instance_fences_the_zombie_and_aborts_its_open_transaction():
    cluster = new_cluster(["t-0"])
    cluster, zombie = transactional(cluster)
    cluster = begin_transaction(cluster, zombie)
    cluster, zombie, _ = send_in_transaction(cluster, zombie, "t-0", "half-done")

    cluster, fresh = transactional(cluster)  # same transactional.id, after a restart
    assert fresh.epoch == zombie.epoch + 1
    assert get_partition(cluster, "t-0").entries[-1].kind == "abort-marker"
    assert last_stable_offset(cluster, "t-0") == 2
    with pytest.raises(ProducerFencedError, match="newer producer with the same transactionalId"):
        begin_transaction(cluster, zombie)
    with pytest.raises(ProducerFencedError):
        broker_append(
            cluster,
            "t-0",
            "late",
            producer_id=zombie.producer_id,
            epoch=zombie.epoch,
            sequence=1,
            transactional=True,
        )


def test_transaction_calls_out_of_order_are_refused():
    cluster = new_cluster(["t-0"])
    cluster, tx = transactional(cluster)
    with pytest.raises(InvalidTxnStateError, match="begin_transaction"):
        commit_transaction(cluster, tx)
    cluster = begin_transaction(cluster, tx)
    with pytest.raises(InvalidTxnStateError, match="already in progress"):
        begin_transaction(cluster, tx)
    with pytest.raises(InvalidTxnStateError, match="send_in_transaction"):
        send(cluster, tx, "t-0", "x")


def test_a_transactional_id_needs_idempotence():
    with pytest.raises(ConfigError, match="transactional.id"):
        new_producer(
            new_cluster(["t-0"]),
            ProducerConfig(transactional_id="tx", enable_idempotence=False, acks=1),
        )


# --- properties ---------------------------------------------------------------------------------

schedules = st.lists(
    st.tuples(
        st.sampled_from(["after-poll", "mid-batch", "before-commit", "after-commit", None]),
        st.integers(0, 5),
    ),
    max_size=8,
)


def replay(semantics, schedule, max_poll_records):
    cluster, loop = start(semantics, ("orders-0", "orders-1"), 6, max_poll_records)
    points = crash_points(semantics)
    for point, after in schedule:
        point = point if point in points else None
        after = min(after, len(poll(loop, cluster).batch))
        loop, cluster = run_cycle(loop, cluster, crash_at=point, crash_after_records=after)
    return run_until_caught_up(loop, cluster)


ALL_INPUT = sorted(f"orders-{p}:{i}" for p in range(2) for i in range(6))


@settings(max_examples=60, deadline=None)
@given(schedules, st.integers(1, 5))
def test_at_least_once_never_loses_a_record_whatever_the_crashes(schedule, max_poll_records):
    loop, cluster = replay("at-least-once", schedule, max_poll_records)
    report = ledger_report(loop, cluster)
    assert report.skipped == ()
    assert sorted(set(visible_values(cluster, "invoices-0"))) == ALL_INPUT


@settings(max_examples=60, deadline=None)
@given(schedules, st.integers(1, 5))
def test_at_most_once_never_duplicates_whatever_the_crashes(schedule, max_poll_records):
    loop, cluster = replay("at-most-once", schedule, max_poll_records)
    report = ledger_report(loop, cluster)
    assert report.duplicates == ()
    output = visible_values(cluster, "invoices-0")
    assert len(output) == len(set(output)) == report.first
    assert report.first + len(report.skipped) == len(ALL_INPUT)


@settings(max_examples=60, deadline=None)
@given(schedules, st.integers(1, 5))
def test_exactly_once_read_committed_output_is_the_input_once_whatever_the_crashes(
    schedule, max_poll_records
):
    loop, cluster = replay("exactly-once", schedule, max_poll_records)
    assert sorted(visible_values(cluster, "invoices-0", "read_committed")) == ALL_INPUT
    report = ledger_report(loop, cluster)
    assert (report.duplicates, report.skipped, report.pending) == ((), (), 0)


fates = st.lists(st.sampled_from(["delivered", "ack-lost", "request-lost"]), max_size=4)


@settings(max_examples=100, deadline=None)
@given(st.lists(fates, min_size=1, max_size=5))
def test_an_idempotent_producer_writes_each_send_exactly_once(plans):
    cluster, prod = producer()
    for index, plan in enumerate(plans):
        cluster, prod, outcome = send(cluster, prod, "payments-0", f"v{index}", plan)
        assert outcome.producer_sees == "success"
    assert visible_values(cluster, "payments-0") == tuple(f"v{i}" for i in range(len(plans)))


@settings(max_examples=100, deadline=None)
@given(fates)
def test_a_plain_producer_writes_once_per_attempt_that_reached_the_broker(plan):
    cluster, prod = producer(enable_idempotence=False)
    cluster, prod, outcome = send(cluster, prod, "payments-0", "v", plan)
    reached = [a for a in outcome.attempts if a.broker == "appended"]
    assert len(visible_values(cluster, "payments-0")) == len(reached) >= 1
