"""Fuzzing the Kafka listener: nothing a client sends crashes it or reaches another connection.

One real listener (`Listener("127.0.0.1", 0)`) runs for the whole module on an event loop of its
own thread, over the test database, as `manage.py serve` runs it. Two healthy clients connect
first, to a room of their own over SASL/PLAIN: a bare protocol connection and a kafka-python
`KafkaProducer`. After every test (the `healthy` fixture) the listener still accepts a new
connection, both healthy clients still get answers, and the `loglab.kafka` logger recorded no
error: the listener logs "closed ... on an unexpected error" with a traceback only for a bug on
our side, so any such record fails the test that caused it, with the input in the message.

What Kafka does with each input, and so what is asserted (SocketServer, RequestContext,
SaslServerAuthenticator): a size below zero or over socket.request.max.bytes closes the
connection at once; a header that does not parse, an API key the broker does not have, or a
version outside the advertised range closes it (ApiVersions excepted: KIP-511 answers it in v0
with UNSUPPORTED_VERSION and ApiVersions' own range); SASL out of order is ILLEGAL_SASL_STATE and
a closed connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from kafka.protocol.metadata import (
    ApiVersionsRequest,
    ApiVersionsResponse,
    MetadataRequest,
    MetadataResponse,
)
from kafka.protocol.sasl import (
    SaslAuthenticateRequest,
    SaslAuthenticateResponse,
    SaslHandshakeRequest,
    SaslHandshakeResponse,
)

from messaging.api.kafka_wire.protocol import SUPPORTED
from tests.support.kafka_server import KafkaWire

HOST = "127.0.0.1"
# How long one fuzzed exchange waits for an answer or a close; a request that decodes into a
# long poll (a Fetch, a parked JoinGroup) is left waiting and the test goes on.
ANSWER_SECONDS = 1.0
FUZZ_ANSWER_SECONDS = 0.25
SASL_FAILED, ILLEGAL_SASL_STATE, UNSUPPORTED_SASL_MECHANISM, UNSUPPORTED_VERSION = 58, 34, 33, 35
API_VERSIONS = 18
# Every (API, version) the listener advertises.
PAIRS = [
    (api.key, version)
    for api in SUPPORTED.values()
    for version in range(api.min_version, api.max_version + 1)
]


# --- the listener, on a loop of its own --------------------------------------------------------


class Errors(logging.Handler):
    """Every record of `loglab.kafka` (and asyncio's) at ERROR or with a traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            with self.guard:
                self.records.append(record)

    def since(self, mark: int) -> list[str]:
        with self.guard:
            records = self.records[mark:]
        formatter = logging.Formatter()
        return [formatter.format(r) for r in records]

    def mark(self) -> int:
        with self.guard:
            return len(self.records)


@dataclass
class Running:
    port: int
    room_code: str
    room_secret: str
    errors: Errors
    wire: KafkaWire
    producer: object
    # Fuzzed inputs still waiting for an answer when their exchange gave up on it: a late
    # traceback is then theirs.
    pending: list[str] = field(default_factory=list)

    def check(self, what: str, mark: int = 0) -> None:
        """No error logged since `mark`; a new connection is answered; the healthy clients
        (connected before anything was fuzzed) still work."""
        logged = self.errors.since(mark)
        assert not logged, (
            f"the listener logged an error after {what}"
            + (f" (inputs still in flight: {self.pending})" if self.pending else "")
            + ":\n"
            + "\n\n".join(logged)
        )
        with KafkaWire(HOST, self.port, timeout=10, client_id="fresh") as fresh:
            assert 0 in fresh.api_versions(), f"after {what}: a new connection was not answered"
        metadata = self.wire.call(MetadataRequest(topics=None), MetadataResponse, 1)
        assert any(t.name == "healthy" for t in metadata.topics), (what, metadata)
        sent = self.producer.send("healthy", key=b"k", value=what[:200].encode()).get(timeout=30)
        assert sent.offset >= 1, what


# Loggers whose errors are bugs here: the listener's, the services' (a room's simulation step
# the fuzzed requests made fail), and asyncio's ("Task exception was never retrieved").
WATCHED = ("loglab.kafka", "messaging", "asyncio")


@pytest.fixture
def running(transactional_db) -> Iterator[Running]:
    """A listener on a loop of its own thread, the default room and a SASL room, and the two
    healthy clients, connected before the test sends anything; checked once more at the end."""
    from kafka import KafkaProducer

    from messaging.api.kafka_wire.server import Listener
    from messaging.services.rooms import room_create
    from messaging.services.seeds import room_seed_demo

    room_seed_demo()  # KAFKA7: where a connection without SASL goes
    room = room_create(title="healthy clients")
    errors = Errors()
    for name in WATCHED:
        logging.getLogger(name).addHandler(errors)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="kafka-listener", daemon=True)
    thread.start()
    listener = Listener(HOST, 0)
    asyncio.run_coroutine_threadsafe(listener.start(), loop).result(10)
    wire = KafkaWire(HOST, listener.port, timeout=15, client_id="healthy-wire")
    producer = None
    try:
        wire.connect().api_versions()
        answer = wire.sasl_plain(room.code, room.client_secret)
        assert answer.error_code == 0, answer
        producer = KafkaProducer(
            bootstrap_servers=f"{HOST}:{listener.port}",
            security_protocol="SASL_PLAINTEXT",
            sasl_mechanism="PLAIN",
            sasl_plain_username=room.code,
            sasl_plain_password=room.client_secret,
            client_id="healthy-producer",
            linger_ms=0,
            request_timeout_ms=15_000,
        )
        producer.send("healthy", key=b"k", value=b"first").get(timeout=30)
        running = Running(listener.port, room.code, room.client_secret, errors, wire, producer)
        yield running
        running.check("the whole test")
    finally:
        # What the shutdown below logs (cancelled connections) is not an input's doing.
        for name in WATCHED:
            logging.getLogger(name).removeHandler(errors)
        if producer is not None:
            producer.close(timeout=5)
        wire.__exit__()
        asyncio.run_coroutine_threadsafe(_shutdown(listener), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _shutdown(listener) -> None:
    """Stop listening, then end every connection still open (a long poll a fuzzed request
    started, say) and the rooms' drivers, before the database is flushed."""
    await listener.stop()
    me = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not me]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


