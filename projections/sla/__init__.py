"""The SLA view: tickets and their SLA metrics as the aggregate sees them, with queries for analysts."""
