"""Findings of issue 22 on who may change what, through the HTTP layer and the
real stream records: a replayed record of an admin's post into another agent's
chatroom counts once, mark-read to a copy the list index has not caught up
with moves the marker, and a media carries exactly its type's payload."""

import pytest

from chalicelib.storage.models import ChatroommessageItem
from tests.helpers import (
    assert_error,
    create_chat,
    insert_of,
    ok,
    room_of,
    send_chatmessage,
    send_chatroommessage,
)
from tests.test_files import uploaded_file


@pytest.fixture
def trio(customer, make_agent, fanout, bucket):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    fanout.drain()
    return a, b, c, chat


def copies(agent, chat):
    return ok(agent.get(f"/v1.0/chatroommessages?chatroom_id={room_of(agent, chat)['id']}"))["result"]


# ---- 2. an admin's post into another agent's chatroom, replayed ----------------------------

def test_an_admins_post_into_another_agents_chatroom_counts_once_however_often_replayed(trio, admin, fanout):
    a, b, c, chat = trio
    copy = send_chatroommessage(admin, room_of(a, chat), "from the admin")
    record = insert_of(fanout.read_event(), copy["messagechat_id"])
    for _ in range(3):
        assert fanout.invoke({"Records": [record]}) == {"batchItemFailures": []}
    fanout.drain()
    for agent in (a, b, c):
        assert room_of(agent, chat)["unread_count"] == 1, agent
    assert [shown["id"] for shown in copies(a, chat)] == [copy["id"]]


# ---- 3. mark-read to a copy the list index has not caught up with ------------------------

def test_mark_read_to_a_copy_the_index_has_not_caught_up_with_moves_the_marker(trio, fanout, monkeypatch):
    """Index lag simulated by hiding the copy from every list-index Query of its chatroom
    (as DynamoDB's eventually consistent index does for a moment): the table has it."""
    a, b, _, chat = trio
    for text in ("1", "2", "3"):
        send_chatmessage(b, chat, text)
    fanout.drain()
    listed = copies(a, chat)  # newest first: 3, 2, 1
    middle = next(copy for copy in listed if copy["text"] == "2")
    index_query = ChatroommessageItem.list_index.query

    def lagging(*args, **kwargs):
        return [copy for copy in index_query(*args, **kwargs) if copy.id != middle["id"]]

    monkeypatch.setattr(ChatroommessageItem.list_index, "query", lagging)
    read = ok(a.post(f"/v1.0/chatrooms/{room_of(a, chat)['id']}/read", {"chatroommessage_id": middle["id"]}))
    assert read["tm_read"] == middle["tm_create"]
    assert read["unread_count"] == 1  # "3"
    monkeypatch.undo()
    assert room_of(a, chat)["tm_read"] == middle["tm_create"]


# ---- 4. files ------------------------------------------------------------------------------

def test_a_link_media_carrying_a_file_id_is_400_naming_the_media(trio):
    a, b, _, chat = trio
    file = uploaded_file(b)
    link = {"type": "link", "link_url": "https://example.com/", "file_id": file["id"]}
    response = b.post("/v1.0/chatmessages", {"chat_id": chat["id"], "type": "normal", "text": "t",
                                             "medias": [{"type": "link", "link_url": "https://example.com/"}, link]})
    assert_error(response, 400)
    assert response.json_body["Message"].startswith("medias[1]"), response.json_body
    assert_error(a.get(f"/v1.0/files/{file['id']}"), 404)
