"""Settings read from the environment, so one code base runs on moto, a local
DynamoDB-compatible server or AWS without edits."""

import os
from dataclasses import dataclass

LOCAL_STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/chat/stream/local"


@dataclass(frozen=True)
class Settings:
    table_name: str
    region: str
    dynamodb_endpoint: str | None
    jwt_secret: str | None
    stream_arn: str


def load() -> Settings:
    return Settings(
        table_name=os.environ.get("CHAT_TABLE_NAME", "chat"),
        region=_first_set("CHAT_REGION", "AWS_REGION", "AWS_DEFAULT_REGION") or "us-east-1",
        dynamodb_endpoint=os.environ.get("CHAT_DYNAMODB_ENDPOINT") or None,
        jwt_secret=os.environ.get("CHAT_JWT_SECRET") or None,
        # Chalice needs the stream ARN when app.py is imported (deploy time);
        # the local runner never uses it, it polls the stream itself.
        stream_arn=os.environ.get("CHAT_STREAM_ARN", LOCAL_STREAM_ARN),
    )


def _first_set(*names: str) -> str | None:
    return next((os.environ[name] for name in names if os.environ.get(name)), None)
