"""PynamoDB models of the single table.

Every partition key starts with the customer id, so a request can only ever
address its own tenant's items: another customer's id simply is not found.
Live items carry list-index keys (gsi1) sorted by "tm_create~id"; deleting an
item removes those keys, so list pages never read dead items.
"""

import json
import zlib

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
)
from pynamodb.attributes import (
    JSONAttribute as _PlainJSONAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from chalicelib.clock import NOT_DELETED, derived_id, new_id
from chalicelib.storage.table import LIST_INDEX, ORDER_INDEX, RELATION_ATTRIBUTES, RELATION_INDEX, TTL_ATTRIBUTE

META = "#"  # sort key of an entity's own item


# ---- the customer's registry: every partition of a customer, without a scan ----------------
# The item that starts a partition of a customer (a chat, a chatmessage, a file,
# a settings or presence item, ...) carries relation-index keys naming its
# partition: gsi2pk "{customer}#partitions#{shard}", gsi2sk its pk. An export or
# an erasure reads the customer's partitions as REGISTRY_SHARDS Queries of that
# index, then each partition with one Query. Not registered: what lives in another
# partition of the customer (a chat's member items, a message's history and
# reactions, a file's chats), the copies of a message (found by the message's
# copies relation, kept on deleted copies), and a live chatroom (found by its
# chat's member item): a chatroom is rewritten by every message to it, and the
# keys would take its item past 1 KB, doubling that write. A chatroom is
# registered when it is deleted or left (its member item may go then), after
# which messages no longer change it. The shards spread a busy customer's writes.
REGISTRY_SHARDS = 16


def registry_key(customer_id: str, shard: int) -> str:
    return f"{customer_id}#partitions#{shard:02}"


def registered(customer_id: str, pk: str) -> dict[str, str]:
    """The relation-index keys that file the partition `pk` in its customer's registry."""
    return {"gsi2pk": registry_key(customer_id, zlib.crc32(pk.encode()) % REGISTRY_SHARDS), "gsi2sk": pk}


def registering(model: type, customer_id: str, pk: str) -> list:
    """The same as an update's actions, for items an UpdateItem may create,
    with their kind (an update writes no discriminator itself, and an item
    without one is in no Query's answer)."""
    keys = registered(customer_id, pk)
    return [model.kind.set(model), TableItem.gsi2pk.set(keys["gsi2pk"]), TableItem.gsi2sk.set(keys["gsi2sk"])]


class JSONAttribute(_PlainJSONAttribute):
    """JSON in UTF-8, compact: PynamoDB's own escapes every non-ASCII character
    (a Hangul one, 3 bytes, stored as 6; an emoji, 4, as 12), and a message of
    the largest body the API takes (256 KiB) would pass DynamoDB's 400 KB."""

    def serialize(self, value):
        return None if value is None else json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def list_sort_key(tm_create: str, item_id: str) -> str:
    # "~" sorts after every character of a timestamp, so a bare timestamp
    # token T selects exactly the items created before T.
    return f"{tm_create}~{item_id}"


class ListIndex(GlobalSecondaryIndex):
    class Meta:
        index_name = LIST_INDEX
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class RelationIndex(GlobalSecondaryIndex):
    """Children come back as keys and RELATION_ATTRIBUTES only: enough to
    address them (an update needs just the key), never their content."""

    class Meta:
        index_name = RELATION_INDEX
        projection = IncludeProjection(list(RELATION_ATTRIBUTES))

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class OrderIndex(GlobalSecondaryIndex):
    """Lists in another order than creation: an agent's chatrooms by newest
    activity, a thread's replies."""

    class Meta:
        index_name = ORDER_INDEX
        projection = AllProjection()

    gsi3pk = UnicodeAttribute(hash_key=True)
    gsi3sk = UnicodeAttribute(range_key=True)


class TableItem(Model):
    """Base of every item type; `kind` tells them apart in queries and streams."""

    class Meta:
        table_name = "chat"  # replaced by storage.configure()
        region = "us-east-1"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default=META)
    kind = DiscriminatorAttribute()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)
    gsi3pk = UnicodeAttribute(null=True)
    gsi3sk = UnicodeAttribute(null=True)
    list_index = ListIndex()
    relation_index = RelationIndex()
    order_index = OrderIndex()


class Resource(TableItem):
    """Fields every API resource has."""

    id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    tm_create = UnicodeAttribute()
    tm_update = UnicodeAttribute()
    tm_delete = UnicodeAttribute(default=NOT_DELETED)

    @property
    def deleted(self) -> bool:
        return self.tm_delete != NOT_DELETED


