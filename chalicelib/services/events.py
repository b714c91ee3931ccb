"""Chat events, derived from the table's stream records: after the write has
happened, in one place, whichever request or cascade made it."""

from dataclasses import dataclass, field
from types import SimpleNamespace

from pynamodb.exceptions import DoesNotExist

from chalicelib.clock import NOT_DELETED
from chalicelib.schemas import render
from chalicelib.services import views
from chalicelib.services.connections import CUSTOMER_AUDIENCE, agent_audience
from chalicelib.storage import paging
from chalicelib.storage.models import (
    META,
    ChatItem,
    ChatmessageItem,
    ChatroomItem,
    ChatroommessageItem,
    Resource,
    TableItem,
)
from chalicelib.storage.operations import attempt

# item class -> (event prefix as VoIPBIN names it, resource model)
_KINDS = {
    ChatItem: ("chat", "Chat"),
    ChatroomItem: ("chatroom", "Chatroom"),
    ChatmessageItem: ("messagechat", "Chatmessage"),
    ChatroommessageItem: ("messagechatroom", "Chatroommessage"),
}
# What a copy shows of its chatmessage: a change of these is news in every chatroom.
_SHOWN_IN_COPIES = ("text", "medias", "reaction_counts", "reaction_newest")
# A chatroom's own fields (its owner's name and detail for the chat): a change is `chatroom_updated`.
_CHATROOM_OWN = ("name", "detail", "owner_id", "tm_update")
# A chatroom's read state: a change alone is `chatroom_read_state`, the read state without the chatroom
# (whose participant list is the chat's, 39 KB at 1,000, and has not changed).
_READ_STATE = ("unread", "mention_count", "tm_read", "tm_activity", "last_copy_id", "last_messagechat_id")
READ_STATE_FIELDS = ("chatroom_id", "customer_id", "chat_id", "owner_id", "unread_count", "mention_count", "tm_read",
                     "tm_activity", "last_chatroommessage")
# Every event type derive() makes (docs/API.md, "Events", documents each).
EVENT_TYPES = tuple(f"{prefix}_{action}" for prefix, _ in _KINDS.values()
                    for action in ("created", "updated", "deleted")) + ("chatroom_read_state",)
# Chat-level events: the ones the bus gets by default (at most 3 per message sent, at any group size).
CHAT_LEVEL = ("chat_", "messagechat_")


@dataclass
class ChatEvent:
    type: str
    customer_id: str
    data: dict
    audiences: list[str] = field(default_factory=list)

    def message(self) -> dict:
        return {"type": self.type, "data": self.data}

    @property
    def chat_level(self) -> bool:
        return self.type.startswith(CHAT_LEVEL)


class Lookup:
    """What events need beyond their records (a chat's participants, a copy's
    chatmessage, a message's copies), read once per batch of records: its
    records mostly concern the same chats."""

    def __init__(self):
        self._items: dict[str, TableItem | None] = {}
        self._copies: dict[str, list] = {}

    def item(self, model: type[TableItem], customer_id: str, item_id: str | None):
        if not item_id:
            return None
        key = model.key(customer_id, item_id)
        if key not in self._items:
            try:
                self._items[key] = attempt(lambda: model.get(key, META), "reading what an event shows")
            except DoesNotExist:
                self._items[key] = None
        return self._items[key]

    def chat(self, customer_id: str, chat_id: str) -> ChatItem | None:
        return self.item(ChatItem, customer_id, chat_id)

    def copies(self, message: ChatmessageItem) -> list:
        """The live copies of a chatmessage (keys and owners): one Query."""
        if message.id not in self._copies:
            self._copies[message.id] = attempt(
                lambda: paging.live_related(ChatroommessageItem.by_message_key(message.customer_id, message.id)),
                "reading a chatmessage's copies")
        return self._copies[message.id]


