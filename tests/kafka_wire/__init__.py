"""The Kafka wire protocol's record batches against kafka-python's own reader and writer."""
