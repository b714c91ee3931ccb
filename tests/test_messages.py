"""Chatmessages and chatroommessages through the HTTP layer (docs/API.md)."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.clock import NOT_DELETED
from tests.helpers import (
    chatmessages_of,
    chatroommessages_of,
    create_chat,
    room_of,
    send_chatmessage,
    send_chatroommessage,
)
from tests.schema_check import all_fields

CHATMESSAGE_FIELDS = all_fields("chatmessage")
CHATROOMMESSAGE_FIELDS = all_fields("chatroommessage")
SOURCE_KEYS = {"type", "target", "target_name", "name", "detail"}


# ---- helpers ------------------------------------------------------------------

def seed_body(chat, target=None, text="test message"):
    """The seed tutorial's POST /chatmessages body."""
    return {
        "chat_id": chat["id"],
        "source": {"type": "agent", "target": target or str(uuid.uuid4())},
        "type": "normal",
        "text": text,
    }


def agent_source(agent):
    return {"type": "agent", "target": agent.id, "target_name": agent.name, "name": "", "detail": ""}


@pytest.fixture
def pair(customer, make_agent):
    """Two plain agents and the normal chat between them."""
    a, b = make_agent(name="alice"), make_agent(name="bob")
    return a, b, create_chat(customer, a, b)


@pytest.fixture
def trio(customer, make_agent):
    """Three plain agents and their group chat."""
    a, b, c = make_agent(name="alice"), make_agent(name="bob"), make_agent(name="carol")
    return a, b, c, create_chat(customer, a, b, c)


# ---- POST /chatmessages -------------------------------------------------------

def test_send_chatmessage_answers_fields_in_contract_order(customer, pair):
    _, _, chat = pair
    response = customer.post("/v1.0/chatmessages", seed_body(chat))
    assert response.status_code == 200, response.body
    message = response.json_body
    assert list(message) == CHATMESSAGE_FIELDS
    assert uuid.UUID(message["id"])
    assert message["customer_id"] == customer.customer_id
    assert message["chat_id"] == chat["id"]
    assert message["type"] == "normal"
    assert message["text"] == "test message"
    assert message["tm_update"] == message["tm_create"]
    assert message["tm_delete"] == NOT_DELETED


def test_send_chatmessage_without_medias_answers_empty_medias(customer, pair):
    _, _, chat = pair
    assert customer.post("/v1.0/chatmessages", seed_body(chat)).json_body["medias"] == []


def test_send_chatmessage_accepts_the_seeds_text_plain_body(customer, pair):
    _, _, chat = pair
    target = str(uuid.uuid4())
    raw = json.dumps(seed_body(chat, target=target), indent=4).encode()
    response = customer.post("/v1.0/chatmessages", raw=raw, headers={"Content-Type": "text/plain"})
    assert response.status_code == 200, response.body
    assert response.json_body["source"] == {
        "type": "agent", "target": target, "target_name": "", "name": "", "detail": "",
    }


def test_send_chatmessage_without_source_answers_five_empty_source_keys(customer, pair):
    _, _, chat = pair
    message = send_chatmessage(customer, chat)
    assert set(message["source"]) == SOURCE_KEYS
    assert all(isinstance(value, str) for value in message["source"].values())


def test_plain_agents_given_source_is_replaced_by_themselves(pair):
    a, _, chat = pair
    message = send_chatmessage(a, chat, source={"type": "tel", "target": "+821100000001", "name": "someone"})
    assert message["source"] == agent_source(a)


def test_admin_keeps_the_source_they_give(admin, pair):
    _, _, chat = pair
    source = {"type": "tel", "target": "+821100000001", "target_name": "front desk"}
    message = send_chatmessage(admin, chat, source=source)
    assert message["source"] == {**source, "name": "", "detail": ""}


def test_customer_keeps_the_source_they_give(customer, pair):
    a, _, chat = pair
    source = {"type": "agent", "target": a.id, "target_name": "alice", "name": "n", "detail": "d"}
    assert send_chatmessage(customer, chat, source=source)["source"] == source


