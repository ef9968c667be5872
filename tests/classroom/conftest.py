"""Fixtures the classroom tests share: an instructor, their classroom, a client logged in as
them, and rate-limit buckets emptied around each test."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from messaging.infra.rates import buckets
from messaging.services.classroom import classroom_create
from tests.classroom.helpers import PASSWORD


@pytest.fixture(autouse=True)
def fresh_buckets():
    buckets.clear()
    yield
    buckets.clear()


@pytest.fixture
def instructor():
    return get_user_model().objects.create_user("ada", password=PASSWORD)


@pytest.fixture
def room(instructor):
    return classroom_create(owner=instructor, title="Week 3")


@pytest.fixture
def owner(instructor):
    client = Client()
    client.force_login(instructor)
    return client
