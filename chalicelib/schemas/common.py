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
# One emoji as Unicode's emoji grammar (UTS #51) defines it, checked with a
# compact table instead of a dependency: a base from the Extended_Pictographic
# ranges below (which reserve their unassigned code points for future emoji,
# hence `Cn` accepted there), optionally a skin-tone modifier and/or the emoji
# presentation selector, several of them joined by ZWJ; a flag (two regional
# indicators); a keycap; a subdivision flag (black flag, tags, cancel tag).
# Letters, digits, spaces, format, combining and invisible characters alone
# are none of these.
_PICTOGRAPHIC_RANGES = (
    (0x00A9, 0x00A9), (0x00AE, 0x00AE), (0x203C, 0x203C), (0x2049, 0x2049), (0x2122, 0x2122),
    (0x2139, 0x2139), (0x2194, 0x2199), (0x21A9, 0x21AA), (0x231A, 0x231B), (0x2328, 0x2328),
    (0x2388, 0x2388), (0x23CF, 0x23CF), (0x23E9, 0x23F3), (0x23F8, 0x23FA), (0x24C2, 0x24C2),
    (0x25AA, 0x25AB), (0x25B6, 0x25B6), (0x25C0, 0x25C0), (0x25FB, 0x25FE), (0x2600, 0x27BF),
    (0x2934, 0x2935), (0x2B05, 0x2B07), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50), (0x2B55, 0x2B55),
    (0x3030, 0x3030), (0x303D, 0x303D), (0x3297, 0x3297), (0x3299, 0x3299),
    (0x1F000, 0x1F1E5), (0x1F200, 0x1FAFF), (0x1FC00, 0x1FFFD),
)
_REGIONAL_INDICATORS = (0x1F1E6, 0x1F1FF)
_SKIN_TONES = (0x1F3FB, 0x1F3FF)
_PRESENTATION = "\ufe0f"
_ZWJ = "\u200d"
_KEYCAP = re.compile("[0-9#*]\ufe0f?\u20e3")
_SUBDIVISION_FLAG = re.compile("\U0001f3f4[\U000e0020-\U000e007e]{1,30}\U000e007f")


def _within(char: str, low_high: tuple[int, int]) -> bool:
    return low_high[0] <= ord(char) <= low_high[1]


def _pictographic(char: str) -> bool:
    return any(_within(char, bounds) for bounds in _PICTOGRAPHIC_RANGES) and \
        unicodedata.category(char) in ("So", "Sk", "Cn")


def _emoji_element(part: str) -> bool:
    """A base, then at most one skin tone (unless the base is one) and one
    presentation selector."""
    if not part or not _pictographic(part[0]):
        return False
    rest = part[1:]
    tones = [char for char in rest if _within(char, _SKIN_TONES)]
    if tones and _within(part[0], _SKIN_TONES):
        return False
    return len(rest) <= 2 and len(tones) <= 1 and rest.count(_PRESENTATION) == len(rest) - len(tones) <= 1


def is_one_emoji(value: str) -> bool:
    if len(value) == 2 and all(_within(char, _REGIONAL_INDICATORS) for char in value):
        return True  # a flag
    if _KEYCAP.fullmatch(value) or _SUBDIVISION_FLAG.fullmatch(value):
        return True
    return all(_emoji_element(part) for part in value.split(_ZWJ))


def _emoji(value: str) -> str:
    if not 1 <= len(value) <= EMOJI_MAX:
        raise ValueError(f"must be 1 to {EMOJI_MAX} characters")
    if not _EMOJI_NAME.fullmatch(value) and not is_one_emoji(value):
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
