"""An identity provider a stage trusts (Cognito, Auth0, VoIPBIN's own): its
RS256/ES256 tokens are verified against the keys its JWKS URL publishes,
with `iss` and `aud` checked. Imported only when CHAT_JWKS_URL is set, so a
stage without one never loads it (nor `cryptography`) on a cold start.

The key set is cached for REFRESH_SECONDS; a token naming a key id the
cache does not hold makes one fetch, at most once per UNKNOWN_KID_SECONDS
(PyJWKClient's cooldown), so a flood of made-up key ids costs one fetch per
30 s, never one per request."""

import sys
import threading

from chalicelib import config
from chalicelib.errors import ServiceError, Unauthorized, Unavailable


def _pyjwt_with_cryptography():
    """auth/tokens.py loads PyJWT with `cryptography` hidden (HS256 needs none
    of it): here it is loaded once more, with it, for RS256 and ES256. The new
    PyJWT takes the old one's place in sys.modules; tokens.py keeps the one it
    has, whole, for its own keys."""
    import jwt

    if jwt.algorithms.has_crypto:
        return jwt
    for name in [name for name in sys.modules if name == "jwt" or name.startswith("jwt.")]:
        del sys.modules[name]
    import jwt as with_cryptography

    return with_cryptography


jwt = _pyjwt_with_cryptography()
PyJWKClient, PyJWKClientConnectionError, PyJWKClientError = (
    jwt.PyJWKClient, jwt.PyJWKClientConnectionError, jwt.PyJWKClientError)
ALGORITHMS = ("RS256", "ES256")
REFRESH_SECONDS = 300
UNKNOWN_KID_SECONDS = 30
FETCH_TIMEOUT_SECONDS = 5  # well inside API Gateway's 29 s


class IdentityProvider:
    def __init__(self, settings: config.Settings):
        if not jwt.algorithms.has_crypto:
            raise ServiceError("CHAT_JWKS_URL is set but the cryptography package is not installed "
                               "(RS256/ES256 need it: add cryptography to requirements.txt)")
        if not settings.jwt_issuer or not settings.jwt_audience:
            raise ServiceError("CHAT_JWKS_URL is set without CHAT_JWT_ISSUER and CHAT_JWT_AUDIENCE: "
                               "an identity provider's tokens are accepted only for this service")
        self.issuer, self.audience = settings.jwt_issuer, settings.jwt_audience
        self.customer_claim, self.agent_claim = settings.customer_claim, settings.agent_claim
        self._client = PyJWKClient(settings.jwks_url, lifespan=REFRESH_SECONDS, timeout=FETCH_TIMEOUT_SECONDS,
                                   cooldown_duration=UNKNOWN_KID_SECONDS)

    def claims(self, token: str, kid: str | None) -> dict:
        """The verified claims of one of the provider's tokens (exp checked by the caller)."""
        if not kid:
            raise Unauthorized("token: an identity provider's token must name its key (kid)")
        try:
            key = self._client.get_signing_key(kid)
        except PyJWKClientConnectionError:
            raise Unavailable("token: the identity provider's keys could not be fetched; please retry") from None
        except PyJWKClientError:
            raise Unauthorized(f"token: no key {kid!r} at the identity provider") from None
        if key.algorithm_name not in ALGORITHMS:
            raise Unauthorized(f"token: key {kid!r} is {key.algorithm_name}; only RS256 and ES256 keys are trusted")
        try:
            # The algorithm is the key's, never the token header's.
            return jwt.decode(token, key.key, algorithms=[key.algorithm_name], issuer=self.issuer,
                              audience=self.audience,
                              options={"require": ["exp", "iss", "aud"], "verify_exp": False})
        except jwt.MissingRequiredClaimError as error:
            raise Unauthorized(f"token: the {error.claim} claim is required") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized("token: issued by another issuer (iss)") from None
        except jwt.InvalidAudienceError:
            raise Unauthorized("token: meant for another audience (aud)") from None
        except jwt.InvalidTokenError:
            raise Unauthorized(f"token: invalid (malformed, wrongly signed or not {key.algorithm_name})") from None


_provider: IdentityProvider | None = None
_lock = threading.Lock()


def identity_provider(settings: config.Settings) -> IdentityProvider:
    """The process's provider client, made at first use (its key cache lives as long)."""
    global _provider
    if _provider is None or _provider._client.uri != settings.jwks_url:
        with _lock:
            if _provider is None or _provider._client.uri != settings.jwks_url:
                _provider = IdentityProvider(settings)
    return _provider
