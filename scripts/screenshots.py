"""Screenshots of the board for the README and docs: `make screenshots`.

Starts a real server on a scratch database, fills a room, and photographs it at desktop and
phone sizes with Debian's Chromium.
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
        subprocess.run(
            [sys.executable, "-c", FILL_ROOM], cwd=ROOT, env=env, check=True
        )
        with serve(env) as url:
            shoot(url)


FILL_ROOM = """
import django; django.setup()
from messaging.models import Room
from messaging.services.clock import room_clock_set
room = Room.objects.get(code="KAFKA7")
room_clock_set(room=room, running=True, speed=5)
"""


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
        browser.close()
    print(f"screenshots written to {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
