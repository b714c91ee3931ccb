"""Presence, typing and seen-by, in process against moto: the REST routes, the
websocket frames through the same handlers API Gateway calls (pushes
captured), and the DynamoDB requests each costs at 2 and 1,000 participants."""

import json
import math
import time
import uuid
from collections import Counter

import pytest

import app as chat_app
from chalicelib.services import typing_indicator
from chalicelib.storage.models import ChatroomItem
from tests import test_realtime, test_request_budget
from tests.conftest import DELIVERED
from tests.helpers import assert_error, create_chat, ok, room_of, send_chatmessage
from tests.test_realtime import connect, ws_event
from tests.test_request_budget import calls_of

pushed = test_realtime.pushed  # fixtures: what is pushed, per connection; DynamoDB requests made
dynamodb_calls = test_request_budget.dynamodb_calls


def frame(connection_id, body):
    """A frame from a client, as API Gateway's $default route delivers it."""
    return chat_app.ws_message(ws_event("$default", connection_id, body=json.dumps(body)), None)


def disconnect(connection_id):
    chat_app.ws_disconnect(ws_event("$disconnect", connection_id), None)


@pytest.fixture(autouse=True)
def fresh_typing_window():
    """The in-memory half of the typing throttle lives per process (per Lambda container)."""
    typing_indicator._known.clear()
    yield
    typing_indicator._known.clear()


def presence_of(caller, *agents):
    query = "&".join(f"agent_id={getattr(a, 'id', a)}" for a in agents)
    return ok(caller.get(f"/v1.0/presence?{query}"))["result"]


def _group(customer, make_agent, size):
    agents = [make_agent() for _ in range(size)]
    chat = ok(customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id,
                                            "participant_ids": [agent.id for agent in agents]}))
    return agents, chat


# ---- presence ---------------------------------------------------------------------------------

def test_presence_is_set_by_agents_and_read_in_the_order_asked(customer, make_agent, admin):
    a, b, never = make_agent(), make_agent(), make_agent()
    shown = ok(a.put("/v1.0/presence", {"status": "busy"}))
    assert (shown["agent_id"], shown["status"], shown["online"]) == (a.id, "busy", False)
    ok(b.put("/v1.0/presence", {"status": "away"}))
    result = presence_of(customer, never, b, a, b)
    assert [(p["agent_id"], p["status"], p["online"]) for p in result] == [
        (never.id, "offline", False), (b.id, "away", False), (a.id, "busy", False), (b.id, "away", False)]
    assert result[0]["tm_update"] == "" and result[2]["tm_update"] == shown["tm_update"]
    connect(b)
    assert presence_of(a, b)[0]["online"] is True
    assert presence_of(admin, a)[0]["status"] == "busy"


def test_presence_refusals(customer, make_agent, other_customer):
    a = make_agent()
    assert_error(customer.put("/v1.0/presence", {"status": "busy"}), 403)
    assert_error(a.put("/v1.0/presence", {"status": "ringing"}), 400)
    for query in ("", "?agent_id=nope", "?" + "&".join(f"agent_id={uuid.uuid4()}" for _ in range(101))):
        response = a.get(f"/v1.0/presence{query}")
        assert_error(response, 400)
        assert "agent_id" in response.json_body["Message"]
    ok(a.put("/v1.0/presence", {"status": "busy"}))
    assert presence_of(other_customer, a)[0]["status"] == "offline"  # another customer's agent is never seen


def test_presence_items_never_start_the_stream_function_and_do_nothing_there(customer, make_agent, fanout,
                                                                            pushed):
    a, watcher = make_agent(), make_agent()
    watching = connect(watcher)
    frame(watching, {"type": "watch_presence", "agent_ids": [a.id]})
    ok(a.put("/v1.0/presence", {"status": "away"}))
    pushed.clear()
    records, unfiltered = fanout.read_unfiltered()
    kinds = {r["dynamodb"]["NewImage"].get("kind", {}).get("S") for r in records}
    assert {"presence", "presence-watcher"} <= kinds
    assert not any(DELIVERED(record) for record in records)  # the mapping's filter drops them
    # handed over anyway (a stage deployed before the filter, make redrive): passed over
    assert fanout.invoke(unfiltered) == {"batchItemFailures": []}
    assert not pushed  # no fan-out, no event: the status change was pushed by the request itself