# --- bytes on the wire -------------------------------------------------------------------------


def framed(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def header(api_key: int, version: int, *, correlation: int = 7, client: bytes = b"fuzz") -> bytes:
    """Request header v1; v2 (an empty tagged-field section) where the API is flexible."""
    head = struct.pack(">hhih", api_key, version, correlation, len(client)) + client
    api = SUPPORTED.get(api_key)
    if api is not None and api.flexible(version) and version <= api.max_version:
        head += b"\x00"
    return head


@dataclass
class Outcome:
    answers: list[bytes]
    closed: bool  # the listener closed the connection (an EOF or a reset)
    waiting: bool  # still open, no (further) answer within the time given


def exchange(
    port: int,
    data: bytes,
    *,
    answers: int = 1,
    seconds: float = ANSWER_SECONDS,
    close_after_send: bool = False,
) -> Outcome:
    """Send `data` on a new connection; read up to `answers` frames, or until it closes, or
    until `seconds` pass without one."""
    got: list[bytes] = []
    with socket.create_connection((HOST, port), timeout=seconds) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            return Outcome(got, True, False)
        if close_after_send:
            return Outcome(got, False, False)
        try:
            while len(got) < answers:
                head = _recv(sock, 4)
                if head is None:
                    return Outcome(got, True, False)
                (size,) = struct.unpack(">i", head)
                payload = _recv(sock, size)
                if payload is None:
                    return Outcome(got, True, False)
                got.append(payload)
            # After the answers: is the connection now closed?
            sock.settimeout(0.3)
            try:
                return Outcome(got, sock.recv(1) == b"", False)
            except TimeoutError:
                return Outcome(got, False, True)
        except TimeoutError:
            return Outcome(got, False, True)
        except ConnectionResetError:
            return Outcome(got, True, False)


def _recv(sock: socket.socket, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def closed_without_answer(outcome: Outcome, what: str) -> None:
    assert outcome.closed and not outcome.answers, f"{what}: expected a close, got {outcome}"


# --- sizes and truncation ----------------------------------------------------------------------


def _limit() -> int:
    return settings.LOGLAB_KAFKA_MAX_FRAME_BYTES


def test_it_closes_a_connection_whose_frame_size_is_out_of_bounds(running) -> None:
    sizes = [-1, -2, -(2**31), _limit() + 1, _limit() * 4, 0x7FFF0000, 2**31 - 1]
    for size in sizes:
        mark = running.errors.mark()
        # The size alone closes it: the listener neither waits for nor allocates the body.
        started = time.monotonic()
        outcome = exchange(running.port, struct.pack(">i", size) + b"\x00\x12\x00\x00")
        closed_without_answer(outcome, f"a frame size of {size}")
        assert time.monotonic() - started < ANSWER_SECONDS, size
        running.check(f"a frame size of {size}", mark)


def test_it_reads_a_frame_of_exactly_the_limit(running) -> None:
    """At the bound, not over it: read whole (its unknown API key then closes it)."""
    body = header(4, 0)
    body += b"\x00" * (_limit() - len(body))
    closed_without_answer(exchange(running.port, framed(body), seconds=5), "a frame at the limit")
    running.check("a frame of exactly the limit")


TRUNCATED = {
    "1 byte of a size": (b"\x00", 0),
    "3 bytes of a size": (b"\x00\x00\x00", 0),
    "a size, no body": (struct.pack(">i", 100), 0),
    "a header of a 100-byte frame": (struct.pack(">i", 100) + header(18, 0), 0),
    "60 of 100 bytes": (struct.pack(">i", 100) + b"\x00" * 60, 0),
    "a whole frame, then part of one": (
        framed(header(18, 0)) + struct.pack(">i", 50) + b"\x00\x03",
        1,
    ),
}


def test_it_shrugs_off_truncated_frames_and_clients_that_hang_up(running) -> None:
    for what, (data, answers) in TRUNCATED.items():
        mark = running.errors.mark()
        exchange(running.port, data, close_after_send=True)
        # The same left open: the listener waits for the rest, answering what came whole.
        outcome = exchange(running.port, data, answers=answers, seconds=0.5)
        assert len(outcome.answers) == answers and not outcome.closed, (what, outcome)
        running.check(what, mark)


def test_it_closes_a_connection_whose_frame_is_shorter_than_a_header(running) -> None:
    whole = header(18, 0)
    for length in range(10):  # api key, version, correlation id, client id length: 10 bytes
        mark = running.errors.mark()
        closed_without_answer(exchange(running.port, framed(whole[:length])), f"{length} bytes")
        running.check(f"a {length}-byte frame", mark)


def test_it_closes_a_connection_whose_request_header_does_not_parse(running) -> None:
    bad = {
        f"client id length {n}": struct.pack(">hhih", 18, 0, 1, n) + b"abc"
        for n in (-2, -32768, 5, 32767)
    }
    # ApiVersions v3 is the one flexible version advertised: header v2, tagged fields.
    flexible = struct.pack(">hhih", 18, 3, 1, 4) + b"fuzz"
    bad |= {
        "a tagged-field count that overflows": flexible + b"\xff\xff\xff\xff\xff\x01",
        "a tagged field past the end": flexible + b"\x01\x00\x7f",
        "two tagged fields, one there": flexible + b"\x02\x00\x00",
        "no tagged-field count": flexible,
    }
    for what, body in bad.items():
        mark = running.errors.mark()
        closed_without_answer(exchange(running.port, framed(body)), what)
        running.check(what, mark)


# --- API keys and versions ---------------------------------------------------------------------


UNKNOWN_KEYS = sorted(
    {4, 5, 6, 7, 21, 23, 24, 33, 38, 50, 67, 68, 99, 1000, 32767, -1, -32768} - set(SUPPORTED)
)


def test_it_closes_a_connection_that_sends_an_unknown_api_key(running) -> None:
    for api_key in UNKNOWN_KEYS:
        mark = running.errors.mark()
        outcome = exchange(running.port, framed(header(api_key, 0) + b"\x00" * 16))
        closed_without_answer(outcome, f"API key {api_key}")
        running.check(f"API key {api_key}", mark)


def test_it_closes_a_connection_that_sends_an_unsupported_version(running) -> None:
    for api in SUPPORTED.values():
        if api.key == API_VERSIONS:
            continue
        versions = [api.max_version + 1, 99, 32767, -1, -32768]
        if api.min_version > 0:
            versions.append(api.min_version - 1)
        for version in versions:
            what = f"{api.name} v{version}"
            mark = running.errors.mark()
            outcome = exchange(running.port, framed(header(api.key, version) + b"\x00" * 16))
            closed_without_answer(outcome, what)
            running.check(what, mark)


def test_it_answers_apiversions_at_an_unknown_version_in_v0_with_its_own_range(running):
    """KIP-511: UNSUPPORTED_VERSION, in v0, listing ApiVersions' range; the client retries on
    the same connection."""
    api = SUPPORTED[API_VERSIONS]
    for version in (api.max_version + 1, 5, 99, 32767, -1):
        mark = running.errors.mark()
        sent = framed(header(API_VERSIONS, version, correlation=41) + b"\x03abc\x01\x00")
        retry = ApiVersionsRequest()
        retry.with_header(correlation_id=42, client_id="fuzz")
        outcome = exchange(
            running.port, sent + retry.encode(version=0, header=True, framed=True), answers=2
        )
        assert len(outcome.answers) == 2, (version, outcome)
        first = ApiVersionsResponse.decode(outcome.answers[0], version=0, header=True)
        assert first.header.correlation_id == 41
        assert first.error_code == UNSUPPORTED_VERSION
        assert [(k.api_key, k.min_version, k.max_version) for k in first.api_keys] == [
            (API_VERSIONS, api.min_version, api.max_version)
        ]
        second = ApiVersionsResponse.decode(outcome.answers[1], version=0, header=True)
        assert second.header.correlation_id == 42 and second.error_code == 0
        assert {k.api_key for k in second.api_keys} == set(SUPPORTED)
        running.check(f"ApiVersions v{version}", mark)


# --- bodies: every supported API and version ---------------------------------------------------


def _default_body(api_key: int, version: int) -> bytes:
    return bytes(SUPPORTED[api_key].request().encode(version=version))


def _fuzz(running: Running, api_key: int, version: int, body: bytes, what: str) -> None:
    """One request on a fresh connection; a late answer is left in flight and remembered."""
    mark = running.errors.mark()
    data = framed(header(api_key, version) + body)
    label = f"{SUPPORTED[api_key].name} v{version} {what}: frame {data.hex()}"
    # Most answers take milliseconds; one that takes longer is a long poll, left in flight.
    outcome = exchange(running.port, data, seconds=FUZZ_ANSWER_SECONDS)
    if outcome.waiting and not outcome.answers:
        running.pending.append(label)
        del running.pending[:-20]
    logged = running.errors.since(mark)
    assert not logged, f"the listener logged an error for {label}:\n" + "\n\n".join(logged)


def test_it_survives_every_api_and_version_with_an_empty_a_default_and_a_cut_body(running):
    """A sweep: an empty body, the schema's defaults (nulls for the arrays), and the defaults
    one byte short, for every (API, version) advertised."""
    for done, (api_key, version) in enumerate(PAIRS, start=1):
        body = _default_body(api_key, version)
        for what, sent in (("empty", b""), ("defaults", body), ("cut", body[:-1])):
            _fuzz(running, api_key, version, sent, what)
        # Every input is checked for logged errors as it goes (_fuzz); the healthy clients
        # every ten APIs and at the end, which keeps the sweep quick.
        if done % 10 == 0 or done == len(PAIRS):
            running.check(f"up to {SUPPORTED[api_key].name} v{version}")


# Found by the fuzzing below (kept as exact frames): kafka-python decodes a string length below
# -1 as null, as Kafka's own readers refuse; a null group id must end in Kafka's INVALID_GROUP_ID
# or a closed connection, never in a traceback.
FOUND = {
    "group id length -32768": (
        8,
        2,
        bytes.fromhex("8000ffffffff0000ffffffffffffffff00000000"),
    ),
    "group id length -2": (
        11,
        0,
        bytes.fromhex("fffe")
        + struct.pack(">i", 10_000)
        + b"\x00\x00"
        + b"\x00\x08consumer"
        + struct.pack(">i", 0),
    ),
}


def test_it_survives_the_frames_fuzzing_found(running) -> None:
    for what, (api_key, version, body) in FOUND.items():
        _fuzz(running, api_key, version, body, what)
        running.check(what)


FUZZ = hypothesis_settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(pair=st.sampled_from(PAIRS), body=st.binary(max_size=300))
def test_it_survives_random_bytes_after_a_valid_header(running, pair, body) -> None:
    _fuzz(running, *pair, body, "random body")


@FUZZ
@given(pair=st.sampled_from(PAIRS), data=st.data())
def test_it_survives_a_valid_body_with_bytes_changed(running, pair, data) -> None:
    body = bytearray(_default_body(*pair))
    for _ in range(data.draw(st.integers(1, 4), label="changes")):
        if not body:
            break
        at = data.draw(st.integers(0, len(body) - 1), label="at")
        body[at] = data.draw(
            st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]) | st.integers(0, 255), label="byte"
        )
    tail = data.draw(st.binary(max_size=40), label="tail")
    _fuzz(running, *pair, bytes(body) + tail, "defaults with bytes changed")