class ChatItem(Resource, discriminator="chat"):
    """The chat, participant list included: the one place membership is
    stored. Its partition also holds a ChatStatusItem and one ChatMemberItem
    per participant, small items that answer "is it live?" and "is X in it,
    and where is X's chatroom?" without reading the list."""

    type = UnicodeAttribute()
    owner_id = UnicodeAttribute()
    participant_ids = ListAttribute(of=UnicodeAttribute)
    name = UnicodeAttribute(default="")
    detail = UnicodeAttribute(default="")
    # Bumped by every membership change: membership writes are conditioned on
    # the version they read, and a re-added participant gets a new chatroom.
    version = NumberAttribute(default=1)
    # True once the partition holds the status and member items (chats
    # written before they existed are indexed on first use: services/membership.py).
    members_indexed = BooleanAttribute(null=True)

    @staticmethod
    def key(customer_id: str, chat_id: str) -> str:
        return f"{customer_id}#chat#{chat_id}"

    @classmethod
    def new(cls, customer_id: str, chat_type: str, owner_id: str, participant_ids: list[str], name: str,
            detail: str, tm: str) -> "ChatItem":
        chat_id = new_id()
        return cls(
            cls.key(customer_id, chat_id),
            id=chat_id, customer_id=customer_id, type=chat_type, owner_id=owner_id,
            participant_ids=participant_ids, name=name, detail=detail, tm_create=tm, tm_update=tm,
            gsi1pk=cls.list_key(customer_id), gsi1sk=list_sort_key(tm, chat_id), version=1, members_indexed=True,
            **registered(customer_id, cls.key(customer_id, chat_id)),
        )

    @classmethod
    def keyed(cls, customer_id: str, chat_id: str) -> "ChatItem":
        """The item's key only: enough for a conditional update that returns the rest."""
        return cls(cls.key(customer_id, chat_id), META)

    @staticmethod
    def list_key(customer_id: str) -> str:
        return f"{customer_id}#chats"


class ChatStatusItem(TableItem, discriminator="chat-status"):
    """Whether a chat is live, in a few bytes: a send reads this, not the
    chat's participant list, so its cost does not grow with the group."""

    tm_delete = UnicodeAttribute(default=NOT_DELETED)
    SORT_KEY = "status"

    @classmethod
    def of(cls, chat: ChatItem) -> "ChatStatusItem":
        return cls(chat.pk, cls.SORT_KEY, tm_delete=chat.tm_delete)

    @property
    def deleted(self) -> bool:
        return self.tm_delete != NOT_DELETED


class ChatMemberItem(TableItem, discriminator="chat-member"):
    """One participant of a chat, filed in the chat's partition: a send checks
    membership with one GetItem, and the fan-out finds every chatroom with
    one Query of the partition."""

    agent_id = UnicodeAttribute()
    chatroom_id = UnicodeAttribute()
    tm_join = UnicodeAttribute()  # the chatroom's tm_create: messages from then on are copied to it
    SORT_PREFIX = "member#"

    @classmethod
    def sort_key(cls, agent_id: str) -> str:
        return f"{cls.SORT_PREFIX}{agent_id}"

    @classmethod
    def of(cls, room: "ChatroomItem", chat: ChatItem | None = None) -> "ChatMemberItem":
        """The member item of a chatroom's owner (`chat` when the room's own
        chat_id is not at hand, as in a relation-index projection)."""
        pk = chat.pk if chat is not None else ChatItem.key(room.customer_id, room.chat_id)
        return cls(pk, cls.sort_key(room.owner_id), agent_id=room.owner_id, chatroom_id=room.id,
                   tm_join=room.tm_create)


