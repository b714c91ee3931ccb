"""One moto table, built the way production builds it, and helpers to call
the API as a customer or an agent and to run the stream fan-out."""

import os
import uuid

os.environ.update(
    CHAT_JWT_SECRET="test-secret-that-is-long-enough-for-hs256-0123456789",
    CHAT_TABLE_NAME="chat-test",
    CHAT_REGION="us-east-1",
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
)
os.environ.pop("CHAT_DYNAMODB_ENDPOINT", None)

import contextlib  # noqa: E402

import boto3  # noqa: E402
import chalice.test  # noqa: E402
import pytest  # noqa: E402
from chalice.test import Client  # noqa: E402
from moto import mock_aws  # noqa: E402

import app as chat_app  # noqa: E402
from chalicelib import auth, storage  # noqa: E402
from chalicelib.storage.table import create_table  # noqa: E402
from devtools import moto_patches  # noqa: E402
from devtools.streams import ShardReader, lambda_event, streams_client  # noqa: E402

# moto with DynamoDB's transaction semantics and atomic, thread-safe operations.
moto_patches.apply()


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
            import json

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


class Fanout:
    """Feeds the handler with the records moto's stream really produced."""

    def __init__(self, stream_arn):
        self.stream_arn = stream_arn
        self.reader = ShardReader(streams_client(REGION, None), stream_arn)
        self.handled = 0

    def read_event(self):
        records = [record for _, record in self.reader.read(limit=1000)]
        return lambda_event(records, self.stream_arn, REGION)

    def invoke(self, event):
        return chat_app.on_table_change(event, None)

    def drain(self, rounds=10):
        """Run the handler until the stream has nothing new (cascades write more records)."""
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
_dynamodb = boto3.client("dynamodb", region_name=REGION)
storage.configure()


@pytest.fixture
def aws():
    """A fresh moto account per test, with the table as production builds it."""
    with mock_aws():
        yield create_table(_dynamodb, TABLE)


@pytest.fixture
def client(aws):
    with Client(chat_app.app) as test_client:
        yield test_client


@pytest.fixture
def fanout(aws):
    return Fanout(aws)


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
