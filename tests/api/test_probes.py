"""What an outside probe of the API found (issue 11), each over real HTTP: bad input answers
4xx with a short message that does not echo it, overload answers 503 with Retry-After, and the
answers match the OpenAPI description."""

from __future__ import annotations

import asyncio

import httpx
import psycopg
import pytest

from minewatch.api.accounts import Role
from minewatch.settings import ApiSettings
from tests.api.two_mines import World, bearer, build_world
from tests.helpers import running_api

pytestmark = pytest.mark.anyio

WINDOW = {"start": "2026-03-01T00:00:00+08:00", "end": "2026-03-02T00:00:00+08:00"}


def _client(base: str, world: World, role: Role = Role.DISPATCHER) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, headers=bearer(world.keys[role]), timeout=20)


def _is_validation_error(response: httpx.Response) -> bool:
    detail = response.json()["detail"]
    return (
        response.status_code == 422
        and isinstance(detail, list)
        and all({"loc", "msg", "type"} <= set(issue) and "input" not in issue for issue in detail)
    )


@pytest.fixture
async def world(database_url: str) -> World:
    return await build_world(database_url)


async def test_bad_query_values_answer_422_not_500(database_url: str, world: World) -> None:
    mine, point = world.a.code, world.a.point_id
    probes = [
        ("/api/v1/dispatch/alarms/active", {"limit": -1}),
        ("/api/v1/dispatch/alarms/active", {"limit": 2**63 + 5}),
        ("/api/v1/alarms", {"limit": 10**30}),
        (f"/api/v1/points/{2**31 + 1}/readings", WINDOW),
        ("/api/v1/alarms", {"point_id": 2**31}),
        ("/api/v1/alarms", {"rule": "upper\x00alarm"}),
        ("/api/v1/alarms", {"min_duration_s": "inf"}),
        ("/api/v1/alarms", {"min_duration_s": "nan"}),
        ("/api/v1/alarms", {"min_duration_s": 9.3e12}),  # overflowed into "every alarm"
        (f"/api/v1/personnel/mines/{mine}/leader-coverage", WINDOW | {"tz": "Mars/Olympus"}),
        (f"/api/v1/production/mines/{mine}/output", WINDOW | {"tz": "Not/AZone"}),
        (f"/api/v1/points/{point}/readings", WINDOW | {"bucket": "P999999999D"}),
        (f"/api/v1/personnel/mines/{mine}/headcount/series", WINDOW | {"step": "P99999999D"}),
        (f"/api/v1/personnel/mines/{mine}/leader-coverage",
         {"start": "0001-01-01T00:00:00+00:00", "end": "9999-12-31T23:59:59+00:00"}),
        (f"/api/v1/points/{point}/readings", {"start": "1700000000", "end": "1700003600"}),
        ("/api/v1/alarms", {"since": "2026-03-01T00:00:00"}),  # no offset
        (f"/api/v1/mines/{mine}/reconciliation",
         {"start": WINDOW["end"], "end": WINDOW["start"]}),  # backwards
        (f"/api/v1/personnel/mines/{mine}/people/a%00b/trajectory", WINDOW),
    ]  # fmt: skip
    async with running_api(database_url, signed_in=False) as base, _client(base, world) as client:
        for path, params in probes:
            response = await client.get(path, params=params)
            assert _is_validation_error(response), (path, params, response.text)


async def test_an_empty_range_is_allowed_as_the_schema_says(
    database_url: str, world: World
) -> None:
    same = {"start": WINDOW["start"], "end": WINDOW["start"]}
    async with running_api(database_url, signed_in=False) as base, _client(base, world) as client:
        response = await client.get(f"/api/v1/points/{world.a.point_id}/readings", params=same)
    assert response.status_code == 200 and response.json() == []


async def test_bad_bodies_answer_422_without_echo(database_url: str, world: World) -> None:
    shelve = f"/api/v1/dispatch/alarms/{world.a.alarm_id}/shelve"
    bodies = [
        b'{"reason": "r", "minutes": NaN}',
        b'{"reason": "r", "minutes": Infinity}',
        b'{"reason": "a\\u0000b", "minutes": 5}',
        b'{"reason": "\\ud800", "minutes": 5}',  # a lone surrogate
        b'{"reason": "' + b"x" * 30_000 + b'", "minutes": 5}',  # too long: not echoed
    ]
    async with running_api(database_url, signed_in=False) as base, _client(base, world) as client:
        for body in bodies:
            response = await client.post(
                shelve, content=body, headers={"Content-Type": "application/json"}
            )
            assert _is_validation_error(response), (body[:40], response.text)
            assert len(response.content) < 1000 and b"xxxx" not in response.content


