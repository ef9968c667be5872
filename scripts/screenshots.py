"""Screenshots of the board for the README and docs: `make screenshots`.

Starts a real server on a scratch database, fills a room, and photographs it at desktop and
phone sizes with Debian's Chromium.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "screenshots"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.server import daphne, manage, server_env

    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        env = server_env(SQLITE_PATH=str(Path(scratch) / "shots.sqlite3"))
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        manage("migrate", "--noinput", env=env)
        manage("seed_demo", env=env)
        subprocess.run(
            [sys.executable, "-c", FILL_ROOM], cwd=ROOT, env=env, check=True
        )
        with daphne(env) as url:
            shoot(url)


FILL_ROOM = """
import django; django.setup()
from messaging.models import Room
from messaging.services import RecordIn, records_produce
room = Room.objects.get(code="KAFKA7")
keys = ["alice", "bob", "carol", "dave", "erin", None, "alice", "bob", "frank", "carol"]
records_produce(room=room, topic_name="orders", producer="checkout-svc",
                records=[RecordIn(key=k, value=f"event {i}") for i, k in enumerate(keys * 2)])
"""


def shoot(url: str) -> None:
    from playwright.sync_api import sync_playwright

    executable = os.getenv("CHROMIUM", "/usr/bin/chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        sizes = {
            "board-desktop.png": {"viewport": {"width": 1440, "height": 860}},
            "board-phone.png": {
                "viewport": {"width": 390, "height": 844},
                "device_scale_factor": 2,
                "is_mobile": True,
            },
        }
        for name, options in sizes.items():
            page = browser.new_page(**options)
            page.goto(url + "/r/KAFKA7/")
            page.wait_for_selector("#live-status[data-state=live]")
            page.screenshot(path=str(OUT / name))
            page.close()
        page = browser.new_page(viewport={"width": 1280, "height": 720})
        page.goto(url + "/")
        page.screenshot(path=str(OUT / "home.png"))
        browser.close()
    print(f"screenshots written to {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
