"""The Kafka wire protocol: record batches (magic 2) read from Produce, written for Fetch."""
