"""``minewatch federation ...``: the links of the hierarchy (docs/federation.md).

On the parent: ``links`` creates a broker account for each installation below it and records,
in the parent's database, which installation each mine's records come from. On the child:
``config`` writes the bridge up, with the password the parent made.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import psycopg
from rich.console import Console

from minewatch.broker_accounts import BrokerAccounts
from minewatch.embedded import broker_accounts, running_stack
from minewatch.federation.bridge import BridgeLogin, bridge_config, link_account
from minewatch.federation.hierarchy import Hierarchy, load_hierarchy
from minewatch.settings import Settings


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def cmd_config(settings: Settings, args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    hierarchy = load_hierarchy(Path(args.hierarchy))
    account = link_account(hierarchy, args.installation)
    password = Path(args.password_file).read_text().strip()
    text = bridge_config(hierarchy, args.installation, BridgeLogin(account.name, password))
    if args.out is None:
        print(text, end="")
        return 0
    _write_private(Path(args.out), text)
    console.print(
        f"wrote the bridge {args.installation} -> {hierarchy.get(args.installation).parent} "
        f"to {args.out}; the embedded broker takes it with MINEWATCH_BROKER__BRIDGE_FILE="
        f"{args.out}, an operator's Mosquitto from its conf.d/"
    )
    return 0


def cmd_links(settings: Settings, args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    hierarchy = load_hierarchy(Path(args.hierarchy))
    accounts: BrokerAccounts = (
        BrokerAccounts(Path(args.dir).resolve())
        if args.dir is not None
        else broker_accounts(settings.var_dir / "mosquitto")
    )
    children = hierarchy.children(args.installation)
    if not children:
        console.print(f"{args.installation} has no installation below it")
        return 1
    for child in children:
        login = accounts.add(link_account(hierarchy, child.name))
        if args.secrets is None:
            print(f"{child.name}: {login.username} {login.password}")
        else:
            target = Path(args.secrets) / f"{child.name}.password"
            _write_private(target, login.password + "\n")
            console.print(f"{child.name}: account {login.username}, password in {target}")
    if accounts.reload_broker():
        console.print("the running embedded broker reloaded its accounts")
    database_url = settings.database_url or _embedded_database(settings)
    if database_url is None:
        console.print("no database configured (MINEWATCH_DATABASE_URL): where each mine's "
                      "records come from is not recorded")  # fmt: skip
        return 0
    with psycopg.connect(database_url) as conn:
        record_sources(conn, hierarchy, args.installation)
    console.print(f"recorded the source installation of {len(hierarchy.sources(args.installation))}"
                  " mine(s) below (federation_sources)")  # fmt: skip
    return 0


def _embedded_database(settings: Settings) -> str | None:
    stack = running_stack(settings)
    return None if stack is None else stack.database_url


_RECORD_SOURCE = (
    "INSERT INTO federation_sources (mine_code, installation, via, up) "
    "VALUES (%(mine)s, %(installation)s, %(via)s, %(up)s) ON CONFLICT (mine_code) DO UPDATE "
    "SET installation = EXCLUDED.installation, via = EXCLUDED.via, up = EXCLUDED.up, "
    "updated_at = now()"
)


def record_sources(conn: psycopg.Connection, hierarchy: Hierarchy, name: str) -> None:
    """Store, for every mine below ``name``, the installation its records come from (the
    hierarchy replaces what was there: a mine moved elsewhere leaves)."""
    rows = [
        {"mine": mine, "installation": owner, "via": via, "up": up.value}
        for mine, owner, via, up in hierarchy.sources(name)
    ]
    with conn.transaction():
        conn.execute(
            "DELETE FROM federation_sources WHERE NOT (mine_code = ANY(%s))",
            ([r["mine"] for r in rows],),
        )
        with conn.cursor() as cur:
            cur.executemany(_RECORD_SOURCE, rows)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``federation config|links`` to the CLI's sub-commands."""
    federation = sub.add_parser("federation", help="links up the hierarchy (MQTT bridges)")
    actions = federation.add_subparsers(dest="action", required=True)
    config = actions.add_parser("config", help="write the bridge of one installation up")
    config.add_argument("hierarchy", help="the hierarchy TOML (docs/federation.md)")
    config.add_argument("--installation", required=True, help="this installation's name")
    config.add_argument(
        "--password-file", required=True, help="the link's password (from `federation links`)"
    )
    config.add_argument("--out", help="write here (mode 0600) instead of standard output")
    config.set_defaults(func=cmd_config)
    links = actions.add_parser("links", help="broker accounts for the links from below")
    links.add_argument("hierarchy", help="the hierarchy TOML (docs/federation.md)")
    links.add_argument("--installation", required=True, help="this installation's name")
    links.add_argument("--dir", help="account files of an operator's broker (default: embedded)")
    links.add_argument("--secrets", help="write each password to DIR/<child>.password")
    links.set_defaults(func=cmd_links)
