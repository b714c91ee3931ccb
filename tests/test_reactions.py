"""Reactions at the contract's limits (CONTRACT.md, "Limits that AWS enforces"): at most 50 different
emoji per message, emoji as Unicode defines them, a message's answer bounded whatever the number of
reactions, the full list paged, old reaction maps still shown. Through the HTTP layer and the real
stream records; the suite's guard (devtools/aws_limits.py) checks every AWS call and every answer."""

import json
import threading
from urllib.parse import quote

import pytest

from chalicelib.storage.models import ChatmessageItem, ReactionItem
from devtools import migrate
from tests.helpers import assert_error, create_chat, ok, room_of, send_chatmessage

LIMIT = 50
# 50 different emoji: skin tones, ZWJ sequences, keycaps, flags and names among them
FIFTY = (["👍", "👍🏽", "👩‍👩‍👧‍👦", "🏳️‍🌈", "1️⃣", "#️⃣", "🇰🇷", "🇺🇳", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "❤️", "©️", "🧑🏻‍❤️‍💋‍🧑🏼", "👁️‍🗨️"]
         + [chr(0x1F600 + n) for n in range(27)] + [f":name_{n}:" for n in range(10)])
assert len(set(FIFTY)) == LIMIT


@pytest.fixture
def group(customer, make_agent, fanout):
    agents = [make_agent() for _ in range(4)]
    chat = create_chat(customer, *agents)
    fanout.drain()
    return agents, chat


def react(caller, message, emoji):
    return caller.post(f"/v1.0/chatmessages/{message['id']}/reactions", {"emoji": emoji})


def unreact(caller, message, emoji):
    return caller.delete(f"/v1.0/chatmessages/{message['id']}/reactions/{quote(emoji, safe='')}")


def every_reaction(caller, message, page_size=100):
    shown, token = [], ""
    while True:
        page = ok(caller.get(f"/v1.0/chatmessages/{message['id']}/reactions?page_size={page_size}"
                             + (f"&page_token={quote(token)}" if token else "")))
        shown += page["result"]
        token = page["next_page_token"]
        if not token:
            return shown


def answer_bytes(body) -> int:
    return len(json.dumps(body).encode())


# ---- the 50-emoji limit ------------------------------------------------------------------

def test_the_51st_different_emoji_is_409_naming_the_limit(group):
    (a, b, *_), chat = group
    message = send_chatmessage(a, chat)
    for emoji in FIFTY:
        ok(react(a, message, emoji))
    refused = react(b, message, "🦄")
    assert_error(refused, 409)
    assert "50 different emoji" in refused.json_body["Message"]
    shown = ok(react(b, message, "👍"))  # one already there: fine
    assert len(shown["metadata"]["reaction_counts"]) == LIMIT and shown["metadata"]["reaction_counts"]["👍"] == 2
    ok(unreact(a, message, "😀"))  # its only owner takes it back: room for one more
    assert ok(react(b, message, "🦄"))["metadata"]["reaction_counts"]["🦄"] == 1
    assert_error(react(a, message, "😀"), 409)


