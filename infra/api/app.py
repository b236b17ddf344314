"""The FastAPI application: the CLI's queries over HTTP, instants in Europe/Berlin, money as decimal strings."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AfterValidator, AwareDatetime

from domain.explain import explain_metric
from domain.money import Month
from domain.policy import PolicyBook
from domain.sla import MetricState
from domain.ticket import TicketStatus
from infra.api.auth import BearerToken
from infra.api.sources import Sources
from infra.api.statements import StatementLookup, statements_lookup
from infra.display import local, to_json
from infra.policy_files import load_policy
from infra.retry import Unavailable, one_line
from infra.settings import Settings
from infra.statement_views import as_json
from projections.sla import queries

log = logging.getLogger(__name__)


def _month(text: str) -> str:
    """A month like 2026-03; 2026-13 is refused here, so the 422 names the field."""
    Month.parse(text)
    return text


MonthText = Annotated[str, AfterValidator(_month)]
Now = Annotated[AwareDatetime | None, Query(description="The instant to look at, with its UTC offset; default: now.")]
AsOf = Annotated[
    AwareDatetime | None,
    Query(description="Recompute from the event store as of this instant; default: the billing projection, now."),
]


def create_app(settings: Settings, book: PolicyBook | None = None, lookup: StatementLookup | None = None) -> FastAPI:
    """The API on the configured projections and store; `Unavailable` when the projections' database is not."""
    book = book or load_policy(settings.policy_file)
    sources = Sources(settings, book)
    app = FastAPI(title="NetTask read API", version="1", summary=__doc__, on_shutdown=[sources.close])
    reply = _replier(book)
    _errors(app)
    _ticket_routes(app, sources, reply)
    _sla_routes(app, sources, reply)
    _statement_routes(app, lookup or statements_lookup(sources), reply, book.latest.calendar.zone)
    if settings.api_token:
        app.add_middleware(BearerToken, token=settings.api_token.get_secret_value())
    return app


def _replier(book: PolicyBook) -> Callable[[Any], Response]:
    zone = book.latest.calendar.zone

    def reply(value: Any) -> Response:
        # orjson with decimals as strings; FastAPI's own encoder would turn money into floats.
        return Response(to_json(local(value, zone)), media_type="application/json")

    return reply


def _ticket_routes(app: FastAPI, sources: Sources, reply: Callable[[Any], Response]) -> None:
    @app.get("/tickets", response_class=JSONResponse, summary="Tickets of the SLA view, newest opening first")
    def tickets(customer: str | None = None, status: TicketStatus | None = None) -> Response:
        with sources.views() as db:
            return reply(queries.tickets(db, customer, status))

    @app.get("/tickets/{reference_or_id}", response_class=JSONResponse, summary="One ticket, by id or reference")
    def ticket(reference_or_id: str) -> Response:
        """Its view, its SLA metrics, its timeline, and for each breached metric why it was due when it was."""
        with sources.views() as db:
            found = queries.find_ticket(db, reference_or_id)
            if found is None:
                raise HTTPException(404, f"no ticket {reference_or_id!r} in the SLA view")
            metrics = queries.metrics_of(db, found["ticket_id"])
            timeline = queries.timeline(db, found["ticket_id"])
        explanations = _explanations(sources, found["ticket_id"], metrics)
        return reply({"ticket": found, "metrics": metrics, "timeline": timeline, "explanations": explanations})


def _explanations(sources: Sources, ticket_id: str, metrics: list[dict]) -> dict[str, Any]:
    breached = [m["metric"] for m in metrics if m["state"] == MetricState.BREACHED.value]
    if not breached:
        return {}
    history = sources.history(UUID(ticket_id))
    return {name: explain_metric(history, name, sources.book) for name in breached}


def _sla_routes(app: FastAPI, sources: Sources, reply: Callable[[Any], Response]) -> None:
    @app.get("/breaches", response_class=JSONResponse, summary="Breaches now of unfinished tickets")
    def breaches(now: Now = None) -> Response:
        with sources.views() as db:
            return reply(queries.breached_now(db, now or datetime.now(UTC)))

    @app.get("/breaches/history", response_class=JSONResponse, summary="Breach rate by customer, plan, month")
    def breach_history() -> Response:
        with sources.views() as db:
            return reply(queries.breach_history(db))

    @app.get("/at-risk", response_class=JSONResponse, summary="Running metrics at risk now, soonest due first")
    def at_risk(now: Now = None) -> Response:
        with sources.views() as db:
            return reply(queries.at_risk_now(db, now or datetime.now(UTC)))

    @app.get("/queue", response_class=JSONResponse, summary="Open tickets, severity A first, then next due time")
    def queue() -> Response:
        with sources.views() as db:
            return reply(queries.work_queue(db))


def _statement_routes(app: FastAPI, lookup: StatementLookup, reply: Callable[[Any], Response], zone: ZoneInfo) -> None:

    @app.get("/statements", response_class=JSONResponse, summary="Every customer's statement for a month")
    def statements(month: Annotated[MonthText, Query(examples=["2026-03"])], as_of: AsOf = None) -> Response:
        found = lookup(Month.parse(month), as_of, None)
        return reply([as_json(s, zone) for s in found])

    @app.get(
        "/customers/{customer_id}/statements/{month}", response_class=JSONResponse, summary="One statement, every line"
    )
    def customer_statement(customer_id: str, month: MonthText, as_of: AsOf = None) -> Response:
        found = lookup(Month.parse(month), as_of, customer_id)
        if not found:
            raise HTTPException(404, f"no statement of customer {customer_id!r} for {month}")
        return reply(as_json(found[0], zone))


def _errors(app: FastAPI) -> None:
    """An unreachable database is 503 in one line; anything unforeseen is 500 without a traceback."""

    @app.exception_handler(Unavailable)
    def unavailable(_request: Request, error: Unavailable) -> JSONResponse:
        return JSONResponse({"detail": one_line(error)}, status_code=503)

    @app.exception_handler(Exception)
    def unforeseen(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)  # the traceback goes to the log only
        return JSONResponse({"detail": f"internal error ({type(error).__name__})"}, status_code=500)
