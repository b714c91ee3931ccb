"""A job (an export, an erasure) whose slice keeps failing (services/jobs.py):
each failure is counted on the job and shown by GET while Lambda hands the
record again; at SLICE_ATTEMPTS the job is `failed`, says why, and the record
is let go, so no job shows `running` after Lambda would have given up on it."""

import inspect

import botocore.client
from botocore.exceptions import ClientError

from chalicelib.services import jobs
from devtools.poller import StreamPoller
from infra.build_template import STAGES
from tests.helpers import accepted, create_chat, ok, send_chatmessage
from tests.test_erasure import DATA, confirmed
from tests.test_exports import EXPORTS, archive_lines
from tests.test_operability import emf_lines


def refusing(monkeypatch, operation: str, failing: int = 10 ** 6):
    """S3 refusing `operation` (AccessDenied) its first `failing` times, at botocore's
    call, so the error reaches the job as the storage layer wraps it; counts the calls."""
    real = botocore.client.BaseClient._make_api_call

    def call(client, operation_name, params):
        if operation_name == operation:
            call.calls += 1
            if call.calls <= call.failing:
                raise ClientError({"Error": {"Code": "AccessDenied", "Message": "Access Denied to my-bucket"}},
                                  operation_name)
        return real(client, operation_name, params)
    call.calls, call.failing = 0, failing
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", call)
    return call


def a_message_sent(customer, make_agent, fanout) -> None:
    alice, bob = make_agent(), make_agent()
    send_chatmessage(alice, create_chat(customer, alice, bob), "hello")
    fanout.drain()


def failing_event(fanout) -> dict:
    """Run the stream until a batch fails; that batch, as Lambda would hand it again."""
    for _ in range(100):
        event = fanout.read_event()
        assert event["Records"], "nothing failed"
        if fanout.invoke(event)["batchItemFailures"]:
            return event
    raise AssertionError("nothing failed")


def test_an_export_whose_step_keeps_failing_shows_it_then_fails_and_says_why(customer, make_agent, fanout,
                                                                            bucket, monkeypatch, capsys):
    a_message_sent(customer, make_agent, fanout)
    monkeypatch.setenv("CHAT_METRICS", "stdout")
    capsys.readouterr()
    put_part = refusing(monkeypatch, "UploadPart")
    started = accepted(customer.post(EXPORTS))
    event = failing_event(fanout)
    for attempt in range(2, jobs.SLICE_ATTEMPTS):  # Lambda hands the record again
        shown = ok(customer.get(f"{EXPORTS}/{started['id']}"))
        assert shown["status"] == "running"
        assert shown["error"] == "a step failed (UploadPart refused: AccessDenied); trying again"
        assert fanout.invoke(event)["batchItemFailures"], attempt
    assert fanout.invoke(event) == {"batchItemFailures": []}  # the last attempt fails the job, not the record
    fanout.drain()  # the job's own changes run no slice
    shown = ok(customer.get(f"{EXPORTS}/{started['id']}"))
    assert (shown["status"], shown["download_url"], shown["tm_done"]) == ("failed", None, "")
    assert shown["error"] == (f"a step failed {jobs.SLICE_ATTEMPTS} times (UploadPart refused: AccessDenied); "
                              "start another export")
    assert "my-bucket" not in shown["error"]  # S3's message is logged, not shown
    assert put_part.calls == jobs.SLICE_ATTEMPTS
    counted = emf_lines(capsys.readouterr().out)  # what the jobs-failed alarm watches
    assert sum(line.get("JobStepsFailed", 0) for line in counted) == jobs.SLICE_ATTEMPTS
    assert sum(line.get("JobsFailed", 0) for line in counted) == 1

    # Lambda's record handed once more (a redrive) finds the job failed: it stays so
    put_part.failing = 0
    assert fanout.invoke(event) == {"batchItemFailures": []}
    assert ok(customer.get(f"{EXPORTS}/{started['id']}"))["status"] == "failed"


def test_a_step_that_fails_and_then_succeeds_leaves_no_error(customer, make_agent, fanout, bucket, monkeypatch):
    a_message_sent(customer, make_agent, fanout)
    refusing(monkeypatch, "UploadPart", failing=2)
    started = accepted(customer.post(EXPORTS))
    event = failing_event(fanout)
    assert fanout.invoke(event)["batchItemFailures"]
    assert fanout.invoke(event) == {"batchItemFailures": []}
    fanout.drain()
    shown = ok(customer.get(f"{EXPORTS}/{started['id']}"))
    assert (shown["status"], shown["error"]) == ("done", "")
    assert archive_lines(bucket, customer.customer_id, shown)[0]["type"] == "export"


def test_an_erasure_whose_step_keeps_failing_fails_and_runs_again_when_asked(customer, make_agent, fanout,
                                                                            bucket, monkeypatch):
    a_message_sent(customer, make_agent, fanout)
    remove = refusing(monkeypatch, "ListObjectsV2")
    accepted(customer.delete(DATA, headers=confirmed(customer)))
    event = failing_event(fanout)  # the items are erased; the files' phase fails
    for _ in range(2, jobs.SLICE_ATTEMPTS + 1):
        assert ok(customer.get(DATA))["status"] == "running"
        fanout.invoke(event)
    fanout.drain()
    shown = ok(customer.get(DATA))
    assert (shown["status"], shown["phase"], shown["tm_done"]) == ("failed", "files", "")
    assert shown["items_deleted"] > 0
    assert shown["error"] == (f"a step failed {jobs.SLICE_ATTEMPTS} times (ListObjectsV2 refused: AccessDenied); "
                              "ask for it again (DELETE /customer/data) to run it again")

    remove.failing = 0
    again = accepted(customer.delete(DATA, headers=confirmed(customer)))
    assert (again["status"], again["error"]) == ("running", "")
    fanout.drain()
    done = ok(customer.get(DATA))
    assert (done["status"], done["error"]) == ("done", "")


def test_a_job_fails_before_lambda_or_the_local_poller_gives_up_on_its_record():
    for stage in STAGES.values():
        assert jobs.SLICE_ATTEMPTS <= 1 + stage.max_retry_attempts, stage.name
    local_attempts = inspect.signature(StreamPoller).parameters["max_attempts"].default
    assert jobs.SLICE_ATTEMPTS <= local_attempts
