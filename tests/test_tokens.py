"""Tokens for real deployments: rotated secrets (SSM and Secrets Manager,
against moto; `make rotate-secret`'s script), each key's one algorithm, an
identity provider's RS256/ES256 tokens verified against a JWKS served on
loopback, and websocket connections that end with their token."""

import json
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import boto3
import botocore.client
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import app as chat_app
from chalicelib import auth
from chalicelib.auth import provider, secret
from chalicelib.services import connections, delivery
from infra import rotate_secret
from tests.conftest import REGION, SECRET
from tests.helpers import create_chat
from tests.local_server import free_port
from tests.test_realtime import connect, listening, ws_event

# The app's PyJWT is loaded without `cryptography` (auth/tokens.py); the provider's has it, as the tests need.
jwt = provider.jwt
ECAlgorithm, RSAAlgorithm = jwt.algorithms.ECAlgorithm, jwt.algorithms.RSAAlgorithm

ROOT = Path(__file__).resolve().parent.parent
PARAMETER = "/voipbin-chat/test/jwt-secret"


class FakeClock:
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now

    def monotonic(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


def status_of(client, token, path="/v1.0/chats"):
    return client.http.get(path, headers={"Authorization": f"Bearer {token}"}).status_code


@pytest.fixture
def aws_calls(monkeypatch):
    """(service, operation) of every AWS call made."""
    calls = Counter()
    original = botocore.client.BaseClient._make_api_call

    def counting(client, operation_name, api_params):
        calls[(client.meta.service_model.service_name, operation_name)] += 1
        return original(client, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counting)
    return calls


def secrets_from(monkeypatch, **env):
    """The service reads its keys from `env` (no CHAT_JWT_SECRET), on a fake clock."""
    for name in ("CHAT_JWT_SECRET", "CHAT_JWT_SECRET_PARAMETER", "CHAT_JWT_SECRET_ID"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clock = FakeClock()
    monkeypatch.setattr(secret, "_ring", secret.KeyRing(lambda: secret.load_keys(auth.config.load()), clock=clock))
    return clock


def write_stage_config(tmp_path, **env):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"stages": {"test": {"environment_variables": env}}}))
    return path


# ---- rotation ---------------------------------------------------------------------------------

def test_ssm_rotation_keeps_old_tokens_through_one_rotation_and_drops_them_at_the_next(
        client, monkeypatch, aws_calls, tmp_path):
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=PARAMETER, Value="first-secret-" + "x" * 40, Type="SecureString")
    clock = secrets_from(monkeypatch, CHAT_JWT_SECRET_PARAMETER=PARAMETER)
    config = write_stage_config(tmp_path, CHAT_JWT_SECRET_PARAMETER=PARAMETER)
    customer_id = str(uuid.uuid4())
    old = auth.mint("first-secret-" + "x" * 40, customer_id=customer_id)

    assert [status_of(client, old) for _ in range(5)] == [200] * 5
    assert aws_calls[("ssm", "GetParameters")] == 1, "one read, then the cache: none per request"

    print(rotate_secret.rotate("test", config_path=config))  # what make rotate-secret STAGE=test runs
    second = ssm.get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    assert ssm.get_parameter(Name=PARAMETER + "-previous", WithDecryption=True)["Parameter"]["Value"] \
        == "first-secret-" + "x" * 40
    new = auth.mint(second, customer_id=customer_id)
    clock.advance(10)
    assert status_of(client, new) == 401, "an unknown kid re-reads at most once per 30 s"
    clock.advance(25)
    assert status_of(client, new) == 200, "a token of the new secret makes one early read"
    assert status_of(client, old) == 200, "the previous secret still signs valid tokens"
    assert aws_calls[("ssm", "GetParameters")] == 2

    rotate_secret.rotate("test", config_path=config)
    third = ssm.get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]["Value"]
    assert status_of(client, old) == 200, "within 5 minutes the keys read before still serve"
    clock.advance(secret.REFRESH_SECONDS)
    assert status_of(client, old) == 401, "two rotations later, the first secret is gone"
    assert status_of(client, new) == 200 and status_of(client, auth.mint(third, customer_id=customer_id)) == 200
    assert aws_calls[("ssm", "GetParameters")] == 3


