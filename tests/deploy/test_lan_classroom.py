"""A class on a LAN, for real: a phone on a second host joins through the LAN address.

The second host is a network namespace joined to this one by a veth pair (a /30 of our own,
10.77.x.0/30). The server is started the way the README says, `make classroom`, on a free
port and a database of its own. The instructor signs up and opens the presenter view on
127.0.0.1; the phone (tests/deploy/phone.py, run with `ip netns exec`) opens the join URL that
page shows, joins, and keeps its websocket while the instructor changes the clock.
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
import qrcode
from qrcode.image.svg import SvgPathImage

from tests.support.server import ROOT, wait_serving

PHONE = Path(__file__).with_name("phone.py")
LAPTOP = Path(__file__).with_name("laptop.py")


def _netns_missing() -> str | None:
    """Why this machine cannot make a second host, or None when it can."""
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    if os.geteuid() != 0:
        return "`ip netns` needs root"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`ip netns` does not work here: {probe.stderr.strip()}"
    return None


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", "netns", "exec", netns, "ip", *args] if netns else ["ip", *args]
    subprocess.run(command, check=True, capture_output=True, text=True)


@dataclass
class SecondHost:
    netns: str
    lan_address: str  # this machine's end of the veth: the phone's LAN reaches it


def _free_subnet() -> int:
    used = subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
    for offset in range(250):
        third = (os.getpid() + offset) % 250 + 1
        if f"10.77.{third}." not in used:
            return third
    raise RuntimeError("no free 10.77.x.0/30 for the test's second host")


@contextmanager
def second_host() -> Iterator[SecondHost]:
    """A network namespace with a veth to this one; removed (with both veth ends) whatever
    happens in the test."""
    tag = f"{os.getpid() % 100000}{os.urandom(2).hex()}"
    netns, here, there = f"loglab-phone-{tag}", f"llh{tag}", f"llp{tag}"
    third = _free_subnet()
    lan, phone = f"10.77.{third}.1", f"10.77.{third}.2"
    try:
        _ip("netns", "add", netns)
        _ip("link", "add", here, "type", "veth", "peer", "name", there)
        _ip("link", "set", there, "netns", netns)
        _ip("addr", "add", f"{lan}/30", "dev", here)
        _ip("link", "set", here, "up")
        _ip("addr", "add", f"{phone}/30", "dev", there, netns=netns)
        _ip("link", "set", there, "up", netns=netns)
        _ip("link", "set", "lo", "up", netns=netns)
        # Everything else through this machine, as a LAN's router would: the join URL may name
        # another of its addresses (the one of its default route).
        _ip("route", "add", "default", "via", lan, netns=netns)
        yield SecondHost(netns=netns, lan_address=lan)
    finally:
        subprocess.run(["ip", "link", "del", here], capture_output=True)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("0.0.0.0", 0))
        return sock.getsockname()[1]


@contextmanager
def make_classroom(port: int, database: Path, kafka_port: int) -> Iterator[str]:
    """`make classroom` (the README's command) on `port` (and `kafka_port` for the Kafka
    protocol), with its own SQLite file."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE", "ALLOWED_HOSTS"}
        and not k.startswith(("MAKE", "MFLAGS", "LOGLAB_PUBLIC_URL", "WEB_CONCURRENCY"))
    }
    env.update(SQLITE_PATH=str(database), PYTHONUNBUFFERED="1")
    log = tempfile.NamedTemporaryFile(prefix="loglab-classroom-", suffix=".log", delete=False)  # noqa: SIM115
    process = subprocess.Popen(
        ["make", "--no-print-directory", "classroom", f"PORT={port}", f"KAFKA_PORT={kafka_port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make, uvicorn and all: one process group to stop
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_serving(
            base,
            process,
            timeout=300,  # make's setup: migrations, lessons, static files
            log_tail=lambda: Path(log.name).read_text(errors="replace"),
            what="`make classroom`",
            interval=0.25,
        )
        yield base
    finally:
        with suppress(ProcessLookupError):  # it may have stopped on its own
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
        Path(log.name).unlink(missing_ok=True)


class Browser:
    """The instructor's browser on the projector machine: cookies and Django's CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[str, str]:
        with self.opener.open(self.base + path, timeout=30) as response:
            return response.url, response.read().decode()

    def post(self, path: str, fields: dict[str, str]) -> tuple[str, str]:
        token = next(c.value for c in self.jar if c.name == "csrftoken")
        data = urllib.parse.urlencode({**fields, "csrfmiddlewaretoken": token}).encode()
        request = urllib.request.Request(
            self.base + path, data=data, headers={"Origin": self.base, "Referer": self.base}
        )
        with self.opener.open(request, timeout=30) as response:
            return response.url, response.read().decode()


def _read_line(process: subprocess.Popen, prefix: str, timeout: float = 45) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return line.strip()
        if line.startswith("FAIL"):
            break
    process.kill()
    out, err = process.communicate()
    raise AssertionError(f"the phone never said {prefix!r}; it said {line!r}{out}\n{err[-3000:]}")


def test_it_lets_a_phone_on_the_lan_join_with_the_url_on_the_projector(tmp_path):
    reason = _netns_missing()
    if reason:
        print(f"skipped: {reason}")
        pytest.skip(f"no second host: {reason}")
    with second_host() as host:
        port, kafka_port = _free_port(), _free_port()
        with make_classroom(port, tmp_path / "classroom.sqlite3", kafka_port) as base:
            instructor = Browser(base)
            instructor.get("/accounts/signup/")
            password = "a-long-classroom-password"
            url, _ = instructor.post(
                "/accounts/signup/",
                {"username": "ada", "password1": password, "password2": password},
            )
            assert url.endswith("/classrooms/")
            url, page = instructor.post("/classrooms/new/", {"title": "LAN class"})
            code = re.search(r"/r/([A-Z0-9]+)/present/$", url).group(1)

            join_url = re.search(r'<p class="present-url"><a href="([^"]+)"', page).group(1)
            shown = urllib.parse.urlsplit(join_url)
            # Opened on 127.0.0.1, the projector still shows an address a phone can reach.
            assert shown.hostname not in {"127.0.0.1", "localhost"}
            assert (shown.port, shown.path) == (port, f"/j/{code}/")
            qr = qrcode.make(join_url, image_factory=SvgPathImage).to_string(encoding="unicode")
            assert qr in page
            assert "phones cannot" not in page  # no loopback warning on a LAN

            # The app answers to every address of the machine, the veth's too.
            lan_join = f"http://{host.lan_address}:{port}/j/{code}/"
            for name, phone_url in (("Phone A", join_url), ("Phone B", lan_join)):
                phone = subprocess.Popen(
                    ["ip", "netns", "exec", host.netns, sys.executable, str(PHONE)]
                    + [phone_url, code, name],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
                try:
                    assert _read_line(phone, "JOIN-PAGE") == "JOIN-PAGE 200"
                    assert _read_line(phone, "JOINED") == f"JOINED 200 /r/{code}/me/"
                    _read_line(phone, "CONNECTED")
                    instructor.post(f"/r/{code}/present/clock/", {"action": "speed", "speed": "2"})
                    assert '"speed": 2' in _read_line(phone, "EVENT1")
                    _read_line(phone, "ALIVE")
                    instructor.post(f"/r/{code}/present/clock/", {"action": "speed", "speed": "5"})
                    assert '"speed": 5' in _read_line(phone, "EVENT2")
                    assert phone.wait(timeout=30) == 0
                finally:
                    if phone.poll() is None:
                        phone.kill()
                    phone.communicate()
                # Each phone is a student on the projector's roster.
                _, roster = instructor.get(f"/r/{code}/present/students/")
                assert name in roster

            # A learner's own Kafka client on the LAN: Metadata sends it back to the address
            # it came in on, never to 127.0.0.1, so its produce and fetch reach the leader.
            laptop = subprocess.run(
                ["ip", "netns", "exec", host.netns, sys.executable, str(LAPTOP)]
                + [f"{host.lan_address}:{kafka_port}"],
                capture_output=True,
                text=True,
                timeout=90,
                cwd=ROOT,
            )
            assert laptop.returncode == 0, laptop.stderr[-3000:]
            lines = dict(line.split(" ", 1) for line in laptop.stdout.splitlines())
            # The demo room runs three brokers (#16), each on its own port, all at the LAN
            # address; broker 1 on the listener's port.
            advertised = lines["BROKERS"].split(",")
            assert len(advertised) == 3, advertised
            assert all(b.startswith(f"{host.lan_address}:") for b in advertised), advertised
            assert f"{host.lan_address}:{kafka_port}" in advertised
            assert lines["READ"] == "from-the-lan hello"
