"""A group at the contract's limit through the `make run` server: 1,000 agents,
one message copied into every chatroom, a participant removed; and another
customer's 1:1 chat is not held back by the large fan-out meanwhile.

Chatrooms and copies are read from the server's own DynamoDB (its embedded
moto, on a port the test gives it) by key: the member items (one Query), the
copies by their derived ids (BatchGetItem, 100 a request), then once the
relation index, to count each chatroom's copies. Reading them through the API
would take 1,000 requests; the API is checked on a sample. Every wait has a
deadline."""

import time
import uuid
from collections import Counter

import boto3
import pytest

from chalicelib.clock import NOT_DELETED
from chalicelib.storage.models import META, ChatItem, ChatMemberItem, ChatroomItem, ChatroommessageItem
from chalicelib.storage.table import RELATION_INDEX
from tests.local_server import Api, LocalServer, free_port

SIZE = 1000
TABLE = "chat"  # the server's default
SAMPLE = 20  # chatrooms read through the API
CREATE_TIMEOUT = 120.0  # seconds: the create answers in 5 to 15 on a loaded 2-core machine
FANOUT_DEADLINE = 180.0
ONE_TO_ONE_SECONDS = 5.0  # "within a few seconds", if it does not come before the large fan-out is done


@pytest.fixture(scope="module")
def server():
    port = free_port()
    with LocalServer(env={"CHAT_EPHEMERAL": "1", "CHAT_DYNAMODB_PORT": str(port)}) as running:
        running.dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                                        aws_access_key_id="local", aws_secret_access_key="local")
        yield running


def member_rooms(dynamodb, customer_id, chat_id) -> dict[str, str]:
    """agent id -> chatroom id, from the chat's member items (one Query, paged)."""
    rooms, start = {}, None
    while True:
        page = dynamodb.query(
            TableName=TABLE, KeyConditionExpression="pk = :p AND begins_with(sk, :m)", ConsistentRead=True,
            ExpressionAttributeValues={":p": {"S": ChatItem.key(customer_id, chat_id)},
                                       ":m": {"S": ChatMemberItem.SORT_PREFIX}},
            **({"ExclusiveStartKey": start} if start else {}))
        rooms.update({item["agent_id"]["S"]: item["chatroom_id"]["S"] for item in page["Items"]})
        start = page.get("LastEvaluatedKey")
        if not start:
            return rooms


class Copies:
    """The copies of one chatmessage not found yet, looked up by their derived
    keys; a copy once there stays, so each poll asks only for the missing."""

    def __init__(self, dynamodb, customer_id, message_id, rooms):
        self.dynamodb = dynamodb
        self.missing = {ChatroommessageItem.key(customer_id, ChatroommessageItem.derived_id(message_id, room))
                        for room in rooms}
        self.total = len(self.missing)

    def poll(self) -> int:
        wanted = sorted(self.missing)
        for start in range(0, len(wanted), 100):
            request = {TABLE: {"Keys": [{"pk": {"S": pk}, "sk": {"S": META}} for pk in wanted[start:start + 100]],
                               "ProjectionExpression": "pk", "ConsistentRead": True}}
            while request:
                page = self.dynamodb.batch_get_item(RequestItems=request)
                self.missing -= {item["pk"]["S"] for item in page["Responses"].get(TABLE, [])}
                request = page.get("UnprocessedKeys") or {}
        return self.total - len(self.missing)

    def complete(self) -> bool:
        return self.poll() == self.total


def copies_per_room(dynamodb, customer_id, message_id) -> Counter:
    """chatroom id -> copies of the message in it, from the relation index."""
    found, start = Counter(), None
    while True:
        page = dynamodb.query(
            TableName=TABLE, IndexName=RELATION_INDEX, KeyConditionExpression="gsi2pk = :p",
            ExpressionAttributeValues={":p": {"S": ChatroommessageItem.by_message_key(customer_id, message_id)}},
            ProjectionExpression="gsi2sk", **({"ExclusiveStartKey": start} if start else {}))
        found.update(item["gsi2sk"]["S"] for item in page["Items"])
        start = page.get("LastEvaluatedKey")
        if not start:
            return found


def wait(check, deadline, interval, what):
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < deadline, f"{what}: not within {deadline:.0f} s"
        time.sleep(interval)
    return time.monotonic() - started


