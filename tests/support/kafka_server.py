"""A LogLab server with its Kafka listener, for the real-client tests (tests/kafka_clients).

`manage.py serve` serves the web app and every room's Kafka protocol in one process; here it runs
in a subprocess on free loopback ports with a SQLite database file of its own, migrated and
seeded (the demo room is the default room of a connection without SASL) as `make run` does.

Also here, because several test modules share them: a room made through `POST /api/rooms` with
each client library's settings for it, the room's REST Proxy v3 reads (what the board shows,
read from outside the client), and `KafkaWire`, a bare protocol connection built on
kafka-python's message classes, for the tests that must send exact requests.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support.server import ROOT, free_port, manage, server_env, wait_serving

T = TypeVar("T")

# The broker's group.min.session.timeout.ms: the shortest session a consumer may ask for, so the
# quickest a crashed consumer leaves its group.
SESSION_TIMEOUT_MS = 6000
# The demo room (`manage.py seed_demo`): where a connection without SASL goes by default.
DEFAULT_ROOM = "KAFKA7"


# --- the server ---------------------------------------------------------------------------


@dataclass
class KafkaServer:
    """`manage.py serve --host 127.0.0.1 --port <http> --kafka-port <kafka>`, running."""

    process: subprocess.Popen
    http_port: int
    kafka_port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within ten seconds."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def serve_command(http_port: int, kafka_port: int) -> list[str]:
    return [
        sys.executable,
        "manage.py",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(http_port),
        "--kafka-port",
        str(kafka_port),
    ]


def two_free_ports() -> tuple[int, int]:
    first = free_port()
    while (second := free_port()) == first:
        pass
    return first, second


def wait_kafka(
    port: int, process: subprocess.Popen, *, timeout: float, log_tail: Callable[[], str]
) -> None:
    """Until the Kafka port answers an ApiVersions v0 request (what every client sends first);
    raises with the end of the server's log if the process exits or time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with KafkaWire("127.0.0.1", port, timeout=2) as wire:
                wire.api_versions()
                return
        except (OSError, ConnectionError, WireError):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_tail()[-4000:]
                raise RuntimeError(
                    f"the Kafka listener did not answer ApiVersions on 127.0.0.1:{port}:\n{tail}"
                ) from None
            time.sleep(0.1)


@contextmanager
def kafka_serve(workdir: Path, *, startup_seconds: float = 60, **env: str) -> Iterator[KafkaServer]:
    """Serve LogLab with its Kafka listener on free loopback ports; its database is a new
    SQLite file in `workdir`, migrated and seeded first."""
    http_port, kafka_port = two_free_ports()
    environment = server_env(
        SQLITE_PATH=str(workdir / "kafka-clients.sqlite3"),
        LOGLAB_KAFKA_PORT=str(kafka_port),
        # The tests read the REST Proxy while clients run: no throttling of their polls.
        LOGLAB_API_RATE_PER_SECOND="1000",
        **env,
    )
    # This server's own database and channel layer, whatever the shell running pytest set.
    for name in ("DATABASE_URL", "REDIS_URL"):
        environment.pop(name, None)
    manage("migrate", "--noinput", env=environment)
    manage("seed_demo", env=environment)
    log_path = workdir / f"serve-{http_port}-{kafka_port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            serve_command(http_port, kafka_port),
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = KafkaServer(process, http_port, kafka_port, log_path)
    try:
        wait_serving(server.base, process, timeout=startup_seconds, log_tail=server.log)
        wait_kafka(kafka_port, process, timeout=startup_seconds, log_tail=server.log)
        yield server
    finally:
        server.stop()


# --- a room and what reads it from outside ---------------------------------------------------


