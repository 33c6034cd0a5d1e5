"""``minewatch federation ...``: the links of the hierarchy (docs/federation.md).

On the parent: ``links`` creates a broker account for each installation below it. On the
child: ``config`` writes the bridge up, with the password the parent made.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from rich.console import Console

from minewatch.broker_accounts import BrokerAccounts
from minewatch.embedded import broker_accounts
from minewatch.federation.bridge import BridgeLogin, bridge_config, link_account
from minewatch.federation.hierarchy import load_hierarchy
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
    return 0


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
