"""A component that cannot reach Kafka or PostgreSQL exits 1 with one `error:` line naming it, and no traceback.

Gives up after its restart limit, too: `nettask run` exits 1 naming the component that kept failing.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.cli import app
from infra.settings import Settings
from tests.integration.helpers import component_env, delete_pipeline_topics, pipeline_settings, wait_until
from tests.integration.private_services import free_port

pytestmark = [pytest.mark.kafka]

NETTASK = Path(sys.executable).with_name("nettask")
# A bound on the wait, far above the few seconds it takes: how fast is measured by bench/fail_fast.py.
EXIT_WITHIN_S = 90
# What `nettask run` starts, as it names them when it is running.
ALL_COMPONENTS = "intake, relay, projector, alerts, watchdog"


def nettask(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(NETTASK), *args], env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=EXIT_WITHIN_S, check=False)  # fmt: skip


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("component", ["relay", "intake", "watchdog", "run"])
def test_kafka_unreachable_exits_1_with_one_line_naming_the_address(component, sqlite_settings, tmp_path):
    address = f"127.0.0.1:{free_port()}"
    env = component_env(sqlite_settings, address, tmp_path)
    result = nettask([component], env, tmp_path)
    assert result.returncode == 1, result.stderr
    assert error_lines(result.stderr) == [
        f"error: Kafka at {address} is unreachable or refused: KafkaTimeoutError: Unable to bootstrap from {address}"
    ]
    assert "Traceback" not in result.stderr


@pytest.fixture
def postgres_nowhere(kafka_bootstrap: str, tmp_path: Path):
    """Settings of a PostgreSQL store on a port nothing listens on, with topics on the test broker."""
    settings = pipeline_settings(Settings(store="postgres", postgres_port=free_port()), kafka_bootstrap)
    yield settings
    delete_pipeline_topics(kafka_bootstrap, settings)


@pytest.mark.parametrize("component", ["relay", "intake", "run"])
def test_postgres_unreachable_exits_1_with_one_line_naming_host_and_port(component, postgres_nowhere, kafka_bootstrap,
                                                                         tmp_path):  # fmt: skip
    env = component_env(postgres_nowhere, kafka_bootstrap, tmp_path) | {
        "NETTASK_POSTGRES_PORT": str(postgres_nowhere.postgres_port)
    }
    result = nettask([component], env, tmp_path)
    assert result.returncode == 1, result.stderr
    where = f"127.0.0.1:{postgres_nowhere.postgres_port}"
    assert error_lines(result.stderr) == [
        f"error: PostgreSQL at {where} (database nettask) is unreachable: Connection refused"
    ]
    assert "Traceback" not in result.stderr


def test_the_store_build_of_sla_explain_fails_in_one_line(monkeypatch):
    port = free_port()
    monkeypatch.setenv("NETTASK_STORE", "postgres")
    monkeypatch.setenv("NETTASK_POSTGRES_PORT", str(port))
    result = CliRunner().invoke(app, ["sla", "explain", "481b2ff6-97c1-5bec-8cc0-c70713fd3ae3"])
    assert result.exit_code == 1
    where = f"127.0.0.1:{port} (database nettask)"
    assert result.stderr == f"error: PostgreSQL at {where} is unreachable: Connection refused\n"


@pytest.mark.slow
def test_run_restarts_the_relay_then_gives_up_naming_it_when_postgres_stays_away(private_postgres, kafka_bootstrap,
                                                                                 tmp_path):  # fmt: skip
    settings = pipeline_settings(private_postgres.settings(), kafka_bootstrap)
    env = component_env(settings, kafka_bootstrap, tmp_path) | {
        "NETTASK_POSTGRES_PORT": str(private_postgres.port),
        # Two tries per read and one restart: the test is about what happens at the limit, not how long it takes.
        "NETTASK_RETRY_ATTEMPTS": "2",
        "NETTASK_RESTART_LIMIT": "1",
    }
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([str(NETTASK), "run"], env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: f"running {ALL_COMPONENTS} against" in log_path.read_text(), 60), log_path.read_text()
        private_postgres.stop()
        returncode = process.wait(timeout=EXIT_WITHIN_S)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait(30)
        delete_pipeline_topics(kafka_bootstrap, settings)
    output = log_path.read_text()
    assert returncode == 1, output
    assert "relay failed, restarting it" in output
    errors = error_lines(output)
    assert len(errors) == 1, output
    assert errors[0].startswith("error: relay failed 2 times within 600 s, giving up; last error: ")
    assert f"PostgreSQL at 127.0.0.1:{private_postgres.port}" in errors[0]
    assert "Traceback" not in output


def test_run_stopped_by_sigterm_exits_0(sqlite_settings, kafka_bootstrap, tmp_path):
    settings = pipeline_settings(sqlite_settings, kafka_bootstrap)
    log_path = tmp_path / "run.log"
    with log_path.open("w") as log:
        process = subprocess.Popen([str(NETTASK), "run"], env=component_env(settings, kafka_bootstrap, tmp_path),
                                   cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        assert wait_until(lambda: f"running {ALL_COMPONENTS} against" in log_path.read_text(), 60), log_path.read_text()
        process.send_signal(signal.SIGTERM)
        returncode = process.wait(timeout=EXIT_WITHIN_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
        delete_pipeline_topics(kafka_bootstrap, settings)
    assert returncode == 0, log_path.read_text()
    assert "stopped; intake:" in log_path.read_text()
