"""Screenshots for the README and docs: `make screenshots`.

Starts a real server on a scratch database, fills a room, a classroom and a lesson, and
photographs them at desktop, projector and phone sizes with Debian's Chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.server import manage, serve, server_env

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        env = server_env(SQLITE_PATH=str(Path(scratch) / "shots.sqlite3"))
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        manage("migrate", "--noinput", env=env)
        manage("seed_demo", env=env)
        manage("lessons_load", env=env)
        subprocess.run([sys.executable, "-c", FILL_ROOM], cwd=ROOT, env=env, check=True)
        with serve(env) as url:
            shoot(url)


FILL_ROOM = """
import django; django.setup()
from messaging.models import Room
from messaging.services.clock import room_clock_set
room = Room.objects.get(code="KAFKA7")
room_clock_set(room=room, running=True, speed=5)

from django.contrib.auth import get_user_model
from messaging.services.classroom import classroom_create
from messaging.services.topics import topic_create
from messaging.services.groups import group_create
owner = get_user_model().objects.create_user("ada", password="screenshots only")
classroom = classroom_create(owner=owner, title="Kafka, week 3")
classroom.code = "WEEK3K"
classroom.save(update_fields=["code"])
topic_create(room=classroom, name="payments", partitions=4)
group_create(room=classroom, group_id="fraud-check", topics=["payments"],
             auto_offset_reset="earliest")
from messaging.services.records import RecordIn, records_produce
records_produce(room=classroom, topic_name="payments", producer="checkout", records=[
    RecordIn(key=k, value=f"{k} paid {amount} EUR")
    for k, amount in [("erin", 84), ("alice", 56), ("bob", 12), ("carol", 230),
                      ("dave", 19), ("alice", 74), ("frank", 310), ("bob", 45)]
])
"""

STUDENTS = ["Grace Hopper", "Linus", "Barbara Liskov"]


def shoot(url: str) -> None:
    from playwright.sync_api import sync_playwright

    executable = os.getenv("CHROMIUM", "/usr/bin/chromium")
    board = url + "/r/KAFKA7/"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        # A watched room runs: let it play a few simulated minutes, then photograph it.
        desktop = browser.new_page(viewport={"width": 1440, "height": 900})
        desktop.goto(board)
        desktop.wait_for_selector("#live-status[data-state=live]")
        time.sleep(6)
        desktop.locator('.member[data-member="billing-1"] button[value=crash]').click()
        time.sleep(4)
        desktop.screenshot(path=str(OUT / "board-desktop.png"))
        presenter = browser.new_page(viewport={"width": 1920, "height": 1080})
        presenter.goto(board + "?present=1")
        presenter.wait_for_selector("#live-status[data-state=live]")
        time.sleep(3)
        presenter.screenshot(path=str(OUT / "board-presenter.png"))
        phone = browser.new_page(
            viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
        )
        phone.goto(board)
        phone.wait_for_selector("#live-status[data-state=live]")
        time.sleep(2)
        phone.screenshot(path=str(OUT / "board-phone.png"))
        home = browser.new_page(viewport={"width": 1280, "height": 720})
        home.goto(url + "/")
        home.screenshot(path=str(OUT / "home.png"))
        shoot_classroom(browser, url)
        shoot_lessons(browser, url)
        browser.close()
    print(f"screenshots written to {OUT.relative_to(ROOT)}/")


def student_joins(browser, url: str, name: str, group: str):
    page = browser.new_page(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    page.goto(url + "/j/WEEK3K/")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join").click()
    page.wait_for_url("**/r/WEEK3K/me/")
    page.wait_for_selector("#live-status[data-state=live]")
    page.get_by_role("button", name=f"Join {group}", exact=True).click()
    page.wait_for_selector(".act-process")
    return page


def shoot_classroom(browser, url: str) -> None:
    # The projector: 1920x1080, as a lecture hall's projector shows it.
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    teacher = context.new_page()
    teacher.goto(url + "/accounts/login/")
    teacher.get_by_label("Username").fill("ada")
    teacher.get_by_label("Password").fill("screenshots only")
    teacher.get_by_role("button", name="Log in").click()
    teacher.goto(url + "/r/WEEK3K/present/")
    join = browser.new_page(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    join.goto(url + "/j/WEEK3K/")
    join.screenshot(path=str(OUT / "classroom-join-phone.png"))
    join.close()
    students = [student_joins(browser, url, name, "fraud-check") for name in STUDENTS]
    me = students[0]
    me.get_by_role("button", name="Process next record").click()
    time.sleep(1)
    me.screenshot(path=str(OUT / "classroom-student-phone.png"))  # what the phone shows
    students[1].close()  # a closed page: the roster counts down to its session timeout
    time.sleep(3)

    # The instructor's own phone, before the class's lesson starts.
    pocket = browser.new_context(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    pocket.add_cookies(context.cookies())
    phone = pocket.new_page()
    phone.goto(url + "/r/WEEK3K/present/")
    phone.wait_for_load_state("networkidle")
    # The class has joined: the instructor folds the join card away (this browser remembers).
    phone.locator("#join-card summary").click()
    time.sleep(0.5)
    phone.screenshot(path=str(OUT / "classroom-presenter-phone.png"))
    pocket.close()

    # A lesson for the whole class, at its first question: the votes come in beside the roster.
    teacher.reload()
    present = teacher.locator("#lesson-present")
    present.get_by_label("Lesson").select_option("consumer-groups")
    present.get_by_role("button", name="Run it").click()
    present.locator(".moment-intro").wait_for()
    for _ in range(12):
        if teacher.locator("#lesson-present .moment-predict").count():
            break
        teacher.locator("#lesson-next").click()
        time.sleep(1)
    for student, choice in zip([students[0], students[2]], [0, 1], strict=True):
        student.wait_for_url("**/lesson/")
        student.locator("#lesson-follow .choice-btn").nth(choice).click()
        student.locator("#lesson-follow .mine-note").wait_for()
    teacher.locator("#lesson-present .tally-total").filter(has_text="2 answers").wait_for()
    # The lesson's start dropped the students' consumers: the instructor puts them back in.
    enlist = teacher.locator("#controls .enlist")
    enlist.get_by_label("Everyone not consuming joins").select_option("billing")
    enlist.get_by_role("button", name="Put them in").click()
    teacher.locator("#students .roster-group").first.wait_for()
    teacher.locator("#students .tp-chip").first.wait_for()
    time.sleep(1)
    teacher.evaluate("window.scrollTo(0, 0)")  # the form's button kept the focus, lower down
    teacher.screenshot(path=str(OUT / "classroom-presenter.png"))
    context.close()


def shoot_lessons(browser, url: str) -> None:
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(url + "/lessons/")
    page.screenshot(path=str(OUT / "lessons-list.png"))
    page.goto(url + "/lessons/consumer-groups/")
    page.wait_for_selector("#live-status[data-state=live]")
    time.sleep(1)
    page.screenshot(path=str(OUT / "lesson-desktop.png"))
    phone = browser.new_page(
        viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True
    )
    phone.goto(url + "/lessons/sqs-fifo/")
    time.sleep(2)
    phone.screenshot(path=str(OUT / "lesson-phone.png"))


if __name__ == "__main__":
    main()
