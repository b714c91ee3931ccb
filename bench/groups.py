"""Large groups: for chats of 2, 10, 100 and 1,000 participants, the
DynamoDB requests, read and write capacity and bytes written of create, send,
add, remove, delete, mark-read, the activity-ordered list, edit and reaction,
and of the stream work and pushed events that follow each, against their floors.

Through Chalice's test client against moto in this process (as §1). Every
participant and the customer's feed hold a websocket connection, so the
stream handler derives and "pushes" every event (to a list: API Gateway is
not called) and finds the connections in DynamoDB, metered. The records each
operation produced are handed to app.on_table_change in Lambda's batches of
100, except a send's chatmessage INSERT, which is handed alone first so that
its fan-out and its one event (messagechat_created, to all N participants)
are measured apart.

Read state is checked, not only counted: after the fan-out, a recipient's
chatroom shows 1 unread, the message's tm_create as tm_activity and its copy
as the preview; the sender's own chatroom shows 0 unread.
"""

import math
import os
import sys
import time

from bench import common

SIZES = tuple(int(s) for s in os.environ.get("BENCH_GROUP_SIZES", "2,10,100,1000").split(","))
LAMBDA_BATCH = 100  # the stream function's batch size (app.py)
TRANSACTION_ROOMS = 48  # chatrooms (with their members) in the create transaction (services/chats.py)


def floors(n: int) -> dict:
    """Requests each operation's floor allows at N participants (the tests'
    budgets and the issues' floors), and a lower one where we know one."""
    audiences = n + 1  # the participants and the customer's feed
    return {
        "create": {"requests": 1 + math.ceil(2 * max(0, n - TRANSACTION_ROOMS) / 25),
                   "why": "1 transaction (the chat, its status, 48 chatrooms and members) + the rest 25 items to a "
                          "BatchWriteItem: O(N/25)"},
        "create_work": {"requests": 1 if n > TRANSACTION_ROOMS else 0,
                        "why": "a chat written in more than one request is re-checked: 1 Query of its members"},
        "send": {"requests": 2, "why": "1 BatchGetItem (status + the sender's member item) + 1 PutItem"},
        "fanout": {"requests": 1 + math.ceil(n / 25), "lower": 1 + math.ceil(n / 50),
                   "why": "1 Query of the members + 1 transaction per 25 chatrooms, each copy with its chatroom's "
                          "read state; lower: 50 to a transaction (copies hold no text: 100 actions fit)"},
        "push": {"requests": 1 + math.ceil(n / 100), "ours_formula": 1 + math.ceil(audiences / 100),
                 "why": "the chat (who hears it) + the connections of N recipients, 1 BatchGetItem per 100 "
                        "audiences; the customer's feed is one audience more"},
        "add": {"requests": 2, "why": "the chat (1 GetItem) + 1 transaction: chat, newcomer's chatroom and member"},
        "remove": {"requests": 2, "why": "chat + member item (1 BatchGetItem) + 1 transaction: chat, member item, "
                                         "the leaver's chatroom"},
        "delete": {"requests": 2, "why": "the chat (1 GetItem) + 1 transaction: chat, status (pair guard)"},
        "delete_work": {"requests": 1 + math.ceil(n / 25), "lower": 1 + math.ceil(n / 100),
                        "why": "1 Query of the members + 1 transaction per 25 chatrooms; lower: a chatroom's delete is "
                               "one action, 100 fit a transaction"},
        "read_copy": {"requests": 4, "why": "1 GetItem + 1 Query + 1 UpdateItem (the issue's 3) + the BatchGetItem "
                                            "every chatroom answer makes"},
        "read_newest": {"requests": 3, "why": "1 GetItem + 1 UpdateItem + the answer's BatchGetItem"},
        "list_activity": {"requests": 2, "why": "1 Query page of the order index + the answer's BatchGetItem"},
        "edit": {"requests": 2, "why": "the message (1 GetItem) + 1 transaction: the message and its earlier version"},
        "react": {"requests": 3, "why": "the message and the caller's member item (2 GetItem) + 1 UpdateItem"},
    }


