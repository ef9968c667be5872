"""The join URL on the projector is one a phone can reach, and the page says when none is."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client, override_settings

from messaging.services.classroom import classroom_create

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-classroom-password"


@pytest.fixture
def room():
    owner = get_user_model().objects.create_user("ada", password=PASSWORD)
    return classroom_create(owner=owner, title="LAN class")


def presenter_page(room, host: str) -> str:
    client = Client(HTTP_HOST=host)
    client.login(username="ada", password=PASSWORD)
    response = client.get(f"/r/{room.code}/present/")
    assert response.status_code == 200
    return response.content.decode()


@override_settings(LOGLAB_MACHINE_ADDRESSES=["192.168.1.23", "10.0.0.5"], LOGLAB_BIND_HOST="")
@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "[::1]:8000"])
def test_it_shows_the_lan_address_when_the_projector_opened_loopback(room, host):
    page = presenter_page(room, host)
    assert f'href="http://192.168.1.23:8000/j/{room.code}/"' in page
    assert "127.0.0.1:8000/j/" not in page
    assert "phones cannot" not in page


@override_settings(
    LOGLAB_MACHINE_ADDRESSES=["192.168.1.23"],
    LOGLAB_BIND_HOST="0.0.0.0",
    ALLOWED_HOSTS=["10.0.0.5"],
)
def test_it_keeps_the_address_the_projector_used_when_it_is_not_loopback(room):
    page = presenter_page(room, "10.0.0.5:8000")
    assert f'href="http://10.0.0.5:8000/j/{room.code}/"' in page


@override_settings(
    LOGLAB_PUBLIC_URL="https://loglab.example.org", LOGLAB_MACHINE_ADDRESSES=["192.168.1.23"]
)
def test_it_shows_the_public_url_behind_a_proxy(room):
    page = presenter_page(room, "127.0.0.1:8000")
    assert f'href="https://loglab.example.org/j/{room.code}/"' in page


@override_settings(LOGLAB_MACHINE_ADDRESSES=[], LOGLAB_PUBLIC_URL="", LOGLAB_BIND_HOST="")
def test_it_warns_when_the_only_address_is_loopback(room):
    page = presenter_page(room, "127.0.0.1:8000")
    assert 'role="alert">This machine has only a loopback address' in page
    assert "phones cannot reach it" in page


@override_settings(
    LOGLAB_MACHINE_ADDRESSES=["192.168.1.23"], LOGLAB_PUBLIC_URL="", LOGLAB_BIND_HOST="127.0.0.1"
)
def test_it_warns_when_the_server_listens_on_loopback_only(room):
    page = presenter_page(room, "127.0.0.1:8000")
    assert "LogLab listens on 127.0.0.1 only" in page
    assert "make classroom" in page
