"""Error answers of the API: every error is JSON with a short ``detail`` that never echoes the
request's input back, every overload is 503 with ``Retry-After``, and a body larger than the
limit is refused before it is parsed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import iter_route_contexts
from psycopg_pool import PoolTimeout, TooManyRequests
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

RETRY_AFTER_S = 2


class ErrorDetail(BaseModel):
    """A 4xx/5xx answer other than 422."""

    detail: str


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationErrors(BaseModel):
    """A 422 answer: what is wrong, where; the input itself is not repeated."""

    detail: list[ValidationIssue]


def _response(status: int, description: str) -> dict[str, Any]:
    return {"model": ErrorDetail, "description": description}


#: Documented on every route that needs credentials.
SIGNED_IN_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _response(400, "The body is not JSON (or not UTF-8)."),
    401: _response(401, "No credentials, or they are not valid."),
    403: _response(403, "Signed in, but the role may not do this (or a missing CSRF token)."),
    413: _response(413, "Request body too large."),
    422: {"model": ValidationErrors, "description": "Invalid parameters or body."},
    503: _response(503, "Overloaded or the database is unavailable; retry after Retry-After."),
}
Responses = dict[int | str, dict[str, Any]]
NOT_FOUND: Responses = {404: _response(404, "Not known, or outside the caller's scope.")}
CONFLICT: Responses = {
    409: _response(409, "The lifecycle step is not allowed from the alarm's state.")
}


def invalid(location: Sequence[str | int], message: str) -> RequestValidationError:
    """A 422 in the same shape as pydantic's, for checks across parameters."""
    return RequestValidationError([{"loc": tuple(location), "msg": message, "type": "value_error"}])


def _issues(errors: Sequence[Any]) -> list[dict[str, object]]:
    return [
        {
            "loc": [p if isinstance(p, int) else str(p)[:100] for p in error.get("loc", ())],
            "msg": str(error.get("msg", "invalid"))[:300],
            "type": str(error.get("type", "value_error"))[:100],
        }
        for error in errors[:20]
    ]


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return JSONResponse({"detail": _issues(exc.errors())}, status_code=422)


def unavailable(detail: str) -> JSONResponse:
    return JSONResponse(
        {"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
    )


async def _overloaded(request: Request, exc: Exception) -> JSONResponse:
    log.warning("overloaded: %s %s (%s)", request.method, request.url.path, type(exc).__name__)
    return unavailable("the service is busy; retry shortly")


async def _database_gone(request: Request, exc: Exception) -> JSONResponse:
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    return unavailable("the database is unavailable; retry shortly")


async def _too_long(request: Request, exc: Exception) -> JSONResponse:
    log.warning("query over the statement timeout: %s %s", request.method, request.url.path)
    return unavailable("the query took longer than the limit; narrow it or retry later")


async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
    # A value valid to the schema that PostgreSQL still cannot represent (an interval or a
    # timestamp at its limits): the caller's input, not our fault.
    return JSONResponse(
        {"detail": [{"loc": ["query"], "msg": "a value is out of range", "type": "value_error"}]},
        status_code=422,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    """FastAPI's answer, but a 405 lists in ``Allow`` every method the path has (a path whose
    methods are separate routes would otherwise name only the first route's)."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 405:
        allowed = set()
        for context in iter_route_contexts(request.app.routes):
            path, methods = context.path, context.methods
            if path and methods and compile_path(path)[0].match(request.url.path):
                allowed |= methods
        exc.headers = {**(exc.headers or {}), "Allow": ", ".join(sorted(allowed))}
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(TooManyRequests, _overloaded)
    app.add_exception_handler(PoolTimeout, _overloaded)
    app.add_exception_handler(psycopg.errors.DatetimeFieldOverflow, _out_of_range)
    app.add_exception_handler(psycopg.errors.IntervalFieldOverflow, _out_of_range)
    app.add_exception_handler(psycopg.errors.NumericValueOutOfRange, _out_of_range)
    app.add_exception_handler(psycopg.OperationalError, _database_gone)
    app.add_exception_handler(psycopg.errors.QueryCanceled, _too_long)
    app.add_exception_handler(OverflowError, _out_of_range)


class BodyLimit:
    """Refuse a request body over ``max_bytes`` with 413, whether it declares its length or
    streams it (chunked): the body is never read past the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await _too_large(send, self.max_bytes)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _BodyTooLarge:
            if not started:
                await _too_large(send, self.max_bytes)


class _BodyTooLarge(HTTPException):
    # An HTTPException, so that FastAPI's body parsing passes it on as it is (413), rather
    # than turning it into a 400.
    def __init__(self) -> None:
        super().__init__(413, "request body too large")


async def _too_large(send: Send, max_bytes: int) -> None:
    body = b'{"detail":"request body larger than %d bytes"}' % max_bytes
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close"),
                        (b"content-length", str(len(body)).encode())],
        }
    )  # fmt: skip
    await send({"type": "http.response.body", "body": body})
