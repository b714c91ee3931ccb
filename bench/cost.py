"""1. DynamoDB cost per operation: every endpoint (and every kind of stream
record the fan-out handles), its requests by operation name and its consumed
read and write capacity, against the floor of its access pattern.

Through Chalice's test client against moto in this process; the stream
records are the ones moto's stream really produced, handed one at a time to
app.on_table_change.
"""

import math
import sys
from dataclasses import dataclass, field

from bench import common


@dataclass
class Floor:
    """The least a correct implementation of this access pattern does."""

    requests: dict[str, int]
    gets: int = 0  # GetItems the pattern needs (strongly consistent: read-your-writes)
    queries: int = 0  # Query pages the pattern needs (index: eventually consistent)
    transactional: bool = False  # several items must change together (else plain writes)
    page_size: int = 100
    why: str = ""

    def rcu(self, cost: common.Cost) -> float:
        gets = [c for c in cost.calls if c.operation == "GetItem"][: self.gets]
        queries = [c for c in cost.calls if c.operation == "Query"][: self.queries]
        return (sum(common.read_units(sum(c.read_sizes), True) for c in gets)
                + sum(common.read_units(sum(c.read_sizes[: self.page_size]), False) for c in queries))

    def wcu(self, cost: common.Cost) -> float:
        factor = 2 if self.transactional else 1
        return sum(c.wcu_table_plain * factor + c.wcu_index for c in cost.calls)


@dataclass
class Scenario:
    rows: list = field(default_factory=list)

    def record(self, name: str, caller: str, cost: common.Cost, floor: Floor, note: str = "") -> None:
        summary = cost.summary()
        summary.update(
            endpoint=name, caller=caller, note=note or floor.why,
            floor_requests=sum(floor.requests.values()), floor_operations=floor.requests,
            floor_rcu=floor.rcu(cost), floor_wcu=floor.wcu(cost),
        )
        self.rows.append(summary)


