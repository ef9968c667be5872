"""The projector's bar, in real Chromium (issue #12).

At 1920x1080 in presenter mode every number and key the board teaches (each marked
`data-teach` in the templates, so a new one cannot be missed) is drawn at 20 px or more; the
presenter page has the roster and the lesson beside a smaller join card that folds, and stays
folded; and no page scrolls sideways at 390, 768, 1440 or 1920 px when names, keys, topics
and group ids are as long as LogLab lets them be.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from playwright.sync_api import expect

from messaging.models import Lesson
from messaging.services.classic import classic_queue_declare
from messaging.services.classroom import classroom_create, student_join
from messaging.services.groups import group_create, member_join
from messaging.services.lessons import lesson_room_create
from messaging.services.records import RecordIn, records_produce
from messaging.services.simulation import producer_create
from messaging.services.sqs import sqs_queue_create, sqs_send
from messaging.services.topics import topic_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GROUP = ("fraud-detection-and-chargeback-scoring-service-eu-west-1-v2")[:60].ljust(60, "x")
TOPIC = "payments.eu-west-1.checkout-service.card-authorisations.v2." + "t" * 60
KEY = "customer-0123456789-" + "k" * 100
CLIENT_ID = "scoring-worker-" + "w" * 49
PRODUCER = "checkout-service-" + "p" * 23
STUDENT = "Maximiliana-Wolfeschlegelsteinhausenberg"
TITLE = "Kafka, week 3: consumer groups, rebalancing and exactly-once semantics, for real"
QUEUE = "q" * 75 + ".fifo"
WIDTHS = [390, 768, 1440, 1920]
# The elements a board draws its numbers and keys in: each must carry the data-teach hook.
TEACHING = (
    ".cell-offset, .cell-key, .log-start, .leo b, .lag b, .key-chip, .tp-chip, .generation, "
    ".member-rate, .d-current, .d-leo, .d-lag, .ledger-totals b, .partition-label"
)


def long_names(room) -> None:
    """Everything a room shows a name, key or id in, as long as LogLab accepts it."""
    topic_create(room=room, name=TOPIC, partitions=3)
    group_create(room=room, group_id=GROUP, topics=[TOPIC], auto_offset_reset="earliest")
    records_produce(
        room=room,
        topic_name=TOPIC,
        records=[RecordIn(key=k, value=f"{k} paid") for k in [KEY, "alice", KEY, "bob"] * 3],
    )
    producer_create(
        room=room,
        name=PRODUCER,
        topic_name=TOPIC,
        key_mode="set",
        keys=[KEY, "alexandrina"],
        records_per_second=1,
    )
    from messaging.models import ConsumerGroup

    member_join(group=ConsumerGroup.objects.get(room=room, group_id=GROUP), client_id=CLIENT_ID)


@pytest.fixture
def owner():
    return get_user_model().objects.create_user("ada", password="a-long-classroom-password")


@pytest.fixture
def room(owner):
    room = classroom_create(owner=owner, title=TITLE)
    long_names(room)
    queue = sqs_queue_create(room=room, name=QUEUE, attributes={"FifoQueue": "true"})
    for group in ["m" * 128, "alice"]:
        sqs_send(queue=queue, body="x" * 200, message_group_id=group, deduplication_id=group)
    classic_queue_declare(room=room, name="c" * 120)
    return room


def logged_in(new_page, live_url, user, **options):
    client = Client()
    client.force_login(user)
    page = new_page(**options)
    cookie = {"name": "sessionid", "value": client.cookies["sessionid"].value}
    page.context.add_cookies([{**cookie, "domain": urlsplit(live_url).hostname, "path": "/"}])
    return page


def student_in_group(new_page, live_url, room):
    """A student with the longest name, consuming in the longest group, on their phone."""
    client = Client()
    session = client.session
    session["joined"] = True
    session.save()
    student_join(room=room, display_name=STUDENT, session_key=session.session_key)
    page = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    cookie = {"name": "sessionid", "value": session.session_key}
    page.context.add_cookies([{**cookie, "domain": urlsplit(live_url).hostname, "path": "/"}])
    page.goto(f"{live_url}/r/{room.code}/me/")
    page.locator(f'.join-groups button[data-group="{GROUP}"]').click()
    expect(page.locator(".me-title")).to_contain_text(GROUP)
    return page


def live(page) -> None:
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def teaching_sizes(page) -> list[dict]:
    return page.locator("[data-teach]").evaluate_all(
        """els => els.filter(el => el.getClientRects().length > 0).map(el => ({
            kind: el.dataset.teach, text: el.textContent.trim().slice(0, 24),
            px: parseFloat(getComputedStyle(el).fontSize)}))"""
    )


def sideways(page) -> dict:
    """How far the page scrolls sideways, in px, and (to say why) the chain of elements that
    takes it away when hidden; empty when the page fits its width."""
    return page.evaluate(
        """() => {
          const doc = document.documentElement;
          const over = Math.max(doc.scrollWidth, document.body.scrollWidth) - doc.clientWidth;
          if (over <= 0) return {};
          const chain = [];
          let parent = document.body;
          while (parent && chain.length < 12) {
            const culprit = [...parent.children].find(child => {
              const display = child.style.display;
              child.style.display = "none";
              const fits = doc.scrollWidth <= doc.clientWidth;
              child.style.display = display;
              return fits;
            });
            if (!culprit) break;
            chain.push(`${culprit.tagName.toLowerCase()}.${culprit.className}`);
            parent = culprit;
          }
          return {px: over, culprit: chain.join(" > ")};
        }"""
    )


def test_every_number_and_key_the_board_teaches_is_at_least_20px_on_a_projector(
    new_page, live_url, room, owner
):
    page = new_page(viewport={"width": 1920, "height": 1080})
    page.goto(f"{live_url}/r/{room.code}/?present=1")
    live(page)
    # A record that arrives live is drawn from the page's own template: it is measured too.
    laptop = logged_in(new_page, live_url, owner, viewport={"width": 1440, "height": 900})
    laptop.goto(f"{live_url}/r/{room.code}/")
    live(laptop)
    form = laptop.locator(".produce-form")
    form.locator("select[name=topic]").select_option("orders")
    form.locator("input[name=key]").fill("zoe")
    form.get_by_role("button", name="Produce").click()
    expect(page.locator('.cell[data-key="zoe"] .cell-key')).to_have_text("zoe")

    unmarked = page.locator(TEACHING).evaluate_all(
        "els => els.filter(el => !el.hasAttribute('data-teach')).map(el => el.outerHTML)"
    )
    assert unmarked == [], "a number or key the board teaches has no data-teach hook"
    sizes = teaching_sizes(page)
    kinds = {size["kind"] for size in sizes}
    assert {"offset", "key", "lag", "rate", "partition", "count"} <= kinds, kinds
    assert len(sizes) > 60
    small = [size for size in sizes if size["px"] < 20]
    assert small == [], small
    # And a number someone adds later without the hook: every figure drawn on the board.
    figures = page.locator("#board *").evaluate_all(
        """els => els.filter(el => el.getClientRects().length > 0
              && [...el.childNodes].some(n => n.nodeType === 3
                  && /^\\s*[0-9][0-9.,]*\\s*$/.test(n.textContent))
              && parseFloat(getComputedStyle(el).fontSize) < 20)
            .map(el => `${el.tagName.toLowerCase()}.${el.className}: ${el.textContent.trim()}`
              .slice(0, 80))"""
    )
    assert figures == [], figures
    assert sideways(page) == {}


def test_the_presenter_page_shows_roster_and_lesson_beside_a_join_card_that_stays_folded(
    new_page, live_url, room, owner
):
    student_in_group(new_page, live_url, room)
    page = logged_in(new_page, live_url, owner, viewport={"width": 1920, "height": 1080})
    page.goto(f"{live_url}/r/{room.code}/present/")
    expect(page.locator("#students .roster-name")).to_have_text(STUDENT)

    join = page.locator("#join-card")
    for first_screen in [join, page.locator("#lesson-present"), page.locator("#students tbody")]:
        box = first_screen.bounding_box()
        assert box is not None and box["y"] + box["height"] <= 1080, first_screen
    join_box, roster_box = join.bounding_box(), page.locator("#students").bounding_box()
    assert join_box["x"] + join_box["width"] <= roster_box["x"]  # beside it, not above it
    assert join_box["width"] < 1920 / 3

    join.locator("summary").click()
    expect(page.locator(".present-code")).to_be_hidden()
    page.reload()
    expect(page.locator("#students .roster-name")).to_have_text(STUDENT)
    expect(page.locator("#join-card")).not_to_have_attribute("open", "")
    expect(page.locator(".present-code")).to_be_hidden()
    expect(page.locator(".present-badge .join-code")).to_have_text(room.code)  # still in view
    page.locator("#join-card summary").click()
    expect(page.locator(".present-code")).to_be_visible()
    page.reload()
    expect(page.locator(".present-code")).to_be_visible()

    # Ready for a Content-Security-Policy without 'unsafe-inline': no inline script or handler.
    inline = page.evaluate(
        """() => [...document.querySelectorAll('script:not([src])')]
            .filter(s => s.type !== 'application/json').length
          + [...document.querySelectorAll('*')].filter(el =>
            [...el.attributes].some(a => a.name.startsWith('on'))).length"""
    )
    assert inline == 0


@pytest.mark.parametrize("width", WIDTHS)
def test_no_page_scrolls_sideways_with_the_longest_names_keys_and_group_ids(
    new_page, live_url, room, owner, width
):
    call_command("lessons_load", verbosity=0)
    lesson = Lesson.objects.get(slug="consumer-groups")
    learner_room = lesson_room_create(lesson=lesson)
    long_names(learner_room)
    phone = student_in_group(new_page, live_url, room)
    phone.set_viewport_size({"width": width, "height": 900})
    page = logged_in(new_page, live_url, owner, viewport={"width": width, "height": 900})

    pages = {
        "board": f"/r/{room.code}/",
        "presenter mode": f"/r/{room.code}/?present=1",
        "presenter page": f"/r/{room.code}/present/",
        "queues": f"/r/{room.code}/queues/",
        "side by side": f"/r/{room.code}/side-by-side/",
        "a learner's lesson": f"/r/{learner_room.code}/lesson/",
        "timeline": f"/r/{room.code}/timeline/",
        "share groups": f"/r/{room.code}/share/",
        "share side by side": f"/r/{room.code}/share/compare/",
        "rebalances three ways": "/rebalances/",
    }
    wide = {}
    for name, path in pages.items():
        page.goto(live_url + path)
        page.wait_for_load_state("networkidle")
        wide[name] = sideways(page)
    phone.reload()
    live(phone)
    wide["student page"] = sideways(phone)

    # The classroom's lesson, on the instructor's lesson board and the student's phone.
    teacher = Client()
    teacher.force_login(owner)
    teacher.post(reverse("lesson_run", args=[room.code]), {"lesson": lesson.slug})
    long_names_again = room.topics.filter(name=TOPIC).exists()
    if not long_names_again:  # the lesson's start replaced the room's topics and groups
        long_names(room)
    page.goto(f"{live_url}/r/{room.code}/lesson/")
    page.wait_for_load_state("networkidle")
    expect(page.locator("#lesson-present .lesson-kicker")).to_be_visible()
    wide["the class's lesson board"] = sideways(page)
    phone.goto(f"{live_url}/r/{room.code}/me/")
    expect(phone.locator("#lesson-follow .lesson-kicker")).to_be_visible()
    wide["student page in a lesson"] = sideways(phone)

    assert {name: over for name, over in wide.items() if over} == {}
