"""Rate limits are counted once for every server process: in Redis or in the database.

The stores give the same answers as the in-memory buckets; two real server processes on one
database (SQLite, PostgreSQL) or one Redis share a limit exactly; a Redis that is down lets
requests through with one log line, not a 500; the database keeps no row of a full bucket.
"""

from __future__ import annotations

import http.cookiejar
import logging
import re
import secrets
import urllib.error
import urllib.parse
import urllib.request

import pytest

from messaging.infra import rates
from messaging.infra.rates import DatabaseBuckets, RedisBuckets, TokenBuckets, retry_seconds
from messaging.models import RateBucket
from tests.support.server import manage, serve, server_env


@pytest.fixture(params=["memory", "database", "redis"])
def store(request):
    if request.param == "memory":
        yield TokenBuckets()
    elif request.param == "database":
        request.getfixturevalue("db")
        yield DatabaseBuckets(RateBucket)
    else:
        url = request.getfixturevalue("redis_url")
        redis_store = RedisBuckets(url, prefix=f"loglab-test:{secrets.token_hex(4)}:")
        yield redis_store
        redis_store.clear()


def test_every_store_refills_at_its_rate_and_refuses_the_same_way(store):
    key = ("ip", "room")
    assert [store.take(key, rate=2, burst=2, now=100.0) for _ in range(2)] == [0.0, 0.0]
    assert store.take(key, rate=2, burst=2, now=100.0) == pytest.approx(0.5)
    assert store.wait(key, rate=2, burst=2, now=100.0) == pytest.approx(0.5)
    assert store.take(key, rate=2, burst=2, now=100.25) == pytest.approx(0.25)
    assert store.take(key, rate=2, burst=2, now=100.5) == 0.0
    # More at once than the bucket ever holds: no wait helps.
    assert store.take(key, rate=2, burst=2, now=200.0, cost=3) == float("inf")
    assert store.take(("new",), rate=2, burst=2, now=200.0, cost=3) == float("inf")
    # A clock that went back refills nothing, and takes nothing away.
    assert store.take(key, rate=2, burst=2, now=200.0, cost=2) == 0.0
    assert store.take(key, rate=2, burst=2, now=150.0) == pytest.approx(0.5)
    assert store.wait(("untouched",), rate=2, burst=2, now=0.0) == 0.0
    # Keys of any length stay distinct.
    long_a, long_b = ("x" * 300 + "a",), ("x" * 300 + "b",)
    assert store.take(long_a, rate=1, burst=1, now=0.0) == 0.0
    assert store.take(long_b, rate=1, burst=1, now=0.0) == 0.0
    assert store.take(long_a, rate=1, burst=1, now=0.0) == pytest.approx(1.0)


def test_a_wait_is_said_in_whole_seconds_rounded_up_at_least_one():
    assert [retry_seconds(w) for w in (0.001, 0.5, 1.0, 1.2, 7.0)] == [1, 1, 1, 2, 7]
    assert retry_seconds(float("inf")) == 1


def test_the_database_keeps_no_row_of_a_full_bucket(db):
    store = DatabaseBuckets(RateBucket, purge_every_s=10)
    store.take(("a",), rate=1, burst=5, now=1000.0)  # full again at 1001
    store.take(("b",), rate=1, burst=5, now=1000.0, cost=5)  # full again at 1005
    assert RateBucket.objects.count() == 2
    store.take(("c",), rate=1, burst=5, now=1003.0)  # too soon to purge
    assert RateBucket.objects.count() == 3
    store.take(("c",), rate=1, burst=5, now=1011.0)
    assert set(RateBucket.objects.values_list("key", flat=True)) == {"c"}


def test_a_redis_that_is_down_lets_requests_through_with_one_log_line(caplog, monkeypatch):
    monkeypatch.setattr(rates, "RETRY_STORE_AFTER_S", 0.0)  # try Redis on every call
    down = RedisBuckets("redis://127.0.0.1:9/0")  # the discard port: nothing listens
    with caplog.at_level(logging.WARNING, logger="messaging.infra.rates"):
        answers = [down.take(("k",), rate=1, burst=1) for _ in range(5)]
    assert answers == [0.0] * 5
    lines = [r for r in caplog.records if r.name == "messaging.infra.rates"]
    assert len(lines) == 1 and "unreachable" in lines[0].getMessage()


def test_the_database_store_lets_requests_through_when_its_table_fails(caplog, db):
    class Missing:  # a model whose table is not there: every query fails
        class objects:  # noqa: N801
            @staticmethod
            def filter(**kwargs):
                from django.db import DatabaseError

                raise DatabaseError("no such table")

    store = DatabaseBuckets(Missing)
    with caplog.at_level(logging.WARNING, logger="messaging.infra.rates"):
        assert store.take(("k",), rate=1, burst=1) == 0.0
        assert store.take(("k",), rate=1, burst=1) == 0.0
    assert len([r for r in caplog.records if r.name == "messaging.infra.rates"]) == 1


# --- two real server processes, one limit -----------------------------------------------------


class Browser:
    """urllib with cookies: enough to post Django's log-in form with its CSRF token."""

    def __init__(self) -> None:
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def login_token(self, base: str) -> str:
        with self.opener.open(base + "/accounts/login/", timeout=30) as response:
            page = response.read().decode()
        return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    def post(self, url: str, data: dict) -> int:
        body = urllib.parse.urlencode(data).encode()
        try:
            with self.opener.open(url, body, timeout=30) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code


@pytest.mark.parametrize("store_name", ["sqlite", "postgres", "redis"])
def test_two_server_processes_share_one_limit(store_name, tmp_path, request):
    """Wrong passwords for one username, alternating between two processes: the account's five
    failures are five in all, not five per process."""
    username = f"nobody-{secrets.token_hex(4)}"
    env = server_env(
        LOGLAB_LOGIN_FAILURES_PER_USERNAME="5",
        LOGLAB_LOGIN_FAILURES_PER_IP="1000",
        LOGLAB_LOGIN_REFILL_SECONDS="3600",
        LOGLAB_RATE_BACKEND="auto",
    )
    env.pop("REDIS_URL", None)
    env.pop("DATABASE_URL", None)
    env["SQLITE_PATH"] = str(tmp_path / "shared.sqlite3")
    if store_name == "postgres":
        env["DATABASE_URL"] = request.getfixturevalue("postgres_database")
    if store_name == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    manage("migrate", "--noinput", env=env)
    browser = Browser()
    with serve(env) as first, serve(env) as second:
        token = browser.login_token(first)
        statuses = []
        for i in range(12):
            base = (first, second)[i % 2]
            form = {"username": username, "password": "wrong", "csrfmiddlewaretoken": token}
            statuses.append(browser.post(base + "/accounts/login/", form))
    assert statuses == [200] * 5 + [429] * 7


def test_the_store_follows_the_setting():
    assert isinstance(
        rates.store_for(backend="auto", redis_url="", model=RateBucket), DatabaseBuckets
    )
    assert isinstance(
        rates.store_for(backend="auto", redis_url="redis://127.0.0.1:6379/0", model=RateBucket),
        RedisBuckets,
    )
    assert isinstance(rates.store_for(backend="memory", redis_url="", model=None), TokenBuckets)
    with pytest.raises(ValueError, match="unknown rate-limit backend"):
        rates.store_for(backend="carrier-pigeon", redis_url="", model=None)
