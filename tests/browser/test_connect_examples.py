"""The board's "Connect your own code" examples work as printed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from playwright.sync_api import expect

from messaging.engine.partitioner import partition_for_key
from messaging.services.groups import group_create
from messaging.services.records import RecordIn, records_produce
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def room():
    room = room_create(title="Connect")
    topic_create(room=room, name="orders", partitions=3)
    group_create(room=room, group_id="billing", topics=["orders"])
    records_produce(room=room, topic_name="orders", records=[RecordIn(key="bob", value="1")])
    return room


def test_the_examples_on_the_board_run_as_printed(new_page, live_url, room):
    page = new_page()
    page.goto(f"{live_url}/r/{room.code}/")
    page.locator("#connect > summary").click()
    expect(page.locator("#connect")).to_contain_text("signature is not checked")
    curl = page.locator('[data-example="curl"]').text_content()
    python = page.locator('[data-example="python"]').text_content()

    produced = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30)
    assert produced.returncode == 0, produced.stderr
    offset = json.loads(produced.stdout)["offsets"][0]
    # REST Proxy's JSON format sends the key JSON-encoded: the bytes '"alice"' are hashed.
    assert offset["partition"] == partition_for_key(json.dumps("alice").encode(), 3)

    consumed = subprocess.run(
        [sys.executable, "-c", python], capture_output=True, text=True, timeout=30
    )
    assert consumed.returncode == 0, consumed.stderr
    assert "'bob'" in consumed.stdout or '"bob"' in consumed.stdout
    # The script's consumer is on the board, in the group everyone watches.
    expect(page.locator('.member[data-group="billing"]').filter(has_text="me")).to_have_count(1)
