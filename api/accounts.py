"""Accounts, API keys and sessions: creation, verification, and their SQL.

Passwords and API keys are kept only as argon2id hashes. A key reads ``mwk_<id>_<secret>``:
the id finds the row, the secret is verified against its hash. Session tokens are 256 random
bits, kept as their SHA-256.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import re
import secrets
from dataclasses import dataclass

import argon2
from psycopg import AsyncConnection
from psycopg.rows import dict_row

KEY_PREFIX = "mwk"
_KEY_RE = re.compile(r"^mwk_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class Role(enum.StrEnum):
    DISPATCHER = "dispatcher"  # one mine: live board, acknowledge, shelve, dispose
    REGULATOR = "regulator"  # a jurisdiction: read-only, may annotate an inspection
    ADMIN = "admin"  # every mine: accounts, mine definitions


class AccountError(ValueError):
    """An account or key cannot be created as asked."""


def check_scope(role: Role, scope: str | None) -> str | None:
    """The scope a role needs: a 12-digit mine code for a dispatcher, a 2/4/6-digit division
    prefix for a regulator, none for an admin."""
    if role is Role.ADMIN:
        if scope:
            raise AccountError("an admin has no scope (every mine)")
        return None
    lengths = (12,) if role is Role.DISPATCHER else (2, 4, 6)
    if scope is None or not scope.isascii() or not scope.isdigit() or len(scope) not in lengths:
        what = "a 12-digit mine code" if role is Role.DISPATCHER else "a 2, 4 or 6-digit prefix"
        raise AccountError(f"a {role} needs {what} as scope")
    return scope


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a credential belongs to."""

    actor: str  # the username, or key:<id>
    name: str  # for people to read
    role: Role
    scope: str | None
    is_person: bool  # signed in with a password (not a machine's API key)


class Hasher:
    """argon2id with the library's defaults (RFC 9106 low-memory profile) unless told."""

    def __init__(self, time_cost: int = 3, memory_kib: int = 65536) -> None:
        self._hasher = argon2.PasswordHasher(time_cost=time_cost, memory_cost=memory_kib)
        self._dummy = self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, secret: str) -> str:
        return self._hasher.hash(secret)

    def verify(self, stored: str | None, secret: str) -> bool:
        """Constant work whether or not the account exists (``stored`` None)."""
        try:
            return self._hasher.verify(stored or self._dummy, secret) and stored is not None
        except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
            return False


def sha256(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def parse_key(key: str) -> tuple[str, str] | None:
    match = _KEY_RE.match(key)
    return None if match is None else (match[1], match[2])


# -- creation (CLI, tests) ------------------------------------------------------------------------


async def add_account(
    conn: AsyncConnection, hasher: Hasher, username: str, password: str, role: Role,
    scope: str | None, display_name: str | None = None,
) -> None:  # fmt: skip
    scope = check_scope(role, scope)
    if len(password) < 12:
        raise AccountError("a password needs at least 12 characters")
    await conn.execute(
        "INSERT INTO api_accounts (username, display_name, role, scope, password_hash) "
        "VALUES (%(u)s, %(n)s, %(r)s, %(s)s, %(h)s) ON CONFLICT (username) DO UPDATE SET "
        "display_name = EXCLUDED.display_name, role = EXCLUDED.role, scope = EXCLUDED.scope, "
        "password_hash = EXCLUDED.password_hash, disabled = false",
        {"u": username, "n": display_name or username, "r": role.value, "s": scope,
         "h": hasher.hash(password)},
    )  # fmt: skip


async def add_key(
    conn: AsyncConnection, hasher: Hasher, name: str, role: Role, scope: str | None
) -> str:
    """Create an API key; returns it (shown once, only its hash is kept)."""
    scope = check_scope(role, scope)
    key_id = "".join(secrets.choice(_ALPHABET) for _ in range(12))
    secret = secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO api_keys (id, name, role, scope, secret_hash) "
        "VALUES (%(id)s, %(n)s, %(r)s, %(s)s, %(h)s)",
        {"id": key_id, "n": name, "r": role.value, "s": scope, "h": hasher.hash(secret)},
    )
    return f"{KEY_PREFIX}_{key_id}_{secret}"


# -- administration ------------------------------------------------------------------------------

_ACCOUNT = "username, display_name, role, scope, disabled, created_at"
_KEY = "id, name, role, scope, created_at, revoked_at"


