"""Small steps the HTTP tests share: one helper per concept.

Arguments that name something take what the test has at hand: a resource (a dict
with an "id"), a Caller (its agent id) or the id itself."""

import re
import uuid

from tests.schema_check import assert_valid_list

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$")


def id_of(thing) -> str:
    """The id of a resource (dict), of a Caller (its agent id), or the id itself."""
    if isinstance(thing, dict):
        return thing["id"]
    return getattr(thing, "id", thing)


def ok(response):
    """The JSON body of a 200 response."""
    assert response.status_code == 200, (response.status_code, response.body)
    return response.json_body


def accepted(response):
    """The JSON body of a 202 response (a job started)."""
    assert response.status_code == 202, (response.status_code, response.body)
    return response.json_body


# ---- chats --------------------------------------------------------------------------------

def create_chat(caller, *members, owner=None, chat_type=None, name="", detail=""):
    """POST /v1.0/chats with `members` (agents or ids, duplicates kept as given): owned by
    `owner`, else by the first member; normal for two distinct members, group above."""
    ids = [id_of(member) for member in members]
    body = {
        "type": chat_type or ("normal" if len(set(ids)) == 2 else "group"),
        "owner_id": id_of(owner) if owner is not None else ids[0],
        "participant_ids": ids,
        "name": name,
        "detail": detail,
    }
    return ok(caller.post("/v1.0/chats", body))


def get_chat(caller, chat):
    return ok(caller.get(f"/v1.0/chats/{id_of(chat)}"))


# ---- chatrooms ----------------------------------------------------------------------------

def start_chat(agent, *others, name="room", detail="room detail"):
    """POST /v1.0/chatrooms as `agent` with `others`: the caller's chatroom."""
    body = {"participant_ids": [id_of(other) for other in others], "name": name, "detail": detail}
    return ok(agent.post("/v1.0/chatrooms", body))


def get_room(caller, room):
    return ok(caller.get(f"/v1.0/chatrooms/{id_of(room)}"))


def rooms_of(caller, owner=None):
    """The live chatrooms of `owner` listed by `caller` (GET /chatrooms?owner_id=); without
    `owner`, the caller's own (GET /chatrooms)."""
    path = "/v1.0/chatrooms" if owner is None else f"/v1.0/chatrooms?owner_id={id_of(owner)}"
    page = ok(caller.get(path))
    assert_valid_list("chatroom", page)
    return page["result"]


def room_of(caller, chat, owner=None):
    """The one live chatroom of `owner` (default: the caller) in `chat`."""
    chat_id = id_of(chat)
    rooms = [room for room in rooms_of(caller, owner) if room["chat_id"] == chat_id]
    assert len(rooms) == 1, rooms
    return rooms[0]


# ---- messages -----------------------------------------------------------------------------

def send_chatmessage(caller, chat, text="test message", **extra):
    """POST /v1.0/chatmessages: a normal message with `text` (and any other field in `extra`)."""
    return ok(caller.post("/v1.0/chatmessages", {"chat_id": id_of(chat), "type": "normal", "text": text, **extra}))


def send_chatroommessage(caller, room, text="hello", **extra):
    return ok(caller.post("/v1.0/chatroommessages", {"chatroom_id": id_of(room), "text": text, **extra}))


def chatmessages_of(caller, chat):
    """The first page of a chat's live messages."""
    return ok(caller.get(f"/v1.0/chatmessages?chat_id={id_of(chat)}"))["result"]


def copies(agent, chat):
    """The first page of the live copies in the agent's chatroom of `chat`."""
    return chatroommessages_of(agent, room_of(agent, chat))


def chatroommessages_of(caller, room):
    """The first page of the live copies in a chatroom."""
    return ok(caller.get(f"/v1.0/chatroommessages?chatroom_id={id_of(room)}"))["result"]


# ---- stream records ---------------------------------------------------------------------

def insert_of(event, resource, kind="chatmessage"):
    """The one stream record of this resource's INSERT in a Lambda event."""
    [record] = [
        r for r in event["Records"]
        if r["eventName"] == "INSERT" and r["dynamodb"]["NewImage"].get("id") == {"S": id_of(resource)}
        and r["dynamodb"]["NewImage"]["kind"] == {"S": kind}
    ]
    return record


# ---- answers ------------------------------------------------------------------------------

def assert_error(response, status):
    assert response.status_code == status, (response.status_code, response.body)
    assert set(response.json_body) == {"Code", "Message"}, response.json_body


def is_uuid(value):
    try:
        return str(uuid.UUID(value)) == value
    except (TypeError, ValueError):
        return False


# ---- races ----------------------------------------------------------------------------------

def race_fanouts_and_mark_reads(fanout, records, reader, room_id, marks=4):
    """Each stream record handled on a thread of its own while `reader` marks
    `room_id` read `marks` times; returns what went wrong (failed records,
    refused mark-reads)."""
    import threading

    errors = []

    def deliver(part):
        try:
            result = fanout.invoke({"Records": part})
            assert result == {"batchItemFailures": []}, result
        except Exception as error:  # noqa: BLE001 (reported to the caller)
            errors.append(error)

    def mark():
        for _ in range(marks):
            response = reader.post(f"/v1.0/chatrooms/{room_id}/read", {})
            if response.status_code != 200:
                errors.append(response.body)

    threads = [threading.Thread(target=deliver, args=([record],)) for record in records]
    threads.append(threading.Thread(target=mark))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