class ChatroomItem(Resource, discriminator="chatroom"):
    """A participant's own view of a chat. Its `type` and `participant_ids`
    are its chat's, read from the chat when rendered (items written before
    membership lived only in the chat still carry a copy, never read)."""

    type = UnicodeAttribute(null=True)
    chat_id = UnicodeAttribute()
    owner_id = UnicodeAttribute()
    participant_ids = ListAttribute(of=UnicodeAttribute, null=True)
    name = UnicodeAttribute(default="")
    detail = UnicodeAttribute(default="")
    chat_version = NumberAttribute(default=1)
    # Read state, kept by the writes that add or remove copies (services/readstate.py).
    # Chatrooms written before read state have none of them: see the defaults there.
    unread = NumberAttribute(null=True)  # live copies not from the owner newer than tm_read
    mention_count = NumberAttribute(null=True)  # of the unread copies, those that mention the owner (absent: 0)
    tm_read = UnicodeAttribute(null=True)  # the read marker
    tm_activity = UnicodeAttribute(null=True)  # tm_create of the newest live copy (or of the chatroom)
    last_copy_id = UnicodeAttribute(null=True)  # that copy
    last_messagechat_id = UnicodeAttribute(null=True)  # and its chatmessage
    revision = NumberAttribute(null=True)  # bumped by every change of the above: writes condition on it
    # The chat as its owner last saw it, kept when they are removed from it: a
    # left chatroom shows the chat as it was, not as it goes on without them.
    left_participant_ids = ListAttribute(of=UnicodeAttribute, null=True)
    left_type = UnicodeAttribute(null=True)

    @staticmethod
    def key(customer_id: str, chatroom_id: str) -> str:
        return f"{customer_id}#chatroom#{chatroom_id}"

    @staticmethod
    def by_activity_key(customer_id: str, owner_id: str) -> str:
        return f"{customer_id}#agent#{owner_id}#chatrooms-by-activity"

    @staticmethod
    def derived_id(chat_id: str, owner_id: str, chat_version: int) -> str:
        """Derived, so the API and the stream handler name the same chatroom;
        the version makes a re-added participant's chatroom a new one."""
        return derived_id("chatroom", chat_id, owner_id, str(chat_version))

    @classmethod
    def for_participant(cls, chat: ChatItem, owner_id: str, tm: str) -> "ChatroomItem":
        room_id = cls.derived_id(chat.id, owner_id, chat.version)
        c = chat.customer_id
        return cls(
            cls.key(c, room_id),
            id=room_id, customer_id=c, chat_id=chat.id, owner_id=owner_id, name=chat.name, detail=chat.detail,
            tm_create=tm, tm_update=tm, chat_version=chat.version,
            unread=0, tm_read=tm, tm_activity=tm, revision=0,
            gsi1pk=cls.list_key(c, owner_id), gsi1sk=list_sort_key(tm, room_id),
            gsi3pk=cls.by_activity_key(c, owner_id), gsi3sk=list_sort_key(tm, room_id),
        )

    @classmethod
    def keyed(cls, customer_id: str, chatroom_id: str) -> "ChatroomItem":
        return cls(cls.key(customer_id, chatroom_id), META)

    @staticmethod
    def list_key(customer_id: str, owner_id: str) -> str:
        return f"{customer_id}#agent#{owner_id}#chatrooms"

    @classmethod
    def registering_deleted(cls, customer_id: str, chatroom_id: str) -> list:
        """A deleted or left chatroom's registry keys (see registered): update actions."""
        return registering(cls, customer_id, cls.key(customer_id, chatroom_id))

    @staticmethod
    def by_chat_key(customer_id: str, chat_id: str) -> str:
        """Relation-index partition of the chatrooms of chats indexed before member items existed."""
        return f"{customer_id}#chat#{chat_id}#chatrooms"


