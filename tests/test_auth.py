"""Authentication (docs/API.md, "Authentication"): where the token may be, which
tokens are accepted, and that every bad token is a clean 401 that writes nothing."""

import base64
import functools
import hashlib
import hmac
import json
import time
import uuid
import warnings

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.conftest import SECRET

CHATS = "/v1.0/chats"
ERROR_KEYS = {"Code", "Message"}


def _exp(seconds_from_now=3600):
    return int(time.time()) + seconds_from_now


def _hs256(claims, secret=SECRET, headers=None):
    return jwt.encode(claims, secret, algorithm="HS256", headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unsigned(claims):
    """A token with `alg: none` and an empty signature."""
    header = _b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    return f"{header}.{payload}."


def _relabelled(claims, alg):
    """HMAC-SHA256 signed with the server's secret, but the header claims another alg."""
    header = _b64(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    signature = _b64(hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


@functools.cache
def _rsa_key():
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _rs256(claims):
    """Signed with an RSA key here: the app's PyJWT has no RSA (chalicelib/auth/tokens.py)."""
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = _rsa_key().sign(f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{header}.{payload}.{_b64(signature)}"


def _hs(claims, algorithm):
    with warnings.catch_warnings():  # the test secret is shorter than HS384/HS512 recommend
        warnings.simplefilter("ignore")
        return jwt.encode(claims, SECRET, algorithm=algorithm)


def _customer_claims(customer_id, exp=None):
    return {"customer": {"id": customer_id}, "exp": exp if exp is not None else _exp()}


def _agent_claims(customer, **overrides):
    agent = {"id": str(uuid.uuid4()), "customer_id": customer, "name": "someone", "permission": 32}
    agent.update(overrides)
    return {"agent": agent, "exp": _exp()}


def _chat_body(make_agent):
    a, b = make_agent(), make_agent()
    return {"type": "normal", "owner_id": a.id, "participant_ids": [a.id, b.id]}


def _assert_no_chats(customer):
    listed = customer.get(CHATS)
    assert listed.status_code == 200, listed.body
    assert listed.json_body["result"] == []


def _post_json(client, path, body, headers):
    return client.http.post(path, headers={"Content-Type": "application/json", **headers}, body=json.dumps(body))


# ---- where the token may be ----------------------------------------------------

def test_token_in_query_parameter_is_accepted(client, customer, make_agent):
    r = _post_json(client, f"{CHATS}?token={customer.token}", _chat_body(make_agent), {})
    assert r.status_code == 200, r.body
    assert r.json_body["customer_id"] == customer.customer_id


def test_token_in_bearer_header_is_accepted(client, customer, make_agent):
    r = _post_json(client, CHATS, _chat_body(make_agent), {"Authorization": f"Bearer {customer.token}"})
    assert r.status_code == 200, r.body
    assert r.json_body["customer_id"] == customer.customer_id


def test_token_in_cookie_is_accepted(client, customer, make_agent):
    r = _post_json(client, CHATS, _chat_body(make_agent), {"Cookie": f"token={customer.token}"})
    assert r.status_code == 200, r.body
    assert r.json_body["customer_id"] == customer.customer_id


def test_token_cookie_among_other_cookies_is_accepted(client, customer):
    r = client.http.get(CHATS, headers={"Cookie": f"theme=dark; token={customer.token}; lang=en"})
    assert r.status_code == 200, r.body


def test_query_token_works_for_reads(client, customer, make_agent):
    created = customer.post(CHATS, _chat_body(make_agent)).json_body
    r = client.http.get(f"{CHATS}/{created['id']}?token={customer.token}")
    assert r.status_code == 200, r.body
    assert r.json_body["id"] == created["id"]


# ---- token shapes that are accepted ----------------------------------------------

def test_seed_token_with_customer_claim_as_json_string_is_accepted(client, customer, make_agent):
    # The seed's example token carries the customer object serialized as a JSON string.
    customer_json = json.dumps({
        "id": customer.customer_id, "username": "admin", "name": "admin", "detail": "admin account",
        "permission_ids": [str(uuid.uuid4())], "tm_create": "2022-02-01 00:00:00.000000",
        "tm_delete": "9999-01-01 00:00:00.000000",
    })
    token = _hs256({"customer": customer_json, "exp": _exp()})
    r = _post_json(client, f"{CHATS}?token={token}", _chat_body(make_agent), {})
    assert r.status_code == 200, r.body
    assert r.json_body["customer_id"] == customer.customer_id
    # It acts as that customer: the chat is in that customer's list.
    assert [c["id"] for c in customer.get(CHATS).json_body["result"]] == [r.json_body["id"]]


def test_agent_token_object_claim_is_accepted(client, customer_id):
    token = _hs256(_agent_claims(customer_id, permission=16))
    r = client.http.get("/v1.0/chatrooms", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.body
    assert r.json_body["result"] == []


# ---- tokens that are refused: 401 {"Code", "Message"} and nothing written ----------

def _bad_tokens(customer_id):
    """(label, token) for every token the contract refuses, for the customer `customer_id`."""
    good_customer = _customer_claims(customer_id)
    return {
        "garbage": "not-a-jwt",
        "three_garbage_parts": "abc.def.ghi",
        "alg_none_unsigned": _unsigned(good_customer),
        "hs256_other_secret": _hs256(good_customer, secret="another-secret-that-is-long-enough-0123456789"),
        "hs384": _hs(good_customer, "HS384"),
        "hs512": _hs(good_customer, "HS512"),
        "rs256_signed_with_rsa_key": _rs256(good_customer),
        "rs256_label_hmac_signature": _relabelled(good_customer, "RS256"),
        "hs512_label_hs256_signature": _relabelled(good_customer, "HS512"),
        "expired": _hs256(_customer_claims(customer_id, exp=_exp(-60))),
        "missing_exp": _hs256({"customer": {"id": customer_id}}),
        "exp_not_a_number": _hs256({"customer": {"id": customer_id}, "exp": "tomorrow"}),
        "no_customer_or_agent_claim": _hs256({"sub": customer_id, "exp": _exp()}),
        "customer_without_id": _hs256({"customer": {"name": "admin"}, "exp": _exp()}),
        "customer_id_not_uuid": _hs256({"customer": {"id": "not-a-uuid"}, "exp": _exp()}),
        "customer_id_a_number": _hs256({"customer": {"id": 12345}, "exp": _exp()}),
        "customer_string_id_not_uuid": _hs256({"customer": json.dumps({"id": "admin"}), "exp": _exp()}),
        "customer_string_not_json": _hs256({"customer": "{not json", "exp": _exp()}),
        "customer_string_json_list": _hs256({"customer": json.dumps([customer_id]), "exp": _exp()}),
        "customer_claim_a_list": _hs256({"customer": [customer_id], "exp": _exp()}),
        "agent_id_not_uuid": _hs256(_agent_claims(customer_id, id="agent-1")),
        "agent_customer_id_not_uuid": _hs256(_agent_claims(customer_id, customer_id="customer-1")),
        "agent_customer_id_missing": _hs256(
            {"agent": {"id": str(uuid.uuid4()), "name": "x", "permission": 32}, "exp": _exp()}
        ),
        "agent_permission_a_string": _hs256(_agent_claims(customer_id, permission="32")),
        "agent_permission_a_bool": _hs256(_agent_claims(customer_id, permission=True)),
        "agent_permission_a_float": _hs256(_agent_claims(customer_id, permission=32.5)),
        "agent_name_not_a_string": _hs256(_agent_claims(customer_id, name=["x"])),
        "agent_claim_not_an_object": _hs256({"agent": "agent-1", "exp": _exp()}),
    }


BAD_TOKEN_LABELS = list(_bad_tokens(str(uuid.uuid4())))


def _assert_401(r):
    assert r.status_code == 401, (r.status_code, r.body)
    body = r.json_body
    assert set(body) == ERROR_KEYS, body
    assert isinstance(body["Code"], str) and body["Code"]
    assert isinstance(body["Message"], str) and body["Message"]


@pytest.mark.parametrize("label", BAD_TOKEN_LABELS)
def test_bad_bearer_token_is_401_and_writes_nothing(label, client, customer, make_agent):
    token = _bad_tokens(customer.customer_id)[label]
    r = _post_json(client, CHATS, _chat_body(make_agent), {"Authorization": f"Bearer {token}"})
    _assert_401(r)
    _assert_no_chats(customer)


@pytest.mark.parametrize("label", ["garbage", "alg_none_unsigned", "hs256_other_secret", "expired"])
def test_bad_query_token_is_401_and_writes_nothing(label, client, customer, make_agent):
    token = _bad_tokens(customer.customer_id)[label]
    r = _post_json(client, f"{CHATS}?token={token}", _chat_body(make_agent), {})
    _assert_401(r)
    _assert_no_chats(customer)


@pytest.mark.parametrize("label", ["garbage", "alg_none_unsigned", "hs256_other_secret", "expired"])
def test_bad_cookie_token_is_401_and_writes_nothing(label, client, customer, make_agent):
    token = _bad_tokens(customer.customer_id)[label]
    r = _post_json(client, CHATS, _chat_body(make_agent), {"Cookie": f"token={token}"})
    _assert_401(r)
    _assert_no_chats(customer)


def test_no_token_is_401_and_writes_nothing(client, customer, make_agent):
    r = _post_json(client, CHATS, _chat_body(make_agent), {})
    _assert_401(r)
    _assert_no_chats(customer)


def test_authorization_header_without_bearer_scheme_is_401(client, customer, make_agent):
    r = _post_json(client, CHATS, _chat_body(make_agent), {"Authorization": customer.token})
    _assert_401(r)
    _assert_no_chats(customer)


def test_empty_bearer_token_is_401(client, customer, make_agent):
    r = _post_json(client, CHATS, _chat_body(make_agent), {"Authorization": "Bearer "})
    _assert_401(r)
    _assert_no_chats(customer)


@pytest.mark.parametrize("label", ["garbage", "alg_none_unsigned", "expired", "missing_exp"])
def test_bad_token_on_read_is_401_without_data(label, client, customer, make_agent):
    customer.post(CHATS, _chat_body(make_agent))
    token = _bad_tokens(customer.customer_id)[label]
    r = client.http.get(CHATS, headers={"Authorization": f"Bearer {token}"})
    _assert_401(r)
    assert "result" not in r.json_body


def test_bad_token_on_message_send_writes_no_message(client, customer, make_agent):
    chat = customer.post(CHATS, _chat_body(make_agent)).json_body
    token = _bad_tokens(customer.customer_id)["hs256_other_secret"]
    r = _post_json(client, "/v1.0/chatmessages", {"chat_id": chat["id"], "text": "hi"},
                   {"Authorization": f"Bearer {token}"})
    _assert_401(r)
    listed = customer.get(f"/v1.0/chatmessages?chat_id={chat['id']}")
    assert listed.status_code == 200, listed.body
    assert listed.json_body["result"] == []
