"""The stream handler, fed with the records moto's DynamoDB stream really produced."""

import copy
import threading

from chalicelib.clock import NOT_DELETED
from chalicelib.services import fanout as fanout_service
from tests.helpers import chatroommessages_of, create_chat, insert_of, room_of, send_chatmessage


def chat_with_rooms(customer, make_agent, fanout, size):
    """A chat of `size` agents, its chatrooms by agent, and the stream read up to here."""
    agents = [make_agent() for _ in range(size)]
    chat = create_chat(customer, *agents)
    fanout.drain()
    return chat, {agent: room_of(customer, chat, agent) for agent in agents}


# ---- replays ------------------------------------------------------------------

def test_replayed_batch_makes_no_second_copy(customer, make_agent, fanout):
    chat, rooms = chat_with_rooms(customer, make_agent, fanout, 3)
    message = send_chatmessage(customer, chat)
    event = fanout.read_event()
    assert fanout.invoke(event) == {"batchItemFailures": []}
    assert fanout.invoke(event) == {"batchItemFailures": []}
    for room in rooms.values():
        assert [c["messagechat_id"] for c in chatroommessages_of(customer, room)] == [message["id"]]


def test_replayed_batch_of_a_chatroommessage_leaves_the_sender_one_copy(customer, make_agent, fanout):
    chat, rooms = chat_with_rooms(customer, make_agent, fanout, 3)
    sender = next(iter(rooms))
    response = sender.post("/v1.0/chatroommessages", {"chatroom_id": rooms[sender]["id"], "text": "hi"})
    assert response.status_code == 200, response.body
    event = fanout.read_event()
    fanout.invoke(event)
    fanout.invoke(event)
    for room in rooms.values():
        assert len(chatroommessages_of(customer, room)) == 1


def test_replayed_insert_does_not_bring_back_a_copy_its_owner_deleted(customer, make_agent, fanout):
    chat, rooms = chat_with_rooms(customer, make_agent, fanout, 2)
    send_chatmessage(customer, chat)
    event = fanout.read_event()
    fanout.invoke(event)
    owner, room = list(rooms.items())[1]
    [mine] = chatroommessages_of(owner, room)
    assert owner.delete(f"/v1.0/chatroommessages/{mine['id']}").status_code == 200
    fanout.drain()

    assert fanout.invoke(event) == {"batchItemFailures": []}  # Lambda delivers the batch again

    assert chatroommessages_of(owner, room) == []
    assert owner.get(f"/v1.0/chatroommessages/{mine['id']}").json_body["tm_delete"] != NOT_DELETED


def test_replayed_insert_does_not_bring_back_copies_of_a_deleted_chatmessage(customer, make_agent, fanout):
    chat, rooms = chat_with_rooms(customer, make_agent, fanout, 2)
    message = send_chatmessage(customer, chat)
    event = fanout.read_event()
    fanout.invoke(event)
    assert customer.delete(f"/v1.0/chatmessages/{message['id']}").status_code == 200
    fanout.drain()

    assert fanout.invoke(event) == {"batchItemFailures": []}  # Lambda delivers the batch again

    for room in rooms.values():
        assert chatroommessages_of(customer, room) == []


# ---- partial batch failures ---------------------------------------------------

def poisoned(record, sequence_number):
    """A copy of a real record whose new image the handler cannot read."""
    bad = copy.deepcopy(record)
    bad["eventID"] = f"poisoned-{sequence_number}"
    bad["dynamodb"]["SequenceNumber"] = sequence_number
    bad["dynamodb"]["NewImage"]["source"] = {"S": "{this is not JSON"}
    return bad


def test_poisoned_record_is_reported_alone_and_the_good_ones_are_processed(customer, make_agent, fanout):
    chat, rooms = chat_with_rooms(customer, make_agent, fanout, 2)
    first, second = send_chatmessage(customer, chat, "first"), send_chatmessage(customer, chat, "second")
    event = fanout.read_event()
    good = [insert_of(event, first), insert_of(event, second)]
    bad_sequence = str(max(int(r["dynamodb"]["SequenceNumber"]) for r in event["Records"]) + 1000)
    event = {"Records": [good[0], poisoned(good[0], bad_sequence), good[1]]}

    result = fanout.invoke(event)

    assert result == {"batchItemFailures": [{"itemIdentifier": bad_sequence}]}
    for room in rooms.values():
        copies = chatroommessages_of(customer, room)
        assert sorted(c["messagechat_id"] for c in copies) == sorted([first["id"], second["id"]])


# ---- one batch, several items ----------------------------------------------------

def test_another_chats_message_in_the_batch_is_copied_while_the_first_fans_out(
        customer, make_agent, fanout, monkeypatch):
    first_chat, first_rooms = chat_with_rooms(customer, make_agent, fanout, 3)
    other_chat, other_rooms = chat_with_rooms(customer, make_agent, fanout, 2)
    slow, quick = send_chatmessage(customer, first_chat, "slow"), send_chatmessage(customer, other_chat, "quick")
    event = fanout.read_event()
    event = {"Records": [insert_of(event, slow), insert_of(event, quick)]}  # the slow one first
    quick_copied = threading.Event()
    seen_while_slow = []
    copy_message = fanout_service.copy_message

    def copy_with_a_slow_one(message):
        if message.id == slow["id"]:  # a large fan-out: still running when the quick one is done
            seen_while_slow.append(quick_copied.wait(timeout=10))
        copy_message(message)
        if message.id == quick["id"]:
            quick_copied.set()

    monkeypatch.setattr(fanout_service, "copy_message", copy_with_a_slow_one)
    assert fanout.invoke(event) == {"batchItemFailures": []}

    assert seen_while_slow == [True], "the quick message waited for the slow one's fan-out"
    for rooms, message in ((first_rooms, slow), (other_rooms, quick)):
        for room in rooms.values():
            assert [c["messagechat_id"] for c in chatroommessages_of(customer, room)] == [message["id"]]


def test_one_items_records_in_a_batch_are_followed_in_order(customer, make_agent, fanout):
    chat, rooms = chat_with_rooms(customer, make_agent, fanout, 3)
    other_chat, other_rooms = chat_with_rooms(customer, make_agent, fanout, 2)
    gone, kept = send_chatmessage(customer, chat, "gone"), send_chatmessage(customer, other_chat, "kept")
    assert customer.delete(f"/v1.0/chatmessages/{gone['id']}").status_code == 200
    event = fanout.read_event()
    keys = insert_of(event, gone)["dynamodb"]["Keys"]
    assert [r["eventName"] for r in event["Records"] if r["dynamodb"]["Keys"] == keys] == ["INSERT", "MODIFY"]

    assert fanout.invoke(event) == {"batchItemFailures": []}

    for room in rooms.values():
        assert chatroommessages_of(customer, room) == [], "copied after its delete was followed"
    for room in other_rooms.values():
        assert [c["messagechat_id"] for c in chatroommessages_of(customer, room)] == [kept["id"]]


# ---- batches of 25 ------------------------------------------------------------

def test_group_of_thirty_gets_one_copy_in_every_chatroom(customer, make_agent, fanout):
    chat, rooms = chat_with_rooms(customer, make_agent, fanout, 30)
    message = send_chatmessage(customer, chat)
    fanout.drain()
    for room in rooms.values():
        [copy_] = chatroommessages_of(customer, room)
        assert copy_["messagechat_id"] == message["id"]
        assert copy_["chatroom_id"] == room["id"]
        assert copy_["tm_create"] == message["tm_create"]
