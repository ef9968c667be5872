"""LogLab's JSON APIs for learners' own code.

`POST /api/rooms` makes a sandbox room; each room then has a Kafka REST API in the shape of
Confluent REST Proxy under `api/kafka/<code>` (`rest_proxy.py`). docs/clients.md shows both.
"""
