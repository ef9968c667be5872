from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from messaging.models import Room, Topic

pytestmark = [pytest.mark.django_db]

PASSWORD = "a-long-classroom-password"


@pytest.fixture
def instructor():
    return get_user_model().objects.create_user("ada", password=PASSWORD)


def test_it_signs_up_an_instructor_and_logs_them_in(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "grace", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/classrooms/"
    assert get_user_model().objects.filter(username="grace").exists()
    page = client.get("/classrooms/")
    assert page.status_code == 200
    assert b"Your classrooms" in page.content
    assert b"grace" in page.content


def test_it_refuses_a_signup_with_mismatched_passwords(client):
    response = client.post(
        "/accounts/signup/",
        {"username": "grace", "password1": PASSWORD, "password2": PASSWORD + "x"},
    )
    assert response.status_code == 400
    assert b"didn" in response.content  # "The two password fields didn't match."
    assert not get_user_model().objects.exists()


def test_it_logs_in_to_the_classroom_list_and_logs_out_on_post(client, instructor):
    assert client.get("/accounts/login/").status_code == 200
    bad = client.post("/accounts/login/", {"username": "ada", "password": "wrong"})
    assert bad.status_code == 200
    assert b"Please enter a correct username and password" in bad.content
    response = client.post("/accounts/login/", {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/classrooms/"
    assert client.get("/classrooms/").status_code == 200
    assert client.get("/accounts/logout/").status_code == 405  # a link cannot log anyone out
    assert client.get("/classrooms/").status_code == 200
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert client.get("/classrooms/").status_code == 302


def test_it_sends_anonymous_people_to_log_in(client):
    response = client.get("/classrooms/")
    assert response.status_code == 302
    assert response.headers["Location"] == "/accounts/login/?next=/classrooms/"
    assert client.post("/classrooms/new/", {"title": "x"}).status_code == 302
    assert not Room.objects.exists()


def test_it_creates_a_seeded_classroom_that_belongs_to_its_creator(client, instructor):
    other = get_user_model().objects.create_user("bob", password=PASSWORD)
    client.force_login(instructor)
    response = client.post("/classrooms/new/", {"title": "Week 3: consumer groups"})
    room = Room.objects.get()
    assert response.status_code == 302
    assert response.headers["Location"] == f"/r/{room.code}/present/"
    assert (room.kind, room.owner, room.title) == (
        Room.Kind.CLASSROOM,
        instructor,
        "Week 3: consumer groups",
    )
    assert Topic.objects.filter(room=room, name="orders").exists()  # seeded like a sandbox
    page = client.get("/classrooms/").content.decode()
    assert "Week 3: consumer groups" in page
    assert f"/r/{room.code}/present/" in page
    client.force_login(other)
    assert "Week 3" not in client.get("/classrooms/").content.decode()


def test_it_bounds_a_classroom_title(client, instructor):
    client.force_login(instructor)
    response = client.post("/classrooms/new/", {"title": "x" * 81})
    assert response.status_code == 400
    assert b"at most 80 characters" in response.content
    assert not Room.objects.exists()


def test_it_still_makes_a_sandbox_in_one_click_without_an_account(client):
    response = client.post("/rooms/new/")
    assert response.status_code == 302
    room = Room.objects.get()
    assert (room.kind, room.owner) == (Room.Kind.SANDBOX, None)
