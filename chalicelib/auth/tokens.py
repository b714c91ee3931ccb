"""JWT (HS256 only) to Principal, and the reverse for the token tool and tests."""

import json
import time
from typing import Any

import jwt

from chalicelib.auth.principal import Principal
from chalicelib.clock import is_uuid
from chalicelib.errors import Unauthorized

ALGORITHM = "HS256"


def decode(token: str, secret: str) -> Principal:
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["exp"]}
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token: expired") from None
    except jwt.MissingRequiredClaimError:
        raise Unauthorized("token: the exp claim is required") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("token: invalid (malformed, wrongly signed or not HS256)") from None
    if "agent" in claims:
        return _agent_principal(claims["agent"])
    if "customer" in claims:
        return _customer_principal(claims["customer"])
    raise Unauthorized("token: needs a customer or an agent claim")


def _customer_principal(claim: Any) -> Principal:
    if isinstance(claim, str):  # the seed's tokens carry the customer as a JSON string
        try:
            claim = json.loads(claim)
        except ValueError:
            raise Unauthorized("token: the customer claim is not valid JSON") from None
    if not isinstance(claim, dict) or not is_uuid(claim.get("id")):
        raise Unauthorized("token: the customer claim needs an id that is a UUID")
    return Principal(customer_id=claim["id"].lower())


def _agent_principal(claim: Any) -> Principal:
    if not isinstance(claim, dict):
        raise Unauthorized("token: the agent claim must be an object")
    agent_id, customer_id = claim.get("id"), claim.get("customer_id")
    name, permission = claim.get("name", ""), claim.get("permission", 0)
    if not is_uuid(agent_id) or not is_uuid(customer_id):
        raise Unauthorized("token: the agent claim needs id and customer_id that are UUIDs")
    if not isinstance(name, str) or type(permission) is not int or permission < 0:
        raise Unauthorized("token: agent name must be a string and permission a non-negative integer")
    return Principal(
        customer_id=customer_id.lower(), agent_id=agent_id.lower(), name=name, permission=permission
    )


def mint(secret: str, *, customer_id: str, agent_id: str | None = None, name: str = "",
         permission: int = 0, ttl_seconds: int = 7 * 24 * 3600) -> str:
    """A signed token for a customer (no agent_id) or for one of its agents."""
    if agent_id is None:
        claims: dict[str, Any] = {"customer": {"id": customer_id}}
    else:
        claims = {"agent": {"id": agent_id, "customer_id": customer_id, "name": name,
                            "permission": permission}}
    claims["exp"] = int(time.time()) + ttl_seconds
    return jwt.encode(claims, secret, algorithm=ALGORITHM)
