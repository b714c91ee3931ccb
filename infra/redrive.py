"""`make redrive STAGE=...`: replay the stream records the stage gave up.

When the stream mapping gives up a batch (its retries or the records' maximum
age spent), Lambda sends the on-failure queue a message that only points into
the stream (shard, first and last sequence numbers), which keeps records 24
hours. The stream handler keeps every record it fails whole, in the stage's
bucket (chalicelib/storage/failures.py), so this works on any day within the
queue's 14 days:

1. each message of the queue names a range of sequence numbers;
2. the kept records in that range are followed again, in order, by the
   stream handler's own code (chalicelib/stream), here, with this stage's
   environment from .chalice/config.json and your AWS credentials (the
   actions the functions' policy allows, on the stage's table, bus, websocket
   API and bucket);
3. a message whose records all succeed is deleted, with their kept images;
   one that fails again stays (visible again at once), and is reported.

Replaying is safe: every action of the fan-out is idempotent (a copy made
already is not made again). A message whose range has no kept record (the
function crashed or timed out instead of reporting its failures) is replayed
from the stream itself while the stream still has it (24 hours); after that it
is reported and left in the queue.

    python infra/redrive.py --stage dev [--project-dir .]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script
    sys.path.insert(0, str(ROOT))

from infra.build_template import STAGES  # noqa: E402

VISIBILITY_SECONDS = 300  # a message being replayed is hidden from another redrive meanwhile


@dataclass
class Summary:
    replayed: list[str] = field(default_factory=list)  # sequence numbers followed again
    failed: list[str] = field(default_factory=list)  # and failed again
    without_images: list[dict[str, Any]] = field(default_factory=list)  # ranges with no kept record
    messages_deleted: int = 0


def redrive(sqs: Any, queue_url: str, streams: Any = None) -> Summary:
    """Replay what every message of the queue names (the chalicelib
    configuration in force: table, bucket, bus, websocket endpoint); records
    not kept are read from the stream (`streams`: a dynamodbstreams client)."""
    from chalicelib.storage import failures
    from chalicelib.stream import StreamRecord, handle_records

    summary, left = Summary(), []
    while True:
        # Each message once: those left stay hidden until the pass is over.
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       VisibilityTimeout=VISIBILITY_SECONDS).get("Messages", [])
        if not messages:
            for receipt in left:  # visible again for the next redrive
                sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
            return summary
        for message in messages:
            batch = json.loads(message["Body"]).get("DDBStreamBatchInfo") or {}
            keys = failures.in_range(batch["startSequenceNumber"], batch["endSequenceNumber"]) if batch else []
            kept = [failures.load(key) for key in keys]
            records = [StreamRecord(r["eventName"], r["sequenceNumber"], r["NewImage"], r["OldImage"], r["itemKey"])
                       for r in kept] or (from_stream(streams, batch) if streams is not None and batch else [])
            if not records:
                summary.without_images.append(batch)
                left.append(message["ReceiptHandle"])
                continue
            failed = [f["itemIdentifier"] for f in handle_records(records)["batchItemFailures"]]
            summary.replayed += [r.sequence_number for r in records]
            summary.failed += failed
            if failed:
                left.append(message["ReceiptHandle"])
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            summary.messages_deleted += 1
            for key in keys:
                failures.forget(key)


def from_stream(streams: Any, batch: dict[str, Any]) -> list:
    """The records of the batch's range, read from its shard; none once the
    stream has dropped them (24 hours) or the shard is unknown."""
    from botocore.exceptions import BotoCoreError, ClientError

    from chalicelib.stream import StreamRecord

    first, last = int(batch["startSequenceNumber"]), int(batch["endSequenceNumber"])
    found = []
    try:
        iterator = streams.get_shard_iterator(
            StreamArn=batch["streamArn"], ShardId=batch["shardId"], ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=batch["startSequenceNumber"])["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            for record in page["Records"]:
                if int(record["dynamodb"]["SequenceNumber"]) > last:
                    return found
                if int(record["dynamodb"]["SequenceNumber"]) >= first:
                    found.append(StreamRecord.from_lambda(record))
            if not page["Records"]:  # an open shard's end: nothing newer yet
                break
            iterator = page.get("NextShardIterator")
    except (ClientError, BotoCoreError):  # TrimmedDataAccessException (past 24 hours), an unknown shard
        return []
    return found


def stage_environment(project_dir: Path, stage_name: str) -> dict[str, str]:
    """The stage's functions' environment, as make deploy wrote it into .chalice/config.json."""
    config = json.loads((project_dir / ".chalice" / "config.json").read_text())
    return dict(config["stages"][stage_name].get("environment_variables", {}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stage", choices=sorted(STAGES), default="dev")
    parser.add_argument("--project-dir", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    stage = STAGES[args.stage]
    environment = stage_environment(args.project_dir, stage.name)
    if "CHAT_FILES_BUCKET" not in environment:
        print(f"make redrive STAGE={stage.name}: .chalice/config.json names no bucket: run make deploy first",
              file=sys.stderr)
        return 1
    os.environ.update(environment)  # what the functions run with; AWS_* (credentials, region, endpoint) are yours

    import boto3

    from chalicelib import storage

    storage.configure()
    sqs = boto3.client("sqs")
    queue_url = sqs.get_queue_url(QueueName=stage.failure_queue_name)["QueueUrl"]
    summary = redrive(sqs, queue_url, boto3.client("dynamodbstreams"))
    print(f"[redrive] {len(summary.replayed)} records replayed, {summary.messages_deleted} messages done")
    for sequence in summary.failed:
        print(f"[redrive] record {sequence} failed again (its message stays): see the log above")
    for batch in summary.without_images:
        print(f"[redrive] no record kept or in the stream for {batch.get('startSequenceNumber')}.."
              f"{batch.get('endSequenceNumber')} of {batch.get('shardId')} (message left in the queue)")
    return 1 if summary.failed or summary.without_images else 0


if __name__ == "__main__":
    sys.exit(main())
