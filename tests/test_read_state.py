"""Read state and the inbox: every chatroom's unread count, read marker,
newest activity and preview, kept exact through the HTTP layer and the real
stream: replays, concurrent fan-outs, mark-read racing a fan-out, deletes."""

from collections import defaultdict

from chalicelib.services import delivery
from chalicelib.storage.models import ChatroomItem
from tests.helpers import (
    assert_error,
    create_chat,
    ok,
    race_fanouts_and_mark_reads,
    room_of,
    send_chatmessage,
    send_chatroommessage,
)
from tests.test_realtime import connect


def room(agent, chat):
    return room_of(agent, chat)


def copies(agent, chat):
    return ok(agent.get(f"/v1.0/chatroommessages?chatroom_id={room(agent, chat)['id']}"))["result"]


def recount(agent, chat):
    """What the unread count must be: live copies not from the owner, newer than the marker."""
    shown = room(agent, chat)
    return sum(1 for copy in copies(agent, chat)
               if copy["tm_create"] > shown["tm_read"] and copy["source"]["target"] != agent.id)


def test_a_new_chatroom_starts_read_with_no_activity(trio):
    a, _, _, chat = trio
    shown = room(a, chat)
    assert shown["unread_count"] == 0 and shown["last_chatroommessage"] is None
    assert shown["tm_read"] == shown["tm_activity"] == shown["tm_create"]


def test_copies_from_others_count_and_the_owners_own_do_not(trio, fanout):
    a, b, c, chat = trio
    send_chatmessage(b, chat, "one")
    send_chatroommessage(b, room(b, chat), "two")
    newest = send_chatmessage(a, chat, "mine")
    fanout.drain()
    shown_a, shown_b, shown_c = room(a, chat), room(b, chat), room(c, chat)
    assert (shown_a["unread_count"], shown_b["unread_count"], shown_c["unread_count"]) == (2, 1, 3)
    for shown, agent in ((shown_a, a), (shown_b, b), (shown_c, c)):
        assert shown["tm_activity"] == newest["tm_create"]
        preview = shown["last_chatroommessage"]
        assert preview["text"] == "mine" and preview["tm_create"] == newest["tm_create"]
        assert preview["id"] == copies(agent, chat)[0]["id"]


def test_a_replayed_record_changes_no_count(trio, fanout):
    a, b, _, chat = trio
    send_chatmessage(b, chat, "once")
    event = fanout.read_event()
    assert fanout.invoke(event) == {"batchItemFailures": []}
    fanout.drain()
    before = room(a, chat)
    assert before["unread_count"] == 1
    for _ in range(3):
        assert fanout.invoke(event) == {"batchItemFailures": []}
    fanout.drain()
    assert room(a, chat) == before


def test_the_preview_text_is_cut_to_200_characters(trio, fanout):
    a, b, _, chat = trio
    send_chatmessage(b, chat, "x" * 500)
    fanout.drain()
    assert room(a, chat)["last_chatroommessage"]["text"] == "x" * 200


def test_mark_read_to_the_newest_and_the_marker_never_moves_back(trio, fanout):
    a, b, _, chat = trio
    for text in ("1", "2", "3"):
        send_chatmessage(b, chat, text)
    fanout.drain()
    mine = room(a, chat)
    oldest_copy = copies(a, chat)[-1]
    read = ok(a.post(f"/v1.0/chatrooms/{mine['id']}/read", {}))
    assert read["unread_count"] == 0 and read["tm_read"] == read["tm_activity"]
    again = ok(a.post(f"/v1.0/chatrooms/{mine['id']}/read", {"chatroommessage_id": oldest_copy["id"]}))
    assert again["tm_read"] == read["tm_read"] and again["unread_count"] == 0


def test_mark_read_to_a_copy_recounts_what_is_after_it(trio, fanout):
    a, b, _, chat = trio
    for text in ("1", "2", "3", "4"):
        send_chatmessage(b, chat, text)
    send_chatmessage(a, chat, "mine, never unread")
    fanout.drain()
    listed = copies(a, chat)  # newest first: mine, 4, 3, 2, 1
    second = next(copy for copy in listed if copy["text"] == "2")
    read = ok(a.post(f"/v1.0/chatrooms/{room(a, chat)['id']}/read", {"chatroommessage_id": second["id"]}))
    assert read["tm_read"] == second["tm_create"] and read["unread_count"] == 2
    assert read["unread_count"] == recount(a, chat)


def test_only_the_owner_moves_the_marker(trio, customer, admin, other_customer, fanout):
    a, b, _, chat = trio
    send_chatmessage(b, chat)
    fanout.drain()
    mine = room(a, chat)
    assert_error(b.post(f"/v1.0/chatrooms/{mine['id']}/read", {}), 403)
    assert_error(admin.post(f"/v1.0/chatrooms/{mine['id']}/read", {}), 403)
    assert_error(customer.post(f"/v1.0/chatrooms/{mine['id']}/read", {}), 403)
    assert_error(other_customer.post(f"/v1.0/chatrooms/{mine['id']}/read", {}), 404)
    assert room(a, chat)["unread_count"] == 1