async def test_an_oversized_body_is_refused_unread(database_url: str, world: World) -> None:
    dispose = f"/api/v1/dispatch/alarms/{world.a.alarm_id}/dispose"
    big = b'{"cause": "' + b"y" * 200_000 + b'", "measures": "m"}'

    async def chunked() -> object:
        for start in range(0, len(big), 10_000):
            yield big[start : start + 10_000]

    async with running_api(database_url, signed_in=False) as base, _client(base, world) as client:
        declared = await client.post(dispose, content=big)
        streamed = await client.post(dispose, content=chunked())  # no Content-Length
    for response in (declared, streamed):
        assert response.status_code == 413, response.text
        assert b"yyyy" not in response.content


async def test_pool_exhaustion_answers_503_with_retry_after(
    database_url: str, world: World
) -> None:
    tight = ApiSettings(pool_max_size=1, pool_max_waiting=1, pool_timeout_s=0.5)
    async with (
        running_api(database_url, signed_in=False, api=tight) as base,
        _client(base, world) as client,
    ):
        responses = await asyncio.gather(*(client.get("/api/v1/mines") for _ in range(40)))
    statuses = {r.status_code for r in responses}
    assert statuses <= {200, 503}, statuses
    busy = [r for r in responses if r.status_code == 503]
    assert busy and all(r.headers["Retry-After"].isdigit() for r in busy)


