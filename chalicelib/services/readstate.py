"""Read state: each chatroom's unread count, read marker, newest activity and
preview, kept exact by the same writes that add or remove its copies.

The invariant: `unread` = the live copies in the chatroom not sent by its
owner and newer than `tm_read`; `mention_count` = those of them whose
chatmessage mentions the owner (moved by the same actions, beside `unread`); `tm_activity`/`last_copy_id` = the newest
live copy (or the chatroom's own tm_create). Every change bumps `revision`.

A copy's write carries its chatroom's update in the same transaction. The
fan-out first assumes the common case (a new message, newer than the marker
and than the newest copy) in a condition; when that does not hold it reads
the chatroom and writes exactly what applies, conditioned on the case it read
(older or newer than the newest copy and the marker). Deletes and mark-read
are conditioned on the revision they read. So replays (the copy exists:
nothing is written), concurrent fan-outs and a mark-read racing them never
lose nor double a count.
"""

from dataclasses import dataclass

from chalicelib.storage import paging
from chalicelib.storage.models import ChatmessageItem, ChatroomItem, ChatroommessageItem, list_sort_key
from chalicelib.storage.operations import attempt, is_live

# Sorts after every "<tm_create>~<id>" with that tm_create: `gsi1sk > after(t)`
# selects the copies strictly newer than t.
AFTER = "~\x7f"


@dataclass(frozen=True)
class Newest:
    """A chatroom's newest live copy, as its preview names it."""

    copy_id: str
    messagechat_id: str
    tm_create: str


@dataclass(frozen=True)
class RoomState:
    """What a chatroom's update was computed from."""

    live: bool
    unread: int
    tm_read: str
    tm_activity: str
    newest: Newest | None
    revision: int | None  # None: written before read state (no revision attribute yet)
    tm_create: str
    mentions: int = 0  # unread copies that mention the owner

    @classmethod
    def of(cls, room: ChatroomItem) -> "RoomState":
        if room.revision is None:
            return _legacy_state(room)
        newest = Newest(room.last_copy_id, room.last_messagechat_id, room.tm_activity) if room.last_copy_id else None
        return cls(not room.deleted, int(room.unread or 0), room.tm_read, room.tm_activity, newest,
                   int(room.revision), room.tm_create, int(room.mention_count or 0))


KEEP = object()  # the preview stays as it is


def from_owner(source: dict, owner_id: str) -> bool:
    """Whether a message's source is the chatroom's owner: their own messages never count as unread."""
    return source.get("type") == "agent" and source.get("target") == owner_id


def is_own(message: ChatmessageItem, owner_id: str) -> bool:
    return message.sender_id == owner_id or from_owner(message.source, owner_id)


def _mention_actions(unread_delta: int, message: ChatmessageItem, owner_id: str) -> list:
    """mention_count moves with unread, for the copies whose message mentions the owner."""
    if unread_delta and message.mentions_agent(owner_id):
        return [ChatroomItem.mention_count.add(unread_delta)]
    return []


def _update(room: ChatroomItem, state: RoomState, unread_delta: int, newest,
            mention_delta: int = 0) -> tuple[list, object]:
    """Actions that move the chatroom from `state` by `unread_delta` (and
    `mention_delta`) and to `newest` (a Newest, None for no copy left, or
    KEEP), conditioned on the revision `state` was read at."""
    actions = [ChatroomItem.revision.add(1)]
    if state.revision is None:  # first change since before read state: write all of it
        actions += [ChatroomItem.tm_read.set(state.tm_read), ChatroomItem.unread.set(state.unread + unread_delta),
                    ChatroomItem.mention_count.set(state.mentions + mention_delta),
                    ChatroomItem.gsi3pk.set(ChatroomItem.by_activity_key(room.customer_id, room.owner_id))]
        if newest is KEEP:
            newest = state.newest
        condition = ChatroomItem.revision.does_not_exist()
    else:
        if unread_delta:
            actions.append(ChatroomItem.unread.add(unread_delta))
        if mention_delta:
            actions.append(ChatroomItem.mention_count.add(mention_delta))
        condition = ChatroomItem.revision == state.revision
    if newest is not KEEP:
        actions += _as_newest(room, newest, state.tm_create)
    return actions, is_live() & condition


def _as_newest(room: ChatroomItem, newest: Newest | None, tm_create: str) -> list:
    tm = newest.tm_create if newest else tm_create
    actions = [ChatroomItem.tm_activity.set(tm), ChatroomItem.gsi3sk.set(list_sort_key(tm, room.id))]
    if newest is None:
        return actions + [ChatroomItem.last_copy_id.remove(), ChatroomItem.last_messagechat_id.remove()]
    return actions + [ChatroomItem.last_copy_id.set(newest.copy_id),
                      ChatroomItem.last_messagechat_id.set(newest.messagechat_id)]


