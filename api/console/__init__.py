"""The browser console: server-rendered pages for the control room and for regulators
(templates/), their few scripts and the vendored chart library (static/), the report tables
and their exports. The routes are in api/routers/console_*.py and api/routers/reports.py."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from minewatch.api.console.render import Renderer

PREFIX = "/console"
LOGIN = f"{PREFIX}/login"


class SignInRedirect:
    """A page (under /console/) that answers 401 sends the browser to the sign-in page
    instead, with the page (and its query) to come back to; API routes keep their JSON 401."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PREFIX + "/") or path == LOGIN:
            await self.app(scope, receive, send)
            return
        redirected = False

        async def maybe_redirect(message: Message) -> None:
            nonlocal redirected
            if message["type"] == "http.response.start" and message["status"] == 401:
                redirected = True
                query = scope.get("query_string", b"").decode("latin-1")
                back = path + (f"?{query}" if query else "")
                location = f"{LOGIN}?next={quote(back, safe='/')}".encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 303,
                        "headers": [(b"location", location), (b"content-length", b"0")],
                    }
                )
                await send({"type": "http.response.body", "body": b""})
                return
            if not redirected:
                await send(message)

        await self.app(scope, receive, maybe_redirect)


def install(app: FastAPI) -> None:
    """The templates, and the redirect of signed-out browsers to the sign-in page."""
    app.state.renderer = Renderer()
    app.add_middleware(SignInRedirect)
