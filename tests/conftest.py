"""One moto table, built the way production builds it, and helpers to call
the API as a customer or an agent and to run the stream fan-out.

Every response that goes through the test client is checked against the schema
of its route (tests/schema_check.py, tests/schemas/)."""

import os
import uuid

from tests import audit_open

if os.environ.get("CHAT_AUDIT_OPEN") == "1":  # before anything else is read: see tests/audit_open.py
    audit_open.install()

os.environ.update(
    CHAT_JWT_SECRET="test-secret-that-is-long-enough-for-hs256-0123456789",
    CHAT_TABLE_NAME="chat-test",
    CHAT_FILES_BUCKET="chat-files-test",
    CHAT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    # Send limits far above what any test sends, so only the tests of the
    # limits (tests/test_limits.py, which set their own) meet them.
    CHAT_AGENT_SENDS_PER_WINDOW="1000000",
    CHAT_CUSTOMER_SENDS_PER_WINDOW="1000000",
)
os.environ.pop("CHAT_DYNAMODB_ENDPOINT", None)
os.environ.pop("CHAT_S3_ENDPOINT", None)

import contextlib  # noqa: E402
import json  # noqa: E402

import boto3  # noqa: E402
import chalice.test  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

import app as chat_app  # noqa: E402
from chalicelib import auth, storage  # noqa: E402
from chalicelib.storage.table import create_table  # noqa: E402
from chalicelib.stream.handler import stream_filters  # noqa: E402
from devtools import aws_limits, gateway, moto_patches  # noqa: E402
from devtools.streams import ShardReader, lambda_event, lambda_filter, streams_client  # noqa: E402
from tests import schema_check  # noqa: E402

# moto with DynamoDB's transaction semantics and atomic, thread-safe operations,
# and AWS's quotas on every call of the suite (devtools/aws_limits.py).
moto_patches.apply()
aws_limits.install()
gateway.answer_unknown_routes_as_the_stack_does()  # as the stack's gateway responses do on AWS


@contextlib.contextmanager
def _environment_as_is(self, environment_variables):
    """Chalice's test client swaps os.environ for a copy with the stage's
    variables on every request, which races when requests overlap; the tests
    set the environment themselves."""
    yield


chalice.test.BaseClient._patched_env_vars = _environment_as_is

SECRET = os.environ["CHAT_JWT_SECRET"]
REGION = "us-east-1"
TABLE = os.environ["CHAT_TABLE_NAME"]
BUCKET = os.environ["CHAT_FILES_BUCKET"]


class CheckedHttp:
    """Chalice's test HTTP client; every response is checked against the schema its route
    answers with (a resource, a list page, or an error), whoever made the request."""

    def __init__(self, http):
        self._http = http

    def request(self, method, path, headers=None, body=b""):
        response = self._http.request(method, path, headers=headers, body=body)
        schema_check.check_response(method.upper(), path, response.status_code, response.body)
        schema_check.check_answer_size(response.status_code, response.headers, response.body)
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)

    def head(self, path, **kwargs):
        return self.request("HEAD", path, **kwargs)

    def options(self, path, **kwargs):
        return self.request("OPTIONS", path, **kwargs)


class Client(chalice.test.Client):
    """chalice.test.Client whose `http` checks every response (CheckedHttp)."""

    @property
    def http(self):
        return CheckedHttp(super().http)


