"""The HS256 signing keys: the current secret and, during a rotation, the
previous one. Locally they come from the environment; in production from SSM
Parameter Store (two SecureString parameters, read with one GetParameters) or
Secrets Manager (the AWSCURRENT and AWSPREVIOUS versions of one secret), so
no secret is in the template or the repository.

A process keeps the keys for at most REFRESH_SECONDS, then reads them again:
a rotated secret is picked up within 5 minutes, and no request pays for a
read except the one that finds the keys stale. A token naming a key id (kid)
that is not known yet makes one early read, at most once per
UNKNOWN_KID_SECONDS (a token minted with a secret rotated a moment ago)."""

import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib import config

log = logging.getLogger(__name__)
ALGORITHM = "HS256"
REFRESH_SECONDS = 300
UNKNOWN_KID_SECONDS = 30
RETRY_SECONDS = 30  # after a failed read, the keys in hand serve this long before the next try
PREVIOUS_SUFFIX = "-previous"


@dataclass(frozen=True)
class SigningKey:
    """A secret, its key id, and the one algorithm a token signed with it may name."""

    secret: str
    kid: str
    algorithm: str = ALGORITHM

    @classmethod
    def of(cls, secret: str) -> "SigningKey":
        return cls(secret, key_id(secret))


def key_id(secret: str) -> str:
    """A key id derived from the secret: the same wherever the secret is read
    (token tool, every container), with nothing to store beside it. 64 bits of
    a SHA-256 tell nothing about a secret of 256 random bits."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


def previous_parameter(settings: config.Settings) -> str | None:
    if not settings.jwt_secret_parameter:
        return None
    return settings.jwt_previous_secret_parameter or settings.jwt_secret_parameter + PREVIOUS_SUFFIX


def load_keys(settings: config.Settings) -> list[SigningKey]:
    """Current key first, then the previous one if there is one."""
    if settings.jwt_secret:
        return [SigningKey.of(s) for s in (settings.jwt_secret, settings.jwt_previous_secret) if s]
    import boto3  # only here: one read per REFRESH_SECONDS, kept out of every cold start's imports

    from chalicelib.storage.clients import client_config  # timeouts under the API's budget

    if settings.jwt_secret_parameter:
        ssm = boto3.client("ssm", region_name=settings.region, config=client_config())
        names = [settings.jwt_secret_parameter, previous_parameter(settings)]
        found = {p["Name"]: p["Value"] for p in ssm.get_parameters(Names=names, WithDecryption=True)["Parameters"]}
        if settings.jwt_secret_parameter not in found:
            raise RuntimeError(f"no JWT secret: SSM parameter {settings.jwt_secret_parameter} does not exist")
        return [SigningKey.of(found[name]) for name in names if name in found]
    if settings.jwt_secret_id:
        secrets = boto3.client("secretsmanager", region_name=settings.region, config=client_config())
        current = secrets.get_secret_value(SecretId=settings.jwt_secret_id, VersionStage="AWSCURRENT")
        keys = [SigningKey.of(current["SecretString"])]
        try:
            previous = secrets.get_secret_value(SecretId=settings.jwt_secret_id, VersionStage="AWSPREVIOUS")
            keys.append(SigningKey.of(previous["SecretString"]))
        except secrets.exceptions.ResourceNotFoundException:
            pass  # never rotated: no previous version
        return keys
    raise RuntimeError(
        "no JWT secret: set CHAT_JWT_SECRET, CHAT_JWT_SECRET_PARAMETER (SSM) or CHAT_JWT_SECRET_ID (Secrets Manager)"
    )


def load_secret(settings: config.Settings) -> str:
    """The current secret (what new tokens are signed with)."""
    return load_keys(settings)[0].secret


class KeyRing:
    """The keys, re-read when older than REFRESH_SECONDS (on `clock`)."""

    def __init__(self, load: Callable[[], list[SigningKey]], clock: Callable[[], float] = time.monotonic):
        self._load, self._clock = load, clock
        self._keys: list[SigningKey] = []
        self._next_read = 0.0  # when the keys are stale
        self._last_read = float("-inf")
        self._lock = threading.Lock()

    def keys(self) -> list[SigningKey]:
        if self._clock() >= self._next_read:
            self._read(stale_after=None)
        return self._keys

    def find(self, kid: str) -> SigningKey | None:
        """The key named `kid`; unknown, the keys are read again (at most once per UNKNOWN_KID_SECONDS)."""
        key = next((k for k in self.keys() if k.kid == kid), None)
        if key is None and self._clock() - self._last_read >= UNKNOWN_KID_SECONDS:
            self._read(stale_after=self._last_read)
            key = next((k for k in self._keys if k.kid == kid), None)
        return key

    def _read(self, stale_after: float | None) -> None:
        with self._lock:
            now = self._clock()
            if stale_after is None and now < self._next_read:
                return  # another thread read them meanwhile
            if stale_after is not None and self._last_read > stale_after:
                return
            try:
                self._keys = self._load()
            except Exception:
                if not self._keys:
                    raise
                log.warning("reading the JWT secrets failed; the keys read before serve %d s more", RETRY_SECONDS,
                            exc_info=True)
                self._next_read = now + RETRY_SECONDS
                return
            self._last_read, self._next_read = now, now + REFRESH_SECONDS


_ring: KeyRing | None = None
_ring_lock = threading.Lock()


def key_ring() -> KeyRing:
    """The process's key ring (a Lambda container's), made at first use."""
    global _ring
    if _ring is None:
        with _ring_lock:
            if _ring is None:
                _ring = KeyRing(lambda: load_keys(config.load()))
    return _ring


def reset() -> None:
    """Forget the keys read (tests that change where they come from)."""
    global _ring
    _ring = None
