"""JWT (HS256 only) to Principal, and the reverse for the token tool and tests."""

import json
import sys
import time
from typing import Any

from chalicelib.auth.principal import Principal
from chalicelib.clock import is_uuid
from chalicelib.errors import Unauthorized


def _import_pyjwt_without_cryptography():
    """PyJWT imports `cryptography` whenever it is installed, to offer RSA and EC:
    a tenth of a cold start's CPU. We verify HS256 only (hmac, in the standard
    library) and the deployment package has no `cryptography`; a venv does (moto
    needs it), so it is hidden while PyJWT loads, for the same PyJWT as on Lambda.
    Loaded already (by whoever imported it first), it is left as it is."""
    if "jwt" in sys.modules or "cryptography" in sys.modules:
        return
    sys.modules["cryptography"] = None  # `import cryptography...` fails as if absent
    try:
        import jwt  # noqa: F401
    finally:
        del sys.modules["cryptography"]


_import_pyjwt_without_cryptography()
import jwt  # noqa: E402

ALGORITHM = "HS256"
# A token valid for longer than this is a mistake (or an attack on a secret
# that will one day rotate); the contract says exp is an integer of seconds.
MAX_LIFETIME_SECONDS = 10 * 366 * 24 * 3600


def decode(token: str, secret: str) -> Principal:
    try:
        # exp is checked below, where its type is too (PyJWT takes "123" and 1e300).
        claims = jwt.decode(token, secret, algorithms=[ALGORITHM],
                            options={"require": ["exp"], "verify_exp": False})
    except jwt.MissingRequiredClaimError:
        raise Unauthorized("token: the exp claim is required") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("token: invalid (malformed, wrongly signed or not HS256)") from None
    _check_expiry(claims["exp"])
    if "agent" in claims and "customer" in claims:
        raise Unauthorized("token: has both a customer and an agent claim; a token is one or the other")
    if "agent" in claims:
        return _agent_principal(claims["agent"])
    if "customer" in claims:
        return _customer_principal(claims["customer"])
    raise Unauthorized("token: needs a customer or an agent claim")


def _check_expiry(exp: Any) -> None:
    if type(exp) is not int:  # bool is an int subclass; floats and strings are refused
        raise Unauthorized("token: exp must be an integer number of seconds since the epoch")
    now = int(time.time())
    if exp <= now:
        raise Unauthorized("token: expired (exp is in the past)")
    if exp > now + MAX_LIFETIME_SECONDS:
        raise Unauthorized("token: exp is more than 10 years ahead")


def _customer_principal(claim: Any) -> Principal:
    if isinstance(claim, str):  # the seed's tokens carry the customer as a JSON string
        try:
            claim = json.loads(claim)
        except (ValueError, RecursionError):
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
