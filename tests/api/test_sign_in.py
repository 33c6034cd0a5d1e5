"""Signing in: one answer for a wrong username or password, slower answers after repeated
failures, then 429; sessions by cookie (with CSRF) and by bearer token; the audit log."""

from __future__ import annotations

import time

import httpx
import psycopg
import pytest

from minewatch.api.accounts import Role
from minewatch.settings import AuthSettings
from tests.api.two_mines import PASSWORD, bearer, build_world
from tests.helpers import TEST_AUTH, running_api

pytestmark = pytest.mark.anyio

LOGIN = "/api/v1/auth/login"


async def test_a_wrong_username_or_password_answers_the_same_and_slows_down(
    database_url: str,
) -> None:
    world = await build_world(database_url)
    auth = TEST_AUTH.model_copy(update={"login_free_failures": 2, "login_delay_base_s": 0.4,
                                        "login_lockout_failures": 5})  # fmt: skip
    user = world.usernames[Role.DISPATCHER]
    async with (
        running_api(database_url, signed_in=False, auth=auth) as base,
        httpx.AsyncClient(base_url=base, timeout=30) as client,
    ):
        began = time.monotonic()
        wrong_user = await client.post(LOGIN, json={"username": "nobody", "password": PASSWORD})
        wrong_pass = await client.post(LOGIN, json={"username": user, "password": "guess"})
        assert time.monotonic() - began < 0.4  # the free failures: no delay
        assert wrong_user.status_code == wrong_pass.status_code == 401
        assert wrong_user.json() == wrong_pass.json()  # which part was wrong is not said
        timings = []
        for _ in range(3):  # after 2, 3, 4 failures from this address: 0.4, 0.8, 1.6 s
            began = time.monotonic()
            response = await client.post(LOGIN, json={"username": user, "password": "guess"})
            timings.append(time.monotonic() - began)
            assert response.status_code == 401
        assert timings[0] >= 0.4 and timings[1] >= 0.8 and timings[2] >= 1.6
        locked = await client.post(LOGIN, json={"username": user, "password": PASSWORD})
        assert locked.status_code == 429 and locked.headers["Retry-After"].isdigit()


async def test_a_session_by_cookie_needs_csrf_for_changes_and_a_bearer_token_does_not(
    database_url: str,
) -> None:
    world = await build_world(database_url)
    ack = f"/api/v1/dispatch/alarms/{world.a.alarm_id}/acknowledge"
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base) as browser,
    ):
        session = await browser.post(
            LOGIN, json={"username": world.usernames[Role.DISPATCHER], "password": PASSWORD}
        )
        cookie = session.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert (await browser.get("/api/v1/auth/me")).json()["role"] == "dispatcher"
        assert (await browser.post(ack)).status_code == 403  # cookie without the CSRF token
        async with httpx.AsyncClient(base_url=base) as script:
            token = {"Authorization": f"Bearer {session.json()['token']}"}
            assert (await script.post(ack, headers=token)).status_code == 200
            assert (await script.post("/api/v1/auth/logout", headers=token)).status_code == 204
            assert (await script.get("/api/v1/auth/me", headers=token)).status_code == 401


def test_secure_cookies_by_default() -> None:
    assert AuthSettings().cookie_secure


async def test_regulators_queries_are_audited_and_they_read_their_jurisdiction(
    database_url: str,
) -> None:
    world = await build_world(database_url)
    with psycopg.connect(database_url) as conn:  # an action in mine B: not for this regulator
        conn.execute(
            "INSERT INTO audit_log (actor, actor_role, action, mine_code) "
            "VALUES ('someone', 'dispatcher', 'acknowledged', %s)",
            (world.b.code,),
        )
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base, headers=bearer(world.keys[Role.REGULATOR])) as client,
    ):
        await client.get(f"/api/v1/mines/{world.a.code}/points")
        note = await client.post(f"/api/v1/alarms/{world.a.alarm_id}/annotations",
                                 json={"note": "检查时发现未处置"})  # fmt: skip
        assert note.status_code == 201
        page = (await client.get("/api/v1/audit")).json()
    actions = [(r["action"], r["mine_code"]) for r in page["items"]]
    assert ("query", world.a.code) in actions and ("annotated", world.a.code) in actions
    assert all(mine == world.a.code for _, mine in actions)
    assert page["total"] == len(page["items"])


async def test_an_admin_makes_and_revokes_keys_and_disables_accounts(database_url: str) -> None:
    world = await build_world(database_url)
    admin = bearer(world.keys[Role.ADMIN])
    async with (
        running_api(database_url, signed_in=False) as base,
        httpx.AsyncClient(base_url=base) as client,
    ):
        made = await client.post(
            "/api/v1/admin/keys", headers=admin,
            json={"name": "screen 2", "role": "dispatcher", "scope": world.a.code},
        )  # fmt: skip
        assert made.status_code == 201, made.text
        key = bearer(made.json()["key"])
        assert (await client.get("/api/v1/auth/me", headers=key)).status_code == 200
        revoked = await client.post(f"/api/v1/admin/keys/{made.json()['id']}/revoke", headers=admin)
        assert revoked.json()["revoked_at"] is not None
        assert (await client.get("/api/v1/auth/me", headers=key)).status_code == 401  # at once
        bad_scope = await client.post(
            "/api/v1/admin/keys", headers=admin,
            json={"name": "x", "role": "dispatcher", "scope": "1410"},
        )  # fmt: skip
        assert bad_scope.status_code == 422
        user = world.usernames[Role.REGULATOR]
        session = await client.post("/api/v1/auth/login",
                                    json={"username": user, "password": PASSWORD})  # fmt: skip
        token = {"Authorization": f"Bearer {session.json()['token']}"}
        disabled = await client.post(f"/api/v1/admin/accounts/{user}/disable", headers=admin)
        assert disabled.json()["disabled"] is True
        assert (await client.get("/api/v1/auth/me", headers=token)).status_code == 401
        not_admin = bearer(world.keys[Role.DISPATCHER])
        assert (await client.get("/api/v1/admin/keys", headers=not_admin)).status_code == 403
    with psycopg.connect(database_url) as conn:
        audited = conn.execute(
            "SELECT action, actor_role, detail FROM audit_log "
            "WHERE action IN ('key_added', 'key_revoked', 'account_disabled') ORDER BY id"
        ).fetchall()
    key_id = made.json()["id"]
    assert [(action, role) for action, role, _ in audited] == [
        ("key_added", "admin"), ("key_revoked", "admin"), ("account_disabled", "admin"),
    ]  # fmt: skip
    assert [detail for _, _, detail in audited] == [
        {"key": key_id, "role": "dispatcher", "scope": world.a.code},
        {"key": key_id},
        {"username": user},
    ]
