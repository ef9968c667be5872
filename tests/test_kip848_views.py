"""KIP-848's pages: a group.protocol=consumer group made from the board's form and drawn with
its epochs, the side-by-side of the three rebalance protocols, and what /about/ says."""

from __future__ import annotations

import pytest

from messaging.models import ConsumerGroup
from messaging.services.groups import member_join
from messaging.services.rooms import room_create
from messaging.services.topics import topic_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def room():
    room = room_create(title="kip-848 views")
    topic_create(room=room, name="orders", partitions=4)
    return room


def test_it_creates_a_consumer_protocol_group_from_the_form_and_draws_its_epochs(client, room):
    response = client.post(
        f"/r/{room.code}/groups/new/",
        {
            "group_id": "app",
            "topics": "orders",
            "group_protocol": "consumer",
            "remote_assignor": "range",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200, response.content
    group = ConsumerGroup.objects.get(room=room, group_id="app")
    assert (group.group_protocol, group.remote_assignor) == ("consumer", "range")
    member_join(group=group, client_id="app")
    page = client.get(f"/r/{room.code}/").content.decode()
    assert "group.protocol=consumer" in page
    assert "range (server-side)" in page
    assert 'class="kip848-member" data-epoch="1" data-state="stable"' in page
    assert 'href="/rebalances/?members=1&amp;partitions=4&amp;event=join"' in page


def test_it_refuses_an_assignor_the_coordinator_does_not_have(client, room):
    response = client.post(
        f"/r/{room.code}/groups/new/",
        {
            "group_id": "app",
            "topics": "orders",
            "group_protocol": "consumer",
            "remote_assignor": "sticky",
        },
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 400
    assert "group.remote.assignor is uniform or range" in response.content.decode()
    assert not ConsumerGroup.objects.filter(room=room).exists()


def test_it_runs_the_three_protocols_side_by_side(client):
    page = client.get("/rebalances/?members=3&partitions=6&event=join").content.decode()
    for protocol in ("eager", "cooperative", "consumer"):
        assert f'data-protocol="{protocol}"' in page
    assert "stopped altogether: c1, c2, c3" in page
    assert page.count("nobody stopped") == 2
    bad = client.get("/rebalances/?members=40")
    assert bad.status_code == 400
    assert "Between 1 and 8 consumers" in bad.content.decode()
    assert client.get("/rebalances/?partitions=x").status_code == 400
    assert client.post("/rebalances/").status_code == 405


def test_about_says_what_kip848_does_and_leaves_out(client):
    page = client.get("/about/").content.decode()
    assert "group.protocol=consumer" in page
    assert "INCONSISTENT_GROUP_PROTOCOL" in page
    assert "group.consumer.heartbeat.interval.ms" in page