def test_secrets_manager_rotation_uses_awscurrent_and_awsprevious(client, monkeypatch, tmp_path):
    manager = boto3.client("secretsmanager", region_name=REGION)
    manager.create_secret(Name="voipbin-chat/test/jwt", SecretString="sm-first-" + "y" * 40)
    clock = secrets_from(monkeypatch, CHAT_JWT_SECRET_ID="voipbin-chat/test/jwt")
    config = write_stage_config(tmp_path, CHAT_JWT_SECRET_ID="voipbin-chat/test/jwt")
    customer_id = str(uuid.uuid4())
    old = auth.mint("sm-first-" + "y" * 40, customer_id=customer_id)
    assert status_of(client, old) == 200

    rotate_secret.rotate("test", config_path=config)
    clock.advance(secret.REFRESH_SECONDS)
    second = manager.get_secret_value(SecretId="voipbin-chat/test/jwt")["SecretString"]
    assert status_of(client, old) == 200 and status_of(client, auth.mint(second, customer_id=customer_id)) == 200

    rotate_secret.rotate("test", config_path=config)
    clock.advance(secret.REFRESH_SECONDS)
    assert status_of(client, old) == 401
    assert status_of(client, auth.mint(second, customer_id=customer_id)) == 200


def test_a_failed_re_read_keeps_the_keys_in_hand(monkeypatch):
    clock, reads = FakeClock(), []

    def load():
        reads.append(clock.now)
        if len(reads) > 1:
            raise RuntimeError("SSM is down")
        return [secret.SigningKey.of(SECRET)]

    ring = secret.KeyRing(load, clock=clock)
    assert ring.keys()[0].secret == SECRET
    clock.advance(secret.REFRESH_SECONDS)
    assert ring.keys()[0].secret == SECRET and len(reads) == 2
    clock.advance(1)
    ring.keys()
    assert len(reads) == 2, "the next try waits RETRY_SECONDS"


