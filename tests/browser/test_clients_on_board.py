"""Learners' own clients on the board: a REST Proxy consumer joins a group everyone watches."""

from __future__ import annotations

import json
import urllib.request

import pytest
from playwright.sync_api import expect

from messaging.services.groups import group_create, member_join
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

V2 = "application/vnd.kafka.v2+json"


def call(url: str, body: dict | None = None, method: str = "POST") -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": V2, "Accept": V2}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return json.loads(text) if text else {}


@pytest.fixture
def room():
    room = room_create(title="Clients")
    topic_create(room=room, name="orders", partitions=3)
    group = group_create(room=room, group_id="billing", topics=["orders"])
    member_join(group=group, client_id="billing")
    return room


def test_a_rest_proxy_consumer_appears_on_the_board_and_the_group_rebalances(
    new_page, live_url, room
):
    page = new_page()
    page.goto(f"{live_url}/r/{room.code}/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    expect(page.locator('.member[data-member="billing-1"]')).to_have_attribute(
        "data-assigned", "orders-0 orders-1 orders-2"
    )

    base = f"{live_url}/api/kafka/{room.code}"
    created = call(f"{base}/consumers/billing", {"name": "my-consumer", "format": "json"})
    assert created["instance_id"] == "my-consumer"
    call(f"{base}/consumers/billing/instances/my-consumer/subscription", {"topics": ["orders"]})

    mine = page.locator('.member[data-group="billing"]').filter(has_text="my-consumer")
    expect(mine).to_have_count(1)
    expect(page.locator('.member[data-member="billing-1"]')).to_have_attribute(
        "data-assigned", "orders-0 orders-1"
    )
    expect(mine).to_have_attribute("data-assigned", "orders-2")
    expect(page.locator('.group[data-group="billing"] .generation')).to_have_text("2")

    call(f"{base}/consumers/billing/instances/my-consumer", method="DELETE")
    expect(mine).to_have_count(0)
    expect(page.locator('.member[data-member="billing-1"]')).to_have_attribute(
        "data-assigned", "orders-0 orders-1 orders-2"
    )


def test_messages_sent_with_boto3_appear_in_the_sqs_view(new_page, live_url, room):
    import boto3

    page = new_page()
    page.goto(f"{live_url}/r/{room.code}/queues/")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")

    sqs = boto3.client(
        "sqs",
        endpoint_url=f"{live_url}/api/sqs/",
        region_name="us-east-1",
        aws_access_key_id=room.code,
        aws_secret_access_key="not-checked",
    )
    url = sqs.create_queue(
        QueueName="orders.fifo",
        Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
    )["QueueUrl"]
    for group, body in [("alice", "a1 <b>"), ("alice", "a2"), ("bob", "b1")]:
        sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId=group)
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
    assert received[0]["Body"] == "a1 <b>"

    alice = page.locator('.lane[data-group="alice"]')
    expect(alice).to_have_attribute("data-blocked", "true")
    expect(alice).to_contain_text("a1 <b>")  # a body is text, never markup
    expect(page.locator('.lane[data-group="bob"]')).to_have_attribute("data-blocked", "false")
