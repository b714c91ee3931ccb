"""The local stream poller honours partial batch responses as Lambda does,
and delivers records of different items in concurrent lanes (Lambda's
ParallelizationFactor) without reordering the records of one item."""

import logging
import random
import threading
import time

import pytest

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


@pytest.mark.parametrize("lanes", [1, 4])
def test_failed_records_are_retried_and_none_is_skipped(aws, customer, make_agent, lanes):
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

    poller = make_poller(aws, flaky, batch_size=4, lanes=lanes)
    drain(poller)
    assert len(failed_once) == 2
    assert failed_once <= set(succeeded), "a failed record was never retried"
    for agent in agents:
        assert copies_of(agent) == sorted(ids)


@pytest.mark.parametrize("lanes", [1, 4])
def test_a_record_that_always_fails_is_given_up_and_later_ones_still_arrive(aws, customer, make_agent, lanes):
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

    poller = make_poller(aws, poisoned, max_attempts=3, lanes=lanes)
    drain(poller)
    assert attempts == 3
    customer.post("/v1.0/chatmessages", {"chat_id": agents[0].get("/v1.0/chatrooms").json_body["result"][0]["chat_id"],
                                         "text": "after"})
    drain(poller)
    for agent in agents:
        texts = copies_of(agent)
        assert ids[0] in texts and ids[1] in texts and ids[2] not in texts
        assert len(texts) == 3  # two before the poison, one after


# ---- lanes, with records made up (only what the poller reads of them) -----------------------

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/chat/stream/2024-01-01T00:00:00.000"
SHARD = "shardId-0001"
DEADLINE = 10.0  # seconds, for anything a test waits for


class MadeUpStream:
    """A shard whose records the test adds as it goes."""

    def __init__(self, *records):
        self._records = list(records)
        self._lock = threading.Lock()

    def add(self, *records):
        with self._lock:
            self._records += records

    def read(self, limit=100):
        with self._lock:
            taken, self._records = self._records[:limit], self._records[limit:]
        return [(SHARD, record) for record in taken]


def record(sequence: int, key: str) -> dict:
    return {"eventID": f"e{sequence}", "eventName": "INSERT",
            "dynamodb": {"SequenceNumber": f"{sequence:021d}", "Keys": {"pk": {"S": key}, "sk": {"S": "#"}},
                         "NewImage": {"pk": {"S": key}, "sk": {"S": "#"}}}}


def number(lambda_record) -> int:
    return int(lambda_record["dynamodb"]["SequenceNumber"])


def key_of(lambda_record) -> str:
    return lambda_record["dynamodb"]["Keys"]["pk"]["S"]


class Checkpoints(list):
    """What on_handled heard: (shard, sequence number as an int)."""

    def __call__(self, shard_id, sequence_number):
        self.append((shard_id, int(sequence_number)))

    @property
    def last(self):
        return self[-1][1] if self else None


def until(check, what):
    deadline = time.monotonic() + DEADLINE
    while not check():
        assert time.monotonic() < deadline, f"waited {DEADLINE} s for {what}"
        time.sleep(0.01)


def test_a_slow_batch_holds_back_only_its_own_items_records(caplog):
    """A 1,000-copy fan-out (here: a handler blocked on one key) in one lane; the
    records of other items that arrive meanwhile are delivered by the other lanes,
    a later record of the same item waits for it, and the checkpoint stays before it."""
    stream = MadeUpStream(record(1, "big"))
    release, blocked = threading.Event(), threading.Event()
    delivered, lock = [], threading.Lock()

    def handler(event, context):
        for item in event["Records"]:
            if key_of(item) == "big" and number(item) == 1:
                blocked.set()
                assert release.wait(DEADLINE), "never released"
            with lock:
                delivered.append(number(item))
        return {"batchItemFailures": []}

    checkpoints = Checkpoints()
    poller = StreamPoller(stream, handler, ARN, REGION, lanes=4, idle_seconds=0.01, on_handled=checkpoints)
    poller.start()
    try:
        until(blocked.is_set, "the slow batch to start")
        stream.add(record(2, "chat a"), record(3, "chat b"), record(4, "big"), record(5, "chat c"))
        until(lambda: {2, 3, 5} <= set(delivered), "the other chats' records")
        time.sleep(0.2)  # and the same item's later record still waits
        assert 4 not in delivered and 1 not in delivered
        assert checkpoints == [], "a checkpoint passed a record not yet handled"
        release.set()
        until(lambda: checkpoints.last == 5, "every record to be handled")
    finally:
        release.set()
        assert poller.stop(timeout=DEADLINE)
    assert delivered.index(1) < delivered.index(4)
    assert sorted(delivered) == [1, 2, 3, 4, 5] and poller.delivered == 5


def test_records_of_one_item_keep_their_order_and_are_never_in_two_lanes_at_once():
    rng = random.Random(11)
    keys = [f"item {k}" for k in range(7)]
    records = [record(n, rng.choice(keys)) for n in range(1, 301)]
    stream = MadeUpStream(*records)
    in_flight, delivered, overlaps, lock = set(), [], [], threading.Lock()

    def handler(event, context):
        mine = {key_of(item) for item in event["Records"]}
        with lock:
            overlaps.extend(mine & in_flight)
            in_flight.update(mine)
        time.sleep(rng.random() * 0.003)
        with lock:
            in_flight.difference_update(mine)
            delivered.extend((key_of(item), number(item)) for item in event["Records"])
        return {"batchItemFailures": []}

    checkpoints = Checkpoints()
    poller = StreamPoller(stream, handler, ARN, REGION, lanes=4, batch_size=5, idle_seconds=0.005,
                          on_handled=checkpoints)
    poller.start()
    try:
        until(lambda: checkpoints.last == 300, "every record")
    finally:
        assert poller.stop(timeout=DEADLINE)
    assert not overlaps, f"items delivered in two lanes at once: {sorted(set(overlaps))}"
    assert sorted(n for _, n in delivered) == list(range(1, 301)), "a record lost or delivered twice"
    for key in keys:
        numbers = [n for k, n in delivered if k == key]
        assert numbers == sorted(numbers), f"{key} out of order"
    reported = [n for _, n in checkpoints]
    assert reported == sorted(reported), "the checkpoint went back"
    assert len({k for k, _ in delivered[:40]}) > 1


