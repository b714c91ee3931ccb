"""Index the members of chats written before member items existed.

    python -m devtools.migrate            # the table CHAT_TABLE_NAME, in CHAT_REGION (or AWS_REGION)

Chats are indexed on first use anyway (chalicelib/services/membership.py); this
does all of them at once, for instance right after deploying this version. It
scans the table once (an operator's tool: the service itself never scans),
writes each old chat's status and member items, and marks it indexed.
Idempotent: run it as often as you like.
"""

import argparse
import sys

from chalicelib import config, storage
from chalicelib.services import membership
from chalicelib.storage.models import ChatItem


def unindexed_chats():
    return ChatItem.scan(ChatItem.members_indexed.does_not_exist())  # PynamoDB adds kind = chat


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
