"""Chat events, derived from the table's stream records: after the write has
happened, in one place, whichever request or cascade made it."""

from collections.abc import Callable
from dataclasses import dataclass, field

from chalicelib.clock import NOT_DELETED
from chalicelib.schemas import render, resources
from chalicelib.services.connections import CUSTOMER_AUDIENCE, agent_audience
from chalicelib.storage.models import ChatItem, ChatmessageItem, ChatroomItem, ChatroommessageItem, Resource

# item class -> (event prefix as VoIPBIN names it, resource model)
_KINDS = {
    ChatItem: ("chat", resources.Chat),
    ChatroomItem: ("chatroom", resources.Chatroom),
    ChatmessageItem: ("messagechat", resources.Chatmessage),
    ChatroommessageItem: ("messagechatroom", resources.Chatroommessage),
}


@dataclass
class ChatEvent:
    type: str
    customer_id: str
    data: dict
    audiences: list[str] = field(default_factory=list)

    def message(self) -> dict:
        return {"type": self.type, "data": self.data}


def derive(event_name: str, old: Resource | None, new: Resource | None,
           chat_of: Callable[[str, str], ChatItem | None]) -> ChatEvent | None:
    """The event one stream record means, if any, and who should hear it.

    `chat_of(customer_id, chat_id)` is asked for chatmessage events (whose
    record does not name the chat's participants) and chatroom events (a
    chatroom shows its chat's type and participants).
    """
    if new is None or type(new) not in _KINDS:
        return None
    prefix, model = _KINDS[type(new)]
    if event_name == "INSERT":
        action = "created"
    elif old is not None and old.tm_delete == NOT_DELETED and new.deleted:
        action = "deleted"
    elif prefix in ("chat", "chatroom") and not new.deleted:
        action = "updated"
    else:
        return None  # messages change only by being deleted; a dead item's rewrite is no news
    if isinstance(new, ChatroomItem):
        chat = chat_of(new.customer_id, new.chat_id)
        new.type = chat.type if chat else "unknown"
        new.participant_ids = chat.participant_ids if chat else []
    event = ChatEvent(f"{prefix}_{action}", new.customer_id, render.resource(new, model))
    if isinstance(new, ChatItem):
        members = set(new.participant_ids) | set(getattr(old, "participant_ids", None) or [])
        event.audiences = [CUSTOMER_AUDIENCE] + [agent_audience(p) for p in sorted(members)]
    elif isinstance(new, ChatmessageItem):
        chat = chat_of(new.customer_id, new.chat_id)
        members = chat.participant_ids if chat else []
        event.audiences = [CUSTOMER_AUDIENCE] + [agent_audience(p) for p in members]
    else:  # a chatroom or a chatroom's copy: its owner's
        event.audiences = [agent_audience(new.owner_id)]
    return event
