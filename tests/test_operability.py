"""Operating it (README): the request id on every answer and log line, the
code's metrics in CloudWatch's embedded format, one retry layer inside a time
budget (a hung DynamoDB answers our 503 well before API Gateway's 29 s), and
`make redrive` replaying a record the stream gave up, from its kept images."""

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest

import app as chat_app
from chalicelib import metrics, storage
from chalicelib.api.application import REQUEST_ID_HEADER
from chalicelib.services import fanout as fanout_service
from chalicelib.storage import clients, failures, operations
from devtools.streams import streams_client
from infra import redrive
from infra.build_template import STAGES
from tests.conftest import REGION, Caller, Client
from tests.helpers import chatroommessages_of, create_chat, insert_of, room_of, send_chatmessage

# ---- a stand-in DynamoDB on loopback ------------------------------------------------


@contextlib.contextmanager
def dynamodb_at(endpoint, monkeypatch):
    """Every model pointed at `endpoint` (no moto: the requests really leave), then back."""
    monkeypatch.setenv("CHAT_DYNAMODB_ENDPOINT", endpoint)
    storage.configure()
    try:
        yield
    finally:
        monkeypatch.delenv("CHAT_DYNAMODB_ENDPOINT")
        storage.configure()


@contextlib.contextmanager
def hung_endpoint():
    """Accepts connections (the kernel's backlog does) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


@contextlib.contextmanager
def throttling_endpoint():
    """Answers every request as DynamoDB does when it throttles; counts them."""
    seen = []

    class Throttle(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            seen.append(self.headers.get("X-Amz-Target"))
            body = json.dumps({"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                               "message": "Rate of requests exceeds the allowed throughput."}).encode()
            self.send_response(400)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Throttle)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def offline_client():
    """The API without moto (the storage is whatever endpoint the test points it at)."""
    with Client(chat_app.app) as test_client:
        yield test_client


def test_a_hung_dynamodb_answers_our_503_within_10_seconds(offline_client, monkeypatch):
    customer = Caller(offline_client, str(uuid.uuid4()))
    with hung_endpoint() as endpoint, dynamodb_at(endpoint, monkeypatch):
        started = time.monotonic()
        response = customer.get(f"/v1.0/chats/{uuid.uuid4()}")
        elapsed = time.monotonic() - started
    assert response.status_code == 503, response.body
    assert set(response.json_body) == {"Code", "Message"}
    assert response.headers[REQUEST_ID_HEADER]
    # two attempts of one read timeout each fit in the budget; a third would not
    assert 2 * clients.READ_TIMEOUT_SECONDS <= elapsed < 10, elapsed


def test_throttling_is_retried_by_one_layer_only_with_jittered_waits(offline_client, monkeypatch):
    """botocore sends each attempt once (its retries are off); ours retries up
    to ATTEMPTS times, each wait a random part of its ceiling."""
    sleeps = []
    monkeypatch.setattr(operations.time, "sleep", sleeps.append)
    customer = Caller(offline_client, str(uuid.uuid4()))
    with throttling_endpoint() as (endpoint, seen), dynamodb_at(endpoint, monkeypatch):
        response = customer.get(f"/v1.0/chats/{uuid.uuid4()}")
    assert response.status_code == 503, response.body
    assert seen == ["DynamoDB_20120810.GetItem"] * operations.ATTEMPTS
    assert len(sleeps) == operations.ATTEMPTS - 1
    ceilings = [min(clients.FIRST_DELAY_SECONDS * 2 ** n, clients.MAX_DELAY_SECONDS) for n in range(len(sleeps))]
    assert all(0 <= wait <= ceiling for wait, ceiling in zip(sleeps, ceilings, strict=True))
    assert len(set(sleeps)) > 1, "jittered, not fixed"


def test_no_retry_past_the_budget():
    started = clients.now() - (clients.RETRY_BUDGET_SECONDS - clients.READ_TIMEOUT_SECONDS + 0.01)
    assert clients.next_delay(1, started) is None
    assert clients.next_delay(1, clients.now()) is not None


# ---- the request id ---------------------------------------------------------------


def test_every_answer_carries_the_request_id_errors_included(client, customer):
    found = customer.get(f"/v1.0/chats/{uuid.uuid4()}")
    assert found.status_code == 404 and set(found.json_body) == {"Code", "Message"}
    listed = customer.get("/v1.0/chats")
    refused = client.http.get("/v1.0/chats")  # no token
    assert refused.status_code == 401 and set(refused.json_body) == {"Code", "Message"}
    ids = [response.headers[REQUEST_ID_HEADER] for response in (found, listed, refused)]
    assert all(ids) and len(set(ids)) == 3


def test_the_request_id_is_api_gateways(aws):
    event = {"requestContext": {"requestId": "c6af9ac6-7b61-11e6-9a41-93e8deadbeef", "httpMethod": "GET",
                                "resourcePath": "/v1.0/chats", "path": "/api/v1.0/chats"},
             "path": "/v1.0/chats", "resource": "/v1.0/chats", "httpMethod": "GET", "headers": {},
             "multiValueQueryStringParameters": None, "pathParameters": None, "stageVariables": None,
             "body": None, "isBase64Encoded": False}
    response = chat_app.app(event, None)
    assert response["statusCode"] == 401
    assert response["headers"][REQUEST_ID_HEADER] == "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"


def test_log_lines_carry_the_request_id_customer_and_route(offline_client, monkeypatch, caplog):
    monkeypatch.setattr(operations.time, "sleep", lambda seconds: None)
    customer = Caller(offline_client, str(uuid.uuid4()))
    with throttling_endpoint() as (endpoint, _), dynamodb_at(endpoint, monkeypatch):
        with caplog.at_level(logging.WARNING):
            response = customer.get(f"/v1.0/chats/{uuid.uuid4()}")
    assert response.status_code == 503
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert lines
    for record in lines:
        assert record.request_id == response.headers[REQUEST_ID_HEADER]
        assert record.customer_id == customer.customer_id
        assert record.route == "GET /v1.0/chats/{chat_id}"


# ---- the code's metrics (EMF) ------------------------------------------------------------


def emf_lines(text):
    documents = [json.loads(line) for line in text.splitlines() if line.startswith('{"_aws"')]
    for document in documents:  # the format CloudWatch Logs reads
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == metrics.NAMESPACE
        for dimensions in directive["Dimensions"]:
            assert all(name in document for name in dimensions)
        for metric in directive["Metrics"]:
            assert metric["Name"] in document and metric["Unit"] in ("Count", "Milliseconds")
    return documents


def test_messages_copies_and_fanout_lag_are_written_once_per_invocation(customer, make_agent, fanout, capsys,
                                                                          monkeypatch):
    monkeypatch.setenv("CHAT_METRICS", "stdout")
    agents = [make_agent() for _ in range(3)]
    chat = create_chat(customer, *agents)
    fanout.drain()
    capsys.readouterr()

    send_chatmessage(customer, chat)
    (sent,) = emf_lines(capsys.readouterr().out)
    assert sent["MessagesSent"] == 1 and sent["Stage"] == "local"

    fanout.drain()
    (batch,) = emf_lines(capsys.readouterr().out)
    assert batch["CopiesWritten"] == 3
    (lag,) = batch["FanoutLag"]
    assert 0 <= lag < 60_000

    event = fanout.read_event()  # nothing new: a replay of nothing writes no line
    assert event["Records"] == [] and emf_lines(capsys.readouterr().out) == []


def test_metrics_stay_silent_off_lambda(customer, make_agent, fanout, capsys):
    chat = create_chat(customer, make_agent(), make_agent())
    send_chatmessage(customer, chat)
    fanout.drain()
    assert emf_lines(capsys.readouterr().out) == []


# ---- make redrive ------------------------------------------------------------------------


def lambda_failure_message(stream_arn, first, last):
    """What Lambda sends a DynamoDB stream mapping's on-failure queue: pointers only."""
    return {
        "requestContext": {"requestId": str(uuid.uuid4()), "condition": "RetryAttemptsExhausted",
                           "approximateInvokeCount": 6},
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": None},
        "version": "1.0", "timestamp": "2026-12-01T03:00:00.000Z",
        "DDBStreamBatchInfo": {"shardId": "shardId-00000001", "startSequenceNumber": first,
                               "endSequenceNumber": last, "batchSize": 1, "streamArn": stream_arn},
    }


