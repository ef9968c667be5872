"""Protocol adapters for learners' own code, each thin over the same services as the pages.

`rooms.py` makes sandbox rooms (`POST /api/rooms`); `kafka_rest.py` is a Kafka REST API in the
shape of Confluent REST Proxy v2 and v3 under `api/kafka/<code>`; `sqs.py` is the SQS endpoint
(AWS JSON 1.0) that boto3 speaks, with `sqs_actions.py` answering each action in SQS's own
terms; `errors.py` holds each protocol's error shapes. docs/clients.md shows them all.
"""
