"""The Content-Security-Policy holds on every main page: Chromium reports no violation.

The policy (messaging/infra/csp.py) allows scripts only from LogLab's own files. A page with an
inline script, an inline event handler, an injected <style> (htmx's indicator styles) or a
websocket to somewhere else would show a violation here: through the page's
`securitypolicyviolation` events and Chromium's console, both collected from before the first
byte of each page.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from playwright.sync_api import expect

from messaging.services.classroom import classroom_create
from messaging.services.seeds import sandbox_create

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`
    + ` at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def watched_page(new_page, **options):
    page = new_page(**options)
    page.add_init_script(COLLECT_VIOLATIONS)
    console: list[str] = []
    page.on(
        "console",
        lambda message: (
            console.append(message.text)
            if "Content Security Policy" in message.text or "Refused to" in message.text
            else None
        ),
    )
    page.csp_console = console
    return page


def visit(page, url: str, *, live: bool) -> None:
    response = page.goto(url)
    assert response.status == 200, url
    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy and "unsafe-eval" not in policy, policy
    if live:  # the websocket connected: connect-src let it through
        expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.wait_for_load_state("networkidle")
    assert_no_violation(page, url)


def assert_no_violation(page, url: str) -> None:
    violations = page.evaluate("window.__cspViolations")
    assert violations == [], f"{url}: {violations}"
    assert page.csp_console == [], f"{url}: {page.csp_console}"


def test_no_main_page_breaks_the_content_security_policy(new_page, live_url):
    call_command("lessons_load", verbosity=0)
    room = sandbox_create(title="csp")
    owner = get_user_model().objects.create_user("ada", password="a-long-classroom-password")
    classroom = classroom_create(owner=owner, title="csp class")

    page = watched_page(new_page, viewport={"width": 1400, "height": 900})
    visit(page, f"{live_url}/", live=False)
    visit(page, f"{live_url}/about/", live=False)
    visit(page, f"{live_url}/r/{room.code}/", live=True)
    # An htmx swap too: the produce form's answer and the redrawn partitions.
    page.locator(
        "#produce-form button[type=submit], form[hx-post$='/produce/'] button"
    ).first.click()
    page.wait_for_load_state("networkidle")
    assert_no_violation(page, "the board after producing")
    visit(page, f"{live_url}/r/{room.code}/queues/", live=True)
    visit(page, f"{live_url}/lessons/", live=False)
    page.locator(".lesson-card .lesson-go").first.click()
    expect(page).to_have_url(re.compile(r"/r/[A-Z0-9]+/lesson/$"))
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    assert_no_violation(page, "a lesson")

    instructor = watched_page(new_page, viewport={"width": 1400, "height": 900})
    client = Client()
    client.force_login(owner)
    session = client.cookies["sessionid"].value
    instructor.context.add_cookies([{"name": "sessionid", "value": session, "url": live_url}])
    visit(instructor, f"{live_url}/r/{classroom.code}/present/", live=False)

    phone = watched_page(new_page, viewport={"width": 390, "height": 844}, is_mobile=True)
    visit(phone, f"{live_url}/j/{classroom.code}/", live=False)
    phone.get_by_label("Your name").fill("Grace")
    phone.get_by_role("button", name="Join").click()
    expect(phone).to_have_url(re.compile(rf"/r/{classroom.code}/me/$"))
    expect(phone.locator("#live-status")).to_have_attribute("data-state", "live")
    phone.wait_for_load_state("networkidle")
    assert_no_violation(phone, "the student's page")
