from __future__ import annotations

import pytest
import qrcode
from django.contrib.auth import get_user_model
from django.test import Client
from qrcode.image.svg import SvgPathImage

from messaging.models import Room, Student
from messaging.services.classroom import MAX_STUDENTS_PER_ROOM, classroom_create
from messaging.services.rooms import room_create
from tests.classroom.helpers import HTMX

pytestmark = [pytest.mark.django_db]


@pytest.fixture
def presenter(client, instructor):
    client.force_login(instructor)
    return client


def join(client, room, name, **headers):
    return client.post(f"/j/{room.code}/", {"display_name": name}, headers=headers)


def test_it_shows_the_presenter_view_with_the_code_the_url_and_its_qr_code(presenter, room):
    response = presenter.get(f"/r/{room.code}/present/")
    assert response.status_code == 200
    page = response.content.decode()
    url = f"http://testserver/j/{room.code}/"
    assert room.code in page
    assert f'href="{url}"' in page
    expected = qrcode.make(url, image_factory=SvgPathImage).to_string(encoding="unicode")
    assert expected.startswith("<svg") and expected in page
    other = qrcode.make(url + "x", image_factory=SvgPathImage).to_string(encoding="unicode")
    assert other not in page
    assert "Nobody yet" in page
    assert f'hx-get="/r/{room.code}/present/students/"' in page
    assert 'hx-trigger="every 3s"' in page


@pytest.mark.parametrize("path", ["present/", "present/students/"])
def test_it_forbids_the_presenter_view_to_anyone_but_the_owner(client, room, path):
    anonymous = client.get(f"/r/{room.code}/{path}")
    assert anonymous.status_code == 403
    assert b"instructor" in anonymous.content
    get_user_model().objects.create_user("eve", password="a-long-classroom-password")
    other = Client()
    other.login(username="eve", password="a-long-classroom-password")
    response = other.get(f"/r/{room.code}/{path}")
    assert response.status_code == 403
    assert b"instructor" in response.content
    assert b"<svg" not in response.content


def test_it_answers_the_presenter_view_of_an_unknown_room_with_404(presenter):
    response = presenter.get("/r/NOPE99/present/")
    assert response.status_code == 404
    assert b"There is no room with the code" in response.content


def test_it_joins_with_a_plain_form_post_and_shows_the_student_page(client, room):
    form = client.get(f"/j/{room.code}/")
    assert form.status_code == 200
    assert b'name="display_name"' in form.content
    response = join(client, room, "  Grace Hopper ")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/r/{room.code}/me/"
    student = Student.objects.get()
    assert student.display_name == "Grace Hopper"
    assert student.room == room
    assert student.session_key == client.session.session_key
    me = client.get(f"/r/{room.code}/me/").content.decode()
    assert 'You are <span class="student-name">Grace Hopper</span> in Week 3' in me
    assert f'href="/r/{room.code}/"' in me


def test_it_joins_with_htmx_and_redirects_the_page(client, room):
    response = join(client, room, "Grace", **HTMX)
    assert response.status_code == 200
    assert response.headers["HX-Redirect"] == f"/r/{room.code}/me/"
    assert Student.objects.get().display_name == "Grace"


def test_it_reuses_the_student_of_a_session_that_joins_again(client, room):
    join(client, room, "Grace")
    again = join(client, room, "Someone else")
    assert again.status_code == 302
    assert Student.objects.get().display_name == "Grace"
    response = client.get(f"/j/{room.code}/")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/r/{room.code}/me/"


def test_it_takes_lowercase_codes_from_the_url(client, room):
    response = client.get(f"/j/{room.code.lower()}/")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/j/{room.code}/"


