"""A node's broker process: its pid file, whether it lives and answers, signals to it and what it logged."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path

from infra.kafka.layout import Node, Progress, tail

# Written to stdout.log before each launch, so an error report shows that launch's output only.
LAUNCH_HEADER = "--- nettask launching the broker at"

# Brokers started by this process, so their exit status can be collected: an unreaped child stays a zombie,
# and a zombie still answers kill(pid, 0) as if it were alive.
children: dict[int, subprocess.Popen[bytes]] = {}


def pid_of(node: Node) -> int | None:
    """The pid in the node's pid file when that process is alive and is this node's broker, else None."""
    pid = recorded_pid(node)
    return pid if pid is not None and _is_broker_of(pid, node) else None


def recorded_pid(node: Node) -> int | None:
    try:
        return int(node.pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_broker_of(pid: int, node: Node) -> bool:
    """Checks the command line too, since after a crash and a reboot the pid may belong to anything."""
    child = children.get(pid)
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


def forget_stale_pid(node: Node, say: Progress) -> None:
    pid = recorded_pid(node)
    if node.pid_file.exists() and pid_of(node) is None:
        say(f"node {node.node_id}: removing a stale pid file (pid {pid} is gone: the broker crashed or was killed)")
        node.pid_file.unlink(missing_ok=True)


def serving(node: Node) -> bool:
    return pid_of(node) is not None and answering(node.port)


def answering(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def send_signal(pid: int | None, signum: int) -> None:
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def wait_gone(nodes: list[Node], deadline: float) -> list[Node]:
    """Wait until none of the nodes has a live broker or the deadline passes; return those still alive."""
    alive = list(nodes)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = [node for node in alive if pid_of(node) is not None]
    return alive


# -- logs --------------------------------------------------------------------------------------------------


def log_since(node: Node, offset: int) -> str:
    try:
        with node.log_file.open("rb") as log_file:
            log_file.seek(offset)
            return log_file.read().decode(errors="replace")
    except OSError:
        return ""


def log_tails(node: Node, since: int) -> str:
    """The end of what the node logged since ``since`` and of the JVM output of its latest launch."""
    logged = tail(log_since(node, since)) or "(nothing)"
    output = tail(_read(node.stdout_file).rpartition(LAUNCH_HEADER)[2].partition("\n")[2]) or "(nothing)"
    return f"--- node {node.node_id}: {node.log_file}\n{logged}\n--- node {node.node_id}: {node.stdout_file}\n{output}"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""
