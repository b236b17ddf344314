"""Rebuild benchmark: N ticket events written straight into a SQLite store, the SLA view rebuilt at 100k and at N.

The rebuild is `nettask projections rebuild sla`'s: its fresh tables filled by --workers processes (default one
per CPU), then caught up and switched over. Peak RSS is the main process's plus each worker's."""

from __future__ import annotations

import argparse
import resource
import shutil
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from domain import commands as c
from domain.desk import TicketDesk
from domain.events import TicketEvent
from infra.compose.desk import build_desk
from infra.compose.parallel_rebuild import parallel_fill, peak_rss_mb, worker_count
from infra.compose.projections import build_projection_database
from infra.compose.rebuild import VIEWS, store_log
from infra.policy_files import load_policy
from infra.settings import Settings
from projections.rebuild import rebuild

ROOT = Path(__file__).resolve().parents[1]
# Stored events per insert transaction while generating: the library's recorder takes a whole list at once.
INSERT_BATCH = 10_000
FIRST_MEASURE = 100_000
# A Monday in business hours: the template ticket's clocks run from its opening on.
T0 = datetime.fromisoformat("2026-03-02T10:00:00+01:00")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the store at the last rebuild")
    parser.add_argument("--workers", type=int, default=None, help="processes filling the tables (default: CPUs)")
    arguments = parser.parse_args()
    total = arguments.events
    run_dir = ROOT / "var" / f"bench-rebuild-{uuid.uuid4().hex[:8]}"
    settings = Settings(store="sqlite", var_dir=run_dir, rebuild_workers=arguments.workers)
    desk = build_desk(settings, load_policy(None))
    try:
        template = ticket_story(desk)
        workers = worker_count(settings, "sla")
        print(f"each ticket: {len(template)} events ({', '.join(e.type for e in template)}); SQLite in {run_dir}")
        print(f"rebuild workers: {workers}")
        stored = 0
        for target in sorted({min(FIRST_MEASURE, total), total}):
            stored = generate(desk, template, stored, target)
            measure(settings, desk, stored, workers)
    finally:
        desk.close()
        shutil.rmtree(run_dir, ignore_errors=True)


def ticket_story(desk: TicketDesk) -> list[TicketEvent]:
    """One ticket's life through the desk: opened, answered, a customer reply, answered late, resolved."""
    since = T0 - timedelta(days=30)
    desk.handle(c.SubscribePlan(**_head(since), customer_id="bench", plan="standard", effective_from=since))
    opening = c.OpenTicket(
        **_head(T0), source="portal", reference="T-0", customer_id="bench", department="trouble", severity="B",
        language="en", subject="The shop answers 503",
    )  # fmt: skip
    ticket = opening.ticket_id
    desk.handle(opening)
    desk.handle(c.RecordResponse(**_head(T0 + timedelta(hours=1)), ticket_id=ticket))
    desk.handle(c.RecordCustomerReply(**_head(T0 + timedelta(hours=2)), ticket_id=ticket))
    desk.handle(c.RecordResponse(**_head(T0 + timedelta(days=2)), ticket_id=ticket))
    desk.handle(c.ResolveTicket(**_head(T0 + timedelta(days=3)), ticket_id=ticket, resolution="restarted"))
    return [e for e in desk.events_of(ticket) if isinstance(e, TicketEvent)]


def _head(at: datetime) -> dict:
    return {"command_id": uuid.uuid4(), "occurred_at": at, "actor": "bench"}


def generate(desk: TicketDesk, template: list[TicketEvent], stored: int, target: int) -> int:
    """Copies of the template ticket, each with its own ids and reference, until the store holds `target` events."""
    started, batch, number = time.perf_counter(), [], stored // len(template)
    while stored < target:
        ticket_id = uuid.uuid4()
        for event in template:
            copy = _copy(event, ticket_id, number)
            batch.append(desk.mapper.to_stored_event(copy))
        stored, number = stored + len(template), number + 1
        if len(batch) >= INSERT_BATCH or stored >= target:
            desk.recorder.insert_events(batch)
            batch = []
    print(f"generated up to {stored:,} events in {time.perf_counter() - started:.1f} s")
    return stored


def _copy(event: TicketEvent, ticket_id: uuid.UUID, number: int) -> TicketEvent:
    update = {"originator_id": ticket_id, "ticket_id": ticket_id, "event_id": uuid.uuid4(), "command_id": uuid.uuid4()}
    if hasattr(event, "reference"):
        update["reference"] = f"T-{number}"
    return event.model_copy(update=update)


def measure(settings: Settings, desk: TicketDesk, stored: int, workers: int) -> None:
    db = build_projection_database(settings)
    db.create_schema()
    fill = parallel_fill(settings, VIEWS["sla"], workers)
    try:
        started, cpu_before = time.perf_counter(), cpu_seconds()
        report = rebuild(db, VIEWS["sla"], store_log(desk, "sla"), fill=fill)
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_before
    finally:
        db.close()
    own, theirs = peak_rss_mb(), fill.peak_rss_mb if fill else []
    print(
        f"rebuild of {stored:,} stored events: {report.events:,} applied in {seconds:.1f} s = "
        f"{report.events / seconds:,.0f} events/s; CPU {cpu:.1f} s = {cpu / report.events * 1e6:.0f} us an event; "
        f"peak RSS (VmHWM) {own + sum(theirs):.0f} MB "
        f"(main {own:.0f} MB, workers {', '.join(f'{mb:.0f}' for mb in theirs) or 'none'} MB)"
    )


def cpu_seconds() -> float:
    """User and system CPU of this process and of its ended workers: the rate's cost, whatever else runs."""
    own, workers = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + workers.ru_utime + workers.ru_stime


if __name__ == "__main__":
    main()
