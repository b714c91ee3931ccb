"""The make run server under concurrent clients, stopped with Ctrl-C, and
refusing requests too large to read: the server as a subprocess, over real
sockets."""

import http.client
import json
import signal
import threading
import time
import uuid

import pytest
from websockets.sync.client import connect

from tests.local_server import LocalServer, free_port
from tests.test_local_durability import list_all

CLIENTS = 64
ROUNDS = 2
CHATS = 4


@pytest.fixture(scope="module")
def server():
    with LocalServer() as running:
        yield running


def post(port, token, path, body):
    """One request on a connection of its own (as many clients at once as there are threads)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", f"/v1.0{path}", json.dumps(body),
                           {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_64_concurrent_clients_get_no_reset_and_every_write_is_stored(server):
    customer_id = str(uuid.uuid4())
    customer = server.api(customer_id)
    chats = []
    for _ in range(CHATS):
        pair = [str(uuid.uuid4()), str(uuid.uuid4())]
        status, chat = customer.call("POST", "/chats", {"type": "normal", "owner_id": pair[0], "participant_ids": pair})
        assert status == 200, chat
        chats.append((chat["id"], pair[0]))

    token = server.token(customer_id)
    start = threading.Barrier(CLIENTS)
    stored, failures = [], []

    def client(k):
        chat_id, agent = chats[k % CHATS]
        for round_ in range(ROUNDS):
            try:
                start.wait(timeout=60)  # every client connects at the same moment, each round
            except threading.BrokenBarrierError:
                pass
            try:
                status, body = post(server.port, token, "/chatmessages", {
                    "chat_id": chat_id, "source": {"type": "agent", "target": agent}, "type": "normal",
                    "text": f"client {k} round {round_}"})
            except (OSError, http.client.HTTPException) as error:
                failures.append(repr(error))
                continue
            if status == 200:
                stored.append((chat_id, body["id"]))
            else:
                failures.append(f"{status} {body}")

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    seconds = time.monotonic() - started

    assert not failures, f"{len(failures)} of {CLIENTS * ROUNDS} failed, e.g. {failures[:5]}"
    assert len(stored) == CLIENTS * ROUNDS
    for chat_id, _ in chats:
        listed = {m["id"] for m in list_all(customer, f"/chatmessages?chat_id={chat_id}")}
        sent = {message for chat, message in stored if chat == chat_id}
        assert sent <= listed, f"{len(sent - listed)} answered writes not stored"
    log = server.output()
    assert "Connection pool is full" not in log
    assert " ERROR " not in log, log[-3000:]
    print(f"{CLIENTS} clients x {ROUNDS} rounds: {len(stored)} stored, 0 failed, {seconds:.1f} s")


@pytest.mark.parametrize(("where", "status", "code"), [
    ("query", 414, "URITooLongError"),
    ("header", 431, "RequestHeaderFieldsTooLargeError"),
])
def test_a_100_kb_token_gets_the_json_error_shape(server, where, status, code):
    token = "x" * 100_000
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        if where == "query":
            connection.request("GET", f"/v1.0/chats?token={token}")
        else:
            connection.request("GET", "/v1.0/chats", headers={"Authorization": f"Bearer {token}"})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == status
    assert response.getheader("Content-Type") == "application/json"
    error = json.loads(body)
    assert set(error) == {"Code", "Message"} and error["Code"] == code, error
    # The server is still fine.
    assert server.api(str(uuid.uuid4())).call("GET", "/chats")[0] == 200


def test_ctrl_c_stops_it_in_under_2_seconds():
    ws_port = free_port()
    with LocalServer(env={"CHAT_WS_PORT": str(ws_port)}) as server:
        customer_id = str(uuid.uuid4())
        api = server.api(customer_id)
        assert api.call("GET", "/chats")[0] == 200
        # A websocket client and a kept-alive HTTP connection are open at the time.
        idle = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        idle.request("GET", "/v1.0/chats", headers={"Authorization": f"Bearer {server.token(customer_id)}"})
        assert idle.getresponse().read()
        with connect(f"ws://127.0.0.1:{ws_port}/?token={server.token(customer_id)}", open_timeout=10):
            started = time.monotonic()
            status = server.kill_group(signal.SIGINT)  # what Ctrl-C in make run's terminal does
            seconds = time.monotonic() - started
        idle.close()
        assert status == 0, server.output()[-3000:]
        assert seconds < 2.0, f"Ctrl-C took {seconds:.2f} s"
        print(f"Ctrl-C: stopped in {seconds:.2f} s")
