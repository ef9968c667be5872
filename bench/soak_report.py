"""The soak's table, on the terminal and in docs/reliability.md (which it rewrites whole)."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.server import ROOT

DOC = ROOT / "docs" / "reliability.md"


@dataclass
class Outcome:
    scenario: str
    requests: int = 0
    errors_5xx: int = 0
    gaps: int = 0
    duplicates: int = 0
    lost: int = 0
    peak_connections: str = "n/a"
    recover_s: float | None = None
    timed: bool = False  # whether this scenario measures a recovery
    met: bool = False
    notes: list[str] = field(default_factory=list)
    crashed: str = ""


# --- the table --------------------------------------------------------------------------------

HEADER = (
    "scenario",
    "requests",
    "5xx",
    "gaps",
    "duplicates",
    "lost",
    "peak PostgreSQL connections",
    "seconds to recover",
    "met",
)


def cells(outcome: Outcome) -> tuple[str, ...]:
    if outcome.crashed:
        return (outcome.scenario, "-", "-", "-", "-", "-", "-", "-", "crashed")
    return (
        outcome.scenario,
        str(outcome.requests),
        str(outcome.errors_5xx),
        str(outcome.gaps),
        str(outcome.duplicates),
        str(outcome.lost),
        outcome.peak_connections,
        "-"
        if not outcome.timed
        else ("never" if outcome.recover_s is None else f"{outcome.recover_s:.2f}"),
        "yes" if outcome.met else "no",
    )


def table(outcomes: list[Outcome]) -> str:
    rows = [HEADER] + [cells(o) for o in outcomes]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


METHOD = """\
# Reliability

`make soak` (`.venv/bin/python -m bench.soak`) runs these on loopback, outside `make test`, and
rewrites this file. Bar: 0 5xx; 0 gaps, duplicates or losses; peak PostgreSQL connections
<= 20 per server process; recovery <= 5 s. The code is `bench/soak.py` (scenarios),
`bench/deploy.py` (servers, our own redis-server and PostgreSQL database),
`bench/fleet.py` (browsers' websockets), `bench/soak_db.py` (set-up and read-back).

How each is taken:

- **Servers.** Separate `uvicorn config.asgi:application` processes on free ports, on one
  database and one Redis, as a multi-process deployment runs. The Redis is a `redis-server` the
  soak starts on a free port (no persistence) and kills at the end; the PostgreSQL database
  (`loglab_soak` on 127.0.0.1:5432) is created for each scenario and dropped after it. The
  servers' API and student rate limits are raised to 100,000/s (`LOGLAB_API_RATE_PER_SECOND`
  and the others in `bench/deploy.py`): the writers are one client address, and what is
  measured is the server, not a limit meant for people. The limits are still counted where
  a deployment counts them (`LOGLAB_RATE_BACKEND` left at `auto`: in Redis when `REDIS_URL` is
  set, else in the database).
- **Writers.** 8 threads, each a keep-alive HTTP client, post 250 records each, one per
  request, to the Kafka REST API (`POST /api/kafka/<code>/topics/soak`, JSON embedded format)
  of a 3-partition topic; writer w posts to process w mod 2. Each value is unique
  (`{"w": writer, "i": n}`); a 429 would be retried after 200 ms. Afterwards every partition is
  read back from the database: offsets contiguous from log start to log end, each acknowledged
  value stored exactly once at the partition and offset its answer gave, the room's events
  numbered without a hole. "lost" also counts produces never acknowledged.
- **Peak connections.** `pg_stat_activity` of the soak's database every 100 ms, per
  `application_name` (each server process connects under its own, `soak-a` and `soak-b`).
- **kill -9 mid-autoplay.** A room whose clock runs, an autoplay producer at 40 records/s and a
  group of 2 simulated consumers at 25 records/s each (at-least-once, earliest); a board
  websocket open on each process, so both run a driver for the room and one holds the lease.
  The room row, log end offsets and committed offsets are sampled every 100 ms. Once the
  consumers commit, the process holding the lease gets SIGKILL; recovery is the time from the
  kill to the first sample where the other process holds the lease and the room's time moved.
  Its board page is fetched every 200 ms meanwhile (the requests and 5xx). Gaps count
  committed or log end offsets that ever went back, offset holes and event holes.
- **Redis restart.** 20 browsers (10 per process, reconnecting as room-socket.js does) and a
  producer posting 10 records/s alternately to both processes. After 3 s Redis is killed,
  and 3 s later started again, empty. Recovery is from Redis back to the later of the first
  produce answered 200 and the last browser receiving an event again (live, or replayed on a
  reconnect). "lost" also counts browsers that do not hold the room's last event at the end
  (5 s after the producer stops).
- **PostgreSQL restart.** The two processes run on a PostgreSQL cluster the soak starts
  itself (`initdb` and `pg_ctl` as the `postgres` user, a free port, trust auth; removed at
  the end): the machine's shared server is never restarted. A room whose clock runs (autoplay
  at 10 records/s, a group of 2 consumers committing), 20 browsers (10 per process), and a
  producer posting 10 records/s to `orders` alternately to both processes, open loop (a
  request every 100 ms whether or not the ones before were answered). After 3 s PostgreSQL is
  stopped (`pg_ctl stop -m fast`: its sessions are cut) and started 3 s later. Produces in
  flight while it was down are counted apart: they may wait for it or fail with a 503 and
  `Retry-After` (what a view answers when its database went away), and the 5xx column counts
  any other 5xx (a raw 500) and every 5xx outside that window. Recovery is from PostgreSQL
  accepting connections again to the first produce answered 200; the first request after it
  must be answered 200, the room's driver must move on, and every browser must receive events
  again and hold the event the room had committed when the producer stopped ("lost" counts
  those that do not). Gaps count committed or log end offsets that ever went back (sampled
  every 100 ms), offset holes and event holes.
- **Reconnect storm.** The browsers connect to one process on SQLite with the in-memory
  layer (`make run`). The process is stopped (SIGTERM) and, while it is down, one record is
  produced through the service by a helper process started beforehand (so every browser
  missed an event, and the downtime holds no Django start-up of ours). The process starts again on
  the same port; the browsers reconnect with `?since=<last seq>` and backoff from 1 s doubling
  to 5 s, full jitter, as room-socket.js does. Recovery is from the server answering again to
  the last browser holding the missed event (replayed) or a resync; "lost" counts browsers that
  never got it within 60 s, "requests" the websocket handshakes tried, "5xx" handshakes
  refused with a 5xx.

## Results

"""


def write_doc(outcomes: list[Outcome], about: dict[str, str], mode: str, load: str) -> None:
    lines = [METHOD.rstrip("\n"), ""]
    lines.append("| " + " | ".join(HEADER) + " |")
    lines.append("|" + "---|" * len(HEADER))
    for outcome in outcomes:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells(outcome)) + " |")
    lines += [
        "",
        f"Run: {about['date']}, {mode}; {about['cpu']}, {about['cores']} cores; {about['os']}; "
        f"Python {about['python']}, SQLite {about['sqlite']}. {load}",
        "",
        "Notes:",
        "",
    ]
    for outcome in outcomes:
        lines.append(f"- **{outcome.scenario}.** " + "; ".join(outcome.notes) + ".")
    DOC.write_text("\n".join(lines) + "\n")
