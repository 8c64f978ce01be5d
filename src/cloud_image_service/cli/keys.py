"""`cloud-image-service keys create|list|revoke`: the API-key admin commands.

The handlers take the store and the parsed arguments; `add_commands` registers them
under a `keys` sub-command, building the store only when one of them runs.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

from cloud_image_service.adapters.keys_table import ApiKeyStore
from cloud_image_service.config import USER_ID_PATTERN
from cloud_image_service.domain.errors import ServiceError

_USER_ID = re.compile(USER_ID_PATTERN)

StoreFactory = Callable[[], ApiKeyStore]
Handler = Callable[[ApiKeyStore, argparse.Namespace], int]


def user_id(value: str) -> str:
    """argparse type: a user id the API would accept."""
    if not _USER_ID.match(value):
        raise argparse.ArgumentTypeError("must be 1-128 characters of A-Z a-z 0-9 . _ @ -")
    return value


def create(store: ApiKeyStore, args: argparse.Namespace) -> int:
    """Mint a key for `--user` (admin with `--admin`) and print it once."""
    key_id, plaintext = store.create(args.user, admin=args.admin)
    role = "admin" if args.admin else "user"
    print(f"key id: {key_id} ({role} {args.user})", file=sys.stderr)
    print("the key is shown only now; store it safely:", file=sys.stderr)
    print(plaintext)  # alone on stdout, so that `KEY=$(... keys create ...)` works
    return 0


def list_keys(store: ApiKeyStore, _: argparse.Namespace) -> int:
    """Print every key's id, user, role, creation time and state (never the key)."""
    records = store.list()
    if not records:
        print("no keys", file=sys.stderr)
        return 0
    print(f"{'KEY ID':<10} {'USER':<32} {'ROLE':<6} {'CREATED':<26} STATE")
    for record in records:
        role = "admin" if record.admin else "user"
        state = "revoked" if record.revoked else "active"
        created = record.created_at.isoformat()
        print(f"{record.key_id:<10} {record.user_id:<32} {role:<6} {created:<26} {state}")
    return 0


def revoke(store: ApiKeyStore, args: argparse.Namespace) -> int:
    """Revoke the key with `key_id`; exit status 1 when there is none."""
    if not store.revoke(args.key_id):
        print(f"no key with id {args.key_id!r}", file=sys.stderr)
        return 1
    print(f"key {args.key_id} revoked")
    return 0


def _run(handler: Handler, make_store: StoreFactory) -> Callable[[argparse.Namespace], int]:
    """A CLI handler that builds the store, runs `handler` and reports store failures."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(make_store(), args)
        except ServiceError as exc:
            print(f"keys {args.keys_command} failed: {exc.message}", file=sys.stderr)
            return 1

    return run


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], make_store: StoreFactory
) -> None:
    """Register `keys create|list|revoke` on the root parser's sub-parsers."""
    keys = commands.add_parser("keys", help="manage API keys (CIS_AUTH_MODE=api-key)")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    mint = actions.add_parser("create", help="create a key and print it once")
    mint.add_argument("--user", required=True, type=user_id, help="the user the key acts as")
    mint.add_argument("--admin", action="store_true", help="may act for, and list, any user")
    mint.set_defaults(handler=_run(create, make_store))
    show = actions.add_parser("list", help="list keys (ids only, never the keys)")
    show.set_defaults(handler=_run(list_keys, make_store))
    drop = actions.add_parser("revoke", help="revoke a key by its id")
    drop.add_argument("key_id", help="the 8-character id printed by create and list")
    drop.set_defaults(handler=_run(revoke, make_store))
