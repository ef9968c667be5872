"""Guessing instructors' passwords is throttled: per address and per username, 429 with the
reason on the log-in page, counted for every server process; right passwords count nothing."""

from __future__ import annotations

import types

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from messaging.infra import rates
from tests.classroom.helpers import PASSWORD

pytestmark = pytest.mark.django_db


def attempt(client: Client, username: str, password: str, **extra):
    return client.post("/accounts/login/", {"username": username, "password": password}, **extra)


def test_forty_wrong_passwords_in_a_row_are_throttled_with_a_reason(instructor, rate_clock_stopped):
    client = Client()
    statuses = [attempt(client, "ada", "wrong").status_code for _ in range(40)]
    assert statuses == [200] * 5 + [429] * 35
    refused = attempt(client, "ada", "wrong")
    assert refused["Retry-After"] == "60"
    page = refused.content.decode()
    assert 'role="alert"' in page and "Too many failed log-ins" in page
    assert "Try again in 60 s." in page
    assert 'value="ada"' in page  # the username typed stays in the form
    # Even the right password waits: otherwise the throttle would tell a guess that is right.
    assert attempt(client, "ada", PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session


def test_it_counts_failures_per_username_and_per_address(instructor, settings, rate_clock_stopped):
    settings.LOGLAB_LOGIN_FAILURES_PER_IP = 8
    get_user_model().objects.create_user("grace", password=PASSWORD)
    client = Client()
    for _ in range(5):
        attempt(client, "ada", "wrong")
    # ada's account is throttled from any address; grace's is not.
    assert attempt(Client(), "ada", "wrong", REMOTE_ADDR="10.0.0.7").status_code == 429
    assert attempt(client, "grace", "wrong").status_code == 200
    for _ in range(2):
        attempt(client, "grace", "wrong")
    # The address has spent its 8 failures (5 + 1 + 2): every username is refused from it.
    assert attempt(client, "someone", "wrong").status_code == 429
    assert attempt(Client(), "someone", "wrong", REMOTE_ADDR="10.0.0.7").status_code == 200


def test_right_passwords_are_never_counted(instructor, rate_clock_stopped):
    for _ in range(12):
        client = Client()
        assert attempt(client, "ada", PASSWORD).status_code == 302
        assert client.session["_auth_user_id"] == str(instructor.pk)


def test_failures_refill_over_time(instructor, settings, monkeypatch):
    settings.LOGLAB_LOGIN_REFILL_SECONDS = 30
    settings.LOGLAB_LOGIN_FAILURES_PER_USERNAME = 1
    now = [1_000_000.0]
    clock = types.SimpleNamespace(time=lambda: now[0], monotonic=lambda: now[0])
    monkeypatch.setattr(rates, "time", clock)
    client = Client()
    assert attempt(client, "ada", "wrong").status_code == 200
    refused = attempt(client, "ada", "wrong")
    assert (refused.status_code, refused["Retry-After"]) == (429, "30")
    now[0] += 29.5
    assert "Try again in 1 s." in attempt(client, "ada", PASSWORD).content.decode()
    now[0] += 0.5
    assert attempt(client, "ada", PASSWORD).status_code == 302


def test_sign_ups_from_one_address_are_throttled(rate_clock_stopped):
    statuses = []
    for i in range(7):
        response = Client().post(
            "/accounts/signup/",
            {"username": f"teacher{i}", "password1": PASSWORD, "password2": PASSWORD},
        )
        statuses.append(response.status_code)
    assert statuses == [302] * 5 + [429] * 2
    assert "Too many sign-ups from this address" in response.content.decode()
    assert response["Retry-After"] == "60"
    assert not get_user_model().objects.filter(username="teacher6").exists()
