"""Placeholder: filled in by its issue."""


def replay() -> None:
    """Replay commands."""
