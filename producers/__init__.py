"""Publishers onto Kafka: the outbox relay and the command client for other services."""
