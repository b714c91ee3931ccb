"""Groups at the contract's limit: membership stored once (in the chat),
events pushed to N recipients with their connections found in at most
1 + ceil(N/100) requests, and chats written before member items existed
still working (indexed on first use, or by devtools.migrate)."""

import math
import uuid
from collections import Counter, defaultdict
from unittest import mock

import botocore.client
import pytest

import app as chat_app
from chalicelib.clock import now
from chalicelib.services import delivery
from chalicelib.storage.models import (
    ChatItem,
    ChatmessageItem,
    ChatroomItem,
    ChatroommessageItem,
    TableItem,
    list_sort_key,
)
from devtools import migrate
from tests.conftest import DYNAMODB, TABLE
from tests.helpers import insert_of, room_of, rooms_of
from tests.test_realtime import connect


@pytest.fixture
def dynamodb_calls(monkeypatch):
    calls = []
    original = botocore.client.BaseClient._make_api_call

    def counting(client, operation_name, api_params):
        if client.meta.service_model.service_name == "dynamodb":
            calls.append(operation_name)
        return original(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


@pytest.fixture
def pushed(monkeypatch):
    received = defaultdict(list)
    monkeypatch.setenv("CHAT_WEBSOCKET_ENDPOINT", "http://127.0.0.1:9/unused")
    monkeypatch.setattr(delivery, "push", lambda endpoint, cid, message: received[cid].append(message) or True)
    return received


def test_an_event_to_250_recipients_finds_their_connections_in_1_plus_ceil_n_over_100_requests(
        customer, make_agent, fanout, pushed, dynamodb_calls):
    agents = [make_agent() for _ in range(250)]
    chat = customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id,
                                         "participant_ids": [a.id for a in agents]}).json_body
    fanout.drain()
    connection_of = {agent.id: connect(agent) for agent in agents}
    message = customer.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "all hands"}).json_body
    insert = insert_of(fanout.read_event(limit=1000), message)
    dynamodb_calls.clear()
    assert fanout.invoke({"Records": [insert]}) == {"batchItemFailures": []}
    lookups = Counter(call for call in dynamodb_calls if call in ("GetItem", "BatchGetItem"))
    # the chat (who is in it), then the 250 agents' and the customer feed's audiences, 100 to a request
    assert lookups == Counter({"GetItem": 1, "BatchGetItem": math.ceil(251 / 100)})
    for agent in agents:
        assert [m["type"] for m in pushed[connection_of[agent.id]]] == ["messagechat_created"]


# ---- chats written before member items -----------------------------------------------

def legacy_chat(customer_id, agents):
    """A chat and its chatrooms as the previous version wrote them: every chatroom with
    the whole participant list, found through the relation index, no status or members."""
    tm = now()
    participants = sorted(agent.id for agent in agents)
    chat_id = str(uuid.uuid4())
    chat = ChatItem(ChatItem.key(customer_id, chat_id), id=chat_id, customer_id=customer_id, type="group",
                    owner_id=agents[0].id, participant_ids=participants, name="old", detail="", tm_create=tm,
                    tm_update=tm, gsi1pk=ChatItem.list_key(customer_id), gsi1sk=list_sort_key(tm, chat_id), version=1)
    chat.save()
    for agent in agents:
        room_id = ChatroomItem.derived_id(chat_id, agent.id, 1)
        ChatroomItem(ChatroomItem.key(customer_id, room_id), id=room_id, customer_id=customer_id, type="group",
                     chat_id=chat_id, owner_id=agent.id, participant_ids=participants, name="old", detail="",
                     tm_create=tm, tm_update=tm, chat_version=1,
                     gsi1pk=ChatroomItem.list_key(customer_id, agent.id), gsi1sk=list_sort_key(tm, room_id),
                     gsi2pk=ChatroomItem.by_chat_key(customer_id, chat_id), gsi2sk=agent.id).save()
    return chat_id