def test_tokens_without_a_kid_are_tried_against_the_current_then_the_previous_secret(client, monkeypatch):
    monkeypatch.setenv("CHAT_JWT_PREVIOUS_SECRET", "an-older-secret-" + "z" * 40)
    monkeypatch.setattr(secret, "_ring", None)
    customer_id = str(uuid.uuid4())
    exp = int(time.time()) + 60
    for key in (SECRET, "an-older-secret-" + "z" * 40):
        assert status_of(client, jwt.encode({"customer": {"id": customer_id}, "exp": exp}, key)) == 200
    assert status_of(client, jwt.encode({"customer": {"id": customer_id}, "exp": exp}, "x" * 64)) == 401


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")  # HS512 with our 52-byte secret
def test_each_key_has_one_algorithm(client):
    customer_id = str(uuid.uuid4())
    claims = {"customer": {"id": customer_id}, "exp": int(time.time()) + 60}
    kid = secret.key_id(SECRET)
    assert status_of(client, jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": kid})) == 200
    # the same secret and kid under another HMAC algorithm, or none
    assert status_of(client, jwt.encode(claims, SECRET, algorithm="HS512", headers={"kid": kid})) == 401
    assert status_of(client, jwt.encode(claims, None, algorithm="none", headers={"kid": kid})) == 401
    # an RS256 token naming the HS256 key, on a stage without an identity provider
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert status_of(client, jwt.encode(claims, private, algorithm="RS256", headers={"kid": kid})) == 401
    assert status_of(client, hand_signed({"alg": "HS256", "typ": "JWT", "kid": 7}, claims, SECRET)) == 401


def hand_signed(header, claims, key):
    """An HS256 token with any header at all (PyJWT refuses to encode some)."""
    import base64
    import hashlib
    import hmac

    def part(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing_input = f"{part(json.dumps(header).encode())}.{part(json.dumps(claims).encode())}"
    return f"{signing_input}.{part(hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest())}"


# ---- an identity provider ---------------------------------------------------------------------

class Jwks:
    """A JWKS endpoint on loopback (http.server in a thread, a free port); counts its fetches."""

    def __init__(self):
        self.keys, self.fetches = [], 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/.well-known/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, kid, private, with_alg=True):
        algorithm = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
        jwk = algorithm.to_jwk(private.public_key(), as_dict=True)
        jwk.update(kid=kid, use="sig")
        if with_alg:
            jwk["alg"] = "RS256" if algorithm is RSAAlgorithm else "ES256"
        self.keys.append(jwk)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


ISSUER, AUDIENCE = "https://id.example.test/", "voipbin-chat"


@pytest.fixture
def idp(monkeypatch, client):
    jwks = Jwks()
    monkeypatch.setenv("CHAT_JWKS_URL", jwks.url)
    monkeypatch.setenv("CHAT_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("CHAT_JWT_AUDIENCE", AUDIENCE)
    clock = FakeClock(time.monotonic())
    for module in ("jwt.jwks_client", "jwt.jwk_set_cache", "jwt.api_jwk"):
        monkeypatch.setattr(f"{module}.time", SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(provider, "_provider", None)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    jwks.publish("rsa-1", rsa_key)
    jwks.publish("ec-1", ec_key, with_alg=False)  # the algorithm from the key type and curve
    yield SimpleNamespace(jwks=jwks, clock=clock, rsa=rsa_key, ec=ec_key)
    jwks.stop()


def idp_token(private, kid, algorithm, claims=None, **extra):
    body = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 600, **(claims or {}), **extra}
    return jwt.encode(body, private, algorithm=algorithm, headers={"kid": kid})


def test_identity_provider_tokens_act_as_voipbin_callers(idp, client):
    customer_id, a, b = (str(uuid.uuid4()) for _ in range(3))
    customer = idp_token(idp.ec, "ec-1", "ES256", {"customer": {"id": customer_id}})
    agent = idp_token(idp.rsa, "rsa-1", "RS256",
                      {"agent": {"id": a, "customer_id": customer_id, "name": "alice", "permission": 16}})
    headers = {"Authorization": f"Bearer {customer}", "Content-Type": "application/json"}
    chat = client.http.post("/v1.0/chats", headers=headers, body=json.dumps(
        {"type": "normal", "owner_id": a, "participant_ids": [a, b]})).json_body
    sent = client.http.post("/v1.0/chatmessages", headers={**headers, "Authorization": f"Bearer {agent}"},
                            body=json.dumps({"chat_id": chat["id"], "text": "from the IdP"}))
    assert sent.status_code == 200, sent.body
    assert sent.json_body["source"]["target"] == a and sent.json_body["source"]["target_name"] == "alice"
    for _ in range(5):
        assert status_of(client, agent, "/v1.0/chatrooms") == 200 and status_of(client, customer) == 200
    assert idp.jwks.fetches == 1, "the key set is fetched once, then cached"
    # our own HS256 tokens still work beside them
    assert status_of(client, auth.mint(SECRET, customer_id=customer_id)) == 200


def test_identity_provider_tokens_are_checked(idp, client):
    customer = {"customer": {"id": str(uuid.uuid4())}}
    good = idp_token(idp.rsa, "rsa-1", "RS256", customer)
    assert status_of(client, good) == 200
    other_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for bad in (
        idp_token(idp.rsa, "rsa-1", "RS256", customer, iss="https://someone-else.test/"),
        idp_token(idp.rsa, "rsa-1", "RS256", customer, aud="another-service"),
        jwt.encode({"iss": ISSUER, "exp": int(time.time()) + 60, **customer}, idp.rsa, algorithm="RS256",
                   headers={"kid": "rsa-1"}),  # no aud
        idp_token(idp.rsa, "rsa-1", "RS256", customer, exp=int(time.time()) - 1),
        idp_token(other_rsa, "rsa-1", "RS256", customer),  # signed by someone else's key
        idp_token(idp.rsa, "rsa-1", "RS512", customer),  # the key's algorithm is RS256
        idp_token(idp.ec, "rsa-1", "ES256", customer),  # an EC signature under the RSA key's kid
        jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, **customer}, idp.rsa,
                   algorithm="RS256"),  # no kid
        idp_token(idp.rsa, "rsa-1", "RS256", {"user": "no VoIPBIN claim"}),
    ):
        assert status_of(client, bad) == 401, jwt.get_unverified_header(bad)
    # an HMAC token "signed" with the provider's public key (algorithm confusion)
    for public in (RSAAlgorithm.to_jwk(idp.rsa.public_key()), idp.rsa.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()):
        confused = hand_signed({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"},
                               {**customer, "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, public)
        assert status_of(client, confused) == 401


def test_an_unknown_kid_refreshes_the_keys_once_per_cooldown_and_they_expire_after_5_minutes(idp, client):
    customer = {"customer": {"id": str(uuid.uuid4())}}
    assert status_of(client, idp_token(idp.rsa, "rsa-1", "RS256", customer)) == 200
    assert idp.jwks.fetches == 1
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    idp.jwks.publish("rsa-2", rotated)
    fresh = idp_token(rotated, "rsa-2", "RS256", customer)
    for _ in range(5):  # a flood of unknown kids inside the cooldown: no fetch
        assert status_of(client, idp_token(rotated, f"made-up-{uuid.uuid4()}", "RS256", customer)) == 401
    assert status_of(client, fresh) == 401 and idp.jwks.fetches == 1
    idp.clock.advance(provider.UNKNOWN_KID_SECONDS)
    assert status_of(client, fresh) == 200, "the unknown kid made one fetch"
    assert idp.jwks.fetches == 2
    assert status_of(client, fresh) == 200 and idp.jwks.fetches == 2
    # a key the provider withdrew stops working once the cached set expires
    idp.jwks.keys = [k for k in idp.jwks.keys if k["kid"] != "rsa-1"]
    old = idp_token(idp.rsa, "rsa-1", "RS256", customer)
    assert status_of(client, old) == 200
    idp.clock.advance(provider.REFRESH_SECONDS + 1)
    assert status_of(client, old) == 401 and idp.jwks.fetches == 3


def test_claim_names_are_configurable(idp, client, monkeypatch):
    monkeypatch.setenv("CHAT_JWT_AGENT_CLAIM", "https://voipbin.net/agent")
    monkeypatch.setenv("CHAT_JWT_CUSTOMER_CLAIM", "https://voipbin.net/customer")
    monkeypatch.setattr(provider, "_provider", None)
    customer_id = str(uuid.uuid4())
    agent = {"id": str(uuid.uuid4()), "customer_id": customer_id, "name": "bob", "permission": 32}
    assert status_of(client, idp_token(idp.rsa, "rsa-1", "RS256", {"https://voipbin.net/agent": agent})) == 200
    assert status_of(client, idp_token(idp.rsa, "rsa-1", "RS256",
                                       {"https://voipbin.net/customer": {"id": customer_id}})) == 200
    assert status_of(client, idp_token(idp.rsa, "rsa-1", "RS256", {"agent": agent})) == 401


def test_the_provider_code_is_imported_only_when_a_jwks_url_is_set():
    script = (
        "import os, sys, time\n"
        "os.environ.update(CHAT_JWT_SECRET='s' * 40)\n"
        "from chalicelib import auth\n"
        "token = auth.mint('s' * 40, customer_id='5e4a0680-804e-11ec-8477-2fea5968d85b')\n"
        "auth.authenticate({'Authorization': 'Bearer ' + token}, [])\n"
        "print('chalicelib.auth.provider' in sys.modules)\n"
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.stdout.strip() == "False", result.stderr


# ---- websocket connections end with their token -----------------------------------------------

def test_a_connection_receives_nothing_after_its_token_expires(customer, make_agent, fanout, monkeypatch):
    received = {}
    monkeypatch.setenv("CHAT_WEBSOCKET_ENDPOINT", "http://127.0.0.1:9/unused")
    monkeypatch.setattr(delivery, "push", lambda endpoint, cid, message: received.setdefault(cid, []).append(
        message) or True)
    a, b = make_agent(), make_agent()
    short = SimpleNamespace(token=auth.mint(SECRET, customer_id=b.customer_id, agent_id=b.id, name="b",
                                            permission=16, ttl_seconds=60))
    brief, lasting = connect(short), connect(b)
    assert sorted(listening(b.customer_id, f"agent#{b.id}")) == sorted([brief, lasting])
    chat = create_chat(customer, a, b)
    fanout.drain()
    assert brief in received and lasting in received
    received.clear()

    later = time.time() + 61  # past the short token's exp, within the other connection's 2 hours
    monkeypatch.setattr(connections, "_clock", lambda: later)
    assert listening(b.customer_id, f"agent#{b.id}") == [lasting]
    a.post("/v1.0/chatmessages", {"chat_id": chat["id"], "text": "after exp"})
    fanout.drain()
    assert brief not in received, "nothing pushed to a connection whose token expired"
    assert [m["type"] for m in received[lasting]].count("messagechat_created") == 1


def test_a_connection_lives_two_hours_at_most_and_its_route_expires_with_it(make_agent, aws):
    from chalicelib.storage.models import META, ConnectionRouteItem

    agent = make_agent()
    long_lived = SimpleNamespace(token=auth.mint(SECRET, customer_id=agent.customer_id, agent_id=agent.id,
                                                 permission=16, ttl_seconds=30 * 24 * 3600))
    short = SimpleNamespace(token=auth.mint(SECRET, customer_id=agent.customer_id, agent_id=agent.id,
                                            permission=16, ttl_seconds=120))
    now = int(time.time())
    first, second = connect(long_lived), connect(short)
    first_route = ConnectionRouteItem.get(ConnectionRouteItem.key(first), META)
    second_route = ConnectionRouteItem.get(ConnectionRouteItem.key(second), META)
    assert now + connections.CONNECTION_TTL_SECONDS <= first_route.expires_at <= now + 5 + 2 * 3600
    assert now + 120 <= second_route.expires_at <= now + 125
    # the audience item is swept after its latest connection's 2 hours, not the short token's
    from chalicelib.storage.models import AudienceItem

    item = AudienceItem.get(AudienceItem.key(agent.customer_id, f"agent#{agent.id}"), META)
    assert item.expires_at >= now + connections.CONNECTION_TTL_SECONDS
    chat_app.ws_disconnect(ws_event("$disconnect", second), None)


def test_the_token_tool_signs_with_a_stage_s_current_secret(aws, monkeypatch, capsys):
    from devtools import token as token_tool

    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/voipbin-chat/dev/jwt-secret", Value="dev-stage-secret-" + "d" * 40,
                      Type="SecureString")  # the name .chalice/config.json gives the dev stage
    customer_id = str(uuid.uuid4())
    assert token_tool.main(["--customer-id", customer_id, "--stage", "dev"]) == 0
    minted = capsys.readouterr().out.strip()
    assert jwt.get_unverified_header(minted)["kid"] == secret.key_id("dev-stage-secret-" + "d" * 40)
    assert auth.decode(minted, "dev-stage-secret-" + "d" * 40).customer_id == customer_id


def test_a_misconfigured_identity_provider_is_a_500_naming_the_fix(client, monkeypatch):
    customer = {"customer": {"id": str(uuid.uuid4())}}
    token = idp_token(rsa.generate_private_key(public_exponent=65537, key_size=2048), "rsa-1", "RS256", customer)
    monkeypatch.setattr(provider, "_provider", None)
    monkeypatch.setenv("CHAT_JWKS_URL", f"http://127.0.0.1:{free_port()}/jwks.json")
    answer = client.http.get("/v1.0/chats", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 500 and "CHAT_JWT_ISSUER and CHAT_JWT_AUDIENCE" in answer.json_body["Message"]
    monkeypatch.setenv("CHAT_JWT_ISSUER", ISSUER)
    monkeypatch.setenv("CHAT_JWT_AUDIENCE", AUDIENCE)
    monkeypatch.setattr(jwt.algorithms, "has_crypto", False)
    answer = client.http.get("/v1.0/chats", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 500 and "add cryptography to requirements.txt" in answer.json_body["Message"]
    monkeypatch.setattr(jwt.algorithms, "has_crypto", True)
    answer = client.http.get("/v1.0/chats", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 503, "the provider's keys cannot be fetched (nothing listens there)"
    # the stage's own tokens are unaffected
    assert status_of(client, auth.mint(SECRET, customer_id=customer["customer"]["id"])) == 200
