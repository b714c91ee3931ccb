"""Send limits per agent and per customer (services/limits.py): 429 with
Retry-After over them, nothing written, the Idempotency-Key left unused;
exact under 100 concurrent sends through the local server."""

import http.client
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.services import limits
from tests.helpers import assert_error, chatmessages_of, create_chat, ok, room_of
from tests.local_server import LocalServer

# A window longer than any test: its number stays the same while a test runs,
# so the counts are exact (as if the limits refilled at a tiny rate).
FIXED_WINDOW = str(10**9)


class FakeClock:
    def __init__(self, now):
        self.now = now

    def time(self):
        return self.now


@pytest.fixture
def limited(monkeypatch):
    """Small limits: 3 sends per agent and 5 per customer in each window of 2 s."""
    monkeypatch.setenv("CHAT_SEND_WINDOW_SECONDS", "2")
    monkeypatch.setenv("CHAT_AGENT_SENDS_PER_WINDOW", "3")
    monkeypatch.setenv("CHAT_CUSTOMER_SENDS_PER_WINDOW", "5")
    clock = FakeClock(2_000_000_000.25)  # a quarter second into a window
    monkeypatch.setattr(limits, "time", clock)
    return clock


def send(caller, chat, text="hi", headers=None):
    return caller.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": text}, headers=headers)


def test_an_agent_over_its_limit_gets_429_with_retry_after_and_nothing_is_written(
        customer, make_agent, limited, fanout):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    for number in range(3):
        ok(send(a, chat, f"m{number}"))
    refused = send(a, chat, "one too many")
    assert_error(refused, 429)
    assert refused.json_body["Code"] == "TooManyRequestsError"
    assert refused.headers["Retry-After"] == "2"  # 1.75 s left in the window, in whole seconds, rounded up
    assert f"agent {a.id} may send 3 messages every 2 s" in refused.json_body["Message"]
    assert sorted(m["text"] for m in chatmessages_of(a, chat)) == ["m0", "m1", "m2"]
    # the other agent has a limit of their own; reading costs nothing against any
    ok(send(b, chat, "b's own"))
    ok(a.get(f"/v1.0/chatmessages?chat_id={chat['id']}"))
    fanout.drain()  # the limit's own items in the stream are nobody's business
    # the next window lets a send again
    limited.now += 2
    ok(send(a, chat, "next window"))


def test_the_customer_limit_counts_all_its_agents_and_its_own_token(customer, make_agent, limited):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    for caller in (a, a, b, b, customer):
        ok(send(caller, chat))
    refused = send(b, chat)
    assert_error(refused, 429)
    assert f"customer {customer.customer_id} (all its agents together) may send 5" in refused.json_body["Message"]
    assert_error(send(customer, chat), 429)
    assert len(chatmessages_of(customer, chat)) == 5


def test_another_customer_is_not_held_back(customer, make_agent, other_customer, limited):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    for _ in range(5):
        ok(send(customer, chat))
    assert_error(send(customer, chat), 429)
    x, y = (make_agent(customer=other_customer.customer_id) for _ in range(2))
    ok(send(x, create_chat(other_customer, x, y)))


def test_a_refused_send_leaves_its_idempotency_key_unused(customer, make_agent, limited, monkeypatch):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    for _ in range(3):
        ok(send(a, chat))
    key = {"Idempotency-Key": "limited-1"}
    assert_error(send(a, chat, "first try", headers=key), 429)
    monkeypatch.setenv("CHAT_AGENT_SENDS_PER_WINDOW", "4")
    # had the refused send claimed the key, another body with it would be 409
    stored = ok(send(a, chat, "second try", headers=key))
    assert stored["text"] == "second try"
    texts = [m["text"] for m in chatmessages_of(a, chat)]
    assert texts.count("second try") == 1 and "first try" not in texts


def test_chatroommessages_count_against_the_same_limits(customer, make_agent, limited):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    room = room_of(a, chat)
    for _ in range(2):
        ok(send(a, chat))
    ok(a.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "third"}))
    refused = a.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "fourth"})
    assert_error(refused, 429)
    assert int(refused.headers["Retry-After"]) >= 1


def test_limits_are_settings_that_must_be_positive_integers(monkeypatch):
    from chalicelib import config

    monkeypatch.setenv("CHAT_AGENT_SENDS_PER_WINDOW", "0")
    with pytest.raises(RuntimeError, match="CHAT_AGENT_SENDS_PER_WINDOW must be a positive integer"):
        config.load()
    monkeypatch.delenv("CHAT_AGENT_SENDS_PER_WINDOW")
    monkeypatch.delenv("CHAT_CUSTOMER_SENDS_PER_WINDOW")
    defaults = config.load()
    assert (defaults.send_window_seconds, defaults.agent_sends_per_window, defaults.customer_sends_per_window) \
        == (2, 20, 200)  # 10 and 100 a second


# ---- under concurrency, through the local server --------------------------------------------

def _post(port, token, path, body):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request("POST", f"/v1.0{path}", json.dumps(body),
                           {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.getheader("Retry-After"), json.loads(response.read())
    finally:
        connection.close()


def test_100_concurrent_sends_from_one_agent_accept_exactly_the_burst():
    """The default burst of 20 per agent, in a window that does not end during the test."""
    env = {"CHAT_SEND_WINDOW_SECONDS": FIXED_WINDOW, "CHAT_AGENT_SENDS_PER_WINDOW": "20",
           "CHAT_CUSTOMER_SENDS_PER_WINDOW": "200"}
    customer_id, a, b = (str(uuid.uuid4()) for _ in range(3))
    with LocalServer(env=env) as server:
        admin = server.api(customer_id)
        status, chat = admin.call("POST", "/chats", {"type": "normal", "owner_id": a, "participant_ids": [a, b]})
        assert status == 200, chat
        token = server.token(customer_id, a, name="alice")
        with ThreadPoolExecutor(100) as pool:
            answers = list(pool.map(lambda n: _post(server.port, token, "/chatmessages",
                                                    {"chat_id": chat["id"], "text": f"m{n}"}), range(100)))
        statuses = sorted(status for status, _, _ in answers)
        assert statuses == [200] * 20 + [429] * 80, statuses
        assert all(retry_after.isdigit() and int(retry_after) >= 1
                   for status, retry_after, _ in answers if status == 429)
        status, page = admin.call("GET", f"/chatmessages?chat_id={chat['id']}&page_size=100")
        assert status == 200 and len(page["result"]) == 20
