"""JWT to Principal, and the reverse for the token tool and tests.

HS256 tokens are checked against the service's own keys (auth/secret.py: the
current and the previous secret, a token's `kid` naming which); a stage that
trusts an identity provider also takes its RS256/ES256 tokens
(auth/provider.py). Each key has one algorithm: a token whose header names
another is refused, so a public key is never used as an HMAC secret."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any


def _import_pyjwt_without_cryptography():
    """PyJWT imports `cryptography` whenever it is installed, to offer RSA and EC:
    a tenth of a cold start's CPU. Our own keys are HS256 (hmac, in the standard
    library), so it is hidden while PyJWT loads; a stage with an identity provider
    loads PyJWT again, with it (auth/provider.py), for RS256 and ES256.
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

from chalicelib.auth.principal import Principal  # noqa: E402
from chalicelib.auth.secret import ALGORITHM, KeyRing, SigningKey  # noqa: E402
from chalicelib.clock import is_uuid  # noqa: E402
from chalicelib.errors import Unauthorized  # noqa: E402

if TYPE_CHECKING:
    from chalicelib.config import Settings

# A token valid for longer than this is a mistake (or an attack on a secret
# that will one day rotate); the contract says exp is an integer of seconds.
MAX_LIFETIME_SECONDS = 10 * 366 * 24 * 3600
VOIPBIN_CLAIMS = ("customer", "agent")


def decode(token: str, keys: KeyRing | str, settings: Settings | None = None) -> Principal:
    """The caller a token names. `keys`: the service's key ring (or one secret);
    `settings`: the stage's, for its identity provider if it names one."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.InvalidTokenError:
        raise Unauthorized("token: invalid (malformed, wrongly signed or not HS256)") from None
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise Unauthorized("token: kid must be a string")
    claim_names = VOIPBIN_CLAIMS
    if header.get("alg") != ALGORITHM and settings is not None and settings.jwks_url:
        from chalicelib.auth.provider import identity_provider  # only for a stage that names one

        provider = identity_provider(settings)
        claims = provider.claims(token, kid)
        claim_names = (provider.customer_claim, provider.agent_claim)
    else:
        claims = _own_key_claims(token, keys, kid)
    _check_expiry(claims["exp"])
    return replace(_principal(claims, *claim_names), expires_at=claims["exp"])


def _own_key_claims(token: str, keys: KeyRing | str, kid: str | None) -> dict:
    """Verified against the key `kid` names, or (tokens without one) the current, then the previous key."""
    ring = KeyRing(lambda: [SigningKey.of(keys)]) if isinstance(keys, str) else keys
    if kid is None:
        candidates = ring.keys()
    else:
        key = ring.find(kid)
        if key is None:
            raise Unauthorized("token: signed with an unknown or retired key (kid)")
        candidates = [key]
    for key in candidates:
        try:
            # exp is checked by the caller, where its type is too (PyJWT takes "123" and 1e300).
            return jwt.decode(token, key.secret, algorithms=[key.algorithm],
                              options={"require": ["exp"], "verify_exp": False})
        except jwt.InvalidSignatureError:
            continue  # perhaps the next (previous) key's
        except jwt.MissingRequiredClaimError:
            raise Unauthorized("token: the exp claim is required") from None
        except jwt.InvalidTokenError:
            break
    raise Unauthorized("token: invalid (malformed, wrongly signed or not HS256)")


def _principal(claims: dict, customer_claim: str, agent_claim: str) -> Principal:
    if agent_claim in claims and customer_claim in claims:
        raise Unauthorized("token: has both a customer and an agent claim; a token is one or the other")
    if agent_claim in claims:
        return _agent_principal(claims[agent_claim])
    if customer_claim in claims:
        return _customer_principal(claims[customer_claim])
    raise Unauthorized(f"token: needs a {customer_claim} or an {agent_claim} claim")


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
    """A signed token for a customer (no agent_id) or for one of its agents,
    naming its key (kid), so it keeps working while that key is the previous one."""
    if agent_id is None:
        claims: dict[str, Any] = {"customer": {"id": customer_id}}
    else:
        claims = {"agent": {"id": agent_id, "customer_id": customer_id, "name": name,
                            "permission": permission}}
    claims["exp"] = int(time.time()) + ttl_seconds
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": SigningKey.of(secret).kid})
