"""Presence, typing and mentions end to end: the make run server as a
subprocess (its websocket server routes every frame to $default, as API
Gateway does with a $default route), real websocket clients, HTTP calls."""

import contextlib
import json
import uuid

import boto3
import pytest

from tests.local_server import LocalServer, eventually, free_port
from tests.test_local_websocket import Listener, agent


@pytest.fixture(scope="module")
def server():
    ws_port, dynamodb_port = free_port(), free_port()
    with LocalServer(env={"CHAT_WS_PORT": str(ws_port), "CHAT_DYNAMODB_PORT": str(dynamodb_port)}) as running:
        running.ws_url = f"ws://127.0.0.1:{ws_port}/"
        running.dynamodb = boto3.client("dynamodb", region_name="us-east-1",
                                        endpoint_url=f"http://127.0.0.1:{dynamodb_port}",
                                        aws_access_key_id="local", aws_secret_access_key="local")
        yield running


@pytest.fixture
def stack():
    with contextlib.ExitStack() as open_sockets:
        yield open_sockets


def send(listener, frame):
    listener.socket.send(json.dumps(frame))


def test_two_agents_see_each_others_typing_and_presence(server, stack):
    customer = str(uuid.uuid4())
    a_id, a_api, a_token = agent(server, customer)
    b_id, b_api, b_token = agent(server, customer)
    c_id, _, c_token = agent(server, customer)
    a_token = server.token(customer, a_id, name="alice", permission=16)  # the name typing shows
    # connected first: a push that reaches a connection still connecting finds it gone (and forgets it)
    listen_a, listen_b = Listener(server, a_token, stack), Listener(server, b_token, stack)
    status, room = a_api.call("POST", "/chatrooms", {"participant_ids": [b_id], "name": "pair"})
    assert status == 200, room

    send(listen_a, {"type": "watch_presence", "agent_ids": [b_id, c_id]})
    watching = listen_a.wait_for(lambda m: m["type"] == "presence", 30)
    assert watching, (listen_a.received, server.output()[-4000:])  # what came instead, and what the server said
    assert [(p["agent_id"], p["status"], p["online"]) for p in watching["data"]["result"]] == [
        (b_id, "offline", True), (c_id, "offline", False)]
    send(listen_b, {"type": "watch_presence", "agent_ids": [a_id]})
    assert listen_b.wait_for(lambda m: m["type"] == "presence")["data"]["result"][0]["online"] is True

    # typing: a's frame reaches b (with a's name from the token), not a
    send(listen_a, {"type": "typing", "chat_id": room["chat_id"]})
    typing = listen_b.wait_for(lambda m: m["type"] == "typing")
    assert typing == {"type": "typing", "data": {"chat_id": room["chat_id"], "agent_id": a_id, "name": "alice"}}
    send(listen_b, {"type": "typing", "chat_id": room["chat_id"]})
    assert listen_a.wait_for(lambda m: m["type"] == "typing")["data"]["agent_id"] == b_id

    # presence: each one's status reaches the other, who watches
    status, shown = b_api.call("PUT", "/presence", {"status": "busy"})
    assert status == 200 and shown["online"] is True, shown
    event = listen_a.wait_for(lambda m: m["type"] == "presence_updated")
    assert (event["data"]["agent_id"], event["data"]["status"], event["data"]["online"]) == (b_id, "busy", True)
    a_api.call("PUT", "/presence", {"status": "away"})
    assert listen_b.wait_for(lambda m: m["type"] == "presence_updated")["data"]["status"] == "away"

    # online flips: c's first connection and its close reach a, who watches c
    with contextlib.ExitStack() as c_stack:
        Listener(server, c_token, c_stack)
        came = listen_a.wait_for(lambda m: m["type"] == "presence_updated" and m["data"]["agent_id"] == c_id)
        assert came["data"]["online"] is True
    went = listen_a.wait_for(lambda m: m["type"] == "presence_updated" and m["data"]["agent_id"] == c_id)
    assert went["data"]["online"] is False
    status, result = b_api.call("GET", f"/presence?agent_id={c_id}&agent_id={a_id}")
    assert status == 200 and [(p["agent_id"], p["online"]) for p in result["result"]] == [(c_id, False), (a_id, True)]

    # a refused frame answers an error frame; the connection stays
    send(listen_a, {"type": "typing", "chat_id": str(uuid.uuid4())})
    assert "not found" in listen_a.wait_for(lambda m: m["type"] == "error")["message"]
    send(listen_a, {"type": "ping"})
    assert listen_a.wait_for(lambda m: m["type"] == "pong")


def test_a_mention_is_counted_and_cleared_through_the_server(server):
    customer = str(uuid.uuid4())
    a_id, a_api, _ = agent(server, customer)
    b_id, b_api, _ = agent(server, customer)
    status, room = a_api.call("POST", "/chatrooms", {"participant_ids": [b_id]})
    assert status == 200, room
    status, copy = a_api.call("POST", "/chatroommessages", {"chatroom_id": room["id"], "text": "@b look",
                                                            "mentions": [b_id]})
    assert status == 200 and copy["mentions"] == [b_id], copy

    def b_room():
        _, rooms = b_api.call("GET", "/chatrooms")
        return rooms["result"][0]

    assert eventually(lambda: b_room()["mention_count"] == 1, 15)
    assert b_room()["unread_count"] == 1
    status, read = b_api.call("POST", f"/chatrooms/{b_room()['id']}/read", {})
    assert status == 200 and (read["unread_count"], read["mention_count"]) == (0, 0), read
