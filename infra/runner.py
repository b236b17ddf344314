"""Runs the components: intake and relay, alone (one process each) or together (`nettask run`)."""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from consumers.intake import Intake
from infra.kafka.bootstrap import bootstrap_servers
from infra.kafka.clients import security_config
from infra.kafka.command_clients import command_consumers, dead_letter_producer
from infra.kafka.topics import ensure_topics
from infra.parking import build_parking_lot
from infra.settings import Settings
from infra.store import build_desk
from producers.relay import Relay, relay_producer

log = logging.getLogger(__name__)
Say = Callable[[str], None]


class StopFlag:
    """Set by SIGINT/SIGTERM or a deadline; every loop checks it between batches."""

    def __init__(self, max_seconds: float | None = None):
        self._event = threading.Event()
        self._deadline = None if max_seconds is None else time.monotonic() + max_seconds

    def __call__(self) -> bool:
        return self._event.is_set() or (self._deadline is not None and time.monotonic() >= self._deadline)

    def set(self, *_args) -> None:
        self._event.set()

    def install(self) -> StopFlag:
        signal.signal(signal.SIGINT, self.set)
        signal.signal(signal.SIGTERM, self.set)
        return self

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, waking early when stopped or at the deadline."""
        if self._deadline is not None:
            seconds = max(0.0, min(seconds, self._deadline - time.monotonic()))
        self._event.wait(seconds)


def prepare(settings: Settings, say: Say) -> str:
    """The broker's address (starting the local one if no cluster is configured) with the topics in place."""
    bootstrap = bootstrap_servers(settings, progress=say)
    ensure_topics(bootstrap, settings.topics, progress=say)
    return bootstrap


def build_intake(
    settings: Settings, bootstrap: str, stored: threading.Event | None = None, group: str | None = None
) -> Intake:
    return Intake(
        settings,
        build_desk(settings),
        command_consumers(settings, bootstrap, group),
        dead_letter_producer(settings, bootstrap),
        build_parking_lot(settings),
        on_stored=stored.set if stored else lambda: None,
    )


def build_relay(settings: Settings, bootstrap: str, stored: threading.Event | None = None) -> Relay:
    # Woken by the intake next to it, the relay need only look now and then for events stored elsewhere.
    idle_ms = settings.idle_wait_ms * 20 if stored else settings.idle_wait_ms
    return Relay(
        build_desk(settings),
        relay_producer(bootstrap, security_config(settings)),
        settings.topics.events,
        settings.relay_name,
        settings.relay_page,
        idle_ms,
        wake=stored,
    )


def run_components(settings: Settings, names: list[str], stop: StopFlag, say: Say, report_every: float = 10.0) -> None:
    """Run the named components ('intake', 'relay') in threads until `stop`, reporting progress."""
    bootstrap = prepare(settings, say)
    builders = {"intake": build_intake, "relay": build_relay}
    # Together in one process, the intake wakes the relay the moment it stored something.
    stored = threading.Event() if {"intake", "relay"} <= set(names) else None
    components = {name: builders[name](settings, bootstrap, stored) for name in names}
    threads = [
        threading.Thread(target=_guarded, args=(name, component, stop), name=name, daemon=True)
        for name, component in components.items()
    ]
    for thread in threads:
        thread.start()
    say(f"running {', '.join(names)} against {bootstrap}; Ctrl-C stops")
    while any(t.is_alive() for t in threads) and not stop():
        stop.wait(report_every)
        say(_progress(components))
    stop.set()
    for thread in threads:
        thread.join(timeout=30)
    for component in components.values():
        component.close()
    say("stopped; " + _progress(components))


def _guarded(name: str, component, stop: StopFlag) -> None:
    try:
        component.run(stop=stop)
    except Exception:
        log.exception("%s stopped by an error", name)
        stop.set()


def _progress(components: dict) -> str:
    parts = []
    if intake := components.get("intake"):
        s = intake.stats
        parts.append(f"intake: {s.applied} applied, {s.unchanged} repeats, {s.refused} refused, {s.invalid} invalid")
    if relay := components.get("relay"):
        parts.append(f"relay: {relay.stats.published} published, position {relay.stats.position}")
    return "; ".join(parts)
