"""Index the members of chats written before member items existed, move the
reactions of chatmessages written before reactions were items, and file
every partition written before the customer's registry existed in it.

    python -m devtools.migrate            # the table CHAT_TABLE_NAME, in CHAT_REGION (or AWS_REGION)

Both happen on first use anyway (chalicelib/services/membership.py,
chalicelib/services/reactions.py; until then an old message's reactions are
shown from its map as they are); this does all of them at once, for instance
right after deploying this version. It scans the table (an operator's tool:
the service itself never scans), writes each old chat's status and member
items and marks it indexed, and turns each old message's reaction map into
reaction items and the message's summary, then registers every item that
starts a partition of a customer (storage/models.registered: what exports and
erasures read) and gives deleted copies back their message's copies relation
(a delete used to remove it). Idempotent: run it as often as you like.
"""

import argparse
import sys

from chalicelib import config, storage
from chalicelib.services import membership, reactions
from chalicelib.storage import models
from chalicelib.storage.models import ChatItem, ChatmessageItem, ChatroommessageItem, TableItem, registering

# The kinds whose items start a partition of a customer (the ones the service registers as it writes them).
REGISTERED_KINDS = (
    models.ChatItem, models.ChatroomItem, models.ChatmessageItem, models.FileItem, models.PairGuardItem,
    models.CustomerSettingsItem, models.ExportItem, models.PresenceItem, models.PresenceWatcherItem,
    models.AudienceItem, models.TypingThrottleItem, models.SendWindowItem, models.IdempotencyItem,
)


def unindexed_chats():
    return ChatItem.scan(ChatItem.members_indexed.does_not_exist())  # PynamoDB adds kind = chat


def messages_with_reaction_maps():
    """Messages with a map and no summary (the previous version wrote an empty map on every message)."""
    found = ChatmessageItem.scan(ChatmessageItem.reaction_counts.does_not_exist() & ChatmessageItem.reactions.exists())
    return (message for message in found if message.reactions.as_dict())


def unregistered():
    """Items that start a partition and are not in their customer's registry
    (run after the chats are indexed: an old chatroom's relation-index keys
    were its chat's, which an indexed chat no longer reads)."""
    condition = TableItem.kind.is_in(*REGISTERED_KINDS) & (
        TableItem.gsi2pk.does_not_exist() | ~TableItem.gsi2pk.contains("#partitions#"))
    # a live chatroom is found by its chat's member item (models.registered says why it is not filed)
    return (item for item in TableItem.scan(condition)
            if not (isinstance(item, models.ChatroomItem) and not item.deleted))


def deleted_copies_without_their_relation():
    return ChatroommessageItem.scan(ChatroommessageItem.gsi2pk.does_not_exist())


def register(item: TableItem) -> None:
    customer_id = item.pk.split("#", 1)[0]  # every registered kind's key leads with its customer id
    item.update(actions=registering(type(item), customer_id, item.pk))


def relate(copy: ChatroommessageItem) -> None:
    copy.update(actions=[ChatroommessageItem.gsi2pk.set(ChatroommessageItem.by_message_key(
        copy.customer_id, copy.messagechat_id)), ChatroommessageItem.gsi2sk.set(copy.chatroom_id)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.migrate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    settings = config.load()
    storage.configure(settings)
    done = 0
    for chat in unindexed_chats():
        membership.ensure_indexed(chat)
        done += 1
    print(f"{done} chats indexed in table {settings.table_name}")
    moved = 0
    for message in messages_with_reaction_maps():
        reactions.ensure_migrated(message)
        moved += 1
    print(f"{moved} chatmessages' reactions moved into reaction items")
    registered = 0
    for item in unregistered():
        register(item)
        registered += 1
    print(f"{registered} partitions filed in their customer's registry")
    related = 0
    for copy in deleted_copies_without_their_relation():
        relate(copy)
        related += 1
    print(f"{related} deleted chatroommessages given back their chatmessage's copies relation")
    return 0


if __name__ == "__main__":
    sys.exit(main())
