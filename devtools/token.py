"""The token tool: `python -m devtools.token ...` mints a JWT signed with
CHAT_JWT_SECRET, for a customer or for one of its agents."""

import argparse
import os
import sys
import uuid

from chalicelib import auth
from chalicelib.auth.principal import PERMISSION_ADMIN, PERMISSION_AGENT, PERMISSION_MANAGER


def _uuid(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a UUID: {value!r}") from None


def main(argv: list[str] | None = None) -> int:
    token = argparse.ArgumentParser(prog="python -m devtools.token", description=__doc__)
    token.add_argument("--customer-id", type=_uuid, required=True)
    token.add_argument("--agent-id", type=_uuid, help="mint an agent token (default: a customer token)")
    token.add_argument("--name", default="", help="the agent's name (shown as target_name in messages)")
    token.add_argument(
        "--permission", type=int, default=PERMISSION_AGENT,
        help=f"agent permission bits: {PERMISSION_AGENT} agent, {PERMISSION_ADMIN} admin, "
             f"{PERMISSION_MANAGER} manager (default {PERMISSION_AGENT})",
    )
    token.add_argument("--ttl", type=int, default=24 * 3600, help="seconds until it expires (default one day)")
    args = token.parse_args(argv)

    secret = os.environ.get("CHAT_JWT_SECRET")
    if not secret:
        print("CHAT_JWT_SECRET is not set (make run prints the one it uses)", file=sys.stderr)
        return 2
    print(auth.mint(secret, customer_id=args.customer_id, agent_id=args.agent_id, name=args.name,
                    permission=args.permission, ttl_seconds=args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
