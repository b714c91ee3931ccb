"""End to end: the `make run` server as a subprocess, spoken to over real HTTP."""

import signal
import socket
import uuid

import pytest

from tests.local_server import LocalServer, eventually


@pytest.fixture
def server():
    with LocalServer() as running:
        yield running


def test_group_chat_fans_out_through_the_real_stream(server):
    customer_id = str(uuid.uuid4())
    agents = [str(uuid.uuid4()) for _ in range(3)]
    api = {a: server.api(customer_id, a, name=f"agent{i}") for i, a in enumerate(agents)}
    customer = server.api(customer_id)

    status, chat = customer.call("POST", "/chats", {
        "type": "group", "owner_id": agents[0], "participant_ids": agents, "name": "team", "detail": "e2e",
    })
    assert status == 200, chat
    rooms = {}
    for agent in agents:
        status, page = api[agent].call("GET", "/chatrooms")
        assert status == 200 and len(page["result"]) == 1, page
        rooms[agent] = page["result"][0]["id"]

    sent = []
    for i, agent in enumerate(agents):
        status, copy = api[agent].call("POST", "/chatroommessages", {"chatroom_id": rooms[agent], "text": f"hi {i}"})
        assert status == 200 and copy["chatroom_id"] == rooms[agent], copy
        sent.append(copy["messagechat_id"])
    status, message = customer.call("POST", "/chatmessages", {
        "chat_id": chat["id"], "source": {"type": "agent", "target": agents[0]}, "type": "normal", "text": "from admin",
    })
    assert status == 200, message
    sent.append(message["id"])

    def every_copy_arrived():
        for agent in agents:
            status, page = api[agent].call("GET", f"/chatroommessages?chatroom_id={rooms[agent]}")
            assert status == 200, page
            if sorted(m["messagechat_id"] for m in page["result"]) != sorted(sent):
                return False
        return True

    assert eventually(every_copy_arrived), "copies did not reach every chatroom"

    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) == 0, server.output()
    with socket.socket() as s:
        # Nobody listens there any more (SO_REUSEADDR only steps over TIME_WAIT).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", server.port))
        s.listen()
