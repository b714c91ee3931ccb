"""/v1.0/chatrooms through the HTTP layer: an agent starts a chat with
POST /chatrooms; each participant reads, renames and deletes only their own
view; and who may do what (docs/API.md)."""

import uuid

import pytest

from chalicelib.clock import NOT_DELETED
from tests.conftest import Caller
from tests.helpers import (
    TIMESTAMP,
    assert_error,
    create_chat,
    get_chat,
    get_room,
    is_uuid,
    room_of,
    rooms_of,
    start_chat,
)
from tests.schema_check import all_fields, assert_valid, assert_valid_list

CHATROOM_FIELDS = all_fields("chatroom")

# ---- POST /chatrooms -------------------------------------------------------------------

def test_create_chatroom_returns_callers_chatroom_in_contract_field_order(make_agent):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b)
    assert list(room) == CHATROOM_FIELDS
    assert_valid("chatroom", room)


@pytest.mark.parametrize("permission", [16, 32, 64])
def test_create_chatroom_is_owned_by_the_caller(make_agent, permission):
    caller, other = make_agent(permission=permission), make_agent()
    room = start_chat(caller, other, name="hello", detail="there")
    assert is_uuid(room["id"])
    assert is_uuid(room["chat_id"])
    assert room["owner_id"] == caller.id
    assert room["customer_id"] == caller.customer_id
    assert (room["name"], room["detail"]) == ("hello", "there")


def test_create_chatroom_timestamps(make_agent):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b)
    assert TIMESTAMP.match(room["tm_create"]), room["tm_create"]
    assert room["tm_update"] == room["tm_create"]
    assert room["tm_delete"] == NOT_DELETED


