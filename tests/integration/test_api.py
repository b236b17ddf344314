"""The HTTP read API through FastAPI's TestClient, on SLA and billing views filled by the real projections (SQLite)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from domain.commands import parse_command
from domain.events import TicketEvent
from domain.money import Month
from infra.api.app import create_app
from infra.compose.desk import build_desk
from infra.compose.projections import build_projection_database
from infra.display import to_json
from infra.settings import Settings
from infra.statement_views import as_json
from projections.billing import BillingFold, statements
from projections.billing.projection import BillingProjection
from projections.sla.projection import SlaProjection

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "march-2026.jsonl"
BERLIN_OFFSETS = ("+01:00", "+02:00")


def store_example(settings: Settings, policy_book) -> None:
    """The example month's commands stored, and their events folded into the SLA and billing views (no broker)."""
    desk = build_desk(settings, policy_book)
    for line in EXAMPLE.read_text().splitlines():
        try:
            desk.handle(parse_command(line))
        except ValueError:
            continue  # the example's one invalid line
    events = list(desk.recorded_events())
    desk.close()
    db = build_projection_database(settings)
    db.create_schema()
    sla, billing = SlaProjection(db), BillingProjection(db, policy_book)
    with db.transaction() as cursor:
        sla.create_tables(cursor)
        billing.create_tables(cursor)
        sla.apply(cursor, [e for e in events if isinstance(e, TicketEvent)])
        billing.apply(cursor, events)
        billing.refresh_in(cursor)  # the statements, as the projector's next refresh writes them
    db.close()


def store_fold(settings: Settings, policy_book) -> BillingFold:
    desk = build_desk(settings, policy_book)
    try:
        return BillingFold(policy_book).apply_all(desk.recorded_events())
    finally:
        desk.close()


@pytest.fixture
def example_settings(tmp_path, policy_book) -> Settings:
    settings = Settings(store="sqlite", var_dir=tmp_path)
    store_example(settings, policy_book)
    return settings


@pytest.fixture
def client(example_settings, policy_book):
    with TestClient(create_app(example_settings, policy_book)) as client:
        yield client


def test_tickets_filtered_by_customer_and_status_with_instants_in_berlin(client):
    everything = client.get("/tickets").json()
    assert everything and all(t["opened_at"].endswith(BERLIN_OFFSETS) for t in everything)
    acme = client.get("/tickets", params={"customer": "acme", "status": "open"}).json()
    assert acme and {(t["customer_id"], t["status"]) for t in acme} == {("acme", "open")}
    assert len(acme) < len(everything)


def test_one_ticket_by_reference_or_id_with_metrics_timeline_and_breach_explanations(client):
    breached = client.get("/breaches", params={"now": "2026-03-31T12:00:00+02:00"}).json()
    history = client.get("/breaches/history").json()
    assert any(row["breached"] for row in history), "the example month has a breach"
    reference = next(t["reference"] for t in client.get("/tickets").json() if _has_breach(client, t["reference"]))
    shown = client.get(f"/tickets/{reference}").json()
    assert shown["timeline"][0]["event_type"] == "Opened"
    assert shown["metrics"][0]["metric"] == "first_response"
    name, explanation = next(iter(shown["explanations"].items()))
    assert explanation["metric"] == name and explanation["policy_version"] == "2021-07-01"
    assert explanation["due_at"].endswith(BERLIN_OFFSETS)
    by_id = client.get(f"/tickets/{shown['ticket']['ticket_id']}").json()
    assert by_id["ticket"] == shown["ticket"]
    assert all(row["due_at"].endswith(BERLIN_OFFSETS) for row in breached)


def _has_breach(client: TestClient, reference: str) -> bool:
    return any(m["state"] == "breached" for m in client.get(f"/tickets/{reference}").json()["metrics"])


def test_at_risk_and_the_work_queue_answer_lists(client):
    assert isinstance(client.get("/at-risk", params={"now": "2026-03-30T09:00:00+02:00"}).json(), list)
    queue = client.get("/queue").json()
    assert isinstance(queue, list) and all(row["status"] == "open" for row in queue)


