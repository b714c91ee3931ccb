"""End to end: the `make run` server as a subprocess, spoken to over real HTTP."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from chalicelib import auth

ROOT = Path(__file__).resolve().parent.parent
SECRET = "e2e-secret-e2e-secret-e2e-secret-e2e-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(check, deadline_seconds=20.0, interval=0.05):
    """Poll until check() returns something truthy or the deadline passes."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


class Api:
    def __init__(self, base, token):
        self.base, self.token = base, token

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "text/plain"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")


@pytest.fixture
def server():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "AWS_"))}
    env.update(CHAT_PORT=str(port), CHAT_WS_PORT=str(free_port()), CHAT_JWT_SECRET=SECRET, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local.run"], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}/v1.0"

    def answers():
        try:
            urllib.request.urlopen(f"{base}/chats", timeout=1)
        except urllib.error.HTTPError:
            return True  # 401 without a token: it is up
        except OSError:
            return process.poll() is not None  # stop waiting if it died
        return True

    assert eventually(answers, 60), "server did not start"
    assert process.poll() is None, process.stdout.read()
    yield base, port, process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_group_chat_fans_out_through_the_real_stream(server):
    base, port, process = server
    customer_id = str(uuid.uuid4())
    agents = [str(uuid.uuid4()) for _ in range(3)]
    api = {a: Api(base, auth.mint(SECRET, customer_id=customer_id, agent_id=a, name=f"agent{i}", permission=16))
           for i, a in enumerate(agents)}
    customer = Api(base, auth.mint(SECRET, customer_id=customer_id))

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

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    with socket.socket() as s:
        # Nobody listens there any more (SO_REUSEADDR only steps over TIME_WAIT).
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()