def test_a_status_change_is_pushed_to_its_watchers_only(customer, make_agent, pushed):
    a, watcher, bystander = make_agent(), make_agent(), make_agent()
    create_chat(customer, a, watcher, bystander)  # sharing a chat is not watching
    watching, other = connect(watcher), connect(bystander)
    frame(watching, {"type": "watch_presence", "agent_ids": [a.id]})
    [answer] = pushed.pop(watching)
    assert answer == {"type": "presence", "data": {"result": [
        {"agent_id": a.id, "status": "offline", "online": False, "tm_update": ""}]}}
    ok(a.put("/v1.0/presence", {"status": "available"}))
    [event] = pushed[watching]
    assert event["type"] == "presence_updated"
    assert (event["data"]["agent_id"], event["data"]["status"]) == (a.id, "available")
    assert other not in pushed


def test_online_flips_are_pushed_on_first_connect_and_last_disconnect(make_agent, pushed):
    a, watcher = make_agent(), make_agent()
    watching = connect(watcher)
    frame(watching, {"type": "watch_presence", "agent_ids": [a.id]})
    pushed.clear()
    first = connect(a)
    second = connect(a)  # not a flip: nothing more
    assert [(m["type"], m["data"]["online"]) for m in pushed[watching]] == [("presence_updated", True)]
    disconnect(first)  # still one connection left: not a flip
    disconnect(second)
    assert [m["data"]["online"] for m in pushed[watching]] == [True, False]


def test_watch_presence_frames_are_checked(make_agent, pushed):
    watcher = make_agent()
    watching = connect(watcher)
    for agent_ids in (None, [], "x", ["not-a-uuid"], [str(uuid.uuid4()) for _ in range(101)]):
        frame(watching, {"type": "watch_presence", "agent_ids": agent_ids})
        [answer] = pushed.pop(watching)
        assert answer["type"] == "error" and "agent_ids" in answer["message"], answer


# ---- typing -----------------------------------------------------------------------------------

def test_typing_reaches_the_other_participants_once_per_two_seconds(customer, make_agent, pushed, monkeypatch):
    a, b, c, outsider = make_agent(name="alice"), make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    mine, theirs, thirds, outside = connect(a), connect(b), connect(c), connect(outsider)
    clock = [time.time()]
    monkeypatch.setattr(typing_indicator.time, "time", lambda: clock[0])
    frame(mine, {"type": "typing", "chat_id": chat["id"]})
    expected = {"type": "typing", "data": {"chat_id": chat["id"], "agent_id": a.id, "name": "alice"}}
    assert pushed[theirs] == [expected] and pushed[thirds] == [expected]
    assert mine not in pushed and outside not in pushed
    clock[0] += 1.5
    frame(mine, {"type": "typing", "chat_id": chat["id"]})  # inside the window: dropped, no request
    assert pushed[theirs] == [expected]
    typing_indicator._known.clear()  # another container: the stored window still holds
    frame(mine, {"type": "typing", "chat_id": chat["id"]})
    assert pushed[theirs] == [expected] and mine not in pushed
    clock[0] += 0.6
    frame(mine, {"type": "typing", "chat_id": chat["id"]})
    assert pushed[theirs] == [expected, expected]


def test_typing_is_refused_to_outsiders_customers_and_large_chats(customer, make_agent, pushed):
    a, b, outsider = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    for who, body, words in ((outsider, {"chat_id": chat["id"]}, "participants"),
                             (customer, {"chat_id": chat["id"]}, "agent token"),
                             (a, {"chat_id": "nope"}, "chat_id"),
                             (a, {"chat_id": str(uuid.uuid4())}, "not found")):
        connection = connect(who)
        frame(connection, {"type": "typing", **body})
        [answer] = pushed.pop(connection)
        assert answer["type"] == "error" and words in answer["message"], answer
    agents, large = _group(customer, make_agent, 101)
    connection = connect(agents[0])
    frame(connection, {"type": "typing", "chat_id": large["id"]})
    [answer] = pushed.pop(connection)
    assert "at most 100 participants" in answer["message"]


