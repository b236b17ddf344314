"""Bearer-token check for every request, when NETTASK_API_TOKEN is set."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send


class BearerToken:
    """ASGI middleware: 401 unless `Authorization: Bearer <token>` names the token (constant-time comparison).

    A middleware rather than a route dependency, so /openapi.json and /docs are guarded like the data.
    """

    def __init__(self, app: ASGIApp, token: str):
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._allowed(Request(scope)):
            await self.app(scope, receive, send)
            return
        await _refused()(scope, receive, send)

    def _allowed(self, request: Request) -> bool:
        given = request.headers.get("authorization", "").encode()
        # compare_digest: the time taken tells nothing about how much of the token was right.
        return hmac.compare_digest(given, self.expected)


def _refused() -> Response:
    return JSONResponse(
        {"detail": "missing or wrong bearer token"}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
    )
