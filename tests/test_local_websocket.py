"""Push, end to end: the make run server as a subprocess, real websocket clients."""

import contextlib
import json
import socket
import time
import uuid

import boto3
import pytest
from websockets.sync.client import connect

from tests.local_server import LocalServer, eventually, free_port


@pytest.fixture(scope="module")
def server():
    ws_port, dynamodb_port = free_port(), free_port()
    with LocalServer(env={"CHAT_WS_PORT": str(ws_port), "CHAT_DYNAMODB_PORT": str(dynamodb_port)}) as running:
        running.ws_url = f"ws://127.0.0.1:{ws_port}/"
        running.dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{dynamodb_port}",
                                        aws_access_key_id="local", aws_secret_access_key="local")
        yield running


class Listener:
    def __init__(self, server, token, stack):
        self.socket = stack.enter_context(connect(f"{server.ws_url}?token={token}", open_timeout=10))
        self.received = []  # every message, in order
        self._passed = []  # received while waiting for another, not returned yet

    def wait_for(self, predicate, deadline=15.0):
        """The first message, not returned before, that satisfies predicate: one received already
        while waiting for another (events of different items, such as a message and its sender's
        copy written in one transaction, come in either order), else the next one received before
        the deadline."""
        for message in self._passed:
            if predicate(message):
                self._passed.remove(message)
                return message
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            try:
                message = json.loads(self.socket.recv(timeout=max(0.05, end - time.monotonic())))
            except TimeoutError:
                break
            self.received.append(message)
            if predicate(message):
                return message
            self._passed.append(message)
        return None

    def drain(self, seconds=1.0):
        self.wait_for(lambda m: False, seconds)
        return self.received


@pytest.fixture
def stack():
    with contextlib.ExitStack() as open_sockets:
        yield open_sockets


def agent(server, customer_id, permission=16):
    agent_id = str(uuid.uuid4())
    return agent_id, server.api(customer_id, agent_id, name=f"agent-{agent_id[:4]}", permission=permission), \
        server.token(customer_id, agent_id, permission=permission)


def connections_of(server, customer_id, agent_id):
    """The connection ids in the agent's audience item (a map of id -> expiry)."""
    items = server.dynamodb.query(TableName="chat", KeyConditionExpression="pk = :pk",
                                  ExpressionAttributeValues={":pk": {"S": f"{customer_id}#ws#agent#{agent_id}"}})
    return sorted(cid for item in items["Items"] for cid in item.get("connections", {}).get("M", {}))


def test_a_message_reaches_the_other_agent_and_no_other_customer(server, stack):
    customer = str(uuid.uuid4())
    a_id, a_api, a_token = agent(server, customer)
    b_id, b_api, b_token = agent(server, customer)
    _, _, stranger_token = agent(server, str(uuid.uuid4()), permission=32)
    listen_b, listen_stranger = Listener(server, b_token, stack), Listener(server, stranger_token, stack)

    status, room = a_api.call("POST", "/chatrooms", {"participant_ids": [b_id], "name": "pair"})
    assert status == 200, room
    status, copy = a_api.call("POST", "/chatroommessages", {"chatroom_id": room["id"], "text": "over the wire"})
    assert status == 200, copy

    chat_event = listen_b.wait_for(lambda m: m["type"] == "messagechat_created")
    own_copy = listen_b.wait_for(lambda m: m["type"] == "messagechatroom_created")
    assert chat_event and chat_event["data"]["id"] == copy["messagechat_id"]
    assert own_copy and own_copy["data"]["owner_id"] == b_id and own_copy["data"]["text"] == "over the wire"
    assert listen_stranger.drain(1.0) == []
    listen_b.socket.send(json.dumps({"type": "ping"}))
    assert listen_b.wait_for(lambda m: m["type"] == "pong")


def test_a_killed_client_is_cleaned_up_and_catches_up_by_listing(server, stack):
    customer = str(uuid.uuid4())
    a_id, a_api, _ = agent(server, customer)
    b_id, b_api, b_token = agent(server, customer)
    listener = Listener(server, b_token, stack)
    assert eventually(lambda: connections_of(server, customer, b_id), 5)

    # Kill the client: its TCP connection drops without a websocket close.
    listener.socket.socket.shutdown(socket.SHUT_RDWR)
    listener.socket.socket.close()
    assert eventually(lambda: connections_of(server, customer, b_id) == [], 10), "connection not cleaned up"

    status, room = a_api.call("POST", "/chatrooms", {"participant_ids": [b_id]})
    a_api.call("POST", "/chatroommessages", {"chatroom_id": room["id"], "text": "while you were away"})

    # Reconnecting pushes only what happens next; listing returns what was missed.
    Listener(server, b_token, stack)
    _, rooms = b_api.call("GET", "/chatrooms")
    b_room = rooms["result"][0]["id"]

    def missed():
        _, page = b_api.call("GET", f"/chatroommessages?chatroom_id={b_room}")
        return [m["text"] for m in page["result"]]

    assert eventually(lambda: missed() == ["while you were away"], 15)


def test_a_bad_token_is_refused(server):
    with pytest.raises(Exception, match="401"), connect(f"{server.ws_url}?token=not-a-token", open_timeout=10):
        pass
