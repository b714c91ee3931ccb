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
    # The bus gets chat-level events (chat_*, messagechat_*: at most 3 entries
    # per message sent, whatever the group's size); CHAT_BUS_CHATROOM_EVENTS=1
    # adds the per-chatroom ones (one or two per recipient of every message).
    bus_chatroom_events: bool = False
    # Origins whose pages may read the API's answers (CORS): "*" or
    # "scheme://host[:port]" each, from CHAT_CORS_ORIGINS (comma-separated).
    cors_origins: tuple[str, ...] = ("*",)
    # Rotation (auth/secret.py): where the previous secret is, beside the
    # current one (SSM: another parameter, by default the current one's name
    # with "-previous"; Secrets Manager: the AWSPREVIOUS version, no setting).
    jwt_previous_secret: str | None = None
    jwt_previous_secret_parameter: str | None = None
    # An identity provider (auth/provider.py): RS256/ES256 tokens verified
    # against its JWKS, with `iss` and `aud` checked, and the names of the
    # claims that carry the customer and the agent.
    jwks_url: str | None = None
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    customer_claim: str = "customer"
    agent_claim: str = "agent"
    # Send limits (services/limits.py): sends per window of this many seconds,
    # per agent and per customer (10 and 100 a second by default).
    send_window_seconds: int = 2
    agent_sends_per_window: int = 20
    customer_sends_per_window: int = 200
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
        bus_chatroom_events=os.environ.get("CHAT_BUS_CHATROOM_EVENTS", "") == "1",
        cors_origins=tuple(origin.strip().rstrip("/") for origin in os.environ.get("CHAT_CORS_ORIGINS", "*").split(",")
                           if origin.strip()) or ("*",),
        jwt_previous_secret=_first_set("CHAT_JWT_PREVIOUS_SECRET"),
        jwt_previous_secret_parameter=_first_set("CHAT_JWT_PREVIOUS_SECRET_PARAMETER"),
        jwks_url=_first_set("CHAT_JWKS_URL"),
        jwt_issuer=_first_set("CHAT_JWT_ISSUER"),
        jwt_audience=_first_set("CHAT_JWT_AUDIENCE"),
        customer_claim=_first_set("CHAT_JWT_CUSTOMER_CLAIM") or "customer",
        agent_claim=_first_set("CHAT_JWT_AGENT_CLAIM") or "agent",
        send_window_seconds=_positive_int("CHAT_SEND_WINDOW_SECONDS", 2),
        agent_sends_per_window=_positive_int("CHAT_AGENT_SENDS_PER_WINDOW", 20),
        customer_sends_per_window=_positive_int("CHAT_CUSTOMER_SENDS_PER_WINDOW", 200),
        stage=_first_set("CHAT_STAGE"),
        metrics_to_stdout=bool(_first_set("AWS_LAMBDA_FUNCTION_NAME")) or os.environ.get("CHAT_METRICS") == "stdout",
    )


def _first_set(*names: str) -> str | None:
    return next((os.environ[name] for name in names if os.environ.get(name)), None)


def _positive_int(name: str, default: int) -> int:
    raw = _first_set(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
        raise RuntimeError(f"{name} must be a positive integer, not {raw!r}")
    return int(raw)