def test_a_copy_of_another_chatroom_is_400(trio, fanout):
    a, b, _, chat = trio
    send_chatmessage(b, chat)
    fanout.drain()
    theirs = copies(b, chat)[0]
    response = a.post(f"/v1.0/chatrooms/{room(a, chat)['id']}/read", {"chatroommessage_id": theirs["id"]})
    assert_error(response, 400)
    assert "chatroommessage_id" in response.json_body["Message"]
    unknown = a.post(f"/v1.0/chatrooms/{room(a, chat)['id']}/read",
                     {"chatroommessage_id": "00000000-0000-4000-8000-000000000000"})
    assert_error(unknown, 400)


def test_deleting_an_unread_message_takes_its_count_back_and_the_preview_moves(trio, fanout):
    a, b, c, chat = trio
    first = send_chatmessage(b, chat, "first")
    last = send_chatmessage(b, chat, "last")
    fanout.drain()
    assert room(a, chat)["unread_count"] == 2
    ok(b.delete(f"/v1.0/chatmessages/{last['id']}"))
    fanout.drain()
    for agent in (a, c):
        shown = room(agent, chat)
        assert shown["unread_count"] == 1
        assert shown["tm_activity"] == first["tm_create"] and shown["last_chatroommessage"]["text"] == "first"
    ok(b.delete(f"/v1.0/chatmessages/{first['id']}"))
    fanout.drain()
    shown = room(a, chat)
    assert shown["unread_count"] == 0 and shown["last_chatroommessage"] is None
    assert shown["tm_activity"] == shown["tm_create"]


def test_deleting_ones_own_copy_takes_its_count_back_in_that_chatroom_only(trio, fanout):
    a, b, c, chat = trio
    send_chatmessage(b, chat, "older")
    send_chatmessage(b, chat, "newest")
    fanout.drain()
    newest_copy = copies(a, chat)[0]
    ok(a.delete(f"/v1.0/chatroommessages/{newest_copy['id']}"))
    shown = room(a, chat)
    assert shown["unread_count"] == 1 and shown["last_chatroommessage"]["text"] == "older"
    assert room(c, chat)["unread_count"] == 2


def test_a_read_copy_deleted_does_not_count_back(trio, fanout):
    a, b, _, chat = trio
    send_chatmessage(b, chat, "read it")
    fanout.drain()
    ok(a.post(f"/v1.0/chatrooms/{room(a, chat)['id']}/read", {}))
    ok(a.delete(f"/v1.0/chatroommessages/{copies(a, chat)[0]['id']}"))
    assert room(a, chat)["unread_count"] == 0


def test_concurrent_fanouts_and_mark_reads_never_lose_or_double_a_count(trio, fanout):
    a, b, c, chat = trio
    for index in range(12):
        send_chatmessage(b if index % 2 else c, chat, f"m{index}")
    records = fanout.read_event()["Records"]
    mine = room(a, chat)
    errors = race_fanouts_and_mark_reads(fanout, records, a, mine["id"])
    fanout.drain()
    assert not errors, errors
    for agent in (a, b, c):
        assert room(agent, chat)["unread_count"] == recount(agent, chat)
    assert room(b, chat)["unread_count"] == 6 and room(c, chat)["unread_count"] == 6


def test_an_older_message_is_not_refused_again_for_each_newer_copy_written_meanwhile(trio, fanout, monkeypatch):
    """Stream batches run concurrently, so the fan-outs of one chat's messages
    overlap. Here every time the older message's fan-out re-reads a chatroom (its
    first write refused: a newer copy is there), another newer message's copies
    land. It still gets through at its second write: conditioned on what it read
    of the case (older than the newest copy, newer than the marker), which the
    newer copies keep, not on the chatroom's revision, which they move."""
    from chalicelib.services import fanout as fanout_service

    a, b, c, chat = trio
    older = send_chatmessage(b, chat, "older")
    newer = [send_chatmessage(c, chat, f"newer {i}") for i in range(40)]
    records = {r["dynamodb"]["NewImage"]["id"]["S"]: r for r in fanout.read_event()["Records"]
               if r["eventName"] == "INSERT" and r["dynamodb"]["NewImage"].get("kind") == {"S": "chatmessage"}}
    assert fanout.invoke({"Records": [records[newer[0]["id"]]]}) == {"batchItemFailures": []}
    meanwhile = [records[m["id"]] for m in newer[1:]]
    read_room = fanout_service.load

    def read_then_another_lands(model, *args):
        found = read_room(model, *args)
        if model is ChatroomItem and meanwhile:
            assert fanout.invoke({"Records": [meanwhile.pop(0)]}) == {"batchItemFailures": []}
        return found

    monkeypatch.setattr(fanout_service, "load", read_then_another_lands)
    assert fanout.invoke({"Records": [records[older["id"]]]}) == {"batchItemFailures": []}
    assert len(meanwhile) == 39 - 3, "the older message's copies took more than one more write"
    monkeypatch.setattr(fanout_service, "load", read_room)
    assert fanout.invoke({"Records": meanwhile}) == {"batchItemFailures": []}
    fanout.drain()
    for agent in (a, b, c):
        assert room(agent, chat)["unread_count"] == recount(agent, chat)
        assert room(agent, chat)["last_chatroommessage"]["text"] == "newer 39"
    assert [room(agent, chat)["unread_count"] for agent in (a, b, c)] == [41, 40, 1]


