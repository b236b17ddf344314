"""Placeholder: filled in by its issue."""


def schema() -> None:
    """Write the contract files."""
