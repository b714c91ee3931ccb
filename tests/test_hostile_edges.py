"""Edges found by hostile input: each is a clear 4xx with the JSON error shape
(or an error frame on the websocket), and nothing changes."""

import json
import logging
import time
import uuid
from collections import defaultdict

import jwt
import pytest

import app as chat_app
from chalicelib.services import delivery
from devtools import gateway
from tests.conftest import SECRET
from tests.helpers import assert_error, create_chat
from tests.test_realtime import connect, ws_event


def chat_body(make_agent):
    a, b = make_agent(), make_agent()
    return {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]}


def post(client, path, body, headers):
    return client.http.post(path, body=json.dumps(body), headers={"Content-Type": "application/json", **headers})


def no_chats(customer):
    assert customer.get("/v1.0/chats").json_body["result"] == []


# ---- two tokens in one request ------------------------------------------------

@pytest.fixture
def two_customers(client, customer, other_customer):
    return customer, other_customer


TWO_TOKEN_PLACES = {
    "bearer and cookie": lambda path, a, b: (path, {"Authorization": f"Bearer {a}", "Cookie": f"token={b}"}),
    "query and bearer": lambda path, a, b: (f"{path}?token={a}", {"Authorization": f"Bearer {b}"}),
    "query and cookie": lambda path, a, b: (f"{path}?token={a}", {"Cookie": f"token={b}"}),
    "query twice": lambda path, a, b: (f"{path}?token={a}&token={b}", {}),
    "cookie twice": lambda path, a, b: (path, {"Cookie": f"token={a}; token={b}"}),
}


@pytest.mark.parametrize("places", sorted(TWO_TOKEN_PLACES))
def test_two_different_tokens_are_refused_naming_the_conflict(client, two_customers, make_agent, places):
    a, b = two_customers
    path, headers = TWO_TOKEN_PLACES[places]("/v1.0/chats", a.token, b.token)
    response = post(client, path, chat_body(make_agent), headers)
    assert_error(response, 401)
    assert "different tokens" in response.json_body["Message"]
    no_chats(a)
    no_chats(b)


@pytest.mark.parametrize("places", sorted(TWO_TOKEN_PLACES))
def test_the_same_token_twice_is_fine(client, customer, make_agent, places):
    path, headers = TWO_TOKEN_PLACES[places]("/v1.0/chats", customer.token, customer.token)
    response = post(client, path, chat_body(make_agent), headers)
    assert response.status_code == 200, response.body


def test_the_websocket_refuses_two_tokens_and_reads_the_cookie(aws, customer, other_customer):
    both = ws_event("$connect", "c-two", queryStringParameters={"token": customer.token},
                    headers={"Cookie": f"token={other_customer.token}"})
    refused = chat_app.ws_connect(both, None)
    assert refused["statusCode"] == 401 and "different tokens" in refused["body"]
    by_cookie = ws_event("$connect", "c-cookie", headers={"cookie": f" token={customer.token} "})
    assert chat_app.ws_connect(by_cookie, None)["statusCode"] == 200


# ---- claims ---------------------------------------------------------------------

def token(claims):
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_a_token_with_both_a_customer_and_an_agent_claim_is_401(client, customer):
    both = token({"customer": {"id": customer.customer_id},
                  "agent": {"id": str(uuid.uuid4()), "customer_id": customer.customer_id, "permission": 16},
                  "exp": int(time.time()) + 600})
    response = client.http.get("/v1.0/chats", headers={"Authorization": f"Bearer {both}"})
    assert_error(response, 401)
    assert "both" in response.json_body["Message"]


@pytest.mark.parametrize("exp", [str(int(time.time()) + 600), float(int(time.time()) + 600) + 0.5, 1e300, 10**40,
                                 True, int(time.time()) + 11 * 366 * 24 * 3600],
                         ids=["string", "float", "1e300", "10**40", "bool", "eleven years"])
def test_exp_must_be_an_integer_of_seconds_at_most_ten_years_ahead(client, customer, make_agent, exp):
    bad = token({"customer": {"id": customer.customer_id}, "exp": exp})
    response = post(client, "/v1.0/chats", chat_body(make_agent), {"Authorization": f"Bearer {bad}"})
    assert_error(response, 401)
    assert "exp" in response.json_body["Message"]
    no_chats(customer)


def test_an_exp_nine_years_ahead_is_accepted(client, customer):
    fine = token({"customer": {"id": customer.customer_id}, "exp": int(time.time()) + 9 * 365 * 24 * 3600})
    assert client.http.get("/v1.0/chats", headers={"Authorization": f"Bearer {fine}"}).status_code == 200


# ---- paging -------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ["%EF%BC%95", "%D9%A5", "%E0%A5%AB", "5%EF%BC%90"])
def test_page_size_takes_ascii_digits_only(customer, raw):
    response = customer.get(f"/v1.0/chats?page_size={raw}")
    assert_error(response, 400)
    assert "page_size" in response.json_body["Message"]


def test_page_token_takes_ascii_digits_only(customer, make_agent):
    create_chat(customer, make_agent(), make_agent())
    full_width = "２０２２-01-01 00:00:00.000000"
    response = customer.get(f"/v1.0/chats?page_token={full_width}")
    assert_error(response, 400)


# ---- websocket frames -------------------------------------------------------------

@pytest.fixture
def pushed(monkeypatch):
    received = defaultdict(list)
    monkeypatch.setenv("CHAT_WEBSOCKET_ENDPOINT", "http://127.0.0.1:9/unused")
    monkeypatch.setattr(delivery, "push", lambda endpoint, cid, message: received[cid].append(message) or True)
    return received


@pytest.mark.parametrize("frame", ["[" * 10_000 + "]" * 10_000, '{"a":' * 10_000 + "1" + "}" * 10_000,
                                   "not json", "[]", '{"type": "pong"}'])
def test_a_bad_frame_gets_an_error_frame_and_the_connection_stays(aws, make_agent, pushed, caplog, frame):
    connection_id = connect(make_agent())
    caplog.set_level(logging.WARNING)
    chat_app.ws_message(ws_event("$default", connection_id, body=frame), None)
    [reply] = pushed[connection_id]
    assert reply["type"] == "error" and "ping" in reply["message"]
    if frame.startswith(("[[", '{"a":{')):
        assert "nested too deeply" in reply["message"]
        assert any("nested too deeply" in record.getMessage() for record in caplog.records)
    chat_app.ws_message(ws_event("$default", connection_id, body=json.dumps({"type": "ping"})), None)
    assert pushed[connection_id][-1] == {"type": "pong"}


@pytest.mark.parametrize("path", ["/v1.0/nothing-here", "/v1.0/chats/x/y/z", "/", "/v2.0/chats"])
def test_an_unknown_route_is_the_apis_404_and_never_quotes_the_token_back(client, customer, path):
    """API Gateway's own answer is 403 "Missing Authentication Token", and with a
    Bearer header it quotes the header back; the stack's gateway response (as
    devtools/gateway.py plays it locally) answers the API's 404."""
    unchecked = super(type(client), client).http  # no route's schema applies: the answer is checked here
    for headers in ({}, {"Authorization": f"Bearer {customer.token}"}):
        response = unchecked.get(path, headers=headers)
        assert response.status_code == 404, response.body
        assert json.loads(response.body) == gateway.UNKNOWN_ROUTE_BODY
        assert customer.token.encode() not in response.body
