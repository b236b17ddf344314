"""The HTTP read API: the SLA view and the statements as JSON, for analysts and other services."""
