"""Lists and paging (docs/API.md, "Lists and paging"): the envelope, newest first,
page_size, next_page_token, client tokens, ties on tm_create, deleted items.

Every behaviour is checked on each list: chats (customer), chatrooms (an agent's
own, and by owner_id with a customer token), chatmessages (customer), and
chatroommessages (the sender's copy, and the copy the stream gives the other)."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest

from chalicelib.clock import NOT_DELETED, TIME_FORMAT
from chalicelib.services import chatrooms as chatroom_service
from chalicelib.services import chats as chat_service
from chalicelib.services import messages as message_service

CHATS = "/v1.0/chats"
CHATROOMS = "/v1.0/chatrooms"
CHATMESSAGES = "/v1.0/chatmessages"
CHATROOMMESSAGES = "/v1.0/chatroommessages"

KINDS = ["chats", "chatrooms", "chatrooms_by_owner", "chatmessages", "chatroommessages", "chatroommessages_copied"]
# Later than the real creation time of the chat and its chatrooms (made before the
# clock is faked): a message is copied only into chatrooms that existed when it was sent.
START = datetime(2099, 3, 1, 12, 0, 0, tzinfo=UTC)
BAD_TOKENS = [
    "abc",
    "2022-13-45 99:99:99.000000",
    "2022-02-30 10:00:00.000000",
    "2022-01-01 00:00:00.000000~not-a-uuid",
    "2022-01-01 00:00:00.000000~",
    "2022-01-01 00:00:00",
    "2022-01-01T00:00:00.000000",
    "2022-01-01 00:00:00.000000; DROP TABLE",
    "x" * 500,
]
BAD_PAGE_SIZES = ["0", "101", "-1", "abc", "1.5", "1e2", "", " 5", "99999999999999999999999"]


# ---- controlled time ------------------------------------------------------------

def _patch_now(monkeypatch, fake_now):
    for module in (chat_service, chatroom_service, message_service):
        monkeypatch.setattr(module, "now", fake_now)


@pytest.fixture
def ticking_clock(monkeypatch):
    """Each create gets its own tm_create, one millisecond after the previous one."""
    ticks = iter(range(1, 1_000_000))

    def fake_now():
        return (START + timedelta(milliseconds=next(ticks))).strftime(TIME_FORMAT)

    _patch_now(monkeypatch, fake_now)


@pytest.fixture
def frozen_clock(monkeypatch):
    """Every create gets the same tm_create."""
    frozen = START.strftime(TIME_FORMAT)
    _patch_now(monkeypatch, lambda: frozen)
    return frozen


# ---- the lists under test ---------------------------------------------------------

class ListUnderTest:
    """Creates items in one list and knows how to read and delete them."""

    def __init__(self, kind, customer, make_agent, fanout):
        self.kind = kind
        self.customer = customer
        self.fanout = fanout
        self.a, self.b, self.c = make_agent(name="a"), make_agent(name="b"), make_agent(name="c")
        self.reader = customer  # who lists
        self.key = "id"  # which field identifies a created item in the list
        self.path = ""
        self._setup()

    def _setup(self):
        kind = self.kind
        if kind == "chats":
            self.path = CHATS
        elif kind == "chatrooms":
            self.reader, self.path = self.a, CHATROOMS
        elif kind == "chatrooms_by_owner":
            self.path = f"{CHATROOMS}?owner_id={self.a.id}"
        elif kind == "chatmessages":
            chat = self.customer.post(CHATS, {"type": "group", "owner_id": self.a.id,
                                              "participant_ids": [self.a.id, self.b.id]})
            assert chat.status_code == 200, chat.body
            self.chat_id = chat.json_body["id"]
            self.path = f"{CHATMESSAGES}?chat_id={self.chat_id}"
        elif kind in ("chatroommessages", "chatroommessages_copied"):
            created = self.a.post(CHATROOMS, {"participant_ids": [self.b.id]})
            assert created.status_code == 200, created.body
            self.room_id = created.json_body["id"]
            if kind == "chatroommessages":
                self.reader, self.path = self.a, f"{CHATROOMMESSAGES}?chatroom_id={self.room_id}"
            else:
                self.fanout.drain()
                b_rooms = self.b.get(CHATROOMS).json_body["result"]
                assert len(b_rooms) == 1
                self.key = "messagechat_id"
                self.reader, self.path = self.b, f"{CHATROOMMESSAGES}?chatroom_id={b_rooms[0]['id']}"

    def create(self, n):
        """Create n items, oldest first; returns their keys in creation order."""
        keys = [self._create_one(i) for i in range(n)]
        if self.kind.startswith("chatroommessages"):
            self.fanout.drain()
        return keys

    def _create_one(self, i):
        kind = self.kind
        if kind == "chats":
            r = self.customer.post(CHATS, {"type": "group", "owner_id": self.a.id,
                                           "participant_ids": [self.a.id, self.b.id], "name": f"chat {i}"})
        elif kind in ("chatrooms", "chatrooms_by_owner"):
            r = self.a.post(CHATROOMS, {"participant_ids": [self.b.id, self.c.id], "name": f"room {i}"})
        elif kind == "chatmessages":
            r = self.customer.post(CHATMESSAGES, {"chat_id": self.chat_id, "text": f"message {i}"})
        else:
            r = self.a.post(CHATROOMMESSAGES, {"chatroom_id": self.room_id, "text": f"message {i}"})
        assert r.status_code == 200, r.body
        return r.json_body["messagechat_id"] if self.key == "messagechat_id" else r.json_body["id"]

    def delete(self, key):
        """Delete the item `key` names, as its owner would, and let the stream finish."""
        kind = self.kind
        if kind == "chats":
            r = self.customer.delete(f"{CHATS}/{key}")
        elif kind in ("chatrooms", "chatrooms_by_owner"):
            r = self.a.delete(f"{CHATROOMS}/{key}")
        elif kind == "chatmessages":
            r = self.customer.delete(f"{CHATMESSAGES}/{key}")
        elif kind == "chatroommessages":
            r = self.a.delete(f"{CHATROOMMESSAGES}/{key}")
        else:  # the chatmessage itself: the stream deletes every copy
            r = self.customer.delete(f"{CHATMESSAGES}/{key}")
        assert r.status_code == 200, r.body
        self.fanout.drain()
        return r.json_body

    def get(self, **params):
        query = urlencode(params)
        path = self.path if not query else f"{self.path}{'&' if '?' in self.path else '?'}{query}"
        return self.reader.get(path)

    def page(self, **params):
        r = self.get(**params)
        assert r.status_code == 200, r.body
        return r.json_body

    def keys(self, body):
        return [item[self.key] for item in body["result"]]

    def page_through(self, page_size, max_pages=50):
        """Every page, following next_page_token until it is ""."""
        pages, token = [], None
        for _ in range(max_pages):
            params = {"page_size": page_size}
            if token:
                params["page_token"] = token
            body = self.page(**params)
            pages.append(body)
            token = body["next_page_token"]
            if not token:
                return pages
        raise AssertionError(f"no last page after {max_pages} pages")


@pytest.fixture(params=KINDS)
def listing(request, customer, make_agent, fanout):
    return ListUnderTest(request.param, customer, make_agent, fanout)


@pytest.fixture
def chat_list(customer, make_agent, fanout):
    return ListUnderTest("chats", customer, make_agent, fanout)


def assert_400_naming(r, field):
    assert r.status_code == 400, (r.status_code, r.body)
    assert set(r.json_body) == {"Code", "Message"}, r.json_body
    assert field in r.json_body["Message"], r.json_body


# ---- envelope and order --------------------------------------------------------------

def test_empty_list_is_an_empty_result_with_empty_token(listing):
    assert listing.page() == {"result": [], "next_page_token": ""}


def test_list_envelope_has_result_then_next_page_token(listing, ticking_clock):
    listing.create(2)
    r = listing.get()
    assert list(r.json_body) == ["result", "next_page_token"]
    assert r.body.lstrip().startswith(b'{"result"')


def test_list_is_newest_first(listing, ticking_clock):
    created = listing.create(5)
    body = listing.page()
    assert listing.keys(body) == list(reversed(created))
    stamps = [item["tm_create"] for item in body["result"]]
    assert stamps == sorted(stamps, reverse=True)
    assert len(set(stamps)) == 5


# ---- page_size -------------------------------------------------------------------------

def test_page_size_defaults_to_100(customer, make_agent, fanout, ticking_clock):
    listing = ListUnderTest("chatmessages", customer, make_agent, fanout)
    created = listing.create(101)
    first = listing.page()
    assert listing.keys(first) == list(reversed(created))[:100]
    assert first["next_page_token"] != ""
    second = listing.page(page_token=first["next_page_token"])
    assert listing.keys(second) == [created[0]]
    assert second["next_page_token"] == ""


def test_page_size_100_is_accepted(chat_list, ticking_clock):
    chat_list.create(2)
    assert len(chat_list.page(page_size=100)["result"]) == 2


def test_page_size_1_gives_one_item(listing, ticking_clock):
    created = listing.create(2)
    body = listing.page(page_size=1)
    assert listing.keys(body) == [created[-1]]
    assert body["next_page_token"] != ""


@pytest.mark.parametrize("page_size", BAD_PAGE_SIZES)
def test_page_size_out_of_range_or_not_an_integer_is_400(chat_list, page_size):
    assert_400_naming(chat_list.get(page_size=page_size), "page_size")


@pytest.mark.parametrize("page_size", ["0", "101"])
def test_page_size_out_of_range_is_400_on_every_list(listing, page_size):
    assert_400_naming(listing.get(page_size=page_size), "page_size")


def test_page_size_error_names_the_range(chat_list):
    message = chat_list.get(page_size="101").json_body["Message"]
    assert "1" in message and "100" in message, message


# ---- next_page_token -------------------------------------------------------------------

def test_next_page_token_starts_with_the_last_items_tm_create(listing, ticking_clock):
    listing.create(5)
    body = listing.page(page_size=2)
    assert len(body["result"]) == 2
    assert body["next_page_token"].startswith(body["result"][-1]["tm_create"])


def test_last_page_has_empty_token_when_it_is_exactly_full(listing, ticking_clock):
    listing.create(3)
    body = listing.page(page_size=3)
    assert len(body["result"]) == 3
    assert body["next_page_token"] == ""


def test_last_page_has_empty_token_when_it_is_not_full(listing, ticking_clock):
    listing.create(3)
    assert listing.page(page_size=5)["next_page_token"] == ""


def test_paging_7_items_by_3_returns_each_exactly_once_newest_first(listing, ticking_clock):
    created = listing.create(7)
    pages = listing.page_through(page_size=3)
    assert [len(p["result"]) for p in pages] == [3, 3, 1]
    seen = [key for p in pages for key in listing.keys(p)]
    assert seen == list(reversed(created))


@pytest.mark.parametrize("page_size", [1, 3])
def test_paging_never_skips_nor_repeats_items_sharing_a_tm_create(listing, frozen_clock, page_size):
    created = listing.create(10)
    pages = listing.page_through(page_size=page_size)
    seen = [key for p in pages for key in listing.keys(p)]
    assert sorted(seen) == sorted(created)
    assert len(seen) == len(set(seen)) == 10
    assert {item["tm_create"] for p in pages for item in p["result"]} == {frozen_clock}


def test_paging_with_ties_and_distinct_times_mixed(chat_list, monkeypatch):
    stamps = iter(["2024-03-01 12:00:00.000001"] * 4 + ["2024-03-01 12:00:00.000002"] * 3
                  + ["2024-03-01 12:00:00.000003"])
    _patch_now(monkeypatch, lambda: next(stamps))
    created = chat_list.create(8)
    pages = chat_list.page_through(page_size=3)
    seen = [key for p in pages for key in chat_list.keys(p)]
    assert sorted(seen) == sorted(created) and len(seen) == 8
    times = [item["tm_create"] for p in pages for item in p["result"]]
    assert times == sorted(times, reverse=True)


# ---- tokens from clients ----------------------------------------------------------------

def test_bare_timestamp_token_lists_items_strictly_older(listing, ticking_clock):
    created = listing.create(6)
    newest_first = listing.page()["result"]
    pivot = newest_first[2]["tm_create"]
    body = listing.page(page_token=pivot)
    assert listing.keys(body) == list(reversed(created))[3:]
    assert all(item["tm_create"] < pivot for item in body["result"])


def test_bare_timestamp_token_equal_to_tied_items_excludes_them(chat_list, frozen_clock):
    chat_list.create(3)
    assert chat_list.page(page_token=frozen_clock)["result"] == []


def test_bare_timestamp_token_in_the_future_lists_everything(chat_list, ticking_clock):
    created = chat_list.create(3)
    body = chat_list.page(page_token="9998-12-31 23:59:59.999999")
    assert chat_list.keys(body) == list(reversed(created))


def test_bare_timestamp_token_before_everything_lists_nothing(chat_list, ticking_clock):
    chat_list.create(3)
    assert chat_list.page(page_token="2000-01-01 00:00:00.000000") == {"result": [], "next_page_token": ""}


def test_empty_page_token_means_the_first_page(chat_list, ticking_clock):
    created = chat_list.create(2)
    assert chat_list.keys(chat_list.page(page_token="")) == list(reversed(created))


def test_token_is_passed_back_as_is_and_continues_the_list(listing, ticking_clock):
    created = listing.create(4)
    first = listing.page(page_size=2)
    second = listing.page(page_size=2, page_token=first["next_page_token"])
    assert listing.keys(first) + listing.keys(second) == list(reversed(created))


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_garbage_or_forged_page_token_is_400(chat_list, token):
    assert_400_naming(chat_list.get(page_token=token), "page_token")


@pytest.mark.parametrize("token", ["abc", "2022-01-01 00:00:00.000000~not-a-uuid"])
def test_garbage_page_token_is_400_on_every_list(listing, token):
    assert_400_naming(listing.get(page_token=token), "page_token")


# ---- deleted items -----------------------------------------------------------------------

def test_deleted_items_are_not_listed(listing, ticking_clock):
    created = listing.create(3)
    listing.delete(created[1])
    assert listing.keys(listing.page()) == [created[2], created[0]]


def test_deleted_items_are_not_listed_across_pages(listing, ticking_clock):
    created = listing.create(5)
    listing.delete(created[3])
    listing.delete(created[1])
    pages = listing.page_through(page_size=1)
    seen = [key for p in pages for key in listing.keys(p)]
    assert seen == [created[4], created[2], created[0]]


def test_deleted_chat_is_still_readable_by_id(customer, make_agent, fanout):
    listing = ListUnderTest("chats", customer, make_agent, fanout)
    (chat_id,) = listing.create(1)
    listing.delete(chat_id)
    r = customer.get(f"{CHATS}/{chat_id}")
    assert r.status_code == 200, r.body
    assert r.json_body["tm_delete"] != NOT_DELETED


def test_chatrooms_of_a_deleted_chat_are_not_listed(customer, make_agent, fanout):
    a, b = make_agent(), make_agent()
    chat = customer.post(CHATS, {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]}).json_body
    assert len(b.get(CHATROOMS).json_body["result"]) == 1
    assert customer.delete(f"{CHATS}/{chat['id']}").status_code == 200
    fanout.drain()
    assert b.get(CHATROOMS).json_body == {"result": [], "next_page_token": ""}
    assert a.get(CHATROOMS).json_body == {"result": [], "next_page_token": ""}