def test_create_chatroom_adds_the_caller_to_participants(make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    room = start_chat(a, c, b)
    assert room["participant_ids"] == sorted([a.id, b.id, c.id])


def test_create_chatroom_deduplicates_participants_and_the_caller(make_agent):
    a, b = make_agent(), make_agent()
    response = a.post("/v1.0/chatrooms", {"participant_ids": [b.id, a.id, b.id, a.id], "name": "", "detail": ""})
    assert response.status_code == 200, response.body
    assert response.json_body["participant_ids"] == sorted([a.id, b.id])
    assert response.json_body["type"] == "normal"


def test_create_chatroom_with_one_other_is_normal(make_agent):
    a, b = make_agent(), make_agent()
    assert start_chat(a, b)["type"] == "normal"


def test_create_chatroom_with_two_others_is_group(make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    assert start_chat(a, b, c)["type"] == "group"


def test_create_chatroom_creates_a_chat_owned_by_the_caller(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    room = start_chat(a, b, c, name="plan", detail="the plan")
    chat = get_chat(customer, room["chat_id"])
    assert_valid("chat", chat)
    assert chat["owner_id"] == a.id
    assert chat["type"] == "group"
    assert chat["participant_ids"] == room["participant_ids"]
    assert (chat["name"], chat["detail"]) == ("plan", "the plan")


def test_create_chatroom_creates_a_chatroom_for_every_other_participant(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    room = start_chat(a, b, c, name="plan", detail="the plan")
    for agent in (b, c):
        theirs = room_of(customer, room["chat_id"], agent)
        assert theirs["id"] != room["id"]
        assert theirs["owner_id"] == agent.id
        assert theirs["participant_ids"] == room["participant_ids"]
        assert theirs["type"] == "group"
        assert (theirs["name"], theirs["detail"]) == ("plan", "the plan")


def test_created_chatroom_is_readable_by_id_unchanged(make_agent):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b)
    assert get_room(a, room["id"]) == room


@pytest.mark.parametrize("participant_ids", [[], ["self"], ["self", "self"]], ids=["nobody", "self", "self-twice"])
def test_create_chatroom_with_nobody_but_the_caller_is_400(customer, make_agent, participant_ids):
    a = make_agent()
    ids = [a.id if p == "self" else p for p in participant_ids]
    response = a.post("/v1.0/chatrooms", {"participant_ids": ids, "name": "", "detail": ""})
    assert_error(response, 400)
    assert "participant_ids" in response.json_body["Message"]
    assert rooms_of(customer, a.id) == []


def test_create_chatroom_with_customer_token_is_403(customer, make_agent):
    a, b = make_agent(), make_agent()
    response = customer.post("/v1.0/chatrooms", {"participant_ids": [a.id, b.id], "name": "", "detail": ""})
    assert_error(response, 403)
    assert rooms_of(customer, a.id) == []
    assert customer.get("/v1.0/chats").json_body["result"] == []


def test_create_chatroom_for_an_existing_normal_pair_is_409_naming_the_chat(customer, make_agent):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, b, a, name="chat name", detail="chat detail")
    response = a.post("/v1.0/chatrooms", {"participant_ids": [b.id], "name": "", "detail": ""})
    assert_error(response, 409)
    assert chat["id"] in response.json_body["Message"]
    assert [room["chat_id"] for room in rooms_of(customer, a.id)] == [chat["id"]]


def test_create_group_chatroom_next_to_a_normal_pair_is_allowed(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    create_chat(customer, a, b, name="chat name", detail="chat detail")
    assert start_chat(a, b, c)["type"] == "group"


# ---- GET /chatrooms -----------------------------------------------------------------------

def test_list_chatrooms_without_owner_id_lists_the_callers_own(customer, make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    mine = [start_chat(a, b), start_chat(c, a)]
    start_chat(b, c)
    response = a.get("/v1.0/chatrooms")
    assert response.status_code == 200, response.body
    assert_valid_list("chatroom", response.json_body)
    listed = response.json_body["result"]
    assert all(room["owner_id"] == a.id for room in listed)
    assert sorted(room["chat_id"] for room in listed) == sorted(room["chat_id"] for room in mine)


def test_list_chatrooms_items_have_contract_field_order(make_agent):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b)
    listed = a.get("/v1.0/chatrooms").json_body["result"]
    assert [list(item) for item in listed] == [CHATROOM_FIELDS]
    assert listed == [room]


def test_list_chatrooms_is_newest_first(make_agent):
    a, b, c, d = make_agent(), make_agent(), make_agent(), make_agent()
    for other in (b, c, d):
        start_chat(a, other)
    created = [room["tm_create"] for room in a.get("/v1.0/chatrooms").json_body["result"]]
    assert len(created) == 3
    assert created == sorted(created, reverse=True)


def test_list_chatrooms_without_owner_id_as_customer_is_400(customer, make_agent):
    a, b = make_agent(), make_agent()
    start_chat(a, b)
    response = customer.get("/v1.0/chatrooms")
    assert_error(response, 400)
    assert "owner_id" in response.json_body["Message"]


@pytest.mark.parametrize("who", ["customer", "admin", "manager", "self"])
def test_list_chatrooms_by_owner_id_allowed(customer, make_agent, who):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b)
    caller = {"customer": customer, "self": a}.get(who) or make_agent(permission=32 if who == "admin" else 64)
    response = caller.get(f"/v1.0/chatrooms?owner_id={a.id}")
    assert response.status_code == 200, response.body
    assert_valid_list("chatroom", response.json_body)
    assert response.json_body["result"] == [room]


@pytest.mark.parametrize("who", ["fellow participant", "outsider"])
def test_plain_agent_may_not_list_another_agents_chatrooms(make_agent, who):
    a, b = make_agent(), make_agent()
    start_chat(a, b)
    caller = b if who == "fellow participant" else make_agent()
    assert_error(caller.get(f"/v1.0/chatrooms?owner_id={a.id}"), 403)


def test_list_chatrooms_by_owner_id_of_another_customer_shows_nothing(make_agent, other_customer):
    a, b = make_agent(), make_agent()
    start_chat(a, b)
    response = other_customer.get(f"/v1.0/chatrooms?owner_id={a.id}")
    assert response.status_code != 403, response.body
    if response.status_code == 200:
        assert response.json_body["result"] == []
    else:
        assert_error(response, 404)


def test_list_chatrooms_omits_deleted_chatroom(make_agent):
    a, b, c = make_agent(), make_agent(), make_agent()
    kept = start_chat(a, b)
    gone = start_chat(a, c)
    assert a.delete(f"/v1.0/chatrooms/{gone['id']}").status_code == 200
    assert a.get("/v1.0/chatrooms").json_body["result"] == [kept]


# ---- GET /chatrooms/{id} ---------------------------------------------------------------------

def test_get_chatroom_by_id(make_agent):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b)
    response = a.get(f"/v1.0/chatrooms/{room['id']}")
    assert response.status_code == 200, response.body
    assert list(response.json_body) == CHATROOM_FIELDS
    assert_valid("chatroom", response.json_body)
    assert response.json_body == room


def test_get_unknown_chatroom_is_404(make_agent):
    assert_error(make_agent().get(f"/v1.0/chatrooms/{uuid.uuid4()}"), 404)


def test_get_chatroom_with_malformed_id_is_400(make_agent):
    assert_error(make_agent().get("/v1.0/chatrooms/not-a-uuid"), 400)


# ---- PUT /chatrooms/{id} ----------------------------------------------------------------------

def test_update_chatroom_changes_its_name_and_detail(make_agent):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b, name="old", detail="old detail")
    response = a.put(f"/v1.0/chatrooms/{room['id']}", {"name": "mine", "detail": "my notes"})
    assert response.status_code == 200, response.body
    updated = response.json_body
    assert list(updated) == CHATROOM_FIELDS
    assert_valid("chatroom", updated)
    assert (updated["name"], updated["detail"]) == ("mine", "my notes")
    assert updated["tm_create"] == room["tm_create"]
    assert updated["tm_update"] > room["tm_update"]
    assert updated["tm_delete"] == NOT_DELETED
    unchanged = {k: v for k, v in room.items() if k not in ("name", "detail", "tm_update")}
    assert {k: updated[k] for k in unchanged} == unchanged
    assert get_room(a, room["id"]) == updated


