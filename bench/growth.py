"""Cost as data grows: a page of chats, chatrooms and chatroom messages
(and chatmessages), and a get by id, with 1,000 and with 100,000 items in the
table. Requests, items read and read capacity per page must not grow.

The bulk items are written straight into moto's backend (its put_item, what
its BatchWriteItem does per item, with the stream off as nothing here reads
it), not through the API nor HTTP: PynamoDB models serialise them, so
they are the items the service itself writes. A quarter of the items belong
to other customers; the rest fill the very partitions the pages read (the
customer's chats, one agent's chatrooms, one chat's messages, one chatroom's
copies), so the lists grow with the table.
"""

import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from bench import common

SIZES = tuple(int(s) for s in __import__("os").environ.get("BENCH_GROWTH_SIZES", "1000,100000").split(","))


def timestamps(count: int, start: datetime):
    from chalicelib.clock import TIME_FORMAT

    return [(start + timedelta(milliseconds=i)).strftime(TIME_FORMAT) for i in range(count)]


class Cloner:
    """Items like the service writes, cloned from real ones with new ids."""

    def __init__(self, chat, room, message, copy):
        self.templates = {"chat": chat, "room": room, "message": message, "copy": copy}
        # The template's stored form and each string attribute's stored name.
        self.raw = {kind: item.serialize() for kind, item in self.templates.items()}
        self.names = {kind: {name: attribute.attr_name for name, attribute in item.get_attributes().items()}
                      for kind, item in self.templates.items()}

    def _clone(self, kind, **changes):
        item = dict(self.raw[kind])
        names = self.names[kind]
        for name, value in changes.items():
            item[names[name]] = {"S": value}
        return item

    def linked(self, customer, owner, chat_id, room_id, tm) -> list[dict]:
        """A chat, a chatroom of it (owned by `owner`, its preview a copy of
        the new chatmessage), a chatmessage in chat `chat_id` and its copy in
        chatroom `room_id`: the four reference each other as the service's
        own items do, so a page's joins read real items."""
        from chalicelib.storage.models import (
            ChatItem,
            ChatmessageItem,
            ChatroomItem,
            ChatroommessageItem,
            list_sort_key,
        )

        cid, rid, mid, copy_id = (str(uuid.uuid4()) for _ in range(4))
        chat = self._clone("chat", pk=ChatItem.key(customer, cid), id=cid, customer_id=customer, tm_create=tm,
                           tm_update=tm, gsi1pk=ChatItem.list_key(customer), gsi1sk=list_sort_key(tm, cid))
        room = self._clone("room", pk=ChatroomItem.key(customer, rid), id=rid, customer_id=customer, chat_id=cid,
                           owner_id=owner, tm_create=tm, tm_update=tm, tm_read=tm, tm_activity=tm,
                           last_copy_id=copy_id, last_messagechat_id=mid,
                           gsi1pk=ChatroomItem.list_key(customer, owner), gsi1sk=list_sort_key(tm, rid),
                           gsi3pk=ChatroomItem.by_activity_key(customer, owner), gsi3sk=list_sort_key(tm, rid))
        message = self._clone("message", pk=ChatmessageItem.key(customer, mid), id=mid, customer_id=customer,
                              chat_id=chat_id, tm_create=tm, tm_update=tm,
                              gsi1pk=ChatmessageItem.list_key(customer, chat_id), gsi1sk=list_sort_key(tm, mid))
        copy = self._clone("copy", pk=ChatroommessageItem.key(customer, copy_id), id=copy_id, customer_id=customer,
                           chatroom_id=room_id, messagechat_id=mid, tm_create=tm, tm_update=tm,
                           gsi1pk=ChatroommessageItem.list_key(customer, room_id), gsi1sk=list_sort_key(tm, copy_id),
                           gsi2pk=ChatroommessageItem.by_message_key(customer, mid), gsi2sk=room_id)
        return [chat, room, message, copy]


def bulk_put(table, items) -> None:
    """Straight into moto's backend (what its BatchWriteItem does for each
    item, without serialising requests and responses)."""
    backend = common.moto_backend()
    moto_table = backend.get_table(table)
    stream, moto_table.stream_shard = moto_table.stream_shard, None  # nothing reads these records
    try:
        for item in items:
            backend.put_item(table, item)
    finally:
        moto_table.stream_shard = stream


def item_count(table: str) -> int:
    return len(common.moto_backend().get_table(table))


