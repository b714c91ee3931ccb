"""Fan-out: messages into chats of 2, 10, 100 and 1,000 participants
through the real stream path (moto's stream records, read with the
dynamodbstreams API, handed to app.on_table_change). DynamoDB requests per
message against the floor (1 Query of the members + 1 transaction per 25
chatrooms, each copy with its chatroom's read state) and copies written per
second in this process.

The first message of each chat is metered (requests and capacity); the others
are timed with nothing patched. For scale, the same number of items written
with plain boto3 BatchWriteItem calls on the same moto.
"""

import math
import sys
import time

from bench import common

SIZES = ((2, 40), (10, 20), (100, 6), (1000, 3))  # (participants, messages)
PAGE_BYTES = 1024 * 1024  # what one Query reads at most


def related_items(table: str, partition: str) -> list[dict]:
    """Whole items of one relation-index partition, read in moto's backend
    (no metered, slow, or projected query)."""
    items = common.moto_backend().get_table(table).all_items()
    return [item.to_json()["Attributes"] for item in items
            if item.attrs.get("gsi2pk") and item.attrs["gsi2pk"].value == partition]


def chatrooms_of(table: str, customer_id: str, chat_id: str) -> list[dict]:
    """The chat's chatrooms as whole items, found from its member items (in
    the chat's partition), read in moto's backend (not metered)."""
    backend = common.moto_backend()
    pk = f"{customer_id}#chat#{chat_id}"
    members = [item.to_json()["Attributes"] for item in backend.get_table(table).all_items()
               if item.attrs["pk"].value == pk and item.attrs["sk"].value.startswith("member#")]
    rooms = [backend.get_item(table, {"pk": {"S": f"{customer_id}#chatroom#{m['chatroom_id']['S']}"},
                                      "sk": {"S": "#"}}) for m in members]
    return [room.to_json()["Attributes"] for room in rooms if room is not None]


def measure(participants: int, messages: int) -> dict:
    from chalice.test import Client

    import app as chat_app
    from chalicelib.storage.models import ChatroommessageItem

    with common.InProcessMoto() as moto, Client(chat_app.app) as client:
        customer_id = common.new_id()
        customer = common.Caller(client, customer_id)
        agents = [common.new_id() for _ in range(participants)]
        started = time.perf_counter()
        chat = customer.ok("POST", "/v1.0/chats", {
            "type": "normal" if participants == 2 else "group", "owner_id": agents[0], "participant_ids": agents,
        })
        create_seconds = time.perf_counter() - started
        # The chat's own records are not part of this measurement (the API
        # wrote every chatroom already): read the stream from here on.
        tap = common.StreamTap(moto.stream_arn, start="LATEST")
        chatrooms = chatrooms_of(moto.table, customer_id, chat["id"])
        rooms = len(chatrooms)
        room_bytes = max(common.item_size(room) for room in chatrooms)

        sent = [customer.ok("POST", "/v1.0/chatmessages", {"chat_id": chat["id"], "text": f"message {i} " * 10})["id"]
                for i in range(messages)]
        inserts = {r["dynamodb"]["NewImage"]["id"]["S"]: r for r in tap.read()
                   if r["eventName"] == "INSERT" and r["dynamodb"]["NewImage"]["kind"]["S"] == "chatmessage"}
        assert sorted(inserts) == sorted(sent), "every message has its INSERT record"

        with common.Meter() as meter:
            assert tap.invoke([inserts[sent[0]]]) == {"batchItemFailures": []}
            cost = meter.reset()
        seconds = 0.0
        for message_id in sent[1:]:
            started = time.perf_counter()
            result = tap.invoke([inserts[message_id]])
            seconds += time.perf_counter() - started
            assert result == {"batchItemFailures": []}, result
        copies = [len(related_items(moto.table, ChatroommessageItem.by_message_key(customer_id, m))) for m in sent]
        assert copies == [rooms] * messages, f"copies per message {copies}, chatrooms {rooms}"
        timed_copies = rooms * (messages - 1)

        # The same items once more, written by plain boto3 (25 to a BatchWriteItem).
        items = related_items(moto.table, ChatroommessageItem.by_message_key(customer_id, sent[-1]))
        started = time.perf_counter()
        for start in range(0, len(items), 25):
            moto.client.batch_write_item(
                RequestItems={moto.table: [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]})
        plain_seconds = time.perf_counter() - started

    floor_requests = 1 + math.ceil(rooms / 25)
    # moto pages a Query by the size of the whole items before it projects
    # them; DynamoDB pages an index query by the index entries it reads (1 MB).
    queries = [c for c in cost.calls if c.operation == "Query"]
    query_bytes = sum(sum(c.read_sizes) for c in queries)
    pages = max(1, math.ceil(query_bytes / PAGE_BYTES))
    return {
        "query_pages_moto": len(queries), "query_bytes": query_bytes, "query_pages_dynamodb": pages,
        "requests_dynamodb": cost.requests - len(queries) + pages,
        "rcu_dynamodb": cost.rcu - sum(c.rcu for c in queries) + common.read_units(
            query_bytes, all(c.consistent for c in queries)),
        "participants": participants, "chatrooms": rooms, "messages": messages, "chatroom_bytes": room_bytes,
        "create_seconds": create_seconds,
        "per_message": cost.summary(),
        "floor_requests": floor_requests,
        # a copy and its chatroom's count change together: the floor is transactional too
        "floor_wcu": sum(c.wcu_table + c.wcu_index for c in cost.calls),
        "plain_wcu": sum(c.wcu_table_plain + c.wcu_index for c in cost.calls),
        "bytes_written": cost.bytes_written, "largest_transaction": max(
            (c.actions for c in cost.calls if c.operation == "TransactWriteItems"), default=0),
        "copies_timed": timed_copies, "seconds": seconds,
        "copies_per_second": timed_copies / seconds if seconds else float("nan"),
        "plain_items_per_second": len(items) / plain_seconds,
    }


def main() -> None:
    common.environment()
    common.quiet_chalice_test_client()
    common.write_result({"sizes": [measure(n, m) for n, m in SIZES]})


if __name__ == "__main__":
    sys.exit(main())