def the_send(fanout, message) -> dict:
    """A Lambda event of the message's own record (a send also writes its send
    limits' window, services/limits.py, a record the handler passes over)."""
    return {"Records": [insert_of(fanout.read_event(), message)]}


def test_a_record_given_up_then_fixed_is_redriven_and_copied_once(aws, bucket, customer, make_agent, fanout,
                                                                  monkeypatch):
    agents = [make_agent() for _ in range(3)]
    chat = create_chat(customer, *agents)
    fanout.drain()
    message = send_chatmessage(customer, chat)

    def poisoned(item):
        raise RuntimeError("a bug in the fan-out")

    monkeypatch.setattr(fanout_service, "copy_message", poisoned)
    event = the_send(fanout, message)
    sequence = event["Records"][0]["dynamodb"]["SequenceNumber"]
    for _ in range(3):  # Lambda retries, then gives up
        assert fanout.invoke(event) == {"batchItemFailures": [{"itemIdentifier": sequence}]}
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName=STAGES["dev"].failure_queue_name)["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(lambda_failure_message(aws, sequence, sequence)))
    assert [failures.load(key)["sequenceNumber"] for key in failures.in_range(sequence, sequence)] == [sequence]
    for agent in agents:
        assert chatroommessages_of(agent, room_of(customer, chat, agent)) == []

    monkeypatch.undo()  # fixed
    summary = redrive.redrive(sqs, queue)
    assert summary.replayed == [sequence] and summary.failed == [] and summary.messages_deleted == 1
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []
    assert failures.in_range(sequence, sequence) == []  # the kept images go with their message

    assert redrive.redrive(sqs, queue).replayed == []  # nothing left to replay
    assert fanout.invoke(event) == {"batchItemFailures": []}  # nor does the stream's own retry copy twice
    for agent in agents:
        copies = chatroommessages_of(agent, room_of(customer, chat, agent))
        assert [c["messagechat_id"] for c in copies] == [message["id"]]


def test_a_record_that_fails_again_stays_in_the_queue(aws, bucket, customer, make_agent, fanout, monkeypatch,
                                                      caplog):
    chat = create_chat(customer, make_agent(), make_agent())
    fanout.drain()
    message = send_chatmessage(customer, chat)
    monkeypatch.setattr(fanout_service, "copy_message", lambda item: 1 / 0)
    event = the_send(fanout, message)
    sequence = event["Records"][0]["dynamodb"]["SequenceNumber"]
    with caplog.at_level(logging.ERROR):
        fanout.invoke(event)
    (failure,) = [r for r in caplog.records if sequence in r.getMessage()]
    assert failure.route == "stream"  # the stream function's log lines say so
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName=STAGES["dev"].failure_queue_name)["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(lambda_failure_message(aws, sequence, sequence)))
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(lambda_failure_message(aws, "1", "2")))  # none kept

    summary = redrive.redrive(sqs, queue, streams_client(REGION, None))

    assert summary.failed == [sequence] and summary.messages_deleted == 0
    assert [b["startSequenceNumber"] for b in summary.without_images] == ["1"]
    assert len(sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]) == 2  # visible again
    assert failures.in_range(sequence, sequence)  # still kept


