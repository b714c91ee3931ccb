"""How many DynamoDB requests each operation costs (README.md, "Storage: one table": one
GetItem or one Query per access pattern, batch writes for the fan-out, no Scan)."""

import math
from collections import Counter

import boto3
import botocore.client
import pytest

from tests.helpers import create_chat, insert_of, ok, room_of


class DynamoDBCalls:
    """(service, operation) of every DynamoDB API call made since the last reset()."""

    def __init__(self):
        self.calls = []

    def record(self, service, operation):
        if service == "dynamodb":
            self.calls.append(operation)

    def reset(self):
        self.calls.clear()

    @property
    def counts(self):
        return Counter(self.calls)


@pytest.fixture
def dynamodb_calls(monkeypatch):
    counter = DynamoDBCalls()
    make_api_call = botocore.client.BaseClient._make_api_call

    def counting(client, operation_name, api_params):
        counter.record(client.meta.service_model.service_name, operation_name)
        return make_api_call(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return counter


@pytest.fixture
def scene(customer, make_agent, fanout):
    """A chat of two plain agents with one message fanned out to both."""
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    room = room_of(a, chat)
    copy = ok(a.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "hi"}))
    fanout.drain()
    return {"agent": a, "chat": chat, "chatroom": room, "copy": copy}


def calls_of(dynamodb_calls, request):
    dynamodb_calls.reset()
    ok(request())
    return dynamodb_calls.counts


