"""Delivery at the contract's scale (README, "Real-time events"): a 1,000-agent
group, every member connected, pushes through a stand-in of API Gateway's
management API that takes 20 ms a post as AWS does, a bus whose every
PutEvents request is checked against AWS's limits, and the stream's real
records handed to the handler in Lambda's batches of 100."""

import json
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass
from types import SimpleNamespace

import boto3
import botocore.client
import pytest

from chalicelib.services import delivery
from tests.conftest import REGION, Caller
from tests.helpers import ok
from tests.test_realtime import connect

GROUP = 1000
POST_SECONDS = 0.020  # a post_to_connection on AWS takes tens of milliseconds
LAMBDA_BATCH = 100


class GoneException(Exception):
    pass


@dataclass
class Post:
    connection_id: str
    body: bytes
    started: float
    ended: float

    @property
    def message(self) -> dict:
        return json.loads(self.body)


class StandInManagementApi:
    """post_to_connection that takes POST_SECONDS, counting the posts in flight."""

    exceptions = SimpleNamespace(GoneException=GoneException)

    def __init__(self, gone=()):
        self.posts: list[Post] = []
        self.gone = set(gone)
        self.in_flight = self.most_in_flight = 0
        self._lock = threading.Lock()

    def post_to_connection(self, ConnectionId, Data):  # noqa: N803 (boto3's names)
        assert isinstance(Data, bytes) and len(Data) <= delivery.PUSH_MAX_BYTES, len(Data)
        with self._lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        started = time.perf_counter()
        try:
            time.sleep(POST_SECONDS)
            if ConnectionId in self.gone:
                raise GoneException(ConnectionId)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.posts.append(Post(ConnectionId, Data, started, time.perf_counter()))
        return {}

    def of(self, connection_id) -> list[dict]:
        return [post.message for post in sorted(self.posts, key=lambda p: p.started)
                if post.connection_id == connection_id]


@pytest.fixture(scope="module")
def group(module_client, module_fanout):
    """GROUP agents of one customer in one group chat, each with a live connection."""
    customer = Caller(module_client, str(uuid.uuid4()))
    agents = [Caller(module_client, customer.customer_id, str(uuid.uuid4()), "agent", 16) for _ in range(GROUP)]
    chat = ok(customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id,
                                            "participant_ids": [agent.id for agent in agents]}))
    module_fanout.drain()
    connection_of = {agent.id: connect(agent) for agent in agents}
    return SimpleNamespace(customer=customer, agents=agents, chat=chat, connection_of=connection_of)




def handle_in_lambda_batches(fanout) -> float:
    """Run the handler over what the stream holds, in Lambda's batches of 100
    (tests/conftest.Fanout), until the stream is quiet; returns when it started
    (perf_counter)."""
    started = time.perf_counter()
    fanout.drain(rounds=200)
    return started


def send(group, text: str) -> dict:
    return ok(group.customer.post("/v1.0/chatmessages", {"chat_id": group.chat["id"], "text": text}))


@pytest.fixture
def put_events(module_aws, monkeypatch):
    """A bus for the test, and every PutEvents request made: each refused, as
    AWS refuses it, when over 10 entries or 256 KiB (AWS's entry size)."""
    name = f"bus-{uuid.uuid4().hex[:8]}"
    boto3.client("events", region_name=REGION).create_event_bus(Name=name)
    monkeypatch.setenv("CHAT_EVENT_BUS", name)
    requests = []
    make_api_call = botocore.client.BaseClient._make_api_call

    def checked(client, operation_name, api_params):
        if operation_name == "PutEvents":
            entries = api_params["Entries"]
            requests.append(entries)
            assert len(entries) <= 10, len(entries)
            assert sum(delivery.entry_size(entry) for entry in entries) <= 256 * 1024
        return make_api_call(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", checked)
    return requests


def test_a_message_to_1000_connected_agents_is_pushed_concurrently_in_a_few_kib_each(group, module_fanout,
                                                                                     management, put_events):
    message = send(group, "x" * 100)
    started = handle_in_lambda_batches(module_fanout)

    created = [post for post in management.posts if post.message["type"] == "messagechat_created"]
    assert sorted(post.connection_id for post in created) == sorted(group.connection_of.values())
    assert {post.message["data"]["id"] for post in created} == {message["id"]}
    # posts overlapped (the pool holds 32), where one after another 1,000 would take 20 s. The
    # seconds to the last member are bench's to measure: here moto, in this process, slows both the
    # connections' lookup and the pushing threads (its CPU holds the GIL).
    assert management.most_in_flight >= delivery.PUSHES_AT_ONCE // 2, management.most_in_flight
    first = min(post.started for post in created)
    wave = max(post.ended for post in created) - first
    assert wave < GROUP * POST_SECONDS / 4, wave
    print(f"messagechat_created to {GROUP}: pushed in {wave:.2f} s, from {first - started:.2f} s after the "
          f"handler started; {management.most_in_flight} posts at once at most")

    pushed_bytes = defaultdict(int)
    for post in management.posts:
        pushed_bytes[post.connection_id] += len(post.body)
    for connection_id in group.connection_of.values():
        # each member's events in order, one task per connection: never two posts to one connection at once
        posts = sorted((p for p in management.posts if p.connection_id == connection_id), key=lambda p: p.started)
        assert all(before.ended <= after.started for before, after in zip(posts, posts[1:], strict=False))
        assert sorted(post.message["type"] for post in posts) == [
            "chatroom_read_state", "messagechat_created", "messagechatroom_created"]
        assert pushed_bytes[connection_id] <= 4096, pushed_bytes[connection_id]
    # the read state, not the chatroom with its 1,000 participants
    read_state = next(message for message in management.of(group.connection_of[group.agents[1].id])
                      if message["type"] == "chatroom_read_state")
    assert "participant_ids" not in read_state["data"] and read_state["data"]["unread_count"] >= 1
    assert read_state["data"]["last_chatroommessage"]["text"] == "x" * 100
    # the bus: the chat-level event alone (at most 3 per message, whatever the group's size)
    assert [entry["DetailType"] for request in put_events for entry in request] == ["messagechat_created"]


def test_a_10000_character_hangul_message_to_1000_agents_with_every_event_on_the_bus(
        group, module_fanout, management, put_events, monkeypatch):
    monkeypatch.setenv("CHAT_BUS_CHATROOM_EVENTS", "1")
    text = "\ud55c" * 10_000  # Hangul: 3 bytes a character in UTF-8
    message = send(group, text)
    handle_in_lambda_batches(module_fanout)  # asserts no record failed

    entries = [entry for request in put_events for entry in request]
    assert Counter(entry["DetailType"] for entry in entries) == Counter(
        {"messagechat_created": 1, "messagechatroom_created": GROUP, "chatroom_read_state": GROUP})
    # cut by size (checked in put_events): a 30 KB copy event leaves room for 8 to a request, not 10
    assert max(len(request) for request in put_events
               if {entry["DetailType"] for entry in request} == {"messagechatroom_created"}) == 8
    assert json.loads(next(e for e in entries if e["DetailType"] == "messagechat_created")["Detail"])["text"] == text
    for connection_id in group.connection_of.values():  # every agent pushed each event once
        kinds = Counter(message["type"] for message in management.of(connection_id))
        assert kinds == Counter(["messagechat_created", "messagechatroom_created", "chatroom_read_state"])
    pushed = next(post for post in management.posts if post.message["type"] == "messagechat_created")
    assert pushed.message["data"]["text"] == text and pushed.message["data"]["id"] == message["id"]
    assert len(pushed.body) < 3 * 10_000 + 1024  # not 6 bytes a character as \u escapes
