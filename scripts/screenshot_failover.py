"""The README's failover screenshot (#16): `python scripts/screenshot_failover.py`.

A room of three brokers with a topic of six partitions (replication.factor 3,
min.insync.replicas 2), an autoplay producer and a consumer group; broker 1 is stopped while
the clock runs, and the board is photographed on the projector (1920x1080, presenter mode)
once the controller has moved its leaders. Same scratch-server recipe as screenshots.py.
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

FILL = """
import django; django.setup()
from messaging.services.clock import room_clock_set
from messaging.services.groups import group_create, member_join
from messaging.services.records import RecordIn, records_produce
from messaging.services.replication import cluster_create
from messaging.services.rooms import room_create
from messaging.services.simulation import producer_create
from messaging.services.topics import topic_create
room = room_create(title="Failover")
room.code = "FAILOV"
room.save(update_fields=["code"])
cluster_create(room=room, brokers=3)
topic_create(room=room, name="payments", partitions=6, replication_factor=3,
             min_insync_replicas=2)
producer_create(room=room, name="checkout-svc", topic_name="payments", key_mode="set",
                keys=["alice", "bob", "carol", "dave", "erin", "frank"], records_per_second=3)
group = group_create(room=room, group_id="fraud-check", topics=["payments"],
                     auto_offset_reset="earliest")
member_join(group=group, client_id="fraud")
records_produce(room=room, topic_name="payments", producer="checkout-svc", acks=1, records=[
    RecordIn(key=k, value=f"{k} paid") for k in ["alice", "bob", "carol", "dave", "erin"]
])
room_clock_set(room=room, running=True, speed=2)
"""


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.server import manage, serve, server_env

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        env = server_env(SQLITE_PATH=str(Path(scratch) / "failover.sqlite3"))
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        manage("migrate", "--noinput", env=env)
        subprocess.run([sys.executable, "-c", FILL], cwd=ROOT, env=env, check=True)
        with serve(env) as url:
            shoot(url)


def shoot(url: str) -> None:
    from playwright.sync_api import sync_playwright

    executable = os.getenv("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1920, "height": 1080})
        page.goto(url + "/r/FAILOV/?present=1")
        page.wait_for_selector("#live-status[data-state=live]")
        time.sleep(4)
        # Pause, produce with acks=1 so that the leaders hold records their followers have
        # not fetched, then stop broker 1: the ledger names what its partitions lose.
        page.locator("#play-pause").click()
        time.sleep(1)
        # Presenter mode hides the forms: an instructor's second window produces.
        desk = browser.new_page(viewport={"width": 1440, "height": 900})
        desk.goto(url + "/r/FAILOV/")
        form = desk.locator("form.produce-form")
        form.locator("input[name=key]").fill("alice")
        form.locator("input[name=value]").fill("refund #77")
        form.locator("input[name=partition]").fill("0")
        form.locator("select[name=acks]").select_option("1")
        form.locator("button[type=submit]").click()
        desk.wait_for_selector("#produce-result .form-result")
        page.locator('#brokers .broker[data-broker="1"] button[value=stop]').click()
        page.wait_for_selector('#brokers .broker[data-broker="1"].is-stopped')
        page.locator("#play-pause").click()
        time.sleep(3)
        page.locator("#brokers").scroll_into_view_if_needed()
        page.screenshot(path=str(OUT / "failover-presenter.png"))
        browser.close()


if __name__ == "__main__":
    main()