async def list_accounts(conn: AsyncConnection) -> list[dict[str, object]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {_ACCOUNT} FROM api_accounts ORDER BY username")
    return await cur.fetchall()


async def disable_account(conn: AsyncConnection, username: str) -> dict[str, object] | None:
    """Disable an account and end its sessions; None when there is no such account."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"UPDATE api_accounts SET disabled = true WHERE username = %(u)s RETURNING {_ACCOUNT}",
        {"u": username},
    )
    row = await cur.fetchone()
    await conn.execute(
        "DELETE FROM api_sessions s USING api_accounts a "
        "WHERE s.account_id = a.id AND a.username = %(u)s",
        {"u": username},
    )
    return row


async def list_keys(conn: AsyncConnection) -> list[dict[str, object]]:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(f"SELECT {_KEY} FROM api_keys ORDER BY created_at, id")
    return await cur.fetchall()


async def revoke_key(conn: AsyncConnection, key_id: str) -> dict[str, object] | None:
    """Revoke a key (once: a revoked key keeps its first revocation time)."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        f"UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = %(id)s "
        f"RETURNING {_KEY}",
        {"id": key_id},
    )
    return await cur.fetchone()


# -- verification ---------------------------------------------------------------------------------


async def password_hash(conn: AsyncConnection, username: str) -> tuple[int, str, Identity] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT id, username, display_name, role, scope, password_hash FROM api_accounts "
        "WHERE username = %(u)s AND NOT disabled",
        {"u": username},
    )
    row = await cur.fetchone()
    if row is None:
        return None
    identity = Identity(
        str(row["username"]),
        str(row["display_name"]),
        Role(row["role"]),
        row["scope"],
        True,
    )
    return int(row["id"]), str(row["password_hash"]), identity


async def key_identity(conn: AsyncConnection, key_id: str) -> tuple[str, Identity] | None:
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT name, role, scope, secret_hash FROM api_keys "
        "WHERE id = %(id)s AND revoked_at IS NULL",
        {"id": key_id},
    )
    row = await cur.fetchone()
    if row is None:
        return None
    identity = Identity(f"key:{key_id}", str(row["name"]), Role(row["role"]), row["scope"], False)
    return str(row["secret_hash"]), identity


async def open_session(
    conn: AsyncConnection, account_id: int, lifetime: dt.timedelta
) -> tuple[str, str]:
    """A new session; returns (token, csrf token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
    await conn.execute("DELETE FROM api_sessions WHERE expires_at < now()")  # the expired
    await conn.execute(
        "INSERT INTO api_sessions (token_sha256, account_id, csrf_token, expires_at) "
        "VALUES (%(t)s, %(a)s, %(c)s, now() + %(life)s)",
        {"t": sha256(token), "a": account_id, "c": csrf, "life": lifetime},
    )
    return token, csrf


async def session_identity(conn: AsyncConnection, token: str) -> tuple[Identity, str] | None:
    """The session's account and its CSRF token, if the session is live."""
    cur = conn.cursor(row_factory=dict_row)
    await cur.execute(
        "SELECT a.username, a.display_name, a.role, a.scope, s.csrf_token FROM api_sessions s "
        "JOIN api_accounts a ON a.id = s.account_id "
        "WHERE s.token_sha256 = %(t)s AND s.expires_at > now() AND NOT a.disabled",
        {"t": sha256(token)},
    )
    row = await cur.fetchone()
    if row is None:
        return None
    identity = Identity(
        str(row["username"]),
        str(row["display_name"]),
        Role(row["role"]),
        row["scope"],
        True,
    )
    return identity, str(row["csrf_token"])


async def close_session(conn: AsyncConnection, token: str) -> None:
    await conn.execute("DELETE FROM api_sessions WHERE token_sha256 = %(t)s", {"t": sha256(token)})


# -- failed sign-ins ------------------------------------------------------------------------------


async def recent_failures(
    conn: AsyncConnection, username: str, client_addr: str, window: dt.timedelta
) -> int:
    """Failures in the window for this username or from this address, whichever is more."""
    cur = await conn.execute(
        "SELECT greatest("
        " (SELECT count(*) FROM api_login_failures WHERE username = %(u)s AND at > now() - %(w)s),"
        " (SELECT count(*) FROM api_login_failures WHERE client_addr = %(a)s"
        "  AND at > now() - %(w)s))",
        {"u": username, "a": client_addr, "w": window},
    )
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def record_failure(
    conn: AsyncConnection, username: str, client_addr: str, window: dt.timedelta
) -> None:
    """Remember a failed sign-in; forget those older than the window."""
    await conn.execute("DELETE FROM api_login_failures WHERE at < now() - %(w)s", {"w": window})
    await conn.execute(
        "INSERT INTO api_login_failures (username, client_addr) VALUES (%(u)s, %(a)s)",
        {"u": username, "a": client_addr},
    )


async def clear_failures(conn: AsyncConnection, username: str) -> None:
    await conn.execute("DELETE FROM api_login_failures WHERE username = %(u)s", {"u": username})
