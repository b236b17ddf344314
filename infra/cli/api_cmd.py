"""`nettask api`: the HTTP read API (FastAPI on uvicorn), on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from infra.api.app import create_app
from infra.cli._common import bad_argument, fail, policy_book
from infra.retry import Unavailable
from infra.settings import Settings


def api(
    host: Annotated[str, typer.Option(help="Address to listen on; 0.0.0.0 exposes the API to the network.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8080,
) -> None:
    """Serve the SLA view and the statements as JSON (OpenAPI at /openapi.json); NETTASK_API_TOKEN asks a token."""
    if not 0 < port < 65536:
        bad_argument(f"port {port} is out of range; use 1-65535")
    try:
        app = create_app(Settings(), policy_book(None))
    except (Unavailable, ValueError) as error:
        fail(str(error))
    uvicorn.run(app, host=host, port=port, log_level="warning")