def derive(event_name: str, old: Resource | None, new: Resource | None, lookup: Lookup) -> list[ChatEvent]:
    """The events one stream record means, and who should hear each."""
    if new is None or type(new) not in _KINDS:
        return []
    prefix, model = _KINDS[type(new)]
    if event_name == "INSERT":
        action = "created"
    elif old is not None and old.tm_delete == NOT_DELETED and new.deleted:
        action = "deleted"
    elif new.deleted:
        return []  # a dead item's rewrite is no news
    elif prefix == "chatroom" and not _changed(old, new, _CHATROOM_OWN):
        if not _changed(old, new, _READ_STATE):
            return []
        return [ChatEvent("chatroom_read_state", new.customer_id, _read_state(new, lookup),
                          [agent_audience(new.owner_id)])]
    elif prefix in ("chat", "chatroom") or (prefix == "messagechat" and _changed(old, new)):
        action = "updated"
    else:
        return []  # a copy changes only by being deleted; its chatmessage's changes come below
    event = ChatEvent(f"{prefix}_{action}", new.customer_id, render.resource(_shown(new, lookup), model))
    if isinstance(new, ChatItem):
        members = set(new.participant_ids) | set(getattr(old, "participant_ids", None) or [])
        event.audiences = [CUSTOMER_AUDIENCE] + [agent_audience(p) for p in sorted(members)]
    elif isinstance(new, ChatmessageItem):
        chat = lookup.chat(new.customer_id, new.chat_id)
        event.audiences = [CUSTOMER_AUDIENCE] + [agent_audience(p) for p in (chat.participant_ids if chat else [])]
    else:  # a chatroom or a chatroom's copy: its owner's
        event.audiences = [agent_audience(new.owner_id)]
    events = [event]
    if isinstance(new, ChatmessageItem) and action == "updated" and _changed(old, new, _SHOWN_IN_COPIES):
        chat = lookup.chat(new.customer_id, new.chat_id)  # who left sees no more of it
        members = set(chat.participant_ids) if chat is not None else set()
        events += [_copy_updated(copy, new) for copy in lookup.copies(new) if copy.owner_id in members]
    return events


def _changed(old, new, fields=_SHOWN_IN_COPIES + ("reply_count", "tm_update")) -> bool:
    def value(item, name):
        found = getattr(item, name, None)
        return found.as_dict() if hasattr(found, "as_dict") else found

    return old is None or any(value(old, name) != value(new, name) for name in fields)


def _shown(item, lookup: Lookup):
    """The resource as the REST API shows it."""
    if isinstance(item, ChatroomItem):
        return views.chatroom(item, lookup.chat(item.customer_id, item.chat_id),
                              lookup.item(ChatmessageItem, item.customer_id, item.last_messagechat_id))
    if isinstance(item, ChatmessageItem):
        return views.chatmessage(item)
    if isinstance(item, ChatroommessageItem):
        return views.chatroommessage(item, lookup.item(ChatmessageItem, item.customer_id, item.messagechat_id))
    return item


def _read_state(room: ChatroomItem, lookup: Lookup) -> dict:
    """A chatroom's read state as `chatroom_read_state` shows it (its preview's
    chatmessage read once per batch; the chat is not read)."""
    shown = views.chatroom(room, None, lookup.item(ChatmessageItem, room.customer_id, room.last_messagechat_id))
    shown.chatroom_id = shown.id
    return {name: getattr(shown, name) for name in READ_STATE_FIELDS}


def _copy_updated(copy, message: ChatmessageItem) -> ChatEvent:
    """messagechatroom_updated for one live copy (as the relation index names
    it: keys, owner, chatroom) of an edited or reacted-to chatmessage."""
    shown = SimpleNamespace(id=copy.id, customer_id=copy.customer_id, chatroom_id=copy.gsi2sk,
                            messagechat_id=message.id, source=message.source, type=message.type,
                            tm_create=copy.tm_create, tm_update=copy.tm_create, tm_delete=copy.tm_delete,
                            owner_id=copy.owner_id)
    data = render.resource(views.chatroommessage(shown, message), "Chatroommessage")
    return ChatEvent("messagechatroom_updated", message.customer_id, data, [agent_audience(copy.owner_id)])
