"""DynamoDB cost per operation: every endpoint (every route and method the
app serves, /service_agents included) and every kind of stream record, its
requests by operation name, its read and write capacity and bytes written,
against the floor of its access pattern.

Through Chalice's test client against moto in this process. Every agent and
the customer's feed hold a websocket connection, so each stream record is
handled as on AWS with pushes on: its records (the ones moto's stream really
produced) are handed one at a time to app.on_table_change, and its requests
are split into "work" (fan-out, cascades) and "events" (what the events need
read, and the connections of their audiences). Pushes go to a list, not to
API Gateway.

The floors agree with the budgets tests/test_request_budget.py asserts: where
a row names a budget, the floor is checked against it here (and the run says
so when they disagree). Where a lower floor exists than the one we keep, the
row names it and says why ours is above it.
"""

import math
import sys
from dataclasses import dataclass

from bench import common

BATCH_GET = 100  # keys per BatchGetItem
BATCH_WRITE = 25  # items per BatchWriteItem
FANOUT_CHUNK = 25  # copies (with their chatrooms) per transaction, as services/fanout.py writes them
TRANSACTION_ACTIONS = 100  # DynamoDB's limit per TransactWriteItems
BIG_GROUP = 60  # more than the 48 chatrooms that fit the create transaction


@dataclass
class Floor:
    """The least a correct implementation of this access pattern (with this
    storage design and contract) does."""

    requests: dict[str, int]
    why: str
    transactional: bool = False  # several items must change together (else plain writes)
    budget: str | None = None  # the key of tests/test_request_budget.py's OPERATIONS that asserts it
    lower: dict[str, int] | None = None  # a lower floor, reachable with another design or setting
    lower_why: str = ""  # and why ours is above it


def floor_capacity(floor: Floor, cost: common.Cost) -> tuple[float, float]:
    """(RCU, WCU) of the floor: the reads it keeps (the first requests of each
    operation it names, as made), and every write, transactional (2x) only if
    the floor needs a transaction."""
    remaining = dict(floor.requests)
    rcu = 0.0
    wcu = 0.0
    for call in cost.calls:
        if call.operation in ("GetItem", "Query", "BatchGetItem", "TransactGetItems", "Scan"):
            if remaining.get(call.operation, 0) > 0:
                remaining[call.operation] -= 1
                rcu += call.rcu
        else:  # a transactional floor keeps our transactions (2x); else every write at the plain rate
            wcu += (call.wcu_table if floor.transactional else call.wcu_table_plain) + call.wcu_index
    return rcu, wcu


def test_budgets() -> tuple[dict, str]:
    """The request budgets tests/test_request_budget.py asserts ({key: {op: n}}), or why they could not be read."""
    try:
        from tests.test_request_budget import OPERATIONS
    except Exception as error:  # the tests are another engineer's: never fail the bench on them
        return {}, f"{type(error).__name__}: {error}"
    return {key: dict(spec[2]) for key, spec in OPERATIONS.items()}, ""


def row(label: str, caller: str, cost: common.Cost, floor: Floor, budgets: dict, method: str = "", route: str = "",
        **extra) -> dict:
    rcu, wcu = floor_capacity(floor, cost)
    budget = budgets.get(floor.budget) if floor.budget else None
    return {
        "endpoint": label, "caller": caller, "method": method, "route": route, **cost.summary(),
        "floor_operations": floor.requests, "floor_requests": sum(floor.requests.values()),
        "floor_rcu": rcu, "floor_wcu": wcu, "note": floor.why,
        "budget_key": floor.budget, "budget_operations": budget,
        "budget_found": floor.budget is None or budget is not None,
        "lower_operations": floor.lower, "lower_requests": sum(floor.lower.values()) if floor.lower else None,
        "lower_why": floor.lower_why, **extra,
    }


# ---- stream records: their kind, and their floors -----------------------------------------------

def image_kind(image: dict) -> str:
    return (image or {}).get("kind", {}).get("S", "")


def participants_of(table: str, customer_id: str, chat_id: str) -> int:
    """How many participants a chat has now (read in moto's backend: not metered)."""
    item = common.moto_backend().get_item(table, {"pk": {"S": f"{customer_id}#chat#{chat_id}"}, "sk": {"S": "#"}})
    return len(item.to_json()["Attributes"]["participant_ids"]["L"]) if item is not None else 0


def connections_floor(audiences: int) -> dict:
    return {"BatchGetItem": math.ceil(audiences / BATCH_GET)}


