"""CORS through the HTTP layer (chalicelib/api/cors.py, ChatChalice): every
path answers a preflight, every answer carries the headers, errors of every
kind included; and a cookie-authenticated write from another site is refused
(chalicelib/auth/transport.py). The same in a real browser:
tests/test_console_browser.py."""

import json

import chalice.app
import pytest

import app as chat_app
from chalicelib.api import cors, inputs
from tests.helpers import create_chat

EVIL = "https://evil.example"
APP = "https://app.example.com"


def _preflight(client, path, origin=APP, method="POST"):
    return client.http.request("OPTIONS", path, headers={
        "Origin": origin, "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})


def _concrete(path: str) -> str:
    return path.replace("{emoji}", "x").replace("{", "").replace("}", "")  # any segment matches a {name}


def test_every_path_answers_a_preflight_with_what_a_browser_needs(client):
    paths = list(chat_app.app.routes)
    assert len(paths) > 20
    for path in paths:
        r = _preflight(client, _concrete(path))
        assert r.status_code == 204, (path, r.status_code, r.body)
        assert r.body == b""
        headers = {name.lower(): value for name, value in r.headers.items()}
        assert headers["access-control-allow-origin"] == "*", path
        allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
        assert {"authorization", "content-type", "idempotency-key"} <= allowed
        methods = {method.strip() for method in headers["access-control-allow-methods"].split(",")}
        assert {"GET", "POST", "PUT", "DELETE"} <= methods
        assert int(headers["access-control-max-age"]) == cors.MAX_AGE_SECONDS
        assert "access-control-allow-credentials" not in headers  # tokens go in a header, never cookies


def _answer_headers(response) -> dict:
    return {name.lower(): value for name, value in response.headers.items()}


def _assert_cors(response, origin="*"):
    headers = _answer_headers(response)
    assert headers.get("access-control-allow-origin") == origin, (response.status_code, headers)
    exposed = {h.strip() for h in headers["access-control-expose-headers"].split(",")}
    assert {"Retry-After", "X-Request-Id"} <= exposed


def test_answers_of_every_kind_carry_the_headers(client, customer, monkeypatch):
    headers = {"Origin": APP, "Authorization": f"Bearer {customer.token}"}
    answers = {
        200: client.http.get("/v1.0/chats", headers=headers),
        400: client.http.get("/v1.0/chats/not-a-uuid", headers=headers),
        401: client.http.get("/v1.0/chats", headers={"Origin": APP}),
        404: client.http.get("/v1.0/chats/5e4a0680-804e-11ec-8477-2fea5968d85b", headers=headers),
        405: client.http.request("PATCH", "/v1.0/chats", headers=headers),
        413: client.http.post("/v1.0/chats", headers={**headers, "Content-Type": "application/json"},
                              body=b"{" + b" " * (inputs.MAX_BODY_BYTES + 1) + b"}"),
        415: client.http.post("/v1.0/chats", headers={**headers, "Content-Type": "image/png"}, body=b"x"),
    }
    monkeypatch.setattr(inputs, "caller", _raise(RuntimeError("a bug")))
    answers[500] = client.http.get("/v1.0/chats", headers=headers)
    for status, response in answers.items():
        assert response.status_code == status, (status, response.body)
        _assert_cors(response)
        if status >= 400:
            assert set(json.loads(response.body)) == {"Code", "Message"}


def test_a_failure_before_any_view_still_answers_500_with_the_headers(client, monkeypatch):
    monkeypatch.setattr(chalice.app.RestAPIEventHandler, "create_request_object", _raise(ValueError("bad event")))
    r = client.http.get("/v1.0/chats", headers={"Origin": APP})
    assert r.status_code == 500
    assert json.loads(r.body)["Code"] == "InternalServerError"
    _assert_cors(r)


def test_named_origins_are_echoed_one_at_a_time_and_others_get_none(client, customer, monkeypatch):
    monkeypatch.setenv("CHAT_CORS_ORIGINS", f"{APP}, https://desk.example.org/")
    for origin in (APP, "https://desk.example.org"):
        r = client.http.get("/v1.0/chats", headers={"Origin": origin, "Authorization": f"Bearer {customer.token}"})
        _assert_cors(r, origin)
        assert _answer_headers(r)["vary"] == "Origin"
        assert _answer_headers(_preflight(client, "/v1.0/chats", origin))["access-control-allow-origin"] == origin
    r = client.http.get("/v1.0/chats", headers={"Origin": EVIL, "Authorization": f"Bearer {customer.token}"})
    assert r.status_code == 200 and "access-control-allow-origin" not in _answer_headers(r)
    assert "access-control-allow-origin" not in _answer_headers(_preflight(client, "/v1.0/chats", EVIL))


# ---- the token cookie and other sites ---------------------------------------------------

def _cookie_send(client, caller, chat, headers):
    """What a plain HTML form on another site posts: text/plain, the browser's cookie."""
    body = json.dumps({"chat_id": chat["id"], "text": "sent by a form"})
    return client.http.post("/v1.0/chatmessages", body=body,
                            headers={"Content-Type": "text/plain", "Cookie": f"token={caller.token}", **headers})


def _messages(caller, chat):
    return caller.get(f"/v1.0/chatmessages?chat_id={chat['id']}").json_body["result"]


@pytest.mark.parametrize("configured", ["*", f"{APP},https://other.example"])
def test_a_cookie_write_from_another_site_is_refused_and_writes_nothing(client, make_agent, monkeypatch, configured):
    monkeypatch.setenv("CHAT_CORS_ORIGINS", configured)
    alice, bob = make_agent(), make_agent()
    chat = create_chat(alice, alice, bob)
    for origin in (EVIL, "null"):
        r = _cookie_send(client, alice, chat, {"Origin": origin})
        assert r.status_code == 403, r.body
        assert json.loads(r.body)["Code"] == "ForbiddenError" and "cookie" in json.loads(r.body)["Message"]
        _assert_cors(r, "*" if configured == "*" else None)
    r = client.http.delete(f"/v1.0/chats/{chat['id']}", headers={"Cookie": f"token={alice.token}", "Origin": EVIL})
    assert r.status_code == 403
    assert _messages(alice, chat) == []


def test_a_cookie_write_is_accepted_without_an_origin_from_the_apis_own_or_a_named_origin(client, make_agent,
                                                                                         monkeypatch):
    monkeypatch.setenv("CHAT_CORS_ORIGINS", APP)
    alice, bob = make_agent(), make_agent()
    chat = create_chat(alice, alice, bob)
    assert _cookie_send(client, alice, chat, {}).status_code == 200  # curl, a server: no Origin
    assert _cookie_send(client, alice, chat, {"Origin": APP}).status_code == 200
    own = _cookie_send(client, alice, chat, {"Origin": "https://api.example.net", "Host": "api.example.net"})
    assert own.status_code == 200, own.body
    assert len(_messages(alice, chat)) == 3


def test_reads_with_the_cookie_and_header_tokens_are_not_origin_checked(client, make_agent):
    alice, bob = make_agent(), make_agent()
    chat = create_chat(alice, alice, bob)
    r = client.http.get("/v1.0/chatrooms", headers={"Cookie": f"token={alice.token}", "Origin": EVIL})
    assert r.status_code == 200  # readable by no other page: no Allow-Credentials, ever
    assert "access-control-allow-credentials" not in _answer_headers(r)
    r = client.http.post("/v1.0/chatmessages", body=json.dumps({"chat_id": chat["id"], "text": "from a desk"}),
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {alice.token}",
                                  "Origin": EVIL})
    assert r.status_code == 200, r.body  # a page that holds the token may act: the header is its proof


def _raise(error):
    def fail(*args, **kwargs):
        raise error

    return fail