# --- SASL --------------------------------------------------------------------------------------


def _request(request, version: int, correlation: int = 1) -> bytes:
    request.with_header(correlation_id=correlation, client_id="fuzz")
    return bytes(request.encode(version=version, header=True, framed=True))


def _plain(username: str, password: str, authzid: str = "") -> bytes:
    return f"{authzid}\0{username}\0{password}".encode()


def test_it_refuses_saslauthenticate_before_saslhandshake_and_closes(running) -> None:
    token = _plain(running.room_code, running.room_secret)
    for version in (0, 1):
        mark = running.errors.mark()
        sent = _request(SaslAuthenticateRequest(auth_bytes=token), version)
        outcome = exchange(running.port, sent)
        assert len(outcome.answers) == 1 and outcome.closed, (version, outcome)
        answer = SaslAuthenticateResponse.decode(outcome.answers[0], version=version, header=True)
        assert answer.error_code == ILLEGAL_SASL_STATE
        running.check(f"SaslAuthenticate v{version} first", mark)


def test_it_closes_a_connection_that_sends_another_request_during_the_sasl_exchange(running):
    sent = _request(SaslHandshakeRequest(mechanism="PLAIN"), 1, 1) + _request(
        MetadataRequest(topics=None), 1, 2
    )
    outcome = exchange(running.port, sent, answers=2)
    assert len(outcome.answers) == 1 and outcome.closed, outcome
    handshake = SaslHandshakeResponse.decode(outcome.answers[0], version=1, header=True)
    assert handshake.error_code == 0


