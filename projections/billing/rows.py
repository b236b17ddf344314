"""The billing fold's state read and written as rows: only those of the tickets, customers and months asked for."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.billing import Incident
from domain.money import Month
from projections.billing import tables
from projections.billing.state import CALLBACK, INCIDENT, LINES, STATEMENT, SUBSCRIPTIONS, Changes, Loaded
from projections.database import LOOKUP_CHUNK, OnConflict, ProjectionDatabase
from projections.state_cache import StateCache

CustomerMonths = set[tuple[str, str]]  # (customer id, month as text)


class StateRows:
    """Reads rows of the fold's state into a `Loaded`, and writes a batch's changes back."""

    def __init__(self, db: ProjectionDatabase):
        self.db = db
        # The incidents as last read or written: the batch's follow-ups find their ticket's row unchanged, unparsed.
        self.incidents: StateCache[Incident] = StateCache(
            INCIDENT.validate_json, lambda i: INCIDENT.dump_json(i).decode()
        )

    def tickets(self, cursor: Any, loaded: Loaded, ticket_ids: Iterable[str]) -> None:
        """The incidents of these tickets."""
        self._incidents(cursor, loaded, "ticket_id IN ({marks})", (), ticket_ids)

    def subscriptions(self, cursor: Any, loaded: Loaded, customer_ids: Iterable[str] | None) -> None:
        """These customers' plans; every customer's when `customer_ids` is None."""
        for customer_id, state in self._select(cursor, tables.SUBSCRIPTIONS, "customer_id, state", customer_ids):
            loaded.subscriptions[customer_id] = SUBSCRIPTIONS.validate_json(state)

    def customers(self, cursor: Any, loaded: Loaded, customer_ids: Iterable[str]) -> None:
        """Everything of these customers: their usage, frozen statements and carried adjustments of every month."""
        customer_ids = list(customer_ids)
        self._incidents(cursor, loaded, "customer_id IN ({marks})", (), customer_ids)
        self._callbacks(cursor, loaded, "customer_id IN ({marks})", (), customer_ids)
        self.carried(cursor, loaded, customer_ids)
        for customer_id, month, state in self._select(cursor, tables.FROZEN, "customer_id, month, state", customer_ids):
            loaded.frozen[customer_id, Month.parse(month)] = STATEMENT.validate_json(state)

    def carried(self, cursor: Any, loaded: Loaded, customer_ids: Iterable[str]) -> None:
        """Every adjustment these customers have carried: an adjustment of a closed month counts those before it."""
        columns = "customer_id, month, state"
        for customer_id, month, state in self._select(cursor, tables.CARRIED, columns, customer_ids):
            loaded.carried[customer_id, Month.parse(month)] = LINES.validate_json(state)

    def months(self, cursor: Any, loaded: Loaded, months: Iterable[str]) -> None:
        """Every customer's usage, frozen statements and carried adjustments of these months (a closing's)."""
        months = list(months)
        self._incidents(cursor, loaded, "month IN ({marks})", (), months)
        self._callbacks(cursor, loaded, "month IN ({marks})", (), months)
        self._by_month(cursor, loaded, "month IN ({marks})", (), months)

    def pairs(self, cursor: Any, loaded: Loaded, pairs: CustomerMonths) -> None:
        """The usage, frozen statement and carried adjustments of each (customer, month)."""
        for month in sorted({month for _, month in pairs}):
            customer_ids = [customer_id for customer_id, of in pairs if of == month]
            where = f"month = {self.db.mark} AND customer_id IN ({{marks}})"
            self._incidents(cursor, loaded, where, (month,), customer_ids)
            self._callbacks(cursor, loaded, where, (month,), customer_ids)
            self._by_month(cursor, loaded, where, (month,), customer_ids)

    def write(self, cursor: Any, changes: Changes, zone: Any) -> None:
        """The batch's changed rows, each written over the stored one of its key."""
        write, replace = self.db.write_rows, OnConflict.REPLACE
        columns = ("customer_id", "month", "state")
        incidents = [
            (key := str(i.ticket_id), i.customer_id, str(Month.of(i.opened_at, zone)), self.incidents.dump(key, i))
            for i in changes.incidents
        ]
        write(cursor, tables.INCIDENTS, ("ticket_id", *columns), ("ticket_id",), incidents, replace)
        callbacks = [
            (str(c.event_id), c.customer_id, str(Month.of(c.done_at, zone)), CALLBACK.dump_json(c).decode())
            for c in changes.callbacks
        ]
        write(cursor, tables.CALLBACKS, ("event_id", *columns), ("event_id",), callbacks, replace)
        plans = [(c, SUBSCRIPTIONS.dump_json(s).decode()) for c, s in changes.subscriptions.items()]
        write(cursor, tables.SUBSCRIPTIONS, ("customer_id", "state"), ("customer_id",), plans, replace)
        frozen = [(c, str(m), STATEMENT.dump_json(s).decode()) for (c, m), s in changes.frozen.items()]
        write(cursor, tables.FROZEN, columns, ("customer_id", "month"), frozen, replace)
        carried = [(c, str(m), LINES.dump_json(lines).decode()) for (c, m), lines in changes.carried.items()]
        write(cursor, tables.CARRIED, columns, ("customer_id", "month"), carried, replace)

    def _incidents(self, cursor: Any, loaded: Loaded, where: str, fixed: tuple, keys: Iterable[str]) -> None:
        select = f"SELECT ticket_id, state FROM {self.db.table(tables.INCIDENTS)}"
        for ticket_id, state in self.select_in(cursor, select, where, fixed, keys):
            incident = self.incidents.load(ticket_id, state)
            loaded.incidents[incident.ticket_id] = incident

    def _callbacks(self, cursor: Any, loaded: Loaded, where: str, fixed: tuple, keys: Iterable[str]) -> None:
        select = f"SELECT event_id, state FROM {self.db.table(tables.CALLBACKS)}"
        for event_id, state in self.select_in(cursor, select, where, fixed, keys):
            loaded.callbacks[event_id] = CALLBACK.validate_json(state)

    def _by_month(self, cursor: Any, loaded: Loaded, where: str, fixed: tuple, keys: Iterable[str]) -> None:
        """The frozen statements and carried adjustments of the (customer, month) keys selected."""
        kinds = ((tables.FROZEN, loaded.frozen, STATEMENT), (tables.CARRIED, loaded.carried, LINES))
        for table, into, adapter in kinds:
            select = f"SELECT customer_id, month, state FROM {self.db.table(table)}"
            for customer_id, month, state in self.select_in(cursor, select, where, fixed, keys):
                into[customer_id, Month.parse(month)] = adapter.validate_json(state)

    def _select(self, cursor: Any, table: str, columns: str, customer_ids: Iterable[str] | None) -> list[tuple]:
        select = f"SELECT {columns} FROM {self.db.table(table)}"
        if customer_ids is None:
            cursor.execute(select)
            return cursor.fetchall()
        return self.select_in(cursor, select, "customer_id IN ({marks})", (), customer_ids)

    def select_in(self, cursor: Any, select: str, where: str, fixed: tuple, keys: Iterable[str]) -> list[tuple]:
        """`select` with `where`, whose `{marks}` stands in for the keys (in chunks), after the `fixed` parameters."""
        wanted, rows = sorted(set(keys)), []
        for start in range(0, len(wanted), LOOKUP_CHUNK):
            chunk = wanted[start : start + LOOKUP_CHUNK]
            cursor.execute(f"{select} WHERE {where.format(marks=self.db.marks(len(chunk)))}", (*fixed, *chunk))
            rows += cursor.fetchall()
        return rows
