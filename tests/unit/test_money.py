"""One money type: whole cents, never a float, on statements (signed) and in the policy (prices, never negative)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.errors import PolicyError
from domain.money import Cents, Price
from domain.policy import parse_policy
from tests.unit.builders import shipped_policy_text

CENTS, PRICE = TypeAdapter(Cents), TypeAdapter(Price)


@pytest.mark.parametrize("given", ["99.9", "99.90", Decimal("99.9")])
def test_an_amount_is_kept_to_the_cent(given):
    assert str(CENTS.validate_python(given)) == str(PRICE.validate_python(given)) == "99.90"


@pytest.mark.parametrize("given", [99.99, "99.999"])
def test_a_float_or_a_fraction_of_a_cent_is_refused_by_both(given):
    for adapter in (CENTS, PRICE):
        with pytest.raises(ValidationError):
            adapter.validate_python(given)


def test_a_credit_can_be_negative_a_price_cannot():
    assert CENTS.validate_python("-5.00") == Decimal("-5.00")
    with pytest.raises(ValidationError):
        PRICE.validate_python("-5.00")


def test_a_policy_price_given_as_a_float_or_below_a_cent_is_refused():
    for wrong in ("monthly_fee = 99.99", 'monthly_fee = "99.999"'):
        text = shipped_policy_text().replace('monthly_fee = "99.99"', wrong, 1)
        with pytest.raises(PolicyError, match="monthly_fee"):
            parse_policy(text, source="test.toml")
