"""Timestamps and ids in the formats the VoIPBIN API uses."""

import uuid
from datetime import UTC, datetime

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
NOT_DELETED = "9999-01-01 00:00:00.000000"

# Namespace for ids derived from other ids (a message's copy in a chatroom).
_DERIVED_NS = uuid.UUID("6f1c6f1e-3b0a-4a59-9a53-6c2f6a0c2f3e")


def now() -> str:
    return datetime.now(UTC).strftime(TIME_FORMAT)


def epoch(tm: str) -> int:
    """A timestamp of ours as epoch seconds (DynamoDB TTL's unit)."""
    return int(datetime.strptime(tm, TIME_FORMAT).replace(tzinfo=UTC).timestamp())


def expired(expires_at) -> bool:
    """Past its TTL (`expires_at`, epoch seconds): gone for every reader, also
    before DynamoDB deletes it (which it does within about 48 hours)."""
    return expires_at is not None and int(expires_at) <= epoch(now())


def new_id() -> str:
    return str(uuid.uuid4())


def derived_id(*parts: str) -> str:
    """A stable id for (parts): the same inputs always give the same UUID."""
    return str(uuid.uuid5(_DERIVED_NS, "/".join(parts)))


def is_timestamp(value: str) -> bool:
    try:
        return datetime.strptime(value, TIME_FORMAT).strftime(TIME_FORMAT) == value
    except ValueError:
        return False


def is_uuid(value: object) -> bool:
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False
