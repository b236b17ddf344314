"""The project's own Apache Kafka broker: jars from Maven Central, KRaft storage, start, stop and status.

State lives under ``settings.var_dir / "kafka" / f"{nodes}-node"``: ``cluster.id`` and one directory per node
(``node-1`` ...) holding ``server.properties``, ``data/`` (the KRaft log dir), ``logs/server.log`` (log4j),
``stdout.log`` (the JVM's own output) and ``kafka.pid``. The one-node and the three-node cluster keep separate
state, so switching between them never mixes their metadata; they share ports, so one runs at a time.

Ports, all on 127.0.0.1 only: node n (1-based) takes client port ``kafka_port + 2 * (n - 1)`` and controller
port ``kafka_controller_port + 2 * (n - 1)``. With the defaults 19092/19093 that is 19092/19093 for node 1,
19094/19095 for node 2 and 19096/19097 for node 3.

Nothing here prints: progress goes to the ``progress`` callback when one is given, else to logging.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from infra.kafka import launch, layout, processes
from infra.kafka.jars import ensure_jars
from infra.kafka.layout import SUPPORTED_NODES, BrokerError, Node, Progress, SaslListener
from infra.settings import Settings

READY_LINE = "Kafka Server started"
START_TIMEOUT_S = 90.0
# A broker asked to stop first hands over leadership and flushes its logs; past this it is killed.
STOP_TIMEOUT_S = 30.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NodeStatus:
    """What one node's pid file says and whether its process and port agree."""

    node_id: int
    port: int
    controller_port: int
    pid: int | None
    alive: bool
    answering: bool

    @property
    def stale(self) -> bool:
        """A pid file is left behind but its broker is gone: it crashed or was killed."""
        return self.pid is not None and not self.alive


@dataclass(frozen=True)
class BrokerStatus:
    """The local cluster as found on disk and on the ports: no nodes when nothing was started."""

    state_dir: Path
    nodes: tuple[NodeStatus, ...]

    @property
    def running(self) -> bool:
        return bool(self.nodes) and all(node.alive and node.answering for node in self.nodes)

    @property
    def bootstrap_servers(self) -> str | None:
        return ",".join(f"127.0.0.1:{node.port}" for node in self.nodes) if self.running else None

    @property
    def stale_nodes(self) -> tuple[int, ...]:
        return tuple(node.node_id for node in self.nodes if node.stale)


# -- public API --------------------------------------------------------------------------------------------


def start(
    settings: Settings,
    nodes: int = 1,
    *,
    progress: Progress | None = None,
    timeout: float = START_TIMEOUT_S,
    lib_dir: Path | None = None,
    sasl: SaslListener | None = None,
) -> str:
    """Start the local cluster unless it runs already; return its bootstrap servers once it serves metadata.

    With `sasl`, clients are to connect to its SASL_PLAINTEXT listener, so that is the address returned. Its
    SCRAM users are stored when the storage is formatted: give the cluster a var dir of its own.
    """
    say = progress or log.info
    cluster = layout.cluster(settings, nodes)
    with layout.locked(layout.kafka_dir(settings)):
        _refuse_other_cluster(settings, nodes)
        if all(processes.serving(node) for node in cluster):
            return layout.bootstrap(cluster, sasl)
        lib = ensure_jars(lib_dir, progress=say)
        marks = _launch_missing(settings, cluster, lib, say, sasl)
        try:
            _wait_ready(cluster, marks, time.monotonic() + timeout, say)
        except BrokerError:
            # A half-started cluster would only confuse the next start, so what this call launched goes.
            _stop_cluster([node for node in cluster if node.node_id in marks], 10.0, say)
            raise
    return layout.bootstrap(cluster, sasl)


