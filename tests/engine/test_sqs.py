"""SQS FIFO (and standard, for contrast): each scenario is one fact a lesson teaches."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from messaging.engine import sqs

SECOND = 1_000
MINUTE = 60 * SECOND
DLQ_ARN = "arn:aws:sqs:us-east-1:000000000000:orders-dlq.fifo"


def fifo_queue(**attributes: object) -> sqs.Queue:
    return sqs.create_queue("orders.fifo", {"FifoQueue": "true", **attributes})


def send_all(queue: sqs.Queue, messages: list[tuple[str, str]], now_ms: int = 0) -> sqs.Queue:
    """Send (group, body) pairs, using the body as the deduplication id."""
    for group, body in messages:
        queue, _ = sqs.send(
            queue, body, now_ms=now_ms, message_group_id=group, deduplication_id=body
        )
    return queue


def bodies(result: sqs.ReceiveResult) -> list[str]:
    return [message.body for message in result.messages]


# --- ordering and blocking -----------------------------------------------------------------


def test_messages_of_one_group_are_delivered_in_the_order_they_were_sent() -> None:
    queue = send_all(
        fifo_queue(), [("order-1", "created"), ("order-1", "paid"), ("order-1", "shipped")]
    )
    seen = []
    for second in range(3):
        queue, result = sqs.receive(queue, now_ms=second * SECOND)
        (message,) = result.messages
        seen.append(message.body)
        queue, _ = sqs.delete(queue, message.receipt_handle, now_ms=second * SECOND)
    assert seen == ["created", "paid", "shipped"]


def test_a_message_in_flight_blocks_only_its_own_group() -> None:
    queue = send_all(fifo_queue(), [("alice", "a1"), ("alice", "a2"), ("bob", "b1")])
    queue, first = sqs.receive(queue, now_ms=0)
    assert bodies(first) == ["a1"]

    # a1 is being processed: a2 must wait, but bob's messages are not held up by alice's.
    queue, second = sqs.receive(queue, now_ms=1, max_messages=10)
    assert bodies(second) == ["b1"]
    queue, third = sqs.receive(queue, now_ms=2, max_messages=10)
    assert third.messages == ()

    alice = next(lane for lane in sqs.lanes(queue) if lane.message_group_id == "alice")
    assert alice.blocked
    assert [m.body for m in alice.in_flight] == ["a1"]
    assert [m.body for m in alice.queued] == ["a2"]
    assert alice.in_flight[0].in_flight_until_ms == 30 * SECOND

    queue, _ = sqs.delete(queue, first.messages[0].receipt_handle, now_ms=3)
    queue, fourth = sqs.receive(queue, now_ms=4)
    assert bodies(fourth) == ["a2"]


def test_one_receive_fills_up_from_one_group_before_taking_another() -> None:
    sends = [("g1", f"g1-{i}") for i in range(4)] + [("g2", f"g2-{i}") for i in range(12)]
    sends.insert(2, ("g3", "g3-0"))
    queue = send_all(fifo_queue(), sends)
    queue, result = sqs.receive(queue, now_ms=0, max_messages=10)
    # The oldest group first, all of it, then the next oldest: never interleaved.
    assert bodies(result) == [f"g1-{i}" for i in range(4)] + ["g3-0"] + [
        f"g2-{i}" for i in range(5)
    ]
    # Every group that gave messages is now blocked, so another consumer gets nothing.
    queue, other = sqs.receive(queue, now_ms=0, max_messages=10)
    assert other.messages == ()


def test_a_batch_of_ten_from_one_busy_group() -> None:
    queue = send_all(fifo_queue(), [("busy", f"m{i}") for i in range(15)] + [("quiet", "q")])
    queue, result = sqs.receive(queue, now_ms=0, max_messages=10)
    assert bodies(result) == [f"m{i}" for i in range(10)]
    queue, rest = sqs.receive(queue, now_ms=0, max_messages=10)
    assert bodies(rest) == ["q"]


# --- visibility timeout --------------------------------------------------------------------


def test_visibility_timeout_returns_the_message_to_its_place_in_the_group() -> None:
    queue = send_all(fifo_queue(VisibilityTimeout="30"), [("g", "first"), ("g", "second")])
    queue, crashed = sqs.receive(queue, now_ms=0)
    (lost,) = crashed.messages
    assert (lost.body, lost.approximate_receive_count) == ("first", 1)

    # The consumer died without deleting: nothing happens until the 30 s are up.
    queue, too_early = sqs.receive(queue, now_ms=29_999)
    assert too_early.messages == ()

    queue, settled = sqs.advance(queue, now_ms=30 * SECOND)
    assert settled.returned == (lost.message_id,)
    queue, again = sqs.receive(queue, now_ms=30 * SECOND)
    (retry,) = again.messages
    assert retry.body == "first"  # still ahead of "second"
    assert retry.approximate_receive_count == 2
    assert retry.approximate_first_receive_timestamp == 0
    assert retry.receipt_handle != lost.receipt_handle

    # The old handle died with its receive: on FIFO, deleting with it is an error.
    with pytest.raises(sqs.InvalidParameterValue, match="The receipt handle has expired"):
        sqs.delete(queue, lost.receipt_handle, now_ms=31 * SECOND)
    queue, deleted = sqs.delete(queue, retry.receipt_handle, now_ms=31 * SECOND)
    assert deleted.deleted
    queue, last = sqs.receive(queue, now_ms=31 * SECOND)
    assert bodies(last) == ["second"]


def test_deleting_after_the_visibility_timeout_fails_on_fifo_even_if_nobody_took_it() -> None:
    queue = send_all(fifo_queue(), [("g", "slow-job")])
    queue, result = sqs.receive(queue, now_ms=0, visibility_timeout=10)
    with pytest.raises(sqs.InvalidParameterValue) as error:
        sqs.delete(queue, result.messages[0].receipt_handle, now_ms=10 * SECOND)
    assert error.value.code == "InvalidParameterValue"
    assert error.value.http_status == 400


def test_a_standard_queue_accepts_an_old_receipt_handle() -> None:
    queue = sqs.create_queue("jobs", {"VisibilityTimeout": "5"})
    queue, _ = sqs.send(queue, "job", now_ms=0)
    queue, first = sqs.receive(queue, now_ms=0)
    queue, second = sqs.receive(queue, now_ms=5 * SECOND)
    assert second.messages[0].approximate_receive_count == 2
    queue, deleted = sqs.delete(queue, first.messages[0].receipt_handle, now_ms=6 * SECOND)
    assert deleted.deleted and queue.messages == ()


def test_change_visibility_extends_or_releases_an_in_flight_message() -> None:
    queue = send_all(fifo_queue(), [("g", "m1"), ("g", "m2")])
    queue, result = sqs.receive(queue, now_ms=0)
    handle = result.messages[0].receipt_handle

    queue, change = sqs.change_visibility(queue, handle, 120, now_ms=20 * SECOND)
    assert change.in_flight_until_ms == 140 * SECOND
    queue, nothing = sqs.receive(queue, now_ms=100 * SECOND)
    assert nothing.messages == ()

    # Timeout 0: "I give up on this one", the message is visible again at once.
    queue, change = sqs.change_visibility(queue, handle, 0, now_ms=101 * SECOND)
    assert change.in_flight_until_ms is None
    with pytest.raises(sqs.MessageNotInflight) as error:
        sqs.change_visibility(queue, handle, 10, now_ms=101 * SECOND)
    assert error.value.code == "MessageNotInflight"
    assert error.value.query_code == "AWS.SimpleQueueService.MessageNotInflight"
    queue, again = sqs.receive(queue, now_ms=101 * SECOND)
    assert bodies(again) == ["m1"]


def test_visibility_cannot_be_extended_past_12_hours_after_the_receive() -> None:
    queue = send_all(fifo_queue(), [("g", "m")])
    queue, result = sqs.receive(queue, now_ms=0)
    handle = result.messages[0].receipt_handle
    queue, _ = sqs.change_visibility(queue, handle, 43_000, now_ms=0)
    with pytest.raises(sqs.InvalidParameterValue, match="beyond the limit"):
        sqs.change_visibility(queue, handle, 43_000, now_ms=1_000 * SECOND)
    with pytest.raises(sqs.InvalidParameterValue, match="Must be between 0 and 43200"):
        sqs.change_visibility(queue, handle, 43_201, now_ms=0)


def test_zero_visibility_timeout_hands_the_message_straight_back() -> None:
    queue = send_all(fifo_queue(), [("g", "m")])
    queue, first = sqs.receive(queue, now_ms=0, visibility_timeout=0)
    queue, second = sqs.receive(queue, now_ms=0)
    assert bodies(first) == bodies(second) == ["m"]
    assert second.messages[0].approximate_receive_count == 2


# --- deduplication -------------------------------------------------------------------------


def test_a_duplicate_within_five_minutes_is_accepted_but_never_delivered() -> None:
    queue = fifo_queue()
    queue, original = sqs.send(
        queue, "charge 10 EUR", now_ms=0, message_group_id="card-7", deduplication_id="pay-1"
    )
    queue, retry = sqs.send(
        queue,
        "charge 10 EUR",
        now_ms=4 * MINUTE,
        message_group_id="card-7",
        deduplication_id="pay-1",
    )
    # The producer cannot tell: same MessageId, same SequenceNumber, no error.
    assert retry.message_id == original.message_id
    assert retry.sequence_number == original.sequence_number
    assert retry.duplicate and not original.duplicate

    queue, result = sqs.receive(queue, now_ms=4 * MINUTE, max_messages=10)
    assert bodies(result) == ["charge 10 EUR"]
    queue, _ = sqs.delete(queue, result.messages[0].receipt_handle, now_ms=4 * MINUTE)
    queue, after = sqs.receive(queue, now_ms=4 * MINUTE, max_messages=10)
    assert after.messages == ()
    assert queue.totals.duplicates == 1


def test_the_same_deduplication_id_after_five_minutes_is_a_new_message() -> None:
    queue = fifo_queue()
    queue, first = sqs.send(queue, "tick", now_ms=0, message_group_id="g", deduplication_id="same")
    queue, again = sqs.send(
        queue, "tick", now_ms=5 * MINUTE, message_group_id="g", deduplication_id="same"
    )
    assert not again.duplicate
    assert again.message_id != first.message_id
    assert int(again.sequence_number or 0) > int(first.sequence_number or 0)
    queue, result = sqs.receive(queue, now_ms=5 * MINUTE, max_messages=10)
    assert bodies(result) == ["tick", "tick"]


def test_deduplication_holds_even_after_the_original_was_deleted() -> None:
    queue = send_all(fifo_queue(), [("g", "once")])
    queue, result = sqs.receive(queue, now_ms=0)
    queue, _ = sqs.delete(queue, result.messages[0].receipt_handle, now_ms=0)
    queue, resend = sqs.send(
        queue, "once", now_ms=MINUTE, message_group_id="g", deduplication_id="once"
    )
    assert resend.duplicate
    queue, nothing = sqs.receive(queue, now_ms=MINUTE)
    assert nothing.messages == ()


def test_content_based_deduplication_uses_the_sha256_of_the_body() -> None:
    queue = fifo_queue(ContentBasedDeduplication="true")
    queue, sent = sqs.send(queue, "hello", now_ms=0, message_group_id="g")
    assert sent.message_deduplication_id == hashlib.sha256(b"hello").hexdigest()
    assert sent.md5_of_message_body == hashlib.md5(b"hello").hexdigest()
    queue, duplicate = sqs.send(queue, "hello", now_ms=1, message_group_id="other-group")
    assert duplicate.duplicate
    # An explicit id wins over the content hash.
    queue, explicit = sqs.send(
        queue, "hello", now_ms=2, message_group_id="g", deduplication_id="v2"
    )
    assert not explicit.duplicate


def test_high_throughput_mode_deduplicates_per_message_group() -> None:
    queue = fifo_queue(DeduplicationScope="messageGroup", FifoThroughputLimit="perMessageGroupId")
    assert queue.attributes.high_throughput
    queue, a = sqs.send(queue, "x", now_ms=0, message_group_id="a", deduplication_id="d")
    queue, b = sqs.send(queue, "x", now_ms=0, message_group_id="b", deduplication_id="d")
    queue, a_again = sqs.send(queue, "x", now_ms=0, message_group_id="a", deduplication_id="d")
    assert not b.duplicate and a_again.duplicate and a_again.message_id == a.message_id


def test_fifo_sends_need_a_group_and_a_deduplication_id() -> None:
    queue = fifo_queue()
    with pytest.raises(sqs.MissingParameter) as missing:
        sqs.send(queue, "x", now_ms=0, deduplication_id="d")
    assert missing.value.code == "MissingParameter"
    assert str(missing.value) == "The request must contain the parameter MessageGroupId."
    with pytest.raises(sqs.InvalidParameterValue) as no_dedup:
        sqs.send(queue, "x", now_ms=0, message_group_id="g")
    assert "ContentBasedDeduplication enabled or MessageDeduplicationId" in str(no_dedup.value)
    with pytest.raises(sqs.InvalidParameterValue, match="not valid for this queue type"):
        sqs.send(queue, "x", now_ms=0, message_group_id="g", deduplication_id="d", delay_seconds=5)
    with pytest.raises(sqs.InvalidParameterValue, match="MessageGroupId"):
        sqs.send(queue, "x", now_ms=0, message_group_id="é", deduplication_id="d")


def test_message_body_rules() -> None:
    queue = fifo_queue(MaximumMessageSize="1024")
    with pytest.raises(sqs.MissingParameter, match="MessageBody"):
        sqs.send(queue, "", now_ms=0, message_group_id="g", deduplication_id="d")
    with pytest.raises(sqs.InvalidMessageContents):
        sqs.send(queue, "bell\x07", now_ms=0, message_group_id="g", deduplication_id="d")
    with pytest.raises(sqs.InvalidParameterValue, match="shorter than 1024 bytes"):
        sqs.send(queue, "é" * 513, now_ms=0, message_group_id="g", deduplication_id="d")
    queue, ok = sqs.send(queue, "é" * 512, now_ms=0, message_group_id="g", deduplication_id="d")
    assert ok.message_id


def test_sequence_numbers_are_large_increasing_decimal_strings() -> None:
    queue = send_all(fifo_queue(), [("g", f"m{i}") for i in range(50)])
    numbers = [message.sequence_number for message in queue.messages]
    assert all(n is not None and n.isdigit() and len(n) >= 20 for n in numbers)
    as_ints = [int(n or 0) for n in numbers]
    assert as_ints == sorted(as_ints) and len(set(as_ints)) == 50
    # Non-consecutive, like AWS's.
    assert all(b - a > 1 for a, b in zip(as_ints, as_ints[1:], strict=False))


# --- retention, delay, purge -----------------------------------------------------------------


def test_retention_deletes_messages_nobody_consumed() -> None:
    queue = fifo_queue(MessageRetentionPeriod="60")
    queue = send_all(queue, [("g", "old")], now_ms=0)
    queue = send_all(queue, [("g", "new")], now_ms=30 * SECOND)
    queue, settled = sqs.advance(queue, now_ms=60 * SECOND)
    assert len(settled.expired) == 1
    queue, result = sqs.receive(queue, now_ms=60 * SECOND, max_messages=10)
    assert bodies(result) == ["new"]
    # Retention counts from the send, in flight or not.
    queue, settled = sqs.advance(queue, now_ms=90 * SECOND)
    assert settled.expired == (result.messages[0].message_id,)
    assert queue.messages == () and queue.totals.expired == 2


def test_default_retention_is_four_days() -> None:
    queue = send_all(fifo_queue(), [("g", "m")])
    four_days = 345_600 * SECOND
    kept, _ = sqs.advance(queue, now_ms=four_days - 1)
    gone, _ = sqs.advance(queue, now_ms=four_days)
    assert len(kept.messages) == 1 and gone.messages == ()


def test_queue_delay_holds_new_messages_back() -> None:
    queue = fifo_queue(DelaySeconds="10")
    queue = send_all(queue, [("g", "m1"), ("h", "m2")])
    counts = sqs.approximate_counts(queue)
    assert counts.approximate_number_of_messages_delayed == 2
    queue, early = sqs.receive(queue, now_ms=9_999, max_messages=10)
    assert early.messages == ()
    queue, settled = sqs.advance(queue, now_ms=10 * SECOND)
    assert len(settled.released) == 2
    queue, result = sqs.receive(queue, now_ms=10 * SECOND, max_messages=10)
    assert bodies(result) == ["m1", "m2"]


def test_purge_empties_the_queue_once_a_minute() -> None:
    queue = send_all(fifo_queue(), [("g", "a"), ("h", "b")])
    queue, _ = sqs.receive(queue, now_ms=0)
    queue, purged = sqs.purge(queue, now_ms=0)
    assert len(purged.purged_message_ids) == 2 and queue.messages == ()
    with pytest.raises(sqs.PurgeQueueInProgress) as error:
        sqs.purge(queue, now_ms=59 * SECOND)
    assert error.value.http_status == 403
    assert error.value.query_code == "AWS.SimpleQueueService.PurgeQueueInProgress"
    queue, _ = sqs.purge(queue, now_ms=60 * SECOND)


def test_counts_as_get_queue_attributes_reports_them() -> None:
    queue = fifo_queue(DelaySeconds="5")
    queue = send_all(queue, [("g", "a"), ("g", "b")])
    queue, _ = sqs.advance(queue, now_ms=5 * SECOND)
    queue = send_all(queue, [("h", "c")], now_ms=5 * SECOND)
    queue, _ = sqs.receive(queue, now_ms=5 * SECOND)
    attributes = sqs.get_queue_attributes(
        queue,
        [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )
    assert attributes == {
        "ApproximateNumberOfMessages": "1",
        "ApproximateNumberOfMessagesNotVisible": "1",
        "ApproximateNumberOfMessagesDelayed": "1",
    }


# --- dead-letter queue ---------------------------------------------------------------------


def test_max_receive_count_moves_the_message_to_the_dead_letter_queue() -> None:
    policy = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 2})
    queue = fifo_queue(RedrivePolicy=policy, VisibilityTimeout="10")
    queue = send_all(queue, [("g", "poison"), ("g", "next")])
    dlq = sqs.create_queue("orders-dlq.fifo", {"FifoQueue": "true"})

    now = 0
    for attempt in (1, 2):  # the consumer fails twice: never deletes
        queue, result = sqs.receive(queue, now_ms=now)
        assert bodies(result) == ["poison"]
        assert result.messages[0].approximate_receive_count == attempt
        now += 10 * SECOND

    # Received maxReceiveCount times: the next receive moves it instead of delivering it,
    # and "next" overtakes it. The group's order is broken.
    queue, result = sqs.receive(queue, now_ms=now)
    (move,) = result.dead_lettered
    assert move.message.body == "poison"
    assert move.target_queue_name == "orders-dlq.fifo"
    assert move.target_arn == DLQ_ARN
    assert bodies(result) == ["next"]
    assert queue.totals.dead_lettered == 1

    dlq = sqs.accept_dead_letter(dlq, move, now_ms=now)
    dlq, in_dlq = sqs.receive(dlq, now_ms=now)
    (parked,) = in_dlq.messages
    assert parked.message_id == move.message.message_id
    assert parked.message_group_id == "g"
    assert parked.approximate_receive_count == 3
    assert parked.sequence_number != move.message.sequence_number


def test_fifo_dead_letter_queue_restarts_retention_standard_keeps_it() -> None:
    def moved(source: sqs.Queue, group: str | None) -> sqs.DeadLetterMove:
        source, _ = sqs.send(
            source, "x", now_ms=0, message_group_id=group, deduplication_id="x" if group else None
        )
        source, _ = sqs.receive(source, now_ms=0, visibility_timeout=0)
        source, result = sqs.receive(source, now_ms=50 * SECOND)
        return result.dead_lettered[0]

    fifo_policy = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": "1"})
    fifo_move = moved(fifo_queue(RedrivePolicy=fifo_policy), "g")
    fifo_dlq = sqs.create_queue(
        "orders-dlq.fifo", {"FifoQueue": "true", "MessageRetentionPeriod": "60"}
    )
    fifo_dlq = sqs.accept_dead_letter(fifo_dlq, fifo_move, now_ms=50 * SECOND)
    fifo_dlq, _ = sqs.advance(fifo_dlq, now_ms=100 * SECOND)
    assert len(fifo_dlq.messages) == 1

    std_arn = "arn:aws:sqs:us-east-1:000000000000:jobs-dlq"
    std_policy = json.dumps({"deadLetterTargetArn": std_arn, "maxReceiveCount": "1"})
    std_move = moved(sqs.create_queue("jobs", {"RedrivePolicy": std_policy}), None)
    std_dlq = sqs.create_queue("jobs-dlq", {"MessageRetentionPeriod": "60"})
    std_dlq = sqs.accept_dead_letter(std_dlq, std_move, now_ms=50 * SECOND)
    std_dlq, settled = sqs.advance(std_dlq, now_ms=60 * SECOND)
    assert settled.expired == (std_move.message.message_id,)

    with pytest.raises(sqs.InvalidParameterValue):
        sqs.accept_dead_letter(std_dlq, fifo_move, now_ms=60 * SECOND)


# --- receive request attempt id -------------------------------------------------------------


def test_a_retried_receive_request_attempt_id_returns_the_same_messages() -> None:
    queue = send_all(fifo_queue(), [("g", "m1"), ("g", "m2")])
    queue, first = sqs.receive(
        queue, now_ms=0, max_messages=2, receive_request_attempt_id="attempt-1"
    )
    queue, retry = sqs.receive(
        queue, now_ms=20 * SECOND, max_messages=2, receive_request_attempt_id="attempt-1"
    )
    assert retry.replayed
    assert [m.receipt_handle for m in retry.messages] == [m.receipt_handle for m in first.messages]
    assert [m.approximate_receive_count for m in retry.messages] == [1, 1]
    # The retry restarted the visibility timeout.
    assert retry.messages[0].visibility_deadline_ms == 50 * SECOND

    queue, _ = sqs.delete(queue, first.messages[0].receipt_handle, now_ms=21 * SECOND)
    queue, fresh = sqs.receive(queue, now_ms=21 * SECOND, receive_request_attempt_id="attempt-1")
    assert not fresh.replayed and fresh.messages == ()


# --- batches -------------------------------------------------------------------------------


def test_batch_requests_are_checked_as_a_whole_first() -> None:
    with pytest.raises(sqs.EmptyBatchRequest):
        sqs.validate_batch_entry_ids([])
    with pytest.raises(sqs.TooManyEntriesInBatchRequest) as too_many:
        sqs.validate_batch_entry_ids([f"e{i}" for i in range(11)])
    assert too_many.value.code == "TooManyEntriesInBatchRequest"
    assert "You have sent 11" in str(too_many.value)
    with pytest.raises(sqs.BatchEntryIdsNotDistinct) as repeated:
        sqs.validate_batch_entry_ids(["a", "b", "a"])
    assert repeated.value.query_code == "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"
    with pytest.raises(sqs.InvalidBatchEntryId):
        sqs.validate_batch_entry_ids(["has space"])
    with pytest.raises(sqs.BatchRequestTooLong):
        sqs.validate_batch_payload(["x" * 600_000, "y" * 600_000])
    sqs.validate_batch_entry_ids([f"e{i}" for i in range(10)])


def test_a_batch_send_keeps_entry_order_and_fails_entries_one_by_one() -> None:
    queue = fifo_queue()
    entries = [
        sqs.SendBatchEntry("e1", "one", message_group_id="g", message_deduplication_id="1"),
        sqs.SendBatchEntry("e2", "two", message_deduplication_id="2"),
        sqs.SendBatchEntry("e3", "three", message_group_id="g", message_deduplication_id="3"),
    ]
    queue, result = sqs.send_batch(queue, entries, now_ms=0)
    assert [entry.id for entry in result.successful] == ["e1", "e3"]
    (failure,) = result.failed
    assert (failure.id, failure.code, failure.sender_fault) == ("e2", "MissingParameter", True)
    queue, received = sqs.receive(queue, now_ms=0, max_messages=10)
    assert bodies(received) == ["one", "three"]

    queue, deleted = sqs.delete_batch(
        queue,
        [
            sqs.DeleteBatchEntry("d1", received.messages[0].receipt_handle),
            sqs.DeleteBatchEntry("d2", "not-a-handle"),
        ],
        now_ms=0,
    )
    assert deleted.successful == ("d1",)
    assert deleted.failed[0].code == "ReceiptHandleIsInvalid"
    queue, changed = sqs.change_visibility_batch(
        queue,
        [sqs.ChangeVisibilityBatchEntry("c1", received.messages[1].receipt_handle, 0)],
        now_ms=0,
    )
    assert changed.successful == ("c1",)
    with pytest.raises(sqs.TooManyEntriesInBatchRequest):
        sqs.send_batch(queue, [sqs.SendBatchEntry(f"e{i}", "x") for i in range(11)], now_ms=0)


# --- receipt handles, parameters, attributes -----------------------------------------------


def test_receipt_handles_are_checked() -> None:
    queue = send_all(fifo_queue(), [("g", "m")])
    queue, result = sqs.receive(queue, now_ms=0)
    handle = result.messages[0].receipt_handle
    assert handle.startswith("AQEB")
    for bad in ("garbage", handle[:-2], handle + "x", handle.replace("A", "B", 5)):
        with pytest.raises(sqs.ReceiptHandleIsInvalid) as error:
            sqs.delete(queue, bad, now_ms=0)
        assert error.value.http_status == 404
    other = sqs.create_queue("other.fifo", {"FifoQueue": "true"})
    with pytest.raises(sqs.ReceiptHandleIsInvalid, match="not valid for this queue"):
        sqs.delete(other, handle, now_ms=0)
    queue, first = sqs.delete(queue, handle, now_ms=0)
    queue, second = sqs.delete(queue, handle, now_ms=0)  # deleting twice is fine
    assert first.deleted and not second.deleted


def test_receive_parameters_are_checked_like_aws() -> None:
    queue = fifo_queue()
    with pytest.raises(sqs.InvalidParameterValue) as error:
        sqs.receive(queue, now_ms=0, max_messages=11)
    assert str(error.value) == (
        "Value 11 for parameter MaxNumberOfMessages is invalid. "
        "Reason: Must be between 1 and 10, if provided."
    )
    with pytest.raises(sqs.InvalidParameterValue, match="VisibilityTimeout"):
        sqs.receive(queue, now_ms=0, visibility_timeout=-1)
    with pytest.raises(sqs.TimeWentBackwards):
        sqs.receive(sqs.advance(queue, now_ms=10)[0], now_ms=5)


def test_queue_attributes_have_aws_defaults_and_ranges() -> None:
    queue = fifo_queue()
    attributes = sqs.get_queue_attributes(queue)
    assert attributes["VisibilityTimeout"] == "30"
    assert attributes["MessageRetentionPeriod"] == "345600"
    assert attributes["DelaySeconds"] == "0"
    assert attributes["MaximumMessageSize"] == "1048576"
    assert attributes["ReceiveMessageWaitTimeSeconds"] == "0"
    assert attributes["ContentBasedDeduplication"] == "false"
    assert attributes["FifoQueue"] == "true"
    assert attributes["DeduplicationScope"] == "queue"
    assert attributes["FifoThroughputLimit"] == "perQueue"
    assert attributes["QueueArn"] == "arn:aws:sqs:us-east-1:000000000000:orders.fifo"

    for name, bad in [
        ("VisibilityTimeout", "43201"),
        ("MessageRetentionPeriod", "59"),
        ("MessageRetentionPeriod", "1209601"),
        ("DelaySeconds", "901"),
        ("MaximumMessageSize", "1023"),
        ("ReceiveMessageWaitTimeSeconds", "21"),
        ("VisibilityTimeout", "ten"),
        ("ContentBasedDeduplication", "yes"),
        ("DeduplicationScope", "group"),
    ]:
        with pytest.raises(sqs.InvalidAttributeValue) as error:
            fifo_queue(**{name: bad})
        assert str(error.value) == f"Invalid value for the parameter {name}."
    with pytest.raises(sqs.InvalidAttributeValue, match="perMessageGroupId"):
        fifo_queue(FifoThroughputLimit="perMessageGroupId")
    with pytest.raises(sqs.InvalidAttributeName, match="Unknown Attribute Colour."):
        fifo_queue(Colour="blue")
    with pytest.raises(sqs.InvalidAttributeName, match="ContentBasedDeduplication"):
        sqs.create_queue("plain", {"ContentBasedDeduplication": "true"})
    with pytest.raises(sqs.InvalidAttributeName):
        sqs.get_queue_attributes(queue, ["Colour"])


def test_queue_names_and_redrive_policies_are_checked() -> None:
    with pytest.raises(sqs.InvalidParameterValue, match=".fifo suffix"):
        sqs.create_queue("orders", {"FifoQueue": "true"})
    with pytest.raises(sqs.InvalidParameterValue):
        sqs.create_queue("orders.fifo")
    with pytest.raises(sqs.InvalidParameterValue):
        sqs.create_queue("x" * 81)
    for policy, reason in [
        ("{not json", "not a valid JSON map"),
        (json.dumps({"deadLetterTargetArn": DLQ_ARN}), "must contain"),
        (json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 0}), "1 to 1000"),
        (json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 1001}), "1 to 1000"),
        (json.dumps({"deadLetterTargetArn": "dlq", "maxReceiveCount": 3}), "deadLetterTargetArn"),
        (
            json.dumps({"deadLetterTargetArn": DLQ_ARN[:-5], "maxReceiveCount": 3}),
            "same type",
        ),
    ]:
        with pytest.raises(sqs.InvalidAttributeValue, match=reason):
            fifo_queue(RedrivePolicy=policy)


def test_set_queue_attributes_changes_and_applies_at_once() -> None:
    queue = send_all(fifo_queue(), [("g", "old")], now_ms=0)
    queue = sqs.set_queue_attributes(
        queue, {"MessageRetentionPeriod": "60", "VisibilityTimeout": 5}, now_ms=MINUTE
    )
    assert queue.messages == ()  # a shorter retention expires what is already too old
    assert queue.attributes.visibility_timeout == 5
    assert queue.last_modified_ms == MINUTE
    policy = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 5})
    queue = sqs.set_queue_attributes(queue, {"RedrivePolicy": policy}, now_ms=MINUTE)
    assert queue.attributes.redrive_policy == sqs.RedrivePolicy(DLQ_ARN, 5)
    assert json.loads(sqs.get_queue_attributes(queue)["RedrivePolicy"]) == {
        "deadLetterTargetArn": DLQ_ARN,
        "maxReceiveCount": 5,
    }
    queue = sqs.set_queue_attributes(queue, {"RedrivePolicy": ""}, now_ms=MINUTE)
    assert queue.attributes.redrive_policy is None
    with pytest.raises(sqs.InvalidAttributeValue, match="Modifying queue type"):
        sqs.set_queue_attributes(queue, {"FifoQueue": "false"}, now_ms=MINUTE)


# --- standard queue, for contrast -----------------------------------------------------------


def test_a_standard_queue_has_no_groups_to_block() -> None:
    queue = sqs.create_queue("jobs")
    for body in ("a1", "a2", "a3"):
        queue, sent = sqs.send(queue, body, now_ms=0, message_group_id="alice")
        assert sent.sequence_number is None
    queue, first = sqs.receive(queue, now_ms=0)
    queue, second = sqs.receive(queue, now_ms=0)
    assert bodies(first) == ["a1"] and bodies(second) == ["a2"]  # a1 in flight blocks nothing
    (lane,) = sqs.lanes(queue)
    assert lane.message_group_id == "" and not lane.blocked

    with pytest.raises(sqs.InvalidParameterValue, match="not valid for this queue type"):
        sqs.send(queue, "x", now_ms=0, deduplication_id="d")
    queue, _ = sqs.send(queue, "later", now_ms=0, delay_seconds=60)
    assert sqs.approximate_counts(queue).approximate_number_of_messages_delayed == 1
    with pytest.raises(sqs.InvalidParameterValue, match="DelaySeconds"):
        sqs.send(queue, "x", now_ms=0, delay_seconds=901)


# --- purity --------------------------------------------------------------------------------


def test_functions_return_new_values_and_state_is_json() -> None:
    policy = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 1})
    before = send_all(fifo_queue(RedrivePolicy=policy), [("g", "m")])
    snapshot = asdict(before)
    after, result = sqs.receive(before, now_ms=0, visibility_timeout=0)
    assert asdict(before) == snapshot and after != before
    json.dumps(asdict(after))
    json.dumps(asdict(result))
    json.dumps([asdict(lane) for lane in sqs.lanes(after)])
    _, moved = sqs.receive(after, now_ms=0)
    json.dumps(asdict(moved))


def test_same_calls_give_the_same_ids_and_a_seed_changes_them() -> None:
    def run(seed: str) -> tuple[sqs.Queue, sqs.ReceiveResult]:
        queue = sqs.create_queue("q.fifo", {"FifoQueue": "true"}, seed=seed)
        queue = send_all(queue, [("g", "a"), ("h", "b")])
        return sqs.receive(queue, now_ms=5, max_messages=10)

    assert run("one") == run("one")
    assert run("one")[1].messages[0].message_id != run("two")[1].messages[0].message_id


# --- properties ----------------------------------------------------------------------------

GROUPS = ("a", "b", "c")

_send = st.tuples(st.just("send"), st.sampled_from(GROUPS), st.integers(0, 30))
_receive = st.tuples(st.just("receive"), st.integers(1, 10), st.sampled_from([None, 0, 1, 5, 40]))
# Mostly one of the latest handles (the live ones), sometimes an old one.
_delete = st.tuples(st.just("delete"), st.integers(0, 12), st.just(0))
_change = st.tuples(st.just("change"), st.integers(0, 12), st.sampled_from([0, 2, 30]))
_wait = st.tuples(
    st.just("wait"), st.sampled_from([0, 500, 1_000, 5_000, 40_000, 310_000]), st.just(0)
)
operations = st.lists(
    st.one_of(_send, _send, _receive, _receive, _delete, _delete, _change, _wait),
    min_size=20,
    max_size=80,
)


class FifoModel:
    """Replays random calls against the engine and checks the FIFO promises after each."""

    def __init__(self, max_receive_count: int | None) -> None:
        attributes: dict[str, object] = {
            "FifoQueue": "true",
            "VisibilityTimeout": "5",
            "MessageRetentionPeriod": "120",
        }
        if max_receive_count is not None:
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": max_receive_count}
            )
        self.queue = sqs.create_queue("p.fifo", attributes)
        self.now = 0
        self.sent: dict[str, str] = {}  # message id -> group
        self.gone: dict[str, str] = {}  # message id -> why it left
        self.handles: list[tuple[str, int]] = []  # (receipt handle, which receive)
        self.receives = 0

    def run(self, operation: tuple[str, object, object]) -> None:
        name, first, second = operation
        self.queue, settled = sqs.advance(self.queue, now_ms=self.now)
        for message_id in settled.expired:
            self._leave(message_id, "expired")
        getattr(self, f"_{name}")(first, second)
        self._check_invariants()

    def _wait(self, ms: object, _: object) -> None:
        assert isinstance(ms, int)
        self.now += ms

    def _send(self, group: object, key: object) -> None:
        assert isinstance(group, str)
        self.queue, result = sqs.send(
            self.queue,
            f"{group}:{key}",
            now_ms=self.now,
            message_group_id=group,
            deduplication_id=f"d{key}",
        )
        if result.duplicate:
            assert result.message_id in self.sent
        else:
            assert result.message_id not in self.sent
            self.sent[result.message_id] = group

    def _receive(self, limit: object, timeout: object) -> None:
        assert isinstance(limit, int) and (timeout is None or isinstance(timeout, int))
        before = self.queue
        self.queue, result = sqs.receive(
            before, now_ms=self.now, max_messages=limit, visibility_timeout=timeout
        )
        self.receives += 1
        for move in result.dead_lettered:
            self._leave(move.message.message_id, "dead-lettered")
        for message in result.messages:
            self.handles.append((message.receipt_handle, self.receives))
        check_fifo_receive(before, result, limit, timeout, self.now)

    def _delete(self, pick: object, _: object) -> None:
        assert isinstance(pick, int)
        if not self.handles:
            return
        handle, _ = self.handles[-1 - pick % len(self.handles)]
        current = {m.receipt_handle: m for m in self.queue.messages if m.in_flight}
        try:
            self.queue, result = sqs.delete(self.queue, handle, now_ms=self.now)
        except sqs.InvalidParameterValue:
            assert handle not in current
            return
        if result.message_id is None:
            assert handle not in current
        else:
            assert current[handle].message_id == result.message_id
            self._leave(result.message_id, "deleted")

    def _change(self, pick: object, timeout: object) -> None:
        assert isinstance(pick, int) and isinstance(timeout, int)
        if not self.handles:
            return
        handle, _ = self.handles[-1 - pick % len(self.handles)]
        current = {m.receipt_handle for m in self.queue.messages if m.in_flight}
        try:
            self.queue, _ = sqs.change_visibility(self.queue, handle, timeout, now_ms=self.now)
        except (sqs.InvalidParameterValue, sqs.MessageNotInflight):
            assert handle not in current
            return
        assert handle in current

    def _leave(self, message_id: str, why: str) -> None:
        assert message_id in self.sent and message_id not in self.gone
        self.gone[message_id] = why

    def _check_invariants(self) -> None:
        queue = self.queue
        present = [message.message_id for message in queue.messages]
        # Nothing lost, nothing twice: every accepted message is in exactly one place.
        assert len(present) == len(set(present))
        assert set(present).isdisjoint(self.gone)
        assert set(present) | set(self.gone) == set(self.sent)
        orders = [message.order for message in queue.messages]
        assert orders == sorted(orders)
        # A group's in-flight messages all come from one receive.
        receive_of = dict(self.handles)
        for group in GROUPS:
            flying = {
                receive_of[m.receipt_handle]
                for m in queue.messages
                if m.in_flight and m.message_group_id == group and m.receipt_handle
            }
            assert len(flying) <= 1
        totals = queue.totals
        reasons = list(self.gone.values())
        assert totals.sent == len(self.sent)
        assert totals.deleted == reasons.count("deleted")
        assert totals.expired == reasons.count("expired")
        assert totals.dead_lettered == reasons.count("dead-lettered")
        counts = sqs.approximate_counts(queue)
        assert (
            counts.approximate_number_of_messages
            + counts.approximate_number_of_messages_not_visible
            + counts.approximate_number_of_messages_delayed
        ) == len(queue.messages)


def check_fifo_receive(
    before: sqs.Queue, result: sqs.ReceiveResult, limit: int, timeout: int | None, now: int
) -> None:
    """One receive took, per group, the head of that group in order, from unblocked groups
    only, one group after the other, each group exhausted before the next was started."""
    assert len(result.messages) <= limit
    waiting = {
        group: [m for m in before.messages if m.message_group_id == group] for group in GROUPS
    }
    blocked = {group for group, members in waiting.items() if any(m.in_flight for m in members)}
    dead = {move.message.message_id for move in result.dead_lettered}
    delivered_groups = [m.message_group_id for m in result.messages]
    blocks = [
        group
        for i, group in enumerate(delivered_groups)
        if i == 0 or delivered_groups[i - 1] != group
    ]
    assert len(blocks) == len(set(blocks)), "a group's messages come together"
    for group in GROUPS:
        taken = [m.message_id for m in result.messages if m.message_group_id == group]
        moved = [m.message_id for m in waiting[group] if m.message_id in dead]
        if not taken and not moved:
            continue
        assert group not in blocked
        walked = [m.message_id for m in waiting[group]][: len(taken) + len(moved)]
        assert sorted(walked) == sorted(taken + moved)
        assert [i for i in walked if i not in dead] == taken, "delivered in group order"
        if group in blocks[:-1]:
            assert len(walked) == len(waiting[group]), "a group is emptied before the next"
    seconds = 5 if timeout is None else timeout
    for message in result.messages:
        assert message.visibility_deadline_ms == now + seconds * SECOND
        previous = next(m for m in before.messages if m.message_id == message.message_id)
        assert message.approximate_receive_count == previous.receive_count + 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, max_receive_count=st.sampled_from([None, 1, 2, 3]))
def test_fifo_promises_hold_under_random_traffic(
    ops: list[tuple[str, object, object]], max_receive_count: int | None
) -> None:
    model = FifoModel(max_receive_count)
    for operation in ops:
        model.run(operation)

    replay = FifoModel(max_receive_count)
    for operation in ops:
        replay.run(operation)
    assert replay.queue == model.queue, "same calls, same queue"


# --- serialisation -------------------------------------------------------------------------


def json_round_trip(queue: sqs.Queue) -> sqs.Queue:
    return sqs.queue_from_dict(json.loads(json.dumps(sqs.queue_to_dict(queue))))


def test_a_queue_survives_a_json_round_trip_with_every_kind_of_state() -> None:
    policy = json.dumps({"deadLetterTargetArn": DLQ_ARN, "maxReceiveCount": 3})
    queue = fifo_queue(
        RedrivePolicy=policy, ContentBasedDeduplication="true", Policy='{"Version":"x"}'
    )
    queue = send_all(queue, [("alice", "a1"), ("alice", "a2"), ("bob", "b1")])
    queue, _ = sqs.send(queue, "a1", now_ms=1, message_group_id="alice", deduplication_id="a1")
    queue, _ = sqs.receive(queue, now_ms=2, receive_request_attempt_id="try-1")
    assert queue.receive_attempts and queue.deduplication and queue.attributes.redrive_policy
    assert json_round_trip(queue) == queue
    standard = sqs.create_queue("plain", {"DelaySeconds": "5"})
    standard, _ = sqs.send(standard, "later", now_ms=0)
    standard, _ = sqs.purge(standard, now_ms=10_000)
    assert json_round_trip(standard) == standard
    # The dict is plain JSON data, and notes kept next to it are ignored.
    data = sqs.queue_to_dict(queue)
    assert json.loads(json.dumps(data)) == data
    assert sqs.queue_from_dict({**data, "board": {"anything": 1}}) == queue


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=operations, max_receive_count=st.sampled_from([None, 2]))
def test_any_queue_the_engine_makes_survives_a_json_round_trip(
    ops: list[tuple[str, object, object]], max_receive_count: int | None
) -> None:
    model = FifoModel(max_receive_count)
    for operation in ops:
        model.run(operation)
        restored = json_round_trip(model.queue)
        assert restored == model.queue
        model.queue = restored  # carry on from the restored copy: it behaves the same