def test_racing_new_emoji_never_pass_the_limit(group):
    """The limit is the write's condition: seven callers racing for the last two places."""
    agents, chat = group
    message = send_chatmessage(agents[0], chat)
    for emoji in FIFTY[:LIMIT - 2]:
        ok(react(agents[0], message, emoji))
    statuses = []
    racers = [threading.Thread(target=lambda n=n: statuses.append(
        react(agents[n % 4], message, chr(0x1F400 + n)).status_code)) for n in range(7)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert sorted(statuses) == [200, 200, 409, 409, 409, 409, 409], statuses
    counts = ok(agents[0].get(f"/v1.0/chatmessages/{message['id']}"))["metadata"]["reaction_counts"]
    assert len(counts) == LIMIT and len(every_reaction(agents[0], message)) == LIMIT


def test_racing_reactions_with_one_emoji_are_all_counted(customer, make_agent, fanout):
    """Same-emoji writes serialize on the emoji's count: none lost, the newest owners the newest three."""
    agents = [make_agent() for _ in range(8)]
    chat = create_chat(customer, *agents)
    message = send_chatmessage(agents[0], chat)
    statuses = []
    racers = [threading.Thread(target=lambda agent=agent: statuses.append(react(agent, message, "👍").status_code))
              for agent in agents]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join()
    assert statuses == [200] * 8
    shown = ok(agents[0].get(f"/v1.0/chatmessages/{message['id']}"))
    listed = every_reaction(agents[0], message)
    assert shown["metadata"]["reaction_counts"] == {"👍": 8} and len(listed) == 8
    assert [r["owner_id"] for r in shown["metadata"]["reactions"]] == [r["owner_id"] for r in reversed(listed[:3])]


# ---- emoji --------------------------------------------------------------------------------

@pytest.mark.parametrize("emoji", ["👍", "👍🏿", "👩‍💻", "🏳️‍⚧️", "🇯🇵", "7️⃣", "*⃣", "🏴󠁧󠁢󠁷󠁬󠁳󠁿", "☺️", "☺", "®", "🫨",
                                   ":+1:", ":a:", ":thumbs_up-2:", ":" + "x" * 30 + ":"])
def test_one_emoji_or_a_name_is_accepted(group, emoji):
    (a, *_), chat = group
    message = send_chatmessage(a, chat)
    assert ok(react(a, message, emoji))["metadata"]["reaction_counts"] == {emoji: 1}
    assert ok(unreact(a, message, emoji))["metadata"]["reaction_counts"] == {}


@pytest.mark.parametrize("emoji", [
    "\u202e", "\ufeff", "\u0301", "\u2800", "\u200b", "\u200d", "\ufe0f", "\u20e3", " ", "\u3000", "\u00a0", "a",
    "Z", "7", "가", "ok", "👍👍", "👍 ", " 👍", "\u202e👍", "👍\u0301", "👍\u200d", "\u200d👍", "🇰", "🇰🇷🇯",
    "🏻🏻", ":Bad:", "::", ":" + "x" * 31 + ":", ":tada", "<script>", ""])
def test_invisible_format_combining_blank_and_letters_are_400(group, emoji):
    (a, *_), chat = group
    message = send_chatmessage(a, chat)
    refused = react(a, message, emoji)
    assert_error(refused, 400)
    assert refused.json_body["Message"].startswith("emoji")
    if emoji:
        assert_error(unreact(a, message, emoji), 400)


# ---- a message's answer stays small -----------------------------------------------------------

def test_the_most_reactions_allowed_keep_answers_small_and_pages_within_lambda(customer, make_agent, fanout,
                                                                               monkeypatch):
    """50 emoji, 4 owners each (200 reactions) on one message: its answer shows 3 owners and a count per
    emoji. A page of 100 such messages, and of their copies, within Lambda's 6 MB (the guard checks
    every answer); the stream turns every reaction into its events, each within a websocket push."""
    from chalicelib.services import delivery

    pushes = []
    monkeypatch.setenv("CHAT_WEBSOCKET_ENDPOINT", "http://127.0.0.1:9/unused")
    monkeypatch.setattr(delivery, "push", lambda endpoint, cid, message: pushes.append(message) or True)
    agents = [make_agent() for _ in range(4)]
    chat = create_chat(customer, *agents)
    fanout.drain()
    from tests.test_realtime import connect
    connect(agents[0])
    messages = [send_chatmessage(agents[n % 4], chat, f"message {n}") for n in range(100)]
    full = messages[0]
    for emoji in FIFTY:
        for owner in (*agents[1:], customer):
            ok(react(owner, full, emoji))
    fanout.drain()
    shown = ok(agents[1].get(f"/v1.0/chatmessages/{full['id']}"))
    assert shown["metadata"]["reaction_counts"] == dict.fromkeys(FIFTY, 4)
    assert len(shown["metadata"]["reactions"]) == 3 * LIMIT
    size = answer_bytes(shown)
    assert size < 32 * 1024, size  # 150 of the 200 reactions and the counts; the whole map grew without bound
    assert len(every_reaction(agents[1], full)) == 4 * LIMIT

    # the same summary on the 99 others: a page of the heaviest messages the contract allows
    stored = ChatmessageItem.get(ChatmessageItem.key(customer.customer_id, full["id"]), "#")
    for message in messages[1:]:
        ChatmessageItem.keyed(customer.customer_id, message["id"]).update([
            ChatmessageItem.reaction_counts.set(stored.reaction_counts.as_dict()),
            ChatmessageItem.reaction_newest.set(stored.reaction_newest.as_dict()),
            ChatmessageItem.reaction_emoji.set(LIMIT)])
    page = ok(agents[2].get(f"/v1.0/chatmessages?chat_id={chat['id']}&page_size=100"))
    assert len(page["result"]) == 100 and page["next_page_token"] == ""
    assert all(len(m["metadata"]["reactions"]) == 3 * LIMIT for m in page["result"])
    fanout.drain()
    copies = ok(agents[2].get(f"/v1.0/chatroommessages?chatroom_id={room_of(agents[2], chat)['id']}&page_size=100"))
    assert len(copies["result"]) == 100
    assert all(c["metadata"]["reaction_counts"] == dict.fromkeys(FIFTY, 4) for c in copies["result"])
    assert answer_bytes(page) < 6_000_000 / 2 and answer_bytes(copies) < 6_000_000 / 2
    # every reaction was news in the chat and in the connected agent's chatroom; every push within 128 KiB
    kinds = [push["type"] for push in pushes]
    assert kinds.count("messagechat_updated") >= 4 * LIMIT and kinds.count("messagechatroom_updated") >= 4 * LIMIT
    assert max(len(json.dumps(push).encode()) for push in pushes) <= 128 * 1024


# ---- the full list, taking back -------------------------------------------------------------

def test_the_full_list_pages_newest_first_to_whoever_may_read(group, make_agent, other_customer, admin):
    agents, chat = group
    message = send_chatmessage(agents[0], chat)
    for emoji in ("👍", ":tada:", "🎉"):
        for owner in agents:
            ok(react(owner, message, emoji))
    listed = every_reaction(agents[1], message, page_size=5)
    assert len(listed) == 12 and len({(r["emoji"], r["owner_id"]) for r in listed}) == 12
    assert [r["tm_create"] for r in listed] == sorted((r["tm_create"] for r in listed), reverse=True)
    assert listed[0] == {"emoji": "🎉", "owner_type": "agent", "owner_id": agents[3].id,
                         "tm_create": listed[0]["tm_create"]}
    assert every_reaction(admin, message) == listed
    assert_error(make_agent().get(f"/v1.0/chatmessages/{message['id']}/reactions"), 403)
    assert_error(other_customer.get(f"/v1.0/chatmessages/{message['id']}/reactions"), 404)


def test_a_repeat_changes_nothing_and_taking_back_refills_the_newest(group):
    agents, chat = group
    message = send_chatmessage(agents[0], chat)
    for owner in agents:  # oldest first: agents[0] .. agents[3]
        ok(react(owner, message, "👍"))
    before = ok(agents[0].get(f"/v1.0/chatmessages/{message['id']}"))
    assert ok(react(agents[3], message, "👍")) == before

    def newest(shown):
        return [r["owner_id"] for r in shown["metadata"]["reactions"]]

    assert newest(before) == [agents[1].id, agents[2].id, agents[3].id]
    refilled = ok(unreact(agents[3], message, "👍"))  # the newest leaves: the oldest comes back in view
    assert newest(refilled) == [agents[0].id, agents[1].id, agents[2].id]
    assert refilled["metadata"]["reaction_counts"] == {"👍": 3}
    assert ok(unreact(agents[3], message, "👍")) == refilled  # nothing of theirs left: unchanged
    assert ok(agents[0].get(f"/v1.0/chatmessages/{message['id']}")) == refilled
    ok(unreact(agents[0], message, "👍"))
    ok(unreact(agents[1], message, "👍"))
    last = ok(unreact(agents[2], message, "👍"))
    assert last["metadata"] == {"reactions": [], "reaction_counts": {}}
    assert every_reaction(agents[0], message) == []


def test_reactions_in_a_deleted_chat_or_to_a_deleted_message_are_404(group, customer):
    agents, chat = group
    message = send_chatmessage(agents[0], chat)
    ok(react(agents[1], message, "👍"))
    gone = send_chatmessage(agents[0], chat)
    ok(agents[0].delete(f"/v1.0/chatmessages/{gone['id']}"))
    assert_error(react(agents[1], gone, "👍"), 404)
    ok(customer.delete(f"/v1.0/chats/{chat['id']}"))
    for caller in (agents[1], customer):
        assert_error(react(caller, message, "👎"), 404)
        assert_error(unreact(caller, message, "👍"), 404)
    assert ok(customer.get(f"/v1.0/chatmessages/{message['id']}"))["metadata"]["reaction_counts"] == {"👍": 1}


# ---- messages written before reactions were items -----------------------------------------

def old_reactions(customer_id, message, entries):
    """Give a chatmessage a reaction map as the previous version wrote it."""
    stored = {ChatmessageItem.reaction_key(owner_type, owner_id, emoji):
              {"emoji": emoji, "owner_type": owner_type, "owner_id": owner_id, "tm_create": tm}
              for emoji, owner_type, owner_id, tm in entries}
    ChatmessageItem.keyed(customer_id, message["id"]).update([ChatmessageItem.reactions.set(stored)])


def test_an_old_reaction_map_is_shown_paged_and_moved_on_its_first_change(group, customer, capsys):
    agents, chat = group
    message, untouched = send_chatmessage(agents[0], chat), send_chatmessage(agents[0], chat)
    entries = [(emoji, "agent", owner.id, f"2026-01-01 00:00:00.{n:06d}")
               for n, (emoji, owner) in enumerate((emoji, owner) for emoji in ("👍", "🎉") for owner in agents)]
    for target in (message, untouched):
        old_reactions(customer.customer_id, target, entries)
    shown = ok(agents[1].get(f"/v1.0/chatmessages/{message['id']}"))
    assert shown["metadata"]["reaction_counts"] == {"👍": 4, "🎉": 4}
    assert [r["owner_id"] for r in shown["metadata"]["reactions"] if r["emoji"] == "🎉"] == [a.id for a in agents[1:]]
    listed = every_reaction(agents[1], message, page_size=3)
    assert [(r["emoji"], r["owner_id"]) for r in listed] == [(e, o) for e, _, o, _ in reversed(entries)]

    ok(react(agents[0], message, "👍"))  # a repeat: moved into items, nothing else changes
    after = ok(agents[1].get(f"/v1.0/chatmessages/{message['id']}"))
    assert after["metadata"] == shown["metadata"]
    assert every_reaction(agents[1], message, page_size=3) == listed
    moved = ChatmessageItem.get(ChatmessageItem.key(customer.customer_id, message["id"]), "#")
    assert moved.reactions is None and moved.reaction_emoji == 2
    assert ok(unreact(agents[3], message, "🎉"))["metadata"]["reaction_counts"] == {"👍": 4, "🎉": 3}

    assert migrate.main([]) == 0
    assert "1 chatmessages' reactions moved" in capsys.readouterr().out
    assert len(list(ReactionItem.query(ChatmessageItem.key(customer.customer_id, untouched["id"]),
                                       ReactionItem.sk.startswith(ReactionItem.SORT_PREFIX)))) == 8
    assert ok(agents[1].get(f"/v1.0/chatmessages/{untouched['id']}"))["metadata"] == shown["metadata"]
    assert migrate.main([]) == 0
    assert "0 chatmessages' reactions moved" in capsys.readouterr().out