async def test_health_checks_the_database(database_url: str, pg_server) -> None:  # type: ignore[no-untyped-def]
    name = database_url.rsplit("/", 1)[1]
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base, timeout=20) as client,
    ):
        assert (await client.get("/health")).json() == {"status": "ok", "database": "ok"}
        with psycopg.connect(pg_server.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        gone = await client.get("/health")
    assert gone.status_code == 503 and "Retry-After" in gone.headers


async def test_one_alarm_by_id_with_its_lifecycle(database_url: str, world: World) -> None:
    async with running_api(database_url, signed_in=False) as base, _client(base, world) as client:
        await client.post(f"/api/v1/dispatch/alarms/{world.a.alarm_id}/acknowledge")
        one = await client.get(f"/api/v1/alarms/{world.a.alarm_id}")
        other = await client.get(f"/api/v1/alarms/{world.b.alarm_id}")
    assert one.status_code == 200
    assert one.json()["acknowledged_by"] == f"key:{world.keys[Role.DISPATCHER][4:16]}"
    assert one.json()["grade"] == "red" and "escalated_at" in one.json()
    assert other.status_code == 404


async def test_the_schema_documents_errors_and_the_event_stream(
    database_url: str, world: World
) -> None:
    async with running_api(database_url, signed_in=False) as base, _client(base, world) as client:
        spec = (await client.get("/openapi.json")).json()
        unknown = await client.get("/api/v1/video/mines/141024019999/cameras")
    shelve = spec["paths"]["/api/v1/dispatch/alarms/{alarm_id}/shelve"]["post"]["responses"]
    assert {"401", "403", "404", "409", "413", "422", "503"} <= set(shelve)
    stream = spec["paths"]["/api/v1/dispatch/alarms/stream"]["get"]["responses"]["200"]
    assert list(stream["content"]) == ["text/event-stream"]
    assert unknown.status_code == 404  # unknown mines answer 404 on every route, not []


async def test_swagger_ui_is_served_from_files_of_minewatch(database_url: str) -> None:
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        page = await client.get("/docs")
        bundle = await client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert page.status_code == 200
    assert "/static/swagger-ui/swagger-ui-bundle.js" in page.text and "cdn" not in page.text
    assert bundle.status_code == 200 and len(bundle.content) > 100_000


async def test_the_live_board_answers_while_reports_wait(database_url: str, world: World) -> None:
    """Slow reports (here: blocked by a table lock) take at most their slots of the pool; the
    dispatcher's active view still gets a connection at once."""
    small = ApiSettings(pool_max_size=3, pool_timeout_s=5)  # 1 report slot
    readings = f"/api/v1/points/{world.a.point_id}/readings"
    async with (
        running_api(database_url, signed_in=False, api=small) as base,
        _client(base, world) as client,
    ):
        with psycopg.connect(database_url) as locker:
            locker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
            reports = [asyncio.create_task(client.get(readings, params=WINDOW)) for _ in range(6)]
            await asyncio.sleep(0.5)
            began = asyncio.get_running_loop().time()
            board = await client.get("/api/v1/dispatch/alarms/active")
            waited = asyncio.get_running_loop().time() - began
        answers = await asyncio.gather(*reports)
    assert board.status_code == 200 and waited < 1.0, (board.status_code, waited)
    assert {r.status_code for r in answers} <= {200, 503}


async def test_day_buckets_follow_the_local_day(database_url: str, world: World) -> None:
    """A P1D bucket of a Beijing day starts at local midnight, not at 08:00 local (UTC)."""
    beijing = "+08:00"
    with psycopg.connect(database_url) as conn:
        for hour, value in ((1, 1.0), (9, 2.0), (23, 3.0)):  # one local day, 2026-03-01
            conn.execute(
                "INSERT INTO readings (time, point_id, value) VALUES (%s, %s, %s)",
                (f"2026-03-01T{hour:02d}:00:00{beijing}", world.a.point_id, value),
            )
    params = {"start": f"2026-03-01T00:00:00{beijing}", "end": f"2026-03-02T00:00:00{beijing}",
              "bucket": "P1D", "tz": "Asia/Shanghai"}  # fmt: skip
    async with running_api(database_url, signed_in=False) as base, _client(base, world) as client:
        local = await client.get(f"/api/v1/points/{world.a.point_id}/readings", params=params)
    assert [(b["time"], b["count"]) for b in local.json()] == [("2026-02-28T16:00:00Z", 3)]


async def test_alarm_lists_come_in_pages_with_a_total(database_url: str, world: World) -> None:
    with psycopg.connect(database_url) as conn:
        for rule in ("upper_alarm", "upper_prewarn"):
            conn.execute(
                "INSERT INTO alarms (mine_code, point_id, rule, abnormal_type, started_at, "
                "start_value, max_value, max_at, min_value, min_at, value_sum, value_count) "
                "VALUES (%s, %s, %s, '001', now(), 1, 1, now(), 1, now(), 1, 1)",
                (world.a.code, world.a.point_id, rule),
            )
    async with running_api(database_url, signed_in=False) as base, _client(base, world) as client:
        first = await client.get("/api/v1/alarms", params={"limit": 2})
        rest = await client.get("/api/v1/alarms", params={"limit": 2, "offset": 2})
    assert first.headers["X-Total-Count"] == rest.headers["X-Total-Count"] == "3"
    ids = [a["id"] for a in first.json() + rest.json()]
    assert len(ids) == len(set(ids)) == 3  # mine B's alarm is not counted for this dispatcher


async def test_month_buckets_follow_the_calendar(database_url: str, world: World) -> None:
    """P1M is a calendar month of the time zone, not 30 days."""
    with psycopg.connect(database_url) as conn:
        for day in ("2026-01-31T23:00:00+08:00", "2026-02-01T01:00:00+08:00",
                    "2026-02-28T23:00:00+08:00", "2026-03-01T01:00:00+08:00"):  # fmt: skip
            conn.execute("INSERT INTO readings (time, point_id, value) VALUES (%s, %s, 1)",
                         (day, world.a.point_id))  # fmt: skip
    params = {"start": "2026-01-01T00:00:00+08:00", "end": "2026-04-01T00:00:00+08:00",
              "bucket": "P1M", "tz": "Asia/Shanghai"}  # fmt: skip
    path = f"/api/v1/points/{world.a.point_id}/readings"
    async with running_api(database_url, signed_in=False) as base, _client(base, world) as client:
        months = await client.get(path, params=params)
        mixed = await client.get(path, params=params | {"bucket": "P1M1D"})
        step = await client.get(f"/api/v1/personnel/mines/{world.a.code}/headcount/series",
                                params=params | {"step": "P1M"})  # fmt: skip
    assert [(b["time"], b["count"]) for b in months.json()] == [
        ("2025-12-31T16:00:00Z", 1), ("2026-01-31T16:00:00Z", 2), ("2026-02-28T16:00:00Z", 1),
    ]  # fmt: skip
    assert _is_validation_error(mixed) and _is_validation_error(step)
