"""Real Kafka clients against a real LogLab server (issue #14).

One `manage.py serve` for the whole session (starting it migrates a database: seconds), and a
fresh sandbox room for every test, so tests share nothing but the process. Every client talks
SASL/PLAIN with the room's code and secret, as docs/clients-kafka.md tells learners to.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.support.kafka_server import KafkaRoom, KafkaServer, kafka_serve, room_create


@pytest.fixture(scope="session")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaServer]:
    workdir = tmp_path_factory.mktemp("kafka-server")
    # Kafka's own test clusters set group.initial.rebalance.delay.ms to 0: every group here
    # is new, and 3 s per first join added up. The delay itself is tested in
    # tests/services/test_live_groups.py and seen in tests/browser/test_kafka_clients_board.py.
    with kafka_serve(workdir, LOGLAB_KAFKA_INITIAL_REBALANCE_DELAY_MS="0") as server:
        yield server
        if server.process.poll() is not None:
            pytest.fail(f"the server died during the tests:\n{server.log()[-4000:]}")


@pytest.fixture
def room(kafka_server: KafkaServer, request: pytest.FixtureRequest) -> KafkaRoom:
    return room_create(kafka_server, title=request.node.name[:80])


@pytest.fixture(scope="session")
def kcat() -> str:
    path = shutil.which("kcat")
    if path is None:
        pytest.fail(
            "kcat is not installed: `make test` installs Debian's kcat (scripts/ensure-kcat), "
            "or run scripts/ensure-kcat.",
            pytrace=False,
        )
    return path
