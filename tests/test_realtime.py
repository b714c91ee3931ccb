"""Events derived from the stream: who hears what on websockets, the event
bus, and the connection lifecycle (in process, against moto)."""

import json
import math
import time
import uuid
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.client
import botocore.exceptions
import pytest

import app as chat_app
from chalicelib.services import connections, delivery
from chalicelib.storage.models import AudienceItem
from devtools.websocket_server import LocalWebsocketApi
from tests.conftest import REGION, SECRET
from tests.helpers import create_chat, insert_of, send_chatmessage


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
    assert types(got_b) == ["chat_created", "chatroom_created", "chatroom_read_state", "messagechat_created",
                            "messagechatroom_created"]
    # the copy moved b's chatroom's read state: pushed as the read state alone, one unread, a preview
    read_state = next(m for m in got_b if m["type"] == "chatroom_read_state")["data"]
    b_room = next(m for m in got_b if m["type"] == "chatroom_created")["data"]
    assert list(read_state) == ["chatroom_id", "customer_id", "chat_id", "owner_id", "unread_count", "mention_count",
                                "tm_read", "tm_activity", "last_chatroommessage"]
    assert read_state["chatroom_id"] == b_room["id"] and read_state["owner_id"] == b.id
    assert read_state["unread_count"] == 1 and read_state["last_chatroommessage"]["text"] == "hi"
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
    assert types(pushed[listener]) == ["chatroom_read_state", "messagechat_deleted", "messagechatroom_deleted"]
    update = next(m for m in pushed[listener] if m["type"] == "chatroom_read_state")["data"]
    assert update["unread_count"] == 0 and update["last_chatroommessage"] is None


def test_a_gone_connection_is_forgotten_and_does_not_block_the_others(customer, make_agent, fanout, monkeypatch):
    a, b = make_agent(), make_agent()
    # API Gateway's management API as make run serves it, with no live sockets: every push is Gone.
    management = LocalWebsocketApi((None, None, None), port=0)
    management.start()
    try:
        monkeypatch.setenv("CHAT_WEBSOCKET_ENDPOINT", management.management_endpoint)
        gone_a, gone_b = connect(a), connect(b)
        after_handshake(monkeypatch)
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


