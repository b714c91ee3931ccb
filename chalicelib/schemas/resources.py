"""The four resources as the API returns them; field order is the seed's."""

from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from chalicelib.schemas.common import Address, Media


class _Resource(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Chat(_Resource):
    id: str
    customer_id: str
    type: Literal["normal", "group"]
    owner_id: str
    participant_ids: list[str]
    name: str
    detail: str
    tm_create: str
    tm_update: str
    tm_delete: str


class Reaction(BaseModel):
    emoji: str
    owner_type: Literal["agent", "customer"]
    owner_id: str
    tm_create: str


class Metadata(BaseModel):
    # VoIPBIN talk's shape, bounded: each emoji's newest owners (at most 3), oldest first
    reactions: list[Reaction]
    reaction_counts: dict[str, int]  # emoji -> how many react with it (at most 50 emoji); the full list pages


class ChatroommessagePreview(BaseModel):
    """The newest live copy of a chatroom, in short."""

    id: str
    source: Address
    type: Literal["", "system", "normal"]
    text: str  # the first 200 characters
    tm_create: str


class Chatroom(_Resource):
    id: str
    customer_id: str
    type: Literal["unknown", "normal", "group"]
    chat_id: str
    owner_id: str
    participant_ids: list[str]
    name: str
    detail: str
    tm_create: str
    tm_update: str
    tm_delete: str
    # read state: beyond VoIPBIN
    unread_count: int  # copies not sent by the owner, newer than tm_read, not deleted (at most 1,000)
    tm_read: str  # the read marker
    tm_activity: str  # tm_create of the newest live copy, or of the chatroom
    last_chatroommessage: ChatroommessagePreview | None
    mention_count: int  # of the unread copies, those whose chatmessage mentions the owner (at most 1,000)


class Chatmessage(_Resource):
    id: str
    customer_id: str
    chat_id: str
    source: Address
    type: Literal["system", "normal"]
    text: str
    medias: list[Media]
    tm_create: str
    tm_update: str
    tm_delete: str
    metadata: Metadata
    parent_id: str  # "" when it is not a reply
    reply_count: int  # its live replies
    mentions: list[str]  # agent ids the sender mentioned ([] when none)


class Chatroommessage(_Resource):
    id: str
    customer_id: str
    chatroom_id: str
    messagechat_id: str
    source: Address
    type: Literal["", "system", "normal"]
    text: str
    medias: list[Media]
    tm_create: str
    tm_update: str
    tm_delete: str
    owner_type: Literal["agent"] = "agent"  # extras VoIPBIN's schema also has
    owner_id: str
    metadata: Metadata  # the chatmessage's
    parent_id: str  # the chatmessage's
    mentions: list[str]  # the chatmessage's


class ChatmessageVersion(_Resource):
    """An earlier version of an edited chatmessage."""

    text: str
    medias: list[Media]
    tm_update: str  # when this version was written


class Presence(_Resource):
    """An agent's presence: `online` while they have a live websocket connection."""

    agent_id: str
    status: Literal["available", "away", "busy", "offline"]  # offline for an agent never seen
    online: bool
    tm_update: str  # when the status was last set; "" for an agent who never set one


class PresenceList(_Resource):
    result: list[Presence]  # in the order asked


class Receipt(_Resource):
    """A participant (not the sender) whose read marker is at or past the message."""

    agent_id: str
    tm_read: str  # their read marker


class FileUpload(BaseModel):
    """A presigned S3 POST: send a multipart/form-data POST to `url` with every
    field of `fields`, then the file as the last field, `file`."""

    url: str
    fields: dict[str, str]


class File(_Resource):
    id: str
    customer_id: str
    owner_id: str
    name: str
    content_type: str
    size: int
    status: Literal["pending", "uploaded", "deleted"]
    upload: FileUpload | None
    download_url: str | None
    tm_create: str
    tm_update: str
    tm_delete: str
    owner_type: Literal["agent", "customer"]


class CustomerSettings(_Resource):
    """A customer's data-lifecycle settings."""

    customer_id: str
    retention_days: int  # messages expire this many days after tm_create; 0 keeps them forever
    purge_deleted_after_days: int  # a deleted message's content is purged this many days after the delete
    tm_update: str  # when they last changed; "" while they are the defaults


class ExportProgress(BaseModel):
    """Lines written so far, by resource type."""

    chat: int
    chatroom: int
    chatmessage: int
    file: int


class Export(_Resource):
    """An export of the customer's data: a gzipped JSON-lines archive, kept 7 days."""

    id: str
    customer_id: str
    status: Literal["running", "done", "failed"]
    progress: ExportProgress
    size: int  # compressed bytes written so far
    download_url: str | None  # when done: a presigned GET of the archive, for 15 minutes
    error: str  # why it failed, or why a step is being tried again; "" otherwise
    tm_create: str
    tm_update: str
    tm_done: str  # "" until done


class Erasure(_Resource):
    """The erasure of the customer's data, and how far it is."""

    customer_id: str
    status: Literal["running", "done", "failed"]
    phase: Literal["", "items", "files"]  # "" when done
    items_deleted: int  # table items deleted so far
    files_deleted: int  # objects deleted from the files' bucket so far
    error: str  # why it failed, or why a step is being tried again; "" otherwise
    tm_create: str  # when it was asked for
    tm_update: str
    tm_done: str  # "" until done


class TranscriptEntry(BaseModel):
    """One message of a transcript."""

    id: str
    tm_create: str
    sender: str  # source.target_name, else source.name, else source.target
    source: Address
    type: Literal["system", "normal"]
    text: str  # "" for a deleted message
    medias: list[Media]  # [] for a deleted message
    edited: bool  # tm_update differs from tm_create (a live message)
    deleted: bool
    tm_update: str
    tm_delete: str
    parent_id: str


class Transcript(_Resource):
    """A page of a chat's transcript, oldest first."""

    chat_id: str
    format: Literal["json", "text"]
    result: list[TranscriptEntry]  # format=json: the page's messages; format=text: []
    text: str  # format=text: one line per message; format=json: ""
    next_page_token: str  # "" on the last page


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    result: list[T]
    next_page_token: str


class Error(BaseModel):
    Code: str
    Message: str
