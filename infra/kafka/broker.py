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

import base64
import contextlib
import fcntl
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from infra.settings import Settings

KAFKA_VERSION = "4.1.1"
POM_FILE = Path(__file__).with_name("pom.xml")
LOG4J_CONFIG = Path(__file__).with_name("log4j2.properties")
READY_LINE = "Kafka Server started"
# Written to stdout.log before each launch, so an error report shows that launch's output only.
LAUNCH_HEADER = "--- nettask launching the broker at"
SUPPORTED_NODES = (1, 3)
START_TIMEOUT_S = 90.0
# A broker asked to stop first hands over leadership and flushes its logs; past this it is killed.
STOP_TIMEOUT_S = 30.0
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

Progress = Callable[[str], None]
log = logging.getLogger(__name__)
# Brokers started by this process, so their exit status can be collected: an unreaped child stays a zombie,
# and a zombie still answers kill(pid, 0) as if it were alive.
_children: dict[int, subprocess.Popen[bytes]] = {}


class BrokerError(RuntimeError):
    """The local broker could not be started, reached or stopped; the first line of the message says why."""


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


@dataclass(frozen=True)
class _Node:
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


# -- public API --------------------------------------------------------------------------------------------


def start(
    settings: Settings,
    nodes: int = 1,
    *,
    progress: Progress | None = None,
    timeout: float = START_TIMEOUT_S,
    lib_dir: Path | None = None,
) -> str:
    """Start the local cluster unless it runs already; return its bootstrap servers once it serves metadata."""
    say = progress or log.info
    cluster = _cluster(settings, nodes)
    with _locked(_kafka_dir(settings)):
        _refuse_other_cluster(settings, nodes)
        if all(_serving(node) for node in cluster):
            return _bootstrap(cluster)
        lib = ensure_jars(lib_dir, progress=say)
        marks = _launch_missing(settings, cluster, lib, say)
        try:
            _wait_ready(cluster, marks, time.monotonic() + timeout, say)
        except BrokerError:
            # A half-started cluster would only confuse the next start, so what this call launched goes.
            _stop_cluster([node for node in cluster if node.node_id in marks], 10.0, say)
            raise
    return _bootstrap(cluster)


def stop(settings: Settings, *, progress: Progress | None = None, timeout: float = STOP_TIMEOUT_S) -> None:
    """Stop every node of the local cluster: SIGTERM, wait up to ``timeout``, SIGKILL; remove pid files."""
    say = progress or log.info
    with _locked(_kafka_dir(settings)):
        for nodes in SUPPORTED_NODES:
            _stop_cluster(_cluster(settings, nodes), timeout, say)


def status(settings: Settings) -> BrokerStatus:
    """Report the local cluster that has pid files (running, starting or crashed); changes nothing."""
    for nodes in SUPPORTED_NODES:
        cluster = _cluster(settings, nodes)
        if any(node.pid_file.exists() for node in cluster):
            return BrokerStatus(_cluster_dir(settings, nodes), tuple(_node_status(n) for n in cluster))
    return BrokerStatus(_kafka_dir(settings), ())


def kill_node(settings: Settings, node_id: int) -> int:
    """SIGKILL one node of the running local cluster, as a crash would, and return the pid it had."""
    with _locked(_kafka_dir(settings)):
        node = _live_node(settings, node_id)
        pid = _pid_of(node)
        assert pid is not None  # _live_node checked it
        _signal(pid, signal.SIGKILL)
        _wait_gone([node], time.monotonic() + STOP_TIMEOUT_S)
        # Deliberate, so not reported as stale later; start() brings the node back.
        node.pid_file.unlink(missing_ok=True)
        return pid


def ensure_jars(lib_dir: Path | None = None, *, progress: Progress | None = None) -> Path:
    """Copy the broker's runtime jars from Maven Central into ``lib_dir`` once; later calls return at once."""
    say = progress or log.info
    lib = lib_dir or default_lib_dir()
    if _jars_present(lib):
        return lib
    lib.parent.mkdir(parents=True, exist_ok=True)
    with _locked(lib.parent):
        if not _jars_present(lib):
            say(f"fetching Kafka {KAFKA_VERSION} jars from Maven Central into {lib}")
            _copy_dependencies(lib)
    return lib