class ChatmessageItem(Resource, discriminator="chatmessage"):
    chat_id = UnicodeAttribute()
    source = JSONAttribute()
    type = UnicodeAttribute()
    text = UnicodeAttribute(default="")
    medias = JSONAttribute(default=list)
    # The chatroom the API already wrote the sender's copy into (POST
    # /chatroommessages); the fan-out leaves that one alone.
    origin_chatroom_id = UnicodeAttribute(null=True)
    # The sending agent (source.target when source.type is agent), kept apart
    # from the source document so that a write can be conditioned on it.
    sender_id = UnicodeAttribute(null=True)
    parent_id = UnicodeAttribute(null=True)  # the thread it replies in (a chatmessage of the same chat)
    reply_count = NumberAttribute(null=True)  # its live replies
    # When its text and medias were last edited (None: never): a delete moves tm_update
    # too, so a view of the message as it was at some time (views.as_of) reads this.
    tm_edited = UnicodeAttribute(null=True)
    # Written before reactions were items: "<owner_type>:<owner_id>:<emoji>" -> {emoji, owner_type, owner_id,
    # tm_create}. Read as it is until the message is migrated (services/reactions.py), never written again.
    reactions = MapAttribute(null=True)
    mentions = ListAttribute(of=UnicodeAttribute, null=True)  # agent ids, participants at the send
    # The reactions' summary, kept by each reaction's transaction (the reactions are ReactionItems):
    reaction_counts = MapAttribute(null=True)  # emoji -> owners reacting with it
    reaction_newest = MapAttribute(null=True)  # emoji -> its newest owners [{owner_type, owner_id, tm_create}]
    reaction_emoji = NumberAttribute(null=True)  # how many different emoji (the 50 limit's condition)
    # DynamoDB TTL (services/lifecycle.py): the customer's retention, or the purge of a deleted message
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE, null=True)

    @staticmethod
    def key(customer_id: str, message_id: str) -> str:
        return f"{customer_id}#chatmessage#{message_id}"

    def mentions_agent(self, agent_id: str) -> bool:
        return agent_id in (self.mentions or ())

    @classmethod
    def new(cls, customer_id: str, chat_id: str, source: dict, message_type: str, text: str, medias: list, tm: str,
            origin_chatroom_id: str | None = None, parent_id: str | None = None,
            mentions: list[str] | None = None, expires_at: int | None = None) -> "ChatmessageItem":
        mid, c = new_id(), customer_id
        message = cls(
            cls.key(c, mid),
            id=mid, customer_id=c, chat_id=chat_id, source=source, type=message_type, text=text,
            medias=medias, tm_create=tm, tm_update=tm, origin_chatroom_id=origin_chatroom_id,
            sender_id=source.get("target") if source.get("type") == "agent" else None,
            parent_id=parent_id, reply_count=0, mentions=list(mentions) if mentions else None,
            expires_at=expires_at,
            gsi1pk=cls.list_key(c, chat_id), gsi1sk=list_sort_key(tm, mid), **registered(c, cls.key(c, mid)),
        )
        if parent_id:
            message.gsi3pk, message.gsi3sk = cls.replies_key(c, parent_id), list_sort_key(tm, mid)
        return message

    @classmethod
    def keyed(cls, customer_id: str, message_id: str) -> "ChatmessageItem":
        return cls(cls.key(customer_id, message_id), META)

    @staticmethod
    def list_key(customer_id: str, chat_id: str) -> str:
        return f"{customer_id}#chat#{chat_id}#messages"

    @staticmethod
    def deleted_key(customer_id: str, chat_id: str) -> str:
        """Order-index partition of a chat's deleted messages (for its transcript), filed by the stream handler."""
        return f"{customer_id}#chat#{chat_id}#deleted-messages"

    @staticmethod
    def replies_key(customer_id: str, parent_id: str) -> str:
        return f"{customer_id}#chatmessage#{parent_id}#replies"

    @staticmethod
    def reaction_key(owner_type: str, owner_id: str, emoji: str) -> str:
        return f"{owner_type}:{owner_id}:{emoji}"


class ChatmessageVersionItem(TableItem, discriminator="chatmessage-version"):
    """An earlier version of an edited chatmessage, in the message's own
    partition: its history is one Query, newest first."""

    text = UnicodeAttribute(default="")
    medias = JSONAttribute(default=list)
    tm_update = UnicodeAttribute()
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE, null=True)  # its message's
    SORT_PREFIX = "version#"

    @classmethod
    def of(cls, message: "ChatmessageItem") -> "ChatmessageVersionItem":
        return cls(message.pk, cls.sort_key(message.tm_update), text=message.text, medias=message.medias,
                   tm_update=message.tm_update, expires_at=message.expires_at)

    @classmethod
    def sort_key(cls, tm_update: str) -> str:
        return f"{cls.SORT_PREFIX}{tm_update}"