def http_json(method: str, url: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null"), dict(response.headers)
    except urllib.error.HTTPError as error:
        text = error.read()
        try:
            answer = json.loads(text)
        except ValueError:
            answer = text.decode(errors="replace")
        return error.code, answer, dict(error.headers)


@dataclass(frozen=True)
class KafkaRoom:
    """A sandbox room from `POST /api/rooms` and how each client library connects to it."""

    server: KafkaServer
    answer: dict[str, Any]

    @property
    def code(self) -> str:
        return self.answer["code"]

    @property
    def kafka(self) -> dict[str, str]:
        return self.answer["kafka"]

    @property
    def bootstrap(self) -> str:
        return self.kafka["bootstrap_servers"]

    @property
    def username(self) -> str:
        return self.kafka["sasl_username"]

    @property
    def password(self) -> str:
        return self.kafka["sasl_password"]

    def kafka_python(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments of kafka-python's KafkaProducer, KafkaConsumer, KafkaAdminClient."""
        return {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": self.username,
            "sasl_plain_password": self.password,
            **extra,
        }

    def aiokafka(self, **extra: Any) -> dict[str, Any]:
        """Keyword arguments of aiokafka's AIOKafkaProducer, AIOKafkaConsumer, admin client."""
        return self.kafka_python(**extra)

    def confluent(self, **extra: Any) -> dict[str, Any]:
        """confluent-kafka's (librdkafka's) configuration dict."""
        return {
            "bootstrap.servers": self.bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "PLAIN",
            "sasl.username": self.username,
            "sasl.password": self.password,
            **extra,
        }

    def kcat(self) -> list[str]:
        """kcat's arguments for the broker and SASL (before the mode's own)."""
        return [
            "-b",
            self.bootstrap,
            "-X",
            "security.protocol=SASL_PLAINTEXT",
            "-X",
            "sasl.mechanisms=PLAIN",
            "-X",
            f"sasl.username={self.username}",
            "-X",
            f"sasl.password={self.password}",
        ]

    # REST Proxy v3 reads of the room: what the board shows, seen without the Kafka protocol.

    def rest(self, path: str) -> tuple[int, Any]:
        url = f"{self.server.base}/api/kafka/{self.code}/v3/clusters/{self.code}{path}"
        status, body, _ = http_json("GET", url)
        return status, body

    def rest_topic_create(self, name: str, partitions: int) -> None:
        url = f"{self.server.base}/api/kafka/{self.code}/v3/clusters/{self.code}/topics"
        status, body, _ = http_json(
            "POST", url, {"topic_name": name, "partitions_count": partitions}
        )
        assert status == 201, f"REST Proxy v3 refused topic {name}: {status} {body}"

    def rest_partitions(self, topic: str) -> int:
        status, body = self.rest(f"/topics/{topic}")
        assert status == 200, f"REST Proxy v3 has no topic {topic} in {self.code}: {body}"
        return body["partitions_count"]

    def lags(self, group: str) -> dict[tuple[str, int], dict[str, Any]]:
        """The group's committed offsets as REST Proxy v3 shows them, by (topic, partition);
        empty when it committed nothing."""
        status, body = self.rest(f"/consumer-groups/{group}/lags")
        if status == 404:
            return {}
        assert status == 200, f"lags of {group}: {status} {body}"
        return {(row["topic_name"], row["partition_id"]): row for row in body["data"]}

    def group(self, group: str) -> dict[str, Any] | None:
        status, body = self.rest(f"/consumer-groups/{group}")
        if status == 404:
            return None
        assert status == 200, f"group {group}: {status} {body}"
        return body


def room_create(server: KafkaServer, *, title: str = "kafka clients") -> KafkaRoom:
    """A fresh sandbox room, waiting out the API's room-creation rate (1/s after a burst)."""
    deadline = time.monotonic() + 30
    while True:
        status, body, headers = http_json("POST", f"{server.base}/api/rooms", {"title": title})
        if status == 201:
            break
        if status == 429 and time.monotonic() < deadline:
            time.sleep(float(headers.get("Retry-After", "1")))
            continue
        raise AssertionError(f"POST /api/rooms answered {status}: {body}")
    kafka = body.get("kafka")
    assert isinstance(kafka, dict), f"POST /api/rooms has no `kafka` connection settings: {body}"
    assert kafka.get("security_protocol") == "SASL_PLAINTEXT", kafka
    assert kafka.get("sasl_mechanism") == "PLAIN", kafka
    assert kafka.get("sasl_username") == body["code"], kafka
    assert kafka.get("bootstrap_servers") == server.bootstrap, (kafka, server.bootstrap)
    return KafkaRoom(server, body)


def eventually(check: Callable[[], T], *, timeout: float, interval: float = 0.2) -> T:
    """`check()` once it is truthy; after `timeout` seconds, its last (falsy) value."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


# --- a bare protocol connection ---------------------------------------------------------------


class WireError(Exception):
    """The broker closed the connection or answered something unreadable."""


@dataclass
class KafkaWire:
    """One TCP connection speaking Kafka's protocol with kafka-python's message classes:
    every request is exactly what the test builds, at a version it chooses from the broker's
    ApiVersions (the highest both sides support, as clients choose)."""

    host: str
    port: int
    timeout: float = 10
    client_id: str = "loglab-wire-test"
    versions: dict[int, tuple[int, int]] = field(default_factory=dict)
    _sock: socket.socket | None = None
    _correlation: int = 0

    def connect(self) -> KafkaWire:
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        return self

    def __enter__(self) -> KafkaWire:
        return self.connect()

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _read(self, size: int) -> bytes:
        assert self._sock is not None
        chunks = []
        while size:
            chunk = self._sock.recv(size)
            if not chunk:
                raise WireError("the broker closed the connection")
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)

    def call(self, request: Any, response_class: Any, version: int) -> Any:
        """Send `request` at `version`; its decoded response (correlation id checked)."""
        assert self._sock is not None
        self._correlation += 1
        request.with_header(correlation_id=self._correlation, client_id=self.client_id)
        self._sock.sendall(request.encode(version=version, header=True, framed=True))
        (size,) = struct.unpack(">i", self._read(4))
        payload = self._read(size)
        try:
            response = response_class.decode(payload, version=version, header=True)
        except Exception as error:  # any decoding failure is the broker's malformed answer
            raise WireError(
                f"{response_class.__name__} v{version} could not be decoded ({error!r}): "
                f"{payload[:200]!r}"
            ) from error
        if response.header.correlation_id != self._correlation:
            raise WireError(
                f"{response_class.__name__} v{version}: correlation id "
                f"{response.header.correlation_id}, sent {self._correlation}"
            )
        return response

    def api_versions(self) -> dict[int, tuple[int, int]]:
        from kafka.protocol.metadata import ApiVersionsRequest, ApiVersionsResponse

        response = self.call(ApiVersionsRequest(), ApiVersionsResponse, 0)
        if response.error_code:
            raise WireError(f"ApiVersions v0 answered error {response.error_code}")
        self.versions = {k.api_key: (k.min_version, k.max_version) for k in response.api_keys}
        return self.versions

    def version(self, request_class: Any, *, highest: int, lowest: int = 0) -> int:
        """The version a client would pick: the highest in both ranges."""
        key = request_class.API_KEY
        assert key in self.versions, f"the broker advertises no {request_class.name} (key {key})"
        low, high = self.versions[key]
        chosen = min(high, highest)
        assert chosen >= max(low, lowest), (
            f"{request_class.name}: the broker advertises v{low}-{high}, this test needs "
            f"v{lowest}-{highest}"
        )
        return chosen

    def sasl_plain(self, username: str, password: str) -> Any:
        """SaslHandshake v1 then SaslAuthenticate: the SaslAuthenticate response."""
        from kafka.protocol.sasl import (
            SaslAuthenticateRequest,
            SaslAuthenticateResponse,
            SaslHandshakeRequest,
            SaslHandshakeResponse,
        )

        handshake = self.call(
            SaslHandshakeRequest(mechanism="PLAIN"),
            SaslHandshakeResponse,
            self.version(SaslHandshakeRequest, highest=1, lowest=1),
        )
        assert handshake.error_code == 0, f"SaslHandshake PLAIN: error {handshake.error_code}"
        token = b"\0" + username.encode() + b"\0" + password.encode()
        return self.call(
            SaslAuthenticateRequest(auth_bytes=token),
            SaslAuthenticateResponse,
            self.version(SaslAuthenticateRequest, highest=2),
        )


def wire_connect(room: KafkaRoom, address: tuple[str, int] | None = None) -> KafkaWire:
    """A connection to `address` (the room's bootstrap address by default), ApiVersions read
    and SASL/PLAIN done as the room's client (the caller closes it)."""
    if address is None:
        host, port = room.bootstrap.rsplit(":", 1)
        address = (host, int(port))
    wire = KafkaWire(*address).connect()
    try:
        wire.api_versions()
        answer = wire.sasl_plain(room.username, room.password)
        assert answer.error_code == 0, (
            f"SaslAuthenticate for {room.username}: error {answer.error_code} "
            f"{answer.error_message}"
        )
    except BaseException:
        wire.__exit__()
        raise
    return wire


def python_env() -> dict[str, str]:
    """The environment of a client subprocess: this checkout importable, output unbuffered."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env
