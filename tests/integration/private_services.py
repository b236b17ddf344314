"""Throwaway services for outage tests: a PostgreSQL cluster and a Kafka broker of their own, on free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

from infra.kafka import broker
from infra.settings import Settings

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ROLE = DATABASE = PASSWORD = "nettask"


def free_port() -> int:
    """A port nothing listens on right now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrivatePostgres:
    """A PostgreSQL 15 cluster in a temporary folder, on a free port, with the project's role and database.

    initdb refuses to run as root, so as root every server command runs as the `postgres` user, which then
    owns the folder. Stopping it with `stop()` and starting it again is what the outage tests do.
    """

    def __init__(self):
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="nettask-pg-"))
        self.data = self.directory / "data"
        self._as_root = os.geteuid() == 0
        if self._as_root:
            shutil.chown(self.directory, "postgres", "postgres")

    def create(self) -> PrivatePostgres:
        """1. initdb (password auth over TCP), 2. start, 3. create the role and its database."""
        pwfile = self.directory / "pw"
        pwfile.write_text(PASSWORD)
        if self._as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(
            PG_BIN / "initdb", "-D", self.data, "-U", "postgres", "--auth-local=trust",
            "--auth-host=scram-sha-256", f"--pwfile={pwfile}",
        )  # fmt: skip
        self.start()
        sql = f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'; CREATE DATABASE {DATABASE} OWNER {ROLE};"
        for statement in sql.split("; "):
            self._run(PG_BIN / "psql", "-h", self.directory, "-p", self.port, "-U", "postgres", "-c", statement)
        return self

    def start(self) -> None:
        self._run(
            PG_BIN / "pg_ctl", "-D", self.data, "-l", self.directory / "server.log", "-w", "-t", "60",
            "-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when the server is restarted under its clients."""
        self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", "60", "stop")

    def settings(self, **changes) -> Settings:
        return Settings(store="postgres", postgres_port=self.port, postgres_user=ROLE, postgres_password=PASSWORD,
                        postgres_dbname=DATABASE, **changes)  # fmt: skip

    def accepting(self) -> bool:
        try:
            psycopg.connect(self.settings().postgres_dsn(), connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(PG_BIN / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", check=False)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, *args, check: bool = True) -> None:
        command = [str(a) for a in args]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip() or result.stdout.strip()}")


class PrivateKafka:
    """A one-node broker of the project's own kind (infra/kafka) with its own var dir and free ports."""

    def __init__(self, var_dir: Path):
        self.settings = Settings(var_dir=var_dir, kafka_port=free_port(), kafka_controller_port=free_port())
        self.bootstrap = ""

    def start(self) -> str:
        self.bootstrap = broker.start(self.settings)
        return self.bootstrap

    def stop(self) -> None:
        broker.stop(self.settings)
