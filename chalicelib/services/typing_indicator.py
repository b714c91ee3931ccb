"""Typing indicators: a websocket frame `{"type": "typing", "chat_id": ...}`
from a participant is pushed as `{"type": "typing", "data": {chat_id,
agent_id, name}}` to the chat's other participants' connections. Nothing of
the typing itself is stored, and nothing goes through the table's stream.

At most one push per sender and chat every 2 s: a frame inside the window
this container already knows of is dropped without a request; otherwise one
conditional UpdateItem of a small throttle item (TypingThrottleItem, with a
TTL) decides across containers. That item is written by an update, without
a `kind`: the stream handler drops its records before reading them (no
fan-out, no event). On AWS the stream mapping could also filter them out
(a filter on `pk` not containing `#typing#`); they cost one record each.

Chats of more than 100 participants get no typing indicators (an error frame
says so): their pushes would cost more than the hint is worth.
"""

from __future__ import annotations

import threading
import time

from pynamodb.exceptions import DoesNotExist

from chalicelib.clock import is_uuid
from chalicelib.errors import BadRequest, Forbidden, NotFound
from chalicelib.services import connections, presence
from chalicelib.storage.models import META, ChatItem, TypingThrottleItem, registering
from chalicelib.storage.operations import ConditionFailed, attempt, update

WINDOW_MS = 2000
THROTTLE_TTL_SECONDS = 60
PARTICIPANTS_MAX = 100
_KNOWN_MAX = 10_000  # entries of the in-memory window before the stale ones are swept

_known: dict[tuple[str, str, str], float] = {}  # (customer, agent, chat) -> until (ms, wall clock)
_known_lock = threading.Lock()


def _inside_known_window(key: tuple[str, str, str], moment_ms: float) -> bool:
    with _known_lock:
        return _known.get(key, 0) > moment_ms


def _remember(key: tuple[str, str, str], until_ms: float) -> None:
    with _known_lock:
        if len(_known) >= _KNOWN_MAX:
            moment = time.time() * 1000
            for stale in [k for k, until in _known.items() if until <= moment]:
                del _known[stale]
        _known[key] = until_ms


def _claim(customer_id: str, agent_id: str, chat_id: str, moment_ms: int) -> bool:
    """The window is this frame's (one conditional UpdateItem), or someone's already."""
    item = TypingThrottleItem(TypingThrottleItem.key(customer_id, agent_id), chat_id)
    until = moment_ms + WINDOW_MS
    try:
        update(item, [TypingThrottleItem.until_ms.set(until),
                      TypingThrottleItem.expires_at.set(moment_ms // 1000 + THROTTLE_TTL_SECONDS),
                      *registering(TypingThrottleItem, customer_id, item.pk)],
               TypingThrottleItem.pk.does_not_exist() | (TypingThrottleItem.until_ms <= moment_ms),
               "throttling typing")
    except ConditionFailed:
        return False
    return True


def on_typing(sender: presence.Sender, chat_id, endpoint: str | None) -> None:
    """Push the typing hint to the other participants' connections; a frame
    inside the 2 s window is dropped silently. Refusals raise (an error frame)."""
    if sender.agent_id is None:
        raise Forbidden("typing: needs an agent token")
    if not isinstance(chat_id, str) or not is_uuid(chat_id):
        raise BadRequest("chat_id: must be a UUID")
    chat_id = chat_id.lower()
    key = (sender.customer_id, sender.agent_id, chat_id)
    moment_ms = int(time.time() * 1000)
    if _inside_known_window(key, moment_ms):
        return
    try:
        chat = attempt(lambda: ChatItem.get(ChatItem.key(sender.customer_id, chat_id), META), "reading the chat")
    except DoesNotExist:
        raise NotFound(f"chat_id: chat {chat_id} not found") from None
    if chat.deleted:
        raise NotFound(f"chat_id: chat {chat_id} is deleted")
    if sender.agent_id not in chat.participant_ids:
        raise Forbidden(f"chat_id: only participants of chat {chat_id} may send typing")
    if len(chat.participant_ids) > PARTICIPANTS_MAX:
        raise BadRequest(f"chat_id: typing is for chats of at most {PARTICIPANTS_MAX} participants")
    if not _claim(sender.customer_id, sender.agent_id, chat_id, moment_ms):
        return  # inside a window another container claimed (its end is not known here)
    _remember(key, moment_ms + WINDOW_MS)
    others = [(sender.customer_id, connections.agent_audience(p)) for p in chat.participant_ids
              if p != sender.agent_id]
    listening = connections.connections_of(others)
    targets = sorted({c for audience in others for c in listening.get(audience, [])})
    message = {"type": "typing", "data": {"chat_id": chat_id, "agent_id": sender.agent_id, "name": sender.name}}
    presence.push_each(endpoint, targets, message)
