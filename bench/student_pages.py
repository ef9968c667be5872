"""Students' pages in a process of their own: the scale bench's classroom runs one per server.

Each student's phone has a CPU of its own. One bench process holding all 500 pages spent
0.74 s of CPU in the 0.79 s it took the 44 KB `group.changed` event to reach them (reading
the frames, inflating, parsing): the bench measured its own queue, not the servers'. So the
pages are split, as the fan-out's clients are, one process per server.

`python -m bench.student_pages`, a line protocol on stdio (times are time.monotonic(), which
on Linux is one clock for every process):
  in  `PAGES <json [[url, session key], ...]>`
  out `READY <connected> <failed>` once every page has connected or given up
  in  `MARK`  out `FLOOR <newest group.changed seq any page has seen>`
  in  `WAIT <floor> <seconds>`: until every open page has a group.changed above `floor`
      (at most `seconds`), then a moment more for any that followed;
  out `RESULT <json>`: per page, its group.changed seqs with their receipt times and sizes,
      and why its socket ended if it did. End of input closes the pages.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from bench.classroom import Page, pages_close

CONNECT_CONCURRENCY = 20
SETTLE_SECONDS = 0.3  # whether any other group.changed followed: the last one is final


async def _line() -> str:
    return (await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)).strip()


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


async def main() -> None:
    command, _, body = (await _line()).partition(" ")
    if command != "PAGES":
        raise SystemExit(f"expected PAGES, got {command!r}")
    listed = json.loads(body)
    pages = [Page(session) for _, session in listed]
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    tasks = [
        asyncio.create_task(page.listen(url, gate))
        for page, (url, _) in zip(pages, listed, strict=True)
    ]
    deadline = time.monotonic() + 120
    while any(not hasattr(p, "connection") and not t.done() for p, t in zip(pages, tasks)):  # noqa: B905
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.05)
    connected = sum(hasattr(page, "connection") and not page.closed for page in pages)
    _say(f"READY {connected} {len(pages) - connected}")
    try:
        while line := await _line():
            command, _, rest = line.partition(" ")
            if command == "MARK":
                _say(f"FLOOR {max((page.newest() for page in pages), default=0)}")
            elif command == "WAIT":
                floor_text, seconds_text = rest.split()
                floor, until = int(floor_text), time.monotonic() + float(seconds_text)
                while any(page.newest() <= floor and not page.closed for page in pages):
                    if time.monotonic() > until:
                        break
                    await asyncio.sleep(0.005)
                await asyncio.sleep(SETTLE_SECONDS)
                result = [
                    {"rebalances": page.rebalances, "sizes": page.sizes, "closed": page.closed}
                    for page in pages
                ]
                _say("RESULT " + json.dumps(result, separators=(",", ":")))
    finally:
        await pages_close(pages, tasks)


if __name__ == "__main__":
    asyncio.run(main())