def test_inbox_by_activity_pages_newest_activity_first(customer, make_agent, fanout):
    a = make_agent()
    others = [make_agent() for _ in range(3)]
    chats = [create_chat(customer, a, other) for other in others]
    fanout.drain()
    send_chatmessage(others[1], chats[1], "b")
    send_chatmessage(others[0], chats[0], "a")
    fanout.drain()
    seen, token = [], ""
    while True:
        page = ok(a.get(f"/v1.0/chatrooms?order=activity&page_size=1&page_token={token}"))
        seen += [r["chat_id"] for r in page["result"]]
        token = page["next_page_token"]
        if not token:
            break
        assert token.startswith("activity:")
    assert seen == [chats[0]["id"], chats[1]["id"], chats[2]["id"]]
    by_create = [r["chat_id"] for r in ok(a.get("/v1.0/chatrooms"))["result"]]
    assert by_create == [chats[2]["id"], chats[1]["id"], chats[0]["id"]]


def test_activity_paging_with_equal_timestamps_never_skips_nor_repeats(customer, make_agent, fanout, monkeypatch):
    from chalicelib.services import chats as chat_service

    a = make_agent()
    monkeypatch.setattr(chat_service, "now", lambda: "2026-01-01 00:00:00.000000")
    rooms = [room_of(a, create_chat(customer, a, make_agent())) for _ in range(5)]
    seen, token = [], ""
    while True:
        page = ok(a.get(f"/v1.0/chatrooms?order=activity&page_size=2&page_token={token}"))
        seen += [r["id"] for r in page["result"]]
        token = page["next_page_token"]
        if not token:
            break
    assert sorted(seen) == sorted(r["id"] for r in rooms) and len(seen) == 5


def test_tokens_of_one_order_are_refused_by_the_other(customer, make_agent):
    a = make_agent()
    for _ in range(3):
        create_chat(customer, a, make_agent())
    by_activity = ok(a.get("/v1.0/chatrooms?order=activity&page_size=1"))["next_page_token"]
    by_create = ok(a.get("/v1.0/chatrooms?page_size=1"))["next_page_token"]
    assert_error(a.get(f"/v1.0/chatrooms?page_token={by_activity}"), 400)
    assert_error(a.get(f"/v1.0/chatrooms?order=activity&page_token={by_create}"), 400)
    assert_error(a.get("/v1.0/chatrooms?order=newest"), 400)


def test_the_owners_connections_hear_the_marker_move(trio, fanout, monkeypatch):
    a, b, _, chat = trio
    send_chatmessage(b, chat)
    fanout.drain()
    received = defaultdict(list)
    monkeypatch.setenv("CHAT_WEBSOCKET_ENDPOINT", "http://127.0.0.1:9/unused")
    monkeypatch.setattr(delivery, "push", lambda endpoint, cid, message: received[cid].append(message) or True)
    first, second, theirs = connect(a), connect(a), connect(b)
    ok(a.post(f"/v1.0/chatrooms/{room(a, chat)['id']}/read", {}))
    fanout.drain()
    for connection in (first, second):
        updates = [m for m in received[connection] if m["type"] == "chatroom_read_state"]
        assert updates and updates[-1]["data"]["unread_count"] == 0
        assert updates[-1]["data"]["chatroom_id"] == room(a, chat)["id"]
    assert not [m for m in received[theirs] if m["type"].startswith("chatroom_")]


def test_a_chatroom_written_before_read_state_counts_from_its_copies(trio, fanout):
    a, b, _, chat = trio
    send_chatmessage(b, chat, "before")
    fanout.drain()
    stored = ChatroomItem.get(ChatroomItem.key(a.customer_id, room(a, chat)["id"]), "#")
    stored.update([ChatroomItem.unread.remove(), ChatroomItem.tm_read.remove(), ChatroomItem.tm_activity.remove(),
                   ChatroomItem.revision.remove(), ChatroomItem.last_copy_id.remove(),
                   ChatroomItem.last_messagechat_id.remove()])
    assert room(a, chat)["unread_count"] == 0  # nothing known yet: shown as read
    send_chatmessage(b, chat, "after")
    fanout.drain()
    shown = room(a, chat)
    assert shown["unread_count"] == 2 and shown["last_chatroommessage"]["text"] == "after"
    assert ok(a.post(f"/v1.0/chatrooms/{shown['id']}/read", {}))["unread_count"] == 0