@pytest.fixture
def put_events(monkeypatch):
    """The Entries of every PutEvents request the suite's events client makes (the
    request as sent, whatever moto answers)."""
    requests = []
    make_api_call = botocore.client.BaseClient._make_api_call

    def recording(client, operation_name, api_params):
        if operation_name == "PutEvents":
            requests.append(api_params["Entries"])
        return make_api_call(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    return requests


def test_the_bus_gets_chat_level_events_and_a_stage_adds_the_chatrooms_ones(customer, make_agent, fanout,
                                                                            event_bus, put_events, monkeypatch):
    agents = [make_agent() for _ in range(12)]
    chat = {"type": "group", "owner_id": agents[0].id, "participant_ids": [a.id for a in agents]}
    customer.post("/v1.0/chats", chat)
    fanout.drain()
    assert [body["detail-type"] for body in event_bus()] == ["chat_created"]
    assert [len(entries) for entries in put_events] == [1]

    put_events.clear()
    monkeypatch.setenv("CHAT_BUS_CHATROOM_EVENTS", "1")
    customer.post("/v1.0/chats", chat)
    fanout.drain()
    bodies = event_bus()
    assert sorted(body["detail-type"] for body in bodies) == ["chat_created"] + ["chatroom_created"] * 12
    assert all(body["source"] == "voipbin.chat" for body in bodies)
    assert {body["detail"]["customer_id"] for body in bodies} == {customer.customer_id}
    assert max(len(entries) for entries in put_events) <= 10 and len(put_events) == math.ceil(13 / 10)


def test_records_whose_events_the_bus_refused_are_reported_failed_and_pushed_anyway(
        customer, make_agent, fanout, event_bus, pushed, monkeypatch):
    a, b = make_agent(), make_agent()
    listener = connect(b)
    customer.post("/v1.0/chats", {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]})
    event = fanout.read_event()
    tries, waits = [], []
    make_api_call = botocore.client.BaseClient._make_api_call

    def refusing(client, operation_name, api_params):
        if operation_name == "PutEvents":
            tries.append(len(api_params["Entries"]))
            raise botocore.exceptions.ClientError({"Error": {"Code": "InternalException", "Message": "no"}},
                                                  "PutEvents")
        return make_api_call(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", refusing)
    monkeypatch.setattr(delivery, "_sleep", waits.append)
    result = fanout.invoke(event)
    # the chat's record is the one with a chat-level event (the chatrooms' events are not the bus's)
    chat_record = {r["dynamodb"]["SequenceNumber"] for r in event["Records"]
                   if r["dynamodb"]["NewImage"].get("kind") == {"S": "chat"}}
    assert {f["itemIdentifier"] for f in result["batchItemFailures"]} == chat_record
    assert tries == [1] * delivery.BUS_ATTEMPTS  # tried again, with jittered waits that grow
    assert len(waits) == delivery.BUS_ATTEMPTS - 1
    assert all(0 <= wait <= delivery.BUS_BACKOFF_SECONDS * 2 ** n for n, wait in enumerate(waits))
    # the pushes went out all the same
    assert types(pushed[listener]) == ["chat_created", "chatroom_created"]


def test_entries_the_bus_refuses_one_by_one_are_tried_again_alone(customer, make_agent, fanout, event_bus,
                                                                  monkeypatch):
    agents = [make_agent() for _ in range(3)]
    monkeypatch.setenv("CHAT_BUS_CHATROOM_EVENTS", "1")
    customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id, "participant_ids": [a.id for a in agents]})
    sent = []
    make_api_call = botocore.client.BaseClient._make_api_call

    def first_refused_once(client, operation_name, api_params):
        if operation_name != "PutEvents":
            return make_api_call(client, operation_name, api_params)
        sent.append([entry["DetailType"] for entry in api_params["Entries"]])
        if len(sent) == 1:  # the first entry throttled, the others taken
            make_api_call(client, operation_name, {"Entries": api_params["Entries"][1:]})
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}]
                    + [{"EventId": "x"}] * (len(api_params["Entries"]) - 1)}
        return make_api_call(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", first_refused_once)
    monkeypatch.setattr(delivery, "_sleep", lambda seconds: None)
    fanout.drain()
    assert len(sent) == 2 and len(sent[1]) == 1 and sent[1][0] == sent[0][0]
    assert sorted(body["detail-type"] for body in event_bus()) == ["chat_created"] + ["chatroom_created"] * 3


# ---- pushes through a stand-in of the management API ------------------------------------

def test_the_management_client_is_made_once_with_a_pool_as_large_as_the_pushes_at_once(aws):
    endpoint = f"http://127.0.0.1:9/{uuid.uuid4().hex}"
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda _: delivery._management_client(endpoint, REGION), range(8)))
    assert all(client is clients[0] for client in clients)
    assert clients[0].meta.config.max_pool_connections == delivery.PUSHES_AT_ONCE


def after_handshake(monkeypatch) -> None:
    """The clock past the connections' $connect (connections.HANDSHAKE_SECONDS):
    a push that finds one gone forgets it."""
    later = time.time() + connections.HANDSHAKE_SECONDS + 1
    monkeypatch.setattr(connections, "_clock", lambda: later)


def test_a_gone_connection_is_forgotten_without_holding_the_others_back(customer, make_agent, fanout, management,
                                                                       monkeypatch):
    agents = [make_agent() for _ in range(6)]
    chat = customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id,
                                         "participant_ids": [a.id for a in agents]}).json_body
    fanout.drain()
    connection_of = {agent.id: connect(agent) for agent in agents}
    after_handshake(monkeypatch)
    gone = {connection_of[agents[0].id], connection_of[agents[1].id]}
    management.gone.update(gone)
    customer.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "some have left"})
    fanout.drain()
    for agent in agents:
        posted = [post.connection_id for post in management.posts].count(connection_of[agent.id])
        # a gone connection's first push fails and ends its turn; the others get their three events
        assert posted == (1 if connection_of[agent.id] in gone else 3)
    assert listening(customer.customer_id, f"agent#{agents[0].id}") == []
    management.posts.clear()
    customer.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "and are forgotten"})
    fanout.drain()
    assert {post.connection_id for post in management.posts} == set(connection_of.values()) - gone


