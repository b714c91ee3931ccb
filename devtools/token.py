"""The token tool: `python -m devtools.token ...` mints a JWT for a customer or
for one of its agents, signed with CHAT_JWT_SECRET if set, else with the
secret make run keeps in its data directory (.data/jwt-secret, CHAT_DATA_DIR);
with --stage, with that deployed stage's current secret (read from SSM or
Secrets Manager, as the service reads it). The token names its key (kid)."""

import argparse
import dataclasses
import os
import sys
import uuid

from chalicelib import auth
from chalicelib.auth.principal import PERMISSION_ADMIN, PERMISSION_AGENT, PERMISSION_MANAGER
from devtools import datadir


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
    token.add_argument("--stage", help="sign with this stage's current secret (.chalice/config.json names "
                                       "where it is; needs AWS credentials)")
    args = token.parse_args(argv)

    if args.stage:
        secret = _stage_secret(args.stage)
    else:
        secret = os.environ.get("CHAT_JWT_SECRET") or datadir.existing_secret(datadir.path())
    if not secret:
        print(f"no secret: CHAT_JWT_SECRET is not set and {datadir.path() / datadir.SECRET_FILE} does not exist "
              f"(make run creates it; run this from the repository, with the CHAT_DATA_DIR make run uses)",
              file=sys.stderr)
        return 2
    print(auth.mint(secret, customer_id=args.customer_id, agent_id=args.agent_id, name=args.name,
                    permission=args.permission, ttl_seconds=args.ttl))
    return 0


def _stage_secret(stage: str) -> str:
    """The stage's current secret, from where its functions read it."""
    from chalicelib import config
    from chalicelib.auth.secret import load_secret
    from infra.rotate_secret import stage_environment

    env = stage_environment(stage)
    names = ("CHAT_JWT_SECRET_PARAMETER", "CHAT_JWT_PREVIOUS_SECRET_PARAMETER", "CHAT_JWT_SECRET_ID")
    settings = dataclasses.replace(config.load(), jwt_secret=None, jwt_previous_secret=None,
                                   **{name.removeprefix("CHAT_").lower(): env.get(name) for name in names})
    return load_secret(settings)


if __name__ == "__main__":
    sys.exit(main())