def test_plain_agent_outside_the_chat_may_not_send(make_agent, pair):
    _, _, chat = pair
    outsider = make_agent()
    response = outsider.post("/v1.0/chatmessages", seed_body(chat))
    assert response.status_code == 403, response.body


def test_send_to_unknown_chat_is_404(customer):
    response = customer.post("/v1.0/chatmessages", seed_body({"id": str(uuid.uuid4())}))
    assert response.status_code == 404, response.body


def test_send_to_deleted_chat_is_404(customer, pair):
    _, _, chat = pair
    assert customer.delete(f"/v1.0/chats/{chat['id']}").status_code == 200
    response = customer.post("/v1.0/chatmessages", seed_body(chat))
    assert response.status_code == 404, response.body


def test_send_to_another_customers_chat_is_404(other_customer, pair):
    _, _, chat = pair
    response = other_customer.post("/v1.0/chatmessages", seed_body(chat))
    assert response.status_code == 404, response.body


MEDIAS = {
    "address": {"type": "address", "address": {"type": "tel", "target": "+821100000001"}},
    "agent": {"type": "agent", "agent": {"id": "eb1ac5c0-ff63-47e2-bcdb-5da9c336eb4b", "name": "alice"}},
    "file": {"type": "file", "file_id": "0c4ca9f6-2a8e-4c4e-9d43-2b8c0b6e7a11"},
    "link": {"type": "link", "link_url": "https://example.com/report.pdf"},
}
PAYLOAD_FIELD = {"address": "address", "agent": "agent", "file": "file_id", "link": "link_url"}


# A file media must name an uploaded file of the customer: tests/test_files.py.
@pytest.mark.parametrize("media_type", sorted(set(MEDIAS) - {"file"}))
def test_send_chatmessage_accepts_each_media_shape(customer, pair, media_type):
    _, _, chat = pair
    message = send_chatmessage(customer, chat, medias=[MEDIAS[media_type]])
    [media] = message["medias"]
    field = PAYLOAD_FIELD[media_type]
    given = MEDIAS[media_type][field]
    assert media["type"] == media_type
    if isinstance(given, dict):  # the reference allows the server to fill in more keys
        assert {key: media[field].get(key) for key in given} == given
    else:
        assert media[field] == given


def test_send_chatmessage_accepts_ten_medias(customer, pair):
    _, _, chat = pair
    assert len(send_chatmessage(customer, chat, medias=[MEDIAS["link"]] * 10)["medias"]) == 10


def test_send_chatmessage_with_eleven_medias_is_400(customer, pair):
    _, _, chat = pair
    body = {**seed_body(chat), "medias": [MEDIAS["link"]] * 11}
    response = customer.post("/v1.0/chatmessages", body)
    assert response.status_code == 400, response.body
    assert "medias" in response.json_body["Message"]


@pytest.mark.parametrize("media_type", sorted(MEDIAS))
def test_media_without_its_payload_is_400(customer, pair, media_type):
    _, _, chat = pair
    response = customer.post("/v1.0/chatmessages", {**seed_body(chat), "medias": [{"type": media_type}]})
    assert response.status_code == 400, response.body


# ---- GET /chatmessages, GET|DELETE /chatmessages/{id} -------------------------

def test_list_chatmessages_is_newest_first(customer, pair):
    _, _, chat = pair
    sent = [send_chatmessage(customer, chat, text=f"m{i}") for i in range(3)]
    listed = chatmessages_of(customer, chat)
    assert [m["id"] for m in listed] == [m["id"] for m in reversed(sent)]
    assert [m["tm_create"] for m in listed] == sorted((m["tm_create"] for m in listed), reverse=True)


def test_list_chatmessages_hides_deleted_ones(customer, pair):
    _, _, chat = pair
    kept, gone = send_chatmessage(customer, chat, text="kept"), send_chatmessage(customer, chat, text="gone")
    assert customer.delete(f"/v1.0/chatmessages/{gone['id']}").status_code == 200
    assert [m["id"] for m in chatmessages_of(customer, chat)] == [kept["id"]]


def test_get_chatmessage_returns_it(customer, pair):
    a, _, chat = pair
    sent = send_chatmessage(a, chat)
    response = a.get(f"/v1.0/chatmessages/{sent['id']}")
    assert response.status_code == 200, response.body
    assert response.json_body == sent