def test_a_chat_written_before_member_items_renders_sends_fans_out_and_changes(customer, make_agent, fanout):
    agents = [make_agent() for _ in range(3)]
    chat_id = legacy_chat(customer.customer_id, agents)
    fanout.drain()
    room = room_of(customer, chat_id, owner=agents[1])
    assert room["participant_ids"] == sorted(a.id for a in agents) and room["type"] == "group"

    sent = agents[1].post("/v1.0/chatmessages", {"chat_id": chat_id, "text": "still works"})
    assert sent.status_code == 200, sent.body
    stranger = make_agent()
    assert stranger.post("/v1.0/chatmessages", {"chat_id": chat_id, "text": "x"}).status_code == 403
    fanout.drain()
    for agent in agents:
        copies = agent.get(f"/v1.0/chatroommessages?chatroom_id={room_of(customer, chat_id, owner=agent)['id']}")
        assert [c["text"] for c in copies.json_body["result"]] == ["still works"]

    newcomer = make_agent()
    added = agents[0].post(f"/v1.0/chats/{chat_id}/participant_ids", {"participant_id": newcomer.id})
    assert added.status_code == 200, added.body
    removed = agents[0].delete(f"/v1.0/chats/{chat_id}/participant_ids/{agents[2].id}")
    assert removed.status_code == 200, removed.body
    assert rooms_of(customer, agents[2].id) == []
    agents[0].post("/v1.0/chatmessages", {"chat_id": chat_id, "text": "after"})
    fanout.drain()
    for agent in (agents[0], agents[1], newcomer):
        room = room_of(customer, chat_id, owner=agent)
        assert sorted(room["participant_ids"]) == sorted([agents[0].id, agents[1].id, newcomer.id])
        texts = [c["text"] for c in agent.get(f"/v1.0/chatroommessages?chatroom_id={room['id']}").json_body["result"]]
        assert texts[0] == "after"


def test_the_migration_indexes_every_old_chat_once(customer, make_agent, fanout, capsys):
    old = [legacy_chat(customer.customer_id, [make_agent() for _ in range(3)]) for _ in range(3)]
    assert migrate.main([]) == 0
    assert "3 chats indexed" in capsys.readouterr().out
    assert all(ChatItem.get(ChatItem.key(customer.customer_id, chat_id), "#").members_indexed for chat_id in old)
    assert migrate.main([]) == 0
    assert "0 chats indexed" in capsys.readouterr().out


def test_events_of_chatrooms_show_their_chats_list(customer, make_agent, fanout, pushed):
    a, b = make_agent(), make_agent()
    connection = connect(a)
    chat = customer.post("/v1.0/chats", {"type": "normal", "owner_id": a.id,
                                         "participant_ids": [a.id, b.id]}).json_body
    fanout.drain()
    [created] = [m for m in pushed[connection] if m["type"] == "chatroom_created"]
    assert created["data"]["participant_ids"] == chat["participant_ids"] and created["data"]["type"] == "normal"
    assert chat_app  # the handler the fan-out fixture calls


# ---- a create cut short, completed by the stream ----------------------------------------

@pytest.fixture
def no_grace(monkeypatch):
    """The stream handler takes a create cut short for one still running for
    30 s: here it is taken to have died at once."""
    from chalicelib.services import fanout as fanout_service

    monkeypatch.setattr(fanout_service, "CREATE_GRACE_SECONDS", 0.0)


def _cut_short_group(customer, make_agent, size=60):
    """A group whose create wrote its transaction (the chat and 48 chatrooms and
    members) and failed before the rest: the chat is there, and answered 200."""
    from chalicelib.services import chats

    agents = [make_agent() for _ in range(size)]
    with mock.patch.object(chats.ChatroomItem, "batch_write", side_effect=RuntimeError("the create died here")):
        response = customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id,
                                                 "participant_ids": [a.id for a in agents]})
    assert response.status_code == 200  # the chat committed: its create succeeded, the stream finishes it
    [chat] = [c for c in customer.get("/v1.0/chats").json_body["result"] if c["owner_id"] == agents[0].id]
    return agents, chat


def _members(chat_id, customer_id):
    from chalicelib.services import membership

    return {m.agent_id: m.chatroom_id for m in membership.members(customer_id, chat_id)}


def test_the_stream_completes_a_large_create_cut_short(customer, make_agent, fanout, no_grace):
    agents, chat = _cut_short_group(customer, make_agent)
    assert len(_members(chat["id"], customer.customer_id)) == 48
    fanout.drain()
    members = _members(chat["id"], customer.customer_id)
    assert set(members) == {a.id for a in agents}
    for agent in agents:
        assert room_of(agent, chat)["id"] == members[agent.id]