def test_it_takes_a_name_of_exactly_40_characters(client, room):
    assert join(client, room, "x" * 40).status_code == 302
    assert Student.objects.get().display_name == "x" * 40


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "Type the name"),
        ("   ", "Type the name"),
        ("x" * 41, "at most 40 characters"),
        ("GRACE", "name is taken in this room"),
        ("bell\x07", "control characters"),
    ],
)
def test_it_refuses_a_bad_name_and_writes_nothing(client, room, name, reason, htmx):
    join(Client(), room, "grace")
    response = join(client, room, name, **(HTMX if htmx else {}))
    assert response.status_code == 400
    page = response.content.decode()
    assert reason in page
    assert 'name="display_name"' in page  # the form again, to fix the name
    assert ("<html" in page) is not htmx
    assert list(Student.objects.values_list("display_name", flat=True)) == ["grace"]


def test_it_answers_an_unknown_code_with_404_and_the_reason(client):
    for response in (client.get("/j/NOPE99/"), client.post("/j/NOPE99/", {"display_name": "a"})):
        assert response.status_code == 404
        assert b"There is no room with the code" in response.content
    assert not Student.objects.exists()


def test_it_refuses_students_in_a_sandbox(client):
    sandbox = room_create(title="sandbox")
    for response in (client.get(f"/j/{sandbox.code}/"), join(client, sandbox, "Grace")):
        assert response.status_code == 400
        assert b"only classrooms take students" in response.content
    assert not Student.objects.exists()


def test_it_takes_at_most_250_students_in_a_room(client, room):
    Student.objects.bulk_create(
        Student(room=room, display_name=f"s{i}", session_key=f"key{i}")
        for i in range(MAX_STUDENTS_PER_ROOM)
    )
    response = join(client, room, "one too many")
    assert response.status_code == 400
    assert b"This room is full" in response.content
    assert Student.objects.filter(room=room).count() == MAX_STUDENTS_PER_ROOM == 250


def test_it_escapes_a_display_name_on_the_presenter_view(client, presenter, room):
    join(client, room, "<script>alert(1)</script>")
    for path in ("present/", "present/students/"):
        page = presenter.get(f"/r/{room.code}/{path}").content.decode()
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<script>alert(1)" not in page
    me = client.get(f"/r/{room.code}/me/").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in me
    assert "<script>alert(1)" not in me


def test_it_lists_joined_students_for_the_presenter(client, presenter, room):
    join(client, room, "Grace")
    join(Client(), room, "Linus")
    fragment = presenter.get(f"/r/{room.code}/present/students/", headers=HTMX)
    assert fragment.status_code == 200
    page = fragment.content.decode()
    assert '<span class="student-count">2</span> joined' in page
    assert page.index("Grace") < page.index("Linus")
    assert "<html" not in page


def test_it_shows_the_student_page_only_to_the_session_that_joined(client, room):
    join(client, room, "Grace")
    stranger = Client()
    response = stranger.get(f"/r/{room.code}/me/")
    assert response.status_code == 302
    assert response.headers["Location"] == f"/j/{room.code}/"
    assert b"Grace" not in response.content
    assert b"Grace" in client.get(f"/r/{room.code}/me/").content


def test_it_keeps_a_session_to_its_own_room(client, instructor, room):
    join(client, room, "Grace")
    other_room = classroom_create(owner=instructor, title="Week 4")
    response = client.get(f"/r/{other_room.code}/me/")
    assert response.status_code == 302
    assert join(client, other_room, "Grace").status_code == 302
    assert Student.objects.filter(display_name="Grace").count() == 2
    assert Room.objects.filter(kind=Room.Kind.CLASSROOM).count() == 2


def test_it_sends_a_classroom_code_typed_on_the_home_page_to_the_join_form(client, presenter, room):
    typed = room.code.lower()[:3] + "-" + room.code[3:]
    response = Client().get("/join/", {"code": typed})
    assert response.status_code == 302
    assert response["Location"] == f"/j/{room.code}/"
    # The instructor typing their own code goes to the board.
    assert presenter.get("/join/", {"code": typed})["Location"] == f"/r/{room.code}/"
