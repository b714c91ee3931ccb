"""@mentions: `mentions` on both sends (validated), on chatmessages and copies,
and each chatroom's `mention_count` (its unread copies that mention its owner),
kept by the fan-out's own transactions: exact through replays, concurrent
fan-outs racing mark-reads, deletes; cleared by a mark-read."""

import uuid

from chalicelib.storage.models import ChatroomItem
from tests.helpers import (
    assert_error,
    chatroommessages_of,
    ok,
    race_fanouts_and_mark_reads,
    room_of,
    send_chatmessage,
    send_chatroommessage,
)


def counts(agent, chat):
    shown = room_of(agent, chat)
    return shown["unread_count"], shown["mention_count"]


def recount(agent, chat):
    """What mention_count must be: live copies not from the owner, newer than the marker, mentioning the owner."""
    shown = room_of(agent, chat)
    return sum(
        1 for copy in chatroommessages_of(agent, shown)
        if copy["tm_create"] > shown["tm_read"] and copy["source"]["target"] != agent.id
        and agent.id in copy["mentions"])


def test_mentions_are_shown_on_the_message_and_every_copy(trio, fanout):
    a, b, c, chat = trio
    plain = send_chatmessage(a, chat, "no one")
    message = send_chatmessage(a, chat, "hey b", mentions=[b.id, b.id])  # a duplicate is dropped
    assert plain["mentions"] == [] and message["mentions"] == [b.id]
    assert list(message)[-1] == "mentions"  # after the fields that were there before
    copy = send_chatroommessage(b, room_of(b, chat), "hey a and c", mentions=[a.id, c.id])
    assert copy["mentions"] == [a.id, c.id]
    fanout.drain()
    for agent in (a, b, c):
        shown = {item["messagechat_id"]: item["mentions"] for item in chatroommessages_of(agent, room_of(agent, chat))}
        assert shown[message["id"]] == [b.id] and shown[plain["id"]] == []
        assert shown[copy["messagechat_id"]] == [a.id, c.id]
    assert ok(c.get(f"/v1.0/chatmessages/{message['id']}"))["mentions"] == [b.id]


def test_mentions_must_name_participants_at_most_50(trio, make_agent):
    a, b, _, chat = trio
    outsider = make_agent()
    for body in ({"mentions": [outsider.id]}, {"mentions": ["not-a-uuid"]}, {"mentions": b.id},
                 {"mentions": [str(uuid.uuid4()) for _ in range(51)]}):
        response = a.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "x", **body})
        assert_error(response, 400)
        assert "mentions" in response.json_body["Message"], response.json_body
        response = a.post("/v1.0/chatroommessages", {"chatroom_id": room_of(a, chat)["id"], "text": "x", **body})
        assert_error(response, 400)
        assert "mentions" in response.json_body["Message"], response.json_body
    response = a.post("/v1.0/service_agents/chatroommessages",
                      {"chatroom_id": room_of(a, chat)["id"], "text": "x", "mentions": [outsider.id]})
    assert_error(response, 400)
    assert "mentions" in response.json_body["Message"]
    sent = ok(a.post("/v1.0/service_agents/chatroommessages",
                     {"chatroom_id": room_of(a, chat)["id"], "text": "x", "mentions": [b.id]}))
    assert sent["mentions"] == [b.id]


def test_a_mention_is_counted_for_the_mentioned_only_and_cleared_by_mark_read(trio, fanout):
    a, b, c, chat = trio
    send_chatmessage(a, chat, "hey b", mentions=[b.id])
    send_chatmessage(a, chat, "hey me", mentions=[a.id])  # one's own message never counts
    send_chatmessage(c, chat, "everyone")
    fanout.drain()
    assert counts(a, chat) == (1, 0)
    assert counts(b, chat) == (3, 1)
    assert counts(c, chat) == (2, 0)
    cleared = ok(b.post(f"/v1.0/chatrooms/{room_of(b, chat)['id']}/read", {}))
    assert (cleared["unread_count"], cleared["mention_count"]) == (0, 0)
    assert counts(b, chat) == (0, 0)