def test_sender_may_delete_their_chatmessage_and_gets_it_back_deleted(pair):
    a, _, chat = pair
    sent = send_chatmessage(a, chat)
    response = a.delete(f"/v1.0/chatmessages/{sent['id']}")
    assert response.status_code == 200, response.body
    deleted = response.json_body
    assert list(deleted) == CHATMESSAGE_FIELDS
    assert deleted["id"] == sent["id"]
    assert deleted["tm_delete"] != NOT_DELETED


def test_plain_agent_may_not_delete_someone_elses_chatmessage(pair):
    a, b, chat = pair
    sent = send_chatmessage(a, chat)
    response = b.delete(f"/v1.0/chatmessages/{sent['id']}")
    assert response.status_code == 403, response.body
    assert a.get(f"/v1.0/chatmessages/{sent['id']}").json_body["tm_delete"] == NOT_DELETED


def test_admin_may_delete_someone_elses_chatmessage(admin, pair):
    a, _, chat = pair
    sent = send_chatmessage(a, chat)
    response = admin.delete(f"/v1.0/chatmessages/{sent['id']}")
    assert response.status_code == 200, response.body
    assert response.json_body["tm_delete"] != NOT_DELETED


def test_deleting_a_chatmessage_deletes_every_copy(fanout, trio):
    a, b, c, chat = trio
    rooms = {agent: room_of(agent, chat) for agent in (a, b, c)}
    message = send_chatmessage(a, chat)
    fanout.drain()
    copies = {agent: chatroommessages_of(agent, room) for agent, room in rooms.items()}
    assert all(len(found) == 1 for found in copies.values()), copies

    assert a.delete(f"/v1.0/chatmessages/{message['id']}").status_code == 200
    fanout.drain()

    for agent, room in rooms.items():
        assert chatroommessages_of(agent, room) == []
        [copy] = copies[agent]
        again = agent.get(f"/v1.0/chatroommessages/{copy['id']}")
        assert again.status_code == 200, again.body
        assert again.json_body["tm_delete"] != NOT_DELETED


def test_deleted_chatmessage_is_still_readable_by_id(customer, pair):
    _, _, chat = pair
    sent = send_chatmessage(customer, chat)
    customer.delete(f"/v1.0/chatmessages/{sent['id']}")
    response = customer.get(f"/v1.0/chatmessages/{sent['id']}")
    assert response.status_code == 200, response.body
    assert response.json_body["tm_delete"] != NOT_DELETED


# ---- POST /chatroommessages ---------------------------------------------------

def test_customer_token_may_not_send_a_chatroommessage(customer, pair):
    a, _, chat = pair
    room = room_of(a, chat)
    response = customer.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "hi"})
    assert response.status_code == 403, response.body


def test_send_chatroommessage_answers_the_callers_copy_at_once(pair):
    a, _, chat = pair
    room = room_of(a, chat)
    copy = send_chatroommessage(a, room, text="hi there")  # no drain: the copy exists already
    assert [key for key in copy if key in CHATROOMMESSAGE_FIELDS] == CHATROOMMESSAGE_FIELDS
    assert copy["chatroom_id"] == room["id"]
    assert copy["source"] == agent_source(a)
    assert copy["type"] == "normal"
    assert copy["text"] == "hi there"
    assert copy["medias"] == []
    assert copy["tm_update"] == copy["tm_create"]
    assert copy["tm_delete"] == NOT_DELETED
    assert chatroommessages_of(a, room) == [copy]


def test_send_chatroommessage_links_the_copy_to_its_chatmessage(pair):
    a, _, chat = pair
    copy = send_chatroommessage(a, room_of(a, chat))
    response = a.get(f"/v1.0/chatmessages/{copy['messagechat_id']}")
    assert response.status_code == 200, response.body
    message = response.json_body
    assert message["chat_id"] == chat["id"]
    assert message["source"] == copy["source"]
    assert message["tm_create"] == copy["tm_create"]