def test_completing_a_create_never_brings_back_a_participant_removed_meanwhile(customer, make_agent, fanout,
                                                                              monkeypatch, no_grace):
    """The removal lands between the stream's read of the chat and its writes: the
    chat's version, checked in every write, makes it read again."""
    from chalicelib.services import fanout as fanout_service

    agents, chat = _cut_short_group(customer, make_agent)
    present = _members(chat["id"], customer.customer_id)
    leaving = next(a for a in agents if a.id not in present)  # one of those the create left out
    read_chat = fanout_service.load
    removed = []

    def load_then_remove(*args):
        found = read_chat(*args)
        if not removed:
            removed.append(customer.delete(f"/v1.0/chats/{chat['id']}/participant_ids/{leaving.id}").status_code)
        return found

    monkeypatch.setattr(fanout_service, "load", load_then_remove)
    fanout.drain()
    assert removed == [200]
    members = _members(chat["id"], customer.customer_id)
    assert set(members) == {a.id for a in agents if a is not leaving}
    assert leaving.get("/v1.0/chatrooms").json_body["result"] == []


def test_completing_a_create_never_resets_a_chatroom_written_meanwhile(customer, make_agent, fanout, monkeypatch,
                                                                       no_grace):
    """The create's own writes finish, and a message is copied, between the
    stream's read of the members and its writes: it writes nothing over them."""
    from chalicelib.services import fanout as fanout_service
    from chalicelib.storage.models import ChatMemberItem

    agents, chat = _cut_short_group(customer, make_agent)
    read_chat = fanout_service.load
    sent = []

    def load_after_the_create_and_a_message(*args):
        found = read_chat(*args)
        if not sent:
            image = ChatItem.get(ChatItem.key(customer.customer_id, chat["id"]), "#")
            present = _members(chat["id"], customer.customer_id)
            for agent in [a for a in agents if a.id not in present]:
                room = ChatroomItem.for_participant(image, agent.id, image.tm_create)
                room.save()
                ChatMemberItem.of(room, image).save()
            message = customer.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "first"}).json_body
            assert fanout.invoke({"Records": [insert_of(fanout.read_event(), message)]}) == {"batchItemFailures": []}
            sent.append(message["id"])
        return found

    monkeypatch.setattr(fanout_service, "load", load_after_the_create_and_a_message)
    fanout.drain()
    assert sent
    wrong = [i for i, agent in enumerate(agents) if room_of(agent, chat)["unread_count"] != 1]
    assert not wrong, wrong
    for agent in agents:
        room = room_of(agent, chat)
        copies = agent.get(f"/v1.0/chatroommessages?chatroom_id={room['id']}").json_body["result"]
        assert [c["messagechat_id"] for c in copies] == sent


def test_the_stream_lets_a_create_still_writing_finish_and_writes_nothing_beside_it(customer, make_agent, fanout,
                                                                                    monkeypatch, dynamodb_calls):
    """The chat's INSERT is handled while the create writes its batches: the
    handler waits for the create's last member item (here: the create's batches
    run on the handler's first look), then finds nothing missing."""
    from chalicelib.services import chats
    from chalicelib.services import fanout as fanout_service

    agents = [make_agent() for _ in range(60)]
    batches = []
    real_batch_write = chats.ChatroomItem.batch_write

    def held_back():  # the create's batches, kept until the stream has seen the chat
        class Held:
            def __enter__(self):
                self.items = []
                return self

            def save(self, item):
                self.items.append(item)

            def __exit__(self, *exc):
                batches.append(self.items)

        return Held()

    with mock.patch.object(TableItem, "batch_write", held_back):  # the chatrooms' batch, then the members'
        chat = customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id,
                                             "participant_ids": [a.id for a in agents]}).json_body
    held = [item for batch in batches for item in batch]

    def create_goes_on(seconds):  # the handler's first wait: the create's batches land meanwhile
        if held:
            with real_batch_write() as batch:
                for item in held:
                    batch.save(item)
            held.clear()

    monkeypatch.setattr(fanout_service, "_sleep", create_goes_on)
    dynamodb_calls.clear()
    fanout.drain()
    assert not held, "the handler never waited"
    assert "TransactWriteItems" not in dynamodb_calls, "the handler wrote beside a create still running"
    members = _members(chat["id"], customer.customer_id)
    assert set(members) == {a.id for a in agents}


