"""Launching one node of the local cluster: its cluster id, server.properties, KRaft storage and JVM."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import time
from pathlib import Path

from infra.files import private_dir, private_file, write_private
from infra.kafka.layout import BrokerError, Node, Progress, SaslListener, tail
from infra.kafka.processes import LAUNCH_HEADER, children

LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
# The JVM flags of Kafka's own start scripts, with a heap small enough for a laptop or a CI machine.
BROKER_JVM_OPTIONS = (
    "-Xms256m",
    "-Xmx512m",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
)
# The storage formatter runs for a second: the quick JIT alone saves a third of that.
TOOL_JVM_OPTIONS = ("-Xmx256m", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")
# What the JVMs create (KRaft metadata, topic data, logs) is for this user alone, as everything in the var dir.
OWNER_ONLY_UMASK = 0o077


def launch_node(
    node: Node, cluster: list[Node], cluster_id: str, lib: Path, say: Progress, sasl: SaslListener | None = None
) -> int:
    """Start one node detached from this process; return where its log stood, to wait for a new line."""
    private_dir(node.logs_dir)
    private_dir(node.data_dir)
    # Private also because it holds the PLAIN users' passwords when there is a SASL listener.
    write_private(node.props_file, _server_properties(node, cluster, sasl))
    _format_storage(node, cluster_id, lib, say, sasl)
    mark = node.log_file.stat().st_size if node.log_file.exists() else 0
    command = _java_command(lib, node, BROKER_JVM_OPTIONS, "kafka.Kafka", str(node.props_file))
    with private_file(node.stdout_file).open("ab") as out:
        out.write(f"{LAUNCH_HEADER} {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        out.flush()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=node.directory,
            start_new_session=True,  # a Ctrl-C in the terminal that started it must not stop the broker
            umask=OWNER_ONLY_UMASK,
        )  # fmt: skip
    children[process.pid] = process
    write_private(node.pid_file, f"{process.pid}\n")
    say(f"node {node.node_id}: started (pid {process.pid}) on 127.0.0.1:{node.port}")
    return mark


def cluster_id(cluster_dir: Path) -> str:
    """The cluster id every node's storage is formatted with: made once, then read back."""
    id_file = cluster_dir / "cluster.id"
    if id_file.exists():
        return id_file.read_text().strip()
    cluster_id = "-"
    while cluster_id.startswith("-"):  # StorageTool would read a leading dash as an option
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    write_private(id_file, cluster_id + "\n")
    return cluster_id


def _server_properties(node: Node, cluster: list[Node], sasl: SaslListener | None = None) -> str:
    # One node cannot replicate internal topics three ways; three nodes keep them when one node dies.
    replication, min_isr = (1, 1) if len(cluster) == 1 else (3, 2)
    voters = ",".join(f"{n.node_id}@127.0.0.1:{n.controller_port}" for n in cluster)
    settings = {
        "process.roles": "broker,controller",
        "node.id": node.node_id,
        "controller.quorum.voters": voters,
        "controller.listener.names": "CONTROLLER",
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "inter.broker.listener.name": "PLAINTEXT",
        "log.dirs": node.data_dir,
        "auto.create.topics.enable": "false",
        # The default waits 3 s for more members before the first rebalance of every new group.
        "group.initial.rebalance.delay.ms": 0,
        # Defaults of 50 partitions make every first consumer group and transaction slow to start.
        "offsets.topic.num.partitions": 3,
        "offsets.topic.replication.factor": replication,
        "transaction.state.log.num.partitions": 3,
        "transaction.state.log.replication.factor": replication,
        "transaction.state.log.min.isr": min_isr,
        "share.coordinator.state.topic.num.partitions": 3,
        "share.coordinator.state.topic.replication.factor": replication,
        "share.coordinator.state.topic.min.isr": min_isr,
        # A broker that died is fenced, and its partitions led elsewhere, when its session expires; and a
        # broker restarted after a crash can only register again after that. 9 s by default.
        "broker.heartbeat.interval.ms": 1000,
        "broker.session.timeout.ms": 4000,
        # The cleaner takes 128 MiB of heap by default, too much for -Xmx512m.
        "log.cleaner.dedupe.buffer.size": 16777216,
    }
    if sasl:
        settings |= _sasl_properties(node, sasl)
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def _sasl_properties(node: Node, sasl: SaslListener) -> dict[str, str]:
    """A SASL_PLAINTEXT listener next to the PLAINTEXT one, which stays the brokers' own (inter-broker)."""
    port = sasl.port_of(node)
    # PLAIN checks passwords against the JAAS entry; SCRAM against the credentials stored at format time.
    plain_users = " ".join(f'user_{name}="{password}"' for name, password in sasl.users)
    return {
        "listeners": f"PLAINTEXT://127.0.0.1:{node.port},CONTROLLER://127.0.0.1:{node.controller_port},"
        f"SASL_PLAINTEXT://127.0.0.1:{port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{node.port},SASL_PLAINTEXT://127.0.0.1:{port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "SCRAM-SHA-256,PLAIN",
        "listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": (
            f"org.apache.kafka.common.security.plain.PlainLoginModule required {plain_users};"
        ),
    }


def _java_command(lib: Path, node: Node, jvm_options: tuple[str, ...], *main: str) -> list[str]:
    java_home = Path(os.environ.get("JAVA_HOME") or "/nonexistent") / "bin" / "java"
    java = str(java_home) if java_home.exists() else shutil.which("java")
    if java is None:
        raise BrokerError("java not found: Kafka 4.1 needs Java 17 or newer on PATH or in JAVA_HOME")
    logging_options = (f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-Dkafka.logs.dir={node.logs_dir}")
    # java expands the trailing '*' itself, so the classpath needs no shell.
    return [java, *jvm_options, *logging_options, "-cp", f"{lib}/*", *main]


def _format_storage(node: Node, cluster_id: str, lib: Path, say: Progress, sasl: SaslListener | None) -> None:
    """Format the node's KRaft storage once; static quorum voters, so without --standalone.

    SCRAM users are written into the cluster's first metadata here: KRaft has no other place before it runs.
    """
    if (node.data_dir / "meta.properties").exists():
        return
    say(f"node {node.node_id}: formatting storage")
    main = (
        "kafka.tools.StorageTool",
        "format",
        "-t",
        cluster_id,
        "-c",
        str(node.props_file),
        "--ignore-formatted",
    )
    for name, password in sasl.users if sasl else ():
        main += ("--add-scram", f"SCRAM-SHA-256=[name={name},password={password}]")
    command = _java_command(lib, node, TOOL_JVM_OPTIONS, *main)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, umask=OWNER_ONLY_UMASK)
    if result.returncode != 0:
        output = tail(result.stdout + result.stderr)
        raise BrokerError(f"node {node.node_id}: formatting the storage failed\n{output}")
