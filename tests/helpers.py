"""Small steps the HTTP tests share."""

import uuid

from tests.schema_check import assert_valid_list


def create_chat(caller, *agents, name="", detail=""):
    """POST /v1.0/chats with `agents` (the first owns it): normal for two, group above."""
    body = {
        "type": "normal" if len(agents) == 2 else "group",
        "owner_id": agents[0].id,
        "participant_ids": [agent.id for agent in agents],
        "name": name,
        "detail": detail,
    }
    response = caller.post("/v1.0/chats", body)
    assert response.status_code == 200, response.body
    return response.json_body


def get_chat(caller, chat_id):
    response = caller.get(f"/v1.0/chats/{chat_id}")
    assert response.status_code == 200, response.body
    return response.json_body


def get_room(caller, room_id):
    response = caller.get(f"/v1.0/chatrooms/{room_id}")
    assert response.status_code == 200, response.body
    return response.json_body


def rooms_of(customer, agent_id):
    """The live chatrooms of one agent, listed with the customer's token."""
    response = customer.get(f"/v1.0/chatrooms?owner_id={agent_id}")
    assert response.status_code == 200, response.body
    assert_valid_list("chatroom", response.json_body)
    return response.json_body["result"]


def room_of(customer, agent_id, chat_id):
    rooms = [room for room in rooms_of(customer, agent_id) if room["chat_id"] == chat_id]
    assert len(rooms) == 1, rooms
    return rooms[0]


def assert_error(response, status):
    assert response.status_code == status, (response.status_code, response.body)
    assert set(response.json_body) == {"Code", "Message"}, response.json_body


def is_uuid(value):
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError):
        return False
