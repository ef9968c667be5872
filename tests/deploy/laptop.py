"""A learner's laptop on the LAN, run in the second host's network namespace: a real Kafka
client (kafka-python) reaches LogLab's listener through the LAN address.

Prints what the test checks: the brokers Metadata advertised (they must be the LAN address,
or this laptop could not reach the partition leaders), then the record it read back.
"""

from __future__ import annotations

import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition


def main(bootstrap: str) -> int:
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="laptop", acks="all")
    brokers = sorted(f"{b.host}:{b.port}" for b in producer._metadata.brokers())
    sent = producer.send("laptop", key=b"from-the-lan", value=b"hello").get(timeout=30)
    producer.close()
    print("BROKERS", ",".join(brokers), flush=True)
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, client_id="laptop", consumer_timeout_ms=10_000
    )
    consumer.assign([TopicPartition("laptop", sent.partition)])
    consumer.seek(TopicPartition("laptop", sent.partition), sent.offset)
    record = next(iter(consumer))
    consumer.close()
    print("READ", record.key.decode(), record.value.decode(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
