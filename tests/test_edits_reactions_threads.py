"""Edits with history, reactions, threads: through the HTTP layer and the real
stream, with the contract's authorization and exact counts."""

import threading
from collections import defaultdict
from urllib.parse import quote

import pytest

from chalicelib.services import delivery
from tests.helpers import assert_error, copies, create_chat, ok, room_of, send_chatmessage, send_chatroommessage
from tests.test_realtime import connect

# ---- edits ------------------------------------------------------------------------------

def test_the_sender_edits_and_every_copy_shows_it_at_once(trio, fanout):
    a, b, c, chat = trio
    sent = send_chatmessage(b, chat, "helo")
    fanout.drain()
    edited = ok(b.put(f"/v1.0/chatmessages/{sent['id']}", {"text": "hello", "medias": []}))
    assert edited["text"] == "hello" and edited["tm_update"] > sent["tm_update"]
    assert edited["tm_create"] == sent["tm_create"]
    for agent in (a, b, c):
        [copy] = copies(agent, chat)
        assert copy["text"] == "hello" and copy["tm_update"] == edited["tm_update"]


def test_history_lists_earlier_versions_newest_first_and_pages(trio):
    _, b, _, chat = trio
    sent = send_chatmessage(b, chat, "v1")
    for text in ("v2", "v3", "v4"):
        ok(b.put(f"/v1.0/chatmessages/{sent['id']}", {"text": text}))
    history = ok(b.get(f"/v1.0/chatmessages/{sent['id']}/history"))
    assert [v["text"] for v in history["result"]] == ["v3", "v2", "v1"] and history["next_page_token"] == ""
    first = ok(b.get(f"/v1.0/chatmessages/{sent['id']}/history?page_size=2"))
    rest = ok(b.get(f"/v1.0/chatmessages/{sent['id']}/history?page_size=2&page_token={first['next_page_token']}"))
    assert [v["text"] for v in first["result"] + rest["result"]] == ["v3", "v2", "v1"]
    assert history["result"][-1]["tm_update"] == sent["tm_update"]


def test_only_the_sender_edits(trio, customer, admin, other_customer):
    a, b, _, chat = trio
    sent = send_chatmessage(b, chat, "mine")
    for caller, status in ((a, 403), (admin, 403), (customer, 403), (other_customer, 404)):
        assert_error(caller.put(f"/v1.0/chatmessages/{sent['id']}", {"text": "theirs"}), status)
    assert ok(b.get(f"/v1.0/chatmessages/{sent['id']}"))["text"] == "mine"


def test_a_deleted_message_cannot_be_edited_and_history_needs_a_reader(trio, make_agent):
    _, b, _, chat = trio
    sent = send_chatmessage(b, chat, "gone")
    ok(b.delete(f"/v1.0/chatmessages/{sent['id']}"))
    assert_error(b.put(f"/v1.0/chatmessages/{sent['id']}", {"text": "back"}), 404)
    assert_error(make_agent().get(f"/v1.0/chatmessages/{sent['id']}/history"), 403)


def test_edits_racing_deletes_end_in_one_consistent_state(trio, fanout):
    _, b, c, chat = trio
    for round_ in range(5):
        sent = send_chatmessage(b, chat, f"r{round_}")
        statuses = []
        edit = threading.Thread(target=lambda sent=sent, statuses=statuses: statuses.append(
            b.put(f"/v1.0/chatmessages/{sent['id']}", {"text": "edited"}).status_code))
        delete = threading.Thread(target=lambda sent=sent, statuses=statuses: statuses.append(
            b.delete(f"/v1.0/chatmessages/{sent['id']}").status_code))
        edit.start(), delete.start()
        edit.join(), delete.join()
        assert sorted(statuses) in ([200, 200], [200, 404]), statuses
        final = ok(b.get(f"/v1.0/chatmessages/{sent['id']}"))
        assert final["tm_delete"] != "9999-01-01 00:00:00.000000"
        history = ok(b.get(f"/v1.0/chatmessages/{sent['id']}/history"))["result"]
        assert len(history) == (1 if final["text"] == "edited" else 0)
    fanout.drain()
    assert copies(c, chat) == []


def test_an_edit_is_an_event_in_the_chat_and_in_every_chatroom(trio, fanout, monkeypatch):
    a, b, _, chat = trio
    sent = send_chatmessage(b, chat, "before")
    fanout.drain()
    received = defaultdict(list)
    monkeypatch.setenv("CHAT_WEBSOCKET_ENDPOINT", "http://127.0.0.1:9/unused")
    monkeypatch.setattr(delivery, "push", lambda endpoint, cid, message: received[cid].append(message) or True)
    connection = connect(a)
    ok(b.put(f"/v1.0/chatmessages/{sent['id']}", {"text": "after"}))
    fanout.drain()
    kinds = {m["type"]: m["data"] for m in received[connection]}
    assert kinds["messagechat_updated"]["text"] == "after"
    assert kinds["messagechatroom_updated"]["text"] == "after"
    assert kinds["messagechatroom_updated"]["chatroom_id"] == room_of(a, chat)["id"]


# ---- reactions --------------------------------------------------------------------------