def test_plain_agent_may_not_post_into_someone_elses_chatroom(pair):
    a, b, chat = pair
    response = a.post("/v1.0/chatroommessages", {"chatroom_id": room_of(b, chat)["id"], "text": "hi"})
    assert response.status_code == 403, response.body


def test_admin_may_post_into_any_chatroom_of_the_customer(admin, fanout, pair):
    _, b, chat = pair
    room = room_of(b, chat)
    copy = send_chatroommessage(admin, room)
    assert copy["chatroom_id"] == room["id"]
    assert copy["source"] == agent_source(admin)
    fanout.drain()
    assert [m["id"] for m in chatroommessages_of(b, room)] == [copy["id"]]


def test_every_participant_gets_exactly_one_copy_with_the_messages_tm_create(fanout, trio):
    a, b, c, chat = trio
    rooms = {agent: room_of(agent, chat) for agent in (a, b, c)}
    sent = send_chatroommessage(a, rooms[a])
    fanout.drain()
    message = a.get(f"/v1.0/chatmessages/{sent['messagechat_id']}").json_body
    for agent, room in rooms.items():
        [copy] = chatroommessages_of(agent, room)
        assert copy["messagechat_id"] == message["id"]
        assert copy["chatroom_id"] == room["id"]
        assert copy["tm_create"] == message["tm_create"]
        assert copy["source"] == agent_source(a)


def test_senders_chatroom_has_one_copy_not_two(fanout, pair):
    a, _, chat = pair
    room = room_of(a, chat)
    sent = send_chatroommessage(a, room)
    fanout.drain()
    assert [m["id"] for m in chatroommessages_of(a, room)] == [sent["id"]]


def test_chatroom_deleted_before_the_send_gets_no_copy(fanout, trio):
    a, b, c, chat = trio
    gone = room_of(c, chat)
    assert c.delete(f"/v1.0/chatrooms/{gone['id']}").status_code == 200
    send_chatroommessage(a, room_of(a, chat))
    fanout.drain()
    assert len(chatroommessages_of(b, room_of(b, chat))) == 1
    assert chatroommessages_of(c, gone) == []


def test_get_chatroommessage_returns_the_copy(pair):
    a, _, chat = pair
    copy = send_chatroommessage(a, room_of(a, chat))
    response = a.get(f"/v1.0/chatroommessages/{copy['id']}")
    assert response.status_code == 200, response.body
    assert response.json_body == copy


def test_plain_agent_may_not_read_another_agents_copy(fanout, pair):
    a, b, chat = pair
    copy = send_chatroommessage(a, room_of(a, chat))
    fanout.drain()
    assert b.get(f"/v1.0/chatroommessages/{copy['id']}").status_code == 403


def test_deleting_a_chatroommessage_removes_only_that_copy(fanout, pair):
    a, b, chat = pair
    a_room, b_room = room_of(a, chat), room_of(b, chat)
    sent = send_chatroommessage(a, a_room)
    fanout.drain()
    [b_copy] = chatroommessages_of(b, b_room)

    response = b.delete(f"/v1.0/chatroommessages/{b_copy['id']}")
    assert response.status_code == 200, response.body
    assert response.json_body["id"] == b_copy["id"]
    assert response.json_body["tm_delete"] != NOT_DELETED
    fanout.drain()

    assert chatroommessages_of(b, b_room) == []
    assert [m["id"] for m in chatroommessages_of(a, a_room)] == [sent["id"]]
    assert a.get(f"/v1.0/chatmessages/{sent['messagechat_id']}").json_body["tm_delete"] == NOT_DELETED


def test_list_chatroommessages_is_newest_first(pair):
    a, _, chat = pair
    room = room_of(a, chat)
    sent = [send_chatroommessage(a, room, text=f"m{i}") for i in range(3)]
    assert [m["id"] for m in chatroommessages_of(a, room)] == [m["id"] for m in reversed(sent)]


def test_plain_agent_may_not_list_another_agents_chatroom(pair):
    a, b, chat = pair
    response = a.get(f"/v1.0/chatroommessages?chatroom_id={room_of(b, chat)['id']}")
    assert response.status_code == 403, response.body


# ---- Idempotency-Key ----------------------------------------------------------

