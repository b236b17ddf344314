"""`replaced` copies the domain's frozen states as dataclasses.replace does, field for field."""

from __future__ import annotations

from dataclasses import replace

import pytest

from domain.copying import replaced
from projections.sla.view import fold
from tests.unit.builders import opened


def test_replaced_is_dataclasses_replace_for_the_domain_states():
    ticket = fold(None, opened().events()[0]).ticket
    metric = ticket.metrics["first_response"]
    assert replaced(metric, at_risk_flagged=True) == replace(metric, at_risk_flagged=True)
    assert replaced(ticket, version=7, metrics={}) == replace(ticket, version=7, metrics={})
    copy = replaced(ticket)
    assert copy == ticket and copy is not ticket


def test_a_field_the_state_does_not_have_is_refused_as_replace_refuses_it():
    metric = fold(None, opened().events()[0]).ticket.metrics["first_response"]
    with pytest.raises(TypeError, match="no field 'due'"):
        replaced(metric, due=None)