def test_a_1000_agent_group_gets_every_copy_and_another_chat_is_not_held_back(server, request):
    dynamodb = server.dynamodb
    a_id, b_id = str(uuid.uuid4()), str(uuid.uuid4())
    a = Api(server.base, server.token(a_id), timeout=CREATE_TIMEOUT)
    b = server.api(b_id)
    agents = [str(uuid.uuid4()) for _ in range(SIZE)]
    pair_agents = [str(uuid.uuid4()), str(uuid.uuid4())]

    status, pair = b.call("POST", "/chats", {"type": "normal", "owner_id": pair_agents[0],
                                             "participant_ids": pair_agents})
    assert status == 200, pair
    pair_rooms = member_rooms(dynamodb, b_id, pair["id"])

    started = time.monotonic()
    status, group = a.call("POST", "/chats", {"type": "group", "owner_id": agents[0], "participant_ids": agents,
                                              "name": "a thousand"})
    create_seconds = time.monotonic() - started
    assert status == 200, group
    assert len(group["participant_ids"]) == SIZE
    rooms = member_rooms(dynamodb, a_id, group["id"])
    assert set(rooms) == set(agents) and len(set(rooms.values())) == SIZE

    sent = time.monotonic()
    status, message = a.call("POST", "/chatmessages", {
        "chat_id": group["id"], "source": {"type": "agent", "target": agents[0]}, "type": "normal",
        "text": "to all of you"})
    assert status == 200, message
    large = Copies(dynamodb, a_id, message["id"], rooms.values())

    # Another customer's 1:1 message, while the large fan-out runs.
    status, small = b.call("POST", "/chatmessages", {
        "chat_id": pair["id"], "source": {"type": "agent", "target": pair_agents[0]}, "type": "normal",
        "text": "meanwhile"})
    assert status == 200, small
    small_sent = time.monotonic()
    one_to_one = wait(Copies(dynamodb, b_id, small["id"], pair_rooms.values()).complete, FANOUT_DEADLINE, 0.05,
                      "the 1:1 message's copies")
    large_then = large.poll()
    assert large_then < SIZE or one_to_one <= ONE_TO_ONE_SECONDS, (
        f"the 1:1 message was copied only after the large fan-out was done, in {one_to_one:.1f} s")

    wait(large.complete, FANOUT_DEADLINE - (time.monotonic() - sent), 0.5, "every copy of the large message")
    all_copies = time.monotonic() - sent
    per_room = copies_per_room(dynamodb, a_id, message["id"])
    assert set(per_room) == set(rooms.values())
    assert set(per_room.values()) == {1}, "a chatroom with more than one copy"

    leaving = agents[-1]
    status, changed = a.call("DELETE", f"/chats/{group['id']}/participant_ids/{leaving}")
    assert status == 200, changed
    status, chat = a.call("GET", f"/chats/{group['id']}")
    assert status == 200 and len(chat["participant_ids"]) == SIZE - 1 and leaving not in chat["participant_ids"]
    gone = dynamodb.get_item(TableName=TABLE, ConsistentRead=True, Key={
        "pk": {"S": ChatroomItem.key(a_id, rooms[leaving])}, "sk": {"S": META}})["Item"]
    assert gone["tm_delete"]["S"] != NOT_DELETED
    status, page = server.api(a_id, leaving).call("GET", "/chatrooms")
    assert status == 200 and page["result"] == []
    assert set(member_rooms(dynamodb, a_id, group["id"])) == set(agents[:-1])

    for agent in [agents[0]] + agents[1:-1:(SIZE - 2) // (SAMPLE - 1)][:SAMPLE - 1]:
        status, room = server.api(a_id, agent).call("GET", f"/chatrooms/{rooms[agent]}")
        assert status == 200, room
        assert len(room["participant_ids"]) == SIZE - 1 and leaving not in room["participant_ids"]
        assert room["unread_count"] == (0 if agent == agents[0] else 1), (agent, room["unread_count"])
        assert room["last_chatroommessage"]["text"] == "to all of you"

    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\nlarge group: create {create_seconds:.1f} s; every copy {all_copies:.1f} s after the send; "
              f"the 1:1 copied {one_to_one:.2f} s after its send ({small_sent - sent:.2f} s after the large one), "
              f"when {large_then} of {SIZE} large copies were there")
