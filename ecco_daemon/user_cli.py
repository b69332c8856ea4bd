"""`ecco-daemon user add | list | remove`: managing users from the shell, with or without a daemon running."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ecco_client.connection_file import read_connection_file

from .config import DEFAULT_ADDRESS
from .users import ADMIN, UserStore, connection_file_for, write_user_connection_file


def daemon_endpoint(state_dir: Path) -> tuple[str, str | None]:
    """Address and CURVE public key of the daemon using this state folder, from its own connection file
    (rewritten at each start); before any start, the default address and no encryption."""
    own = connection_file_for(state_dir, ADMIN)
    if own.exists():
        info = read_connection_file(own)
        return info.address, info.server_public_key
    return DEFAULT_ADDRESS, None


def run_user_command(args: argparse.Namespace, state_dir: Path) -> int:
    users = UserStore(state_dir / "users.json")
    if args.user_command == "add":
        try:
            user = users.add(args.name, role=args.role)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        address, server_public_key = daemon_endpoint(state_dir)
        path = write_user_connection_file(state_dir, user, args.address or address, server_public_key)
        print(path)
        return 0
    if args.user_command == "list":
        for user in users.all():
            print(f"{user.name}\t{user.role}")
        return 0
    if args.user_command == "remove":
        if args.name == ADMIN:
            print("error: the admin user cannot be removed", file=sys.stderr)
            return 1
        if not users.remove(args.name):
            print(f"error: no user {args.name!r}", file=sys.stderr)
            return 1
        connection_file_for(state_dir, args.name).unlink(missing_ok=True)
        print(f"removed {args.name}")
        return 0
    return 2