class Caller:
    """Someone with a token: a customer, or an agent with permission bits."""

    def __init__(self, client, customer_id, agent_id=None, name="", permission=0):
        self.client = client
        self.customer_id = customer_id
        self.id = agent_id
        self.name = name
        self.token = auth.mint(SECRET, customer_id=customer_id, agent_id=agent_id, name=name, permission=permission)

    def _call(self, method, path, body=None, headers=None, raw=None):
        headers = {"Authorization": f"Bearer {self.token}", **(headers or {})}
        kwargs = {"headers": headers}
        if raw is not None:
            kwargs["body"] = raw
            headers.setdefault("Content-Type", "application/json")
        elif body is not None:
            kwargs["body"] = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        return getattr(self.client.http, method)(path, **kwargs)

    def get(self, path, **kw):
        return self._call("get", path, **kw)

    def post(self, path, body=None, **kw):
        return self._call("post", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self._call("put", path, body, **kw)

    def delete(self, path, **kw):
        return self._call("delete", path, **kw)


DELIVERED = lambda_filter(stream_filters())  # what the stage's mapping lets through to the function


class Fanout:
    """Feeds the handler with the records moto's stream really produced, in
    Lambda's batches: at most 100 records (the mapping's batch size) and
    6 MB of event."""

    BATCH_SIZE = 100  # app.on_table_change's batch_size

    def __init__(self, stream_arn):
        self.stream_arn = stream_arn
        self.reader = ShardReader(streams_client(REGION, None), stream_arn)
        self.handled = 0

    def read_event(self, limit=BATCH_SIZE):
        """The next batch, as Lambda would deliver it: the records its filter
        lets through (chalicelib/stream/handler.stream_filters), at most `limit`
        (tests of a larger batch than Lambda's ask for one)."""
        records: list[dict] = []
        while len(records) < limit:
            read = [record for _, record in self.reader.read(limit=limit - len(records))]
            if not read:
                break
            records += [record for record in read if DELIVERED(record)]
        event = lambda_event(records, self.stream_arn, REGION)
        size = len(json.dumps(event, default=str).encode())
        assert size <= aws_limits.LAMBDA_ANSWER_MAX, f"a stream event of {size} bytes: over Lambda's 6 MB payload"
        return event

    def read_unfiltered(self) -> tuple[list[dict], dict]:
        """Every new record, and the event they would make if Lambda's filter
        let them all through (a stage deployed before it; make redrive)."""
        records = [record for _, record in self.reader.read()]
        return records, lambda_event(records, self.stream_arn, REGION)

    def invoke(self, event):
        return chat_app.on_table_change(event, None)

    def drain(self, rounds=100):
        """Run the handler, a Lambda batch at a time, until the stream has
        nothing new (cascades write more records)."""
        for _ in range(rounds):
            event = self.read_event()
            if not event["Records"]:
                return
            result = self.invoke(event)
            assert result == {"batchItemFailures": []}, result
            self.handled += len(event["Records"])
        raise AssertionError("the stream never went quiet")


# One client and one PynamoDB configuration for the session: moto intercepts
# them inside each test's mock_aws, and building them per test costs more
# than the test.
DYNAMODB = boto3.client("dynamodb", region_name=REGION)
storage.configure()


@contextlib.contextmanager
def _moto_table():
    """A fresh moto account with the table as production builds it; yields its stream ARN."""
    with mock_aws():
        yield create_table(DYNAMODB, TABLE)


@pytest.fixture
def aws():
    """A fresh moto account per test."""
    with _moto_table() as stream_arn:
        yield stream_arn


@pytest.fixture
def bucket(aws):
    """The files' bucket, in the test's moto account (as the deploy makes it: private, encrypted)."""
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_public_access_block(Bucket=BUCKET, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True})
    s3.put_bucket_encryption(Bucket=BUCKET, ServerSideEncryptionConfiguration={
        "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
    return s3


@pytest.fixture
def client(aws):
    with Client(chat_app.app) as test_client:
        yield test_client


@pytest.fixture
def fanout(aws):
    return Fanout(aws)


# The same three for a whole module, for suites of hundreds of small tests that share
# one table (tests/test_security.py). A module uses these or the ones above, not both.

@pytest.fixture(scope="module")
def module_aws():
    with _moto_table() as stream_arn:
        yield stream_arn


@pytest.fixture(scope="module")
def module_client(module_aws):
    with Client(chat_app.app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def module_fanout(module_aws):
    return Fanout(module_aws)


@pytest.fixture
def management(monkeypatch):
    """API Gateway's management API as a stand-in whose posts take 20 ms, as on
    AWS (tests/test_delivery_scale.StandInManagementApi)."""
    from chalicelib.services import delivery
    from tests.test_delivery_scale import StandInManagementApi

    stand_in = StandInManagementApi()
    monkeypatch.setenv("CHAT_WEBSOCKET_ENDPOINT", "https://example.execute-api.us-east-1.amazonaws.com/api")
    monkeypatch.setattr(delivery, "_management_client", lambda endpoint, region: stand_in)
    return stand_in


@pytest.fixture
def fake_clock(monkeypatch):
    """A clock that moves only when paced writes sleep (storage.operations):
    the guard's per-partition window follows it too, so the pace is checked in
    its own seconds however fast or slow this machine runs. It starts past
    every write already in the window."""
    import time

    from chalicelib.storage import operations

    clock = {"now": time.monotonic() + 2.0}
    monkeypatch.setattr(operations, "_monotonic", lambda: clock["now"])
    monkeypatch.setattr(operations, "_sleep", lambda seconds: clock.__setitem__("now", clock["now"] + seconds))
    monkeypatch.setattr(aws_limits, "clock", lambda: clock["now"])
    return clock


@pytest.fixture
def customer_id():
    return str(uuid.uuid4())


@pytest.fixture
def customer(client, customer_id):
    return Caller(client, customer_id)


@pytest.fixture
def make_agent(client, customer_id):
    def make(permission=16, name=None, customer=None):
        agent_id = str(uuid.uuid4())
        return Caller(client, customer or customer_id, agent_id, name or f"agent-{agent_id[:4]}", permission)

    return make


@pytest.fixture
def trio(customer, make_agent, fanout):
    """Three agents in a group chat, its chatrooms written: (a, b, c, chat)."""
    from tests.helpers import create_chat

    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    fanout.drain()
    return a, b, c, chat


@pytest.fixture
def admin(make_agent):
    return make_agent(permission=32, name="admin")


@pytest.fixture
def other_customer(client):
    return Caller(client, str(uuid.uuid4()))


@pytest.fixture(params=["customer", "admin", "manager", "agent"])
def stranger(request, other_customer, make_agent):
    """Someone of another customer: its customer token or one of its agents."""
    if request.param == "customer":
        return other_customer
    permission = {"admin": 32, "manager": 64, "agent": 16}[request.param]
    return make_agent(permission=permission, customer=other_customer.customer_id)


# ---- how many responses were checked against their schema ----------------------------------

# ---- and, under CHAT_AUDIT_OPEN=1, what was read outside the repository (tests/audit_open.py) --

def pytest_configure(config):
    config._from_workers = {"schema_checked": 0, "audit_checked": 0, "audit_outside": [],
                            "aws_calls_checked": 0, "aws_calls_refused": 0}


def _tallies() -> dict:
    limits = aws_limits.tally()
    return {"schema_checked": schema_check.checked_count(), "audit_checked": audit_open.checked(),
            "audit_outside": audit_open.outside(), "aws_calls_checked": limits["checked"],
            "aws_calls_refused": limits["refused"]}


@pytest.hookimpl(optionalhook=True)  # an xdist hook: the suite also runs without xdist
def pytest_testnodedown(node, error):
    for key, value in getattr(node, "workeroutput", {}).get("tallies", {}).items():
        node.config._from_workers[key] += value


def pytest_sessionfinish(session):
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the tallies to the controller
        workeroutput["tallies"] = _tallies()
        return
    if audit_open.installed() and (audit_open.outside() or session.config._from_workers["audit_outside"]):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config):
    totals = {key: value + config._from_workers[key] for key, value in _tallies().items()}
    terminalreporter.write_line(
        f"aws_limits: {totals['aws_calls_checked']} AWS calls checked against AWS's quotas, "
        f"{totals['aws_calls_refused']} refused as AWS would")
    if totals["schema_checked"]:
        terminalreporter.write_line(
            f"schema_check: {totals['schema_checked']} responses checked against tests/schemas/")
    if audit_open.installed():
        outside = list(dict.fromkeys(totals["audit_outside"]))
        terminalreporter.write_line(f"audit_open: {totals['audit_checked']} opens and listings checked, "
                                    f"{len(outside)} outside the repository")
        for line in outside[:50]:
            terminalreporter.write_line(f"audit_open: refused {line}")