def test_update_chatroom_leaves_the_chat_and_other_chatrooms(customer, make_agent, fanout):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b, name="old", detail="old detail")
    chat = get_chat(customer, room["chat_id"])
    theirs = room_of(customer, room["chat_id"], b)
    assert a.put(f"/v1.0/chatrooms/{room['id']}", {"name": "mine", "detail": "my notes"}).status_code == 200
    fanout.drain()
    assert get_chat(customer, chat["id"]) == chat
    assert get_room(customer, theirs["id"]) == theirs


def test_update_deleted_chatroom_is_404(make_agent):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b)
    a.delete(f"/v1.0/chatrooms/{room['id']}")
    assert_error(a.put(f"/v1.0/chatrooms/{room['id']}", {"name": "x", "detail": "y"}), 404)


# ---- DELETE /chatrooms/{id} --------------------------------------------------------------------

def test_delete_chatroom_returns_the_deleted_chatroom(make_agent):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b)
    response = a.delete(f"/v1.0/chatrooms/{room['id']}")
    assert response.status_code == 200, response.body
    deleted = response.json_body
    assert list(deleted) == CHATROOM_FIELDS
    assert_valid("chatroom", deleted)
    assert deleted["id"] == room["id"]
    assert TIMESTAMP.match(deleted["tm_delete"]), deleted["tm_delete"]
    assert deleted["tm_delete"] != NOT_DELETED
    assert deleted["tm_update"] == deleted["tm_delete"]


def test_deleted_chatroom_is_still_readable_by_id(make_agent):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b)
    deleted = a.delete(f"/v1.0/chatrooms/{room['id']}").json_body
    assert get_room(a, room["id"]) == deleted


