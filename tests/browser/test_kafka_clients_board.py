"""Real Kafka clients on the board (issue #14), in real Chromium against a real `manage.py serve`
with its Kafka listener.

The board's "Connect your own code" panel gives each person the Kafka login they may use: a
sandbox's to anyone, a classroom's to its instructor, a student their own, a visitor none. Its
examples run as printed: the kafka-python consumer's member appears on the board labelled as a
real client with its software and client.id (no crash or speed buttons: LogLab cannot crash
someone's process), the producers' keyed records land in the partitions Java's partitioner
picks, and the narration says the client's own partitioner chose them.

Screenshots: with LOGLAB_SCREENSHOTS=<folder> the board and the panel are saved there at
1920x1080 (presenter mode), 1440x900 and 390x844 (docs/screenshots/kafka-client-board.png and
connect-kafka.png are picked from them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import Page, expect

from messaging.engine.partitioner import partition_for_key
from messaging.services.classroom import classroom_create, student_join
from messaging.services.seeds import sandbox_create
from tests.support.kafka_server import KafkaRoom, KafkaServer, kafka_serve, python_env, room_create

pytestmark = [pytest.mark.browser]

KAFKA_PYTHON = "kafka-python 3.0.12"
SHOTS = os.getenv("LOGLAB_SCREENSHOTS", "")
VIEWPORTS = {
    "presenter": {"width": 1920, "height": 1080},
    "desktop": {"width": 1440, "height": 900},
    "phone": {"width": 390, "height": 844},
}


# --- who sees which login (rendered by Django's test client, no browser) ---------------------


def login_shown(client: Client, code: str) -> dict[str, str]:
    page = client.get(f"/r/{code}/").content.decode()
    start = page.index('id="connect"')
    panel = page[start : page.index("</details>\n", page.index('id="connect-kafka-title"'))]
    found = {}
    for field in ("bootstrap", "username", "password"):
        marker = f'data-kafka="{field}">'
        if marker in panel:
            at = panel.index(marker) + len(marker)
            found[field] = panel[at : panel.index("<", at)]
    return found


@pytest.mark.django_db
def test_it_shows_a_sandbox_its_rooms_login_and_says_when_the_listener_is_off(settings):
    settings.LOGLAB_KAFKA_PORT = 19092
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "192.168.1.20"]
    room = sandbox_create(title="open")
    client = Client(HTTP_HOST="192.168.1.20:8000")
    assert login_shown(client, room.code) == {
        "bootstrap": "192.168.1.20:19092",
        "username": room.code,
        "password": room.client_secret,
    }
    settings.LOGLAB_KAFKA_PORT = 0
    page = client.get(f"/r/{room.code}/").content.decode()
    assert "runs without its Kafka listener" in page
    assert room.client_secret not in page


@pytest.mark.django_db
def test_in_a_classroom_the_instructor_sees_the_rooms_login_a_student_theirs_a_visitor_none(
    settings,
):
    settings.LOGLAB_KAFKA_PORT = 9092
    owner = get_user_model().objects.create_user("ada", password="a-long-classroom-password")
    room = classroom_create(owner=owner, title="class")
    instructor = Client()
    instructor.force_login(owner)
    assert login_shown(instructor, room.code) == {
        "bootstrap": "testserver:9092",
        "username": room.code,
        "password": room.client_secret,
    }
    # On the projector the room's login, which passes every lock, is not shown.
    projected = instructor.get(f"/r/{room.code}/?present=1").content.decode()
    assert room.client_secret not in projected and "testserver:9092" in projected
    # The presenter page keeps it folded, for the instructor's own code.
    present = instructor.get(f"/r/{room.code}/present/").content.decode()
    assert 'id="present-kafka"' in present and room.client_secret in present

    student_client = Client()
    session = student_client.session
    session["joined"] = True
    session.save()
    student, _ = student_join(room=room, display_name="Grace", session_key=session.session_key)
    shown = login_shown(student_client, room.code)
    assert shown == {
        "bootstrap": "testserver:9092",
        "username": f"{room.code}.{student.pk}",
        "password": student.client_secret,
    }
    board = student_client.get(f"/r/{room.code}/").content.decode()
    assert room.client_secret not in board
    assert "your own code cannot connect right now" in board  # `clients` is locked at first
    me = student_client.get(f"/r/{room.code}/me/").content.decode()
    assert "Use your own Kafka client" in me
    assert f"-X sasl.username={room.code}.{student.pk}" in me and student.client_secret in me
    assert room.client_secret not in me

    visitor = Client().get(f"/r/{room.code}/").content.decode()
    assert "Join this classroom with your name first" in visitor
    assert room.client_secret not in visitor and student.client_secret not in visitor


# --- real clients against a real server, in Chromium -------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    with kafka_serve(tmp_path_factory.mktemp("kafka-board")) as server:
        yield server


@pytest.fixture
def open_page(chromium) -> Iterator:
    contexts = []

    def make(url: str, viewport: str = "desktop") -> Page:
        options: dict = {"viewport": VIEWPORTS[viewport]}
        if viewport == "phone":
            options.update(is_mobile=True, has_touch=True, device_scale_factor=2)
        context = chromium.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(url)
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def room(server: KafkaServer) -> KafkaRoom:
    return room_create(server, title="Your own code")


class Running:
    """A client script in a process of its own, its output in a file; stopped with Ctrl-C
    (SIGINT), as a learner stops it, so its `finally: consumer.close()` runs."""

    def __init__(self, code: str, out: Path, *, args: list[str] | None = None) -> None:
        self.out = out
        with out.open("wb") as sink:
            self.process = subprocess.Popen(
                args or [sys.executable, "-c", code],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=python_env(),
            )

    def output(self) -> str:
        return self.out.read_text(errors="replace")

    def interrupt(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            raise AssertionError(f"the client did not stop on Ctrl-C:\n{self.output()}") from None


def until(page: Page, script: str, *, timeout: float = 30, what: str = "") -> object:
    """Poll `script` (a function expression) with page.evaluate until it returns something
    truthy: the CSP forbids the eval behind wait_for_function's string form."""
    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(script)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or script}")
        page.wait_for_timeout(200)


