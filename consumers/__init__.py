"""Kafka consumers: intake, projector, watchdog and alerts."""
