"""The files behind a Mosquitto broker's accounts: ``passwd`` (written by mosquitto_passwd),
``acl`` (from :func:`minewatch.broker_auth.acl_file`) and ``accounts.json`` (who has which
role and mines, so that the ACL can be written again).

Passwords are made here, stored only as mosquitto_passwd's hashes, and shown once to the
caller; the embedded stack keeps the passwords of its own gateway and simulator in
``credentials.json`` (mode 0600) so that its commands can connect without configuration.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from minewatch.broker_auth import Account, Role, acl_file

PASSWD = "passwd"
ACL = "acl"
ACCOUNTS = "accounts.json"
CREDENTIALS = "credentials.json"
PID = "mosquitto.pid"
#: the embedded stack's own clients: the gateway reads every mine, the simulator plays any mine
EMBEDDED_ACCOUNTS = (Account("gateway", Role.GATEWAY), Account("simulator", Role.SIMULATOR))


class BrokerAccountError(RuntimeError):
    """An account could not be created or the broker's files could not be written."""


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password: str


def _private_write(path: Path, text: str, owner: tuple[int, int] | None) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    if owner is not None:
        os.chown(tmp, *owner)
    tmp.replace(path)


class BrokerAccounts:
    """The account files in ``directory``; ``owner`` (uid, gid): who the broker runs as, so it
    can read them (the files are 0600)."""

    def __init__(
        self,
        directory: Path,
        owner: tuple[int, int] | None = None,
        passwd_tool: str = "mosquitto_passwd",
    ) -> None:
        self.directory = directory
        self.owner = owner
        self._tool = passwd_tool

    @property
    def passwd_file(self) -> Path:
        return self.directory / PASSWD

    @property
    def acl_path(self) -> Path:
        return self.directory / ACL

    def accounts(self) -> list[Account]:
        path = self.directory / ACCOUNTS
        if not path.exists():
            return []
        rows = json.loads(path.read_text())
        return [Account(r["name"], Role(r["role"]), tuple(r["mines"])) for r in rows]

    def add(self, account: Account, password: str | None = None) -> Login:
        """Create or replace ``account`` with ``password`` (a new random one if None)."""
        password = password or secrets.token_urlsafe(24)
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.passwd_file.exists():
            _private_write(self.passwd_file, "", self.owner)
        result = subprocess.run(
            [self._tool, "-b", str(self.passwd_file), account.name, password],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise BrokerAccountError(f"mosquitto_passwd failed: {result.stderr or result.stdout}")
        if self.owner is not None:
            os.chown(self.passwd_file, *self.owner)
        others = [a for a in self.accounts() if a.name != account.name]
        self._write([*others, account])
        return Login(account.name, password)

    def remove(self, name: str) -> bool:
        """Delete account ``name``; False when there was none."""
        accounts = self.accounts()
        if all(a.name != name for a in accounts):
            return False
        subprocess.run(
            [self._tool, "-D", str(self.passwd_file), name], capture_output=True, check=True
        )
        self._write([a for a in accounts if a.name != name])
        return True

    def _write(self, accounts: list[Account]) -> None:
        rows = [{"name": a.name, "role": a.role.value, "mines": list(a.mines)} for a in accounts]
        _private_write(self.directory / ACCOUNTS, json.dumps(rows, indent=1), None)
        _private_write(self.acl_path, acl_file(accounts), self.owner)

    # -- the embedded broker's own clients --------------------------------------------------

    def embedded_logins(self) -> dict[str, Login]:
        """The gateway's and simulator's logins, created at the first start and kept."""
        path = self.directory / CREDENTIALS
        stored: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
        known = {a.name for a in self.accounts()}
        for account in EMBEDDED_ACCOUNTS:
            if account.name not in stored or account.name not in known:
                stored[account.name] = self.add(account).password
        _private_write(path, json.dumps(stored), None)
        return {name: Login(name, password) for name, password in stored.items()}

    def reload_broker(self) -> bool:
        """Ask a running broker of this directory to read its password and ACL files again
        (SIGHUP); False when none runs."""
        try:
            os.kill(int((self.directory / PID).read_text()), signal.SIGHUP)
        except (OSError, ValueError):
            return False
        return True