def default_lib_dir() -> Path:
    """The per-user jar cache, shared by every checkout and by the test broker."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "nettask" / f"kafka-{KAFKA_VERSION}" / "lib"


# -- layout ------------------------------------------------------------------------------------------------


def _kafka_dir(settings: Settings) -> Path:
    return settings.var_dir.resolve() / "kafka"


def _cluster_dir(settings: Settings, nodes: int) -> Path:
    return _kafka_dir(settings) / f"{nodes}-node"


def _cluster(settings: Settings, nodes: int) -> list[_Node]:
    if nodes not in SUPPORTED_NODES:
        raise BrokerError(f"the local cluster has 1 or 3 nodes, not {nodes}")
    cluster = [
        _Node(n, _cluster_dir(settings, nodes) / f"node-{n}", settings.kafka_port + 2 * (n - 1),
              settings.kafka_controller_port + 2 * (n - 1))
        for n in range(1, nodes + 1)
    ]  # fmt: skip
    ports = [port for node in cluster for port in (node.port, node.controller_port)]
    if len(set(ports)) != len(ports):
        raise BrokerError(f"kafka_port and kafka_controller_port give overlapping ports for {nodes} nodes")
    return cluster


def _bootstrap(cluster: list[_Node]) -> str:
    return ",".join(f"127.0.0.1:{node.port}" for node in cluster)


def _cluster_id(cluster_dir: Path) -> str:
    """The cluster id every node's storage is formatted with: made once, then read back."""
    id_file = cluster_dir / "cluster.id"
    if id_file.exists():
        return id_file.read_text().strip()
    cluster_id = "-"
    while cluster_id.startswith("-"):  # StorageTool would read a leading dash as an option
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    cluster_dir.mkdir(parents=True, exist_ok=True)
    id_file.write_text(cluster_id + "\n")
    return cluster_id


def _server_properties(node: _Node, cluster: list[_Node]) -> str:
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
    return "".join(f"{key}={value}\n" for key, value in settings.items())


# -- jars and java -----------------------------------------------------------------------------------------


def _jars_present(lib: Path) -> bool:
    return (lib / f"kafka_2.13-{KAFKA_VERSION}.jar").exists()


def _copy_dependencies(lib: Path) -> None:
    """Resolve into a side folder, then rename it: an interrupted download never looks complete."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError("mvn not found: Maven is needed once to fetch the Kafka jars (apt-get install maven)")
    partial = lib.with_name(lib.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM_FILE),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={partial}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0 or not _jars_present(partial):
        raise BrokerError(f"mvn could not fetch the Kafka jars (exit {result.returncode})\n{_tail(result.stdout)}")
    partial.rename(lib)


def _java_command(lib: Path, node: _Node, jvm_options: tuple[str, ...], *main: str) -> list[str]:
    java_home = Path(os.environ.get("JAVA_HOME") or "/nonexistent") / "bin" / "java"
    java = str(java_home) if java_home.exists() else shutil.which("java")
    if java is None:
        raise BrokerError("java not found: Kafka 4.1 needs Java 17 or newer on PATH or in JAVA_HOME")
    logging_options = (f"-Dlog4j2.configurationFile={LOG4J_CONFIG}", f"-Dkafka.logs.dir={node.logs_dir}")
    # java expands the trailing '*' itself, so the classpath needs no shell.
    return [java, *jvm_options, *logging_options, "-cp", f"{lib}/*", *main]


def _format_storage(node: _Node, cluster_id: str, lib: Path, say: Progress) -> None:
    """Format the node's KRaft storage once; static quorum voters, so without --standalone."""
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
    command = _java_command(lib, node, TOOL_JVM_OPTIONS, *main)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        output = _tail(result.stdout + result.stderr)
        raise BrokerError(f"node {node.node_id}: formatting the storage failed\n{output}")