class ReactionItem(TableItem, discriminator="reaction"):
    """One owner's reaction with one emoji, in its chatmessage's partition:
    its derived id makes a repeat the same item (a conditional put). Listed
    newest first over the list index (all of a message's reactions) and the
    order index (one emoji's: what refills its newest owners)."""

    id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    message_id = UnicodeAttribute()
    emoji = UnicodeAttribute()
    owner_type = UnicodeAttribute()
    owner_id = UnicodeAttribute()
    tm_create = UnicodeAttribute()
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE, null=True)  # its chatmessage's purge (services/lifecycle.py)
    SORT_PREFIX = "reaction#"

    @staticmethod
    def derived_id(message_id: str, owner_type: str, owner_id: str, emoji: str) -> str:
        return derived_id("reaction", message_id, owner_type, owner_id, emoji)

    @classmethod
    def new(cls, customer_id: str, message_id: str, emoji: str, owner_type: str, owner_id: str,
            tm: str) -> "ReactionItem":
        rid = cls.derived_id(message_id, owner_type, owner_id, emoji)
        return cls(
            ChatmessageItem.key(customer_id, message_id), cls.SORT_PREFIX + rid,
            id=rid, customer_id=customer_id, message_id=message_id, emoji=emoji, owner_type=owner_type,
            owner_id=owner_id, tm_create=tm,
            gsi1pk=cls.list_key(customer_id, message_id), gsi1sk=list_sort_key(tm, rid),
            gsi3pk=cls.by_emoji_key(customer_id, message_id, emoji), gsi3sk=list_sort_key(tm, rid),
        )

    @classmethod
    def keyed(cls, customer_id: str, message_id: str, emoji: str, owner_type: str,
              owner_id: str) -> "ReactionItem":
        rid = cls.derived_id(message_id, owner_type, owner_id, emoji)
        return cls(ChatmessageItem.key(customer_id, message_id), cls.SORT_PREFIX + rid)

    @staticmethod
    def list_key(customer_id: str, message_id: str) -> str:
        return f"{customer_id}#chatmessage#{message_id}#reactions"

    @staticmethod
    def by_emoji_key(customer_id: str, message_id: str, emoji: str) -> str:
        return f"{customer_id}#chatmessage#{message_id}#reactions#{emoji}"

    def shown(self) -> dict:
        return {"emoji": self.emoji, "owner_type": self.owner_type, "owner_id": self.owner_id,
                "tm_create": self.tm_create}


class ChatroommessageItem(Resource, discriminator="chatroommessage"):
    # True when its chatmessage mentions this copy's owner: a mark-read recounts
    # the chatroom's mention_count from the copies it reads anyway.
    mentioned = BooleanAttribute(null=True)
    chatroom_id = UnicodeAttribute()
    messagechat_id = UnicodeAttribute()
    owner_id = UnicodeAttribute()
    source = JSONAttribute()
    type = UnicodeAttribute()
    text = UnicodeAttribute(default="")
    medias = JSONAttribute(default=list)
    # Set by the fan-out, once, on the copy POST /chatroommessages wrote with its
    # message: its chatroom's read state follows in the same transaction, on
    # the condition that it is not set yet, so a replayed record never counts it twice.
    counted = BooleanAttribute(null=True)
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE, null=True)  # its chatmessage's
    owner_type = "agent"  # chatrooms belong to agents only

    @staticmethod
    def key(customer_id: str, copy_id: str) -> str:
        return f"{customer_id}#chatroommessage#{copy_id}"

    @staticmethod
    def derived_id(message_id: str, chatroom_id: str) -> str:
        """Derived, so a replayed stream record writes the same copy, never a second."""
        return derived_id("chatroommessage", message_id, chatroom_id)

    @classmethod
    def copy_of(cls, message: ChatmessageItem, chatroom_id: str, owner_id: str) -> "ChatroommessageItem":
        """The copy of a chatmessage in one chatroom; it keeps the message's tm_create."""
        cid = cls.derived_id(message.id, chatroom_id)
        c = message.customer_id
        return cls(
            cls.key(c, cid),
            # text and medias are shown from the chatmessage, so an edit or a
            # reaction writes one item, not one per chatroom
            id=cid, customer_id=c, chatroom_id=chatroom_id, messagechat_id=message.id, owner_id=owner_id,
            source=message.source, type=message.type, tm_create=message.tm_create, tm_update=message.tm_create,
            expires_at=message.expires_at,
            gsi1pk=cls.list_key(c, chatroom_id), gsi1sk=list_sort_key(message.tm_create, cid),
            gsi2pk=cls.by_message_key(c, message.id), gsi2sk=chatroom_id,
            mentioned=True if message.mentions_agent(owner_id) else None,
        )

    @classmethod
    def keyed(cls, customer_id: str, copy_id: str) -> "ChatroommessageItem":
        return cls(cls.key(customer_id, copy_id), META)

    @staticmethod
    def list_key(customer_id: str, chatroom_id: str) -> str:
        return f"{customer_id}#chatroom#{chatroom_id}#messages"

    @staticmethod
    def by_message_key(customer_id: str, message_id: str) -> str:
        return f"{customer_id}#chatmessage#{message_id}#copies"


