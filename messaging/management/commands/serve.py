"""`manage.py serve`: the web app and the Kafka protocol, in one process (what `make run` runs).

The web app is uvicorn serving config.asgi; the Kafka listener (messaging/api/kafka_wire) runs
on the same event loop, so with the in-memory channel layer a real client's records and the
board's websockets meet in the same process. `--kafka-port 0` (or LOGLAB_KAFKA_PORT=0) serves
the web app alone.
"""

from __future__ import annotations

import asyncio
import os

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from messaging.api.kafka_wire.server import Listener


class Command(BaseCommand):
    help = "Serve the web app (ASGI) and the Kafka protocol in one process."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--kafka-port",
            type=int,
            default=settings.LOGLAB_KAFKA_PORT,
            help="the Kafka protocol's port (default LOGLAB_KAFKA_PORT, 9092; 0: none)",
        )
        parser.add_argument(
            "--kafka-only",
            action="store_true",
            help="no web app: the Kafka listener beside several web processes (make run WORKERS=N)",
        )

    def handle(
        self, *args, host: str, port: int, kafka_port: int, kafka_only: bool, **options
    ) -> None:
        if not 0 <= kafka_port <= 65535 or not 0 < port <= 65535:
            raise CommandError("A port is 1 to 65535 (--kafka-port 0 turns Kafka off).")
        if kafka_only and not kafka_port:
            raise CommandError("--kafka-only needs a Kafka port.")
        os.environ.setdefault("LOGLAB_BIND_HOST", host)
        settings.LOGLAB_KAFKA_PORT = kafka_port
        # The web app's modules (uvicorn imports the same one) before the collector is tuned:
        # startup objects are frozen then, and --kafka-only needs the ASGI app's imports too.
        import config.asgi  # noqa: F401

        asyncio.run(self._serve(host, port, kafka_port, kafka_only))

    async def _serve(self, host: str, port: int, kafka_port: int, kafka_only: bool) -> None:
        config = uvicorn.Config(
            "config.asgi:application",
            host=host,
            port=port,
            lifespan="off",
            access_log=False,
            log_level="info",
        )
        server = uvicorn.Server(config)
        listener = None
        if kafka_port:
            listener = Listener(host, kafka_port)
            try:
                await listener.start()
            except OSError as error:
                raise CommandError(
                    f"The Kafka port {host}:{kafka_port} is taken ({error.strerror}): stop "
                    "what uses it, or pick another with --kafka-port (0: no Kafka)."
                ) from None
            # What the APIs tell clients to connect to (the port asked may have been 0).
            settings.LOGLAB_KAFKA_PORT = listener.port
        try:
            if kafka_only:
                await asyncio.Event().wait()
            else:
                await server.serve()
        finally:
            if listener is not None:
                await listener.stop()