# Every operation at the floor of its access pattern (README.md, "Performance", says why some floors are what they are;
# bench/RESULTS.md quotes this table). Every send also pays one UpdateItem to the send limits (services/limits.py);
# reads pay nothing for them. A send also reads its customer's settings (the retention it stamps on the message,
# services/lifecycle.py), once a minute per Lambda container: the scene has sent already, so these do not pay
# it; test_a_send_reads_the_customers_settings_once_a_minute counts it.
# (caller, request, expected requests). `s` is the scene; `n` a fresh agent.
OPERATIONS = {
    "GET /chats/{id} (admin)": ("admin", lambda s: ("get", f"/v1.0/chats/{s['chat']['id']}"), {"GetItem": 1}),
    "GET /chats/{id} (participant)": ("agent", lambda s: ("get", f"/v1.0/chats/{s['chat']['id']}"), {"GetItem": 1}),
    "GET /chats (a page)": ("admin", lambda s: ("get", "/v1.0/chats"), {"Query": 1}),
    "POST /chats": ("admin", lambda s: ("post", "/v1.0/chats", {
        "type": "group", "owner_id": s["agent"].id, "participant_ids": [s["agent"].id, s["new"]()]}),
        {"TransactWriteItems": 1}),
    "PUT /chats/{id}": ("agent", lambda s: ("put", f"/v1.0/chats/{s['chat']['id']}", {"name": "n"}),
                        {"UpdateItem": 1}),
    "PUT /chats/{id}/owner_id": ("agent", lambda s: ("put", f"/v1.0/chats/{s['chat']['id']}/owner_id",
                                                     {"owner_id": s["agent"].id}), {"UpdateItem": 1}),
    "POST /chats/{id}/participant_ids": ("agent", lambda s: (
        "post", f"/v1.0/chats/{s['chat']['id']}/participant_ids", {"participant_id": s["new"]()}),
        {"GetItem": 1, "TransactWriteItems": 1}),
    "DELETE /chats/{id}/participant_ids/{pid}": ("agent", lambda s: (
        "delete", f"/v1.0/chats/{s['chat']['id']}/participant_ids/{s['other']}"),
        {"BatchGetItem": 1, "TransactWriteItems": 1}),
    "DELETE /chats/{id}": ("agent", lambda s: ("delete", f"/v1.0/chats/{s['chat']['id']}"),
                           {"GetItem": 1, "TransactWriteItems": 1}),
    "GET /chatrooms (a page)": ("agent", lambda s: ("get", "/v1.0/chatrooms"), {"Query": 1, "BatchGetItem": 1}),
    "POST /chatrooms": ("agent", lambda s: ("post", "/v1.0/chatrooms", {"participant_ids": [s["new"]()]}),
                        {"TransactWriteItems": 1}),
    "GET /chatrooms/{id}": ("agent", lambda s: ("get", f"/v1.0/chatrooms/{s['chatroom']['id']}"),
                            {"GetItem": 1, "BatchGetItem": 1}),
    "PUT /chatrooms/{id}": ("agent", lambda s: ("put", f"/v1.0/chatrooms/{s['chatroom']['id']}", {"name": "n"}),
                            {"UpdateItem": 1, "BatchGetItem": 1}),
    "DELETE /chatrooms/{id}": ("agent", lambda s: ("delete", f"/v1.0/chatrooms/{s['chatroom']['id']}"),
                               {"UpdateItem": 1, "BatchGetItem": 1}),
    "POST /chatmessages (participant)": ("agent", lambda s: ("post", "/v1.0/chatmessages",
                                                             {"chat_id": s["chat"]["id"], "text": "t"}),
                                         {"UpdateItem": 1, "BatchGetItem": 1, "PutItem": 1}),
    "POST /chatmessages (admin)": ("admin", lambda s: ("post", "/v1.0/chatmessages",
                                                       {"chat_id": s["chat"]["id"], "text": "t"}),
                                   {"UpdateItem": 1, "BatchGetItem": 1, "PutItem": 1}),
    "GET /chatmessages (admin, a page)": ("admin", lambda s: ("get", f"/v1.0/chatmessages?chat_id={s['chat']['id']}"),
                                          {"Query": 1}),
    "GET /chatmessages (participant, a page)": ("agent", lambda s: (
        "get", f"/v1.0/chatmessages?chat_id={s['chat']['id']}"), {"GetItem": 1, "Query": 1}),
    "GET /chatmessages/{id} (admin)": ("admin", lambda s: ("get", f"/v1.0/chatmessages/{s['copy']['messagechat_id']}"),
                                       {"GetItem": 1}),
    "GET /chatmessages/{id} (participant)": ("agent", lambda s: (
        "get", f"/v1.0/chatmessages/{s['copy']['messagechat_id']}"), {"GetItem": 2}),
    "DELETE /chatmessages/{id}": ("agent", lambda s: ("delete", f"/v1.0/chatmessages/{s['copy']['messagechat_id']}"),
                                  {"UpdateItem": 1}),
    "POST /chatroommessages": ("agent", lambda s: ("post", "/v1.0/chatroommessages",
                                                   {"chatroom_id": s["chatroom"]["id"], "text": "t"}),
                               {"UpdateItem": 1, "GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1}),
    # a copy shows its chatmessage's text, medias, reactions and thread: one BatchGetItem per page
    "GET /chatroommessages (a page)": ("agent", lambda s: (
        "get", f"/v1.0/chatroommessages?chatroom_id={s['chatroom']['id']}"), {"Query": 1, "BatchGetItem": 1}),
    "GET /chatroommessages/{id}": ("agent", lambda s: ("get", f"/v1.0/chatroommessages/{s['copy']['id']}"),
                                   {"GetItem": 1, "BatchGetItem": 1}),
    # the copy, its chatroom and chatmessage, the copy before it (it was the newest: the preview moves), one
    # transaction with the chatroom's read state
    "DELETE /chatroommessages/{id}": ("agent", lambda s: ("delete", f"/v1.0/chatroommessages/{s['copy']['id']}"),
                                      {"GetItem": 1, "BatchGetItem": 1, "Query": 1, "TransactWriteItems": 1}),
    "GET /chatrooms?order=activity (a page)": ("agent", lambda s: ("get", "/v1.0/chatrooms?order=activity"),
                                               {"Query": 1, "BatchGetItem": 1}),
    "POST /chatrooms/{id}/read (to the newest)": ("agent", lambda s: (
        "post", f"/v1.0/chatrooms/{s['chatroom']['id']}/read", {}), {"GetItem": 1, "UpdateItem": 1, "BatchGetItem": 1}),
    "POST /chatrooms/{id}/read (to a copy)": ("agent", lambda s: (
        "post", f"/v1.0/chatrooms/{s['chatroom']['id']}/read", {"chatroommessage_id": s["copy"]["id"]}),
        {"Query": 1, "UpdateItem": 1, "BatchGetItem": 2}),  # the chatroom and the copy in one consistent read
    "POST /chatmessages (a reply)": ("agent", lambda s: ("post", "/v1.0/chatmessages", {
        "chat_id": s["chat"]["id"], "text": "t", "parent_id": s["copy"]["messagechat_id"]}),
        {"UpdateItem": 1, "BatchGetItem": 1, "GetItem": 1, "TransactWriteItems": 1}),
    "PUT /chatmessages/{id}": ("agent", lambda s: ("put", f"/v1.0/chatmessages/{s['copy']['messagechat_id']}",
                                                   {"text": "edited"}), {"GetItem": 1, "TransactWriteItems": 1}),
    "GET /chatmessages/{id}/history": ("agent", lambda s: (
        "get", f"/v1.0/chatmessages/{s['copy']['messagechat_id']}/history"), {"GetItem": 2, "Query": 1}),
    # the message, the chat's liveness and the caller's membership (one BatchGetItem), one transaction: the
    # reaction's item and the message's summary
    "POST /chatmessages/{id}/reactions": ("agent", lambda s: (
        "post", f"/v1.0/chatmessages/{s['copy']['messagechat_id']}/reactions", {"emoji": "👍"}),
        {"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1}),
    "DELETE /chatmessages/{id}/reactions/{emoji}": ("agent", lambda s: (
        "delete", f"/v1.0/chatmessages/{s['copy']['messagechat_id']}/reactions/:ok:"),
        {"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1}),
    "GET /chatmessages/{id}/reactions (a page)": ("agent", lambda s: (
        "get", f"/v1.0/chatmessages/{s['copy']['messagechat_id']}/reactions"), {"GetItem": 2, "Query": 1}),
    # the member item, the chat, and one Query each of the chat's live and deleted messages
    "GET /chats/{id}/transcript": ("agent", lambda s: ("get", f"/v1.0/chats/{s['chat']['id']}/transcript"),
                                   {"GetItem": 2, "Query": 2}),
    "GET /customer/settings": ("admin", lambda s: ("get", "/v1.0/customer/settings"), {"GetItem": 1}),
    "PUT /customer/settings": ("admin", lambda s: ("put", "/v1.0/customer/settings", {"retention_days": 30}),
                               {"UpdateItem": 1}),
}


@pytest.fixture
def budget_scene(scene, admin, make_agent):
    other = make_agent()
    chat = scene["chat"]
    ok(scene["agent"].post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": other.id}))
    ok(scene["agent"].post(f"/v1.0/chatmessages/{scene['copy']['messagechat_id']}/reactions", {"emoji": ":ok:"}))
    return {**scene, "admin": admin, "other": other.id, "new": lambda: make_agent().id}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_every_operation_is_at_its_floor(budget_scene, dynamodb_calls, operation):
    who, build, expected = OPERATIONS[operation]
    caller = budget_scene["admin"] if who == "admin" else budget_scene["agent"]
    method, path, *body = build(budget_scene)
    calls = calls_of(dynamodb_calls, lambda: getattr(caller, method)(path, *body))
    assert calls == Counter(expected), calls


def test_a_send_reads_the_customers_settings_once_a_minute(scene, dynamodb_calls, monkeypatch):
    from chalicelib.services import lifecycle

    send = ("post", "/v1.0/chatmessages", {"chat_id": scene["chat"]["id"], "text": "t"})
    warm = calls_of(dynamodb_calls, lambda: getattr(scene["agent"], send[0])(*send[1:]))
    monkeypatch.setattr(lifecycle, "_cache", {})  # a new container, or a minute later
    cold = calls_of(dynamodb_calls, lambda: getattr(scene["agent"], send[0])(*send[1:]))
    assert cold - warm == Counter({"GetItem": 1})


def _group(customer, make_agent, size):
    """A group of `size` agents created directly through POST /chats."""
    agents = [make_agent() for _ in range(size)]
    response = customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id,
                                             "participant_ids": [agent.id for agent in agents]})
    return agents, ok(response)


@pytest.mark.parametrize("size", [2, 1000])
def test_add_remove_and_send_cost_the_same_requests_at_2_and_1000(customer, make_agent, dynamodb_calls, size):
    """A group of 2 grows to 3 and back; one of 1,000 (the limit) shrinks to 999 and back."""
    agents, chat = _group(customer, make_agent, size)
    owner, member = agents[0], agents[-1]
    changing = make_agent() if size == 2 else agents[1]

    def add():
        return calls_of(dynamodb_calls, lambda: owner.post(f"/v1.0/chats/{chat['id']}/participant_ids",
                                                           {"participant_id": changing.id}))

    def remove():
        return calls_of(dynamodb_calls, lambda: owner.delete(f"/v1.0/chats/{chat['id']}/participant_ids/{changing.id}"))

    send = calls_of(dynamodb_calls, lambda: member.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "t"}))
    if size == 2:
        added, removed = add(), remove()
    else:
        removed, added = remove(), add()
    message = ok(member.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "edit me"}))
    edit = calls_of(dynamodb_calls, lambda: member.put(f"/v1.0/chatmessages/{message['id']}", {"text": "edited"}))
    react = calls_of(dynamodb_calls, lambda: owner.post(f"/v1.0/chatmessages/{message['id']}/reactions",
                                                        {"emoji": "👍"}))
    ok(member.post(f"/v1.0/chatmessages/{message['id']}/reactions", {"emoji": "👍"}))
    # the owner is among the emoji's newest: taking it back refills them with one Query
    unreact = calls_of(dynamodb_calls, lambda: owner.delete(f"/v1.0/chatmessages/{message['id']}/reactions/👍"))
    # the UpdateItem: the send limits; the GetItem: the customer's settings (its first send in this container)
    assert send == Counter({"UpdateItem": 1, "BatchGetItem": 1, "GetItem": 1, "PutItem": 1})
    assert added == Counter({"GetItem": 1, "TransactWriteItems": 1})
    assert removed == Counter({"BatchGetItem": 1, "TransactWriteItems": 1})
    # an edit and a reaction write the chatmessage (and the earlier version), never its copies
    assert edit == Counter({"GetItem": 1, "TransactWriteItems": 1})
    assert react == Counter({"GetItem": 1, "BatchGetItem": 1, "TransactWriteItems": 1})
    assert unreact == Counter({"GetItem": 1, "BatchGetItem": 1, "Query": 1, "TransactWriteItems": 1})


def test_creating_a_large_group_takes_requests_in_n_over_25(customer, make_agent, dynamodb_calls):
    agents = [make_agent() for _ in range(1000)]
    calls = calls_of(dynamodb_calls, lambda: customer.post("/v1.0/chats", {
        "type": "group", "owner_id": agents[0].id, "participant_ids": [agent.id for agent in agents]}))
    # 48 chatrooms and members in the transaction; the other 2 x 952 items 25 to a batch.
    assert calls == Counter({"TransactWriteItems": 1, "BatchWriteItem": math.ceil(2 * 952 / 25)})


def test_the_stream_rechecks_a_complete_large_create_with_one_query(customer, make_agent, fanout, dynamodb_calls):
    agents = [make_agent() for _ in range(60)]  # more than one transaction holds
    chat = ok(customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id,
                                            "participant_ids": [agent.id for agent in agents]}))
    insert = insert_of(fanout.read_event(), chat, kind="chat")
    dynamodb_calls.reset()
    assert fanout.invoke({"Records": [insert]}) == {"batchItemFailures": []}
    # every member is there: one Query, nothing to wait for or write (BatchGetItem: the event's connections)
    assert dynamodb_calls.counts - Counter({"BatchGetItem": dynamodb_calls.counts["BatchGetItem"]}) == Counter(
        {"Query": 1})