class FileItem(Resource, discriminator="file"):
    """An attachment: its record here, its bytes in the files' bucket: the
    upload under `{customer_id}/{id}` (`object_key`), and from its first send
    a copy under `sent_key`, which downloads use and no upload form reaches.
    pending (created, maybe uploaded) -> uploaded (checked and copied at the
    first send that names it) -> deleted (the objects are gone, the record
    stays). A pending record carries a TTL: the bucket's lifecycle rule
    removes an upload never sent within a day, and DynamoDB removes its record."""

    owner_type = UnicodeAttribute()  # agent | customer
    owner_id = UnicodeAttribute()  # the uploading agent, or the customer for a customer token
    name = UnicodeAttribute()
    content_type = UnicodeAttribute()
    size = NumberAttribute()
    status = UnicodeAttribute()
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE, null=True)
    # `{customer_id}/{an id of its own}`; None: pending, or sent before sent copies
    # (their upload key is what downloads use).
    sent_key = UnicodeAttribute(null=True)
    # Only in answers (set by the service, never stored).
    upload = None
    download_url = None

    @staticmethod
    def key(customer_id: str, file_id: str) -> str:
        return f"{customer_id}#file#{file_id}"

    @classmethod
    def new(cls, customer_id: str, owner_type: str, owner_id: str, name: str, content_type: str, size: int,
            tm: str, expires_at: int) -> "FileItem":
        file_id = new_id()
        return cls(
            cls.key(customer_id, file_id),
            id=file_id, customer_id=customer_id, owner_type=owner_type, owner_id=owner_id, name=name,
            content_type=content_type, size=size, status="pending", tm_create=tm, tm_update=tm,
            expires_at=expires_at, **registered(customer_id, cls.key(customer_id, file_id)),
        )

    @classmethod
    def keyed(cls, customer_id: str, file_id: str) -> "FileItem":
        return cls(cls.key(customer_id, file_id), META)

    @property
    def object_key(self) -> str:
        """The upload's key, the one the presigned POST is bound to."""
        return f"{self.customer_id}/{self.id}"

    @property
    def download_key(self) -> str:
        return self.sent_key or self.object_key


class FileChatItem(TableItem, discriminator="file-chat"):
    """A chat a file was sent in, filed in the file's partition: who may read
    the file is one Query of these and one BatchGetItem of the caller's
    member items in those chats."""

    chat_id = UnicodeAttribute()
    SORT_PREFIX = "chat#"

    @classmethod
    def sort_key(cls, chat_id: str) -> str:
        return f"{cls.SORT_PREFIX}{chat_id}"

    @classmethod
    def of(cls, file: FileItem, chat_id: str) -> "FileChatItem":
        return cls(file.pk, cls.sort_key(chat_id), chat_id=chat_id)


class PairGuardItem(TableItem, discriminator="pair"):
    """Exists while a live `normal` chat joins these two agents: the
    conditional put of this item makes a second one impossible, even in a race."""

    chat_id = UnicodeAttribute()

    @staticmethod
    def key(customer_id: str, first: str, second: str) -> str:
        a, b = sorted((first, second))
        return f"{customer_id}#pair#{a}#{b}"

    @classmethod
    def for_chat(cls, chat: ChatItem) -> "PairGuardItem":
        pk = cls.key(chat.customer_id, *chat.participant_ids)
        return cls(pk, META, chat_id=chat.id, **registered(chat.customer_id, pk))


class IdempotencyItem(TableItem, discriminator="idempotency"):
    """The first result of a send made with an Idempotency-Key (kept 24 h)."""

    request_hash = UnicodeAttribute()
    message_id = UnicodeAttribute()
    copy_id = UnicodeAttribute(null=True)
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE)

    @staticmethod
    def key(customer_id: str, caller_id: str, scope: str, idempotency_key: str) -> str:
        return f"{customer_id}#idempotency#{caller_id}#{scope}#{idempotency_key}"


class AudienceItem(TableItem, discriminator="ws-audience"):
    """The live websocket connections of one audience: an agent
    (`agent#<id>`) or a customer's feed (`customer`), as a map from connection
    id to its expiry. One item per audience, so the connections of N
    recipients come back in one BatchGetItem per 100."""

    customer_id = UnicodeAttribute()
    connections = MapAttribute(null=True)  # connection id -> expiry (epoch seconds)
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE)

    @staticmethod
    def key(customer_id: str, audience: str) -> str:
        return f"{customer_id}#ws#{audience}"

    def live_connections(self, now: int) -> list[str]:
        connections = self.connections.as_dict() if self.connections else {}
        return sorted(cid for cid, expiry in connections.items() if int(expiry) > now)


