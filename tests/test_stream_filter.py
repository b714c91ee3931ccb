"""Lambda's filter of the stream's records (chalicelib/stream/handler.stream_filters,
set on the stage's event source mapping) lets through exactly the records the
handler acts on: checked with moto's matcher of AWS's event patterns against
records of every kind of item, and against the handler's own `followed`. The
whole suite runs with the filter on (tests/conftest.Fanout), so a kind it drops
that the handler needed fails the tests of that feature."""

import pytest

from chalicelib.storage.models import TableItem
from chalicelib.stream.handler import FOLLOWED_KINDS, StreamRecord, followed, stream_filters
from devtools.streams import lambda_filter
from infra.build_template import STAGES, stream_mapping_settings

DELIVERED = lambda_filter(stream_filters())
KINDS = sorted(TableItem.kind._class_map.values())  # every kind of item the table holds


def stream_record(event_name: str, kind: str | None) -> dict:
    image = {"pk": {"S": "c#x"}, "sk": {"S": "#"}, **({"kind": {"S": kind}} if kind else {})}
    images = {"OldImage": image} if event_name == "REMOVE" else {"NewImage": image, "OldImage": image}
    if event_name == "INSERT":
        del images["OldImage"]
    return {"eventID": "1", "eventName": event_name, "eventSource": "aws:dynamodb",
            "dynamodb": {"Keys": {"pk": {"S": "c#x"}, "sk": {"S": "#"}}, "SequenceNumber": "1", **images}}


def test_the_followed_kinds_are_kinds_of_the_table():
    assert set(FOLLOWED_KINDS) < set(KINDS)


@pytest.mark.parametrize("event_name", ["INSERT", "MODIFY", "REMOVE"])
@pytest.mark.parametrize("kind", [*KINDS, None])
def test_the_filter_lets_through_what_the_handler_follows(event_name, kind):
    lambda_record = stream_record(event_name, kind)
    assert DELIVERED(lambda_record) == followed(StreamRecord.from_lambda(lambda_record))
    assert DELIVERED(lambda_record) == (kind in FOLLOWED_KINDS)


def test_a_send_window_typing_connection_or_membership_record_is_dropped():
    for kind in ("send-window", "typing-throttle", "connection-route", "ws-audience", "chat-member", "reaction"):
        assert not DELIVERED(stream_record("MODIFY", kind)), kind
    for kind in ("chatmessage", "chatroommessage"):  # a TTL's removal still cascades
        assert DELIVERED(stream_record("REMOVE", kind)), kind


def test_every_stage_sets_the_filter_on_its_mapping():
    for stage in STAGES.values():
        assert stream_mapping_settings(stage, "arn:queue")["FilterCriteria"] == {"Filters": stream_filters()}