def test_mark_read_to_a_copy_recounts_the_mentions_after_it(trio, fanout):
    a, b, _, chat = trio
    first = send_chatmessage(a, chat, "1", mentions=[b.id])
    send_chatmessage(a, chat, "2")
    send_chatmessage(a, chat, "3", mentions=[b.id])
    fanout.drain()
    assert counts(b, chat) == (3, 2)
    mine = room_of(b, chat)
    copy = next(item for item in chatroommessages_of(b, mine) if item["messagechat_id"] == first["id"])
    shown = ok(b.post(f"/v1.0/chatrooms/{mine['id']}/read", {"chatroommessage_id": copy["id"]}))
    assert (shown["unread_count"], shown["mention_count"]) == (2, 1)


def test_a_replayed_record_counts_a_mention_once(trio, fanout):
    a, b, _, chat = trio
    send_chatmessage(a, chat, "once", mentions=[b.id])
    event = fanout.read_event()
    for _ in range(3):
        assert fanout.invoke(event) == {"batchItemFailures": []}
    fanout.drain()
    assert counts(b, chat) == (1, 1)


def test_deleting_an_unread_mention_takes_it_back(trio, fanout):
    a, b, c, chat = trio
    message = send_chatmessage(a, chat, "gone soon", mentions=[b.id, c.id])
    kept = send_chatroommessage(a, room_of(a, chat), "stays", mentions=[c.id])
    fanout.drain()
    assert counts(b, chat) == (2, 1) and counts(c, chat) == (2, 2)
    ok(a.delete(f"/v1.0/chatmessages/{message['id']}"))
    fanout.drain()
    assert counts(b, chat) == (1, 0) and counts(c, chat) == (1, 1)
    # c deletes their own copy of the other one: their count follows, in that chatroom only
    copy = next(item for item in chatroommessages_of(c, room_of(c, chat)) if item["messagechat_id"] ==
                kept["messagechat_id"])
    ok(c.delete(f"/v1.0/chatroommessages/{copy['id']}"))
    assert counts(c, chat) == (0, 0) and counts(b, chat) == (1, 0)


def test_concurrent_fanouts_and_mark_reads_keep_the_mention_count_exact(trio, fanout):
    a, b, c, chat = trio
    for index in range(12):
        send_chatmessage(b if index % 2 else c, chat, f"m{index}", mentions=[a.id] if index % 3 else [])
    records = fanout.read_event()["Records"]
    mine = room_of(a, chat)
    errors = race_fanouts_and_mark_reads(fanout, records, a, mine["id"])
    fanout.drain()
    assert not errors, errors
    assert room_of(a, chat)["mention_count"] == recount(a, chat)
    ok(a.post(f"/v1.0/chatrooms/{mine['id']}/read", {}))
    assert counts(a, chat) == (0, 0)


def test_a_chatroom_written_before_read_state_counts_its_mentions_from_its_copies(trio, fanout):
    a, b, _, chat = trio
    send_chatmessage(b, chat, "before", mentions=[a.id])
    send_chatmessage(b, chat, "not you")
    fanout.drain()
    stored = ChatroomItem.get(ChatroomItem.key(a.customer_id, room_of(a, chat)["id"]), "#")
    stored.update([ChatroomItem.unread.remove(), ChatroomItem.tm_read.remove(), ChatroomItem.tm_activity.remove(),
                   ChatroomItem.revision.remove(), ChatroomItem.last_copy_id.remove(),
                   ChatroomItem.last_messagechat_id.remove(), ChatroomItem.mention_count.remove()])
    assert counts(a, chat) == (0, 0)  # nothing known yet: shown as read
    send_chatmessage(b, chat, "after", mentions=[a.id])
    fanout.drain()
    assert counts(a, chat) == (3, 2)
    shown = ok(a.post(f"/v1.0/chatrooms/{room_of(a, chat)['id']}/read", {}))
    assert (shown["unread_count"], shown["mention_count"]) == (0, 0)