class PresenceItem(TableItem, discriminator="presence"):
    """An agent's status, filed in the partition of the agent's AudienceItem
    (sort key `presence`): the presence of 100 agents and their live
    connections come back in two BatchGetItems of 100 keys."""

    customer_id = UnicodeAttribute()
    agent_id = UnicodeAttribute()
    status = UnicodeAttribute()
    tm_update = UnicodeAttribute()
    SORT_KEY = "presence"


class PresenceWatcherItem(TableItem, discriminator="presence-watcher"):
    """A websocket connection that watches an agent's presence, in that
    agent's audience partition (sort key `watcher#<connection id>`): a status
    change finds its watchers with one Query; it lives as long as the connection."""

    connection_id = UnicodeAttribute()
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE)
    SORT_PREFIX = "watcher#"


class TypingThrottleItem(TableItem, discriminator="typing-throttle"):
    """When an agent may next be pushed as typing in a chat (sort key: the
    chat id). The stream handler has no business with it (no fan-out, no
    event: it is neither a resource nor a chat's item), and its TTL sweeps it."""

    until_ms = NumberAttribute()
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE)

    @staticmethod
    def key(customer_id: str, agent_id: str) -> str:
        return f"{customer_id}#typing#{agent_id}"


class ConnectionRouteItem(TableItem, discriminator="connection-route"):
    """From a connection id (all a disconnect event carries) to its items.
    The only key not led by a customer id: API Gateway names the connection."""

    customer_id = UnicodeAttribute()
    audiences = ListAttribute(of=UnicodeAttribute)
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE)
    agent_name = UnicodeAttribute(null=True)  # the agent's name from the token: typing frames show it
    connected_at = NumberAttribute(null=True)  # epoch seconds of its $connect (services/connections.py)

    @staticmethod
    def key(connection_id: str) -> str:
        return f"ws#{connection_id}"


class SendWindowItem(TableItem, discriminator="send-window"):
    """A customer's sends in one window of the send limits (services/limits.py):
    `sends` counts the customer's, and one top-level number per agent
    ("agent#<id>") that agent's. One conditional UpdateItem counts a send in
    both, or neither when either is at its cap: one request, exact under
    concurrency (DynamoDB applies the updates of one item one at a time)."""

    sends = NumberAttribute(default=0)
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE)

    @staticmethod
    def key(customer_id: str, window: int) -> str:
        return f"{customer_id}#send-window#{window}"

    @staticmethod
    def agent_counter(agent_id: str) -> str:
        return f"agent#{agent_id}"

    @classmethod
    def count(cls, customer_id: str, agent_id: str | None, window: int, customer_cap: int, agent_cap: int,
              expires_at: int) -> dict | None:
        """Count one send; None when counted, else (nothing changed) the window's
        counts as they are: {"sends": n, "agent": m}. Other errors are raised as
        PynamoDB's, for storage/operations.py's policy."""
        from botocore.exceptions import BotoCoreError, ClientError
        from pynamodb.exceptions import UpdateError

        registry = registered(customer_id, cls.key(customer_id, window))
        names = {"#sends": "sends", "#kind": "kind", "#ttl": TTL_ATTRIBUTE}
        values = {":one": {"N": "1"}, ":kind": {"S": "send-window"}, ":ttl": {"N": str(expires_at)},
                  ":customer_cap": {"N": str(customer_cap)}, ":registry": {"S": registry["gsi2pk"]},
                  ":partition": {"S": registry["gsi2sk"]}}
        add, condition = "#sends :one", "(attribute_not_exists(#sends) OR #sends < :customer_cap)"
        if agent_id is not None:
            names["#agent"] = cls.agent_counter(agent_id)
            values[":agent_cap"] = {"N": str(agent_cap)}
            add += ", #agent :one"
            condition += " AND (attribute_not_exists(#agent) OR #agent < :agent_cap)"
        connection = cls._get_connection().connection
        try:
            connection.client.update_item(
                TableName=cls.Meta.table_name, Key={"pk": {"S": cls.key(customer_id, window)}, "sk": {"S": META}},
                UpdateExpression=f"ADD {add} SET #kind = :kind, #ttl = :ttl, gsi2pk = :registry, gsi2sk = :partition",
                ConditionExpression=condition,
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
                ReturnValuesOnConditionCheckFailure="ALL_OLD")
            return None
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise UpdateError("Failed to count the send", error) from error
            old = error.response.get("Item") or {}
            return {"sends": int(old.get("sends", {}).get("N", 0)),
                    "agent": int(old.get(names.get("#agent", ""), {}).get("N", 0))}
        except BotoCoreError as error:
            raise UpdateError("Failed to count the send", error) from error