def main() -> None:
    common.environment()
    from chalice.test import Client

    import app as chat_app

    common.quiet_chalice_test_client()
    scenario = Scenario()
    with common.InProcessMoto() as moto, Client(chat_app.app) as client, common.Meter() as meter:
        tap = common.StreamTap(moto.stream_arn)
        customer_id = common.new_id()
        customer = common.Caller(client, customer_id)
        agents = [common.Caller(client, customer_id, common.new_id(), permission=16) for _ in range(5)]
        a, b, c, d, e = agents

        def api(name, who, caller, method, path, body=None, floor=None, headers=None, note=""):
            meter.reset()
            result = caller.ok(method, path, body, headers)
            scenario.record(name, who, meter.reset(), floor, note)
            stream()
            return result

        stream_seen: set = set()

        def stream():
            """Hand each new stream record to the handler on its own and
            record what records of each kind cost."""
            for record in tap.read():
                meter.reset()
                result = tap.invoke([record])
                cost = meter.reset()
                assert result == {"batchItemFailures": []}, result
                kind, floor = classify(record, cost)
                if kind is not None and kind not in stream_seen:
                    stream_seen.add(kind)
                    scenario.record(kind, "stream handler", cost, floor)

        def classify(record, cost):
            new = record["dynamodb"].get("NewImage") or {}
            old = record["dynamodb"].get("OldImage") or {}
            item_kind = (new or old).get("kind", {}).get("S")
            writes = cost.items_written
            if not cost.requests:
                return "stream: a record with nothing to do (e.g. a chatroom's INSERT)", Floor({})
            if item_kind == "chatmessage" and record["eventName"] == "INSERT":
                return (f"stream: new chatmessage, copied into {writes} chatrooms",
                        Floor({"Query": 1, "BatchWriteItem": math.ceil(writes / 25)}, queries=1,
                              why="floor: 1 Query for the chatrooms + 1 BatchWriteItem per 25 copies (issue 7)"))
            if item_kind == "chatmessage":
                return (f"stream: chatmessage deleted, {writes} copies deleted",
                        Floor({"Query": 1, "BatchWriteItem": math.ceil(writes / 25)}, queries=1,
                              why="1 Query for the copies + 1 write per 25 (a BatchWriteItem, or a "
                                  "TransactWriteItems at 2x WCU to keep the is-live condition)"))
            if item_kind == "chat" and new.get("tm_delete") != old.get("tm_delete"):
                return (f"stream: chat deleted, {writes} chatrooms deleted",
                        Floor({"Query": 1, "BatchWriteItem": math.ceil(writes / 25)}, queries=1,
                              why="1 Query for the chatrooms + 1 write per 25 (a BatchWriteItem, or a "
                                  "TransactWriteItems at 2x WCU to keep the is-live condition)"))
            if item_kind == "chat":
                return (f"stream: chat membership changed, {writes} chatrooms synced",
                        Floor({"Query": 1, "BatchWriteItem": math.ceil(writes / 25)}, queries=1,
                              why="1 Query for the chatrooms + 1 write per 25 (conditional on the version: "
                                  "UpdateItems, or TransactWriteItems at 2x WCU)"))
            return f"stream: {item_kind} {record['eventName']}", Floor({})

        # ---- chats --------------------------------------------------------------
        normal = api("POST /chats (normal, 2 participants)", "customer", customer, "POST", "/v1.0/chats",
                     {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]},
                     Floor({"TransactWriteItems": 1}, transactional=True,
                           why="chat + pair guard + 2 chatrooms in one transaction"))
        group = api("POST /chats (group, 3 participants)", "customer", customer, "POST", "/v1.0/chats",
                    {"type": "group", "owner_id": a.id, "participant_ids": [a.id, b.id, c.id], "name": "team"},
                    Floor({"TransactWriteItems": 1}, transactional=True, why="chat + 3 chatrooms in one transaction"))
        for i in range(8):  # something to list
            customer.ok("POST", "/v1.0/chats", {"type": "group", "owner_id": b.id,
                                                "participant_ids": [b.id, c.id, d.id], "name": f"filler {i}"})
        stream()
        rooms = {agent.id: next(r["id"] for r in agent.ok("GET", "/v1.0/chatrooms")["result"]
                                if r["chat_id"] == group["id"])
                 for agent in (a, b, c)}
        for i in range(10):
            a.ok("POST", "/v1.0/chatroommessages", {"chatroom_id": rooms[a.id], "text": f"message {i} " * 8})
        stream()

        api("GET /chats (a page)", "customer", customer, "GET", "/v1.0/chats",
            floor=Floor({"Query": 1}, queries=1, why="1 Query page of the list index"))
        api("GET /chats/{id}", "customer", customer, "GET", f"/v1.0/chats/{group['id']}",
            floor=Floor({"GetItem": 1}, gets=1, why="1 GetItem"))
        api("GET /chats/{id}", "agent (participant)", a, "GET", f"/v1.0/chats/{group['id']}",
            floor=Floor({"GetItem": 1}, gets=1, why="1 GetItem (participants are in the chat)"))
        api("PUT /chats/{id}", "customer", customer, "PUT", f"/v1.0/chats/{group['id']}", {"name": "renamed"},
            floor=Floor({"UpdateItem": 1},
                        why="1 conditional UpdateItem returning ALL_NEW (live, and owner = caller for agents); "
                            "a read only when the condition fails, to tell 403 from 404"))
        api("PUT /chats/{id}/owner_id", "customer", customer, "PUT", f"/v1.0/chats/{group['id']}/owner_id",
            {"owner_id": b.id},
            floor=Floor({"UpdateItem": 1},
                        why="1 UpdateItem conditioned on contains(participant_ids, new owner), ALL_NEW"))
        api("POST /chats/{id}/participant_ids", "customer", customer, "POST",
            f"/v1.0/chats/{group['id']}/participant_ids", {"participant_id": d.id},
            floor=Floor({"GetItem": 1, "TransactWriteItems": 1}, gets=1, transactional=True,
                        why="read the chat (participants, version), then chat + new chatroom in one transaction"))
        api("DELETE /chats/{id}/participant_ids/{pid}", "customer", customer, "DELETE",
            f"/v1.0/chats/{group['id']}/participant_ids/{d.id}",
            floor=Floor({"GetItem": 1, "Query": 1, "TransactWriteItems": 1}, gets=1, queries=1, transactional=True,
                        why="read the chat, find the participant's chatroom, chat + chatroom in one transaction"))

        # ---- chatrooms -------------------------------------------------------------
        api("GET /chatrooms (own, a page)", "agent", b, "GET", "/v1.0/chatrooms",
            floor=Floor({"Query": 1}, queries=1, why="1 Query page"))
        api("GET /chatrooms?owner_id= (a page)", "customer", customer, "GET", f"/v1.0/chatrooms?owner_id={b.id}",
            floor=Floor({"Query": 1}, queries=1, why="1 Query page"))
        own_room = api("POST /chatrooms (with 1 other agent)", "agent", a, "POST", "/v1.0/chatrooms",
                       {"participant_ids": [e.id], "name": "side"},
                       Floor({"TransactWriteItems": 1}, transactional=True,
                             why="chat + pair guard + 2 chatrooms in one transaction"))
        api("GET /chatrooms/{id}", "agent (owner)", a, "GET", f"/v1.0/chatrooms/{rooms[a.id]}",
            floor=Floor({"GetItem": 1}, gets=1, why="1 GetItem"))
        api("PUT /chatrooms/{id}", "agent (owner)", a, "PUT", f"/v1.0/chatrooms/{own_room['id']}", {"name": "mine"},
            floor=Floor({"UpdateItem": 1}, why="1 UpdateItem conditioned on live and owner = caller, ALL_NEW"))
        api("DELETE /chatrooms/{id}", "agent (owner)", a, "DELETE", f"/v1.0/chatrooms/{own_room['id']}",
            floor=Floor({"UpdateItem": 1}, why="1 UpdateItem conditioned on live and owner = caller, ALL_NEW"))

        # ---- chatmessages ------------------------------------------------------------
        message = api("POST /chatmessages", "agent (participant)", b, "POST", "/v1.0/chatmessages",
                      {"chat_id": group["id"], "text": "hello team"},
                      Floor({"GetItem": 1, "PutItem": 1}, gets=1,
                            why="read the chat (live, participants), put the message"))
        api("POST /chatmessages + Idempotency-Key", "agent (participant)", b, "POST", "/v1.0/chatmessages",
            {"chat_id": group["id"], "text": "hello again"}, headers={"Idempotency-Key": "bench-key-1"},
            floor=Floor({"GetItem": 1, "TransactWriteItems": 1}, gets=1, transactional=True,
                        why="read the chat, then key claim + message in one transaction"))
        api("GET /chatmessages?chat_id= (a page)", "customer", customer, "GET",
            f"/v1.0/chatmessages?chat_id={group['id']}", floor=Floor({"Query": 1}, queries=1, why="1 Query page"))
        api("GET /chatmessages?chat_id= (a page)", "agent (participant)", b, "GET",
            f"/v1.0/chatmessages?chat_id={group['id']}",
            floor=Floor({"GetItem": 1, "Query": 1}, gets=1, queries=1,
                        why="the chat (is the caller a participant?) + 1 Query page"))
        api("GET /chatmessages/{id}", "customer", customer, "GET", f"/v1.0/chatmessages/{message['id']}",
            floor=Floor({"GetItem": 1}, gets=1, why="1 GetItem"))
        api("GET /chatmessages/{id}", "agent (participant)", c, "GET", f"/v1.0/chatmessages/{message['id']}",
            floor=Floor({"GetItem": 2}, gets=2, why="the message + its chat (participants)"))
        api("DELETE /chatmessages/{id}", "agent (sender)", b, "DELETE", f"/v1.0/chatmessages/{message['id']}",
            floor=Floor({"UpdateItem": 1}, why="1 UpdateItem conditioned on live and sender = caller, ALL_NEW"))

        # ---- chatroommessages ----------------------------------------------------------
        copy = api("POST /chatroommessages", "agent (owner)", c, "POST", "/v1.0/chatroommessages",
                   {"chatroom_id": rooms[c.id], "text": "from my chatroom"},
                   Floor({"GetItem": 2, "TransactWriteItems": 1}, gets=2, transactional=True,
                         why="the chatroom + its chat (live), then message + sender's copy in one transaction"))
        api("POST /chatroommessages + Idempotency-Key", "agent (owner)", c, "POST", "/v1.0/chatroommessages",
            {"chatroom_id": rooms[c.id], "text": "again"}, headers={"Idempotency-Key": "bench-key-2"},
            floor=Floor({"GetItem": 2, "TransactWriteItems": 1}, gets=2, transactional=True,
                        why="as above, with the key claim in the same transaction"))
        api("GET /chatroommessages?chatroom_id= (a page)", "agent (owner)", a, "GET",
            f"/v1.0/chatroommessages?chatroom_id={rooms[a.id]}",
            floor=Floor({"Query": 1}, queries=1,
                        why="1 Query page; every copy carries owner_id, so a non-empty page proves ownership "
                            "(the chatroom is read only for an empty page)"))
        api("GET /chatroommessages?chatroom_id= (a page)", "customer", customer, "GET",
            f"/v1.0/chatroommessages?chatroom_id={rooms[a.id]}", floor=Floor({"Query": 1}, queries=1,
                                                                           why="1 Query page"))
        api("GET /chatroommessages/{id}", "agent (owner)", c, "GET", f"/v1.0/chatroommessages/{copy['id']}",
            floor=Floor({"GetItem": 1}, gets=1, why="1 GetItem"))
        api("DELETE /chatroommessages/{id}", "agent (owner)", c, "DELETE", f"/v1.0/chatroommessages/{copy['id']}",
            floor=Floor({"UpdateItem": 1}, why="1 UpdateItem conditioned on live and owner = caller, ALL_NEW"))
        api("GET /openapi.json", "anyone", customer, "GET", "/v1.0/openapi.json",
            floor=Floor({}, why="no DynamoDB"))

        # ---- deleting chats (normal: chat + pair guard) -------------------------------------
        api("DELETE /chats/{id} (normal)", "customer", customer, "DELETE", f"/v1.0/chats/{normal['id']}",
            floor=Floor({"GetItem": 1, "TransactWriteItems": 1}, gets=1, transactional=True,
                        why="read the chat (its pair), then chat + pair guard in one transaction; "
                            "the answer is known without reading again"))
        api("DELETE /chats/{id} (group)", "customer", customer, "DELETE", f"/v1.0/chats/{group['id']}",
            floor=Floor({"UpdateItem": 1}, why="1 UpdateItem conditioned on live, ALL_NEW (no pair guard)"))

    common.write_result({"rows": scenario.rows})


if __name__ == "__main__":
    sys.exit(main())
