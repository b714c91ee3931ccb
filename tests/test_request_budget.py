"""How many DynamoDB requests each operation costs (README.md, "Storage: one table": one
GetItem or one Query per access pattern, batch writes for the fan-out, no Scan)."""

import math
from collections import Counter

import botocore.client
import pytest

from tests.helpers import create_chat, ok, room_of


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


GET_BY_ID = {
    "chat": lambda s: f"/v1.0/chats/{s['chat']['id']}",
    "chatroom": lambda s: f"/v1.0/chatrooms/{s['chatroom']['id']}",
    "chatmessage": lambda s: f"/v1.0/chatmessages/{s['copy']['messagechat_id']}",
    "chatroommessage": lambda s: f"/v1.0/chatroommessages/{s['copy']['id']}",
}


@pytest.mark.parametrize("resource", sorted(GET_BY_ID))
def test_admin_get_by_id_is_one_getitem(admin, scene, dynamodb_calls, resource):
    dynamodb_calls.reset()
    ok(admin.get(GET_BY_ID[resource](scene)))
    assert dynamodb_calls.calls == ["GetItem"]


LIST_PAGE = {
    "chats": lambda s: "/v1.0/chats",
    "chatrooms": lambda s: f"/v1.0/chatrooms?owner_id={s['agent'].id}",
    "chatmessages": lambda s: f"/v1.0/chatmessages?chat_id={s['chat']['id']}",
    "chatroommessages": lambda s: f"/v1.0/chatroommessages?chatroom_id={s['chatroom']['id']}",
}


@pytest.mark.parametrize("resource", sorted(LIST_PAGE))
def test_admin_list_page_is_one_query(admin, scene, dynamodb_calls, resource):
    dynamodb_calls.reset()
    page = ok(admin.get(LIST_PAGE[resource](scene)))
    assert page["result"], "the budget is for a non-empty page"
    assert dynamodb_calls.calls == ["Query"]


def test_plain_agents_chatroommessage_list_is_one_read_and_one_query(scene, dynamodb_calls):
    agent, room = scene["agent"], scene["chatroom"]
    dynamodb_calls.reset()
    assert ok(agent.get(f"/v1.0/chatroommessages?chatroom_id={room['id']}"))["result"]
    assert len(dynamodb_calls.calls) <= 2, dynamodb_calls.calls
    assert dynamodb_calls.counts["Query"] == 1, dynamodb_calls.calls


@pytest.mark.parametrize("rooms", [2, 30, 60])
def test_fanout_of_one_message_is_one_query_and_batches_of_25(customer, make_agent, fanout, dynamodb_calls, rooms):
    chat = create_chat(customer, *[make_agent() for _ in range(rooms)])
    fanout.drain()
    message = ok(customer.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "to everyone"}))
    [insert] = [
        record for record in fanout.read_event()["Records"]
        if record["eventName"] == "INSERT" and record["dynamodb"]["NewImage"].get("id") == {"S": message["id"]}
    ]

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