def test_delete_chatroom_leaves_the_chat_and_other_chatrooms(customer, make_agent, fanout):
    a, b, c = make_agent(), make_agent(), make_agent()
    room = start_chat(a, b, c)
    chat = get_chat(customer, room["chat_id"])
    others = [room_of(customer, room["chat_id"], agent) for agent in (b, c)]
    assert a.delete(f"/v1.0/chatrooms/{room['id']}").status_code == 200
    fanout.drain()
    assert get_chat(customer, chat["id"]) == chat
    for theirs in others:
        assert get_room(customer, theirs["id"]) == theirs
        assert rooms_of(customer, theirs["owner_id"]) == [theirs]


def test_delete_chatroom_keeps_the_owner_in_the_chat(customer, make_agent, fanout):
    a, b = make_agent(), make_agent()
    room = start_chat(a, b)
    a.delete(f"/v1.0/chatrooms/{room['id']}")
    fanout.drain()
    assert a.id in get_chat(customer, room["chat_id"])["participant_ids"]


# ---- authorization matrix inside the customer ----------------------------------------------
#
# The plain agent "owner" has a chatroom in a group chat with the plain agent
# "member"; "outsider" is a plain agent outside it. Customer tokens, admins
# and managers may touch any chatroom; a plain agent only their own.

ROLES = ["customer", "admin", "manager", "owner", "member", "outsider"]
OPERATIONS = ["get", "update", "delete", "list"]
ALLOWED = {"customer", "admin", "manager", "owner"}


@pytest.fixture
def owned_room(customer, make_agent):
    agents = {
        "owner": make_agent(name="owner"),
        "member": make_agent(name="member"),
        "third": make_agent(name="third"),
        "outsider": make_agent(name="outsider"),
        "admin": make_agent(permission=32, name="admin"),
        "manager": make_agent(permission=64, name="manager"),
        "customer": customer,
    }
    room = start_chat(agents["owner"], agents["member"], agents["third"])
    return room, agents


def call(operation, caller, room):
    if operation == "get":
        return caller.get(f"/v1.0/chatrooms/{room['id']}")
    if operation == "update":
        return caller.put(f"/v1.0/chatrooms/{room['id']}", {"name": "renamed", "detail": "changed"})
    if operation == "delete":
        return caller.delete(f"/v1.0/chatrooms/{room['id']}")
    if operation == "list":
        return caller.get(f"/v1.0/chatrooms?owner_id={room['owner_id']}")
    raise AssertionError(operation)


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("role", ROLES)
def test_authorization_matrix(owned_room, customer, role, operation):
    room, agents = owned_room
    response = call(operation, agents[role], room)
    if role in ALLOWED:
        assert response.status_code == 200, response.body
        if operation == "list":
            assert_valid_list("chatroom", response.json_body)
            assert response.json_body["result"] == [room]
            return
        assert_valid("chatroom", response.json_body)
        assert response.json_body["id"] == room["id"]
        if operation == "get":
            assert response.json_body == room
        else:
            assert get_room(customer, room["id"]) != room
    else:
        assert_error(response, 403)
        assert get_room(customer, room["id"]) == room


# ---- another customer: always 404, never 403, nothing changes --------------------------------

@pytest.mark.parametrize("operation", ["get", "update", "delete"])
def test_another_customer_gets_404_and_changes_nothing(owned_room, customer, stranger, operation, fanout):
    room, agents = owned_room
    chat = get_chat(customer, room["chat_id"])
    response = call(operation, stranger, room)
    assert_error(response, 404)
    fanout.drain()
    assert get_room(customer, room["id"]) == room
    assert rooms_of(customer, agents["owner"].id) == [room]
    assert get_chat(customer, chat["id"]) == chat


def test_another_customers_agent_with_the_owners_id_gets_404(owned_room, customer, client):
    """An agent id is only meaningful inside its customer."""
    room, agents = owned_room
    impostor = Caller(client, str(uuid.uuid4()), agents["owner"].id, "impostor", 16)
    assert_error(impostor.get(f"/v1.0/chatrooms/{room['id']}"), 404)
    assert_error(impostor.delete(f"/v1.0/chatrooms/{room['id']}"), 404)
    assert impostor.get("/v1.0/chatrooms").json_body["result"] == []
    assert get_room(customer, room["id"]) == room