def test_it_closes_a_connection_that_sends_a_kafka_request_as_the_v0_token(running) -> None:
    """SaslHandshake v0: the next frame is the bare token; a framed Metadata request in its
    place is a token that names nobody, and the connection closes."""
    sent = _request(SaslHandshakeRequest(mechanism="PLAIN"), 0, 1) + _request(
        MetadataRequest(topics=None), 1, 2
    )
    outcome = exchange(running.port, sent, answers=3)
    assert outcome.closed, outcome
    assert SaslHandshakeResponse.decode(outcome.answers[0], version=0, header=True).error_code == 0


def test_it_refuses_a_second_sasl_exchange_after_logging_in(running) -> None:
    token = _plain(running.room_code, running.room_secret)
    again = {
        "SaslHandshake": (_request(SaslHandshakeRequest(mechanism="PLAIN"), 1, 3), 17),
        "SaslAuthenticate": (_request(SaslAuthenticateRequest(auth_bytes=token), 1, 3), 36),
    }
    for what, (second, key) in again.items():
        mark = running.errors.mark()
        sent = (
            _request(SaslHandshakeRequest(mechanism="PLAIN"), 1, 1)
            + _request(SaslAuthenticateRequest(auth_bytes=token), 1, 2)
            + second
        )
        outcome = exchange(running.port, sent, answers=3)
        assert len(outcome.answers) == 3 and outcome.closed, (what, outcome)
        logged_in = SaslAuthenticateResponse.decode(outcome.answers[1], version=1, header=True)
        assert logged_in.error_code == 0
        answer = SUPPORTED[key].response.decode(outcome.answers[2], version=1, header=True)
        assert answer.error_code == ILLEGAL_SASL_STATE, what
        running.check(f"a second {what}", mark)