class CustomerSettingsItem(TableItem, discriminator="customer-settings"):
    """A customer's data-lifecycle settings (services/lifecycle.py): one item
    per customer, read once per send when it stamps expiry on what it writes."""

    customer_id = UnicodeAttribute()
    retention_days = NumberAttribute(default=0)  # 0 keeps messages forever
    purge_deleted_after_days = NumberAttribute(default=30)
    tm_update = UnicodeAttribute(null=True)
    # Where the pass that re-stamps older messages after a retention change is
    # ("chat sort key|message sort key"; "" to start); absent once done.
    pass_cursor = UnicodeAttribute(null=True)
    pass_done = UnicodeAttribute(null=True)  # when the last pass finished

    @staticmethod
    def key(customer_id: str) -> str:
        return f"{customer_id}#settings"


class ExportItem(TableItem, discriminator="export"):
    """An export of a customer's data (services/exports.py): a job run in
    slices by the stream function, each slice's update of this item bringing
    the next. Registered, so an erasure takes it with the rest."""

    id = UnicodeAttribute()
    customer_id = UnicodeAttribute()
    status = UnicodeAttribute()  # running | done | failed
    tm_create = UnicodeAttribute()
    tm_update = UnicodeAttribute()
    tm_done = UnicodeAttribute(null=True)
    requested_by = UnicodeAttribute()
    cursor = UnicodeAttribute(null=True)  # where the next slice starts (paging.walk_registry); absent when done
    counts = MapAttribute(null=True)  # resource type -> lines written
    upload_id = UnicodeAttribute(null=True)  # the archive's multipart upload
    parts = NumberAttribute(default=0)  # parts uploaded
    staged = NumberAttribute(default=0)  # bytes waiting in the staging object for the next part
    size = NumberAttribute(default=0)  # compressed bytes written (parts and staged)
    error = UnicodeAttribute(null=True)  # why it failed, or why its current slice is being tried again
    failures = NumberAttribute(null=True)  # of its current slice (services/jobs.py)
    expires_at = NumberAttribute(attr_name=TTL_ATTRIBUTE, null=True)  # as its archive's

    @staticmethod
    def key(customer_id: str, export_id: str) -> str:
        return f"{customer_id}#export#{export_id}"

    @property
    def archive_key(self) -> str:
        return f"{self.customer_id}/{self.id}"

    @property
    def staging_key(self) -> str:
        return f"{self.customer_id}/{derived_id('export-staging', self.id)}"


class ErasureItem(TableItem, discriminator="erasure"):
    """The erasure of a customer's data (services/erasure.py), run in slices as
    an export is. Not registered: it outlives what it erases, as its record."""

    customer_id = UnicodeAttribute()
    status = UnicodeAttribute()  # running | done | failed
    phase = UnicodeAttribute(null=True)  # items | files
    tm_create = UnicodeAttribute()
    tm_update = UnicodeAttribute()
    tm_done = UnicodeAttribute(null=True)
    cursor = UnicodeAttribute(null=True)  # where the next slice starts (paging.walk_registry); absent when done
    walk_deleted = NumberAttribute(default=0)  # items this walk of the registry deleted: 0 at its end means none left
    items_deleted = NumberAttribute(default=0)
    files_deleted = NumberAttribute(default=0)
    slices = NumberAttribute(default=0)
    error = UnicodeAttribute(null=True)  # why it failed, or why its current slice is being tried again
    failures = NumberAttribute(null=True)  # of its current slice (services/jobs.py)

    @staticmethod
    def key(customer_id: str) -> str:
        return f"{customer_id}#erasure"


MODELS = (
    PresenceItem, PresenceWatcherItem, TypingThrottleItem,  # presence and typing (services/presence.py)
    TableItem, Resource, ChatItem, ChatStatusItem, ChatMemberItem, ChatroomItem, ChatmessageItem,
    ChatmessageVersionItem, ReactionItem, ChatroommessageItem, FileItem, FileChatItem, PairGuardItem,
    IdempotencyItem, AudienceItem, ConnectionRouteItem, SendWindowItem, CustomerSettingsItem, ExportItem,
    ErasureItem,
)
