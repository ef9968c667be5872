"""The soak's clients: a script's keep-alive HTTP connection and what its requests got, and a
watcher sampling a driven room's row, log end offsets and committed offsets every 100 ms."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field

from bench.deploy import Postgres


class Poster:
    """One keep-alive HTTP connection, as a script's client would hold."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
        """(status, body); status 0 when the connection failed."""
        headers = {"Content-Type": "application/vnd.kafka.json.v2+json"} if body else {}
        try:
            self.connection.request(method, path, body=body, headers=headers)
            response = self.connection.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            return 0, b""


@dataclass
class Tally:
    requests: int = 0
    ok: int = 0
    errors_5xx: int = 0
    rejected_429: int = 0
    other_4xx: int = 0
    failed: int = 0  # no answer (connection refused or dropped)
    acks: list[tuple[str, int, int]] = field(default_factory=list)  # (value, partition, offset)
    ok_times: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, status: int) -> None:
        with self.lock:
            self.requests += 1
            if status == 200:
                self.ok += 1
                self.ok_times.append(time.monotonic())
            elif status >= 500:
                self.errors_5xx += 1
            elif status == 429:
                self.rejected_429 += 1
            elif status == 0:
                self.failed += 1
            else:
                self.other_4xx += 1

    def describe(self) -> str:
        return (
            f"{self.requests} requests: {self.ok} answered 200, {self.errors_5xx} 5xx, "
            f"{self.rejected_429} 429, {self.other_4xx} other 4xx, {self.failed} without an answer"
        )


def produce(poster: Poster, code: str, value: dict, tally: Tally, topic: str = "soak") -> int:
    return produce_answer(poster, code, value, tally, topic)[0]


def produce_answer(
    poster: Poster, code: str, value: dict, tally: Tally, topic: str = "soak"
) -> tuple[int, bytes]:
    """`produce`, with the answer's body (what a client was told when it failed)."""
    text = json.dumps(value, separators=(",", ":"))
    body = json.dumps({"records": [{"key": f"w{value.get('w', 0)}", "value": value}]})
    status, answer = poster.request("POST", f"/api/kafka/{code}/topics/{topic}", body)
    tally.count(status)
    if status == 200:
        offset = json.loads(answer)["offsets"][0]
        with tally.lock:
            tally.acks.append((text, offset["partition"], offset["offset"]))
    return status, answer


class RoomWatcher:
    """The driven room's row, partitions and committed offsets, sampled every 100 ms."""

    def __init__(self, database: Postgres, room_pk: int) -> None:
        self.database, self.room_pk = database, room_pk
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                self._sample(psycopg)
            except psycopg.Error:  # PostgreSQL restarting (the soak does that): connect again
                self._stop.wait(0.2)

    def _sample(self, psycopg) -> None:  # noqa: ANN001 - the module, imported lazily
        url = self.database.url("soak-watcher")
        with psycopg.connect(url, autocommit=True, connect_timeout=2) as conn:
            while not self._stop.is_set():
                owner, sim, seq = conn.execute(
                    "SELECT driver_owner, sim_time_ms, last_seq FROM messaging_room WHERE id = %s",
                    (self.room_pk,),
                ).fetchone()
                ends = dict(
                    conn.execute(
                        "SELECT p.id, p.log_end_offset FROM messaging_partition p "
                        "JOIN messaging_topic t ON p.topic_id = t.id WHERE t.room_id = %s",
                        (self.room_pk,),
                    ).fetchall()
                )
                committed = dict(
                    conn.execute(
                        "SELECT c.partition_id, c.offset FROM messaging_committedoffset c "
                        "JOIN messaging_consumergroup g ON c.group_id = g.id "
                        "WHERE g.room_id = %s",
                        (self.room_pk,),
                    ).fetchall()
                )
                self.samples.append(
                    {
                        "t": time.monotonic(),
                        "owner": owner,
                        "sim": sim,
                        "seq": seq,
                        "ends": ends,
                        "committed": committed,
                    }
                )
                self._stop.wait(0.1)

    def last(self) -> dict | None:
        return self.samples[-1] if self.samples else None

    def went_back(self, key: str) -> int:
        """How many times a partition's value of `key` was lower than in the sample before."""
        backs, seen = 0, {}
        for sample in self.samples:
            for partition, value in sample[key].items():
                if value < seen.get(partition, -1):
                    backs += 1
                seen[partition] = value
        return backs

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