# -- starting ----------------------------------------------------------------------------------------------


def _launch(node: _Node, cluster: list[_Node], cluster_id: str, lib: Path, say: Progress) -> int:
    """Start one node detached from this process; return where its log stood, to wait for a new line."""
    node.logs_dir.mkdir(parents=True, exist_ok=True)
    node.props_file.write_text(_server_properties(node, cluster))
    _format_storage(node, cluster_id, lib, say)
    mark = node.log_file.stat().st_size if node.log_file.exists() else 0
    command = _java_command(lib, node, BROKER_JVM_OPTIONS, "kafka.Kafka", str(node.props_file))
    with node.stdout_file.open("ab") as out:
        out.write(f"{LAUNCH_HEADER} {time.strftime('%Y-%m-%d %H:%M:%S')}\n".encode())
        out.flush()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=node.directory,
            start_new_session=True,  # a Ctrl-C in the terminal that started it must not stop the broker
        )  # fmt: skip
    _children[process.pid] = process
    node.pid_file.write_text(f"{process.pid}\n")
    say(f"node {node.node_id}: started (pid {process.pid}) on 127.0.0.1:{node.port}")
    return mark


def _launch_missing(settings: Settings, cluster: list[_Node], lib: Path, say: Progress) -> dict[int, int]:
    """Launch every node without a live broker; return, per launched node, where its log stood."""
    cluster_id = _cluster_id(_cluster_dir(settings, len(cluster)))
    for node in cluster:
        _forget_stale_pid(node, say)
    missing = [node for node in cluster if _pid_of(node) is None]
    for node in missing:  # all checked before any is launched, so a clash leaves nothing half-started
        _refuse_taken_ports(node)
    return {node.node_id: _launch(node, cluster, cluster_id, lib, say) for node in missing}


def _wait_ready(cluster: list[_Node], marks: dict[int, int], deadline: float, say: Progress) -> None:
    """Wait until ready, failing early with the log tail when a broker exits and at the deadline."""
    while not _ready(cluster, marks):
        if time.monotonic() > deadline:
            tails = "\n".join(_log_tails(node, marks.get(node.node_id, 0)) for node in cluster)
            where = cluster[0].directory.parent
            raise BrokerError(f"the local broker was not ready in time (state in {where})\n{tails}")
        time.sleep(0.25)
    say(f"ready on {_bootstrap(cluster)}")


def _ready(cluster: list[_Node], marks: dict[int, int]) -> bool:
    """Each new node logged READY_LINE since its launch, every port answers and metadata lists every broker."""
    for node in cluster:
        if _pid_of(node) is None:
            node.pid_file.unlink(missing_ok=True)
            tails = _log_tails(node, marks.get(node.node_id, 0))
            raise BrokerError(f"node {node.node_id}: the broker exited while starting\n{tails}")
    launched = [node for node in cluster if node.node_id in marks]
    if not all(READY_LINE in _log_since(node, marks[node.node_id]) for node in launched):
        return False
    if not all(_answering(node.port) for node in cluster):
        return False
    return _serves_metadata(_bootstrap(cluster), len(cluster))


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
        if other != nodes and any(_pid_of(node) for node in _cluster(settings, other)):
            raise BrokerError(f"the {other}-node local cluster is running; stop it first (nettask kafka stop)")


def _refuse_taken_ports(node: _Node) -> None:
    for port in (node.port, node.controller_port):
        if _answering(port):
            hint = "free it or set NETTASK_KAFKA_PORT and NETTASK_KAFKA_CONTROLLER_PORT"
            raise BrokerError(f"port {port} is taken by another process; {hint}")


# -- stopping ----------------------------------------------------------------------------------------------


