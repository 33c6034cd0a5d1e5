"""``minewatch broker ...``: the broker accounts of the embedded Mosquitto (or of any
directory an operator's Mosquitto reads its ``password_file`` and ``acl_file`` from)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.table import Table

from minewatch.broker_accounts import BrokerAccounts
from minewatch.broker_auth import Account, Role
from minewatch.embedded import broker_accounts
from minewatch.settings import Settings


def _accounts(settings: Settings, args: argparse.Namespace) -> BrokerAccounts:
    if args.dir is not None:
        return BrokerAccounts(Path(args.dir).resolve())
    return broker_accounts(settings.var_dir / "mosquitto")


def _reload_note(accounts: BrokerAccounts, console: Console) -> None:
    if accounts.reload_broker():
        console.print("the running embedded broker reloaded its accounts")
    else:
        console.print(
            f"no embedded broker runs on {accounts.directory}: a broker started later reads "
            "these files; an operator's Mosquitto reloads them on SIGHUP "
            "(systemctl reload mosquitto)"
        )


def cmd_add(settings: Settings, args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    account = Account(args.name, Role(args.role), tuple(args.mine or ()))
    accounts = _accounts(settings, args)
    login = accounts.add(account, args.password)
    console.print(f"account {login.username} ({account.role}) in {accounts.directory}")
    if args.password is None:
        # Shown once: only mosquitto_passwd's hash is kept.
        print(f"password: {login.password}")
    _reload_note(accounts, console)
    return 0


def cmd_remove(settings: Settings, args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    accounts = _accounts(settings, args)
    if not accounts.remove(args.name):
        console.print(f"no account {args.name!r} in {accounts.directory}")
        return 1
    console.print(f"removed {args.name}")
    _reload_note(accounts, console)
    return 0


def cmd_list(settings: Settings, args: argparse.Namespace) -> int:
    table = Table("account", "role", "mines")
    for account in _accounts(settings, args).accounts():
        table.add_row(account.name, account.role.value, ", ".join(account.mines) or "every mine")
    Console().print(table)
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``broker add|remove|list`` to the CLI's sub-commands."""
    broker = sub.add_parser("broker", help="broker accounts (password file and ACL)")
    actions = broker.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create or replace an account (prints its password)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument(
        "--mine", action="append", metavar="CODE",
        help="a 12-digit mine code the account covers (repeat; a mine or link needs one)",
    )  # fmt: skip
    add.add_argument("--password", help="use this password instead of a random one")
    add.set_defaults(func=cmd_add)
    remove = actions.add_parser("remove", help="delete an account")
    remove.add_argument("name")
    remove.set_defaults(func=cmd_remove)
    listing = actions.add_parser("list", help="the accounts and what they may do")
    listing.set_defaults(func=cmd_list)
    for parser in (add, remove, listing):
        parser.add_argument(
            "--dir", help="account files of an operator's broker (default: the embedded one)"
        )