@pytest.mark.parametrize("rooms", [2, 30, 60])
def test_fanout_of_one_message_is_one_query_and_batches_of_25(customer, make_agent, fanout, dynamodb_calls, rooms):
    chat = create_chat(customer, *[make_agent() for _ in range(rooms)])
    fanout.drain()
    message = ok(customer.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "to everyone"}))
    insert = insert_of(fanout.read_event(), message)

    dynamodb_calls.reset()
    assert fanout.invoke({"Records": [insert]}) == {"batchItemFailures": []}

    assert dynamodb_calls.counts == Counter({"Query": 1, "TransactWriteItems": math.ceil(rooms / 25)})
    some_room = ok(customer.get(f"/v1.0/chatrooms?owner_id={chat['owner_id']}"))["result"][0]
    assert len(ok(customer.get(f"/v1.0/chatroommessages?chatroom_id={some_room['id']}"))["result"]) == 1


def test_no_scan_in_a_full_scenario(customer, make_agent, fanout, dynamodb_calls):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    room = room_of(a, chat)
    copy = ok(a.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "hi"}))
    message = ok(b.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "hello"}))
    fanout.drain()
    ok(a.get(f"/v1.0/chatroommessages?chatroom_id={room['id']}"))
    ok(b.get(f"/v1.0/chatmessages?chat_id={chat['id']}"))
    ok(customer.get("/v1.0/chats"))
    ok(b.delete(f"/v1.0/chatmessages/{message['id']}"))
    ok(a.delete(f"/v1.0/chatroommessages/{copy['id']}"))
    ok(customer.delete(f"/v1.0/chats/{chat['id']}"))
    fanout.drain()

    assert dynamodb_calls.calls, "the scenario made no DynamoDB calls at all"
    assert "Scan" not in dynamodb_calls.counts, dynamodb_calls.counts


