"""Clients written against VoIPBIN's published chat API work here: each of its
30 chat operations (method and path as VoIPBIN publishes them, bodies in its
shapes) answers 200 with a body that conforms to the project's own schemas;
and its agent self-service routes act on the caller's own chatrooms only."""

import re

import pytest

from tests.helpers import assert_error, create_chat
from tests.schema_check import assert_valid, assert_valid_list

# VoIPBIN's chat operations (its published OpenAPI document, chat paths), written out here.
VOIPBIN_OPERATIONS = [
    ("GET", "/chatmessages"), ("POST", "/chatmessages"), ("DELETE", "/chatmessages/{id}"),
    ("GET", "/chatmessages/{id}"), ("GET", "/chatroommessages"), ("POST", "/chatroommessages"),
    ("DELETE", "/chatroommessages/{id}"), ("GET", "/chatroommessages/{id}"), ("GET", "/chatrooms"),
    ("POST", "/chatrooms"), ("DELETE", "/chatrooms/{id}"), ("GET", "/chatrooms/{id}"), ("PUT", "/chatrooms/{id}"),
    ("GET", "/chats"), ("POST", "/chats"), ("DELETE", "/chats/{id}"), ("GET", "/chats/{id}"), ("PUT", "/chats/{id}"),
    ("POST", "/chats/{id}/participant_ids"), ("DELETE", "/chats/{id}/participant_ids/{participant_id}"),
    ("PUT", "/chats/{id}/room_owner_id"), ("GET", "/service_agents/chatroommessages"),
    ("POST", "/service_agents/chatroommessages"), ("DELETE", "/service_agents/chatroommessages/{id}"),
    ("GET", "/service_agents/chatroommessages/{id}"), ("GET", "/service_agents/chatrooms"),
    ("POST", "/service_agents/chatrooms"), ("DELETE", "/service_agents/chatrooms/{id}"),
    ("GET", "/service_agents/chatrooms/{id}"), ("PUT", "/service_agents/chatrooms/{id}"),
]


def shape(path):
    return re.sub(r"{\w+}", "{}", path)


def test_every_voipbin_chat_operation_exists_and_is_documented(client):
    document = client.http.get("/v1.0/openapi.json").json_body
    ours = {(method.upper(), shape(path.removeprefix("/v1.0"))) for path, methods in document["paths"].items()
            for method in methods}
    missing = [(method, path) for method, path in VOIPBIN_OPERATIONS if (method, shape(path)) not in ours]
    assert len(VOIPBIN_OPERATIONS) == 30 and not missing, missing


@pytest.fixture
def world(customer, make_agent, fanout):
    """An admin agent (VoIPBIN's consoles use one) in a group with two agents, one message."""
    admin, a, b = make_agent(permission=32, name="admin"), make_agent(), make_agent()
    chat = create_chat(customer, admin, a, b)
    room = next(r for r in admin.get("/v1.0/chatrooms").json_body["result"] if r["chat_id"] == chat["id"])
    copy = admin.post("/v1.0/chatroommessages", {"chatroom_id": room["id"], "text": "hi", "medias": []}).json_body
    fanout.drain()
    return {"admin": admin, "a": a, "b": b, "chat": chat, "room": room, "copy": copy, "make_agent": make_agent}


def kind_of(path):
    for kind in ("chatroommessage", "chatmessage", "chatroom", "chat"):
        if f"/{kind}s" in path:
            return kind
    raise AssertionError(path)


# (method, VoIPBIN path, how to fill it in, body) in an order where each step leaves the next one possible
def steps(w):
    chat, room, copy, admin = w["chat"], w["room"], w["copy"], w["admin"]
    newcomer = w["make_agent"]().id
    return [
        ("GET", "/chats?page_size=10", None),
        ("GET", f"/chats/{chat['id']}", None),
        ("PUT", f"/chats/{chat['id']}", {"name": "renamed", "detail": "by VoIPBIN's client"}),
        ("POST", f"/chats/{chat['id']}/participant_ids", {"participant_id": newcomer}),
        ("DELETE", f"/chats/{chat['id']}/participant_ids/{newcomer}", None),
        ("PUT", f"/chats/{chat['id']}/room_owner_id", {"room_owner_id": admin.id}),
        ("GET", f"/chatrooms?owner_id={admin.id}&page_size=10", None),
        ("GET", f"/chatrooms/{room['id']}", None),
        ("PUT", f"/chatrooms/{room['id']}", {"name": "mine", "detail": "my view"}),
        ("GET", f"/chatmessages?chat_id={chat['id']}&page_size=10", None),
        ("GET", f"/chatmessages/{copy['messagechat_id']}", None),
        ("POST", "/chatmessages", {"chat_id": chat["id"], "source": {"type": "agent", "target": admin.id},
                                   "type": "normal", "text": "hello", "medias": []}),
        ("GET", f"/chatroommessages?chatroom_id={room['id']}&page_size=10", None),
        ("GET", f"/chatroommessages/{copy['id']}", None),
        ("POST", "/chatroommessages", {"chatroom_id": room["id"], "text": "again", "medias": []}),
        ("GET", "/service_agents/chatrooms?page_size=10", None),
        ("GET", f"/service_agents/chatrooms/{room['id']}", None),
        ("PUT", f"/service_agents/chatrooms/{room['id']}", {"name": "self", "detail": "service"}),
        ("GET", f"/service_agents/chatroommessages?chatroom_id={room['id']}&page_size=10", None),
        ("GET", f"/service_agents/chatroommessages/{copy['id']}", None),
        ("POST", "/service_agents/chatroommessages", {"chatroom_id": room["id"], "text": "self", "medias": []}),
        ("POST", "/service_agents/chatrooms", {"participant_ids": [w["a"].id], "name": "side", "detail": "talk"}),
        ("POST", "/chatrooms", {"participant_ids": [w["b"].id], "name": "other", "detail": ""}),
        ("DELETE", f"/service_agents/chatroommessages/{copy['id']}", None),
        ("DELETE", f"/chatroommessages/{copy['id']}", None),
        ("DELETE", f"/chatmessages/{copy['messagechat_id']}", None),
        ("POST", "/chats", {"type": "normal", "owner_id": admin.id, "participant_ids": [admin.id, newcomer],
                            "name": "pair", "detail": ""}),
        ("DELETE", f"/service_agents/chatrooms/{room['id']}", None),
        ("DELETE", f"/chatrooms/{room['id']}", None),
        ("DELETE", f"/chats/{chat['id']}", None),
    ]