# ---- a copy arrives ------------------------------------------------------------------

def on_copy_added(room: ChatroomItem, copy: ChatroommessageItem, message: ChatmessageItem,
                  state: RoomState | None) -> tuple[list, object]:
    """(actions, condition) for `room` as `copy` of `message` is written.
    `state` None: the common case (the copy is newer than the marker and the
    newest copy), assumed in the condition instead of read first."""
    t, own = message.tm_create, is_own(message, room.owner_id)
    arriving = Newest(copy.id, message.id, t)
    if state is None:
        condition = is_live() & ChatroomItem.revision.exists() & (ChatroomItem.tm_activity <= t)
        if not own:
            condition &= ChatroomItem.tm_read < t
        actions = [ChatroomItem.revision.add(1), *([] if own else [ChatroomItem.unread.add(1)]),
                   *_mention_actions(0 if own else 1, message, room.owner_id), *_as_newest(room, arriving, t)]
        return actions, condition
    unread_delta = 1 if not own and t > state.tm_read else 0
    newest = t >= state.tm_activity
    if state.revision is None:
        return _update(room, state, unread_delta, arriving if newest else KEEP,
                       unread_delta if message.mentions_agent(room.owner_id) else 0)
    # Conditioned on the case read (newest or not, counted or not), not on the
    # revision: other fan-outs into this chatroom (stream batches run
    # concurrently) only move tm_activity forward and add to unread, which
    # keeps the case, so a copy is not refused for each copy of another message
    # written meanwhile. A delete or a mark-read that changes the case makes it
    # refused, to be read again.
    condition = is_live() & ChatroomItem.revision.exists()
    condition &= (ChatroomItem.tm_activity <= t) if newest else (ChatroomItem.tm_activity > t)
    if not own:
        condition &= (ChatroomItem.tm_read < t) if unread_delta else (ChatroomItem.tm_read >= t)
    actions = [ChatroomItem.revision.add(1), *([ChatroomItem.unread.add(1)] if unread_delta else []),
               *_mention_actions(unread_delta, message, room.owner_id),
               *(_as_newest(room, arriving, t) if newest else [])]
    return actions, condition


# ---- a copy goes -----------------------------------------------------------------------

def on_copy_deleted(room: ChatroomItem, copy, message: ChatmessageItem, state: RoomState,
                    replacement: Newest | None) -> tuple[list, object]:
    """(actions, condition) for `room` as its live `copy` of `message` is
    deleted; `replacement` is the newest other live copy, used when `copy`
    was the newest."""
    unread_delta = -1 if not is_own(message, room.owner_id) and copy.tm_create > state.tm_read else 0
    was_newest = state.newest is not None and state.newest.copy_id == copy.id
    mention_delta = unread_delta if message.mentions_agent(room.owner_id) else 0
    return _update(room, state, unread_delta, replacement if was_newest else KEEP, mention_delta)


def newest_other_copy(room: ChatroomItem, excluded: str) -> Newest | None:
    """The newest live copy of the chatroom other than `excluded`: one Query.
    The caller checks it is live in its own transaction (the index lags)."""
    found = attempt(lambda: list(ChatroommessageItem.list_index.query(
        ChatroommessageItem.list_key(room.customer_id, room.id), scan_index_forward=False, limit=3, page_size=3)),
        f"reading chatroom {room.id}")
    for copy in found:
        if copy.id != excluded:
            return Newest(copy.id, copy.messagechat_id, copy.tm_create)
    return None


def _legacy_state(room: ChatroomItem) -> RoomState:
    """Read state of a chatroom written before it existed: counted once, from
    its copies (the marker at its tm_create, as the contract starts it)."""
    copies = attempt(lambda: list(ChatroommessageItem.list_index.query(
        ChatroommessageItem.list_key(room.customer_id, room.id), scan_index_forward=False)),
        f"counting chatroom {room.id}")
    unread = sum(1 for copy in copies if not from_owner(copy.source, room.owner_id))
    mentions = sum(1 for copy in copies if copy.mentioned and not from_owner(copy.source, room.owner_id))
    newest = Newest(copies[0].id, copies[0].messagechat_id, copies[0].tm_create) if copies else None
    return RoomState(not room.deleted, unread, room.tm_create, newest.tm_create if newest else room.tm_create,
                     newest, None, room.tm_create, mentions)


def page_by_activity(customer_id: str, owner_id: str, page: paging.PageRequest) -> paging.Page:
    return paging.list_page(ChatroomItem.by_activity_key(customer_id, owner_id), page,
                            index=ChatroomItem.order_index)


