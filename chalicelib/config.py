"""Settings read from the environment, so one code base runs on moto, a local
DynamoDB-compatible server or AWS without edits. This is the one place that
reads the environment; `load()` is cheap, so callers read it when they act
(the local runner sets some variables after the app is imported)."""

import os
from dataclasses import dataclass

LOCAL_STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/chat/stream/local"


@dataclass(frozen=True)
class Settings:
    table_name: str
    region: str
    dynamodb_endpoint: str | None
    stream_arn: str
    # Where the JWT secret comes from: the value itself (local development),
    # an SSM SecureString parameter, or a Secrets Manager secret.
    jwt_secret: str | None
    jwt_secret_parameter: str | None
    jwt_secret_id: str | None
    # Real-time delivery: API Gateway's management endpoint for pushes (unset:
    # derived from the websocket event, or no pushes from the stream), and an
    # EventBridge bus (unset: none).
    websocket_endpoint: str | None
    event_bus: str | None
    # Files: the bucket that holds them (unset: the file routes answer 500,
    # naming the variable), and another S3 endpoint (the local runner's moto
    # server; unset: AWS's).
    files_bucket: str | None = None
    s3_endpoint: str | None = None
    # The deployed stage (dev, prod): names the REST API (app.py) and the
    # metrics' Stage dimension; unset locally.
    stage: str | None = None
    # Write the code's metrics (chalicelib/metrics.py) to stdout: on Lambda, or CHAT_METRICS=stdout.
    metrics_to_stdout: bool = False

    @property
    def app_name(self) -> str:
        """The REST API's name: the stages' APIs, and their metrics, told apart."""
        return f"voipbin-chat-{self.stage}" if self.stage else "voipbin-chat"


def load() -> Settings:
    return Settings(
        table_name=os.environ.get("CHAT_TABLE_NAME", "chat"),
        region=_first_set("CHAT_REGION", "AWS_REGION", "AWS_DEFAULT_REGION") or "us-east-1",
        dynamodb_endpoint=_first_set("CHAT_DYNAMODB_ENDPOINT"),
        # Chalice needs the stream ARN when app.py is imported (deploy time);
        # the local runner never uses it, it polls the stream itself.
        stream_arn=os.environ.get("CHAT_STREAM_ARN", LOCAL_STREAM_ARN),
        jwt_secret=_first_set("CHAT_JWT_SECRET"),
        jwt_secret_parameter=_first_set("CHAT_JWT_SECRET_PARAMETER"),
        jwt_secret_id=_first_set("CHAT_JWT_SECRET_ID"),
        websocket_endpoint=_first_set("CHAT_WEBSOCKET_ENDPOINT"),
        event_bus=_first_set("CHAT_EVENT_BUS"),
        files_bucket=_first_set("CHAT_FILES_BUCKET"),
        s3_endpoint=_first_set("CHAT_S3_ENDPOINT"),
        stage=_first_set("CHAT_STAGE"),
        metrics_to_stdout=bool(_first_set("AWS_LAMBDA_FUNCTION_NAME")) or os.environ.get("CHAT_METRICS") == "stdout",
    )


def _first_set(*names: str) -> str | None:
    return next((os.environ[name] for name in names if os.environ.get(name)), None)