def test_the_throttle_item_never_starts_the_stream_function_and_does_nothing_there(customer, make_agent, fanout,
                                                                                 pushed):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    connection = connect(a)
    fanout.drain()
    frame(connection, {"type": "typing", "chat_id": chat["id"]})
    records, unfiltered = fanout.read_unfiltered()
    throttles = [r for r in records if "#typing#" in r["dynamodb"]["Keys"]["pk"]["S"]]
    assert throttles and throttles == records  # the typing wrote nothing else
    assert not any(DELIVERED(record) for record in records)  # the mapping's filter drops them
    pushed.clear()
    assert fanout.invoke(unfiltered) == {"batchItemFailures": []}
    assert not pushed  # no fan-out, no event


# ---- seen-by ----------------------------------------------------------------------------------

def test_receipts_list_who_read_past_the_message(customer, make_agent, admin, fanout):
    a, b, c, d = make_agent(), make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    message = send_chatmessage(a, chat, "seen?")
    fanout.drain()
    assert ok(b.get(f"/v1.0/chatmessages/{message['id']}/receipts")) == {"result": [], "next_page_token": ""}
    read = ok(b.post(f"/v1.0/chatrooms/{room_of(b, chat)['id']}/read", {}))
    ok(a.post(f"/v1.0/chatrooms/{room_of(a, chat)['id']}/read", {}))  # the sender is never listed
    ok(customer.post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": d.id}))  # joined after it
    page = ok(c.get(f"/v1.0/chatmessages/{message['id']}/receipts"))
    assert page == {"result": [{"agent_id": b.id, "tm_read": read["tm_read"]}], "next_page_token": ""}
    assert ok(admin.get(f"/v1.0/chatmessages/{message['id']}/receipts")) == page
    assert_error(d.get(f"/v1.0/chatmessages/{uuid.uuid4()}/receipts"), 404)
    outsider = make_agent()
    assert_error(outsider.get(f"/v1.0/chatmessages/{message['id']}/receipts"), 403)


def test_receipts_page_by_agent_without_skipping_or_repeating(customer, make_agent, fanout):
    agents, chat = _group(customer, make_agent, 8)
    fanout.drain()
    message = send_chatmessage(agents[0], chat, "who?")
    fanout.drain()
    for agent in agents[1:]:
        ok(agent.post(f"/v1.0/chatrooms/{room_of(agent, chat)['id']}/read", {}))
    seen, token = [], ""
    for _ in range(10):
        page = ok(agents[1].get(f"/v1.0/chatmessages/{message['id']}/receipts?page_size=3&page_token={token}"))
        seen += [r["agent_id"] for r in page["result"]]
        token = page["next_page_token"]
        if not token:
            break
    assert seen == sorted(a.id for a in agents[1:])
    assert_error(agents[1].get(f"/v1.0/chatmessages/{message['id']}/receipts?page_size=1001"), 400)


# ---- requests per operation, at 2 and 1,000 participants ---------------------------------------

@pytest.mark.parametrize("size", [2, 1000])
def test_new_routes_cost_the_same_requests_at_2_and_1000(customer, make_agent, fanout, dynamodb_calls, size):
    agents, chat = _group(customer, make_agent, size)
    fanout.drain()
    sender, reader = agents[0], agents[-1]
    mentioned = [agent.id for agent in agents[-50:] if agent is not sender]  # the reader among them
    ok(sender.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "first"}))  # reads the settings (a minute)
    plain = calls_of(dynamodb_calls, lambda: sender.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "hi"}))
    fanout.drain()
    send = calls_of(dynamodb_calls, lambda: sender.post("/v1.0/chatmessages", {
        "chat_id": chat["id"], "text": "hey", "mentions": mentioned}))
    # the mentions ride in the membership check: a send with 50 costs what one without does
    assert send == plain and plain["BatchGetItem"] == 1 and plain["PutItem"] == 1
    message = ok(reader.get(f"/v1.0/chatmessages?chat_id={chat['id']}"))["result"][0]
    assert message["mentions"] == mentioned
    dynamodb_calls.reset()
    fanout.drain()
    copied = dynamodb_calls.counts
    assert copied["Query"] >= 1 and copied["TransactWriteItems"] == math.ceil(size / 25)  # no request per mention
    room = room_of(reader, chat)
    assert (room["unread_count"], room["mention_count"]) == (3, 1)  # "first", "hi", "hey"; "hey" mentions them
    ok(reader.post(f"/v1.0/chatrooms/{room['id']}/read", {}))

    presence_set = calls_of(dynamodb_calls, lambda: sender.put("/v1.0/presence", {"status": "busy"}))
    # the status, who watches (one Query), whether the agent is connected (one BatchGetItem)
    assert presence_set == Counter({"PutItem": 1, "Query": 1, "BatchGetItem": 1})
    asked = agents[:100]
    presence_get = calls_of(dynamodb_calls, lambda: reader.get(
        "/v1.0/presence?" + "&".join(f"agent_id={agent.id}" for agent in asked)))
    assert presence_get == Counter({"BatchGetItem": 2})  # statuses, then connections: 100 agents in 2

    # seen-by: a few participants read it, spread over the group (the reader, and every 9th at 1,000)
    readers = sorted({reader.id} | {agent.id for agent in agents[1::9][:110]})
    for agent in agents:
        if agent.id in readers and agent is not reader:
            ok(agent.post(f"/v1.0/chatrooms/{ChatroomItem.derived_id(chat['id'], agent.id, 1)}/read", {}))
    dynamodb_calls.reset()
    page = ok(reader.get(f"/v1.0/chatmessages/{message['id']}/receipts"))
    assert [r["agent_id"] for r in page["result"]] == readers and page["next_page_token"] == ""
    receipts = dynamodb_calls.counts
    # the message, the chat's members, their chatrooms 100 at a time: at most ceil(N/100) + 2
    assert receipts == Counter({"GetItem": 1, "Query": 1, "BatchGetItem": math.ceil((size - 1) / 100)})
    assert sum(receipts.values()) <= math.ceil(size / 100) + 2
    first = ok(reader.get(f"/v1.0/chatmessages/{message['id']}/receipts?page_size=100"))
    assert bool(first["next_page_token"]) == (size == 1000)  # 111 readers: two pages of 100
    rest = ok(reader.get(f"/v1.0/chatmessages/{message['id']}/receipts?page_token={first['next_page_token']}"))
    assert [r["agent_id"] for r in first["result"] + (rest["result"] if first["next_page_token"] else [])] == readers


@pytest.mark.parametrize("size", [2, 100, 1000])
def test_websocket_frames_cost_what_they_say(customer, make_agent, pushed, dynamodb_calls, size):
    agents, chat = _group(customer, make_agent, size)
    listeners = [connect(agent) for agent in agents[:100]]
    dynamodb_calls.reset()
    frame(listeners[0], {"type": "typing", "chat_id": chat["id"]})
    if size <= 100:
        # the connection, the chat, the throttle, the others' connections (one BatchGetItem per 100)
        assert dynamodb_calls.counts == Counter({"GetItem": 2, "UpdateItem": 1, "BatchGetItem": 1})
        assert all(pushed[c][-1]["type"] == "typing" for c in listeners[1:])
    else:
        assert dynamodb_calls.counts == Counter({"GetItem": 2})  # refused once the chat is read
    dynamodb_calls.reset()
    frame(listeners[0], {"type": "watch_presence", "agent_ids": [a.id for a in agents[:100]]})
    watched = min(size, 100)
    assert dynamodb_calls.counts == Counter({"GetItem": 1, "BatchWriteItem": math.ceil(watched / 25),
                                             "BatchGetItem": 2 * math.ceil(watched / 100)})