def stop(settings: Settings, *, progress: Progress | None = None, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop every node of the local cluster: SIGTERM, wait up to ``timeout``, SIGKILL; remove pid files."""
    say = progress or log.info
    with layout.locked(layout.kafka_dir(settings)):
        for nodes in SUPPORTED_NODES:
            _stop_cluster(layout.cluster(settings, nodes), timeout, say)


def status(settings: Settings) -> BrokerStatus:
    """Report the local cluster that has pid files (running, starting or crashed); changes nothing."""
    for nodes in SUPPORTED_NODES:
        cluster = layout.cluster(settings, nodes)
        if any(node.pid_file.exists() for node in cluster):
            return BrokerStatus(layout.cluster_dir(settings, nodes), tuple(_node_status(n) for n in cluster))
    return BrokerStatus(layout.kafka_dir(settings), ())


# -- starting ----------------------------------------------------------------------------------------------


def _launch_missing(
    settings: Settings, cluster: list[Node], lib: Path, say: Progress, sasl: SaslListener | None
) -> dict[int, int]:
    """Launch every node without a live broker; return, per launched node, where its log stood."""
    cluster_id = launch.cluster_id(layout.cluster_dir(settings, len(cluster)))
    for node in cluster:
        processes.forget_stale_pid(node, say)
    missing = [node for node in cluster if processes.pid_of(node) is None]
    for node in missing:  # all checked before any is launched, so a clash leaves nothing half-started
        _refuse_taken_ports(node, sasl)
    return {node.node_id: launch.launch_node(node, cluster, cluster_id, lib, say, sasl) for node in missing}


def _wait_ready(cluster: list[Node], marks: dict[int, int], deadline: float, say: Progress) -> None:
    """Wait until ready, failing early with the log tail when a broker exits and at the deadline."""
    while not _ready(cluster, marks):
        if time.monotonic() > deadline:
            tails = "\n".join(processes.log_tails(node, marks.get(node.node_id, 0)) for node in cluster)
            where = cluster[0].directory.parent
            raise BrokerError(f"the local broker was not ready in time (state in {where})\n{tails}")
        time.sleep(0.25)
    say(f"ready on {layout.bootstrap(cluster)}")


def _ready(cluster: list[Node], marks: dict[int, int]) -> bool:
    """Each new node logged READY_LINE since its launch, every port answers and metadata lists every broker."""
    for node in cluster:
        if processes.pid_of(node) is None:
            node.pid_file.unlink(missing_ok=True)
            tails = processes.log_tails(node, marks.get(node.node_id, 0))
            raise BrokerError(f"node {node.node_id}: the broker exited while starting\n{tails}")
    launched = [node for node in cluster if node.node_id in marks]
    if not all(READY_LINE in processes.log_since(node, marks[node.node_id]) for node in launched):
        return False
    if not all(processes.answering(node.port) for node in cluster):
        return False
    return _serves_metadata(layout.bootstrap(cluster), len(cluster))


def _serves_metadata(bootstrap: str, brokers: int) -> bool:
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, bootstrap_timeout_ms=3000, request_timeout_ms=5000)
    except KafkaError:
        return False
    try:
        described = admin.describe_cluster()["brokers"]
        return sum(not broker.get("is_fenced", False) for broker in described) >= brokers
    except KafkaError:
        return False
    finally:
        admin.close()


def _refuse_other_cluster(settings: Settings, nodes: int) -> None:
    for other in SUPPORTED_NODES:
        if other != nodes and any(processes.pid_of(node) for node in layout.cluster(settings, other)):
            raise BrokerError(f"the {other}-node local cluster is running; stop it first (nettask kafka stop)")


def _refuse_taken_ports(node: Node, sasl: SaslListener | None) -> None:
    for port in (node.port, node.controller_port, *([sasl.port_of(node)] if sasl else [])):
        if processes.answering(port):
            hint = "free it or set NETTASK_KAFKA_PORT and NETTASK_KAFKA_CONTROLLER_PORT"
            raise BrokerError(f"port {port} is taken by another process; {hint}")


# -- stopping ----------------------------------------------------------------------------------------------


def _stop_cluster(cluster: list[Node], timeout: float, say: Progress) -> None:
    """Stop the nodes in numbered steps, so a slow node never leaves another one running."""
    # 1. Whatever pid file has no broker behind it is only reported.
    for node in cluster:
        processes.forget_stale_pid(node, say)
    live = [node for node in cluster if processes.pid_of(node) is not None]
    # 2. SIGTERM to all at once: the nodes are also the controller quorum, and a node that stops alone
    #    waits for the others to take over its partitions.
    for node in live:
        say(f"node {node.node_id}: stopping (pid {processes.pid_of(node)})")
        processes.send_signal(processes.pid_of(node), signal.SIGTERM)
    # 3. Wait for a clean shutdown, then 4. SIGKILL what is left.
    survivors = processes.wait_gone(live, time.monotonic() + timeout)
    for node in survivors:
        say(f"node {node.node_id}: no clean shutdown within {timeout:.0f} s, killing it")
        processes.send_signal(processes.pid_of(node), signal.SIGKILL)
    processes.wait_gone(survivors, time.monotonic() + 10)
    # 5. Only now are the pid files wrong, so only now are they removed.
    for node in live:
        node.pid_file.unlink(missing_ok=True)


def _node_status(node: Node) -> NodeStatus:
    alive = processes.pid_of(node) is not None
    answering = alive and processes.answering(node.port)
    return NodeStatus(node.node_id, node.port, node.controller_port, processes.recorded_pid(node), alive, answering)
