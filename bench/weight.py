"""First-load page weight: the board page and every asset it loads, as transferred.

A fresh Chromium context (empty cache) loads the board; Playwright's network events give each
response's encoded (on-the-wire) body size, which is what compression saves. Each asset is also
fetched with `Accept-Encoding: gzip, br` to show which encoding the server chose. Baseline: the
htmx library alone, compressed as served (and as gzip -9 would make it, should it be served
uncompressed).
"""

from __future__ import annotations

import gzip
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Result,
    Row,
    manage_or_explain,
    run_json,
    scratch_env,
    yes_no,
)
from tests.support.server import serve

TARGET_KB = 150.0
KB = 1024


@dataclass
class Asset:
    url: str
    kind: str
    status: int
    body: int  # encoded bytes on the wire
    headers: int
    encoding: str  # as served to Accept-Encoding: gzip, br
    plain: int  # decoded bytes
    gzip9: int  # what gzip -9 makes of the decoded bytes


def fetch(url: str) -> tuple[str, int, int, int]:
    """(content-encoding, encoded bytes, decoded bytes, gzip -9 bytes) for `url`."""
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip, br"})
    with urllib.request.urlopen(request, timeout=10) as response:
        raw = response.read()
        encoding = response.headers.get("Content-Encoding", "identity")
    if encoding == "gzip":
        plain = gzip.decompress(raw)
    elif encoding == "br":
        try:
            import brotli  # type: ignore[import-not-found]

            plain = brotli.decompress(raw)
        except ImportError:
            plain = raw
    else:
        plain = raw
    return encoding, len(raw), len(plain), len(gzip.compress(plain, compresslevel=9))


def load(browser, url: str) -> list[Asset]:
    context = browser.new_context()
    page = context.new_page()
    finished: list = []
    page.on("requestfinished", lambda request: finished.append(request))
    try:
        page.goto(url, wait_until="load", timeout=30_000)
        page.wait_for_timeout(1500)  # module imports and late fetches
    finally:
        assets = []
        for request in finished:
            response = request.response()
            sizes = request.sizes()
            encoding, _, plain, gzip9 = fetch(request.url)
            assets.append(
                Asset(
                    url=request.url,
                    kind=request.resource_type,
                    status=response.status if response else 0,
                    body=sizes["responseBodySize"],
                    headers=sizes["responseHeadersSize"],
                    encoding=encoding,
                    plain=plain,
                    gzip9=gzip9,
                )
            )
        context.close()
    return assets


def run(*, quick: bool, tmp: Path) -> Result:
    from playwright.sync_api import sync_playwright

    env = scratch_env(tmp, "weight.sqlite3")
    # Whitenoise serves the compressed variants collectstatic writes into STATIC_ROOT.
    manage_or_explain("collectstatic", "--noinput", "-v0", env=env)
    code = run_json("bench.roomsetup", env=env, timeout=60)["code"]
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"no Chromium at {CHROMIUM} (make chromium, or set CHROMIUM)")
    with serve(env) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            assets = load(browser, f"{base}/r/{code}/")
        finally:
            browser.close()
    total = sum(a.body for a in assets)
    headers = sum(a.headers for a in assets)
    htmx = [a for a in assets if a.url.rsplit("/", 1)[-1].startswith("htmx")]
    if htmx:
        h = htmx[0]
        baseline = (
            f"htmx alone {h.body / KB:.1f} KB as served ({h.encoding}); "
            f"{h.gzip9 / KB:.1f} KB gzip -9"
        )
    else:
        baseline = "htmx not loaded"
    rows = [
        Row(
            "page weight",
            f"{total / KB:.1f} KB in {len(assets)} responses",
            baseline,
            f"<={TARGET_KB:.0f} KB",
            yes_no(total <= TARGET_KB * KB and bool(assets)),
        )
    ]
    notes = [
        f"Compressed bodies as transferred to a fresh Chromium (Accept-Encoding gzip, deflate, "
        f"br, zstd); response headers add {headers / KB:.1f} KB more.",
    ]
    for a in assets:
        path = a.url.replace(base, "") or "/"
        notes.append(
            f"`{path}` ({a.kind}, {a.status}): {a.body / KB:.1f} KB on the wire, served "
            f"{a.encoding} to gzip/br; {a.plain / KB:.1f} KB plain, {a.gzip9 / KB:.1f} KB gzip -9."
        )
    return Result("weight", rows, notes)
