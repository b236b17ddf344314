"""Settings, connections, the local Kafka broker and the command line: the composition root."""
