"""`nettask kafka`: start, stop and inspect the project's local Kafka broker and create the topics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from kafka.errors import KafkaError
from rich.console import Console
from rich.table import Table

from infra.kafka import broker, topics
from infra.kafka.bootstrap import bootstrap_servers
from infra.kafka.clients import security_config
from infra.settings import Settings

app = typer.Typer(no_args_is_help=True, help=__doc__)
console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)


@app.command()
def start(nodes: Annotated[int, typer.Option(help="1, or 3 for failover tests")] = 1) -> None:
    """Start the local broker (a no-op when it runs already) and wait until it serves clients."""
    settings = Settings()
    if settings.kafka_bootstrap_servers:
        console.print(f"KAFKA_BOOTSTRAP_SERVERS is set: using {settings.kafka_bootstrap_servers}, nothing started.")
        return
    with _reporting_errors():
        running = broker.status(settings).running
        address = broker.start(settings, nodes, progress=_progress)
    console.print(f"[green]Kafka is {'already running' if running else 'ready'}[/] on [bold]{address}[/]")


@app.command()
def stop() -> None:
    """Stop the local broker: a clean shutdown first, SIGKILL after 30 s."""
    settings = Settings()
    with _reporting_errors():
        started = bool(broker.status(settings).nodes)
        broker.stop(settings, progress=_progress)
    console.print("Local Kafka stopped." if started else "Local Kafka was not running.")


@app.command()
def status() -> None:
    """Show each node of the local broker: pid, ports and whether it answers."""
    settings = Settings()
    if settings.kafka_bootstrap_servers:
        console.print(f"KAFKA_BOOTSTRAP_SERVERS is set: the engine uses {settings.kafka_bootstrap_servers}.")
    with _reporting_errors():
        current = broker.status(settings)
    if not current.nodes:
        console.print(f"Local Kafka is not running (it would listen on 127.0.0.1:{settings.kafka_port}).")
        return
    console.print(_status_table(current))
    if current.running:
        console.print(f"[green]running[/] on [bold]{current.bootstrap_servers}[/]")
    if current.stale_nodes:
        console.print("[yellow]stale pid files[/]: the broker crashed or was killed; `nettask kafka start` cleans up")


@app.command("topics")
def ensure_topics() -> None:
    """Create the engine's topics where missing (starting the local broker if needed) and list them."""
    settings = Settings()
    with _reporting_errors():
        address = bootstrap_servers(settings, progress=_progress)
        outcome: dict[str, str] = {}
        security = security_config(settings)
        names = topics.ensure_topics(address, settings.topics, progress=_collect(outcome), security=security)
        layouts = topics.describe(address, names, security=security)
    console.print(_topics_table(names, layouts, outcome))
    console.print(f"on [bold]{address}[/]")


def _status_table(current: broker.BrokerStatus) -> Table:
    table = Table("node", "pid", "client port", "controller port", "state", title=str(current.state_dir))
    for node in current.nodes:
        table.add_row(str(node.node_id), str(node.pid or "-"), str(node.port), str(node.controller_port), _state(node))
    return table


def _state(node: broker.NodeStatus) -> str:
    if node.stale:
        return "[red]stale pid file (process gone)[/]"
    if node.alive:
        return "[green]running[/]" if node.answering else "[yellow]starting[/]"
    return "stopped"


def _topics_table(names: list[str], layouts: dict[str, topics.TopicLayout], outcome: dict[str, str]) -> Table:
    table = Table("topic", "partitions", "replication", "")
    for name in names:
        layout = layouts.get(name)
        partitions, replication = (str(layout.partitions), str(layout.replication)) if layout else ("?", "?")
        table.add_row(name, partitions, replication, outcome.get(name, ""))
    return table


def _collect(outcome: dict[str, str]) -> Callable[[str], None]:
    """Keep ensure_topics' "name: created" lines for the table instead of printing them."""

    def record(message: str) -> None:
        name, _, what = message.partition(": ")
        outcome[name] = what

    return record


def _progress(message: str) -> None:
    console.print(f"[dim]{message}[/]")


@contextmanager
def _reporting_errors() -> Iterator[None]:
    """Turn the failures an operator can act on into one red line (plus any log tail) and exit code 1."""
    try:
        yield
    except (broker.BrokerError, topics.TopicError, KafkaError, OSError) as error:
        first, _, rest = (str(error) or type(error).__name__).partition("\n")
        errors.print(f"[red]error:[/] {first}")
        if rest:
            errors.print(rest, style="dim", markup=False)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        errors.print("[red]interrupted[/]")
        raise typer.Exit(130) from None
