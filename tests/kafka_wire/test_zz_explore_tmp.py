import random, re
from tests.kafka_wire.test_listener_fuzz import running, PAIRS, _default_body, exchange, framed, header, SUPPORTED  # noqa

def test_explore(running):
    rng = random.Random(1)
    seen = {}
    for i in range(3000):
        pair = rng.choice(PAIRS)
        body = bytearray(_default_body(*pair))
        if rng.random() < 0.3:
            body = bytearray(rng.randbytes(rng.randint(0, 200)))
        else:
            for _ in range(rng.randint(1, 4)):
                if body:
                    body[rng.randrange(len(body))] = rng.choice([0, 1, 0x7f, 0x80, 0xff, rng.randrange(256)])
            body += rng.randbytes(rng.randint(0, 30))
        mark = running.errors.mark()
        data = framed(header(*pair) + bytes(body))
        exchange(running.port, data, seconds=0.5)
        for text in running.errors.since(mark):
            last = [l for l in text.splitlines() if l.strip()][-1]
            where = re.findall(r'File "([^"]+)", line (\d+), in (\w+)', text)[-1]
            sig = (last[:120], where)
            if sig not in seen:
                seen[sig] = (SUPPORTED[pair[0]].name, pair[1], data.hex())
        running.errors.records.clear() if False else None
    for sig, ex in seen.items():
        print("\nSIG", sig, "\nEX", ex)
    running.errors.records.clear()
