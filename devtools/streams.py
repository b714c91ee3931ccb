"""Reading a table's DynamoDB stream and shaping the records as the event
Lambda delivers, so the local runner and the tests call the very handler
Lambda calls."""

import json
import time
import uuid
from datetime import datetime
from typing import Any

import boto3


def streams_client(region: str, endpoint_url: str | None):
    """botocore >= 1.40 sends Streams calls to an account-scoped host that
    moto does not route; an explicit endpoint keeps them where we want them."""
    return boto3.client(
        "dynamodbstreams",
        region_name=region,
        endpoint_url=endpoint_url or f"https://streams.dynamodb.{region}.amazonaws.com",
    )


class ShardReader:
    """Reads every shard of one stream from where it last stopped.

    `read()` returns new records in stream order; nothing is skipped or
    returned twice unless `rewind_to` asks for it (Lambda's retry).
    """

    SHARDS_SECONDS = 1.0  # how long the list of shards is taken as it is (new shards are rare)

    def __init__(self, client: Any, stream_arn: str, start: str = "TRIM_HORIZON"):
        self.client = client
        self.stream_arn = stream_arn
        self.start = start
        self._iterators: dict[str, str | None] = {}
        self._last_sequence: dict[str, str] = {}
        self._known: tuple[float, list[str]] = (float("-inf"), [])

    def _shards(self) -> list[str]:
        """The stream's shards: described again at most once a second (a poll
        every 50 ms would otherwise describe the stream 20 times a second)."""
        described, shards = self._known
        if time.monotonic() - described >= self.SHARDS_SECONDS:
            description = self.client.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
            shards = [shard["ShardId"] for shard in description["Shards"]]
            self._known = (time.monotonic(), shards)
        return shards

    def _iterator(self, shard_id: str) -> str | None:
        if shard_id not in self._iterators:
            if shard_id in self._last_sequence:
                kwargs = {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": self._last_sequence[shard_id]}
            else:
                kwargs = {"ShardIteratorType": self.start}
            self._iterators[shard_id] = self.client.get_shard_iterator(
                StreamArn=self.stream_arn, ShardId=shard_id, **kwargs
            )["ShardIterator"]
        return self._iterators[shard_id]

    def read(self, limit: int = 100) -> list[tuple[str, dict[str, Any]]]:
        """(shard id, record) pairs, at most `limit` per shard."""
        found = []
        for shard_id in self._shards():
            iterator = self._iterator(shard_id)
            if iterator is None:
                continue
            response = self.client.get_records(ShardIterator=iterator, Limit=limit)
            self._iterators[shard_id] = response.get("NextShardIterator")
            for record in response["Records"]:
                self._last_sequence[shard_id] = record["dynamodb"]["SequenceNumber"]
                found.append((shard_id, record))
        return found

    def rewind_to(self, shard_id: str, sequence_number: str) -> None:
        """Read again from this record on (it failed and must be retried)."""
        self._iterators[shard_id] = self.client.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER", SequenceNumber=sequence_number,
        )["ShardIterator"]


def lambda_event(records: list[dict[str, Any]], stream_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda's DynamoDB event source mapping would deliver."""
    return {"Records": [_lambda_record(record, stream_arn, region) for record in records]}


def _lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    data = dict(record["dynamodb"])
    created = data.get("ApproximateCreationDateTime", time.time())
    if isinstance(created, datetime):
        created = created.timestamp()
    data["ApproximateCreationDateTime"] = created
    data.setdefault("SizeBytes", 0)
    return {
        "eventID": record.get("eventID") or uuid.uuid4().hex,
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.get("awsRegion", region),
        "dynamodb": data,
        "eventSourceARN": stream_arn,
    }


def lambda_filter(filters: list[dict[str, str]]):
    """Lambda's FilterCriteria as a test of one stream record: whether any of
    its patterns matches (moto's implementation of AWS's event patterns, the
    syntax Lambda's filters use)."""
    from moto.events.models import EventPattern

    patterns = [EventPattern.load(each["Pattern"]) for each in filters]

    def delivered(record: dict) -> bool:
        as_json = json.loads(json.dumps(record, default=str))  # boto3's datetimes, as Lambda's JSON has them
        return any(pattern.matches_event(as_json) for pattern in patterns)
    return delivered