def test_it_answers_an_unknown_sasl_mechanism_with_the_one_it_has(running) -> None:
    for mechanism in ("SCRAM-SHA-256", "GSSAPI", "", "plain", "PLAIN\x00"):
        mark = running.errors.mark()
        outcome = exchange(running.port, _request(SaslHandshakeRequest(mechanism=mechanism), 1))
        assert outcome.answers, (mechanism, outcome)
        answer = SaslHandshakeResponse.decode(outcome.answers[0], version=1, header=True)
        assert answer.error_code == UNSUPPORTED_SASL_MECHANISM, mechanism
        assert list(answer.mechanisms) == ["PLAIN"]
        running.check(f"mechanism {mechanism!r}", mark)


def _bad_tokens(running: Running) -> dict[str, bytes]:
    code, secret = running.room_code, running.room_secret
    return {
        "wrong password": _plain(code, secret + "x"),
        "empty password": _plain(code, ""),
        "unknown room": _plain("NOSUCH1", secret),
        "empty username": _plain("", secret),
        "other authzid": _plain(code, secret, authzid="KAFKA7"),
        "unknown student": _plain(f"{code}.999999", secret),
        "student not a number": _plain(f"{code}.x", secret),
        "student too long": _plain(f"{code}.{'9' * 40}", secret),
        "room too long": _plain("A" * 300, secret),
        "no separators": f"{code}{secret}".encode(),
        "two parts": f"{code}\0{secret}".encode(),
        "four parts": f"\0{code}\0{secret}\0".encode(),
        "not utf-8": b"\0\xff\xfe\xc0\0\xff",
        "empty": b"",
        "big": b"\0" + b"A" * 100_000 + b"\0" + b"B" * 100_000,
    }