def key_header(key):
    return {"Idempotency-Key": key}


def test_retried_chatmessage_with_same_key_returns_the_first_and_creates_nothing(pair):
    a, _, chat = pair
    body = seed_body(chat)
    first = a.post("/v1.0/chatmessages", body, headers=key_header("send-1"))
    retry = a.post("/v1.0/chatmessages", body, headers=key_header("send-1"))
    assert first.status_code == retry.status_code == 200, retry.body
    assert retry.json_body["id"] == first.json_body["id"]
    assert [m["id"] for m in chatmessages_of(a, chat)] == [first.json_body["id"]]


def test_retried_chatroommessage_with_same_key_returns_the_first_and_creates_nothing(fanout, pair):
    a, b, chat = pair
    room = room_of(a, chat)
    body = {"chatroom_id": room["id"], "text": "once"}
    first = a.post("/v1.0/chatroommessages", body, headers=key_header("send-1"))
    fanout.drain()
    retry = a.post("/v1.0/chatroommessages", body, headers=key_header("send-1"))
    fanout.drain()
    assert first.status_code == retry.status_code == 200, retry.body
    assert retry.json_body["id"] == first.json_body["id"]
    assert len(chatmessages_of(a, chat)) == 1
    assert len(chatroommessages_of(a, room)) == 1
    assert len(chatroommessages_of(b, room_of(b, chat))) == 1


def test_same_key_with_a_different_chatmessage_body_is_409(pair):
    a, _, chat = pair
    assert a.post("/v1.0/chatmessages", seed_body(chat, text="one"), headers=key_header("k")).status_code == 200
    response = a.post("/v1.0/chatmessages", seed_body(chat, text="two"), headers=key_header("k"))
    assert response.status_code == 409, response.body
    assert len(chatmessages_of(a, chat)) == 1


def test_same_key_with_a_different_chatroommessage_body_is_409(pair):
    a, _, chat = pair
    room = room_of(a, chat)
    assert a.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "one"},
                  headers=key_header("k")).status_code == 200
    response = a.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "two"}, headers=key_header("k"))
    assert response.status_code == 409, response.body
    assert len(chatroommessages_of(a, room)) == 1


def test_same_key_from_another_agent_is_independent(pair):
    a, b, chat = pair
    body = {"chat_id": chat["id"], "text": "same words"}
    from_a = a.post("/v1.0/chatmessages", body, headers=key_header("one-key"))
    from_b = b.post("/v1.0/chatmessages", body, headers=key_header("one-key"))
    assert from_a.status_code == from_b.status_code == 200, from_b.body
    assert from_a.json_body["id"] != from_b.json_body["id"]
    assert from_b.json_body["source"]["target"] == b.id
    assert len(chatmessages_of(a, chat)) == 2


def race(send, times=8):
    with ThreadPoolExecutor(max_workers=times) as pool:
        return list(pool.map(lambda _: send(), range(times)))


def test_concurrent_chatmessage_retries_store_one_message(pair):
    a, _, chat = pair
    body = seed_body(chat)
    responses = race(lambda: a.post("/v1.0/chatmessages", body, headers=key_header("racing")))
    assert [r.status_code for r in responses] == [200] * 8, [r.body for r in responses]
    assert len({r.json_body["id"] for r in responses}) == 1
    assert [m["id"] for m in chatmessages_of(a, chat)] == [responses[0].json_body["id"]]


def test_concurrent_chatroommessage_retries_store_one_message(fanout, pair):
    a, b, chat = pair
    room = room_of(a, chat)
    body = {"chatroom_id": room["id"], "text": "racing"}
    responses = race(lambda: a.post("/v1.0/chatroommessages", body, headers=key_header("racing")))
    assert [r.status_code for r in responses] == [200] * 8, [r.body for r in responses]
    assert len({r.json_body["id"] for r in responses}) == 1
    fanout.drain()
    assert len(chatmessages_of(a, chat)) == 1
    assert [m["id"] for m in chatroommessages_of(a, room)] == [responses[0].json_body["id"]]
    assert len(chatroommessages_of(b, room_of(b, chat))) == 1
