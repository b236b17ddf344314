"""Billing read model: events folded into statements per customer and Berlin month, closed months frozen."""

from projections.billing.fold import BillingFold
from projections.billing.queries import all_statements, billed_months, customers, statement, statements
from projections.billing.usage import UsageLedger

__all__ = ["BillingFold", "UsageLedger", "all_statements", "billed_months", "customers", "statement", "statements"]
