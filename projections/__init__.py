"""Read models built from ticket events: the SLA view and billing statements."""
