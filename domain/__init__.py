"""The ticket model: policy, business calendar, SLA deadlines, the ticket aggregate, billing rules. No I/O."""