def test_a_connection_pushed_to_before_its_connect_returned_is_kept(customer, make_agent, fanout, management,
                                                                    monkeypatch):
    """API Gateway answers 410 to a push that reaches a connection whose $connect has
    not returned yet, as to a closed one: within HANDSHAKE_SECONDS it is kept (it
    would hear nothing more until it reconnected); past them, forgotten."""
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    fanout.drain()
    connecting = connect(b)
    management.gone.add(connecting)
    send_chatmessage(a, chat, "while b connects")
    fanout.drain()
    assert {post.connection_id for post in management.posts} == {connecting}  # 410s
    assert listening(b.customer_id, f"agent#{b.id}") == [connecting]
    management.gone.discard(connecting)  # its $connect returned
    management.posts.clear()
    send_chatmessage(a, chat, "b is in")
    fanout.drain()
    assert [post.connection_id for post in management.posts].count(connecting) == 3

    management.gone.add(connecting)  # closed, and a push finds it so past the handshake
    after_handshake(monkeypatch)
    send_chatmessage(a, chat, "b has left")
    fanout.drain()
    assert listening(b.customer_id, f"agent#{b.id}") == []


def test_a_10000_emoji_message_is_pushed_whole_and_one_over_128_kib_as_a_notice_to_fetch(
        customer, make_agent, fanout, management, event_bus):
    a, b = make_agent(), make_agent()
    chat = customer.post("/v1.0/chats", {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]}).json_body
    fanout.drain()
    event_bus()
    listener = connect(b)
    text = "\U0001F600" * 10_000

    def send(medias=()):
        # sent as UTF-8: an emoji 4 bytes, not a 12-byte pair of \u escapes
        raw = json.dumps({"chat_id": chat["id"], "text": text, "medias": list(medias)}, ensure_ascii=False).encode()
        assert len(raw) <= 256 * 1024  # within the API's body limit
        response = customer.post("/v1.0/chatmessages", raw=raw)
        assert response.status_code == 200, response.body
        fanout.drain()
        return response.json_body, len(raw)

    send()
    pushed = {message["type"]: message for message in management.of(listener)}
    assert pushed["messagechat_created"]["data"]["text"] == text  # 40 KB as UTF-8 (as \u escapes: 120 KB)
    assert [body["detail"]["text"] for body in event_bus()] == [text]

    # ten agent cards of twenty addresses each take the message past 128 KiB, its bus entry past 256 KiB
    card = {"id": str(uuid.uuid4()), "addresses": [{"detail": "d" * 1080} for _ in range(20)]}
    management.posts.clear()
    large, _ = send([{"type": "agent", "agent": card}] * 10)
    pushed = {message["type"]: message for message in management.of(listener)}
    assert pushed["messagechat_created"] == {
        "type": "messagechat_created", "truncated": True,
        "data": {"id": large["id"], "customer_id": large["customer_id"], "chat_id": chat["id"],
                 "tm_update": large["tm_update"]}}
    copy = pushed["messagechatroom_created"]
    assert copy["truncated"] is True and copy["data"]["messagechat_id"] == large["id"]
    fetched = b.get(f"/v1.0/chatroommessages/{copy['data']['id']}").json_body  # what the client does next
    assert fetched["text"] == text and len(fetched["medias"]) == 10
    assert pushed["chatroom_read_state"]["data"]["last_chatroommessage"]["text"] == text[:200]
    assert all(len(post.body) < 1024 for post in management.posts if post.message.get("truncated"))
    [entry] = event_bus()
    assert entry["detail-type"] == "messagechat_created"
    assert entry["detail"] == {"id": large["id"], "customer_id": large["customer_id"], "chat_id": chat["id"],
                               "tm_update": large["tm_update"], "truncated": True}


def test_records_whose_connections_could_not_be_read_are_retried_and_still_followed(customer, make_agent, fanout,
                                                                                    management, monkeypatch):
    a, b = make_agent(), make_agent()
    chat = customer.post("/v1.0/chats", {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]}).json_body
    fanout.drain()
    connect(b)
    message = customer.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "hi"}).json_body
    insert = insert_of(fanout.read_event(), message)

    def unreadable(audiences):
        raise RuntimeError("DynamoDB kept refusing")

    monkeypatch.setattr(connections, "connections_of", unreadable)
    result = fanout.invoke({"Records": [insert]})
    # the chatmessage's record: Lambda hands it again
    assert result["batchItemFailures"] == [{"itemIdentifier": insert["dynamodb"]["SequenceNumber"]}]
    assert management.posts == []
    # its fan-out was done all the same: both copies are there
    images = [r["dynamodb"]["NewImage"] for r in fanout.read_event()["Records"] if r["eventName"] == "INSERT"]
    copies = [image for image in images if image.get("kind") == {"S": "chatroommessage"}]
    assert [image["messagechat_id"]["S"] for image in copies] == [message["id"]] * 2
