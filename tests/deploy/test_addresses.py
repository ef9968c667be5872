"""Finding this machine's own addresses (messaging/infra/addresses.py)."""

from __future__ import annotations

from messaging.infra import addresses

FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 192.168.1.0/24 2 0 2
        |-- 192.168.1.0
           /24 link UNICAST
        |-- 192.168.1.23
           /32 host LOCAL
     |-- 172.17.0.1
        /32 host LOCAL
"""


def test_it_reads_the_local_addresses_of_the_kernels_routing_trie():
    assert addresses._fib_trie_addresses(FIB_TRIE) == ["127.0.0.1", "192.168.1.23", "172.17.0.1"]


def test_it_puts_the_lan_before_container_bridges_and_leaves_loopback_out(monkeypatch, tmp_path):
    trie = tmp_path / "fib_trie"
    trie.write_text(FIB_TRIE)
    monkeypatch.setattr(addresses, "FIB_TRIE", trie)
    monkeypatch.setattr(addresses, "_default_route_address", lambda: None)
    monkeypatch.setattr(addresses, "_host_name_addresses", lambda: ["127.0.1.1"])
    assert addresses.machine_addresses() == ["192.168.1.23", "172.17.0.1"]


def test_it_puts_the_default_routes_address_first(monkeypatch, tmp_path):
    trie = tmp_path / "fib_trie"
    trie.write_text(FIB_TRIE)
    monkeypatch.setattr(addresses, "FIB_TRIE", trie)
    monkeypatch.setattr(addresses, "_default_route_address", lambda: "172.17.0.1")
    assert addresses.machine_addresses()[0] == "172.17.0.1"


def test_it_knows_loopback_hosts_from_lan_ones():
    for host in ("127.0.0.1", "127.0.1.1", "localhost", "app.localhost", "[::1]", "::1"):
        assert addresses.is_loopback_host(host), host
    for host in ("192.168.1.23", "loglab.example.org", "[fe80::1]"):
        assert not addresses.is_loopback_host(host), host
