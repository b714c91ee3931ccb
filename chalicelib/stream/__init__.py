"""The stream entry point: DynamoDB stream records to the work that follows
a write (services.fanout) and the events it means (services.events)."""

from chalicelib.stream.handler import StreamRecord, handle_records

__all__ = ["StreamRecord", "handle_records"]
