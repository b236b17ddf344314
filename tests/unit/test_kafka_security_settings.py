"""Kafka security settings: what each protocol needs, the one-line errors, and the clients' keyword arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from infra.kafka.clients import security_config
from infra.settings import Settings

SASL = {"kafka_sasl_mechanism": "SCRAM-SHA-256", "kafka_sasl_username": "intake", "kafka_sasl_password": "s3cret"}


def test_plaintext_by_default_gives_only_the_protocol():
    assert security_config(Settings()) == {"security_protocol": "PLAINTEXT"}


def test_sasl_plaintext_gives_mechanism_and_credentials():
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", **SASL)

    assert security_config(settings) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "intake",
        "sasl_plain_password": "s3cret",
    }


def test_the_password_never_shows_in_the_settings_repr():
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", **SASL)

    assert "s3cret" not in repr(settings)


def test_sasl_ssl_gives_credentials_and_the_tls_files(tmp_path: Path):
    ca, cert, key = (tmp_path / name for name in ("ca.pem", "client.pem", "client.key"))
    for path in (ca, cert, key):
        path.write_text("-----BEGIN-----\n")
    settings = Settings(
        kafka_security_protocol="SASL_SSL", kafka_ssl_cafile=ca, kafka_ssl_certfile=cert, kafka_ssl_keyfile=key,
        kafka_ssl_check_hostname=False, **SASL,
    )  # fmt: skip

    config = security_config(settings)

    assert config["security_protocol"] == "SASL_SSL"
    assert config["sasl_plain_username"] == "intake"
    assert (config["ssl_cafile"], config["ssl_certfile"], config["ssl_keyfile"]) == (str(ca), str(cert), str(key))
    assert config["ssl_check_hostname"] is False


def test_ssl_without_files_trusts_the_system_authorities():
    assert security_config(Settings(kafka_security_protocol="SSL")) == {
        "security_protocol": "SSL",
        "ssl_check_hostname": True,
    }


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kafka_security_protocol": "SASL_SSL"}, "SASL_SSL needs NETTASK_KAFKA_SASL_MECHANISM, NETTASK_KAFKA_SASL"),
        (
            {"kafka_security_protocol": "SASL_PLAINTEXT", **SASL, "kafka_sasl_password": ""},
            "SASL_PLAINTEXT needs NETTASK_KAFKA_SASL_PASSWORD",
        ),
        ({"kafka_sasl_username": "intake"}, "NETTASK_KAFKA_SASL_USERNAME set, but .*=PLAINTEXT uses no SASL"),
        ({"kafka_ssl_cafile": "/etc/hostname"}, "NETTASK_KAFKA_SSL_CAFILE set, but .*=PLAINTEXT uses no TLS"),
        ({"kafka_security_protocol": "SSL", "kafka_ssl_cafile": "/no/such/ca.pem"}, "CAFILE=/no/such/ca.pem: no such"),
        (
            {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/etc/hostname"},
            "CERTFILE and .*KEYFILE go together",
        ),
        ({"kafka_security_protocol": "TLS"}, "should be 'PLAINTEXT', 'SSL', 'SASL_PLAINTEXT' or 'SASL_SSL'"),
        ({"kafka_security_protocol": "SASL_SSL", **SASL, "kafka_sasl_mechanism": "GSSAPI"}, "should be 'PLAIN'"),
    ],
)
def test_half_a_security_configuration_is_refused(overrides, message):
    with pytest.raises(ValidationError, match=message):
        Settings(**overrides)


def test_the_command_line_reports_a_bad_setting_in_one_line_without_a_traceback(tmp_path: Path):
    env = {"PATH": "/usr/bin:/bin", "NETTASK_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "HOME": str(tmp_path)}
    nettask = Path(sys.executable).with_name("nettask")

    result = subprocess.run([nettask, "kafka", "topics"], env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: settings: NETTASK_KAFKA_SECURITY_PROTOCOL=SASL_SSL needs NETTASK_KAFKA_SASL_MECHANISM, "
        "NETTASK_KAFKA_SASL_USERNAME, NETTASK_KAFKA_SASL_PASSWORD"
    ]