def test_reactions_one_per_caller_and_emoji_shown_on_every_copy(trio, customer):
    a, b, c, chat = trio
    sent = send_chatmessage(b, chat, "ship it")
    first = ok(a.post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": "👍"}))
    [reaction] = first["metadata"]["reactions"]
    assert (reaction["emoji"], reaction["owner_type"], reaction["owner_id"]) == ("👍", "agent", a.id)
    assert ok(a.post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": "👍"})) == first
    ok(c.post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": "👍"}))
    both = ok(customer.post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": ":tada:"}))
    assert [(r["owner_type"], r["emoji"]) for r in both["metadata"]["reactions"]] == [
        ("agent", "👍"), ("agent", "👍"), ("customer", ":tada:")]
    assert both["tm_update"] == sent["tm_update"]


def test_taking_a_reaction_back(trio, fanout):
    a, b, _, chat = trio
    sent = send_chatmessage(b, chat, "hm")
    fanout.drain()
    ok(a.post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": "🤔"}))
    ok(b.post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": "🤔"}))
    assert len(copies(a, chat)[0]["metadata"]["reactions"]) == 2
    gone = ok(a.delete(f"/v1.0/chatmessages/{sent['id']}/reactions/{quote('🤔')}"))
    assert [r["owner_id"] for r in gone["metadata"]["reactions"]] == [b.id]
    assert ok(a.delete(f"/v1.0/chatmessages/{sent['id']}/reactions/{quote('🤔')}")) == gone
    assert [r["owner_id"] for r in copies(a, chat)[0]["metadata"]["reactions"]] == [b.id]


@pytest.mark.parametrize("emoji", ["", "ok", "x" * 33, "👍 ", ":Bad Name:", "<script>"])
def test_a_reaction_is_one_emoji_or_a_name(trio, emoji):
    _, b, _, chat = trio
    sent = send_chatmessage(b, chat)
    response = b.post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": emoji})
    assert_error(response, 400)
    assert "emoji" in response.json_body["Message"]


def test_who_may_react(trio, make_agent, other_customer, admin):
    _, b, _, chat = trio
    sent = send_chatmessage(b, chat)
    assert_error(make_agent().post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": "👍"}), 403)
    assert_error(other_customer.post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": "👍"}), 404)
    assert ok(admin.post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": "👍"}))
    ok(b.delete(f"/v1.0/chatmessages/{sent['id']}"))
    assert_error(b.post(f"/v1.0/chatmessages/{sent['id']}/reactions", {"emoji": "👎"}), 404)


# ---- threads ----------------------------------------------------------------------------

def test_replies_count_list_and_show_on_copies(trio, fanout):
    a, b, _, chat = trio
    parent = send_chatmessage(a, chat, "question")
    replies = [send_chatmessage(b, chat, f"answer {n}", parent_id=parent["id"]) for n in range(3)]
    copy_reply = send_chatroommessage(a, room_of(a, chat), "me too", parent_id=parent["id"])
    fanout.drain()
    shown = ok(a.get(f"/v1.0/chatmessages/{parent['id']}"))
    assert shown["reply_count"] == 4 and shown["parent_id"] == ""
    assert all(reply["parent_id"] == parent["id"] for reply in replies)
    assert copy_reply["parent_id"] == parent["id"]
    thread = ok(a.get(f"/v1.0/chatmessages?chat_id={chat['id']}&parent_id={parent['id']}&page_size=2"))
    rest = ok(a.get(f"/v1.0/chatmessages?chat_id={chat['id']}&parent_id={parent['id']}"
                    f"&page_token={thread['next_page_token']}"))
    assert [m["text"] for m in thread["result"] + rest["result"]] == ["me too", "answer 2", "answer 1", "answer 0"]
    assert {c["parent_id"] for c in copies(b, chat) if c["text"].startswith("answer")} == {parent["id"]}
    ok(b.delete(f"/v1.0/chatmessages/{replies[0]['id']}"))
    assert ok(a.get(f"/v1.0/chatmessages/{parent['id']}"))["reply_count"] == 3


def test_a_reply_to_a_deleted_parent_is_fine_one_from_another_chat_is_400(trio, customer, make_agent):
    a, b, _, chat = trio
    parent = send_chatmessage(a, chat, "gone soon")
    ok(a.delete(f"/v1.0/chatmessages/{parent['id']}"))
    assert send_chatmessage(b, chat, "still answering", parent_id=parent["id"])["parent_id"] == parent["id"]
    elsewhere = create_chat(customer, a, make_agent())
    response = a.post("/v1.0/chatmessages", {"chat_id": elsewhere["id"], "text": "x", "parent_id": parent["id"]})
    assert_error(response, 400)
    assert "parent_id" in response.json_body["Message"]
    listing = a.get(f"/v1.0/chatmessages?chat_id={elsewhere['id']}&parent_id={parent['id']}")
    assert_error(listing, 400)


def test_reply_count_is_exact_under_concurrent_replies_and_retried_sends(trio):
    a, b, c, chat = trio
    parent = send_chatmessage(a, chat, "poll")
    errors = []

    def reply(agent, n):
        response = agent.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": f"vote {n}",
                                                     "parent_id": parent["id"]},
                              headers={"Idempotency-Key": f"vote-{agent.id}-{n}"})
        if response.status_code != 200:
            errors.append(response.body)

    threads = [threading.Thread(target=reply, args=(agent, n)) for n in range(5) for agent in (b, c)]
    threads += [threading.Thread(target=reply, args=(b, n)) for n in range(5)]  # the same keys again
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert ok(a.get(f"/v1.0/chatmessages/{parent['id']}"))["reply_count"] == 10


def test_a_thread_of_another_customer_is_not_found(trio, other_customer):
    a, _, _, chat = trio
    parent = send_chatmessage(a, chat)
    assert_error(other_customer.get(f"/v1.0/chatmessages?chat_id={chat['id']}&parent_id={parent['id']}"), 404)
