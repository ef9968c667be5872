"""A view whose database went away (PostgreSQL restarting) answers 503 with a reason and
Retry-After in the client's own terms, never a bare 500. `make soak`'s PostgreSQL restart
scenario shows it against a real restart; here the failure is the exception psycopg raises when
PostgreSQL cuts a session (`pg_ctl stop -m fast`), raised where the views first touch the
database."""

from __future__ import annotations

import importlib
import json

import pytest
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.test import RequestFactory

from messaging import selectors
from messaging.infra.dbdown import DatabaseUnavailableMiddleware

pytestmark = pytest.mark.django_db

CUT = "terminating connection due to administrator command"


@pytest.fixture
def database_gone(monkeypatch):
    # Every module that imports room_get by name is loaded first: one imported while the patch
    # is on would keep the failing stand-in for the rest of the test run.
    importlib.import_module(settings.ROOT_URLCONF)

    def room_get(**kwargs):
        raise OperationalError(CUT)

    monkeypatch.setattr(selectors, "room_get", room_get)


def test_it_answers_a_kafka_produce_503_in_rest_proxys_shape(client, database_gone):
    body = json.dumps({"records": [{"value": {"n": 1}}]})
    response = client.post(
        "/api/kafka/ABCDEF/topics/orders",
        body,
        content_type="application/vnd.kafka.json.v2+json",
    )
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    answer = response.json()
    assert answer["error_code"] == 50301
    assert "database did not answer" in answer["message"]
    assert "Try again in a few seconds" in answer["message"]


def test_it_answers_an_htmx_request_503_with_the_error_fragment(client, database_gone):
    response = client.get("/r/ABCDEF/", HTTP_HX_REQUEST="true")
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    text = response.content.decode()
    assert 'class="form-result is-error"' in text
    assert "database did not answer" in text
    assert "<html" not in text


def test_it_answers_a_page_503_with_the_error_page(client, database_gone):
    response = client.get("/r/ABCDEF/")
    assert response.status_code == 503
    text = response.content.decode()
    assert "That did not work." in text
    assert "database did not answer" in text


def test_it_answers_the_sqs_api_with_service_unavailable_as_aws_does():
    request = RequestFactory().post("/api/sqs/", "{}", content_type="application/x-amz-json-1.0")
    middleware = DatabaseUnavailableMiddleware(lambda request: None)
    response = middleware.process_exception(request, InterfaceError("connection already closed"))
    assert response is not None
    assert response.status_code == 503
    assert response["Retry-After"] == "2"
    assert response["x-amzn-query-error"] == "ServiceUnavailable;Receiver"
    assert json.loads(response.content)["__type"] == "com.amazonaws.sqs#ServiceUnavailable"


def test_it_leaves_other_exceptions_to_djangos_500(client, monkeypatch):
    def room_get(**kwargs):
        raise RuntimeError("a bug, not an outage")

    monkeypatch.setattr(selectors, "room_get", room_get)
    with pytest.raises(RuntimeError, match="a bug"):
        client.get("/r/ABCDEF/")
