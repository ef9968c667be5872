"""The fan-out baseline: a bare `websockets` broadcast server, nothing else.

`python -m bench.bare_server PORT`. Clients connect to `/`; a producer connects to `/produce`
and each text it sends (the send time, in ns) is broadcast to every client at once, shaped like
a LogLab event so the same client code measures both. Runs until terminated.
"""

from __future__ import annotations

import asyncio
import json
import sys

from websockets.asyncio.server import ServerConnection, broadcast, serve

clients: set[ServerConnection] = set()
seq = 0


async def handler(connection: ServerConnection) -> None:
    global seq
    if connection.request is not None and connection.request.path == "/produce":
        async for sent_ns in connection:
            seq += 1
            event = {
                "seq": seq,
                "type": "records.produced",
                "payload": {"records": [{"value": sent_ns}]},
            }
            broadcast(clients, json.dumps(event, separators=(",", ":")))
        return
    clients.add(connection)
    try:
        await connection.wait_closed()
    finally:
        clients.discard(connection)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, ping_interval=None) as server:
        print("READY", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
