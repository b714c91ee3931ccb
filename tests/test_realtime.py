"""Events derived from the stream: who hears what on websockets, the event
bus, and the connection lifecycle (in process, against moto)."""

import json
import math
import uuid
from collections import defaultdict

import boto3
import pytest

import app as chat_app
from chalicelib.services import connections, delivery
from chalicelib.storage.models import AudienceItem
from devtools.websocket_server import LocalWebsocketApi
from tests.conftest import REGION, SECRET


def ws_event(route_key, connection_id, **extra):
    return {
        "requestContext": {"routeKey": route_key, "eventType": "CONNECT", "connectionId": connection_id,
                           "domainName": "example.execute-api.us-east-1.amazonaws.com", "stage": "test",
                           "apiId": "example"},
        **extra,
    }


def connect(caller):
    connection_id = uuid.uuid4().hex
    result = chat_app.ws_connect(ws_event("$connect", connection_id, queryStringParameters={"token": caller.token}),
                                 None)
    assert result["statusCode"] == 200, result
    return connection_id


@pytest.fixture
def pushed(monkeypatch):
    """What the stream handler pushes, per connection (API Gateway stubbed)."""
    received = defaultdict(list)
    monkeypatch.setenv("CHAT_WEBSOCKET_ENDPOINT", "http://127.0.0.1:9/unused")
    monkeypatch.setattr(delivery, "push", lambda endpoint, cid, message: received[cid].append(message) or True)
    return received


def listening(customer_id, audience):
    return connections.connections_of([(customer_id, audience)]).get((customer_id, audience), [])


def types(messages):
    return sorted(m["type"] for m in messages)


def test_connect_needs_a_valid_token(aws):
    for query in (None, {"token": "garbage"}, {"token": SECRET}):
        result = chat_app.ws_connect(ws_event("$connect", "c1", queryStringParameters=query), None)
        assert result["statusCode"] == 401
    assert all(not item.live_connections(0) for item in AudienceItem.scan())


def test_connect_and_disconnect_store_and_remove_the_connection(customer, admin, make_agent):
    agent = make_agent()
    plain, privileged = connect(agent), connect(admin)
    assert listening(agent.customer_id, f"agent#{agent.id}") == [plain]
    assert listening(admin.customer_id, "customer") == [privileged]
    assert plain not in listening(agent.customer_id, "customer")
    chat_app.ws_disconnect(ws_event("$disconnect", plain), None)
    assert listening(agent.customer_id, f"agent#{agent.id}") == []


def test_an_agent_hears_their_chat_and_own_copies_and_nobody_else_does(customer, make_agent, admin, fanout, pushed,
                                                                       client):
    a, b, outsider = make_agent(), make_agent(), make_agent()
    stranger = make_agent(customer=str(uuid.uuid4()))  # another customer's agent
    listeners = {name: connect(caller) for name, caller in
                 (("a", a), ("b", b), ("outsider", outsider), ("stranger", stranger), ("admin", admin))}
    room = a.post("/v1.0/chatrooms", {"participant_ids": [b.id]}).json_body
    fanout.drain()
    sent = a.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "hi"}).json_body
    fanout.drain()

    got_b = pushed[listeners["b"]]
    assert types(got_b) == ["chat_created", "chatroom_created", "chatroom_updated", "messagechat_created",
                            "messagechatroom_created"]
    # the copy moved b's chatroom's read state: one unread, a preview
    assert next(m for m in got_b if m["type"] == "chatroom_updated")["data"]["unread_count"] == 1
    copy_event = next(m for m in got_b if m["type"] == "messagechatroom_created")
    assert copy_event["data"]["owner_id"] == b.id and copy_event["data"]["messagechat_id"] == sent["messagechat_id"]
    assert next(m for m in got_b if m["type"] == "messagechat_created")["data"]["text"] == "hi"
    # a's own copy reaches a only; the chat-wide events reach both and the customer-wide feed
    assert [m["data"]["id"] for m in pushed[listeners["a"]] if m["type"] == "messagechatroom_created"] == [sent["id"]]
    assert types(pushed[listeners["admin"]]) == ["chat_created", "messagechat_created"]
    assert pushed[listeners["outsider"]] == [] and pushed[listeners["stranger"]] == []