def classify(record: dict, work: common.Cost, table: str, context: dict):
    """(a key naming the kind of record, its label, the floor of its work, the
    floor of its events). The key groups records of one kind: the first of each is reported."""
    name = record["eventName"]
    new, old = record["dynamodb"].get("NewImage") or {}, record["dynamodb"].get("OldImage") or {}
    kind = image_kind(new or old)
    deleted = bool(new) and bool(old) and new.get("tm_delete") != old.get("tm_delete")
    written = work.kinds_written
    nothing = Floor({}, "")
    if name == "REMOVE":
        return "nothing", f"a record with nothing to do ({kind} REMOVE, and INSERT or MODIFY of a status, member, " \
            "pair guard, earlier version, idempotency key or connection item)", nothing, nothing
    if kind == "chat":
        members = len({p["S"] for image in (new, old) for p in image.get("participant_ids", {}).get("L", [])})
        events = Floor(connections_floor(members + 1),
                       f"the chat is in the record: only the connections of its {members} participants and the "
                       "customer's feed, 1 BatchGetItem per 100 audiences")
        if name == "INSERT" and members > 48:
            missing = max(written.get("chatroom", 0), written.get("chat-member", 0))
            if missing:
                work_floor = Floor({"Query": 1, "BatchGetItem": math.ceil(missing / BATCH_GET),
                                    "BatchWriteItem": math.ceil(work.items_written / BATCH_WRITE)},
                                   "the large-chat completion: 1 Query of the members, 1 BatchGetItem per 100 "
                                   "missing chatrooms (one its owner deleted stays deleted), the missing chatrooms "
                                   "and members 25 to a BatchWriteItem")
                return ("chat-insert-repair", f"chat created, {members} participants, {missing} chatrooms missing "
                        "(the API stopped after its transaction): the large-chat completion", work_floor, events)
            return ("chat-insert-large", f"chat created, {members} participants (> 48: the large-chat re-check finds "
                    "nothing missing)",
                    Floor({"Query": 1}, "1 Query of the members: a chat written in more than one request is "
                          "re-checked (the API wrote every chatroom; nothing to add)"), events)
        if name == "INSERT":
            return "chat-insert", f"chat created, {members} participants", nothing, events
        if deleted:
            rooms = written.get("chatroom", 0)
            return ("chat-deleted", f"chat deleted, {rooms} chatrooms deleted",
                    Floor({"Query": 1, "TransactWriteItems": math.ceil(rooms / FANOUT_CHUNK)},
                          "1 Query of the members (their chatrooms), then the chatrooms' soft deletes, conditioned on "
                          "live (a chatroom its owner deleted keeps its tm_delete): 25 to a transaction",
                          transactional=True,
                          lower={"Query": 1, "TransactWriteItems": math.ceil(rooms / TRANSACTION_ACTIONS)},
                          lower_why="a chatroom's delete is one action: 100 fit a transaction, but every cascade "
                                    "writes 25 per transaction (fanout.ITEMS_PER_TRANSACTION)"), events)
        return "chat-modify", f"chat changed (name, owner or members), {members} participants", nothing, events
    if kind == "chatroom":
        preview = bool(new.get("last_messagechat_id"))
        events = Floor({"GetItem": 2 if preview else 1, **connections_floor(1)},
                       "the chatroom's event shows its chat (type, participants)" + (
                           " and its preview's chatmessage" if preview else "") +
                       ", then its owner's connections",
                       lower={"BatchGetItem": 2} if preview else None,
                       lower_why="the chat and the preview's chatmessage are both named by the record: one "
                                 "BatchGetItem would read them; events.Lookup reads each with a GetItem (in a batch "
                                 "of records it reads each once)" if preview else "")
        if name == "INSERT":
            return "chatroom-insert", "chatroom created", nothing, events
        if deleted:
            return "chatroom-deleted", "chatroom deleted", nothing, events
        if preview:
            return ("chatroom-modify-preview", "chatroom changed, with a preview (its read state moved: a copy came "
                    "or went, or it was read)", nothing, events)
        return "chatroom-modify", "chatroom changed, no preview yet (renamed)", nothing, events
    if kind == "chatmessage":
        chat_id = new.get("chat_id", {}).get("S", "")
        members = participants_of(table, new.get("customer_id", {}).get("S", ""), chat_id)
        audiences = Floor({"GetItem": 1, **connections_floor(members + 1)},
                          f"the chat (who hears it: {members} participants and the customer's feed), then their "
                          "connections, 1 BatchGetItem per 100 audiences")
        if name == "INSERT":
            copies = written.get("chatroommessage", 0)
            rooms = written.get("chatroom", 0)
            label = "a reply" if new.get("parent_id") else "chatmessage"
            return ("chatmessage-insert" + ("-reply" if new.get("parent_id") else ""),
                    f"{label} sent, copied into {copies} chatrooms ({rooms} chatrooms' read state in the same "
                    "transactions)",
                    Floor({"Query": 1, "TransactWriteItems": math.ceil(rooms / FANOUT_CHUNK)},
                          "1 Query of the chat's members (their chatrooms), then 1 transaction per 25 chatrooms: each "
                          "copy (put if absent) with its chatroom's unread_count, tm_activity and preview (one "
                          "conditional update): a copy and its count change together, so transactional",
                          transactional=True,
                          lower={"Query": 1, "TransactWriteItems": math.ceil(rooms / (TRANSACTION_ACTIONS // 2))},
                          lower_why="copies no longer hold text: 50 copies with their 50 chatrooms' updates (100 "
                                    "actions, well under 4 MB) fit a transaction; the issue's floor and "
                                    "fanout.ITEMS_PER_TRANSACTION keep 25"), audiences)
        if deleted:
            copies = written.get("chatroommessage", 0)
            moved = context.get("preview_moves", False)
            return ("chatmessage-deleted", f"chatmessage deleted, {copies} copies deleted"
                    + (" (it was the newest: previews move)" if moved else ""),
                    Floor({"Query": 2 if moved else 1, "BatchGetItem": math.ceil(max(copies, 1) / BATCH_GET),
                           "TransactWriteItems": math.ceil(copies / FANOUT_CHUNK)},
                          "1 Query of the copies (relation index), their chatrooms' read state (1 BatchGetItem per "
                          "100), the chat's previous message when a preview moves (1 Query), then per 25 copies one "
                          "transaction: the copy, its chatroom's count and preview, and a check that the new "
                          "preview's copy is live", transactional=True), audiences)
        if context.get("shown_changed"):
            return ("chatmessage-edited", "chatmessage edited or reacted to: every copy's owner hears it", nothing,
                    Floor({"GetItem": 1, "Query": 1, **connections_floor(members + 1)},
                          "the chat (who hears it), 1 Query of the copies (messagechatroom_updated to each owner; "
                          "nothing is written), then the connections, 1 BatchGetItem per 100 audiences"))
        return "chatmessage-modify", "chatmessage changed (a reply counted)", nothing, audiences
    if kind == "chatroommessage":
        events = Floor({"GetItem": 1, **connections_floor(1)},
                       "the copy shows its chatmessage's text (1 GetItem), then its owner's connections")
        if name == "INSERT":
            return "copy-insert", "copy (chatroommessage) created", nothing, events
        if deleted:
            return "copy-deleted", "copy (chatroommessage) deleted", nothing, events
        return "copy-modify", "copy changed", nothing, events
    return "nothing", f"a record with nothing to do ({kind} {name}, and any REMOVE, or INSERT or MODIFY of a " \
        "status, member, pair guard, earlier version, idempotency key or connection item)", nothing, nothing


def main() -> None:
    common.environment()
    from chalice.test import Client

    import app as chat_app

    common.quiet_chalice_test_client()
    budgets, budgets_error = test_budgets()
    rows: list[dict] = []
    stream_rows: list[dict] = []
    seen: set[str] = set()
    with common.InProcessMoto() as moto, Client(chat_app.app) as client, common.Meter() as meter, \
            common.Pushes() as pushes:
        tap = common.StreamTap(moto.stream_arn)
        customer_id = common.new_id()
        customer = common.Caller(client, customer_id)
        agents = [common.Caller(client, customer_id, common.new_id(), permission=16) for _ in range(7)]
        a, b, c, d, e, f, _ = agents
        admin = common.Caller(client, customer_id, common.new_id(), permission=32)
        common.connect_all(customer_id, [x.id for x in agents] + [admin.id])
        context: dict = {}

        def stream():
            """Hand each new stream record to the handler alone; report the first of each kind."""
            for record in tap.read():
                meter.reset()
                pushes.take()
                with common.stream_phases(meter):
                    result = tap.invoke([record])
                cost = meter.reset()
                sent = pushes.take()
                assert result == {"batchItemFailures": []}, result
                work, events = cost.only("work"), cost.only("events")
                key, label, work_floor, events_floor = classify(record, work, moto.table, context)
                if key in seen:
                    continue
                seen.add(key)
                stream_rows.append({
                    "kind": key, "record": label,
                    "work": row(label, "stream handler", work, work_floor, budgets),
                    "events": row(label, "stream handler", events, events_floor, budgets),
                    "pushes": len(sent), "event_types": sorted({t for _, t in sent}),
                })
            context.clear()

        def api(label, who, caller, method, path, body=None, floor=None, headers=None, then_stream=True, **ctx):
            meter.reset()
            result = caller.ok(method, path, body, headers)
            cost = meter.reset()
            rows.append(row(label, who, cost, floor, budgets, method, common.route_of(chat_app.app, path)))
            context.update(ctx)
            if then_stream:
                stream()
            return result

        def setup(method, caller, path, body=None):
            """Unmetered preparation (its records handled as one batch, not reported)."""
            result = caller.ok(method, path, body)
            meter.reset()
            return result

        def drain():
            tap.drain()
            meter.reset()
            pushes.take()

        joined = ("every chatroom answer shows its chat's type and participant_ids (stored once, in the chat) and "
                  "its preview's text: 1 BatchGetItem of the distinct chats and chatmessages of the answer (per 100)")
        joined_lower = ("a chatroom that carried its chat's participants and its preview would answer alone, but "
                        "then every membership change rewrote N chatrooms (O(N²) bytes to build a group) and every "
                        "copy rewrote its chatroom's preview text: the join is the price of O(1) membership writes")

        # ---- chats -------------------------------------------------------------------------
        normal = api("POST /chats (normal, 2 participants)", "customer", customer, "POST", "/v1.0/chats",
                     {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]},
                     Floor({"TransactWriteItems": 1}, "chat + status + pair guard + 2 chatrooms + 2 member items in "
                           "one transaction (the pair guard makes a second live 1:1 chat impossible)",
                           transactional=True))
        group = api("POST /chats (group, 3 participants)", "customer", customer, "POST", "/v1.0/chats",
                    {"type": "group", "owner_id": a.id, "participant_ids": [a.id, b.id, c.id], "name": "team"},
                    Floor({"TransactWriteItems": 1}, "chat + status + 3 chatrooms + 3 member items in one "
                          "transaction", transactional=True, budget="POST /chats"))
        big_ids = [a.id] + [common.new_id() for _ in range(BIG_GROUP - 1)]
        big = api(f"POST /chats (group, {BIG_GROUP} participants)", "customer", customer, "POST", "/v1.0/chats",
                  {"type": "group", "owner_id": a.id, "participant_ids": big_ids},
                  Floor({"TransactWriteItems": 1, "BatchWriteItem": math.ceil(2 * (BIG_GROUP - 48) / BATCH_WRITE)},
                        f"the chat, its status and 48 chatrooms with their members in one transaction (100 actions at "
                        f"most: the chat never shows without them), the other {2 * (BIG_GROUP - 48)} items 25 to a "
                        "BatchWriteItem (re-checked by the stream)", transactional=True))
        # the large-chat completion, as after an API that stopped right after its transaction
        meter.reset()
        repaired = customer.ok("POST", "/v1.0/chats", {"type": "group", "owner_id": a.id,
                                                       "participant_ids": [a.id] + big_ids[1:]})
        meter.reset()
        backend = common.moto_backend()
        chat_pk = f"{customer_id}#chat#{repaired['id']}"
        members = [item.to_json()["Attributes"] for item in backend.get_table(moto.table).all_items()
                   if item.attrs["pk"].value == chat_pk and item.attrs["sk"].value.startswith("member#")]
        for member in members[-12:]:
            backend.delete_item(moto.table, {"pk": member["pk"], "sk": member["sk"]})
            backend.delete_item(moto.table, {"pk": {"S": f"{customer_id}#chatroom#{member['chatroom_id']['S']}"},
                                             "sk": {"S": "#"}})
        stream()
        for i in range(8):  # something to list
            setup("POST", customer, "/v1.0/chats", {"type": "group", "owner_id": b.id,
                                                    "participant_ids": [b.id, c.id, d.id], "name": f"filler {i}"})
        drain()
        rooms = {agent.id: next(r["id"] for r in agent.ok("GET", "/v1.0/chatrooms")["result"]
                                if r["chat_id"] == group["id"]) for agent in (a, b, c)}
        copies_of_a = [setup("POST", a, "/v1.0/chatroommessages",
                             {"chatroom_id": rooms[a.id], "text": f"message {i} " * 8}) for i in range(10)]
        drain()

        api("GET /chats (a page)", "customer", customer, "GET", "/v1.0/chats",
            floor=Floor({"Query": 1}, "1 Query page of the list index", budget="GET /chats (a page)"))
        api("GET /chats/{id}", "customer", customer, "GET", f"/v1.0/chats/{group['id']}",
            floor=Floor({"GetItem": 1}, "1 GetItem", budget="GET /chats/{id} (admin)"))
        api("GET /chats/{id}", "agent (participant)", a, "GET", f"/v1.0/chats/{group['id']}",
            floor=Floor({"GetItem": 1}, "1 GetItem (the participants are in the chat)",
                        budget="GET /chats/{id} (participant)"))
        update_floor = ("1 UpdateItem conditioned on live (and owner = caller for plain agents), ALL_NEW; the chat "
                        "is read only when the condition fails, to tell 403 from 404")
        api("PUT /chats/{id}", "customer", customer, "PUT", f"/v1.0/chats/{group['id']}", {"name": "renamed"},
            floor=Floor({"UpdateItem": 1}, update_floor, budget="PUT /chats/{id}"))
        api("PUT /chats/{id}", "agent (owner)", a, "PUT", f"/v1.0/chats/{group['id']}", {"detail": "ours"},
            floor=Floor({"UpdateItem": 1}, update_floor, budget="PUT /chats/{id}"))
        owner_floor = "1 UpdateItem conditioned on live and contains(participant_ids, new owner), ALL_NEW"
        api("PUT /chats/{id}/owner_id", "customer", customer, "PUT", f"/v1.0/chats/{group['id']}/owner_id",
            {"owner_id": b.id}, floor=Floor({"UpdateItem": 1}, owner_floor, budget="PUT /chats/{id}/owner_id"))
        api("PUT /chats/{id}/room_owner_id", "agent (owner)", b, "PUT", f"/v1.0/chats/{group['id']}/room_owner_id",
            {"room_owner_id": a.id}, floor=Floor({"UpdateItem": 1}, owner_floor + " (VoIPBIN's name, same service)",
                                                 budget="PUT /chats/{id}/owner_id"))
        api("POST /chats/{id}/participant_ids", "customer", customer, "POST",
            f"/v1.0/chats/{group['id']}/participant_ids", {"participant_id": d.id},
            floor=Floor({"GetItem": 1, "TransactWriteItems": 1},
                        "read the chat (its list, version and type), then the chat, the newcomer's chatroom and "
                        "member item in one transaction conditioned on the version read; no other chatroom is written",
                        transactional=True, budget="POST /chats/{id}/participant_ids",
                        lower={"TransactWriteItems": 1},
                        lower_why="list_append conditioned on NOT contains and the list's size would need no read, "
                                  "but the newcomer's chatroom id derives from the chat's version (a re-added "
                                  "participant gets a new chatroom) and a normal chat's pair guard goes: the read "
                                  "names both"))
        api("DELETE /chats/{id}/participant_ids/{pid}", "customer", customer, "DELETE",
            f"/v1.0/chats/{group['id']}/participant_ids/{d.id}",
            floor=Floor({"BatchGetItem": 1, "TransactWriteItems": 1},
                        "the chat and the leaver's member item (their chatroom) in one BatchGetItem, then the chat, "
                        "the member item and that chatroom in one transaction", transactional=True,
                        budget="DELETE /chats/{id}/participant_ids/{pid}"))

        # ---- chatrooms -------------------------------------------------------------------------
        api("GET /chatrooms (own, a page)", "agent", b, "GET", "/v1.0/chatrooms",
            floor=Floor({"Query": 1, "BatchGetItem": 1}, "1 Query page; " + joined, budget="GET /chatrooms (a page)",
                        lower={"Query": 1}, lower_why=joined_lower))
        api("GET /chatrooms?owner_id= (a page)", "customer", customer, "GET", f"/v1.0/chatrooms?owner_id={b.id}",
            floor=Floor({"Query": 1, "BatchGetItem": 1}, "1 Query page; " + joined, budget="GET /chatrooms (a page)",
                        lower={"Query": 1}, lower_why=joined_lower))
        api("GET /chatrooms?order=activity (a page)", "agent", b, "GET", "/v1.0/chatrooms?order=activity",
            floor=Floor({"Query": 1, "BatchGetItem": 1}, "1 Query page of the order index (tm_activity~id); " + joined,
                        budget="GET /chatrooms?order=activity (a page)", lower={"Query": 1}, lower_why=joined_lower))
        own_room = api("POST /chatrooms (with 1 other agent)", "agent", a, "POST", "/v1.0/chatrooms",
                       {"participant_ids": [e.id], "name": "side"},
                       Floor({"TransactWriteItems": 1}, "chat + status + pair guard + 2 chatrooms + 2 members in one "
                             "transaction; the answer is the caller's chatroom, known without reading",
                             transactional=True, budget="POST /chatrooms"))
        api("GET /chatrooms/{id}", "agent (owner)", b, "GET", f"/v1.0/chatrooms/{rooms[b.id]}",
            floor=Floor({"GetItem": 1, "BatchGetItem": 1}, "1 GetItem; " + joined, budget="GET /chatrooms/{id}",
                        lower={"GetItem": 1}, lower_why=joined_lower))
        api("PUT /chatrooms/{id}", "agent (owner)", a, "PUT", f"/v1.0/chatrooms/{own_room['id']}", {"name": "mine"},
            floor=Floor({"UpdateItem": 1, "BatchGetItem": 1}, "1 UpdateItem conditioned on live and owner = caller, "
                        "ALL_NEW; " + joined, budget="PUT /chatrooms/{id}", lower={"UpdateItem": 1},
                        lower_why=joined_lower))
        b_copies = [x["id"] for x in b.ok("GET", f"/v1.0/chatroommessages?chatroom_id={rooms[b.id]}")["result"]]
        meter.reset()
        read_why = ("the chatroom (marker, revision), 1 Query of the copies newer than the old marker (to count what "
                    "stays unread after the named copy), 1 UpdateItem conditioned on the revision read (a racing "
                    "fan-out is never lost): the issue's 3; then " + joined)
        api("POST /chatrooms/{id}/read (to a copy)", "agent (owner)", b, "POST", f"/v1.0/chatrooms/{rooms[b.id]}/read",
            {"chatroommessage_id": b_copies[4]},
            floor=Floor({"GetItem": 1, "Query": 1, "UpdateItem": 1, "BatchGetItem": 1}, read_why,
                        budget="POST /chatrooms/{id}/read (to a copy)",
                        lower={"GetItem": 1, "Query": 1, "UpdateItem": 1}, lower_why=joined_lower))
        api("POST /chatrooms/{id}/read (to the newest)", "agent (owner)", b, "POST",
            f"/v1.0/chatrooms/{rooms[b.id]}/read", {},
            floor=Floor({"GetItem": 1, "UpdateItem": 1, "BatchGetItem": 1},
                        "the chatroom (its newest activity and revision), 1 UpdateItem conditioned on the revision; "
                        "then " + joined, budget="POST /chatrooms/{id}/read (to the newest)",
                        lower={"UpdateItem": 1, "BatchGetItem": 1},
                        lower_why="SET tm_read = tm_activity, unread = 0 conditioned on owner, live and tm_read < "
                                  "tm_activity needs no read (DynamoDB copies an attribute into another in an update); "
                                  "the read tells 403/404 and no-op apart before writing"))
        api("DELETE /chatrooms/{id}", "agent (owner)", a, "DELETE", f"/v1.0/chatrooms/{own_room['id']}",
            floor=Floor({"UpdateItem": 1, "BatchGetItem": 1}, "1 UpdateItem conditioned on live and owner = caller, "
                        "ALL_NEW; " + joined, budget="DELETE /chatrooms/{id}", lower={"UpdateItem": 1},
                        lower_why=joined_lower))

        # ---- chatmessages ----------------------------------------------------------------------
        send_why = ("the chat's status and the caller's member item in one BatchGetItem (live, and a participant: "
                    "two small items whatever the group's size), then 1 PutItem")
        message = api("POST /chatmessages", "agent (participant)", b, "POST", "/v1.0/chatmessages",
                      {"chat_id": group["id"], "text": "hello team"},
                      Floor({"BatchGetItem": 1, "PutItem": 1}, send_why, budget="POST /chatmessages (participant)"))
        api("POST /chatmessages", "admin", admin, "POST", "/v1.0/chatmessages",
            {"chat_id": group["id"], "text": "hello from the admin"},
            Floor({"BatchGetItem": 1, "PutItem": 1}, "the chat's status (live; an admin need not be a participant), "
                  "then 1 PutItem", budget="POST /chatmessages (admin)",
                  lower={"GetItem": 1, "PutItem": 1},
                  lower_why="the same count: one key read with a BatchGetItem instead of a GetItem"))
        key_why = ("as above, then the key claim and the message in one transaction (a retry within 24 h writes "
                   "nothing and answers the first message)")
        api("POST /chatmessages + Idempotency-Key", "agent (participant)", b, "POST", "/v1.0/chatmessages",
            {"chat_id": group["id"], "text": "hello again"}, headers={"Idempotency-Key": "bench-key-1"},
            floor=Floor({"BatchGetItem": 1, "TransactWriteItems": 1}, key_why, transactional=True))
        api("POST /chatmessages + Idempotency-Key (the retry)", "agent (participant)", b, "POST", "/v1.0/chatmessages",
            {"chat_id": group["id"], "text": "hello again"}, headers={"Idempotency-Key": "bench-key-1"},
            floor=Floor({"BatchGetItem": 1, "TransactWriteItems": 1, "GetItem": 2},
                        "the membership read, the transaction (its key condition fails: nothing written), the key "
                        "item (the first message's id) and that message, to answer it again", transactional=True))
        reply = api("POST /chatmessages (a reply)", "agent (participant)", c, "POST", "/v1.0/chatmessages",
                    {"chat_id": group["id"], "text": "a reply", "parent_id": message["id"]},
                    Floor({"BatchGetItem": 1, "GetItem": 1, "TransactWriteItems": 1},
                          "the membership read, the parent (of the same chat?), then the reply and the parent's "
                          "reply_count in one transaction (exact under concurrent replies)", transactional=True,
                          budget="POST /chatmessages (a reply)"))
        api("GET /chatmessages?chat_id= (a page)", "customer", customer, "GET",
            f"/v1.0/chatmessages?chat_id={group['id']}",
            floor=Floor({"Query": 1}, "1 Query page (the chat is read only for an empty page, to tell 404)",
                        budget="GET /chatmessages (admin, a page)"))
        api("GET /chatmessages?chat_id= (a page)", "agent (participant)", b, "GET",
            f"/v1.0/chatmessages?chat_id={group['id']}",
            floor=Floor({"GetItem": 1, "Query": 1}, "the caller's member item (a participant?) + 1 Query page",
                        budget="GET /chatmessages (participant, a page)"))
        api("GET /chatmessages?chat_id=&parent_id= (a thread)", "agent (participant)", b, "GET",
            f"/v1.0/chatmessages?chat_id={group['id']}&parent_id={message['id']}",
            floor=Floor({"GetItem": 1, "Query": 1}, "the caller's member item + 1 Query page of the order index "
                        "(the thread's replies)"))
        api("GET /chatmessages/{id}", "customer", customer, "GET", f"/v1.0/chatmessages/{message['id']}",
            floor=Floor({"GetItem": 1}, "1 GetItem", budget="GET /chatmessages/{id} (admin)"))
        api("GET /chatmessages/{id}", "agent (participant)", c, "GET", f"/v1.0/chatmessages/{message['id']}",
            floor=Floor({"GetItem": 2}, "the message, then the caller's member item of its chat",
                        budget="GET /chatmessages/{id} (participant)"))
        api("PUT /chatmessages/{id} (edit)", "agent (sender)", b, "PUT", f"/v1.0/chatmessages/{message['id']}",
            {"text": "hello team, edited"},
            floor=Floor({"GetItem": 1, "TransactWriteItems": 1},
                        "the message (sender, the text to keep), then the message and its earlier version in one "
                        "transaction conditioned on tm_update: 2 items whatever the group's size (copies show the "
                        "chatmessage's text)", transactional=True, budget="PUT /chatmessages/{id}"),
            shown_changed=True)
        api("GET /chatmessages/{id}/history", "agent (participant)", c, "GET",
            f"/v1.0/chatmessages/{message['id']}/history",
            floor=Floor({"GetItem": 2, "Query": 1}, "the message, the caller's member item, 1 Query of the message's "
                        "partition (versions, newest first)", budget="GET /chatmessages/{id}/history"))
        react_why = ("the message, 1 BatchGetItem of the chat's status and the caller's member item (live, may they "
                     "react?), then 1 transaction: the reaction's item (put if absent) and the message's summary "
                     "(conditioned on the emoji's count and the 50-emoji limit): 2 items whatever the group's size")
        api("POST /chatmessages/{id}/reactions", "agent (participant)", c, "POST",
            f"/v1.0/chatmessages/{message['id']}/reactions", {"emoji": "👍"},
            floor=Floor({"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1}, react_why, transactional=True,
                        budget="POST /chatmessages/{id}/reactions"),
            shown_changed=True)
        setup("POST", c, f"/v1.0/chatmessages/{message['id']}/reactions", {"emoji": ":ok:"})
        drain()
        api("DELETE /chatmessages/{id}/reactions/{emoji}", "agent (participant)", c, "DELETE",
            f"/v1.0/chatmessages/{message['id']}/reactions/:ok:",
            floor=Floor({"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1},
                        react_why.replace("put if absent", "deleted if present"), transactional=True,
                        budget="DELETE /chatmessages/{id}/reactions/{emoji}"), shown_changed=True)
        newest = setup("POST", b, "/v1.0/chatmessages", {"chat_id": group["id"], "text": "to be deleted"})
        drain()
        api("DELETE /chatmessages/{id}", "agent (sender)", b, "DELETE", f"/v1.0/chatmessages/{newest['id']}",
            floor=Floor({"UpdateItem": 1}, "1 UpdateItem conditioned on live, sender = caller and not a reply, ALL_NEW "
                        "(a reply: a transaction with its parent's reply_count)", budget="DELETE /chatmessages/{id}"),
            preview_moves=True)
        api("DELETE /chatmessages/{id} (a reply)", "agent (sender)", c, "DELETE", f"/v1.0/chatmessages/{reply['id']}",
            floor=Floor({"UpdateItem": 1, "GetItem": 1, "TransactWriteItems": 1},
                        "the plain conditional update fails on parent_id, then the reply is read and deleted with its "
                        "parent's reply_count in one transaction", transactional=True,
                        lower={"GetItem": 1, "TransactWriteItems": 1},
                        lower_why="the first UpdateItem is the common case (not a reply), tried before reading; for a "
                                  "reply it costs one request more"))

        # ---- chatroommessages -----------------------------------------------------------------
        send_room_why = ("the chatroom (live, the caller's, its chat), the chat's status (1 BatchGetItem), then the "
                         "message and the sender's copy in one transaction; the answer is that copy")
        copy = api("POST /chatroommessages", "agent (owner)", c, "POST", "/v1.0/chatroommessages",
                   {"chatroom_id": rooms[c.id], "text": "from my chatroom"},
                   Floor({"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1}, send_room_why, transactional=True,
                         budget="POST /chatroommessages"))
        newest_copy = api(
            "POST /chatroommessages + Idempotency-Key", "agent (owner)", c, "POST", "/v1.0/chatroommessages",
            {"chatroom_id": rooms[c.id], "text": "again"}, headers={"Idempotency-Key": "bench-key-2"},
            floor=Floor({"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1},
                        "as above, with the key claim in the same transaction", transactional=True))
        page_why = ("1 Query page (every copy names its owner, so a non-empty page proves ownership; the chatroom is "
                    "read only for an empty page), then the page's chatmessages (a copy shows their text, medias, "
                    "reactions and thread): 1 BatchGetItem per 100")
        copies_lower = ("copies that held their text would answer alone, but then an edit or a reaction rewrote every "
                        "copy (O(N) writes per edit)")
        api("GET /chatroommessages?chatroom_id= (a page)", "agent (owner)", a, "GET",
            f"/v1.0/chatroommessages?chatroom_id={rooms[a.id]}",
            floor=Floor({"Query": 1, "BatchGetItem": 1}, page_why, budget="GET /chatroommessages (a page)",
                        lower={"Query": 1}, lower_why=copies_lower))
        api("GET /chatroommessages?chatroom_id= (a page)", "customer", customer, "GET",
            f"/v1.0/chatroommessages?chatroom_id={rooms[a.id]}",
            floor=Floor({"Query": 1, "BatchGetItem": 1}, page_why, budget="GET /chatroommessages (a page)",
                        lower={"Query": 1}, lower_why=copies_lower))
        api("GET /chatroommessages/{id}", "agent (owner)", c, "GET", f"/v1.0/chatroommessages/{copy['id']}",
            floor=Floor({"GetItem": 1, "BatchGetItem": 1}, "1 GetItem, then its chatmessage",
                        budget="GET /chatroommessages/{id}", lower={"GetItem": 1}, lower_why=copies_lower))
        api("DELETE /chatroommessages/{id} (its chatroom's newest)", "agent (owner)", c, "DELETE",
            f"/v1.0/chatroommessages/{newest_copy['id']}",
            floor=Floor({"GetItem": 1, "BatchGetItem": 1, "Query": 1, "TransactWriteItems": 1},
                        "the copy, its chatroom (read state) and chatmessage in 1 BatchGetItem, the copy before it "
                        "(1 Query: the preview moves), then the copy, the chatroom's count and preview and a check "
                        "that the new preview is live, in one transaction", transactional=True,
                        budget="DELETE /chatroommessages/{id}"))
        api("DELETE /chatroommessages/{id} (an older copy)", "agent (owner)", a, "DELETE",
            f"/v1.0/chatroommessages/{copies_of_a[2]['id']}",
            floor=Floor({"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1},
                        "as above without the Query: the preview stays", transactional=True))

        # ---- /service_agents: the same services, the caller's own only -----------------------------
        sa_room = api("POST /service_agents/chatrooms", "agent", c, "POST", "/v1.0/service_agents/chatrooms",
                      {"participant_ids": [f.id]},
                      Floor({"TransactWriteItems": 1}, "as POST /chatrooms", transactional=True,
                            budget="POST /chatrooms"))
        api("GET /service_agents/chatrooms (a page)", "agent", c, "GET", "/v1.0/service_agents/chatrooms",
            floor=Floor({"Query": 1, "BatchGetItem": 1}, "as GET /chatrooms", budget="GET /chatrooms (a page)",
                        lower={"Query": 1}, lower_why=joined_lower))
        api("GET /service_agents/chatrooms?order=activity (a page)", "agent", c, "GET",
            "/v1.0/service_agents/chatrooms?order=activity",
            floor=Floor({"Query": 1, "BatchGetItem": 1}, "as GET /chatrooms?order=activity",
                        budget="GET /chatrooms?order=activity (a page)", lower={"Query": 1}, lower_why=joined_lower))
        api("GET /service_agents/chatrooms/{id}", "agent (owner)", c, "GET",
            f"/v1.0/service_agents/chatrooms/{sa_room['id']}",
            floor=Floor({"GetItem": 1, "BatchGetItem": 1}, "as GET /chatrooms/{id}", budget="GET /chatrooms/{id}",
                        lower={"GetItem": 1}, lower_why=joined_lower))
        api("PUT /service_agents/chatrooms/{id}", "agent (owner)", c, "PUT",
            f"/v1.0/service_agents/chatrooms/{sa_room['id']}", {"name": "mine"},
            floor=Floor({"UpdateItem": 1, "BatchGetItem": 1}, "as PUT /chatrooms/{id}", budget="PUT /chatrooms/{id}",
                        lower={"UpdateItem": 1}, lower_why=joined_lower))
        sa_copy = api("POST /service_agents/chatroommessages", "agent (owner)", c, "POST",
                      "/v1.0/service_agents/chatroommessages", {"chatroom_id": sa_room["id"], "text": "hi"},
                      Floor({"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1}, "as POST /chatroommessages",
                            transactional=True, budget="POST /chatroommessages"))
        setup("POST", f, "/v1.0/chatroommessages",
              {"chatroom_id": next(r["id"] for r in f.ok("GET", "/v1.0/chatrooms")["result"]), "text": "hello c"})
        drain()
        api("POST /service_agents/chatrooms/{id}/read (to the newest)", "agent (owner)", c, "POST",
            f"/v1.0/service_agents/chatrooms/{sa_room['id']}/read", {},
            floor=Floor({"GetItem": 1, "UpdateItem": 1, "BatchGetItem": 1}, "as POST /chatrooms/{id}/read",
                        budget="POST /chatrooms/{id}/read (to the newest)"))
        api("GET /service_agents/chatroommessages?chatroom_id= (a page)", "agent (owner)", c, "GET",
            f"/v1.0/service_agents/chatroommessages?chatroom_id={sa_room['id']}",
            floor=Floor({"Query": 1, "BatchGetItem": 1}, "as GET /chatroommessages",
                        budget="GET /chatroommessages (a page)", lower={"Query": 1}, lower_why=copies_lower))
        api("GET /service_agents/chatroommessages/{id}", "agent (owner)", c, "GET",
            f"/v1.0/service_agents/chatroommessages/{sa_copy['id']}",
            floor=Floor({"GetItem": 1, "BatchGetItem": 1}, "as GET /chatroommessages/{id}",
                        budget="GET /chatroommessages/{id}", lower={"GetItem": 1}, lower_why=copies_lower))
        api("DELETE /service_agents/chatroommessages/{id} (an older copy)", "agent (owner)", c, "DELETE",
            f"/v1.0/service_agents/chatroommessages/{sa_copy['id']}",
            floor=Floor({"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1},
                        "as DELETE /chatroommessages/{id} (the preview stays)", transactional=True))
        api("DELETE /service_agents/chatrooms/{id}", "agent (owner)", c, "DELETE",
            f"/v1.0/service_agents/chatrooms/{sa_room['id']}",
            floor=Floor({"UpdateItem": 1, "BatchGetItem": 1}, "as DELETE /chatrooms/{id}",
                        budget="DELETE /chatrooms/{id}", lower={"UpdateItem": 1}, lower_why=joined_lower))
        api("GET /openapi.json", "anyone", customer, "GET", "/v1.0/openapi.json", floor=Floor({}, "no DynamoDB"))

        # ---- deleting chats --------------------------------------------------------------------------
        delete_why = ("read the chat (owner, type, version; a normal chat's pair guard), then the chat, its status "
                      "(sends stop at once) and the pair guard in one transaction; the chatrooms follow in the stream")
        api("DELETE /chats/{id} (normal)", "agent (owner)", a, "DELETE", f"/v1.0/chats/{normal['id']}",
            floor=Floor({"GetItem": 1, "TransactWriteItems": 1}, delete_why, transactional=True,
                        budget="DELETE /chats/{id}"))
        api("DELETE /chats/{id} (group)", "customer", customer, "DELETE", f"/v1.0/chats/{group['id']}",
            floor=Floor({"GetItem": 1, "TransactWriteItems": 1}, delete_why.replace(" and the pair guard", ""),
                        transactional=True, budget="DELETE /chats/{id}"))
        api(f"DELETE /chats/{{id}} (group of {BIG_GROUP})", "customer", customer, "DELETE", f"/v1.0/chats/{big['id']}",
            floor=Floor({"GetItem": 1, "TransactWriteItems": 1}, "as above: the same 2 requests for 60 participants",
                        transactional=True, budget="DELETE /chats/{id}"))

    # every route and method the app serves is measured at least once
    served = {(method, path) for path, methods in chat_app.app.routes.items() for method in methods}
    measured = {(x["method"], x["route"]) for x in rows}
    common.write_result({
        "rows": rows, "stream": stream_rows, "budgets_error": budgets_error,
        "routes_served": len(served), "routes_missing": sorted(f"{m} {p}" for m, p in served - measured),
    })


if __name__ == "__main__":
    sys.exit(main())
