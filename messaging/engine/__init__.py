"""LogLab's functional core: how Kafka, SQS FIFO and classic brokers decide things.

Pure Python with no Django import, no I/O and no clock of its own: plain data in, plain data
out, deterministic for a given seed and virtual time. The services in ``messaging.services``
ask it for every decision and store what it returns.
"""