def _items_read_by_one_page(customer, make_agent, chats, monkeypatch):
    """Create `chats` chats, then list one page of 5: (requests, items DynamoDB read)."""
    for _ in range(chats):
        create_chat(customer, make_agent(), make_agent())
    reads = []
    make_api_call = botocore.client.BaseClient._make_api_call

    def recording(client, operation_name, api_params):
        response = make_api_call(client, operation_name, api_params)
        if client.meta.service_model.service_name == "dynamodb":
            reads.append((operation_name, response.get("ScannedCount", response.get("Count"))))
        return response

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    page = ok(customer.get("/v1.0/chats?page_size=5"))
    assert len(page["result"]) == 5 and page["next_page_token"]
    return reads


def test_items_read_per_page_do_not_grow_with_the_table(customer, make_agent, monkeypatch):
    small = _items_read_by_one_page(customer, make_agent, 6, monkeypatch)
    monkeypatch.undo()
    large = _items_read_by_one_page(customer, make_agent, 40, monkeypatch)
    assert small == large == [("Query", 6)]  # the page and one more, to know it is not the last


@pytest.mark.parametrize("participants", [2, 1000])
def test_a_message_puts_one_entry_on_the_bus_whatever_the_groups_size(customer, make_agent, fanout, monkeypatch,
                                                                     participants):
    """The bus gets chat-level events only (README, "Real-time events"): one entry for a message
    sent, where every copy and every read-state change made 2N + 1."""
    boto3.client("events", region_name="us-east-1").create_event_bus(Name="chat-events")
    monkeypatch.setenv("CHAT_EVENT_BUS", "chat-events")
    chat = create_chat(customer, *[make_agent() for _ in range(participants)])
    fanout.drain()
    entries = []
    make_api_call = botocore.client.BaseClient._make_api_call

    def recording(client, operation_name, api_params):
        if operation_name == "PutEvents":
            entries.extend(entry["DetailType"] for entry in api_params["Entries"])
        return make_api_call(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    ok(customer.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "to everyone"}))
    fanout.drain()
    assert entries == ["messagechat_created"]


