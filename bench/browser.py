"""Browser: the board's frame rate and longest main-thread task during 200 records/s autoplay.

Headless Debian Chromium through Playwright. Frames are requestAnimationFrame timestamps over
the measurement window; long tasks come from PerformanceObserver('longtask') (which reports
only tasks over 50 ms). Baseline, same browser and run: about:blank with the same rAF loop.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import CHROMIUM, CHROMIUM_ARGS, Result, Row, percentile, run_json, scratch_env
from tests.support.server import serve

SECONDS, QUICK_SECONDS = 20.0, 5.0
WARMUP, QUICK_WARMUP = 3.0, 1.0
RATE = 200.0  # autoplay records per second
FPS_TARGET = 55.0
LONGTASK_TARGET_MS = 50.0
VIEWPORT = {"width": 1280, "height": 800}

# Runs in the page: rAF timestamps for `ms`, plus every long task meanwhile. The timeout
# resolves it even if the page never paints (a hidden or hung tab).
MEASURE = """
async (ms) => {
  const longtasks = [];
  let observer = null;
  try {
    observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) longtasks.push(entry.duration);
    });
    observer.observe({ type: "longtask" });
  } catch (error) { /* no longtask support: reported as such */ }
  // Long animation frames say what a slow frame spent its time on (scripts, layout).
  const frames50 = [];
  let loaf = null;
  try {
    loaf = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        const layout = e.renderStart ? e.startTime + e.duration - e.renderStart : 0;
        frames50.push({
          duration: e.duration, blocking: e.blockingDuration, render: layout,
          scripts: (e.scripts || []).map((s) => ({
            what: `${s.invoker || s.invokerType} ${(s.sourceFunctionName || "")}`.trim(),
            where: `${(s.sourceURL || "").split("/").pop()}:${s.sourceCharPosition ?? ""}`,
            duration: s.duration, layout: s.forcedStyleAndLayoutDuration || 0,
          })),
        });
      }
    });
    loaf.observe({ type: "long-animation-frame" });
  } catch (error) { /* older Chromium */ }
  const frames = [];
  await new Promise((resolve) => {
    const start = performance.now();
    const guard = setTimeout(resolve, ms + 5000);
    function tick(now) {
      frames.push(now);
      if (now - start < ms) requestAnimationFrame(tick);
      else { clearTimeout(guard); resolve(); }
    }
    requestAnimationFrame(tick);
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  if (observer) {
    for (const entry of observer.takeRecords()) longtasks.push(entry.duration);
    observer.disconnect();
  }
  if (loaf) loaf.disconnect();
  frames50.sort((a, b) => b.duration - a.duration);
  return { frames, longtasks, observed: observer !== null, slow: frames50.slice(0, 3) };
}
"""


@dataclass
class Frames:
    frames: list[float]
    longtasks: list[float]
    observed: bool
    slow: list[dict] = field(default_factory=list)
    events: dict[str, int] = field(default_factory=dict)
    records: int = 0
    requests: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    @property
    def intervals(self) -> list[float]:
        return [b - a for a, b in zip(self.frames, self.frames[1:], strict=False)]

    @property
    def mean_fps(self) -> float:
        span = self.frames[-1] - self.frames[0] if len(self.frames) > 1 else 0
        return (len(self.frames) - 1) / span * 1000 if span else 0.0

    @property
    def p5_fps(self) -> float:
        """The 5th percentile of per-frame rates: 1000 / the 95th percentile interval."""
        worst = percentile(self.intervals, 95)
        return 1000 / worst if worst and worst == worst else 0.0

    @property
    def worst_second_fps(self) -> float:
        """Frames in the worst whole second of the window."""
        if len(self.frames) < 2:
            return 0.0
        counts: dict[int, int] = {}
        for stamp in self.frames[1:]:
            second = int((stamp - self.frames[0]) // 1000)
            counts[second] = counts.get(second, 0) + 1
        whole = [n for second, n in counts.items() if second < max(counts)]
        return float(min(whole, default=0))

    @property
    def longest_frame_ms(self) -> float:
        return max(self.intervals, default=0.0)

    @property
    def longest_task_ms(self) -> float:
        return max(self.longtasks, default=0.0)

    def slow_text(self) -> str:
        """The slowest long animation frames and what they spent their time on."""
        parts = []
        for frame in self.slow:
            scripts = (
                "; ".join(
                    f"{s['what']} ({s['where']}) {s['duration']:.0f} ms"
                    + (f", forced layout {s['layout']:.0f} ms" if s["layout"] >= 1 else "")
                    for s in sorted(frame["scripts"], key=lambda s: -s["duration"])[:2]
                )
                or "no script"
            )
            parts.append(
                f"{frame['duration']:.0f} ms frame (rendering {frame['render']:.0f} ms; {scripts})"
            )
        return ", ".join(parts) if parts else "none"

    def task_text(self) -> str:
        if not self.observed:
            return "longtask unsupported"
        if not self.longtasks:
            return "none over 50 ms"
        return f"{self.longest_task_ms:.0f} ms ({len(self.longtasks)} over 50 ms)"


def measure(page, seconds: float) -> Frames:
    out = page.evaluate(MEASURE, int(seconds * 1000))
    return Frames(out["frames"], out["longtasks"], out["observed"], out.get("slow") or [])


def autoplay_ready() -> str | None:
    """Why autoplay cannot run in this checkout, or None when its pieces exist."""
    root = Path(__file__).resolve().parents[1]
    for piece in ("messaging/services/simulation.py", "messaging/services/driving.py"):
        if not (root / piece).exists():
            return f"{piece} does not exist yet"
    return None


def board(browser, base: str, code: str, seconds: float, warmup: float) -> Frames:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    events: dict[str, int] = {}
    box = {"records": 0, "counting": False}
    requests: dict[str, int] = {}
    errors: list[str] = []

    def frame(payload) -> None:
        if not box["counting"]:
            return
        try:
            event = json.loads(payload)
        except (TypeError, ValueError):
            return
        kind = str(event.get("type"))
        events[kind] = events.get(kind, 0) + 1
        body = event.get("payload") or {}
        if kind == "step":
            for produced in body.get("produced") or []:
                box["records"] += len(produced.get("records") or []) + int(produced.get("more", 0))
        elif kind == "records.produced":
            box["records"] += len(body.get("records") or []) + int(body.get("more", 0))

    def request(sent) -> None:
        if box["counting"]:
            path = urllib.parse.urlsplit(sent.url).path
            requests[path] = requests.get(path, 0) + 1

    page.on("websocket", lambda ws: ws.on("framereceived", frame))
    page.on("request", request)
    page.on("pageerror", lambda error: errors.append(str(error)[:200]))
    try:
        page.goto(f"{base}/r/{code}/", wait_until="load", timeout=30_000)
        page.wait_for_selector("#live-status[data-state=live]", timeout=15_000)
        page.wait_for_timeout(warmup * 1000)
        box["counting"] = True
        result = measure(page, seconds)
        box["counting"] = False
    finally:
        context.close()
    result.events, result.records, result.requests = events, box["records"], requests
    result.errors = errors
    return result


def blank(browser, seconds: float) -> Frames:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto("about:blank")
        return measure(page, seconds)
    finally:
        context.close()


def run(*, quick: bool, tmp: Path) -> Result:
    from playwright.sync_api import sync_playwright

    seconds = QUICK_SECONDS if quick else SECONDS
    warmup = QUICK_WARMUP if quick else WARMUP
    missing = autoplay_ready()
    if missing:
        return Result(
            "browser",
            [
                Row("browser fps p5", "not measured", "-", f">={FPS_TARGET:.0f}", "n/a"),
                Row("browser longest task", "not measured", "-", "<50ms", "n/a"),
            ],
            [f"Autoplay is not available: {missing}."],
        )
    env = scratch_env(tmp, "browser.sqlite3")
    code = run_json("bench.roomsetup", "--autoplay", str(RATE), env=env, timeout=60)["code"]
    if not os.path.exists(CHROMIUM):
        raise RuntimeError(f"no Chromium at {CHROMIUM} (make chromium, or set CHROMIUM)")
    with serve(env) as base, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            version = browser.version
            idle = blank(browser, seconds)
            lab = board(browser, base, code, seconds, warmup)
        finally:
            browser.close()
    steps = lab.events.get("step", 0)
    loaded = steps >= seconds * 10 * 0.5 and lab.records >= seconds * RATE * 0.5
    fps_ok = lab.p5_fps >= FPS_TARGET
    task_ok = lab.observed and lab.longest_task_ms < LONGTASK_TARGET_MS
    rows = [
        Row(
            "browser fps p5",
            f"{lab.p5_fps:.1f} fps (mean {lab.mean_fps:.1f}, worst second "
            f"{lab.worst_second_fps:.0f})",
            f"about:blank {idle.p5_fps:.1f} fps (mean {idle.mean_fps:.1f}, worst second "
            f"{idle.worst_second_fps:.0f})",
            f">={FPS_TARGET:.0f}",
            ("yes" if fps_ok else "no") if loaded else "n/a",
        ),
        Row(
            "browser longest task",
            lab.task_text(),
            f"about:blank {idle.task_text()}",
            f"<{LONGTASK_TARGET_MS:.0f}ms",
            ("yes" if task_ok else "no") if loaded else "n/a",
        ),
    ]
    events = ", ".join(f"{n} {k}" for k, n in sorted(lab.events.items())) or "none"
    fetched = ", ".join(f"{n} x {path}" for path, n in sorted(lab.requests.items())) or "none"
    notes = [
        f"Chromium {version}, headless, {VIEWPORT['width']}x{VIEWPORT['height']}; board measured "
        f"for {seconds:g} s after {warmup:g} s of warm-up, autoplay at {RATE:g} records/s.",
        f"During the window the board received: {events}; {lab.records} records in them "
        f"({lab.records / seconds:.0f}/s); its HTTP requests: {fetched}; "
        f"{len(lab.errors)} page errors"
        + (f" (first: {lab.errors[0]})" if lab.errors else "")
        + ".",
        f"Board: {len(lab.frames)} frames, longest frame {lab.longest_frame_ms:.0f} ms. "
        f"about:blank: {len(idle.frames)} frames, longest {idle.longest_frame_ms:.0f} ms.",
        f"Slowest animation frames on the board (long-animation-frame): {lab.slow_text()}. "
        f"On about:blank: {idle.slow_text()}.",
    ]
    if not loaded:
        notes.append(
            "The autoplay load did not arrive as expected (fewer than half the steps or records"
            " a 200 records/s, 10 steps/s driver sends), so the targets are not judged."
        )
    return Result("browser", rows, notes)