def example(page: Page, name: str) -> str:
    return page.locator(f'[data-example="{name}"]').text_content()


def run_to_end(code: str, *, args: list[str] | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(
        args or [sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        env=python_env(),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout + done.stderr


def keys_drawn(keys: list[str]) -> str:
    """A script: true once every key has a cell on the board."""
    return (
        f"() => {json.dumps(keys)}.every(k => document.querySelector(`.cell[data-key='${{k}}']`))"
    )


def cells_of(page: Page, keys: list[str]) -> dict[str, int]:
    """The partition each key's cell is drawn in, for the keys drawn so far."""
    return page.evaluate(
        """keys => Object.fromEntries([...document.querySelectorAll('.cell[data-key]')]
              .filter(c => keys.includes(c.dataset.key))
              .map(c => [c.dataset.key, Number(c.dataset.partition)]))""",
        keys,
    )


def client_member(page: Page, group: str) -> dict | None:
    return page.evaluate(
        """group => {
          const m = document.querySelector(`.member[data-kind="client"][data-group="${group}"]`);
          if (!m) return null;
          return {text: m.innerText, assigned: m.dataset.assigned,
                  buttons: m.querySelectorAll('button').length,
                  badge: m.querySelector('.kind-badge')?.textContent,
                  software: m.querySelector('.software')?.textContent,
                  clientId: m.querySelector('.client-id')?.textContent};
        }""",
        group,
    )


def shoot(page: Page, name: str) -> None:
    if not SHOTS:
        return
    folder = Path(SHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.wait_for_timeout(700)  # the last animation frames land
    page.screenshot(path=str(folder / f"{name}.png"))


def shoot_connect(page: Page, name: str) -> None:
    """The open panel's Kafka part: its title, the login and the first examples."""
    if not SHOTS:
        return
    panel = page.locator("#connect").bounding_box()
    kafka = page.locator("#connect .connect-kafka").bounding_box()
    scroll = page.evaluate("() => ({x: window.scrollX, y: window.scrollY})")
    clip = {
        "x": panel["x"] + scroll["x"],
        "y": panel["y"] + scroll["y"],
        "width": panel["width"],
        "height": kafka["y"] + kafka["height"] - panel["y"] + 6,
    }
    page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), clip=clip, full_page=True)


# How far the page scrolls sideways, and the chain of elements that takes it away when hidden.
OVERFLOW = """() => {
  const doc = document.documentElement;
  const over = Math.max(doc.scrollWidth, document.body.scrollWidth) - doc.clientWidth;
  if (over <= 0) return "";
  const chain = [];
  let parent = document.body;
  while (parent && chain.length < 12) {
    const culprit = [...parent.children].find((child) => {
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
  return `${over} px: ${chain.join(" > ")}`;
}"""


def sideways(page: Page, *, settle: float = 3.0) -> str:
    """Empty when the page fits its width, else by how much and why. The phone's board once in
    a while overflowed by 2 px for a moment while records arrived (likely one still animating
    into its cell): only an overflow still there after `settle` seconds counts."""
    deadline = time.monotonic() + settle
    while True:
        over = page.evaluate(OVERFLOW)
        if not over or time.monotonic() > deadline:
            return over
        page.wait_for_timeout(100)


def test_a_real_consumer_appears_on_the_board_as_a_real_client_and_its_records_land(
    open_page, room: KafkaRoom, tmp_path: Path
):
    board_url = room.answer["board_url"]
    page = open_page(board_url)
    page.locator("#connect > summary").click()
    login = page.locator(".connect-kafka .kafka-login")
    expect(login.locator('[data-kafka="bootstrap"]')).to_have_text(room.bootstrap)
    expect(login.locator('[data-kafka="username"]')).to_have_text(room.username)
    expect(login.locator('[data-kafka="password"]')).to_have_text(room.password)

    # The panel's consumer, as printed: it joins my-app and runs until Ctrl-C.
    mine = Running(example(page, "kafka-python-consumer"), tmp_path / "consumer.log")
    # And a colleague's, in the group the simulated consumers are in: a mixed group.
    mixed = Running(
        "from kafka import KafkaConsumer\n"
        f"consumer = KafkaConsumer('orders', **{room.kafka_python()!r}, group_id='billing',"
        " client_id='ada-laptop')\n"
        "try:\n    for record in consumer: pass\nfinally:\n    consumer.close()\n",
        tmp_path / "mixed.log",
    )
    try:
        # A new group's first join waits group.initial.rebalance.delay.ms (3 s): the board
        # says what the group is waiting for.
        card = page.locator('.group[data-group="my-app"]')
        until(
            page,
            """() => document.querySelector('.group[data-group="my-app"] .badge.state')
                ?.textContent === 'PreparingRebalance'""",
            what=f"my-app in its join phase:\n{mine.output()}",
        )
        expect(card.locator(".state-note:visible")).to_have_text(
            "join phase: waiting for members to rejoin"
        )
        page.evaluate(
            """() => document.querySelector('.group[data-group="my-app"]')
                ?.scrollIntoView({block: 'center'})"""
        )
        shoot(page, "board-desktop-joining")
        until(
            page,
            """() => {
              const m = document.querySelector('.member[data-kind="client"][data-group="my-app"]');
              return m && m.dataset.assigned === "orders-0 orders-1 orders-2";
            }""",
            what=f"my-app's real client to own every partition:\n{mine.output()}",
        )
        member = client_member(page, "my-app")
        assert member["badge"] == "real client"
        assert member["software"] == KAFKA_PYTHON
        assert member["clientId"] == "my-laptop"
        assert "heartbeats, fetches and commits on its own" in member["text"]
        assert member["buttons"] == 0, "no crash or speed buttons for someone's own process"
        expect(page.locator('.group[data-group="my-app"] .badge.state')).to_have_text("Stable")

        until(
            page,
            """() => {
              const m = document.querySelector('.member[data-kind="client"][data-group="billing"]');
              return m && m.dataset.assigned !== ""
                && document.querySelectorAll('.group[data-group="billing"] .member').length === 3;
            }""",
            what=f"billing's real client beside the simulated ones:\n{mixed.output()}",
        )
        billing = client_member(page, "billing")
        assert billing["clientId"] == "ada-laptop" and billing["software"] == KAFKA_PYTHON
        simulated = page.locator('.group[data-group="billing"] .member[data-kind="simulated"]')
        expect(simulated).to_have_count(2)
        expect(simulated.first.locator("button[value=crash]")).to_have_count(1)

        # The projector and a phone watch too, from before the records arrive.
        others = {
            viewport: open_page(
                board_url + ("?present=1" if viewport == "presenter" else ""), viewport
            )
            for viewport in ("presenter", "phone")
        }

        # The panel's producer, as printed: Java's partitioner (kafka-python's default).
        run_to_end(example(page, "kafka-python-producer"))
        keys = [f"user-{i}" for i in range(5)]
        expected = {k: partition_for_key(k.encode(), 3) for k in keys}
        until(
            page,
            keys_drawn(keys),
            what="the producer's records on the board",
        )
        assert cells_of(page, keys) == expected
        narration = page.locator("#narration").inner_text()
        assert "(a real client)" in narration and "own partitioner chose" in narration, narration
        # The consumer read them.
        deadline = time.monotonic() + 20
        while "order 4" not in mine.output() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "order 4" in mine.output(), mine.output()

        assert not (over := sideways(page)), f"desktop: the open panel scrolls sideways, {over}"
        shoot(page, "board-desktop-connect")
        shoot_connect(page, "connect-desktop")
        page.locator("#connect > summary").click()
        page.evaluate("() => window.scrollTo(0, 0)")
        shoot(page, "board-desktop")
        for viewport, other in others.items():
            until(other, keys_drawn(keys), what=f"{viewport}: the records")
            told = other.locator("#narration").inner_text()
            assert "(a real client)" in told, f"{viewport}: {told}"
            assert not (over := sideways(other)), f"{viewport}: the page scrolls sideways, {over}"
            shoot(other, f"board-{viewport}")
            if viewport == "phone":
                other.locator('.group[data-group="my-app"]').scroll_into_view_if_needed()
                shoot(other, "board-phone-groups")
            other.locator("#connect > summary").click()
            over = sideways(other)
            assert not over, f"{viewport}: the open panel scrolls sideways, {over}"
            other.locator("#connect").scroll_into_view_if_needed()
            shoot(other, f"board-{viewport}-connect")
            shoot_connect(other, f"connect-{viewport}")
    finally:
        # Ctrl-C: close() leaves the group at once.
        assert mine.interrupt() in (0, 1, -signal.SIGINT, 130), mine.output()
        mixed.interrupt()
    until(
        page,
        '() => !document.querySelector(\'.member[data-kind="client"][data-group="my-app"]\')',
        what="my-app's member to leave on close()",
    )


def test_the_confluent_kafka_and_kcat_examples_put_keys_where_java_does(
    open_page, room: KafkaRoom, tmp_path: Path
):
    page = open_page(room.answer["board_url"])
    consumer = Running(example(page, "confluent-consumer"), tmp_path / "confluent.log")
    try:
        until(
            page,
            """() => {
              const m = document.querySelector('.member[data-kind="client"][data-group="my-app"]');
              return m && m.querySelector('.software').textContent.startsWith('confluent-kafka');
            }""",
            what=f"confluent-kafka's member:\n{consumer.output()}",
        )
        run_to_end(example(page, "confluent-producer"))
        # kcat reads `key:value` lines from its standard input.
        kcat = example(page, "kcat-producer")
        run_to_end("", args=["bash", "-c", kcat], stdin="kcat-1:one\nkcat-2:two\nkcat-3:three\n")
        keys = [f"user-{i}" for i in range(5)] + ["kcat-1", "kcat-2", "kcat-3"]
        expected = {k: partition_for_key(k.encode(), 3) for k in keys}
        until(
            page,
            keys_drawn(keys),
            what="every key's cell",
        )
        assert cells_of(page, keys) == expected
    finally:
        consumer.interrupt()
    # kcat's printed consumer joins too: in a group of its own, the software librdkafka names.
    kcat_consumer = Running(
        "", tmp_path / "kcat.log", args=["bash", "-c", example(page, "kcat-consumer")]
    )
    try:
        until(
            page,
            """() => [...document.querySelectorAll('.member[data-kind="client"]')]
                .some(m => m.dataset.group === 'my-app' && m.dataset.assigned !== '')""",
            what=f"kcat's member:\n{kcat_consumer.output()}",
        )
    finally:
        kcat_consumer.interrupt()


@pytest.mark.django_db(transaction=True)
def test_a_students_page_folds_their_own_login_and_fits_a_phone(chromium, live_url):
    owner = get_user_model().objects.create_user("ada", password="a-long-classroom-password")
    room = classroom_create(owner=owner, title="Kafka, week 3")
    client = Client()
    session = client.session
    session["joined"] = True
    session.save()
    student, _ = student_join(room=room, display_name="Grace", session_key=session.session_key)
    # The test database's server (conftest.live_url): this test's classroom is in it.
    context = chromium.new_context(
        viewport=VIEWPORTS["phone"], is_mobile=True, has_touch=True, device_scale_factor=2
    )
    context.add_cookies([{"name": "sessionid", "value": session.session_key, "url": live_url}])
    page = context.new_page()
    page.goto(f"{live_url}/r/{room.code}/me/")
    fold = page.locator("#me-kafka")
    expect(fold).not_to_have_attribute("open", "")
    fold.locator("summary").click()
    expect(fold.locator('[data-kafka="username"]')).to_have_text(f"{room.code}.{student.pk}")
    expect(fold.locator('[data-kafka="password"]')).to_have_text(student.client_secret)
    expect(fold.locator(".lock-note")).to_be_visible()  # `clients` is locked at first
    kcat = fold.locator('[data-example="me-kcat"]').text_content()
    assert f"-X sasl.username={room.code}.{student.pk} " in kcat
    assert not (over := sideways(page)), over
    if SHOTS:
        fold.scroll_into_view_if_needed()
        fold.screenshot(path=str(Path(SHOTS) / "student-kafka-phone.png"))
    context.close()