def test_a_voipbin_client_drives_all_30_operations(world):
    admin = world["admin"]
    driven = set()
    for method, path, body in steps(world):
        response = getattr(admin, method.lower())(f"/v1.0{path}", body) if body is not None else \
            getattr(admin, method.lower())(f"/v1.0{path}")
        assert response.status_code == 200, (method, path, response.body)
        bare = path.split("?")[0]
        if "?" in path and method == "GET" and bare.count("/") in (1, 2) and not re.search(r"/[0-9a-f-]{36}$", bare):
            assert_valid_list(kind_of(bare), response.json_body)
        else:
            assert_valid(kind_of(bare), response.json_body)
        driven.add((method, shape(re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{}", bare))))
    assert driven == {(method, shape(path)) for method, path in VOIPBIN_OPERATIONS}


# ---- the self-service routes act on the caller's own things only ------------------------

@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/service_agents/chatrooms/{room}"), ("PUT", "/service_agents/chatrooms/{room}"),
    ("DELETE", "/service_agents/chatrooms/{room}"), ("GET", "/service_agents/chatroommessages?chatroom_id={room}"),
    ("GET", "/service_agents/chatroommessages/{copy}"), ("DELETE", "/service_agents/chatroommessages/{copy}"),
    ("POST", "/service_agents/chatroommessages"),
])
def test_another_agents_chatroom_is_403_even_for_an_admin_and_404_across_customers(world, stranger, method, path):
    a = world["a"]
    room = next(r for r in a.get("/v1.0/chatrooms").json_body["result"] if r["chat_id"] == world["chat"]["id"])
    copy = a.get(f"/v1.0/chatroommessages?chatroom_id={room['id']}").json_body["result"][0]
    url = "/v1.0" + path.format(room=room["id"], copy=copy["id"])
    body = {"name": "x"} if method == "PUT" else {"chatroom_id": room["id"], "text": "x"} if method == "POST" else None

    def call(caller):
        return getattr(caller, method.lower())(url, body) if body else getattr(caller, method.lower())(url)

    assert_error(call(world["admin"]), 403)
    if stranger.id is not None:  # another customer's agent (a customer token is refused first: 403)
        assert_error(call(stranger), 404)
    assert call(a).status_code == 200


def test_customer_tokens_are_refused_on_the_self_service_routes(customer, world):
    for path in ("/v1.0/service_agents/chatrooms", f"/v1.0/service_agents/chatrooms/{world['room']['id']}"):
        assert_error(customer.get(path), 403)


def test_the_self_service_list_is_the_callers_own_and_pages_like_chatrooms(world):
    a = world["a"]
    ours = a.get("/v1.0/service_agents/chatrooms?page_size=1")
    theirs = a.get("/v1.0/chatrooms?page_size=1")
    assert ours.status_code == 200 and ours.json_body == theirs.json_body


def test_room_owner_id_changes_the_owner_and_names_its_field(world):
    admin, chat = world["admin"], world["chat"]
    changed = admin.put(f"/v1.0/chats/{chat['id']}/room_owner_id", {"room_owner_id": world["a"].id})
    assert changed.status_code == 200 and changed.json_body["owner_id"] == world["a"].id
    outsider = world["make_agent"]().id
    refused = admin.put(f"/v1.0/chats/{chat['id']}/room_owner_id", {"room_owner_id": outsider})
    assert_error(refused, 400)
    assert refused.json_body["Message"].startswith("room_owner_id")
