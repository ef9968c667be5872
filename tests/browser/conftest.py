from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.server import serve, server_env

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def live_url(django_db_setup, django_db_blocker) -> Iterator[str]:
    """A real Daphne serving the test database, so the browser sees what the test wrote."""
    from django.db import connection

    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        env = server_env(SQLITE_PATH=str(settings_dict["NAME"]))
        env.pop("DATABASE_URL", None)
    else:
        user = settings_dict["USER"]
        host, port = settings_dict["HOST"] or "127.0.0.1", settings_dict["PORT"] or 5432
        env = server_env(DATABASE_URL=f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}")
    env.pop("REDIS_URL", None)
    with serve(env) as url:
        yield url


@pytest.fixture(scope="module")
def browser(chromium, live_url):
    """Chromium for one test module, with the module's live server up."""
    return chromium


@pytest.fixture(scope="module")
def chromium(chromium_path):
    """Chromium for one test module.

    Playwright's sync API keeps an asyncio loop running in this thread while it is open, which
    makes Django refuse database calls from the test ("async context") and would break async
    tests elsewhere: so it lives only as long as a browser module, with Django's check relaxed
    for that time (the test's own database calls are plain synchronous ones).
    """
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(browser):
    contexts = []

    def make(**options):
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield make
    for context in contexts:
        context.close()