def measure_size(total: int) -> dict:
    from chalice.test import Client

    import app as chat_app
    from chalicelib.storage.models import ChatItem, ChatmessageItem, ChatroomItem, ChatroommessageItem
    from chalicelib.storage.operations import load

    with common.InProcessMoto() as moto, Client(chat_app.app) as client:
        customer_id = common.new_id()
        customer = common.Caller(client, customer_id)
        owner, other = (common.Caller(client, customer_id, common.new_id(), permission=16) for _ in range(2))
        chat = customer.ok("POST", "/v1.0/chats", {"type": "group", "owner_id": owner.id,
                                                   "participant_ids": [owner.id, other.id], "name": "grows"})
        room = next(r for r in owner.ok("GET", "/v1.0/chatrooms")["result"] if r["chat_id"] == chat["id"])
        copy = owner.ok("POST", "/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "a typical message " * 4})
        templates = Cloner(
            load(ChatItem, customer_id, chat["id"], "chat"), load(ChatroomItem, customer_id, room["id"], "chatroom"),
            load(ChatmessageItem, customer_id, copy["messagechat_id"], "chatmessage"),
            load(ChatroommessageItem, customer_id, copy["id"], "chatroommessage"),
        )

        # Fill: 3/16 of the table in each measured partition, the rest other customers'.
        started = time.perf_counter()
        base = item_count(moto.table)
        share = (total - base) * 3 // 16
        noise = (total - base - 4 * share) // 4
        tms = timestamps(share, datetime(2024, 1, 1, tzinfo=UTC))
        quads = [templates.linked(customer_id, owner.id, chat["id"], room["id"], tm) for tm in tms]
        # items[k * share + i]: chats (k = 0), chatrooms (1), chatmessages (2), copies (3)
        items = [quad[k] for k in range(4) for quad in quads]
        others = [common.new_id() for _ in range(50)]
        noise_tms = timestamps(noise, datetime(2023, 1, 1, tzinfo=UTC))
        for i, tm in enumerate(noise_tms):
            other = others[i % len(others)]
            items += templates.linked(other, owner.id, common.new_id(), common.new_id(), tm)
        build_seconds = time.perf_counter() - started
        started = time.perf_counter()
        bulk_put(moto.table, items)
        load_seconds = time.perf_counter() - started
        in_table = item_count(moto.table)

        # A page deep inside each list (a bare timestamp token), with a full page older than it.
        middle = tms[max(101, share // 2)]
        some = items[share // 2]["id"]["S"], items[share + share // 2]["id"]["S"]
        some += items[2 * share + share // 2]["id"]["S"], items[3 * share + share // 2]["id"]["S"]
        cases = [
            ("GET /chats", "customer", customer, "/v1.0/chats"),
            ("GET /chats (a page deep inside)", "customer", customer, f"/v1.0/chats?page_token={middle}"),
            ("GET /chatrooms", "agent (own)", owner, "/v1.0/chatrooms"),
            ("GET /chatrooms?owner_id=", "customer", customer, f"/v1.0/chatrooms?owner_id={owner.id}"),
            ("GET /chatrooms?order=activity", "agent (own)", owner, "/v1.0/chatrooms?order=activity"),
            ("GET /chatmessages?chat_id=", "customer", customer, f"/v1.0/chatmessages?chat_id={chat['id']}"),
            ("GET /chatmessages?chat_id=", "agent (participant)", owner, f"/v1.0/chatmessages?chat_id={chat['id']}"),
            ("GET /chatroommessages?chatroom_id=", "agent (owner)", owner,
             f"/v1.0/chatroommessages?chatroom_id={room['id']}"),
            ("GET /chatroommessages?chatroom_id= (deep)", "agent (owner)", owner,
             f"/v1.0/chatroommessages?chatroom_id={room['id']}&page_token={middle}"),
            ("GET /chats/{id}", "customer", customer, f"/v1.0/chats/{some[0]}"),
            ("GET /chatrooms/{id}", "customer", customer, f"/v1.0/chatrooms/{some[1]}"),
            ("GET /chatmessages/{id}", "customer", customer, f"/v1.0/chatmessages/{some[2]}"),
            ("GET /chatroommessages/{id}", "agent (owner)", owner, f"/v1.0/chatroommessages/{some[3]}"),
        ]
        rows = []
        with common.Meter() as meter:
            for name, who, caller, path in cases:
                meter.reset()
                started = time.perf_counter()
                body = caller.ok("GET", path)
                seconds = time.perf_counter() - started
                cost = meter.reset()
                returned = len(body["result"]) if isinstance(body, dict) and "result" in body else 1
                rows.append({"endpoint": name, "caller": who, "returned": returned, "seconds": seconds,
                             **cost.summary()})
        return {"items": in_table, "partition_size": share, "build_seconds": build_seconds,
                "load_seconds": load_seconds, "load_items_per_second": len(items) / load_seconds, "rows": rows}


def main() -> None:
    common.environment()
    common.quiet_chalice_test_client()
    common.write_result({"sizes": [measure_size(size) for size in SIZES]})


if __name__ == "__main__":
    sys.exit(main())