def test_deletes_are_events_too(customer, make_agent, fanout, pushed):
    a, b = make_agent(), make_agent()
    listener = connect(b)
    room = a.post("/v1.0/chatrooms", {"participant_ids": [b.id]}).json_body
    message = a.post("/v1.0/chatmessages", {"chat_id": room["chat_id"], "text": "oops"}).json_body
    fanout.drain()
    pushed.clear()
    a.delete(f"/v1.0/chatmessages/{message['id']}")
    fanout.drain()
    assert types(pushed[listener]) == ["chatroom_updated", "messagechat_deleted", "messagechatroom_deleted"]
    update = next(m for m in pushed[listener] if m["type"] == "chatroom_updated")["data"]
    assert update["unread_count"] == 0 and update["last_chatroommessage"] is None


def test_a_gone_connection_is_forgotten_and_does_not_block_the_others(customer, make_agent, fanout, monkeypatch):
    a, b = make_agent(), make_agent()
    # API Gateway's management API as make run serves it, with no live sockets: every push is Gone.
    management = LocalWebsocketApi((None, None, None), port=0)
    management.start()
    try:
        monkeypatch.setenv("CHAT_WEBSOCKET_ENDPOINT", management.management_endpoint)
        gone_a, gone_b = connect(a), connect(b)
        room = a.post("/v1.0/chatrooms", {"participant_ids": [b.id]}).json_body
        a.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "x"})
        fanout.drain()
    finally:
        management.stop()
    assert listening(a.customer_id, f"agent#{a.id}") == []
    assert listening(b.customer_id, f"agent#{b.id}") == []
    assert gone_a != gone_b


def test_ping_is_answered_with_pong(aws, make_agent, pushed):
    connection_id = connect(make_agent())
    chat_app.ws_message(ws_event("$default", connection_id, body=json.dumps({"type": "ping"})), None)
    assert pushed[connection_id] == [{"type": "pong"}]


@pytest.fixture
def event_bus(aws, monkeypatch):
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name="chat-events")
    queue = sqs.create_queue(QueueName="chat-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all-chat", EventBusName="chat-events", EventPattern=json.dumps({"source": ["voipbin.chat"]}))
    events.put_targets(Rule="all-chat", EventBusName="chat-events", Targets=[{"Id": "queue", "Arn": arn}])
    monkeypatch.setenv("CHAT_EVENT_BUS", "chat-events")

    def received():
        bodies = []
        while True:
            batch = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return bodies
            bodies += [json.loads(m["Body"]) for m in batch]
            sqs.delete_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])

    return received


def test_every_event_reaches_the_bus_in_batches_of_ten(customer, make_agent, fanout, event_bus, monkeypatch):
    agents = [make_agent() for _ in range(12)]
    customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id,
                                  "participant_ids": [a.id for a in agents]})
    calls = []
    real = delivery.Delivery._put_on_bus
    monkeypatch.setattr(delivery.Delivery, "_put_on_bus", lambda self, ev: calls.append(len(ev)) or real(self, ev))
    fanout.drain()
    bodies = event_bus()
    kinds = sorted(body["detail-type"] for body in bodies)
    assert kinds == ["chat_created"] + ["chatroom_created"] * 12
    assert all(body["source"] == "voipbin.chat" for body in bodies)
    assert {body["detail"]["customer_id"] for body in bodies} == {customer.customer_id}
    assert max(calls) <= 10 and len(calls) == math.ceil(13 / 10)


def test_records_whose_events_the_bus_refused_are_reported_failed(customer, make_agent, fanout, event_bus,
                                                                  monkeypatch):
    a, b = make_agent(), make_agent()
    customer.post("/v1.0/chats", {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]})
    event = fanout.read_event()

    def refuse(self, events):
        raise RuntimeError("EventBridge refused 1 of 1 events")

    monkeypatch.setattr(delivery.Delivery, "_put_on_bus", refuse)
    result = fanout.invoke(event)
    with_events = {r["dynamodb"]["SequenceNumber"] for r in event["Records"]
                   if r["dynamodb"]["NewImage"]["kind"]["S"] in ("chat", "chatroom")}  # not the pair guard
    assert len(with_events) == 3
    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == with_events
