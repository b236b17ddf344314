"""The SLA view as rebuild and verify see it: its tables, its projection, the rows that must match the store."""

from __future__ import annotations

from projections.rebuild import Comparison, RebuildableView
from projections.sla import tables
from projections.sla.projection import SlaProjection

SLA_VIEW = RebuildableView(
    name="sla",
    tables=tables.TABLES,
    projection=SlaProjection,
    create_bare_tables=tables.create_bare_tables,
    create_indexes=tables.create_indexes,
    comparisons=(
        # The folded state is left out: it is the projection's working copy, its rows say what it means.
        Comparison(tables.TICKETS, ("ticket_id",), tuple(c for c in tables.TICKET_COLUMNS if c != "state")),
        Comparison(tables.METRICS, ("ticket_id", "metric"), tables.METRIC_COLUMNS),
    ),
)
