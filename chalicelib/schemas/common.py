"""Shapes shared by requests and responses: ids, addresses, medias."""

import re
import unicodedata
import uuid
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from chalicelib.schemas.limits import (  # noqa: F401 (re-exported: the models' modules import them from here)
    CONTENT_TYPE_PATTERN,
    DETAIL_MAX,
    EMOJI_MAX,
    FILE_SIZE_MAX,
    MEDIAS_MAX,
    NAME_MAX,
    PARTICIPANTS_MAX,
    TEXT_MAX,
)


def _canonical_uuid(value: str) -> str:
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        raise ValueError("must be a UUID") from None
    if len(value) != 36:
        raise ValueError("must be a UUID in its 36-character form")
    return str(parsed)


_EMOJI_NAME = re.compile(r":[a-z0-9_+\-]{1,30}:")
# What one emoji is made of: pictographs and symbols, their modifiers and
# joiners, regional indicators (flags), tags, and the keycap sequence.
_EMOJI_CATEGORIES = {"So", "Sk", "Mn", "Me", "Cf"}
_KEYCAP_BASES = set("0123456789#*")


def _emoji(value: str) -> str:
    if not 1 <= len(value) <= EMOJI_MAX:
        raise ValueError(f"must be 1 to {EMOJI_MAX} characters")
    if _EMOJI_NAME.fullmatch(value):
        return value
    for index, char in enumerate(value):
        keycap = char in _KEYCAP_BASES and "\u20e3" in value[index + 1:index + 3]
        if not keycap and (char.isascii() or unicodedata.category(char) not in _EMOJI_CATEGORIES):
            raise ValueError("must be one emoji (e.g. \U0001f44d) or a :name: of lowercase letters, digits, _ + -")
    return value


Emoji = Annotated[str, AfterValidator(_emoji), Field(json_schema_extra={"maxLength": EMOJI_MAX})]

UUIDStr = Annotated[str, AfterValidator(_canonical_uuid), Field(json_schema_extra={"format": "uuid"})]
Name = Annotated[str, Field(max_length=NAME_MAX)]
Detail = Annotated[str, Field(max_length=DETAIL_MAX)]
AddressType = Literal["", "agent", "conference", "email", "extension", "line", "sip", "tel"]


class StrictModel(BaseModel):
    """Request bodies: exact types, unknown fields refused."""

    model_config = ConfigDict(strict=True, extra="forbid")


class Address(StrictModel):
    type: AddressType = ""
    target: Annotated[str, Field(max_length=NAME_MAX)] = ""
    target_name: Name = ""
    name: Name = ""
    detail: Detail = ""


class MediaAgent(StrictModel):
    """An agent card shared in a message (as VoIPBIN's agent resource)."""

    id: UUIDStr
    customer_id: UUIDStr | None = None
    username: Name | None = None
    name: Name | None = None
    detail: Detail | None = None
    ring_method: Literal["ringall", "linear"] | None = None
    status: Literal["", "available", "away", "busy", "offline", "ringing"] | None = None
    permission: Literal[0, 65535, 1, 15, 16, 32, 64, 240] | None = None
    tag_ids: Annotated[list[UUIDStr], Field(max_length=100)] | None = None
    addresses: Annotated[list[Address], Field(max_length=20)] | None = None


class Media(StrictModel):
    type: Literal["address", "agent", "file", "link"]
    address: Address | None = None
    agent: MediaAgent | None = None
    file_id: UUIDStr | None = None
    link_url: Annotated[str, Field(max_length=2048, pattern=r"^https?://[^\s/$.?#][^\s]*$")] | None = None

    @model_validator(mode="after")
    def _payload_matches_type(self) -> "Media":
        """Exactly its type's payload: another type's (a `file_id` on a link) would be stored unchecked."""
        payloads = {"address": "address", "agent": "agent", "file": "file_id", "link": "link_url"}
        field = payloads[self.type]
        if getattr(self, field) is None:
            raise ValueError(f"a media of type {self.type} needs {field}")
        others = [name for name in payloads.values() if name != field and getattr(self, name) is not None]
        if others:
            raise ValueError(f"a media of type {self.type} carries only {field}, not {', '.join(others)}")
        return self

    def stored(self) -> dict:
        """Only the type and its payload, as the resource shows it."""
        return self.model_dump(exclude_none=True)