def _stop_cluster(cluster: list[_Node], timeout: float, say: Progress) -> None:
    """Stop the nodes in numbered steps, so a slow node never leaves another one running."""
    # 1. Whatever pid file has no broker behind it is only reported.
    for node in cluster:
        _forget_stale_pid(node, say)
    live = [node for node in cluster if _pid_of(node) is not None]
    # 2. SIGTERM to all at once: the nodes are also the controller quorum, and a node that stops alone
    #    waits for the others to take over its partitions.
    for node in live:
        say(f"node {node.node_id}: stopping (pid {_pid_of(node)})")
        _signal(_pid_of(node), signal.SIGTERM)
    # 3. Wait for a clean shutdown, then 4. SIGKILL what is left.
    survivors = _wait_gone(live, time.monotonic() + timeout)
    for node in survivors:
        say(f"node {node.node_id}: no clean shutdown within {timeout:.0f} s, killing it")
        _signal(_pid_of(node), signal.SIGKILL)
    _wait_gone(survivors, time.monotonic() + 10)
    # 5. Only now are the pid files wrong, so only now are they removed.
    for node in live:
        node.pid_file.unlink(missing_ok=True)


def _wait_gone(nodes: list[_Node], deadline: float) -> list[_Node]:
    """Wait until none of the nodes has a live broker or the deadline passes; return those still alive."""
    alive = list(nodes)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [node for node in alive if _pid_of(node) is not None]
    return alive


def _live_node(settings: Settings, node_id: int) -> _Node:
    for nodes in SUPPORTED_NODES:
        for node in _cluster(settings, nodes):
            if node.node_id == node_id and _pid_of(node) is not None:
                return node
    raise BrokerError(f"node {node_id} of the local cluster is not running")


def _signal(pid: int | None, signum: int) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


# -- processes, pid files and ports ------------------------------------------------------------------------


def _pid_of(node: _Node) -> int | None:
    """The pid in the node's pid file when that process is alive and is this node's broker, else None."""
    pid = _recorded_pid(node)
    return pid if pid is not None and _is_broker_of(pid, node) else None


def _recorded_pid(node: _Node) -> int | None:
    try:
        return int(node.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_broker_of(pid: int, node: _Node) -> bool:
    """Checks the command line too, since after a crash and a reboot the pid may belong to anything."""
    child = _children.get(pid)
    if child is not None:
        # Our own child: its pid is not reused before we reap it, and its command line reads empty for a
        # moment while it is being exec'd.
        return child.poll() is None
    proc = Path("/proc")
    if not proc.is_dir():  # no procfs (macOS): trust the pid
        return _exists(pid)
    try:
        command_line = (proc / str(pid) / "cmdline").read_bytes()  # empty for a zombie
    except OSError:
        return False
    return b"kafka.Kafka" in command_line and str(node.props_file).encode() in command_line


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _forget_stale_pid(node: _Node, say: Progress) -> None:
    pid = _recorded_pid(node)
    if node.pid_file.exists() and _pid_of(node) is None:
        say(f"node {node.node_id}: removing a stale pid file (pid {pid} is gone: the broker crashed or was killed)")
        node.pid_file.unlink(missing_ok=True)


def _node_status(node: _Node) -> NodeStatus:
    alive = _pid_of(node) is not None
    answering = alive and _answering(node.port)
    return NodeStatus(node.node_id, node.port, node.controller_port, _recorded_pid(node), alive, answering)


def _serving(node: _Node) -> bool:
    return _pid_of(node) is not None and _answering(node.port)


def _answering(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Serialise start and stop across processes, e.g. two test sessions starting the same broker."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- logs --------------------------------------------------------------------------------------------------


def _log_since(node: _Node, offset: int) -> str:
    try:
        with node.log_file.open("rb") as log_file:
            log_file.seek(offset)
            return log_file.read().decode(errors="replace")
    except OSError:
        return ""


def _log_tails(node: _Node, since: int) -> str:
    """The end of what the node logged since ``since`` and of the JVM output of its latest launch."""
    logged = _tail(_log_since(node, since)) or "(nothing)"
    output = _tail(_read(node.stdout_file).rpartition(LAUNCH_HEADER)[2].partition("\n")[2]) or "(nothing)"
    return f"--- node {node.node_id}: {node.log_file}\n{logged}\n--- node {node.node_id}: {node.stdout_file}\n{output}"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
