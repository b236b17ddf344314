"""Reading the policy file: an operator's TOML file, or the policy shipped with the engine."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from domain.errors import PolicyError
from domain.policy import PolicyBook, parse_policy

SHIPPED = "data/policy.toml"


def load_policy(path: Path | None = None) -> PolicyBook:
    """The policy book in `path`, or the shipped one; an unreadable or invalid file is a PolicyError."""
    if path is None:
        return parse_policy(resources.files("domain").joinpath(SHIPPED).read_text("utf-8"), f"domain/{SHIPPED}")
    try:
        text = path.read_text("utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise PolicyError(f"policy file {path} is not UTF-8 text") from None
    return parse_policy(text, str(path))
