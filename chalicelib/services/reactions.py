"""Reactions to chatmessages. Each is its own item (ReactionItem: one per
message, owner and emoji, in the message's partition), and the message keeps
a bounded summary of them (counts per emoji, each emoji's newest owners, how
many different emoji) moved in the same transaction. So a reaction is O(1)
writes (one put or delete, one update), a message's answer stays small
whatever the number of reactions, and the full list pages from an index.

The summary's writes are conditioned on the emoji's count as it was read:
two reactions with the same emoji serialize (the later one reads again), and
the 50-emoji limit is a condition of the write, not a read before it.

Messages written before reactions were items keep theirs in a `reactions`
map: shown as they are (views.py) until their first reaction write, which
first moves them into items (`ensure_migrated`; devtools/migrate.py does all
at once)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

from chalicelib.auth import Principal
from chalicelib.clock import now
from chalicelib.errors import BadRequest, Conflict, NotFound
from chalicelib.schemas.limits import REACTION_EMOJI_MAX, REACTION_OWNERS_SHOWN
from chalicelib.services import membership, views
from chalicelib.storage import paging
from chalicelib.storage.models import ChatmessageItem, ReactionItem, TableItem
from chalicelib.storage.operations import (
    CONDITION_FAILED,
    ONE_PARTITION_ITEMS_PER_SECOND,
    ConditionFailed,
    is_live,
    load,
    put_all,
    transact,
    update,
)

if TYPE_CHECKING:  # request bodies are pydantic models, loaded only where a body is parsed
    from chalicelib.schemas.bodies import ReactionCreate

# Writes with the same emoji serialize on its count: a few more rounds than
# other changes before answering "changing right now".
CHANGE_ATTEMPTS = 10
Counts = ChatmessageItem.reaction_counts
Newest = ChatmessageItem.reaction_newest
Different = ChatmessageItem.reaction_emoji


def _owner(principal: Principal) -> tuple[str, str]:
    return ("agent", principal.agent_id) if principal.is_agent else ("customer", principal.customer_id)


def _load(principal: Principal, message_id: str) -> ChatmessageItem:
    return load(ChatmessageItem, principal.customer_id, message_id, "chatmessage")


def _live(message: ChatmessageItem) -> ChatmessageItem:
    if message.deleted:
        raise NotFound(f"chatmessage {message.id} is deleted")
    return message


def _reactable(principal: Principal, message_id: str) -> ChatmessageItem:
    """A live message of a live chat the caller may read (a deleted chat: 404,
    as a send): one GetItem and one BatchGetItem."""
    message = _live(_load(principal, message_id))
    membership.require_live_member(principal, message.chat_id, "chat")
    return ensure_migrated(message)


def _summary(message: ChatmessageItem) -> tuple[dict, dict, int]:
    counts = views.plain(message.reaction_counts)
    return counts, views.plain(message.reaction_newest), int(message.reaction_emoji or len(counts))


def _over_the_limit(emoji: str) -> Conflict:
    return Conflict(f"emoji: a chatmessage holds at most {REACTION_EMOJI_MAX} different emoji; "
                    f"react with one already there, or take one back ({emoji} would be one more)")


# ---- the summary's changes -------------------------------------------------------------

@dataclass
class Change:
    """One update of a message's summary: its actions and condition, and the
    summary it leaves (what the answer shows, without reading it back)."""

    actions: list
    condition: object
    counts: dict
    newest: dict
    different: int

    def applied_to(self, message: ChatmessageItem) -> ChatmessageItem:
        message.reaction_counts, message.reaction_newest = self.counts, self.newest
        message.reaction_emoji = self.different
        return message


def _owner_entry(reaction: ReactionItem) -> dict:
    return {"owner_type": reaction.owner_type, "owner_id": reaction.owner_id, "tm_create": reaction.tm_create}


def _adding(message: ChatmessageItem, reaction: ReactionItem) -> Change:
    counts, newest, different = _summary(message)
    emoji = reaction.emoji
    count = int(counts.get(emoji, 0))
    owners = [_owner_entry(reaction)] + list(newest.get(emoji, []))[:REACTION_OWNERS_SHOWN - 1]
    after = ({**counts, emoji: count + 1}, {**newest, emoji: owners})
    if message.reaction_counts is None:  # its first reaction: the summary is made with it
        return Change([Counts.set({emoji: 1}), Newest.set({emoji: owners}), Different.set(1)],
                      Counts.does_not_exist(), *after, 1)
    if count == 0:
        if different >= REACTION_EMOJI_MAX:
            raise _over_the_limit(emoji)
        return Change([Counts[emoji].set(1), Newest[emoji].set(owners), Different.add(1)],
                      Counts[emoji].does_not_exist() & (Different < REACTION_EMOJI_MAX), *after, different + 1)
    return Change([Counts[emoji].set(count + 1), Newest[emoji].set(owners)], Counts[emoji] == count, *after,
                  different)


def _removing(message: ChatmessageItem, emoji: str, owner: tuple[str, str]) -> Change | None:
    """None when nobody reacts with the emoji."""
    counts, newest, different = _summary(message)
    count = int(counts.get(emoji, 0))
    if count == 0:
        return None
    condition = Counts[emoji] == count
    if count == 1:
        counts.pop(emoji)
        newest.pop(emoji, None)
        return Change([Counts[emoji].remove(), Newest[emoji].remove(), Different.add(-1)], condition, counts,
                      newest, different - 1)
    owners = _newest_without(message, emoji, list(newest.get(emoji, [])), owner)
    return Change([Counts[emoji].set(count - 1), Newest[emoji].set(owners)], condition,
                  {**counts, emoji: count - 1}, {**newest, emoji: owners}, different)


def _newest_without(message: ChatmessageItem, emoji: str, owners: list[dict], gone: tuple[str, str]) -> list[dict]:
    """The emoji's newest owners once `gone` left them: refilled from its
    reactions (one Query of the order index) when `gone` was among them."""
    remaining = [o for o in owners if (o["owner_type"], o["owner_id"]) != gone]
    if len(remaining) == len(owners):
        return remaining
    found = paging.list_page(ReactionItem.by_emoji_key(message.customer_id, message.id, emoji),
                             paging.PageRequest(REACTION_OWNERS_SHOWN + 1), index=TableItem.order_index).items
    shown = {(o["owner_type"], o["owner_id"]) for o in remaining} | {gone}
    remaining += [_owner_entry(r) for r in found if (r.owner_type, r.owner_id) not in shown]
    return sorted(remaining, key=lambda o: o["tm_create"], reverse=True)[:REACTION_OWNERS_SHOWN]


# ---- adding and taking back --------------------------------------------------------------

def add_reaction(principal: Principal, message_id: str, body: ReactionCreate):
    """One per (caller, emoji): a repeat is 200 and changes nothing. One
    transaction (the reaction's conditional put, the summary's update)."""
    message = _reactable(principal, message_id)
    owner_type, owner_id = _owner(principal)
    for _ in range(CHANGE_ATTEMPTS):
        reaction = ReactionItem.new(principal.customer_id, message_id, body.emoji, owner_type, owner_id, now())
        change = _adding(message, reaction)

        def write(tx, reaction=reaction, change=change) -> None:
            tx.save(reaction, condition=ReactionItem.sk.does_not_exist())
            tx.update(ChatmessageItem.keyed(principal.customer_id, message_id), change.actions,
                      condition=is_live() & change.condition)

        try:
            transact(write, "adding the reaction")
        except ConditionFailed as failed:
            message = _live(_load(principal, message_id))
            if failed.reasons[:1] == [CONDITION_FAILED]:
                return views.chatmessage(message)  # already there: nothing changed
            continue  # the summary changed meanwhile: read again
        return views.chatmessage(change.applied_to(message))
    raise Conflict(f"chatmessage {message_id} is changing right now; retry")


def remove_reaction(principal: Principal, message_id: str, emoji: str):
    """Takes the caller's own reaction back (its item deleted, the summary
    moved, in one transaction); none there: 200, unchanged."""
    emoji = _emoji(unquote(emoji))
    message = _reactable(principal, message_id)
    owner = _owner(principal)
    for _ in range(CHANGE_ATTEMPTS):
        change = _removing(message, emoji, owner)
        if change is None:
            return views.chatmessage(message)

        def write(tx, change=change) -> None:
            tx.delete(ReactionItem.keyed(principal.customer_id, message_id, emoji, *owner),
                      condition=ReactionItem.sk.exists())
            tx.update(ChatmessageItem.keyed(principal.customer_id, message_id), change.actions,
                      condition=is_live() & change.condition)

        try:
            transact(write, "removing the reaction")
        except ConditionFailed as failed:
            message = _live(_load(principal, message_id))
            if failed.reasons[:1] == [CONDITION_FAILED]:
                return views.chatmessage(message)  # not the caller's: nothing changed
            continue  # the summary changed meanwhile: read again
        return views.chatmessage(change.applied_to(message))
    raise Conflict(f"chatmessage {message_id} is changing right now; retry")


# ---- listing ----------------------------------------------------------------------------

def list_reactions(principal: Principal, message_id: str, page: paging.PageRequest) -> paging.Page:
    """Every reaction, newest first, to anyone who may read the message: one
    GetItem (and a plain agent's membership one), one Query a page."""
    message = _load(principal, message_id)
    membership.require_member(principal, message.chat_id, "chat")
    if message.reaction_counts is None and views.plain(message.reactions):
        return _legacy_page(message, page)
    return paging.list_page(ReactionItem.list_key(principal.customer_id, message_id), page)


def _legacy_page(message: ChatmessageItem, page: paging.PageRequest) -> paging.Page:
    """The same page of a message not migrated yet, from its map."""
    items = [ReactionItem.new(message.customer_id, message.id, r["emoji"], r["owner_type"], r["owner_id"],
                              r["tm_create"]) for r in views.plain(message.reactions).values()]
    items.sort(key=lambda item: item.gsi1sk, reverse=True)
    if page.token:
        items = [item for item in items if item.gsi1sk < page.token]
    keys = [item.gsi1sk for item in items[:page.size]]
    return paging.Page(items[:page.size], keys[-1] if len(items) > page.size else "", keys)


# ---- messages written before reactions were items -------------------------------------

def ensure_migrated(message: ChatmessageItem) -> ChatmessageItem:
    """Move an old message's `reactions` map into reaction items and the
    summary (once: later calls find the summary). The items are put first
    (idempotent: derived ids), then the summary replaces the map in one
    conditional update. The summary is smaller than the map it replaces, so
    it fits wherever the map did."""
    legacy = list(views.plain(message.reactions).values())
    if message.reaction_counts is not None or not legacy:
        return message
    items = [ReactionItem.new(message.customer_id, message.id, r["emoji"], r["owner_type"], r["owner_id"],
                              r["tm_create"]) for r in legacy]
    put_all(ReactionItem, items, f"migrating the reactions of chatmessage {message.id}",
            paced=(0, ONE_PARTITION_ITEMS_PER_SECOND))  # all in the message's partition
    counts, newest = views.reaction_summary(legacy)
    keyed = ChatmessageItem.keyed(message.customer_id, message.id)
    try:
        return update(keyed, [Counts.set(counts), Newest.set(newest), Different.set(len(counts)),
                              ChatmessageItem.reactions.remove()],
                      Counts.does_not_exist(), f"migrating the reactions of chatmessage {message.id}")
    except ConditionFailed:  # migrated meanwhile
        return load(ChatmessageItem, message.customer_id, message.id, "chatmessage")


def _emoji(value: str) -> str:
    from pydantic import TypeAdapter, ValidationError

    from chalicelib.schemas.common import Emoji

    try:
        return TypeAdapter(Emoji).validate_python(value)
    except ValidationError as error:
        raise BadRequest(f"emoji: {error.errors()[0]['msg'].removeprefix('Value error, ')}") from None

