"""Who is calling, and what they may see: authentication and the scope decision of a route.

Credentials, in the order looked at: ``Authorization: Bearer <session token or API key>``,
``Authorization: Basic`` with an API key as the password (for tools that only speak Basic),
the session cookie of a browser. A state change made with the cookie must also carry the
session's CSRF token in ``X-CSRF-Token`` (a page of another site cannot read it).

Every route declares exactly one *scope decision* as a dependency made here: ``public``, or
one of ``signed_in``, ``mine_filter``, ``mine_access``, ``point_access``, ``alarm_access``
with the roles allowed. The order is fixed: no or bad credentials 401, a role not allowed
403, a mine, point or alarm outside the caller's scope (or unknown) 404.
``undecided_routes`` lists the routes that declare none; the application refuses to start
with any.
"""

from __future__ import annotations

import base64
import binascii
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from minewatch.alarms.lifecycle import Actor
from minewatch.api import accounts, audit, repository
from minewatch.api.accounts import Hasher, Identity, Role
from minewatch.api.deps import PoolDep
from minewatch.api.params import AlarmId, MineCode, MineFilter, PointId
from minewatch.settings import AuthSettings

SESSION_COOKIE = "minewatch_session"
CSRF_HEADER = "X-CSRF-Token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass
class AuthState:
    """Per application: settings, the hasher, and API keys verified recently (key id ->
    (SHA-256 of the secret, until when)), so that a machine client does not cost a slow hash
    on every request."""

    settings: AuthSettings
    hasher: Hasher
    verified_keys: dict[str, tuple[bytes, float]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Principal:
    identity: Identity
    client_addr: str

    @property
    def role(self) -> Role:
        return self.identity.role

    @property
    def actor(self) -> Actor:
        return Actor(self.identity.actor, self.identity.is_person)

    def sees(self, mine_code: str) -> bool:
        scope = self.identity.scope
        return scope is None or mine_code.startswith(scope)


@dataclass(frozen=True, slots=True)
class Access:
    """What a scope decision lets the route use: the caller, and the mine it asked about."""

    principal: Principal
    mine: str | None = None  # the mine of the path (or of the ``mine`` filter), in scope
    scope: str | None = None  # the prefix of mine codes the caller sees (None: all)


def auth_state(request: Request) -> AuthState:
    return request.app.state.auth


def client_addr(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _unauthorized(detail: str = "sign in first (session, bearer token or API key)") -> None:
    raise HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="minewatch"'})


async def _key_identity(conn: AsyncConnection, state: AuthState, key: str) -> Identity | None:
    parsed = accounts.parse_key(key)
    if parsed is None:
        return None
    key_id, secret = parsed
    found = await accounts.key_identity(conn, key_id)  # every time: a revoked key stops at once
    if found is None:
        return None
    stored, identity = found
    digest = accounts.sha256(secret)
    cached = state.verified_keys.get(key_id)
    if cached is not None and cached[0] == digest and cached[1] > time.monotonic():
        return identity
    if not state.hasher.verify(stored, secret):
        return None
    state.verified_keys[key_id] = (digest, time.monotonic() + state.settings.key_cache_s)
    return identity


def _basic_password(credentials: str) -> str | None:
    try:
        decoded = base64.b64decode(credentials, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    return decoded.partition(":")[2]


async def _identify(request: Request, conn: AsyncConnection) -> Identity:
    state = auth_state(request)
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, credentials = header.partition(" ")
        token: str | None = credentials.strip()
        if scheme.lower() == "basic":
            token = _basic_password(credentials.strip())
        elif scheme.lower() != "bearer":
            token = None
        if token and token.startswith(accounts.KEY_PREFIX + "_"):
            identity = await _key_identity(conn, state, token)
        elif token and scheme.lower() == "bearer":
            session = await accounts.session_identity(conn, token)
            identity = None if session is None else session[0]
        else:
            identity = None
        if identity is None:
            _unauthorized("the credentials are not valid")
        return identity  # type: ignore[return-value]
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        _unauthorized()
    session = await accounts.session_identity(conn, cookie)  # type: ignore[arg-type]
    if session is None:
        _unauthorized("the session has expired; sign in again")
    identity, csrf = session  # type: ignore[misc]
    if request.method not in _SAFE_METHODS and request.headers.get(CSRF_HEADER) != csrf:
        raise HTTPException(403, f"a change made with the session cookie needs {CSRF_HEADER}")
    return identity


#: Declares the bearer scheme in the OpenAPI description (Swagger UI's "Authorize"); the
#: header itself is read by ``_identify``, which also takes Basic and the session cookie.
_BEARER = HTTPBearer(auto_error=False, description="An API key (mwk_...) or a session token.")


async def authenticate(
    request: Request, pool: PoolDep,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None,
) -> Principal:  # fmt: skip
    async with pool.connection() as conn:
        identity = await _identify(request, conn)
    return Principal(identity, client_addr(request))


PrincipalDep = Annotated[Principal, Depends(authenticate)]

# -- scope decisions --------------------------------------------------------------------------

F = TypeVar("F", bound=Callable[..., Any])


def _decision(kind: str, roles: frozenset[Role]) -> Callable[[F], F]:
    def mark(function: F) -> F:
        function.scope_decision = kind  # type: ignore[attr-defined]
        function.scope_roles = roles  # type: ignore[attr-defined]
        return function

    return mark


def _allowed(roles: tuple[Role, ...]) -> frozenset[Role]:
    return frozenset(roles or tuple(Role))


def _check_role(principal: Principal, roles: frozenset[Role]) -> None:
    if principal.role not in roles:
        raise HTTPException(403, f"the {principal.role} role may not do this")


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, f"{what} not known (or not in your scope)")


async def _read_audited(
    conn: AsyncConnection, request: Request, principal: Principal, mine: str | None,
    alarm_id: int | None = None,
) -> None:  # fmt: skip
    """Every regulator query of a mine's data is in the audit log before it is answered."""
    if principal.role is Role.REGULATOR and request.method in _SAFE_METHODS:
        await audit.record(
            conn, principal.identity, principal.client_addr, "query", mine, alarm_id,
            {"path": request.url.path, "query": str(request.url.query)[:2000]},
        )  # fmt: skip


@_decision("public", frozenset())
async def public() -> None:
    """No credentials needed (sign-in, health, the API's own description)."""


def signed_in(*roles: Role) -> Callable[..., Awaitable[Access]]:
    """Any signed-in caller of these roles, about no mine in particular (who am I, sign out);
    a route that lists mines' data narrows its answer to ``Access.scope``."""
    allowed = _allowed(roles)

    @_decision("signed-in", allowed)
    async def dependency(principal: PrincipalDep) -> Access:
        _check_role(principal, allowed)
        return Access(principal, None, principal.identity.scope)

    return dependency


def mine_filter(*roles: Role) -> Callable[..., Awaitable[Access]]:
    """A list across the caller's mines, narrowed to ``Access.scope`` by the route, with an
    optional ``mine`` query filter: a mine outside the scope (or unknown) answers 404."""
    allowed = _allowed(roles)

    @_decision("filtered", allowed)
    async def dependency(
        request: Request, principal: PrincipalDep, pool: PoolDep, mine: MineFilter = None
    ) -> Access:
        _check_role(principal, allowed)
        async with pool.connection() as conn:
            if mine is not None and not (
                principal.sees(mine) and await repository.mine_exists(conn, mine)
            ):
                raise _not_found("mine")
            await _read_audited(conn, request, principal, mine)
        return Access(principal, mine, principal.identity.scope)

    return dependency


async def _in_scope(
    request: Request,
    principal: Principal,
    pool: AsyncConnectionPool,
    kind: str,
    owner: Callable[[AsyncConnection], Awaitable[str | None]],
    alarm_id: int | None = None,
) -> Access:
    """The resource's mine (``owner``) must exist and be in the caller's scope, else 404
    (existence is not leaked); the read is audited against that mine."""
    async with pool.connection() as conn:
        mine = await owner(conn)
        if mine is None or not principal.sees(mine):
            raise _not_found(kind)
        await _read_audited(conn, request, principal, mine, alarm_id)
    return Access(principal, mine, principal.identity.scope)


def mine_access(*roles: Role) -> Callable[..., Awaitable[Access]]:
    """The route is about the mine in its path: it must be in the caller's scope."""
    allowed = _allowed(roles)

    @_decision("mine", allowed)
    async def dependency(
        request: Request, mine: MineCode, principal: PrincipalDep, pool: PoolDep
    ) -> Access:
        _check_role(principal, allowed)

        async def existing(conn: AsyncConnection) -> str | None:
            return mine if await repository.mine_exists(conn, mine) else None

        return await _in_scope(request, principal, pool, "mine", existing)

    return dependency


def point_access(*roles: Role) -> Callable[..., Awaitable[Access]]:
    """The route is about the point in its path: its mine must be in the caller's scope."""
    allowed = _allowed(roles)

    @_decision("point", allowed)
    async def dependency(
        request: Request, point_id: PointId, principal: PrincipalDep, pool: PoolDep
    ) -> Access:
        _check_role(principal, allowed)

        async def owner(conn: AsyncConnection) -> str | None:
            return await repository.point_mine(conn, point_id)

        return await _in_scope(request, principal, pool, "point", owner)

    return dependency


def alarm_access(*roles: Role) -> Callable[..., Awaitable[Access]]:
    """The route is about the alarm in its path: its mine must be in the caller's scope."""
    allowed = _allowed(roles)

    @_decision("alarm", allowed)
    async def dependency(
        request: Request, alarm_id: AlarmId, principal: PrincipalDep, pool: PoolDep
    ) -> Access:
        _check_role(principal, allowed)

        async def owner(conn: AsyncConnection) -> str | None:
            return await repository.alarm_mine(conn, alarm_id)

        return await _in_scope(request, principal, pool, "alarm", owner, alarm_id)

    return dependency


def scope_decisions(route: APIRoute | RouteContext) -> list[str]:
    """The scope decisions a route declares (its dependency tree, searched, with the
    dependencies of the routers it is included through)."""
    found: list[str] = []
    pending = [route.dependant]
    while pending:
        dependant = pending.pop()
        kind = getattr(dependant.call, "scope_decision", None)
        if kind is not None:
            found.append(kind)
        pending.extend(dependant.dependencies)
    return found


#: Routes that are not API routes and need no credentials: the schema and Swagger UI's files.
PUBLIC_ASSETS = frozenset({"/openapi.json", "/static/swagger-ui"})


def undecided_routes(app: FastAPI) -> list[str]:
    """Routes of the application with no scope decision, or more than one (and any route
    outside FastAPI's, which cannot declare one, other than the public assets)."""
    undecided = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        path = str(context.path)
        if isinstance(route, APIRoute):
            if len(scope_decisions(context)) != 1:
                undecided.append(f"{sorted(route.methods or ())} {path}")
        elif path not in PUBLIC_ASSETS:
            undecided.append(path)
    return undecided


def national_files_access() -> Callable[..., Awaitable[Access]]:
    """As :func:`mine_access` (any role), for a mine known here by its definition or by a
    national file stored here (a mine that only uploads files sends no definition up)."""
    allowed = _allowed(())

    @_decision("mine", allowed)
    async def dependency(
        request: Request, mine: MineCode, principal: PrincipalDep, pool: PoolDep
    ) -> Access:
        _check_role(principal, allowed)

        async def known(conn: AsyncConnection) -> str | None:
            if await repository.mine_exists(conn, mine):
                return mine
            cur = await conn.execute(
                "SELECT 1 WHERE EXISTS (SELECT 1 FROM national_files WHERE mine_code = %(m)s) "
                "OR EXISTS (SELECT 1 FROM federated_national_files WHERE mine_code = %(m)s)",
                {"m": mine},
            )
            return mine if await cur.fetchone() is not None else None

        return await _in_scope(request, principal, pool, "mine", known)

    return dependency
