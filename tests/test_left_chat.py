"""What a participant sees of a chat stops when they leave it: their deleted
chatroom and their copies show the chat as it was, and no later change is
pushed to them."""

from tests.helpers import create_chat, get_room, id_of, ok, room_of, send_chatmessage
from tests.test_realtime import connect, pushed  # noqa: F401 - a fixture


def test_a_removed_participant_sees_the_chat_as_it_was_when_they_left(customer, make_agent, fanout, pushed):  # noqa: F811
    owner, leaver, stays = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, owner, leaver, stays)
    fanout.drain()
    message = send_chatmessage(owner, chat, "before they left")
    fanout.drain()
    leaver_room, stays_room = room_of(leaver, chat), room_of(stays, chat)
    [leaver_copy] = ok(leaver.get(f"/v1.0/chatroommessages?chatroom_id={leaver_room['id']}"))["result"]
    listening = connect(leaver)

    ok(owner.delete(f"/v1.0/chats/{id_of(chat)}/participant_ids/{leaver.id}"))
    fanout.drain()
    newcomer = make_agent()
    ok(owner.post(f"/v1.0/chats/{id_of(chat)}/participant_ids", {"participant_id": newcomer.id}))
    ok(owner.put(f"/v1.0/chatmessages/{message['id']}", {"text": "edited after they left"}))
    fanout.drain()

    left = get_room(leaver, leaver_room)
    assert left["tm_delete"] != "9999-01-01 00:00:00.000000"
    assert left["participant_ids"] == sorted([owner.id, leaver.id, stays.id])
    assert left["last_chatroommessage"]["text"] == "before they left"
    copy = ok(leaver.get(f"/v1.0/chatroommessages/{leaver_copy['id']}"))
    assert copy["text"] == "before they left"
    assert copy["tm_update"] < left["tm_delete"] or copy["tm_update"] == copy["tm_create"]
    listed = ok(leaver.get(f"/v1.0/chatroommessages?chatroom_id={leaver_room['id']}"))["result"]
    assert [c["text"] for c in listed] == ["before they left"]
    assert not [m for m in pushed[listening] if m["type"] == "messagechatroom_updated"]

    # those who stay see the chat go on
    assert get_room(stays, stays_room)["participant_ids"] == sorted([owner.id, stays.id, newcomer.id])
    [stays_copy] = ok(stays.get(f"/v1.0/chatroommessages?chatroom_id={stays_room['id']}"))["result"]
    assert stays_copy["text"] == "edited after they left"


def test_a_message_edited_before_they_left_and_deleted_after_shows_its_edit(customer, make_agent, fanout):
    """A delete moves tm_update: what the leaver saw is the text of the message's
    last edit before they left, not the version before that edit."""
    owner, leaver, stays = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, owner, leaver, stays)
    fanout.drain()
    message = send_chatmessage(owner, chat, "first words")
    ok(owner.put(f"/v1.0/chatmessages/{message['id']}", {"text": "as they saw it"}))
    fanout.drain()
    leaver_room = room_of(leaver, chat)
    [leaver_copy] = ok(leaver.get(f"/v1.0/chatroommessages?chatroom_id={leaver_room['id']}"))["result"]

    ok(owner.delete(f"/v1.0/chats/{id_of(chat)}/participant_ids/{leaver.id}"))
    fanout.drain()
    ok(owner.delete(f"/v1.0/chatmessages/{message['id']}"))
    fanout.drain()

    assert ok(leaver.get(f"/v1.0/chatroommessages/{leaver_copy['id']}"))["text"] == "as they saw it"
