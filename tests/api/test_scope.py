"""Every route of the OpenAPI schema, walked with each role and with no credentials, against
resources of a mine outside the caller's scope: none may answer with data.

The walk fills parameters by name; a route with a parameter it does not know fails the test,
so a new route is walked as soon as it exists. A route without a scope decision cannot be
added at all: ``create_app`` refuses to build (``undecided_routes``), tested below.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from minewatch.api import create_app
from minewatch.api.accounts import Role
from minewatch.api.auth import undecided_routes
from tests.api.two_mines import World, bearer, build_world, national_file_of
from tests.helpers import running_api

pytestmark = pytest.mark.anyio

START, END = "2026-03-01T00:00:00+08:00", "2026-03-02T00:00:00+08:00"
#: Routes that concern no mine: they may answer a signed-in caller, never with B's data.
MINELESS = {"/api/v1/mines", "/api/v1/auth/me", "/api/v1/auth/logout", "/api/v1/auth/login",
            "/health"}  # fmt: skip
PUBLIC = {"/api/v1/auth/login", "/health"}


def _path_values(world: World, mine: str) -> dict[str, str]:
    target = world.a if mine == world.a.code else world.b
    return {"mine": target.code, "point_id": str(target.point_id),
            "alarm_id": str(target.alarm_id), "card": f"{target.code}00001",
            "camera": "CAM-01", "username": "dispatcher1", "key_id": "abcdefghijkl",
            "directive_id": "6f2c1a9e-0000-4000-8000-000000000001",
            "name": national_file_of(target.code)[0]}  # fmt: skip


def _body(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, object]:
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    example = {"string": "probe text", "number": 1, "integer": 1, "boolean": True}
    body: dict[str, object] = {}
    for name in schema.get("required", []):
        prop = schema["properties"][name]
        if "$ref" in prop:
            prop = components[prop["$ref"].rsplit("/", 1)[1]]
        if "enum" in prop:
            body[name] = prop["enum"][0]
            continue
        kind = prop.get("type") or next(t["type"] for t in prop["anyOf"] if "type" in t)
        body[name] = example[kind]
    return body


def _requests(spec: dict[str, Any], world: World, mine: str) -> list[tuple[str, str, dict]]:  # type: ignore[type-arg]
    components = spec["components"]["schemas"]
    values = _path_values(world, mine)
    out = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            url, params = path, {}
            for param in operation.get("parameters", []):
                name = param["name"]
                if param["in"] == "path":
                    assert name in values, f"{method} {path}: no value for path parameter {name}"
                    url = url.replace("{" + name + "}", values[name])
                elif name == "mine":
                    params["mine"] = values["mine"]
                elif name in ("start", "end"):
                    params[name] = START if name == "start" else END
                else:
                    assert not param.get("required"), f"{method} {path}: fill {name}"
            request: dict[str, object] = {"params": params}
            body = operation.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                request["json"] = _body(schema, components)
            out.append((method.upper(), url, request | {"template": path}))
    return out


async def _send(client: httpx.AsyncClient, method: str, url: str, request: dict) -> httpx.Response:  # type: ignore[type-arg]
    async with client.stream(method, url, params=request["params"],
                             json=request.get("json")) as response:  # fmt: skip
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return httpx.Response(response.status_code, content=b"(stream)")
        await response.aread()
        return response


async def test_no_route_answers_with_data_of_a_mine_outside_the_scope(database_url: str) -> None:
    world = await build_world(database_url)
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
    ):
        spec = (await client.get("/openapi.json")).json()
        walks = _requests(spec, world, world.b.code)
        assert len(walks) >= 29
        # no credentials: 401 everywhere but the public routes
        for method, url, request in walks:
            response = await _send(client, method, url, request)
            if request["template"] in PUBLIC:
                assert response.status_code != 403, (method, url)
            else:
                assert response.status_code == 401, (method, url, response.text)
        # each role, mine B's resources: 403 (role) or 404 (scope), never data
        for role in (Role.DISPATCHER, Role.REGULATOR):
            client.headers.update(bearer(world.keys[role]))
            for method, url, request in walks:
                response = await _send(client, method, url, request)
                text = response.text
                assert world.b.code not in text and world.b.point_code not in text, (role, url)
                if request["template"] not in MINELESS:
                    assert response.status_code in (403, 404), (role, method, url, text)
                    assert "probe" not in text  # no echo of the input either


async def test_the_same_walk_in_scope_answers(database_url: str) -> None:
    """The walk's parameters are good: in its own mine, a dispatcher's reads answer 200
    (so the 404s above are the scope's doing, not bad requests)."""
    world = await build_world(database_url)
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(
            base_url=base, timeout=10, headers=bearer(world.keys[Role.DISPATCHER])
        ) as client,
    ):
        spec = (await client.get("/openapi.json")).json()
        for method, url, request in _requests(spec, world, world.a.code):
            not_a_dispatchers = request["template"].startswith(("/api/v1/audit", "/api/v1/admin"))
            if method == "GET" and not not_a_dispatchers:
                response = await _send(client, method, url, request)
                assert response.status_code == 200, (url, response.text)


async def test_roles_each_route_allows(database_url: str) -> None:
    world = await build_world(database_url)
    a = world.a
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base, timeout=10) as client,
    ):
        ack = f"/api/v1/dispatch/alarms/{a.alarm_id}/acknowledge"
        for role, status in ((Role.REGULATOR, 403), (Role.ADMIN, 403), (Role.DISPATCHER, 200)):
            response = await client.post(ack, headers=bearer(world.keys[role]))
            assert response.status_code == status, (role, response.text)
        audit = "/api/v1/audit"
        assert (
            await client.get(audit, headers=bearer(world.keys[Role.DISPATCHER]))
        ).status_code == 403
        mines = await client.get("/api/v1/mines", headers=bearer(world.keys[Role.ADMIN]))
        assert {m["code"] for m in mines.json()} == {a.code, world.b.code}
        regulator = await client.get("/api/v1/mines", headers=bearer(world.keys[Role.REGULATOR]))
        assert [m["code"] for m in regulator.json()] == [a.code]


def test_a_route_without_a_scope_decision_is_refused() -> None:
    app = create_app("postgresql://unused/none")
    assert undecided_routes(app) == []

    @app.get("/api/v1/new-thing")
    async def new_thing() -> dict[str, str]:
        return {}

    assert undecided_routes(app) == ["['GET'] /api/v1/new-thing"]
    bare = FastAPI()
    bare.get("/x")(new_thing)
    assert "['GET'] /x" in undecided_routes(bare)
    assert "/redoc" in undecided_routes(bare)  # FastAPI's own pages (CDN) are not allowed