def test_the_checkpoint_is_the_longest_prefix_of_records_all_done():
    stream = MadeUpStream(record(1, "a"), record(2, "b"), record(3, "c"), record(4, "d"))
    failed_once = []

    def handler(event, context):
        if 1 in map(number, event["Records"]) and not failed_once:
            failed_once.append(1)
            return {"batchItemFailures": [{"itemIdentifier": f"{1:021d}"}]}
        return {"batchItemFailures": []}

    checkpoints = Checkpoints()
    poller = StreamPoller(stream, handler, ARN, REGION, lanes=2, batch_size=2, on_handled=checkpoints)
    assert poller.poll_once()  # lane 0: [1, 2], 1 fails; lane 1: [3, 4] done
    assert checkpoints == [] and poller.delivered == 2
    assert poller.poll_once()  # lane 0 again: [1, 2] done, so 1 to 4 are
    assert checkpoints == [(SHARD, 4)] and poller.delivered == 4
    assert not poller.poll_once()


def test_failures_are_retried_in_their_lane_while_the_others_go_on(caplog):
    """Lane 0 retries its batch from the failed record (later ones included) and
    gives it up after max_attempts; lane 1 meanwhile delivers what is not behind it.
    The failing item's next record waits until it is given up."""
    caplog.set_level(logging.ERROR, logger="devtools.poller")
    stream = MadeUpStream(record(1, "poison"), record(2, "y"), record(3, "z"), record(4, "poison"), record(5, "w"))
    deliveries = []

    def handler(event, context):
        numbers = [number(item) for item in event["Records"]]
        deliveries.append(numbers)
        return {"batchItemFailures": [{"itemIdentifier": f"{1:021d}"}] if 1 in numbers else []}

    checkpoints = Checkpoints()
    poller = StreamPoller(stream, handler, ARN, REGION, lanes=2, batch_size=2, max_attempts=3,
                          on_handled=checkpoints)
    polls = 0
    while poller.poll_once():
        polls += 1
        assert polls < 20
    # poll 1 reads 1-4: lane 0 gets [1, 2] (1 fails), lane 1 [3] (4 is the poison's item: behind it);
    # poll 2 reads 5: lane 0 retries, lane 1 gets [5]; poll 3: lane 0's third attempt gives 1 up, which
    # frees its item: lane 1 gets [4]; poll 4: lane 0 delivers the rest of its batch, [2].
    assert deliveries == [[1, 2], [3], [1, 2], [5], [1, 2], [4], [2]]
    assert [n for _, n in checkpoints] == [1, 5]  # 1 given up; then 2 (held in lane 0) kept 3-5 back
    assert poller.delivered == 5
    assert [r.getMessage() for r in caplog.records] == [f"giving up on stream record {1:021d} after 3 attempts"]


def test_the_reader_never_sleeps_while_records_wait_nor_after_a_batch_that_wrote_more():
    """make run's push latency: a backlog larger than a batch is read back to back, and the
    records a batch writes (a fan-out's copies) are read as soon as it is delivered, not
    after the idle wait (here 60 s: waiting it once would miss the deadline)."""
    stream = MadeUpStream(*[record(n, f"chat {n}") for n in range(1, 251)])
    delivered, lock = [], threading.Lock()

    def handler(event, context):
        for item in event["Records"]:
            with lock:
                delivered.append(number(item))
            if number(item) in (250, 1250):  # its copies, written by the handler
                stream.add(record(number(item) + 1000, f"copy of {number(item)}"))
        return {"batchItemFailures": []}

    poller = StreamPoller(stream, handler, ARN, REGION, batch_size=100, idle_seconds=60)
    poller.start()
    try:
        until(lambda: len(delivered) == 252, "the backlog, a copy and a copy's copy")
    finally:
        assert poller.stop(timeout=DEADLINE)
    assert sorted(delivered) == list(range(1, 251)) + [1250, 2250]


def test_records_the_filter_drops_are_never_delivered_and_still_checkpointed():
    """As Lambda's FilterCriteria: a dropped record starts no batch, and the
    shard's checkpoint moves past it (make run's journal replays nothing for it)."""
    stream = MadeUpStream(record(1, "a"), record(2, "dropped"), record(3, "b"), record(4, "dropped"))
    delivered = []

    def handler(event, context):
        delivered.extend(number(item) for item in event["Records"])
        return {"batchItemFailures": []}

    checkpoints = Checkpoints()
    poller = StreamPoller(stream, handler, ARN, REGION, batch_size=10, on_handled=checkpoints,
                          delivers=lambda item: item["dynamodb"]["Keys"]["pk"]["S"] != "dropped")
    drain(poller)
    assert delivered == [1, 3] and checkpoints.last == 4
    stream.add(record(5, "dropped"))
    drain(poller)
    assert delivered == [1, 3] and checkpoints.last == 5
