"""Request bodies, validated with pydantic; also the OpenAPI source."""

import re
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from chalicelib.schemas.common import (
    CONTENT_TYPE_PATTERN,
    FILE_SIZE_MAX,
    MEDIAS_MAX,
    NAME_MAX,
    PARTICIPANTS_MAX,
    TEXT_MAX,
    Address,
    Detail,
    Emoji,
    Media,
    Name,
    StrictModel,
    UUIDStr,
)

# Duplicates are dropped silently, so the limit counts distinct ids (checked
# below); the raw list is bounded by the 256 KiB body limit.
ParticipantList = list[UUIDStr]
Text = Annotated[str, Field(max_length=TEXT_MAX)]
Medias = Annotated[list[Media], Field(max_length=MEDIAS_MAX)]


def unique_sorted(ids: list[str]) -> list[str]:
    return sorted(set(ids))


class _Participants(StrictModel):
    @field_validator("participant_ids", check_fields=False)
    @classmethod
    def _dedupe(cls, ids: list[str]) -> list[str]:
        ids = unique_sorted(ids)
        if len(ids) > PARTICIPANTS_MAX:
            raise ValueError(f"at most {PARTICIPANTS_MAX} distinct participants")
        return ids


class ChatCreate(_Participants):
    type: Literal["normal", "group"]
    owner_id: UUIDStr
    participant_ids: ParticipantList
    name: Name = ""
    detail: Detail = ""


class _NameDetailUpdate(StrictModel):
    name: Name | None = None
    detail: Detail | None = None

    @model_validator(mode="after")
    def _something_to_change(self):
        if self.name is None and self.detail is None:
            raise ValueError("give name, detail or both")
        return self


class ChatUpdate(_NameDetailUpdate):
    pass


class ChatroomUpdate(_NameDetailUpdate):
    pass


class ChatOwnerUpdate(StrictModel):
    owner_id: UUIDStr


class RoomOwnerUpdate(StrictModel):
    room_owner_id: UUIDStr


class ParticipantAdd(StrictModel):
    participant_id: UUIDStr


class ChatroomCreate(_Participants):
    participant_ids: ParticipantList
    name: Name = ""
    detail: Detail = ""


MENTIONS_MAX = 50


class _Mentions(StrictModel):
    """`mentions`: agents of the chat the message calls on (each must be a participant)."""

    mentions: Annotated[list[UUIDStr], Field(description=f"at most {MENTIONS_MAX} agent ids, each a participant "
                                                          "of the chat; duplicates are dropped")] = []

    @field_validator("mentions")
    @classmethod
    def _distinct(cls, ids: list[str]) -> list[str]:
        ids = list(dict.fromkeys(ids))
        if len(ids) > MENTIONS_MAX:
            raise ValueError(f"at most {MENTIONS_MAX} distinct agents")
        return ids


class _MessageContent(StrictModel):
    text: Text = ""
    medias: Medias = []

    @model_validator(mode="after")
    def _not_empty(self):
        if not self.text and not self.medias:
            raise ValueError("a message needs text or medias")
        return self


class ChatmessageCreate(_MessageContent, _Mentions):
    chat_id: UUIDStr
    source: Address | None = None
    type: Literal["system", "normal"] = "normal"
    parent_id: UUIDStr | None = None  # a chatmessage of the same chat: this one replies in its thread


class ChatroommessageCreate(_MessageContent, _Mentions):
    chatroom_id: UUIDStr
    parent_id: UUIDStr | None = None


class ChatmessageEdit(_MessageContent):
    """The new text and medias; the earlier ones go to the message's history."""


class ReactionCreate(StrictModel):
    emoji: Emoji


class ChatroomRead(StrictModel):
    """Move the read marker to this copy (of this chatroom), or to the newest when absent."""

    chatroommessage_id: UUIDStr | None = None


class PresenceUpdate(StrictModel):
    status: Literal["available", "away", "busy", "offline"]


class FileCreate(StrictModel):
    name: Annotated[str, Field(min_length=1, max_length=NAME_MAX,
                               description="the file's name, shown to whoever downloads it; no control characters")]
    content_type: Annotated[str, Field(max_length=255, description="a MIME type, type/subtype without parameters",
                                       json_schema_extra={"pattern": CONTENT_TYPE_PATTERN})]
    size: Annotated[int, Field(ge=1, le=FILE_SIZE_MAX, description="bytes, 1 to 31,457,280 (30 MiB)")]

    @field_validator("name")
    @classmethod
    def _printable(cls, name: str) -> str:
        if any(unicodedata.category(c) in ("Cc", "Cs") for c in name):
            raise ValueError("no control characters")
        return name

    @field_validator("content_type")
    @classmethod
    def _mime_type(cls, content_type: str) -> str:
        if not re.fullmatch(CONTENT_TYPE_PATTERN, content_type):
            raise ValueError("must be a MIME type type/subtype without parameters, e.g. image/png (RFC 6838 "
                             "characters, at most 127 on each side)")
        return content_type.lower()


RETENTION_DAYS_MAX = 3650
PURGE_DAYS_MIN, PURGE_DAYS_MAX = 1, 365


def _days_between(low: int, high: int, note: str = ""):
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError(f"must be an integer from {low} to {high}{note}")
        return value
    return check


class CustomerSettingsUpdate(StrictModel):
    """Give either field or both; the other keeps its value."""

    retention_days: Annotated[int, AfterValidator(_days_between(0, RETENTION_DAYS_MAX, " (0 keeps forever)")),
                              Field(json_schema_extra={"minimum": 0, "maximum": RETENTION_DAYS_MAX})] | None = None
    purge_deleted_after_days: Annotated[int, AfterValidator(_days_between(PURGE_DAYS_MIN, PURGE_DAYS_MAX)),
                                        Field(json_schema_extra={"minimum": PURGE_DAYS_MIN,
                                                                 "maximum": PURGE_DAYS_MAX})] | None = None

    @model_validator(mode="after")
    def _something_to_change(self):
        if self.retention_days is None and self.purge_deleted_after_days is None:
            raise ValueError("give retention_days, purge_deleted_after_days or both")
        return self