def measure(n: int) -> dict:
    from chalice.test import Client

    import app as chat_app

    started_all = time.perf_counter()
    with common.InProcessMoto() as moto, Client(chat_app.app) as client, common.Meter() as meter, \
            common.Pushes() as pushes:
        tap = common.StreamTap(moto.stream_arn)
        customer_id = common.new_id()
        customer = common.Caller(client, customer_id)
        ids = [common.new_id() for _ in range(n)]
        owner = common.Caller(client, customer_id, ids[0], permission=16)  # reads and reacts
        sender = common.Caller(client, customer_id, ids[-1], permission=16)
        started = time.perf_counter()
        common.connect_all(customer_id, ids)
        tap.drain()
        connect_seconds = time.perf_counter() - started
        meter.reset()
        pushes.take()
        ops: dict[str, dict] = {}

        def api(name, caller, method, path, body=None):
            meter.reset()
            started = time.perf_counter()
            result = caller.ok(method, path, body)
            seconds = time.perf_counter() - started
            ops[name] = {"api": meter.reset().summary(), "api_seconds": seconds}
            return result

        def handle(records: list[dict]) -> dict:
            """Hand the records to the handler in Lambda's batches, then the
            records their handling produced (a cascade's), until the stream is quiet."""
            meter.reset()
            pushes.take()
            started = time.perf_counter()
            handled = 0
            with common.stream_phases(meter):
                while records:
                    for start in range(0, len(records), LAMBDA_BATCH):
                        result = tap.invoke(records[start:start + LAMBDA_BATCH])
                        assert result == {"batchItemFailures": []}, result
                    handled += len(records)
                    records = tap.read(limit=1000)
            seconds = time.perf_counter() - started
            cost = meter.reset()
            sent = pushes.take()
            return {"work": cost.only("work").summary(), "events": cost.only("events").summary(),
                    "pushes": len(sent), "records": handled, "seconds": seconds}

        def follow(name):
            ops[name]["stream"] = handle(tap.read(limit=1000))

        # ---- create -----------------------------------------------------------------------
        chat = api("create", customer, "POST", "/v1.0/chats",
                   {"type": "group", "owner_id": ids[0], "participant_ids": ids})
        follow("create")
        rooms = {}
        for agent in (owner, sender):
            rooms[agent.id] = next(r["id"] for r in agent.ok("GET", "/v1.0/chatrooms")["result"]
                                   if r["chat_id"] == chat["id"])
        meter.reset()

        # ---- send: the fan-out and the one event to N, then the copies' and chatrooms' records ----------
        message = api("send", sender, "POST", "/v1.0/chatmessages", {"chat_id": chat["id"], "text": "to all " * 8})
        records = tap.read(limit=1000)
        [insert] = [r for r in records if r["eventName"] == "INSERT"
                    and r["dynamodb"]["NewImage"].get("id") == {"S": message["id"]}]
        meter.reset()
        pushes.take()
        started = time.perf_counter()
        with common.stream_phases(meter):
            assert tap.invoke([insert]) == {"batchItemFailures": []}
        fanout_seconds = time.perf_counter() - started
        cost = meter.reset()
        ops["send"]["fanout"] = {**cost.only("work").summary(), "seconds": fanout_seconds}
        ops["push"] = {"events": cost.only("events").summary(), "pushes": len(pushes.take()),
                       "event": "messagechat_created"}
        # the send's other records, and those the fan-out produced: the copies' INSERTs, the chatrooms' MODIFYs
        ops["send"]["stream"] = handle([r for r in records if r is not insert] + tap.read(limit=1000))

        # read state, as the owner's and the sender's chatrooms show it
        seen = owner.ok("GET", f"/v1.0/chatrooms/{rooms[owner.id]}")
        own = sender.ok("GET", f"/v1.0/chatrooms/{rooms[sender.id]}")
        copies = owner.ok("GET", f"/v1.0/chatroommessages?chatroom_id={rooms[owner.id]}")["result"]
        meter.reset()
        fan = ops["send"]["fanout"]["kinds_written"]
        checks = {
            "recipient_unread_1": seen["unread_count"] == 1,
            "recipient_activity_is_the_message": seen["tm_activity"] == message["tm_create"],
            "recipient_preview_is_the_copy": (seen["last_chatroommessage"] or {}).get("id") == copies[0]["id"],
            "sender_unread_0": own["unread_count"] == 0,
            "copies_written": fan.get("chatroommessage", 0) == n,
            "chatrooms_updated_in_the_same_transactions": fan.get("chatroom", 0) == n,
        }
        ops["send"]["read_state_checks"] = checks

        # ---- read state: mark-read (to a copy; to the newest) and the inbox by activity -------------
        api("read_copy", owner, "POST", f"/v1.0/chatrooms/{rooms[owner.id]}/read",
            {"chatroommessage_id": copies[0]["id"]})
        follow("read_copy")
        api("read_newest", sender, "POST", f"/v1.0/chatrooms/{rooms[sender.id]}/read", {})
        follow("read_newest")
        api("list_activity", owner, "GET", "/v1.0/chatrooms?order=activity")

        # ---- edit and reaction: O(1) writes; every copy's owner hears it ---------------------------
        api("edit", sender, "PUT", f"/v1.0/chatmessages/{message['id']}", {"text": "to all, edited"})
        follow("edit")
        api("react", owner, "POST", f"/v1.0/chatmessages/{message['id']}/reactions", {"emoji": "👍"})
        follow("react")

        # ---- membership: add and remove one participant ---------------------------------------------
        changing = common.new_id() if n == 2 else ids[1]
        add = ("add", customer, "POST", f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": changing})
        remove = ("remove", customer, "DELETE", f"/v1.0/chats/{chat['id']}/participant_ids/{changing}")
        for name, *call in ((add, remove) if n == 2 else (remove, add)):
            api(name, *call)
            follow(name)

        # ---- delete: the chat, then its chatrooms in the stream ------------------------------------------
        api("delete", customer, "DELETE", f"/v1.0/chats/{chat['id']}")
        follow("delete")
        chat_bytes = common.item_size(common.moto_backend().get_item(
            moto.table, {"pk": {"S": f"{customer_id}#chat#{chat['id']}"}, "sk": {"S": "#"}}).to_json()["Attributes"])

    return {"participants": n, "ops": ops, "floors": floors(n), "chat_item_bytes": chat_bytes,
            "connect_seconds": connect_seconds, "seconds": time.perf_counter() - started_all}


def main() -> None:
    common.environment()
    common.quiet_chalice_test_client()
    common.write_result({"sizes": [measure(n) for n in SIZES]})


if __name__ == "__main__":
    sys.exit(main())
