"""Domain errors: each says what was refused and why, in words an operator can act on."""


class DomainError(Exception):
    """A command the domain refuses; the message is the reason."""


class PolicyError(DomainError):
    """The policy is invalid, or does not know a plan, language or department."""


class TicketNotFound(DomainError):
    """A command names a ticket that was never opened."""


class TicketAlreadyOpened(DomainError):
    """An Open for a reference that already has a ticket."""


class IllegalTransition(DomainError):
    """The ticket's state does not allow the command."""


class NotIncluded(DomainError):
    """The customer's plan does not include the department, channel or service asked for."""


class NoPlanInForce(DomainError):
    """The customer has no support plan at the time of the command."""
