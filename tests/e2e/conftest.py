"""End-to-end tests use the integration tier's real broker and its per-test topics."""

from tests.integration.conftest import group_id, kafka_bootstrap, topic_name  # noqa: F401
