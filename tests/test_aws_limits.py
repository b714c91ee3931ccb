"""AWS's quotas: the guard every test runs under (devtools/aws_limits.py)
refuses what AWS refuses, and the service stays inside them at the
contract's own extremes (the largest body, a page of the largest messages)."""

import json
import time
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from chalicelib.api.inputs import MAX_BODY_BYTES
from chalicelib.schemas import render
from chalicelib.stream.handler import stream_filters
from devtools import aws_limits
from tests.conftest import DYNAMODB, REGION, TABLE
from tests.helpers import create_chat, ok, room_of

HANGUL = "한"  # 3 bytes in UTF-8, 6 as a JSON \u escape


def _refused(code, call):
    with pytest.raises(ClientError) as refused:
        call()
    assert refused.value.response["Error"]["Code"] == code, refused.value.response
    return refused.value.response["Error"]["Message"]


def _item(pk, **attributes):
    return {"pk": {"S": pk}, "sk": {"S": "#"}, **{k: {"S": v} for k, v in attributes.items()}}


# ---- the guard refuses what AWS refuses -----------------------------------------------------

def test_put_events_is_refused_past_10_entries_or_256_kib_by_aws_entry_size(aws):
    events = boto3.client("events", region_name=REGION)
    entry = {"Source": "voipbin.chat", "DetailType": "t", "Detail": json.dumps({"x": 1}), "EventBusName": "default"}
    assert events.put_events(Entries=[entry] * 10)["FailedEntryCount"] == 0
    _refused("ValidationException", lambda: events.put_events(Entries=[entry] * 11))
    # 256 KiB counts Source + DetailType + Detail (UTF-8): two entries of 130 KiB of Hangul are over
    big = dict(entry, Detail=json.dumps({"text": HANGUL * (130 * 1024 // 3)}, ensure_ascii=False))
    assert aws_limits.put_events_entry_size(big) < aws_limits.PUT_EVENTS_BYTES_MAX
    events.put_events(Entries=[big])
    message = _refused("ValidationException", lambda: events.put_events(Entries=[big, big]))
    assert "Total size of the entries in the request is over the limit" in message


def test_post_to_connection_is_refused_past_128_kib():
    api = boto3.client("apigatewaymanagementapi", region_name=REGION, endpoint_url="http://127.0.0.1:9")
    _refused("PayloadTooLargeException",
             lambda: api.post_to_connection(ConnectionId="c", Data=b"x" * (128 * 1024 + 1)))


def test_an_item_past_400_kb_is_refused_put_or_grown_by_an_update_alone_or_in_a_transaction(aws):
    _refused("ValidationException", lambda: DYNAMODB.put_item(TableName=TABLE, Item=_item("big", a="x" * 410_000)))
    DYNAMODB.put_item(TableName=TABLE, Item=_item("grows", a="x" * 300_000))
    stream = boto3.client("dynamodbstreams", region_name=REGION,
                          endpoint_url=f"https://streams.dynamodb.{REGION}.amazonaws.com")
    shard = stream.describe_stream(StreamArn=aws)["StreamDescription"]["Shards"][0]["ShardId"]
    records = len(stream.get_records(ShardIterator=stream.get_shard_iterator(
        StreamArn=aws, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"])["Records"])
    update = {"TableName": TABLE, "Key": {"pk": {"S": "grows"}, "sk": {"S": "#"}},
              "UpdateExpression": "SET b = :b", "ExpressionAttributeValues": {":b": {"S": "y" * 150_000}}}
    _refused("ValidationException", lambda: DYNAMODB.update_item(**update))
    _refused("TransactionCanceledException", lambda: DYNAMODB.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": _item("other", a="z")}}, {"Update": update}]))
    # nothing of either happened: the item as it was, no other item, no stream record
    item = DYNAMODB.get_item(TableName=TABLE, Key={"pk": {"S": "grows"}, "sk": {"S": "#"}})["Item"]
    assert set(item) == {"pk", "sk", "a"}
    assert "Item" not in DYNAMODB.get_item(TableName=TABLE, Key={"pk": {"S": "other"}, "sk": {"S": "#"}})
    assert len(stream.get_records(ShardIterator=stream.get_shard_iterator(
        StreamArn=aws, ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"])["Records"]) == records


def test_batches_and_transactions_are_refused_past_their_counts_and_4_mb(aws):
    puts = [{"PutRequest": {"Item": _item(f"p{i}")}} for i in range(26)]
    _refused("ValidationException", lambda: DYNAMODB.batch_write_item(RequestItems={TABLE: puts}))
    keys = [{"pk": {"S": f"p{i}"}, "sk": {"S": "#"}} for i in range(101)]
    _refused("ValidationException", lambda: DYNAMODB.batch_get_item(RequestItems={TABLE: {"Keys": keys}}))
    actions = [{"Put": {"TableName": TABLE, "Item": _item(f"t{i}")}} for i in range(101)]
    _refused("ValidationException", lambda: DYNAMODB.transact_write_items(TransactItems=actions))
    large = [{"Put": {"TableName": TABLE, "Item": _item(f"l{i}", a="x" * 390_000)}} for i in range(11)]
    assert "4 MB" in _refused("ValidationException", lambda: DYNAMODB.transact_write_items(TransactItems=large))


def test_a_query_answers_at_most_1_mb_a_page_as_dynamodb_does(aws):
    """moto pages Query at 1 MB itself (its RESULT_SIZE_LIMIT), as DynamoDB does:
    the guard needs no check of its own, and the service's lists meet it."""
    for i in range(12):
        if i == 6:
            time.sleep(1.05)  # 1.2 MB in one partition: more than the write units it serves in one second
        DYNAMODB.put_item(TableName=TABLE, Item={"pk": {"S": "one"}, "sk": {"S": f"{i:02}"}, "a": {"S": "x" * 100_000}})
    pages, start = [], {}
    while True:
        page = DYNAMODB.query(TableName=TABLE, KeyConditionExpression="pk = :p",
                              ExpressionAttributeValues={":p": {"S": "one"}}, **start)
        assert sum(aws_limits.item_size(item) for item in page["Items"]) <= 1024 * 1024
        pages.append([item["sk"]["S"] for item in page["Items"]])
        if "LastEvaluatedKey" not in page:
            break
        start = {"ExclusiveStartKey": page["LastEvaluatedKey"]}
    assert len(pages) == 2 and sum(pages, []) == [f"{i:02}" for i in range(12)]


def test_one_partition_is_refused_past_1000_write_units_a_second(aws):
    puts = [[{"PutRequest": {"Item": {"pk": {"S": "hot"}, "sk": {"S": f"{b}-{i}"}}}} for i in range(25)]
            for b in range(41)]
    guard = aws_limits.PartitionWrites()
    units = [aws_limits._partition_writes("BatchWriteItem", {"RequestItems": {TABLE: batch}}, lambda t: "pk")
             for batch in puts]
    for batch_units in units[:40]:  # 1,000 units within the second: served
        guard.take("BatchWriteItem", batch_units, now=100.0)
    _refused("ProvisionedThroughputExceededException", lambda: guard.take("BatchWriteItem", units[40], now=100.5))
    guard.take("BatchWriteItem", units[40], now=101.0)  # a second later: served again


def test_s3_is_refused_past_1000_keys_a_delete_and_part_number_10000(bucket):
    from tests.conftest import BUCKET

    keys = [{"Key": f"k{i}"} for i in range(1001)]
    _refused("MalformedXML", lambda: bucket.delete_objects(Bucket=BUCKET, Delete={"Objects": keys}))
    bucket.delete_objects(Bucket=BUCKET, Delete={"Objects": keys[:1000]})  # 1,000: served
    upload = bucket.create_multipart_upload(Bucket=BUCKET, Key="archive")["UploadId"]
    for number in (0, 10_001):
        _refused("InvalidArgument", lambda number=number: bucket.upload_part(
            Bucket=BUCKET, Key="archive", UploadId=upload, PartNumber=number, Body=b"x"))
    bucket.upload_part(Bucket=BUCKET, Key="archive", UploadId=upload, PartNumber=10_000, Body=b"x")


def test_a_stream_mappings_filters_are_refused_past_5_or_a_pattern_past_4096_characters():
    """The stage's own filters (chalicelib/stream/handler.stream_filters) are checked
    last; test_deploy_cycle.py finds exactly them on the mapping make deploy set (in a
    process of its own, which the guard does not see)."""
    def update(filters):
        aws_limits.check_request("lambda", "UpdateEventSourceMapping",
                                 {"UUID": "x", "FilterCriteria": {"Filters": filters}})

    pattern = {"Pattern": '{"eventName":["INSERT"]}'}
    update([pattern] * 5)  # 5: served
    _refused("InvalidParameterValueException", lambda: update([pattern] * 6))
    long = '{"dynamodb":{"Keys":{"pk":{"S":["' + "x" * 4096 + '"]}}}}'
    _refused("ValidationException", lambda: update([{"Pattern": long}]))
    update(stream_filters())


def test_lambda_answers_are_measured_as_api_gateways_proxy_wraps_them():
    body = json.dumps({"text": "\"quoted\""}).encode()
    wrapped = aws_limits.lambda_answer_size(200, {"Content-Type": "application/json"}, body)
    assert wrapped > len(body) + 2 * body.count(b'"')  # every quote escaped once more, and the envelope


# ---- the service at the contract's extremes ---------------------------------------------------

def _largest_body(chat_id):
    """A chatmessage body just under 256 KiB: 10,000 Hangul characters, and agent
    cards whose addresses (Hangul too) fill the rest."""
    address = {"type": "tel", "target": "+82" + "1" * 20, "target_name": HANGUL * 255, "name": HANGUL * 255,
               "detail": HANGUL * 2000}
    medias = [{"type": "agent", "agent": {"id": str(uuid.uuid4()), "name": HANGUL * 255, "addresses": []}}
              for _ in range(10)]
    body = {"chat_id": chat_id, "type": "normal", "text": HANGUL * 10_000, "medias": medias}
    while True:
        for media in medias:
            media["agent"]["addresses"].append(address)
            if len(json.dumps(body, ensure_ascii=False).encode()) > MAX_BODY_BYTES:
                media["agent"]["addresses"].pop()
                return body


def test_the_largest_body_the_api_accepts_is_sent_copied_and_read_within_every_limit(customer, make_agent, fanout):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    body = _largest_body(chat["id"])
    raw = json.dumps(body, ensure_ascii=False).encode()
    assert MAX_BODY_BYTES - 3_000 < len(raw) <= MAX_BODY_BYTES
    sent = ok(a.post("/v1.0/chatmessages", raw=raw))
    fanout.drain()
    assert ok(b.get(f"/v1.0/chatmessages/{sent['id']}"))["text"] == HANGUL * 10_000
    [copy] = ok(b.get(f"/v1.0/chatroommessages?chatroom_id={room_of(b, chat)['id']}"))["result"]
    assert copy["medias"] == sent["medias"]
    over = json.dumps({**body, "text": HANGUL * 10_000 + "x"}, ensure_ascii=False).encode() + b" " * 3_000
    assert a.post("/v1.0/chatmessages", raw=over).status_code in (400, 413)


def test_a_page_of_the_largest_messages_ends_early_under_lambdas_6_mb_and_pages_through_all(customer, make_agent,
                                                                                              fanout):
    a, b = make_agent(), make_agent()
    chat = create_chat(customer, a, b)
    raw = json.dumps(_largest_body(chat["id"]), ensure_ascii=False).encode()
    sent = [ok(a.post("/v1.0/chatmessages", raw=raw))["id"] for _ in range(12)]
    fanout.drain()
    for path in (f"/v1.0/chatmessages?chat_id={chat['id']}",
                 f"/v1.0/chatroommessages?chatroom_id={room_of(b, chat)['id']}"):
        seen, token, pages = [], "", 0
        while True:
            page = ok(b.get(path + (f"&page_token={token}" if token else "")))
            shown = [render.answer_bytes(item) for item in page["result"]]
            assert sum(shown) <= render.ANSWER_BUDGET  # the test client checked the answer against 6 MB too
            seen += [item.get("messagechat_id", item["id"]) for item in page["result"]]
            pages += 1
            token = page["next_page_token"]
            if not token:
                break
        assert seen == sent[::-1] and pages > 1  # every message once, newest first, over several pages
