"""Warm overhead: requests per second through Chalice's test client for
get, list and send, against the same DynamoDB calls made with plain boto3 on
the same moto backend, in this process, interleaved in rounds so that both
see the same table. Ratio = our time per request / plain time per request.

- get:  GET /v1.0/chats/{id} as a participant    = GetItem (consistent)
- list: GET /v1.0/chatroommessages?chatroom_id=&page_size=20 as the owner
        = Query (21 items of the list index) + BatchGetItem (the page's 20
        chatmessages: a copy shows its chatmessage's text)
- send: POST /v1.0/chatmessages as a participant  = BatchGetItem (the chat's
        status and the caller's member item, consistent) + PutItem

The DynamoDB calls of each are checked to be the same on both sides (by the
meter) before timing. What the sends add is removed after each round, as
moto's Query reads the whole table. The same requests through the Lambda entry point
(app.app(event, context)), without the test client, are timed too.
"""

import os
import sys
import time

from bench import common

ROUNDS = int(os.environ.get("BENCH_WARM_ROUNDS", "8"))
PER_ROUND = int(os.environ.get("BENCH_WARM_PER_ROUND", "40"))
PAGE = 20


def main() -> None:
    common.environment()
    from chalice.test import Client

    import app as chat_app
    from chalicelib.storage.table import LIST_INDEX

    common.quiet_chalice_test_client()
    with common.InProcessMoto() as moto, Client(chat_app.app) as client:
        dynamodb, table = moto.client, moto.table
        customer_id = common.new_id()
        customer = common.Caller(client, customer_id)
        agents = [common.new_id() for _ in range(3)]
        chat = customer.ok("POST", "/v1.0/chats", {"type": "group", "owner_id": agents[0], "participant_ids": agents,
                                                   "name": "warm"})
        caller = common.Caller(client, customer_id, agents[0], name="warm agent", permission=16)
        direct = common.LambdaCaller(chat_app.app, customer_id, agents[0], name="warm agent", permission=16)
        room = next(r for r in caller.ok("GET", "/v1.0/chatrooms")["result"] if r["chat_id"] == chat["id"])
        for i in range(50):
            caller.ok("POST", "/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": f"earlier message {i}"})
        template = caller.ok("POST", "/v1.0/chatmessages", {"chat_id": chat["id"], "text": "hello, warm world"})
        template_key = {"pk": {"S": f"{customer_id}#chatmessage#{template['id']}"}, "sk": {"S": "#"}}
        raw_message = common.moto_backend().get_item(table, template_key).to_json()["Attributes"]

        chat_key = {"pk": {"S": f"{customer_id}#chat#{chat['id']}"}, "sk": {"S": "#"}}
        membership_keys = [{"pk": chat_key["pk"], "sk": {"S": "status"}},
                           {"pk": chat_key["pk"], "sk": {"S": f"member#{agents[0]}"}}]
        list_partition = f"{customer_id}#chatroom#{room['id']}#messages"
        send_body = {"chat_id": chat["id"], "text": "hello, warm world"}

        def plain_get():
            return dynamodb.get_item(TableName=table, Key=chat_key, ConsistentRead=True)["Item"]

        def plain_list():
            items = dynamodb.query(
                TableName=table, IndexName=LIST_INDEX, KeyConditionExpression="gsi1pk = :p",
                ExpressionAttributeValues={":p": {"S": list_partition}}, ScanIndexForward=False, Limit=PAGE + 1,
            )["Items"][:PAGE]
            keys = [{"pk": {"S": f"{customer_id}#chatmessage#{item['messagechat_id']['S']}"}, "sk": {"S": "#"}}
                    for item in items]
            return dynamodb.batch_get_item(RequestItems={table: {"Keys": keys}})["Responses"][table]

        sent: list[str] = []

        def plain_send():
            dynamodb.batch_get_item(RequestItems={table: {"Keys": membership_keys, "ConsistentRead": True}})
            message_id = common.new_id()
            item = dict(raw_message, pk={"S": f"{customer_id}#chatmessage#{message_id}"}, id={"S": message_id})
            dynamodb.put_item(TableName=table, Item=item)
            sent.append(message_id)

        def our_send(c):
            sent.append(c.ok("POST", "/v1.0/chatmessages", send_body)["id"])

        def forget_sent():
            """moto's Query reads every item of the table (DynamoDB reads one
            partition): keep the table as it was, so sends do not slow the lists."""
            backend = common.moto_backend()
            for message_id in sent:
                backend.delete_item(table, {"pk": {"S": f"{customer_id}#chatmessage#{message_id}"}, "sk": {"S": "#"}})
            sent.clear()

        ours = {
            "get": lambda c: c.ok("GET", f"/v1.0/chats/{chat['id']}"),
            "list": lambda c: c.ok("GET", f"/v1.0/chatroommessages?chatroom_id={room['id']}&page_size={PAGE}"),
            "send": our_send,
        }
        plain = {"get": plain_get, "list": plain_list, "send": plain_send}

        calls = {}
        with common.Meter() as meter:
            for name in ours:
                meter.reset()
                ours[name](caller)
                mine = [c.operation for c in meter.reset().calls]
                plain[name]()
                theirs = [c.operation for c in meter.reset().calls]
                assert mine == theirs, f"{name}: ours {mine}, plain {theirs}"
                calls[name] = mine
        forget_sent()

        seconds = {(side, name): 0.0 for side in ("ours", "direct", "plain") for name in ours}
        for _ in range(ROUNDS):
            for name in ours:
                for side, run in (("ours", lambda n=name: ours[n](caller)), ("direct", lambda n=name: ours[n](direct)),
                                  ("plain", plain[name])):
                    started = time.perf_counter()
                    for _ in range(PER_ROUND):
                        run()
                    seconds[(side, name)] += time.perf_counter() - started
            forget_sent()
        items = len(common.moto_backend().get_table(table))

    count = ROUNDS * PER_ROUND
    rows = []
    for name in ours:
        ours_ms = seconds[("ours", name)] / count * 1000
        direct_ms = seconds[("direct", name)] / count * 1000
        plain_ms = seconds[("plain", name)] / count * 1000
        rows.append({
            "operation": name, "dynamodb_calls": calls[name], "requests": count,
            "ours_per_second": 1000 / ours_ms, "direct_per_second": 1000 / direct_ms,
            "plain_per_second": 1000 / plain_ms,
            "ours_ms": ours_ms, "direct_ms": direct_ms, "plain_ms": plain_ms,
            "ratio": ours_ms / plain_ms, "direct_ratio": direct_ms / plain_ms,
        })
    common.write_result({"rows": rows, "rounds": ROUNDS, "per_round": PER_ROUND, "page_size": PAGE,
                         "items_at_end": items})


if __name__ == "__main__":
    sys.exit(main())
