"""The local stream poller honours partial batch responses as Lambda does."""

import app as chat_app
from devtools.poller import StreamPoller
from devtools.streams import ShardReader, streams_client
from tests.conftest import REGION
from tests.helpers import create_chat, send_chatmessage


def make_poller(stream_arn, handler, **kwargs):
    reader = ShardReader(streams_client(REGION, None), stream_arn)
    return StreamPoller(reader, handler, stream_arn, REGION, idle_seconds=0, **kwargs)


def drain(poller, rounds=50):
    for _ in range(rounds):
        if not poller.poll_once():
            return
    raise AssertionError("stream never went quiet")


def send_messages(customer, make_agent, count):
    a, b, c = make_agent(), make_agent(), make_agent()
    chat = create_chat(customer, a, b, c)
    ids = [send_chatmessage(customer, chat, f"m{i}")["id"] for i in range(count)]
    return (a, b, c), ids


def copies_of(agent):
    room = agent.get("/v1.0/chatrooms").json_body["result"][0]
    page = agent.get(f"/v1.0/chatroommessages?chatroom_id={room['id']}").json_body
    return sorted(m["messagechat_id"] for m in page["result"])


def test_failed_records_are_retried_and_none_is_skipped(aws, customer, make_agent):
    agents, ids = send_messages(customer, make_agent, 6)
    failed_once, succeeded = set(), []

    def flaky(event, context):
        result = chat_app.on_table_change(event, context)
        failures = []
        for record in event["Records"]:
            sequence = record["dynamodb"]["SequenceNumber"]
            if record["eventName"] == "INSERT" and len(failed_once) < 2 and sequence not in failed_once:
                failed_once.add(sequence)  # report it failed once, even though it ran
                failures.append({"itemIdentifier": sequence})
            else:
                succeeded.append(sequence)
        return {"batchItemFailures": failures + result["batchItemFailures"]}

    poller = make_poller(aws, flaky, batch_size=4)
    drain(poller)
    assert len(failed_once) == 2
    assert failed_once <= set(succeeded), "a failed record was never retried"
    for agent in agents:
        assert copies_of(agent) == sorted(ids)


def test_a_record_that_always_fails_is_given_up_and_later_ones_still_arrive(aws, customer, make_agent):
    agents, ids = send_messages(customer, make_agent, 3)
    poison = None
    attempts = 0

    def poisoned(event, context):
        nonlocal poison, attempts
        inserts = [r for r in event["Records"] if r["eventName"] == "INSERT"]
        poison = poison or inserts[-1]["dynamodb"]["SequenceNumber"]  # the last message's record
        good = [r for r in event["Records"] if r["dynamodb"]["SequenceNumber"] != poison]
        result = chat_app.on_table_change({"Records": good}, context)
        if any(r["dynamodb"]["SequenceNumber"] == poison for r in event["Records"]):
            attempts += 1
            result["batchItemFailures"].append({"itemIdentifier": poison})
        return result

    poller = make_poller(aws, poisoned, max_attempts=3)
    drain(poller)
    assert attempts == 3
    customer.post("/v1.0/chatmessages", {"chat_id": agents[0].get("/v1.0/chatrooms").json_body["result"][0]["chat_id"],
                                         "text": "after"})
    drain(poller)
    for agent in agents:
        texts = copies_of(agent)
        assert ids[0] in texts and ids[1] in texts and ids[2] not in texts
        assert len(texts) == 3  # two before the poison, one after
