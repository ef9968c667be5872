"""The addresses of this machine that other machines can reach, found when the process starts.

A phone in a classroom sends `Host: <lan-ip>:<port>`: the settings answer to these addresses
(ALLOWED_HOSTS), and the presenter view puts the best of them in the join URL and its QR code.
Standard library only, no command run: Linux lists every local address in /proc/net/fib_trie;
elsewhere the address of the default route (a UDP "connect", which sends nothing) and the
host name's addresses are what can be known.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from pathlib import Path

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")

FIB_TRIE = Path("/proc/net/fib_trie")


def _fib_trie_addresses(text: str) -> list[str]:
    """Local IPv4 addresses in the kernel's routing trie: an `|-- a.b.c.d` line followed by
    `/32 host LOCAL` is one of this machine's own addresses."""
    found: list[str] = []
    previous = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("/32 host LOCAL") and previous.startswith("|-- "):
            found.append(previous[4:].strip())
        previous = stripped
    return found


def _default_route_address() -> str | None:
    """The source address this machine would use to reach the outside (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # TEST-NET-1: never answered, never needed
        except OSError:
            return None
        return sock.getsockname()[0]


def _host_name_addresses() -> list[str]:
    try:
        infos = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
    except OSError:
        return []
    return [info[4][0] for info in infos]


def _rank(address: str, default: str | None) -> tuple[int, int]:
    """Best first: the default route's address, then private (LAN) addresses, then the rest;
    container bridges (172.17-31.x) after real LANs because a phone cannot reach them."""
    ip = ipaddress.ip_address(address)
    if address == default:
        return (0, 0)
    if ip in ipaddress.ip_network("192.168.0.0/16"):
        return (1, 0)
    if ip in ipaddress.ip_network("10.0.0.0/8"):
        return (1, 1)
    if ip in ipaddress.ip_network("172.16.0.0/12"):
        return (1, 2)
    if ip.is_link_local:
        return (3, 0)
    return (2, 0)


def machine_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses, the one a phone most likely reaches first."""
    candidates: list[str] = []
    with contextlib.suppress(OSError):  # not Linux: the other two ways still answer
        candidates += _fib_trie_addresses(FIB_TRIE.read_text())
    default = _default_route_address()
    if default:
        candidates.append(default)
    candidates += _host_name_addresses()
    unique: list[str] = []
    for address in candidates:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            continue
        if ip.is_loopback or ip.is_unspecified or ip.is_multicast or address in unique:
            continue
        unique.append(address)
    return sorted(unique, key=lambda a: _rank(a, default))


def host_names() -> list[str]:
    """The names a LAN may know this machine by: its host name and its mDNS name."""
    name = socket.gethostname().strip().lower()
    if not name or name == "localhost":
        return []
    return [name] if name.endswith(".local") else [name, f"{name}.local"]


def is_loopback_host(host: str) -> bool:
    """Whether a Host header's host part (no port) names this machine's loopback."""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":  # `make classroom` prints where phones can reach the server
    print(" ".join(machine_addresses()))


def host_without_port(host_header: str) -> str:
    """The host of a Host header ("192.168.1.20:8000" -> "192.168.1.20", "[::1]:8000" ->
    "[::1]"): where a Kafka client should connect, on the listener's own port."""
    if host_header.startswith("["):
        return host_header[: host_header.rindex("]") + 1]
    return host_header.split(":")[0]