def test_a_large_create_whose_batches_come_back_unprocessed_answers_200_and_the_stream_finishes_it(
        customer, make_agent, fanout, no_grace, monkeypatch):
    """DynamoDB may hand a BatchWriteItem's puts back unprocessed (throttled):
    after the chat's transaction committed, the create has succeeded."""
    original = botocore.client.BaseClient._make_api_call

    def unprocessed(client, operation_name, api_params):
        if operation_name == "BatchWriteItem":
            return {"UnprocessedItems": api_params["RequestItems"]}
        return original(client, operation_name, api_params)

    agents = [make_agent() for _ in range(60)]
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", unprocessed)
    response = customer.post("/v1.0/chats", {"type": "group", "owner_id": agents[0].id,
                                             "participant_ids": [a.id for a in agents]})
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", original)
    assert response.status_code == 200, response.body
    assert len(_members(response.json_body["id"], customer.customer_id)) == 48
    fanout.drain()
    assert set(_members(response.json_body["id"], customer.customer_id)) == {a.id for a in agents}
    assert [c["id"] for c in customer.get("/v1.0/chats").json_body["result"]] == [response.json_body["id"]]


def test_a_1000_agent_create_paces_the_member_items_of_its_one_partition(customer, fake_clock, monkeypatch):
    """Member items live in the chat's partition (about 1,000 write units a
    second on AWS): past the transaction they are written at most
    MEMBER_WRITES_PER_SECOND a second, on a fake clock here."""
    from chalicelib.services import chats

    written = []  # (fake second, member items written)
    original = botocore.client.BaseClient._make_api_call

    def recording(client, operation_name, api_params):
        answer = original(client, operation_name, api_params)  # a batch refused (throttled) and retried counts once
        if operation_name == "BatchWriteItem":
            [requests] = api_params["RequestItems"].values()
            members = sum(r["PutRequest"]["Item"]["kind"] == {"S": "chat-member"} for r in requests)
            written.append((fake_clock["now"], members))
        return answer

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recording)
    ids = [str(uuid.uuid4()) for _ in range(1000)]
    response = customer.post("/v1.0/chats", {"type": "group", "owner_id": ids[0], "participant_ids": ids})
    assert response.status_code == 200, response.body
    assert sum(count for _, count in written) == 1000 - chats.TRANSACTION_ROOMS
    for start, _ in written:
        in_that_second = sum(count for when, count in written if start <= when < start + 1.0)
        assert in_that_second <= chats.MEMBER_WRITES_PER_SECOND, (start, in_that_second)


def test_the_migration_files_old_partitions_in_the_registry_for_exports_and_erasure(customer, make_agent, fanout,
                                                                                     bucket, capsys):
    """Partitions written before the registry (an old chat here, a message and a deleted copy without their
    registry or relation keys) are filed by the migration (its live chatrooms are found by their member
    items, which the migration writes first), then erased with the rest."""
    agents = [make_agent() for _ in range(3)]
    chat_id = legacy_chat(customer.customer_id, agents)
    message = agents[0].post("/v1.0/chatmessages", {"chat_id": chat_id, "text": "old"}).json_body
    fanout.drain()
    copy_id = ChatroommessageItem.derived_id(message["id"], room_of(customer, chat_id, owner=agents[1])["id"])
    copy_key = {"pk": {"S": ChatroommessageItem.key(customer.customer_id, copy_id)}, "sk": {"S": "#"}}
    DYNAMODB.update_item(TableName=TABLE, Key=copy_key, UpdateExpression="REMOVE gsi2pk, gsi2sk")  # as deleted
    DYNAMODB.update_item(TableName=TABLE, Key={"pk": {"S": ChatmessageItem.key(customer.customer_id, message["id"])},
                                               "sk": {"S": "#"}}, UpdateExpression="REMOVE gsi2pk, gsi2sk")
    assert migrate.main([]) == 0
    out = capsys.readouterr().out
    assert "2 partitions filed" in out and "1 deleted chatroommessages" in out  # the chat, the message
    assert migrate.main([]) == 0
    assert "0 partitions filed" in capsys.readouterr().out
    assert customer.delete("/v1.0/customer/data", headers={"Confirm-Customer-Id": customer.customer_id}
                           ).status_code == 202
    fanout.drain()
    left = [item for item in DYNAMODB.scan(TableName=TABLE)["Items"]
            if item["pk"]["S"].startswith(customer.customer_id) and item["kind"]["S"] != "erasure"]
    assert left == []
