"""/v1.0/chats through the HTTP layer: create, read, change, delete, membership,
the normal-chat uniqueness rule, and who may do what (docs/API.md)."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib.clock import NOT_DELETED
from tests.conftest import Caller
from tests.helpers import TIMESTAMP, assert_error, create_chat, get_chat, get_room, is_uuid, room_of, rooms_of
from tests.schema_check import assert_valid, assert_valid_list, seed_fields

CHAT_FIELDS = seed_fields("chat")


# ---- POST /chats ----------------------------------------------------------------

def test_create_chat_returns_chat_with_contract_field_order(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    assert list(chat) == CHAT_FIELDS
    assert_valid("chat", chat)


def test_create_chat_returns_the_requested_values(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c, owner=b, chat_type="group", name="ops", detail="on call")
    assert is_uuid(chat["id"])
    assert chat["customer_id"] == customer.customer_id
    assert chat["type"] == "group"
    assert chat["owner_id"] == b.id
    assert chat["name"] == "ops"
    assert chat["detail"] == "on call"


def test_create_chat_sorts_and_deduplicates_participants(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, c, a, b, c, a, owner=a, chat_type="group")
    assert chat["participant_ids"] == sorted({a.id, b.id, c.id})


def test_create_normal_chat_deduplicates_participants_to_two(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, b, a, b, a, owner=a, chat_type="normal")
    assert chat["participant_ids"] == sorted([a.id, b.id])
    assert chat["type"] == "normal"


def test_create_chat_timestamps(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    assert TIMESTAMP.match(chat["tm_create"]), chat["tm_create"]
    assert chat["tm_update"] == chat["tm_create"]
    assert chat["tm_delete"] == NOT_DELETED


def test_created_chat_is_readable_by_id_unchanged(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    assert get_chat(customer, chat["id"]) == chat


def test_create_chat_creates_one_chatroom_per_participant(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, c, b, a, owner=a, chat_type="group", name="n", detail="d")
    for agent in (a, b, c):
        rooms = rooms_of(customer, agent.id)
        assert len(rooms) == 1, rooms
        room = rooms[0]
        assert_valid("chatroom", room)
        assert room["chat_id"] == chat["id"]
        assert room["owner_id"] == agent.id
        assert room["customer_id"] == customer.customer_id
        assert room["type"] == "group"
        assert room["participant_ids"] == chat["participant_ids"]
        assert (room["name"], room["detail"]) == ("n", "d")
        assert room["tm_update"] == room["tm_create"]
        assert room["tm_delete"] == NOT_DELETED


def test_create_normal_chat_gives_normal_chatrooms(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    assert room_of(customer, chat["id"], a)["type"] == "normal"
    assert room_of(customer, chat["id"], b)["type"] == "normal"


def test_create_chat_chatrooms_have_distinct_ids(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    ids = {room_of(customer, chat["id"], agent)["id"] for agent in (a, b, c)}
    assert len(ids) == 3
    assert chat["id"] not in ids


def test_create_chat_with_owner_not_a_participant_is_400(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    response = customer.post("/v1.0/chats", {"type": "normal", "owner_id": c.id, "participant_ids": [a.id, b.id]})
    assert_error(response, 400)
    assert "owner_id" in response.json_body["Message"]
    assert rooms_of(customer, a.id) == []


def test_create_normal_chat_with_three_participants_is_400(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    body = {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id, c.id]}
    assert_error(customer.post("/v1.0/chats", body), 400)


def test_create_normal_chat_with_one_distinct_participant_is_400(customer, make_agent):
    a = make_agent()
    body = {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, a.id]}
    assert_error(customer.post("/v1.0/chats", body), 400)


@pytest.mark.parametrize("permission", [16, 32, 64])
def test_agent_may_create_chat_including_themselves(make_agent, permission, customer):
    caller, other = make_agent(permission=permission), make_agent()
    response = caller.post("/v1.0/chats", {"type": "normal", "owner_id": caller.id,
                                           "participant_ids": [caller.id, other.id]})
    assert response.status_code == 200, response.body
    assert_valid("chat", response.json_body)
    assert response.json_body["customer_id"] == caller.customer_id


def test_plain_agent_may_not_create_chat_without_themselves(customer, make_agent):
    caller, a, b = make_agent(), make_agent(), make_agent()
    response = caller.post("/v1.0/chats", {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]})
    assert_error(response, 403)
    assert rooms_of(customer, a.id) == []


@pytest.mark.parametrize("permission", [32, 64])
def test_admin_and_manager_may_create_chat_without_themselves(customer, make_agent, permission):
    caller, a, b = make_agent(permission=permission), make_agent(), make_agent()
    response = caller.post("/v1.0/chats", {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]})
    assert response.status_code == 200, response.body
    assert room_of(customer, response.json_body["id"], a)


# ---- one live normal chat per pair ---------------------------------------------------

def test_second_normal_chat_between_same_agents_is_409_naming_the_first(customer, make_agent):
    a, b = make_agent(), make_agent()
    first = create_chat(customer, a, b)
    response = customer.post("/v1.0/chats", {"type": "normal", "owner_id": b.id, "participant_ids": [b.id, a.id]})
    assert_error(response, 409)
    assert first["id"] in response.json_body["Message"]


def test_duplicate_normal_chat_creates_no_chatrooms(customer, make_agent):
    a, b = make_agent(), make_agent()
    first = create_chat(customer, a, b)
    a.post("/v1.0/chats", {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]})
    assert [room["chat_id"] for room in rooms_of(customer, a.id)] == [first["id"]]
    assert [room["chat_id"] for room in rooms_of(customer, b.id)] == [first["id"]]


def test_group_chat_between_same_two_agents_is_allowed_next_to_normal(customer, make_agent):
    a, b = make_agent(), make_agent()
    create_chat(customer, a, b, chat_type="normal")
    group = create_chat(customer, a, b, chat_type="group")
    assert group["type"] == "group"


def test_normal_chats_with_different_pairs_are_allowed(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    create_chat(customer, a, b)
    create_chat(customer, a, c)


def test_same_pair_in_another_customer_is_a_separate_chat(customer, make_agent, other_customer):
    a, b = make_agent(), make_agent()
    ours = create_chat(customer, a, b)
    theirs = create_chat(other_customer, a, b)
    assert theirs["id"] != ours["id"]
    assert theirs["customer_id"] == other_customer.customer_id
    assert get_chat(customer, ours["id"]) == ours


def test_racing_creates_of_the_same_normal_chat_give_exactly_one(customer, make_agent):
    a, b = make_agent(), make_agent()
    threads = 8
    barrier = threading.Barrier(threads)
    body = {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]}

    def attempt(_):
        barrier.wait()
        return customer.post("/v1.0/chats", body)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        responses = list(pool.map(attempt, range(threads)))

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [409] * (threads - 1), [(r.status_code, r.body) for r in responses]
    winner = next(r.json_body for r in responses if r.status_code == 200)
    for response in responses:
        if response.status_code == 409:
            assert winner["id"] in response.json_body["Message"]
    listed = customer.get("/v1.0/chats").json_body["result"]
    assert [chat["id"] for chat in listed] == [winner["id"]]
    assert [room["chat_id"] for room in rooms_of(customer, a.id)] == [winner["id"]]
    assert [room["chat_id"] for room in rooms_of(customer, b.id)] == [winner["id"]]


# ---- GET /chats ----------------------------------------------------------------------

def test_list_chats_as_customer_shows_every_live_chat(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    made = [create_chat(customer, *pair) for pair in ([a.id, b.id], [a.id, c.id], [b.id, c.id])]
    response = customer.get("/v1.0/chats")
    assert response.status_code == 200, response.body
    assert_valid_list("chat", response.json_body)
    listed = response.json_body["result"]
    assert sorted(chat["id"] for chat in listed) == sorted(chat["id"] for chat in made)
    assert {chat["id"]: chat for chat in listed} == {chat["id"]: chat for chat in made}


def test_list_chats_is_newest_first(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    for pair in ([a.id, b.id], [a.id, c.id], [b.id, c.id]):
        create_chat(customer, *pair)
    created = [chat["tm_create"] for chat in customer.get("/v1.0/chats").json_body["result"]]
    assert created == sorted(created, reverse=True)


@pytest.mark.parametrize("permission", [32, 64])
def test_list_chats_as_admin_or_manager(customer, make_agent, permission):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    response = make_agent(permission=permission).get("/v1.0/chats")
    assert response.status_code == 200, response.body
    assert_valid_list("chat", response.json_body)
    assert [item["id"] for item in response.json_body["result"]] == [chat["id"]]


def test_list_chats_as_plain_agent_is_403(customer, make_agent):
    a, b = make_agent(), make_agent()
    create_chat(customer, a, b)
    assert_error(a.get("/v1.0/chats"), 403)


def test_list_chats_of_another_customer_shows_nothing(customer, make_agent, other_customer):
    a, b = make_agent(), make_agent()
    create_chat(customer, a, b)
    response = other_customer.get("/v1.0/chats")
    assert response.status_code == 200, response.body
    assert response.json_body["result"] == []


def test_list_chats_omits_deleted_chat(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    kept = create_chat(customer, a, b)
    gone = create_chat(customer, a, c)
    assert customer.delete(f"/v1.0/chats/{gone['id']}").status_code == 200
    listed = customer.get("/v1.0/chats").json_body["result"]
    assert [chat["id"] for chat in listed] == [kept["id"]]


# ---- GET /chats/{id} --------------------------------------------------------------------

def test_get_chat_by_id(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    response = customer.get(f"/v1.0/chats/{chat['id']}")
    assert response.status_code == 200, response.body
    assert list(response.json_body) == CHAT_FIELDS
    assert_valid("chat", response.json_body)
    assert response.json_body == chat


def test_get_unknown_chat_is_404(customer):
    assert_error(customer.get(f"/v1.0/chats/{uuid.uuid4()}"), 404)


def test_get_chat_with_malformed_id_is_400(customer):
    assert_error(customer.get("/v1.0/chats/not-a-uuid"), 400)


# ---- PUT /chats/{id} ---------------------------------------------------------------------

def test_update_chat_changes_name_and_detail(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b, name="old", detail="old detail")
    response = customer.put(f"/v1.0/chats/{chat['id']}", {"name": "new", "detail": "new detail"})
    assert response.status_code == 200, response.body
    updated = response.json_body
    assert list(updated) == CHAT_FIELDS
    assert_valid("chat", updated)
    assert (updated["name"], updated["detail"]) == ("new", "new detail")
    assert updated["tm_create"] == chat["tm_create"]
    assert updated["tm_update"] > chat["tm_update"]
    assert updated["tm_delete"] == NOT_DELETED
    unchanged = {k: v for k, v in chat.items() if k not in ("name", "detail", "tm_update")}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert get_chat(customer, chat["id"]) == updated


def test_update_chat_leaves_chatroom_names(customer, make_agent, fanout):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b, name="old", detail="old detail")
    rooms_before = [room_of(customer, chat["id"], agent) for agent in (a, b)]
    assert customer.put(f"/v1.0/chats/{chat['id']}", {"name": "new", "detail": "new detail"}).status_code == 200
    fanout.drain()
    for before in rooms_before:
        after = get_room(customer, before["id"])
        assert (after["name"], after["detail"]) == ("old", "old detail")


def test_update_deleted_chat_is_404(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    customer.delete(f"/v1.0/chats/{chat['id']}")
    assert_error(customer.put(f"/v1.0/chats/{chat['id']}", {"name": "x", "detail": "y"}), 404)


# ---- DELETE /chats/{id} -----------------------------------------------------------------

def test_delete_chat_returns_the_deleted_chat(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    response = customer.delete(f"/v1.0/chats/{chat['id']}")
    assert response.status_code == 200, response.body
    deleted = response.json_body
    assert list(deleted) == CHAT_FIELDS
    assert_valid("chat", deleted)
    assert deleted["id"] == chat["id"]
    assert TIMESTAMP.match(deleted["tm_delete"]), deleted["tm_delete"]
    assert deleted["tm_delete"] != NOT_DELETED
    assert deleted["tm_update"] == deleted["tm_delete"]
    assert deleted["participant_ids"] == chat["participant_ids"]


def test_deleted_chat_is_still_readable_by_id(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    deleted = customer.delete(f"/v1.0/chats/{chat['id']}").json_body
    assert get_chat(customer, chat["id"]) == deleted


def test_delete_chat_deletes_its_chatrooms(customer, make_agent, fanout):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    rooms = {agent.id: room_of(customer, chat["id"], agent) for agent in (a, b, c)}
    assert customer.delete(f"/v1.0/chats/{chat['id']}").status_code == 200
    fanout.drain()
    for agent_id, room in rooms.items():
        after = get_room(customer, room["id"])
        assert after["tm_delete"] != NOT_DELETED
        assert TIMESTAMP.match(after["tm_delete"])
        assert rooms_of(customer, agent_id) == []


def test_delete_chat_leaves_chatrooms_of_other_chats(customer, make_agent, fanout):
    a, b, c = make_agent(), make_agent(), make_agent()
    gone = create_chat(customer, a, b)
    kept = create_chat(customer, a, c)
    customer.delete(f"/v1.0/chats/{gone['id']}")
    fanout.drain()
    assert [room["chat_id"] for room in rooms_of(customer, a.id)] == [kept["id"]]


def test_chatmessage_to_deleted_chat_is_404(customer, make_agent, fanout):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    customer.delete(f"/v1.0/chats/{chat['id']}")
    fanout.drain()
    response = customer.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "anyone?"})
    assert_error(response, 404)


def test_chatroommessage_into_a_chatroom_of_a_deleted_chat_is_404(customer, make_agent, fanout):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    room = room_of(customer, chat["id"], a)
    customer.delete(f"/v1.0/chats/{chat['id']}")
    fanout.drain()
    assert_error(a.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "anyone?"}), 404)


def test_new_normal_chat_is_allowed_after_deleting_the_old_one(customer, make_agent, fanout):
    a, b = make_agent(), make_agent()
    old = create_chat(customer, a, b)
    customer.delete(f"/v1.0/chats/{old['id']}")
    fanout.drain()
    new = create_chat(customer, b, a)
    assert new["id"] != old["id"]
    assert [room["chat_id"] for room in rooms_of(customer, a.id)] == [new["id"]]


# ---- PUT /chats/{id}/owner_id ------------------------------------------------------------

def test_change_owner_to_another_participant(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    response = customer.put(f"/v1.0/chats/{chat['id']}/owner_id", {"owner_id": b.id})
    assert response.status_code == 200, response.body
    assert list(response.json_body) == CHAT_FIELDS
    assert_valid("chat", response.json_body)
    assert response.json_body["owner_id"] == b.id
    assert response.json_body["participant_ids"] == chat["participant_ids"]
    assert get_chat(customer, chat["id"])["owner_id"] == b.id


def test_change_owner_to_non_participant_is_400(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    response = customer.put(f"/v1.0/chats/{chat['id']}/owner_id", {"owner_id": c.id})
    assert_error(response, 400)
    assert "owner_id" in response.json_body["Message"]
    assert get_chat(customer, chat["id"]) == chat


def test_previous_owner_loses_owner_rights(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    assert a.put(f"/v1.0/chats/{chat['id']}/owner_id", {"owner_id": b.id}).status_code == 200
    assert_error(a.put(f"/v1.0/chats/{chat['id']}", {"name": "mine", "detail": ""}), 403)
    assert b.put(f"/v1.0/chats/{chat['id']}", {"name": "mine", "detail": ""}).status_code == 200


# ---- POST /chats/{id}/participant_ids -------------------------------------------------------

def test_add_participant_returns_chat_with_sorted_participants(customer, make_agent):
    a, b, c, d = make_agent(), make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    response = customer.post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": d.id})
    assert response.status_code == 200, response.body
    assert list(response.json_body) == CHAT_FIELDS
    assert_valid("chat", response.json_body)
    assert response.json_body["participant_ids"] == sorted([a.id, b.id, c.id, d.id])
    assert response.json_body["type"] == "group"
    assert get_chat(customer, chat["id"]) == response.json_body


def test_add_participant_creates_their_chatroom(customer, make_agent, fanout):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, name="pair", detail="two of us")
    customer.post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": c.id})
    fanout.drain()
    room = room_of(customer, chat["id"], c)
    assert_valid("chatroom", room)
    assert room["owner_id"] == c.id
    assert room["participant_ids"] == sorted([a.id, b.id, c.id])
    assert room["type"] == "group"
    assert (room["name"], room["detail"]) == ("pair", "two of us")
    assert room["tm_delete"] == NOT_DELETED


def test_add_participant_updates_other_chatrooms(customer, make_agent, fanout):
    a, b, c, d = make_agent(), make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    customer.post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": d.id})
    fanout.drain()
    for agent in (a, b, c):
        room = room_of(customer, chat["id"], agent)
        assert room["participant_ids"] == sorted([a.id, b.id, c.id, d.id])
        assert room["type"] == "group"


def test_normal_chat_becomes_group_when_a_third_joins(customer, make_agent, fanout):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    response = customer.post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": c.id})
    assert response.status_code == 200, response.body
    assert response.json_body["type"] == "group"
    fanout.drain()
    assert room_of(customer, chat["id"], a)["type"] == "group"
    assert room_of(customer, chat["id"], b)["type"] == "group"


def test_pair_may_start_a_new_normal_chat_after_theirs_became_group(customer, make_agent, fanout):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    customer.post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": c.id})
    fanout.drain()
    new = create_chat(customer, a, b, chat_type="normal")
    assert new["type"] == "normal"


def test_added_participants_chatroom_starts_with_the_chats_current_name(customer, make_agent, fanout):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, name="old", detail="old detail")
    customer.put(f"/v1.0/chats/{chat['id']}", {"name": "new", "detail": "new detail"})
    customer.post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": c.id})
    fanout.drain()
    room = room_of(customer, chat["id"], c)
    assert (room["name"], room["detail"]) == ("new", "new detail")


def test_add_existing_participant_is_409(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    response = customer.post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": b.id})
    assert_error(response, 409)
    assert get_chat(customer, chat["id"]) == chat


def test_add_participant_to_deleted_chat_is_404(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    customer.delete(f"/v1.0/chats/{chat['id']}")
    response = customer.post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": make_agent().id})
    assert_error(response, 404)


# ---- DELETE /chats/{id}/participant_ids/{pid} ------------------------------------------------

def test_remove_participant_returns_chat_without_them(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    response = customer.delete(f"/v1.0/chats/{chat['id']}/participant_ids/{c.id}")
    assert response.status_code == 200, response.body
    assert list(response.json_body) == CHAT_FIELDS
    assert_valid("chat", response.json_body)
    assert response.json_body["participant_ids"] == sorted([a.id, b.id])
    assert response.json_body["type"] == "group"
    assert get_chat(customer, chat["id"]) == response.json_body


def test_remove_participant_deletes_their_chatroom(customer, make_agent, fanout):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    room = room_of(customer, chat["id"], c)
    customer.delete(f"/v1.0/chats/{chat['id']}/participant_ids/{c.id}")
    fanout.drain()
    assert get_room(customer, room["id"])["tm_delete"] != NOT_DELETED
    assert rooms_of(customer, c.id) == []


def test_remove_participant_updates_other_chatrooms(customer, make_agent, fanout):
    a, b, c, d = make_agent(), make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c, d)
    customer.delete(f"/v1.0/chats/{chat['id']}/participant_ids/{d.id}")
    fanout.drain()
    for agent in (a, b, c):
        room = room_of(customer, chat["id"], agent)
        assert room["participant_ids"] == sorted([a.id, b.id, c.id])
        assert room["type"] == "group"


def test_removed_plain_participant_may_no_longer_read_the_chat(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    assert c.get(f"/v1.0/chats/{chat['id']}").status_code == 200
    customer.delete(f"/v1.0/chats/{chat['id']}/participant_ids/{c.id}")
    assert_error(c.get(f"/v1.0/chats/{chat['id']}"), 403)


def test_remove_participant_with_malformed_id_is_400(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    assert_error(customer.delete(f"/v1.0/chats/{chat['id']}/participant_ids/not-a-uuid"), 400)
    assert get_chat(customer, chat["id"]) == chat


def test_remove_non_participant_is_404(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    response = customer.delete(f"/v1.0/chats/{chat['id']}/participant_ids/{make_agent().id}")
    assert_error(response, 404)
    assert get_chat(customer, chat["id"]) == chat


def test_remove_participant_from_normal_chat_is_409(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    response = customer.delete(f"/v1.0/chats/{chat['id']}/participant_ids/{b.id}")
    assert_error(response, 409)
    assert get_chat(customer, chat["id"]) == chat


def test_removed_participant_may_be_added_back_with_a_new_chatroom(customer, make_agent, fanout):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    old_room = room_of(customer, chat["id"], c)
    customer.delete(f"/v1.0/chats/{chat['id']}/participant_ids/{c.id}")
    fanout.drain()
    response = customer.post(f"/v1.0/chats/{chat['id']}/participant_ids", {"participant_id": c.id})
    assert response.status_code == 200, response.body
    fanout.drain()
    new_room = room_of(customer, chat["id"], c)
    assert new_room["id"] != old_room["id"]
    assert new_room["participant_ids"] == sorted([a.id, b.id, c.id])
    assert get_room(customer, old_room["id"])["tm_delete"] != NOT_DELETED


# ---- authorization matrix inside the customer ---------------------------------------------
#
# A group chat owned by the plain agent "owner", with plain participants
# "member" and "leaver", and a plain "outsider". Customer tokens, admins and
# managers may do everything; a plain agent may read while a participant and
# change only as the owner.

ROLES = ["customer", "admin", "manager", "owner", "member", "outsider"]
OPERATIONS = ["get", "update", "delete", "change_owner", "add_participant", "remove_participant"]
ALLOWED = {
    "get": {"customer", "admin", "manager", "owner", "member"},
    "update": {"customer", "admin", "manager", "owner"},
    "delete": {"customer", "admin", "manager", "owner"},
    "change_owner": {"customer", "admin", "manager", "owner"},
    "add_participant": {"customer", "admin", "manager", "owner"},
    "remove_participant": {"customer", "admin", "manager", "owner"},
}


@pytest.fixture
def group(customer, make_agent):
    agents = {
        "owner": make_agent(name="owner"),
        "member": make_agent(name="member"),
        "leaver": make_agent(name="leaver"),
        "outsider": make_agent(name="outsider"),
        "newcomer": make_agent(name="newcomer"),
        "admin": make_agent(permission=32, name="admin"),
        "manager": make_agent(permission=64, name="manager"),
        "customer": customer,
    }
    ids = [agents[name].id for name in ("owner", "member", "leaver")]
    chat = create_chat(customer, *ids, chat_type="group")
    return chat, agents


def call(operation, caller, chat, agents):
    chat_id = chat["id"]
    if operation == "get":
        return caller.get(f"/v1.0/chats/{chat_id}")
    if operation == "update":
        return caller.put(f"/v1.0/chats/{chat_id}", {"name": "renamed", "detail": "changed"})
    if operation == "delete":
        return caller.delete(f"/v1.0/chats/{chat_id}")
    if operation == "change_owner":
        return caller.put(f"/v1.0/chats/{chat_id}/owner_id", {"owner_id": agents["member"].id})
    if operation == "add_participant":
        return caller.post(f"/v1.0/chats/{chat_id}/participant_ids", {"participant_id": agents["newcomer"].id})
    if operation == "remove_participant":
        return caller.delete(f"/v1.0/chats/{chat_id}/participant_ids/{agents['leaver'].id}")
    raise AssertionError(operation)


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(group, customer, role, operation):
    chat, agents = group
    response = call(operation, agents[role], chat, agents)
    if role in ALLOWED[operation]:
        assert response.status_code == 200, response.body
        assert_valid("chat", response.json_body)
        assert response.json_body["id"] == chat["id"]
        if operation == "get":
            assert response.json_body == chat
        else:
            assert get_chat(customer, chat["id"]) != chat
    else:
        assert_error(response, 403)
        assert get_chat(customer, chat["id"]) == chat


# ---- another customer: always 404, never 403, nothing changes ---------------------------------

@pytest.mark.parametrize("operation", OPERATIONS)
def test_another_customer_gets_404_and_changes_nothing(group, customer, stranger, operation, fanout):
    chat, agents = group
    rooms_before = {name: rooms_of(customer, agents[name].id) for name in ("owner", "member", "leaver")}
    response = call(operation, stranger, chat, agents)
    assert_error(response, 404)
    fanout.drain()
    assert get_chat(customer, chat["id"]) == chat
    assert {name: rooms_of(customer, agents[name].id) for name in rooms_before} == rooms_before


def test_another_customers_plain_participant_id_gets_404(group, customer, client):
    """An agent of another customer whose id happens to be listed is still a stranger."""
    chat, agents = group
    impostor = Caller(client, str(uuid.uuid4()), agents["owner"].id, "impostor", 16)
    assert_error(impostor.get(f"/v1.0/chats/{chat['id']}"), 404)
    assert_error(impostor.delete(f"/v1.0/chats/{chat['id']}"), 404)
    assert get_chat(customer, chat["id"]) == chat
