"""Index the members of chats written before member items existed, and move
the reactions of chatmessages written before reactions were items.

    python -m devtools.migrate            # the table CHAT_TABLE_NAME, in CHAT_REGION (or AWS_REGION)

Both happen on first use anyway (chalicelib/services/membership.py,
chalicelib/services/reactions.py; until then an old message's reactions are
shown from its map as they are); this does all of them at once, for instance
right after deploying this version. It scans the table (an operator's tool:
the service itself never scans), writes each old chat's status and member
items and marks it indexed, and turns each old message's reaction map into
reaction items and the message's summary. Idempotent: run it as often as you
like.
"""

import argparse
import sys

from chalicelib import config, storage
from chalicelib.services import membership, reactions
from chalicelib.storage.models import ChatItem, ChatmessageItem


def unindexed_chats():
    return ChatItem.scan(ChatItem.members_indexed.does_not_exist())  # PynamoDB adds kind = chat


def messages_with_reaction_maps():
    """Messages with a map and no summary (the previous version wrote an empty map on every message)."""
    found = ChatmessageItem.scan(ChatmessageItem.reaction_counts.does_not_exist() & ChatmessageItem.reactions.exists())
    return (message for message in found if message.reactions.as_dict())


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
