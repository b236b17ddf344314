"""How long `nettask relay|intake|run` take to exit with their error line when Kafka or PostgreSQL is unreachable."""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

NETTASK = Path(sys.executable).with_name("nettask")
RUNS = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def timed(args: list[str], env: dict[str, str]) -> tuple[float, int, str]:
    """Seconds to exit, the exit code, and the `error:` line (or the last line of stderr)."""
    with tempfile.TemporaryDirectory() as var:
        started = time.monotonic()
        result = subprocess.run([str(NETTASK), *args], env={**env, "NETTASK_VAR_DIR": var}, cwd=var,
                                capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
        elapsed = time.monotonic() - started
    lines = result.stderr.splitlines()
    error = next((line for line in lines if line.startswith("error:")), lines[-1] if lines else "")
    return elapsed, result.returncode, error


def main() -> None:
    """Kafka: a port nothing listens on. PostgreSQL: likewise, with Kafka from KAFKA_BOOTSTRAP_SERVERS."""
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    cases = {"kafka unreachable": {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"}}
    if kafka:
        suffix = f"bench.failfast.{os.getpid()}"
        cases["postgres unreachable"] = {
            "KAFKA_BOOTSTRAP_SERVERS": kafka, "NETTASK_STORE": "postgres", "NETTASK_POSTGRES_PORT": str(free_port()),
            "NETTASK_TOPIC_COMMANDS": f"{suffix}.commands", "NETTASK_TOPIC_COMMANDS_DLQ": f"{suffix}.dlq",
            "NETTASK_TOPIC_EVENTS": f"{suffix}.events", "NETTASK_TOPIC_SLA_ALERTS": f"{suffix}.alerts",
        }  # fmt: skip
    else:
        print("KAFKA_BOOTSTRAP_SERVERS unset: the PostgreSQL case needs a broker and is not measured")
    print(f"{'case':<22} {'command':<8} {'median s':>9} {'max s':>7} exit  error line")
    for case, extra in cases.items():
        for command in ("relay", "intake", "run"):
            runs = [timed([command], {**os.environ, **extra}) for _ in range(RUNS)]
            seconds = [s for s, _, _ in runs]
            _, code, error = runs[-1]
            print(f"{case:<22} {command:<8} {statistics.median(seconds):>9.2f} {max(seconds):>7.2f} {code:>4}  {error}")
    if kafka:
        from infra.kafka import topics

        for name in ("commands", "dlq", "events", "alerts"):
            topics.delete_topic(kafka, f"{suffix}.{name}")


if __name__ == "__main__":
    main()