def test_an_export_and_an_erasure_cost_o_of_the_customers_partitions(customer, make_agent, fanout, bucket,
                                                                     dynamodb_calls):
    """Never a Scan: the routes one request each; the jobs read the customer's
    registry (one Query per shard), each of its partitions with one Query, and
    save their progress with one UpdateItem a slice."""
    from chalicelib.storage.models import REGISTRY_SHARDS

    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)  # partitions: the chat (its member items name its 2 chatrooms), the pair guard
    for text in ("one", "two"):  # 2 messages (each with 2 copies elsewhere), and a send window
        ok(a.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": text}))
    fanout.drain()
    dynamodb_calls.reset()
    started = customer.post("/v1.0/exports")
    assert started.status_code == 202 and dynamodb_calls.counts == Counter({"PutItem": 1})
    dynamodb_calls.reset()
    fanout.drain()
    # one slice: the registry, one Query per exported partition (the chat, 2 messages; the export's own is
    # not exported), its chatrooms (one BatchGetItem; their chats and previews were read in the slice), the
    # progress saved
    assert dynamodb_calls.counts == Counter({"Query": REGISTRY_SHARDS + 3, "BatchGetItem": 1, "UpdateItem": 1})
    assert calls_of(dynamodb_calls, lambda: customer.get(f"/v1.0/exports/{started.json_body['id']}")) == \
        Counter({"GetItem": 1})

    dynamodb_calls.reset()
    assert customer.delete("/v1.0/customer/data", headers={"Confirm-Customer-Id": customer.customer_id}
                           ).status_code == 202
    assert dynamodb_calls.counts == Counter({"PutItem": 1})
    dynamodb_calls.reset()
    fanout.drain()
    # per registered partition (the chat, the pair guard, 2 messages, the send windows, the export) one Query
    # and one BatchWriteItem, per chat one BatchGetItem of its chatrooms and per message one Query of its
    # copies (deleted in its batch); two
    # walks of the registry (the second finds nothing), then the files; each slice's progress one UpdateItem;
    # the REMOVE records of messages and copies one GetItem (is an erasure running?) per customer and container
    counts = dynamodb_calls.counts
    assert counts["Scan"] == 0
    assert counts["Query"] == 2 * REGISTRY_SHARDS + counts["BatchWriteItem"] + 2
    assert counts["UpdateItem"] == 3 and counts["GetItem"] <= 2 and counts["BatchGetItem"] == 1