def test_make_redrive_runs_with_the_stages_environment(aws, bucket, customer, make_agent, fanout, monkeypatch,
                                                       tmp_path, capsys):
    """`make redrive STAGE=dev`: the stage's environment from .chalice/config.json
    (here naming this test's table and bucket), the stage's queue by name."""
    agents = [make_agent(), make_agent()]
    chat = create_chat(customer, *agents)
    fanout.drain()
    message = send_chatmessage(customer, chat)
    with monkeypatch.context() as poisoned:
        poisoned.setattr(fanout_service, "copy_message", lambda item: 1 / 0)
        event = the_send(fanout, message)
        sequence = event["Records"][0]["dynamodb"]["SequenceNumber"]
        fanout.invoke(event)
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName=STAGES["dev"].failure_queue_name)["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(lambda_failure_message(aws, sequence, sequence)))
    environment = {name: value for name, value in os.environ.items()
                   if name in ("CHAT_TABLE_NAME", "CHAT_FILES_BUCKET", "CHAT_REGION")}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)  # restored after the test, whatever main() sets
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps(
        {"stages": {"dev": {"environment_variables": environment}, "prod": {"environment_variables": {}}}}))

    assert redrive.main(["--stage", "prod", "--project-dir", str(tmp_path)]) == 1  # never deployed: no bucket
    assert redrive.main(["--stage", "dev", "--project-dir", str(tmp_path)]) == 0
    assert "1 records replayed, 1 messages done" in capsys.readouterr().out
    for agent in agents:
        copies = chatroommessages_of(agent, room_of(customer, chat, agent))
        assert [c["messagechat_id"] for c in copies] == [message["id"]]
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []


def test_a_record_never_kept_is_replayed_from_the_stream_within_its_24_hours(aws, bucket, customer, make_agent,
                                                                            fanout):
    """The function timed out (nothing kept): the message's pointers are
    followed into the stream while it still has the records."""
    agents = [make_agent(), make_agent()]
    chat = create_chat(customer, *agents)
    fanout.drain()
    message = send_chatmessage(customer, chat)
    streams = streams_client(REGION, None)
    (shard,) = streams.describe_stream(StreamArn=aws)["StreamDescription"]["Shards"]
    sequence = the_send(fanout, message)["Records"][0]["dynamodb"]["SequenceNumber"]  # never handled
    failure = lambda_failure_message(aws, sequence, sequence)
    failure["DDBStreamBatchInfo"]["shardId"] = shard["ShardId"]
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName=STAGES["dev"].failure_queue_name)["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps(failure))

    summary = redrive.redrive(sqs, queue, streams)

    assert summary.replayed == [sequence] and summary.messages_deleted == 1 and summary.without_images == []
    for agent in agents:
        copies = chatroommessages_of(agent, room_of(customer, chat, agent))
        assert [c["messagechat_id"] for c in copies] == [message["id"]]
