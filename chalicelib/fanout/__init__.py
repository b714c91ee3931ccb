"""Fan-out: DynamoDB stream records to chatroom copies and cascades."""

from chalicelib.fanout.handler import StreamRecord, handle_records

__all__ = ["StreamRecord", "handle_records"]
