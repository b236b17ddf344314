"""The keyword arguments every kafka-python client of the project takes to reach a secured cluster."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from infra.settings import Settings


def security_config(settings: Settings) -> dict[str, Any]:
    """security_protocol and, as the protocol needs them, the SASL and TLS arguments of kafka-python's clients.

    The same dict fits KafkaProducer, KafkaConsumer and KafkaAdminClient: pass it as ``**security_config(s)``.
    """
    protocol = settings.kafka_security_protocol
    config: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL_"):
        assert settings.kafka_sasl_password is not None  # the settings refuse SASL without one
        config |= {
            "sasl_mechanism": settings.kafka_sasl_mechanism,
            "sasl_plain_username": settings.kafka_sasl_username,
            "sasl_plain_password": settings.kafka_sasl_password.get_secret_value(),
        }
    if protocol.endswith("SSL"):
        config["ssl_check_hostname"] = settings.kafka_ssl_check_hostname
        # Unset files are left out: kafka-python then trusts the system's certificate authorities.
        for name in ("cafile", "certfile", "keyfile"):
            path = getattr(settings, f"kafka_ssl_{name}")
            if path is not None:
                config[f"ssl_{name}"] = str(path)
    return config


class ConnectionFailures(logging.Handler):
    """What kafka-python logged about failed connections: it retries until its deadline and keeps the reason.

    While installed on the ``kafka`` logger it also keeps those lines off stderr, where Python would print them.
    """

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

    def reason(self) -> str:
        """The most telling line: the last authentication or authorization failure, else the last failure."""
        telling = [m for m in self.messages if "AuthenticationFailed" in m or "AuthorizationFailed" in m]
        return (telling or self.messages or ["no reason given"])[-1]


@contextmanager
def connection_failures() -> Iterator[ConnectionFailures]:
    handler = ConnectionFailures()
    logger = logging.getLogger("kafka")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
