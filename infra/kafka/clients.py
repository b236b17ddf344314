"""The keyword arguments every kafka-python client of the project takes to reach a secured cluster."""

from __future__ import annotations

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
