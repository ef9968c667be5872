"""LogLab's SQS endpoint: the AWS JSON 1.0 protocol that the AWS SDKs speak to SQS.

`views.py` only translates the wire protocol; every rule is the engine's
(`messaging.engine.sqs`) or the services' (`messaging.services.sqs_api`, which builds on
`messaging.services.queues`). See docs/clients-sqs.md.
"""