def test_statements_of_a_month_and_of_one_customer_with_money_as_decimal_strings(client):
    month = client.get("/statements", params={"month": "2026-03", "as_of": "2026-04-10T12:00:00+02:00"})
    assert month.status_code == 200
    customers = {s["customer_id"]: s for s in month.json()}
    assert set(customers) == {"acme", "globex"}
    acme = client.get("/customers/acme/statements/2026-03", params={"as_of": "2026-04-10T12:00:00+02:00"}).json()
    assert acme == customers["acme"]
    assert isinstance(acme["gross"], str) and Decimal(acme["gross"]) == Decimal(acme["net"]) + Decimal(acme["vat"])
    assert acme["as_of"].endswith(BERLIN_OFFSETS)


def test_without_as_of_statements_are_the_billing_tables_equal_to_a_fold_of_the_store(
    client, example_settings, policy_book
):
    fold = store_fold(example_settings, policy_book)
    zone = policy_book.latest.calendar.zone
    expected = [as_json(s, zone) for s in statements(fold, Month.parse("2026-03"), fold.clock)]
    served = client.get("/statements", params={"month": "2026-03"}).json()
    assert served == orjson.loads(to_json(expected)) and {s["customer_id"] for s in served} == {
        "acme", "globex"
    }  # fmt: skip
    assert client.get("/customers/acme/statements/2026-03").json() == served[0]


def test_without_as_of_the_store_is_not_read(example_settings, policy_book, tmp_path):
    """Point the store elsewhere (empty): the statements still come, from the projections' database."""
    elsewhere = example_settings.model_copy(
        update={
            "sqlite_path": tmp_path / "empty.sqlite",
            "projections_sqlite_path": example_settings.projections_sqlite_file(),
        }
    )
    with TestClient(create_app(elsewhere, policy_book)) as client:
        assert {s["customer_id"] for s in client.get("/statements", params={"month": "2026-03"}).json()} == {
            "acme", "globex"
        }  # fmt: skip
        assert client.get("/customers/acme/statements/2026-03").status_code == 200
        as_of = {"as_of": "2026-04-10T12:00:00+02:00"}
        assert client.get("/statements", params={"month": "2026-03"} | as_of).json() == []  # the store is empty


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("/statements", {"month": "2026-13"}, "month"),
        ("/statements", {}, "month"),
        ("/customers/acme/statements/2026-13", {}, "month"),
        ("/tickets", {"status": "lost"}, "status"),
        ("/breaches", {"now": "2026-03-02T10:00"}, "now"),
    ],
)
def test_a_bad_argument_is_422_naming_the_field(client, path, params, field):
    response = client.get(path, params=params)
    assert response.status_code == 422
    assert field in {problem["loc"][-1] for problem in response.json()["detail"]}


@pytest.mark.parametrize("path", ["/tickets/REF-nowhere", "/customers/nobody/statements/2026-03"])
def test_an_unknown_ticket_or_customer_is_404_without_a_traceback(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "Traceback" not in response.text and response.json()["detail"]


def test_the_openapi_document_lists_every_query(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/tickets", "/tickets/{reference_or_id}", "/breaches", "/breaches/history", "/at-risk", "/queue",
            "/statements", "/customers/{customer_id}/statements/{month}"} <= set(paths)  # fmt: skip


def test_with_a_token_every_request_needs_it(example_settings, policy_book):
    settings = example_settings.model_copy(update={"api_token": SecretStr("s3cret")})
    with TestClient(create_app(settings, policy_book)) as client:
        assert client.get("/tickets").status_code == 401
        assert client.get("/openapi.json").status_code == 401
        assert client.get("/tickets", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/tickets", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_an_unforeseen_failure_is_500_in_one_line(example_settings, policy_book):
    def broken(*_arguments):
        raise RuntimeError("the billing tables are gone")

    app = create_app(example_settings, policy_book, lookup=broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/statements", params={"month": "2026-03"})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal error (RuntimeError)"}
