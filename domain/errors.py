"""Domain errors: each says what was refused and why, in words an operator can act on."""


class DomainError(Exception):
    """A command the domain refuses; the message is the reason, `kind` names the refusal for a dead letter."""

    kind = "refused"


class MissingFact(DomainError):
    """The command needs a fact not recorded yet (a plan, an opening) that may still be on its way."""

    kind = "missing-fact"


class ConflictingRepeat(DomainError):
    """A command id seen before, with a different body: a publisher reused an id, the second command is not applied."""

    kind = "conflicting-repeat"


class Forbidden(DomainError):
    """The command's source may not send this type of command, by the policy."""

    kind = "forbidden"


class PolicyError(DomainError):
    """The policy is invalid, or does not know a plan, language or department."""


class TicketNotFound(MissingFact):
    """A command names a ticket that was never opened."""


class TicketAlreadyOpened(DomainError):
    """An Open for a reference that already has a ticket."""


class IllegalTransition(DomainError):
    """The ticket's state does not allow the command."""


class NotIncluded(DomainError):
    """The customer's plan does not include the department, channel or service asked for."""


class NoPlanInForce(MissingFact):
    """The customer has no support plan at the time of the command."""


class MonthNotEnded(DomainError):
    """A month cannot be closed before its last instant has passed."""
