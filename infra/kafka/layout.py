"""Where each node of the local cluster keeps its state and which ports it takes; the error every step raises."""

from __future__ import annotations

import contextlib
import fcntl
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from infra.files import private_dir, private_file
from infra.settings import Settings

SUPPORTED_NODES = (1, 3)

Progress = Callable[[str], None]


class BrokerError(RuntimeError):
    """The local broker could not be started, reached or stopped; the first line of the message says why."""


# The storage formatter parses user lists itself ("SCRAM-SHA-256=[name=...,password=...]"): nothing that could
# end a value there, and nothing that would need escaping in the broker's JAAS configuration.
_SASL_WORD = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class SaslListener:
    """An extra client listener, SASL_PLAINTEXT, taking SCRAM-SHA-256 and PLAIN logins of these users.

    Node n listens on ``port + 2 * (n - 1)``; the PLAINTEXT listener stays for the brokers among themselves.
    """

    port: int
    users: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        if not self.users:
            raise BrokerError("a SASL listener needs at least one user")
        for name, password in self.users:
            if not (_SASL_WORD.fullmatch(name) and _SASL_WORD.fullmatch(password)):
                raise BrokerError(f"SASL user {name!r}: names and passwords take letters, digits, '.', '_', '-'")

    def port_of(self, node: Node) -> int:
        return self.port + 2 * (node.node_id - 1)


@dataclass(frozen=True)
class Node:
    """Where one node of a local cluster keeps its state and which ports it takes."""

    node_id: int
    directory: Path
    port: int
    controller_port: int

    @property
    def props_file(self) -> Path:
        return self.directory / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def logs_dir(self) -> Path:
        return self.directory / "logs"

    @property
    def log_file(self) -> Path:
        return self.logs_dir / "server.log"

    @property
    def stdout_file(self) -> Path:
        return self.directory / "stdout.log"

    @property
    def pid_file(self) -> Path:
        return self.directory / "kafka.pid"


def kafka_dir(settings: Settings) -> Path:
    return settings.var_dir.resolve() / "kafka"


def cluster_dir(settings: Settings, nodes: int) -> Path:
    return kafka_dir(settings) / f"{nodes}-node"


def cluster(settings: Settings, nodes: int) -> list[Node]:
    if nodes not in SUPPORTED_NODES:
        raise BrokerError(f"the local cluster has 1 or 3 nodes, not {nodes}")
    members = [
        Node(n, cluster_dir(settings, nodes) / f"node-{n}", settings.kafka_port + 2 * (n - 1),
             settings.kafka_controller_port + 2 * (n - 1))
        for n in range(1, nodes + 1)
    ]  # fmt: skip
    ports = [port for node in members for port in (node.port, node.controller_port)]
    if len(set(ports)) != len(ports):
        raise BrokerError(f"kafka_port and kafka_controller_port give overlapping ports for {nodes} nodes")
    return members


def bootstrap(cluster: list[Node], sasl: SaslListener | None = None) -> str:
    """Where clients connect: the SASL listener when there is one, else the PLAINTEXT one."""
    return ",".join(f"127.0.0.1:{sasl.port_of(node) if sasl else node.port}" for node in cluster)


@contextlib.contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Serialise start and stop across processes, e.g. two test sessions starting the same broker."""
    private_dir(directory)
    with private_file(directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def tail(text: str, lines: int = 20) -> str:
    """The last lines of a tool's output, as quoted in a BrokerError."""
    return "\n".join(text.strip().splitlines()[-lines:])