@pytest.mark.parametrize("handshake", [0, 1])
def test_it_refuses_wrong_credentials_and_closes(running, handshake) -> None:
    for what, token in _bad_tokens(running).items():
        mark = running.errors.mark()
        hello = _request(SaslHandshakeRequest(mechanism="PLAIN"), handshake, 1)
        if handshake == 1:
            sent = hello + _request(SaslAuthenticateRequest(auth_bytes=token), 1, 2)
        else:
            sent = hello + framed(token)
        outcome = exchange(running.port, sent, answers=2)
        assert outcome.closed, f"{what}: still open: {outcome}"
        if handshake == 1:
            assert len(outcome.answers) == 2, (what, outcome)
            answer = SaslAuthenticateResponse.decode(outcome.answers[1], version=1, header=True)
            assert answer.error_code == SASL_FAILED, (what, answer)
            assert answer.error_message, what
        running.check(f"SASL v{handshake} {what}", mark)


# --- the connection as a stream ----------------------------------------------------------------


def test_it_answers_pipelined_requests_in_order_then_closes_on_the_bad_one(running) -> None:
    good = b"".join(_request(ApiVersionsRequest(), 0, n) for n in range(1, 4))
    outcome = exchange(running.port, good + framed(header(4, 0) + b"\x00" * 8), answers=4)
    assert outcome.closed and len(outcome.answers) == 3, outcome
    ids = [
        ApiVersionsResponse.decode(a, version=0, header=True).header.correlation_id
        for a in outcome.answers
    ]
    assert ids == [1, 2, 3]


def test_it_goes_on_after_many_clients_reset_their_connections_mid_frame(running) -> None:
    sockets = []
    try:
        for n in range(40):
            sock = socket.create_connection((HOST, running.port), timeout=5)
            part = _request(MetadataRequest(topics=None), 1, n)
            sock.sendall(part[: len(part) // 2 + n % 3])
            sockets.append(sock)
    finally:
        for sock in sockets:
            with contextlib.suppress(OSError):
                # SO_LINGER 0: the close is a reset, not a FIN.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
    time.sleep(0.3)
